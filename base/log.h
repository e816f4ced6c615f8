/*
 * base/log.h - logging to stderr for every layer. Never installed.
 *
 * The level comes from SKALD_LOG=debug|info|warn|error (default: warn), the
 * format from SKALD_LOG_FORMAT=text|json (default: text), both read once.
 * A text line is "skald LEVEL: message". A json line is one object:
 *
 *   {"time":"2024-05-01T12:00:00.123Z","level":"error","node":"9f0c...",
 *    "actor":"9f0c....12.1","persistence_id":"game-7","msg":"..."}
 *
 * with node, actor and persistence_id present only where the line is
 * written for an actor (docs/OPERATIONS.md). Thread-safe: a line is written
 * with one write(2), so lines of different threads never interleave.
 */
#ifndef SKALD_BASE_LOG_H
#define SKALD_BASE_LOG_H

#include <stddef.h>

enum { SKALD_LOG_DEBUG, SKALD_LOG_INFO, SKALD_LOG_WARN, SKALD_LOG_ERROR };

int skald__log_enabled(int level);
void skald__log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* As skald__log, for the actor a (an opaque pointer to the upper layers'
 * actor) although it is not the one running on this thread: a journal
 * completion, say. */
void skald__log_at(const void *a, int level, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* " (detail)", or "" when detail is empty or NULL: for a backend's message
 * that may be missing, so that a line never ends in "()". Written into buf
 * (len bytes), which is returned. */
const char *skald__log_paren(const char *detail, char *buf, size_t len);

#define SKALD_LOG(level, ...)                                                                      \
	do {                                                                                       \
		if (skald__log_enabled(level))                                                     \
			skald__log(level, __VA_ARGS__);                                            \
	} while (0)

#define SKALD_LOG_AT(actor, level, ...)                                                            \
	do {                                                                                       \
		if (skald__log_enabled(level))                                                     \
			skald__log_at(actor, level, __VA_ARGS__);                                  \
	} while (0)

/*
 * Context of the lines. The runtime points skald__log_actor at the actor
 * whose turn runs on this thread (NULL between turns); upper layers install
 * hooks that describe such an actor: the runtime its node and reference,
 * the journal its persistence id. Each hook writes NUL-terminated text into
 * the buffer it is given, or leaves it empty.
 */
extern _Thread_local const void *skald__log_actor;

enum { SKALD__LOG_NODE, SKALD__LOG_ACTOR, SKALD__LOG_PID, SKALD__LOG_FIELDS };
typedef void (*skald__log_hook_fn)(const void *actor, int field, char *buf, size_t len);
/* Installs fn for field (the last install wins). Any thread. */
void skald__log_hook(int field, skald__log_hook_fn fn);

#endif /* SKALD_BASE_LOG_H */
