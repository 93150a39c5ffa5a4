# qemu-system-arm -M mps2-an386: Cortex-M4F, code in ZBT SSRAM1 at 0x0, data in SSRAM2/3 at 0x20000000.
# Run with kws.bench.qemu.run(elf), which starts: qemu-system-arm -M mps2-an386 -nographic -monitor none
#   -serial stdio -icount shift=6,align=off,sleep=off -semihosting-config enable=on,target=native -kernel X.elf
# QEMU wiring (hw/arm/mps2.c): IRQ 0/1 UART0 RX/TX, 8 Timer0, 9 Timer1, 10 dual timer, 12 UART overflow.

include $(BOARD_DIR)/../common/cortex_m4f.mk

BOARD_FEATURES := semihost
BOARD_CFLAGS += -DSTARTUP_NUM_IRQS=32
