// The semihosting file API (kws/semihost.h) on the host board, over POSIX stdio: apps that read
// their input from "host files" under QEMU (wake, model_run, frontend_check) run unchanged as x86
// programs, reading and writing the same file names in the current directory. ":tt" is the
// console. The host board does not list the `semihost` feature (KWS_HAVE_SEMIHOST stays 0: there is
// no debug host); it only provides these functions.
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kws/semihost.h"

#define HOST_MAX_FILES 16

static FILE *files[HOST_MAX_FILES];

int32_t kws_semihost_open(const char *path, kws_semihost_mode mode) {
    const char *how = mode == KWS_SEMIHOST_READ ? "rb" : mode == KWS_SEMIHOST_WRITE ? "wb" : "ab";
    FILE *f;
    if (strcmp(path, ":tt") == 0) {
        f = mode == KWS_SEMIHOST_READ ? stdin : stdout;
    } else {
        f = fopen(path, how);
    }
    if (f == NULL) {
        return -1;
    }
    for (int32_t i = 0; i < HOST_MAX_FILES; i++) {
        if (files[i] == NULL) {
            files[i] = f;
            return i;
        }
    }
    if (f != stdin && f != stdout) {
        fclose(f);
    }
    return -1;
}

static FILE *file_of(int32_t handle) {
    return (handle >= 0 && handle < HOST_MAX_FILES) ? files[handle] : NULL;
}

int32_t kws_semihost_close(int32_t handle) {
    FILE *f = file_of(handle);
    if (f == NULL) {
        return -1;
    }
    files[handle] = NULL;
    return (f == stdin || f == stdout) ? 0 : (fclose(f) == 0 ? 0 : -1);
}

int32_t kws_semihost_read(int32_t handle, void *buf, size_t len) {
    FILE *f = file_of(handle);
    if (f == NULL) {
        return -1;
    }
    size_t got = fread(buf, 1, len, f);
    return (got < len && ferror(f)) ? -1 : (int32_t)got;
}

int32_t kws_semihost_write(int32_t handle, const void *buf, size_t len) {
    FILE *f = file_of(handle);
    if (f == NULL) {
        return -1;
    }
    return (int32_t)fwrite(buf, 1, len, f);
}

int32_t kws_semihost_seek(int32_t handle, uint32_t pos) {
    FILE *f = file_of(handle);
    return (f != NULL && fseek(f, (long)pos, SEEK_SET) == 0) ? 0 : -1;
}

int32_t kws_semihost_flen(int32_t handle) {
    FILE *f = file_of(handle);
    if (f == NULL) {
        return -1;
    }
    long at = ftell(f);
    if (at < 0 || fseek(f, 0, SEEK_END) != 0) {
        return -1;
    }
    long end = ftell(f);
    fseek(f, at, SEEK_SET);
    return (int32_t)end;
}

void kws_semihost_exit(int status) {
    exit(status);
}
