/*
 * base/log.c - leveled logging to stderr, as text or JSON lines (see log.h).
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"

static const char *const level_names[] = {"debug", "info", "warn", "error"};

static int level = -1;
static int json = -1;
static _Atomic(skald__log_hook_fn) hooks[SKALD__LOG_FIELDS];

_Thread_local const void *skald__log_actor;

static void write_line(const char *line, size_t len)
{
	ssize_t w = write(2, line, len);
	(void)w;
}

/* A setting that is not understood is said once, on stderr, with what is
 * done instead: a typo must not silently change what gets logged. */
static void say_ignored(const char *var, const char *value, const char *known, const char *used)
{
	char line[256];
	int n = snprintf(line, sizeof line,
	                 "skald warn: %s=%s is not understood (known: %s); using %s\n", var, value,
	                 known, used);
	if (n > 0)
		write_line(line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

static int read_level(void)
{
	const char *s = getenv("SKALD_LOG");
	if (s == NULL || *s == '\0')
		return SKALD_LOG_WARN;
	for (int l = SKALD_LOG_DEBUG; l <= SKALD_LOG_ERROR; l++)
		if (strcmp(s, level_names[l]) == 0)
			return l;
	say_ignored("SKALD_LOG", s, "debug, info, warn, error", "warn");
	return SKALD_LOG_WARN;
}

static int read_format(void)
{
	const char *s = getenv("SKALD_LOG_FORMAT");
	if (s == NULL || *s == '\0' || strcmp(s, "text") == 0)
		return 0;
	if (strcmp(s, "json") == 0)
		return 1;
	say_ignored("SKALD_LOG_FORMAT", s, "text, json", "text");
	return 0;
}

int skald__log_enabled(int lvl)
{
	/* A benign race: every thread computes the same value (and a bad
	 * setting may be reported twice). */
	int l = __atomic_load_n(&level, __ATOMIC_RELAXED);
	if (l < 0) {
		l = read_level();
		__atomic_store_n(&level, l, __ATOMIC_RELAXED);
		__atomic_store_n(&json, read_format(), __ATOMIC_RELAXED);
	}
	return lvl >= l;
}

const char *skald__log_paren(const char *detail, char *buf, size_t len)
{
	if (detail == NULL || detail[0] == '\0')
		snprintf(buf, len, "%s", "");
	else
		snprintf(buf, len, " (%s)", detail);
	return buf;
}

void skald__log_hook(int field, skald__log_hook_fn fn)
{
	if (field >= 0 && field < SKALD__LOG_FIELDS)
		atomic_store(&hooks[field], fn);
}

/* A line. Its size fits the worst case, so a line is never cut: a message
 * of 1,023 bytes and three fields of 511, each byte escaped as \u00XX. */
typedef struct line_s {
	char buf[6 * (1024 + 3 * 512) + 256];
	size_t len;
} line_t;

static void add(line_t *l, const char *s, size_t n)
{
	size_t room = sizeof l->buf - 1 - l->len;
	if (n > room)
		n = room;
	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

static void adds(line_t *l, const char *s)
{
	add(l, s, strlen(s));
}

/* s as the inside of a JSON string: quotes, backslashes and control
 * characters escaped; other bytes as they are (messages are UTF-8 or
 * ASCII). */
static void add_escaped(line_t *l, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char e[8];
		if (c == '"' || c == '\\') {
			e[0] = '\\';
			e[1] = (char)c;
			add(l, e, 2);
		} else if (c == '\n') {
			add(l, "\\n", 2);
		} else if (c == '\t') {
			add(l, "\\t", 2);
		} else if (c < 0x20) {
			snprintf(e, sizeof e, "\\u%04x", c);
			add(l, e, 6);
		} else {
			add(l, (const char *)&c, 1);
		}
	}
}

static void add_field(line_t *l, const char *name, const char *value)
{
	adds(l, ",\"");
	adds(l, name);
	adds(l, "\":\"");
	add_escaped(l, value);
	adds(l, "\"");
}

static void emit(const void *actor, int lvl, const char *fmt, va_list ap)
{
	char msg[1024];
	int m = vsnprintf(msg, sizeof msg, fmt, ap);
	if (m < 0)
		msg[0] = '\0';
	line_t l;
	l.len = 0;
	if (!__atomic_load_n(&json, __ATOMIC_RELAXED)) {
		adds(&l, "skald ");
		adds(&l, level_names[lvl & 3]);
		adds(&l, ": ");
		adds(&l, msg);
	} else {
		struct timespec ts;
		struct tm tm;
		char t[40];
		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		size_t n = strftime(t, sizeof t, "%Y-%m-%dT%H:%M:%S", &tm);
		snprintf(t + n, sizeof t - n, ".%03ldZ", ts.tv_nsec / 1000000);
		adds(&l, "{\"time\":\"");
		adds(&l, t);
		adds(&l, "\",\"level\":\"");
		adds(&l, level_names[lvl & 3]);
		adds(&l, "\"");
		static const char *const names[] = {"node", "actor", "persistence_id"};
		for (int f = 0; actor != NULL && f < SKALD__LOG_FIELDS; f++) {
			skald__log_hook_fn fn = atomic_load(&hooks[f]);
			char v[512] = "";
			if (fn != NULL)
				fn(actor, f, v, sizeof v);
			if (v[0] != '\0')
				add_field(&l, names[f], v);
		}
		add_field(&l, "msg", msg);
		adds(&l, "}");
	}
	l.buf[l.len++] = '\n';
	write_line(l.buf, l.len);
}

void skald__log(int lvl, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	emit(skald__log_actor, lvl, fmt, ap);
	va_end(ap);
}

void skald__log_at(const void *a, int lvl, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	emit(a, lvl, fmt, ap);
	va_end(ap);
}
