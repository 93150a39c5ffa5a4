# The build machine itself (x86-64 Linux or any POSIX host): apps become ordinary executables.
# Used for bit-exact comparisons with the Python toolchain and for fast tests.

# The host's C compiler; CC=clang on the command line (or in the environment) wins.
ifeq ($(origin CC),default)
CC := cc
endif

BOARD_ARCH := host
BOARD_FEATURES :=
BOARD_EXE_SUFFIX :=

BOARD_CFLAGS := -O2 -g -D_POSIX_C_SOURCE=200809L
BOARD_LDFLAGS :=
BOARD_SRCS := $(BOARD_DIR)/board.c $(BOARD_DIR)/host_files.c
