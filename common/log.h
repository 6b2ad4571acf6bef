/*
 * Logging for every legato program: one line per event on stderr, prefixed with
 * a UTC timestamp, the program name and the level. The level is process-wide and
 * set once at start-up (--log-level); messages below it cost one comparison.
 */
#ifndef LEGATO_COMMON_LOG_H
#define LEGATO_COMMON_LOG_H

#include <stdarg.h>

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

extern enum log_level log_current_level;

/* Sets the program name shown in each line (no copy is made). */
void log_init(const char *prog, enum log_level level);

/* Parses "error", "warn", "info" or "debug". Returns 0 or -EINVAL. */
int log_parse_level(const char *s, enum log_level *out);

void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Prints "prog: message" to stderr and exits with status 1. For main-level
 * set-up only: library code returns -errno instead. */
void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#define log_err(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)                                                          \
	do {                                                                   \
		if (log_current_level >= LOG_INFO)                             \
			log_msg(LOG_INFO, __VA_ARGS__);                        \
	} while (0)
#define log_debug(...)                                                         \
	do {                                                                   \
		if (log_current_level >= LOG_DEBUG)                            \
			log_msg(LOG_DEBUG, __VA_ARGS__);                       \
	} while (0)

#endif
