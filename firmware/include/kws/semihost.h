// ARM semihosting: file I/O on the debug host (QEMU's working directory under
// `-semihosting-config enable=on,target=native`, or a debugger) and the simulation's exit code.
//
// Only boards whose board.mk lists `semihost` in BOARD_FEATURES compile firmware/src/semihost.c; they
// also get KWS_HAVE_SEMIHOST=1, so portable code guards its use with `#if KWS_HAVE_SEMIHOST`.
// Every call traps into the host (BKPT 0xAB on M-profile): without a host attached the CPU faults,
// so never call these on a board running stand-alone. All calls block until the host answers.

#ifndef KWS_SEMIHOST_H
#define KWS_SEMIHOST_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// How kws_semihost_open() opens a file, as the fopen() mode in the comment (always binary).
typedef enum {
    KWS_SEMIHOST_READ = 1,     // "rb": must exist
    KWS_SEMIHOST_WRITE = 5,    // "wb": created or truncated
    KWS_SEMIHOST_APPEND = 9,   // "ab": created if absent, writes go to the end
} kws_semihost_mode;

// Opens path (NUL-terminated, relative to the host's working directory; read during the call only).
// Returns a handle (>= 0) or -1 on error. ":tt" is the host console (mode READ = stdin, WRITE = stdout).
int32_t kws_semihost_open(const char *path, kws_semihost_mode mode);

// Closes a handle from kws_semihost_open(). Returns 0, or -1 on error.
int32_t kws_semihost_close(int32_t handle);

// Reads up to len bytes into buf (caller-owned, len bytes writable). Returns the count read
// (0 at end of file), or -1 on error.
int32_t kws_semihost_read(int32_t handle, void *buf, size_t len);

// Writes len bytes from buf (caller-owned, read during the call only). Returns the count written
// (len unless the host failed part way), or -1 on error.
int32_t kws_semihost_write(int32_t handle, const void *buf, size_t len);

// Moves the file position to pos bytes from the start (0 <= pos <= file length).
// Returns 0, or -1 on error.
int32_t kws_semihost_seek(int32_t handle, uint32_t pos);

// The length of an open file in bytes, or -1 on error.
int32_t kws_semihost_flen(int32_t handle);

// Ends the simulation with exit code status (SYS_EXIT_EXTENDED; QEMU exits with status & 0xff).
// Never returns: if the host ignores the call, it loops forever.
__attribute__((noreturn)) void kws_semihost_exit(int status);

#ifdef __cplusplus
}
#endif

#endif  // KWS_SEMIHOST_H
