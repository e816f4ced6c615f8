/*
 * base/log.h - logging to stderr for every layer. Never installed.
 *
 * The level comes from SKALD_LOG=debug|info|warn|error (default: warn), read
 * once. A line is "skald LEVEL: message". Thread-safe: a line is written with
 * one write(2), so lines of different threads never interleave.
 */
#ifndef SKALD_BASE_LOG_H
#define SKALD_BASE_LOG_H

enum { SKALD_LOG_DEBUG, SKALD_LOG_INFO, SKALD_LOG_WARN, SKALD_LOG_ERROR };

int skald__log_enabled(int level);
void skald__log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define SKALD_LOG(level, ...)                                                                      \
	do {                                                                                       \
		if (skald__log_enabled(level))                                                     \
			skald__log(level, __VA_ARGS__);                                            \
	} while (0)

#endif /* SKALD_BASE_LOG_H */
