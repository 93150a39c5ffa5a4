# Template for a new Cortex-M4F board: copy the folder, then set the memory map (linker.ld), the IRQ
# count (startup.c), the CPU flags below and BOARD_FEATURES (e.g. semihost, if a debugger is attached).

CROSS_COMPILE ?= arm-none-eabi-
CC := $(CROSS_COMPILE)gcc
SIZE := $(CROSS_COMPILE)size

BOARD_ARCH := cortex_m4
BOARD_FEATURES :=
BOARD_EXE_SUFFIX := .elf

BOARD_CPU_FLAGS := -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16
BOARD_CFLAGS := $(BOARD_CPU_FLAGS) -O2 -g -ffunction-sections -fdata-sections
BOARD_LDFLAGS = $(BOARD_CPU_FLAGS) -nostartfiles --specs=nano.specs -T $(BOARD_DIR)/linker.ld \
	-Wl,--gc-sections -Wl,--fatal-warnings -Wl,-Map=$(TARGET_BASE).map
BOARD_SRCS := $(BOARD_DIR)/startup.c $(BOARD_DIR)/board.c
