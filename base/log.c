/*
 * base/log.c - leveled logging to stderr (see log.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"

static int level = -1;

static int read_level(void)
{
	const char *s = getenv("SKALD_LOG");
	if (s == NULL)
		return SKALD_LOG_WARN;
	if (strcmp(s, "debug") == 0)
		return SKALD_LOG_DEBUG;
	if (strcmp(s, "info") == 0)
		return SKALD_LOG_INFO;
	if (strcmp(s, "error") == 0)
		return SKALD_LOG_ERROR;
	return SKALD_LOG_WARN;
}

int skald__log_enabled(int lvl)
{
	/* A benign race: every thread computes the same value. */
	int l = __atomic_load_n(&level, __ATOMIC_RELAXED);
	if (l < 0) {
		l = read_level();
		__atomic_store_n(&level, l, __ATOMIC_RELAXED);
	}
	return lvl >= l;
}

void skald__log(int lvl, const char *fmt, ...)
{
	static const char *names[] = {"debug", "info", "warn", "error"};
	char line[1024];
	int n = snprintf(line, sizeof line, "skald %s: ", names[lvl & 3]);
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	size_t len = (size_t)n + (size_t)m;
	if (len > sizeof line - 2)
		len = sizeof line - 2;
	line[len++] = '\n';
	ssize_t w = write(2, line, len);
	(void)w;
}
