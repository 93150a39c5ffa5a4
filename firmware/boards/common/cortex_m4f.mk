# Cortex-M4F build settings shared by the ARM boards (included by their board.mk).
CROSS_COMPILE ?= arm-none-eabi-
CC := $(CROSS_COMPILE)gcc
SIZE := $(CROSS_COMPILE)size

# kernels/<BOARD_ARCH>/ files replace the same-named src/ files.
BOARD_ARCH := cortex_m4
BOARD_EXE_SUFFIX := .elf

BOARD_CPU_FLAGS := -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16
BOARD_CFLAGS := $(BOARD_CPU_FLAGS) -O2 -g -ffunction-sections -fdata-sections
# newlib-nano provides memcpy/memset and friends only: no syscalls are linked, so any use of the heap
# (malloc needs _sbrk) or of stdio fails at link time instead of at run time.
BOARD_LDFLAGS = $(BOARD_CPU_FLAGS) -nostartfiles --specs=nano.specs -T $(BOARD_DIR)/linker.ld \
	-Wl,--gc-sections -Wl,--fatal-warnings -Wl,-Map=$(TARGET_BASE).map
BOARD_SRCS := $(BOARD_DIR)/../common/cortex_m_startup.c $(BOARD_DIR)/board.c
