# NUCLEO-L4R5ZI: STM32L4R5ZI (Cortex-M4F, 120 MHz, 2 MiB flash, 640 KiB SRAM), bare metal (board.c).
# Flash it with `make flash BOARD=nucleo_l4r5zi APP=<app> [MODEL=<model folder>]` (pyocd, or openocd).
# Console: the ST-LINK virtual COM port (LPUART1 on PG7/PG8) at KWS_UART_BAUD, 8N1.
#
# SEMIHOST=1 (default) builds ARM semihosting in (src/semihost.c), which model_run and the wake app read
# their input files through: run them under a debugger that serves semihosting (e.g. `pyocd gdbserver
# -t stm32l4r5zitx --semihosting`, or openocd's `arm semihosting enable`). Without any debugger each
# semihosting call returns -1 (board.c's HardFault handler turns the trap into an error return), so
# selftest still runs stand-alone. SEMIHOST=0 leaves semihosting out.

include $(BOARD_DIR)/../common/cortex_m4f.mk

SEMIHOST ?= 1
ifeq ($(filter 0 1,$(SEMIHOST)),)
$(error SEMIHOST='$(SEMIHOST)' must be 0 or 1)
endif
BOARD_FEATURES := $(if $(filter 1,$(SEMIHOST)),semihost)

# The STM32L4R5 has 95 external interrupts (RM0432, NVIC chapter: the STM32L4Rxxx/L4Sxxx vector table);
# the shared startup's table holds a multiple of 8 (96). board.c installs LPUART1's as startup_irq70_handler.
BOARD_CFLAGS += -DSTARTUP_NUM_IRQS=96
BOARD_SRCS += $(BOARD_DIR)/board_stream.c
