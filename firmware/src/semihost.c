// ARM semihosting calls (see kws/semihost.h). Operation numbers and argument blocks follow Arm's
// "Semihosting for AArch32 and AArch64" specification.

#include "kws/semihost.h"

#if !defined(__arm__)
#error "semihost.c is for Arm targets only: list `semihost` in BOARD_FEATURES only for Arm boards"
#endif

enum {
    SEMIHOST_SYS_OPEN = 0x01,
    SEMIHOST_SYS_CLOSE = 0x02,
    SEMIHOST_SYS_WRITE = 0x05,
    SEMIHOST_SYS_READ = 0x06,
    SEMIHOST_SYS_SEEK = 0x0A,
    SEMIHOST_SYS_FLEN = 0x0C,
    SEMIHOST_SYS_EXIT_EXTENDED = 0x20,
};

// "Application exit" reason code for SYS_EXIT / SYS_EXIT_EXTENDED.
#define SEMIHOST_ADP_STOPPED_APPLICATION_EXIT 0x20026u

// r0 = operation, r1 = pointer to the argument block; the host answers in r0. The "memory" clobber
// makes the compiler store the block (and any write buffer) before the trap and reload read buffers after.
static int32_t semihost_call(uint32_t op, const void *args)
{
    register uint32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = args;
#if defined(__ARM_ARCH_PROFILE) && __ARM_ARCH_PROFILE == 'M'
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
#elif defined(__thumb__)
    __asm__ volatile("svc 0xab" : "+r"(r0) : "r"(r1) : "memory");
#else
    __asm__ volatile("svc 0x123456" : "+r"(r0) : "r"(r1) : "memory");
#endif
    return (int32_t)r0;
}

static uint32_t semihost_strlen(const char *s)
{
    uint32_t n = 0;
    while (s[n] != '\0') {
        n++;
    }
    return n;
}

int32_t kws_semihost_open(const char *path, kws_semihost_mode mode)
{
    const uint32_t args[3] = {(uint32_t)(uintptr_t)path, (uint32_t)mode, semihost_strlen(path)};
    return semihost_call(SEMIHOST_SYS_OPEN, args);
}

int32_t kws_semihost_close(int32_t handle)
{
    const uint32_t args[1] = {(uint32_t)handle};
    return semihost_call(SEMIHOST_SYS_CLOSE, args) == 0 ? 0 : -1;
}

// SYS_READ and SYS_WRITE answer with the number of bytes NOT transferred.
int32_t kws_semihost_read(int32_t handle, void *buf, size_t len)
{
    const uint32_t args[3] = {(uint32_t)handle, (uint32_t)(uintptr_t)buf, (uint32_t)len};
    const int32_t left = semihost_call(SEMIHOST_SYS_READ, args);
    if (left < 0 || (uint32_t)left > (uint32_t)len) {
        return -1;
    }
    return (int32_t)((uint32_t)len - (uint32_t)left);
}

int32_t kws_semihost_write(int32_t handle, const void *buf, size_t len)
{
    const uint32_t args[3] = {(uint32_t)handle, (uint32_t)(uintptr_t)buf, (uint32_t)len};
    const int32_t left = semihost_call(SEMIHOST_SYS_WRITE, args);
    if (left < 0 || (uint32_t)left > (uint32_t)len) {
        return -1;
    }
    return (int32_t)((uint32_t)len - (uint32_t)left);
}

int32_t kws_semihost_seek(int32_t handle, uint32_t pos)
{
    const uint32_t args[2] = {(uint32_t)handle, pos};
    return semihost_call(SEMIHOST_SYS_SEEK, args) == 0 ? 0 : -1;
}

int32_t kws_semihost_flen(int32_t handle)
{
    const uint32_t args[1] = {(uint32_t)handle};
    const int32_t len = semihost_call(SEMIHOST_SYS_FLEN, args);
    return len < 0 ? -1 : len;
}

void kws_semihost_exit(int status)
{
    const uint32_t args[2] = {SEMIHOST_ADP_STOPPED_APPLICATION_EXIT, (uint32_t)status};
    (void)semihost_call(SEMIHOST_SYS_EXIT_EXTENDED, args);
    for (;;) {
    }
}
