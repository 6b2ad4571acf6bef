/*
 * Small helpers shared by every component: number and size parsing for command
 * lines, monotonic time, hex encoding of tokens, and whole-buffer I/O on file
 * descriptors that retries short transfers and EINTR.
 */
#ifndef LEGATO_COMMON_UTIL_H
#define LEGATO_COMMON_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/*
 * Parses a byte count: decimal digits with an optional binary suffix K, M, G or
 * T (case-insensitive, an optional trailing "iB" or "B" is accepted).
 * Returns 0, -EINVAL for malformed input, -ERANGE on overflow.
 */
int parse_size(const char *s, uint64_t *out);

/* Parses an unsigned decimal (or 0x-prefixed hex) integer, whole string.
 * Returns 0, -EINVAL or -ERANGE. */
int parse_u64(const char *s, uint64_t *out);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t now_ns(void);

/* Writes 2*len lowercase hex digits and a NUL to out (size >= 2*len+1). */
void hex_encode(const uint8_t *in, size_t len, char *out);

/* Decodes exactly len bytes from 2*len hex digits (whole string).
 * Returns 0 or -EINVAL. */
int hex_decode(const char *in, uint8_t *out, size_t len);

/* Reads exactly len bytes. Returns 0, -EPIPE at a premature end of file, or
 * -errno. */
int read_full(int fd, void *buf, size_t len);

/* Reads until len bytes or end of file; returns the byte count or -errno. */
ssize_t read_upto(int fd, void *buf, size_t len);

/* Writes exactly len bytes. Returns 0 or -errno. */
int write_full(int fd, const void *buf, size_t len);

/* Reads a whole small file (at most max bytes) into a malloc'd buffer.
 * Returns 0 and sets *buf, *len, or -errno (-EFBIG when larger than max). */
int read_file(const char *path, size_t max, uint8_t **buf, size_t *len);

#endif
