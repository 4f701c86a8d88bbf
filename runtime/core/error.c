/*
 * error.c -- the one status type and its messages.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"

/* A short fixed name for a status. */
const char *sepconv_status_name(sepconv_status status)
{
    switch (status) {
    case SEPCONV_OK: return "ok";
    case SEPCONV_INVALID: return "invalid";
    case SEPCONV_OVERFLOW: return "overflow";
    case SEPCONV_NOMEM: return "out of memory";
    case SEPCONV_IO: return "i/o error";
    case SEPCONV_UNSUPPORTED: return "unsupported";
    case SEPCONV_MISMATCH: return "mismatch";
    case SEPCONV_TEMPLATE: return "template error";
    case SEPCONV_LIMIT: return "limit exceeded";
    case SEPCONV_COMPILE: return "compile error";
    }
    return "unknown status";
}

/* Fills `error` with a formatted message and returns `status`. */
sepconv_status sepconv_fail(sepconv_error *error, sepconv_status status,
                            const char *format, ...)
{
    if (error) {
        va_list args;
        va_start(args, format);
        error->status = status;
        vsnprintf(error->message, sizeof error->message, format, args);
        va_end(args);
    }
    return status;
}

/* Puts "prefix: " in front of the message already in `error`. */
void sepconv_error_prefix(sepconv_error *error, const char *format, ...)
{
    if (!error)
        return;
    char prefix[SEPCONV_MESSAGE_MAX];
    va_list args;
    va_start(args, format);
    vsnprintf(prefix, sizeof prefix, format, args);
    va_end(args);
    /* joined by hand: the message may be truncated, never overrun */
    char joined[SEPCONV_MESSAGE_MAX];
    size_t room = sizeof joined - 1, used = 0;
    const char *parts[] = {prefix, ": ", error->message};
    for (int i = 0; i < 3; i++) {
        size_t length = strlen(parts[i]);
        if (length > room - used)
            length = room - used;
        memcpy(joined + used, parts[i], length);
        used += length;
    }
    joined[used] = '\0';
    memcpy(error->message, joined, used + 1);
}
