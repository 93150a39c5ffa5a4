# Template for a new Cortex-M4F board: copy the folder, then set the memory map (linker.ld), the IRQ
# count below (STARTUP_NUM_IRQS) and BOARD_FEATURES (e.g. semihost, if a debugger is attached).
# boards/common/ holds the shared Cortex-M startup and compiler flags; a non-M4F part sets its own.

include $(BOARD_DIR)/../common/cortex_m4f.mk

BOARD_FEATURES :=
BOARD_CFLAGS += -DSTARTUP_NUM_IRQS=8
