/*
 * tests/mongo/mt.h - synchronous helpers over the journal for the MongoDB
 * store's own tests: each call starts one operation and runs the handle's
 * loop until it completes. Usable from any thread that owns its mt_t.
 */
#ifndef SKALD_TESTS_MONGO_MT_H
#define SKALD_TESTS_MONGO_MT_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "skald/journal.h"

typedef struct mt_s {
	uv_loop_t loop;
	skald_journal_t *j;
} mt_t;

/* One event read back: its persistence id, seq, offset and data's "n". */
typedef struct mt_ev_s {
	char *pid;
	uint64_t seq;
	uint64_t offset;
	int64_t n;
} mt_ev_t;

typedef struct mt_evs_s {
	mt_ev_t *ev;
	size_t n, cap;
} mt_evs_t;

/* mongodb://HOST:PORT of the test server, from SKALD_TEST_MONGO; NULL when
 * unset. */
const char *mt_server(void);

/* Writes into buf a journal URI on a database unique to this run:
 * SERVER/mt_NAME_PID_RAND[?opts]. */
void mt_uri(char *buf, size_t len, const char *server, const char *name, const char *opts);

/* Applies the store's migrations to uri; returns 0 or the error code (the
 * message in err). */
int mt_migrate(const char *uri, char *err, size_t errlen);

int mt_open(mt_t *t, const char *uri);
/* Closes the handle and the loop; returns uv_loop_close's result. */
int mt_close(mt_t *t);

/* Appends n events seq expected+1.. to pid in one atomic write, with data
 * {"n": tag + i}. Returns the write's status. */
int mt_append(mt_t *t, const char *pid, uint64_t expected, size_t n, int64_t tag);
/* Appends writes in one call; returns the call's status (writes[] carry
 * theirs). Each write's events must be set by the caller. */
int mt_append_writes(mt_t *t, skald_write_t *writes, size_t n);
int mt_highest(mt_t *t, const char *pid, uint64_t *seq);
int mt_read(mt_t *t, const char *pid, uint64_t from, uint64_t to, mt_evs_t *out);
int mt_read_all(mt_t *t, uint64_t after, uint64_t max, mt_evs_t *out);
void mt_evs_free(mt_evs_t *e);

/* Milliseconds of a monotonic clock. */
int64_t mt_now_ms(void);

#endif
