/*
 * tests/stores/harness.h - the harness of the store conformance suite
 * (tests/stores) and of the journal front's suite (tests/journal).
 *
 * The store under test is named by SKALD_TEST_STORE (default
 * memory://conformance-PID). Each test owns its loop (tctx_t), counts its
 * callbacks (every completion must run exactly once, and never before the
 * call that started it returned: RUN), and ends with t_close, which asserts
 * that the loop closes cleanly. Persistence ids are made unique by test
 * name, process id and a random number (pid_of), so tests may run in
 * parallel against one shared database.
 */
#ifndef SKALD_TESTS_STORES_HARNESS_H
#define SKALD_TESTS_STORES_HARNESS_H

#include <criterion/criterion.h>
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "skald/journal.h"
#include "skald/store.h"

#define INF      SKALD_SEQ_MAX
#define WAIT_MS  30000
#define TEST_OPT .timeout = 120

/* A test's loop and journal handle. */
typedef struct tctx_s {
	uv_loop_t loop;
	skald_journal_t *j;
	uv_timer_t guard;
	int expired;
	char prefix[160];
} tctx_t;

/* One event a read delivered, copied. */
typedef struct got_s {
	char *pid;
	uint64_t seq;
	char *type;
	int version;
	json_t *data;
	int64_t timestamp;
	uint64_t writer;
	uint64_t offset;
} got_t;

/* One operation's outcome, filled by the on_* callbacks below. */
typedef struct call_s {
	int returned; /* set as soon as the starting call returned */
	int calls;    /* completions */
	int status;
	uint64_t seq;
	/* streamed reads */
	got_t *ev;
	size_t nev, cap;
	size_t batches;
	size_t stop_after; /* on_events returns stop_rc after this many */
	int stop_rc;
	/* list_ids */
	char **ids;
	uint64_t *highs;
	size_t nids;
	/* snapshot_load */
	int found;
	skald_snapshot_t snap; /* strings and data owned */
} call_t;

/* Starts an operation, marks when it returned, and waits for exactly one
 * completion. */
#define RUN(t, c, expr)                                                                            \
	do {                                                                                       \
		int rc_ = (expr);                                                                  \
		cr_assert_eq(rc_, 0, "%s returned %d: %s", #expr, rc_,                             \
		             skald_journal_errmsg((t)->j));                                        \
		(c)->returned = 1;                                                                 \
		run_until((t), &(c)->calls, 1);                                                    \
	} while (0)

/* The type and writer of the events append_n writes. */
#define TYPE_COUNTED "conformance.counted"
#define WRITER       0x5ca1dull

/* The URI of the store under test: SKALD_TEST_STORE or
 * memory://conformance-PID. Borrowed. */
const char *store_uri(void);

/* A random number (uv_random, else the clock). */
uint32_t rand32(void);

/* Wall-clock milliseconds since the Unix epoch. */
int64_t now_ms(void);

/* Runs t's loop until *counter reaches target, then a few more iterations
 * to catch a second completion, and asserts exactly target. Fails if the
 * loop runs dry or WAIT_MS pass first. */
void run_until(tctx_t *t, const int *counter, int target);

/* Opens t on its own loop with the journal at uri (t_open: store_uri()),
 * and draws t's persistence id prefix from name. */
void t_open_uri(tctx_t *t, const char *name, const char *uri);
void t_open(tctx_t *t, const char *name);

/* A close callback: counts into the int at arg. */
void on_closed(skald_journal_t *j, void *arg);

/* Closes t's journal, waits for the close, and asserts that the loop
 * closes with nothing left on it. */
void t_close(tctx_t *t);

/* A persistence id unique to this test run: t's prefix and suffix, in buf
 * (len bytes). Returns buf. */
const char *pid_of(tctx_t *t, const char *suffix, char *buf, size_t len);

/* Releases what c holds, and zeroes it. */
void call_free(call_t *c);

/* Counts a completion of c, asserting that its call returned first. */
void completed(call_t *c);

/* Journal callbacks that record into the call_t at arg. */
void on_done(skald_journal_t *j, int status, void *arg);
void on_seq(skald_journal_t *j, int status, uint64_t seq, void *arg);
void on_append(skald_journal_t *j, int status, skald_write_t *w, size_t n, void *arg);
int on_events(skald_journal_t *j, const skald_event_t *ev, size_t n, void *arg);
int on_ids(skald_journal_t *j, const skald_persistence_id_t *ids, size_t n, void *arg);
void on_snapshot(skald_journal_t *j, int status, const skald_snapshot_t *snap, void *arg);

/* Appends events seq expected+1 .. expected+n in one atomic write; data is
 * {"n": seq}. Returns the status. */
int append_n(tctx_t *t, const char *pid, uint64_t expected, size_t n);

/* Reads pid's events (from, to, max) into c. */
void read_range(tctx_t *t, const char *pid, uint64_t from, uint64_t to, uint64_t max, call_t *c);

/* Asserts that c read exactly seq first..last of pid (none if first > last),
 * written by append_n. */
void expect_seqs(const call_t *c, const char *pid, uint64_t first, uint64_t last);

/* pid's highest seq; asserts that the call succeeded. */
uint64_t highest(tctx_t *t, const char *pid);

/* Deletes pid's events up to `to`; returns the status. */
int delete_to(tctx_t *t, const char *pid, uint64_t to);

/* Writes seq 1..5 of pid as the batches [1], [2], [3], [4, 5]. */
void write_five(tctx_t *t, const char *pid);

/* The offset just before pid's first event (its seq 1), or 0 when the store
 * does not report offsets: where a read_all of this test's events starts. */
uint64_t offset_before(tctx_t *t, const char *pid);

/* Saves doc as pid's snapshot at seq 1 (as_snapshot) or appends it as
 * pid's only event; returns the status. doc is borrowed. */
int keep_doc(tctx_t *t, const char *pid, json_t *doc, int as_snapshot);

/* What pid holds: its latest snapshot's data or its only event's (a new
 * reference), NULL when nothing is stored; asserts that the read worked. */
json_t *kept_doc(tctx_t *t, const char *pid, int as_snapshot);

#endif /* SKALD_TESTS_STORES_HARNESS_H */
