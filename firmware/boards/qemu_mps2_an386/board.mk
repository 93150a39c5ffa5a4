# qemu-system-arm -M mps2-an386: Cortex-M4F, code in ZBT SSRAM1 at 0x0, data in SSRAM2/3 at 0x20000000.
# Run with kws.bench.qemu.run(elf), which starts: qemu-system-arm -M mps2-an386 -nographic -monitor none
#   -serial stdio -icount shift=6,align=off,sleep=off -semihosting-config enable=on,target=native -kernel X.elf

CROSS_COMPILE ?= arm-none-eabi-
CC := $(CROSS_COMPILE)gcc
SIZE := $(CROSS_COMPILE)size

# kernels/<BOARD_ARCH>/ files replace the same-named src/ files; optional core features this board has.
BOARD_ARCH := cortex_m4
BOARD_FEATURES := semihost
BOARD_EXE_SUFFIX := .elf

BOARD_CPU_FLAGS := -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16
BOARD_CFLAGS := $(BOARD_CPU_FLAGS) -O2 -g -ffunction-sections -fdata-sections
# newlib-nano provides memcpy/memset and friends only: no syscalls are linked, so any use of the heap
# (malloc needs _sbrk) or of stdio fails at link time instead of at run time.
BOARD_LDFLAGS = $(BOARD_CPU_FLAGS) -nostartfiles --specs=nano.specs -T $(BOARD_DIR)/linker.ld \
	-Wl,--gc-sections -Wl,--fatal-warnings -Wl,-Map=$(TARGET_BASE).map
BOARD_SRCS := $(BOARD_DIR)/startup.c $(BOARD_DIR)/board.c
