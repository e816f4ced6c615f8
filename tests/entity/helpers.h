/*
 * tests/entity/helpers.h - fixtures of the persistent-actor (entity) suite.
 *
 * The journal under test is named by SKALD_TEST_STORE; without it every
 * test gets its own memory://entity-PID-N. Entity ids carry the process id,
 * a random number and a counter, so the suite may run in parallel processes
 * against one shared database.
 *
 * Criterion asserts only on the test's own thread: code on scheduler threads
 * records broken expectations with CHECK(), and the test reports them with
 * checks_ok(). Every wait is bounded: AWAIT() fails the test when its
 * condition is not met in time.
 *
 * Pieces:
 *   - a test loop of the test's own (jl_*) to write and read the journal
 *     directly, as a tool or another node would;
 *   - "acc", the entity under test (acc.c): it applies "acc.added" events
 *     {"v": N} and keeps counters that let a test see what happened;
 *   - an observer actor that spawns entities and watches them, recording
 *     every down notice with its reason;
 *   - "entprobe:", a store that wraps the store under test (probe.c): it
 *     records when writes are committed and can fail writes or snapshot
 *     saves on demand.
 */
#ifndef SKALD_TESTS_ENTITY_HELPERS_H
#define SKALD_TESTS_ENTITY_HELPERS_H

#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "skald/entity.h"
#include "skald/store.h"
#include "tests/include/skald_test.h"

/* The bound of an ordinary wait: generous for a sanitizer build on a loaded
 * two-core machine, well inside the suite's timeout. */
#define WAIT_MS 20000
/* Test suites' timeout in seconds. */
#define SUITE_TIMEOUT 120

/* An error code no Skald or libuv function returns: the failure of a test's
 * own callback, so that it cannot be confused with the runtime's. */
#define TEST_ERR (-7001)

/* ------------------------------------------------------------------------ */
/* Basics                                                                    */

/* The .init of every suite: registers message types and the probe store,
 * resets the counters below, picks this test's journal URI. */
void entity_fixture(void);

/* The journal URI of this test: SKALD_TEST_STORE, or memory://entity-PID-N
 * drawn by entity_fixture. Borrowed. */
const char *store_uri(void);

/* The same journal seen through the probe store ("entprobe:" + store_uri()).
 * Borrowed. */
const char *probe_store_uri(void);

/* Writes a fresh entity id "TAG-PID-RANDOM-COUNTER" into buf. */
void unique_id(char *buf, size_t len, const char *tag);

/* A running system on journal uri with `threads` schedulers; fails the test
 * if it cannot start. */
skald_system_t *sys_start(const char *uri, unsigned threads);

/* In a build with AddressSanitizer (make SANITIZE=address,...), runs the
 * leak checker now and fails the test if memory that nothing references
 * any more was left behind; a no-op otherwise. Called by every test once
 * its system is stopped and its loops are closed. */
void assert_no_leaks(void);

/* The end of every test: no broken CHECK, nothing leaked. */
#define test_end()                                                                                 \
	do {                                                                                       \
		checks_ok();                                                                       \
		assert_no_leaks();                                                                 \
	} while (0)

/* ------------------------------------------------------------------------ */
/* The test's own loop and journal handle                                    */

typedef struct jloop_s {
	uv_loop_t loop;
	uv_timer_t guard; /* unref'd: bounds every wait without keeping the loop */
	int expired;
	skald_journal_t *j;
} jloop_t;

/* One event as read back. */
typedef struct rec_s {
	uint64_t seq;
	char type[48];
	int version;
	long v; /* data["v"], or -1 when absent */
	uint64_t writer;
} rec_t;

/* Opens uri on a fresh loop of the test's own; fails the test on error. */
void jl_open(jloop_t *l, const char *uri);
/* Closes the handle and asserts the loop closes cleanly (nothing leaked). */
void jl_close(jloop_t *l);
/* Runs the loop until *flag is non-zero; fails the test after WAIT_MS or if
 * the loop runs dry first. */
void jl_run_until(jloop_t *l, const int *flag);

/* Every event of pid, in the order read, into a malloc'ed array (*out, to
 * free; NULL when there are none). Returns the count. Fails the test if the
 * read fails. */
size_t jl_read(jloop_t *l, const char *pid, rec_t **out);
/* The highest seq of pid. */
uint64_t jl_highest(jloop_t *l, const char *pid);
/* Appends one atomic write of n events of `type`/`version` to pid after
 * expected_seq, with data {field: first + i}; fails the test unless stored. */
void jl_append(jloop_t *l, const char *pid, uint64_t expected_seq, size_t n, const char *type,
               int version, const char *field, long first);
/* Loads the latest snapshot of pid with seq <= max_seq: returns 1 and fills
 * *seq and *data (an owned reference) when there is one, 0 when there is
 * none. */
int jl_snapshot_load(jloop_t *l, const char *pid, uint64_t max_seq, uint64_t *seq, json_t **data);
/* Polls the latest snapshot of pid until its seq is `seq` (bounded); fails
 * the test otherwise. Snapshots are saved after the persist callback, so a
 * reply sent from the callback may overtake the save. */
void jl_await_snapshot(jloop_t *l, const char *pid, uint64_t seq);
/* Deletes the events of pid up to `to`. */
void jl_delete_to(jloop_t *l, const char *pid, uint64_t to);
/* Asserts that pid holds the history of a C_LOOP entity that saw `acked`
 * writes acknowledged: v = seq = 1, 2, ... up to acked, and at most one
 * event beyond (a write answered "failed", or in flight when the system
 * stopped). Returns the number of events. */
size_t jl_check_loop_history(jloop_t *l, const char *pid, long acked);

/* ------------------------------------------------------------------------ */
/* Messages                                                                  */

/* Commands to the acc entity and to the observer (payload cmd_t *, freed by
 * the runtime), and replies (payload reply_t *). */
extern uint32_t T_CMD, T_REPLY;

enum {
	C_ADD = 1,       /* persist {"v": v}; replies after the persist callback */
	C_GET,           /* replies with the state at once */
	C_BATCH,         /* persist_all of n events v..v+n-1 */
	C_BATCH_NONOBJ,  /* persist_all of n events, the middle one's data not an
	                    object: replies with the call's return code */
	C_BATCH_BADUTF8, /* persist_all of n events, the middle one's data holding
	                    invalid UTF-8 (the store must reject it) */
	C_DOUBLE,        /* persist v, then at once v + 1: rc2 is the second call's
	                    code; replies after the first callback */
	C_SNAPSHOT,      /* skald_entity_snapshot: replies with its code */
	C_LOOP,          /* persist v, v + 1, ... forever, each from the previous
	                    callback; no reply */
	C_BADARGS,       /* malformed persists (n 0, no type, NULL data): replies
	                    with the first unexpected code, 0 if all were EINVAL */
	/* Observer commands */
	O_SPAWN,   /* spawn entity (type, id) pinned to the observer's
	              thread and watch it; replies with the ref */
	O_WATCH,   /* watch ref */
	O_PERSIST, /* call skald_persist & co. from this non-entity actor */
};

typedef struct cmd_s {
	int op;
	long v, n;
	const skald_entity_type_t *type;
	char id[128];
	skald_ref_t ref;
} cmd_t;

/* ------------------------------------------------------------------------ */
/* The acc entity                                                            */

/* Domain state: what apply builds, the same live and in replay. */
typedef struct acc_dom_s {
	long count;     /* "acc.added" events applied */
	long sum;       /* sum of their v */
	long last_v;    /* v of the latest */
	long bad_order; /* events whose v was not last_v + 1 */
	uint64_t last_seq;
	long seq_gaps;             /* events whose seq was not last_seq + 1 */
	long v1_events, v2_events; /* by schema version */
	long bad_legacy;           /* "acc.legacy" events that apply saw un-upcast */
} acc_dom_t;

typedef struct acc_s {
	acc_dom_t d;
	/* Instrumentation, outside the domain state. */
	int idx;                    /* the number at the end of the id */
	int recovered;              /* times the recovered callback ran */
	long count_at_recovered;    /* d.count when it ran */
	long cmds;                  /* commands handled */
	long cmds_before_recovered; /* commands handled before it ran */
	int restored;               /* restore ran */
	long restored_count;        /* d.count taken from the snapshot */
	long applied_after_restore; /* events applied after restore */
	long cb_ok, cb_failed;      /* persist callbacks by outcome */
	int last_status;
	/* The record of the persist in flight. A callback never runs for a
	 * write still in flight when the entity stops, so fini frees it. */
	void *inflight;
} acc_t;

typedef struct reply_s {
	int rc;       /* the command's own code */
	int rc2;      /* C_DOUBLE: the second persist's code */
	int status;   /* the persist callback's status */
	uint64_t seq; /* skald_entity_seq */
	acc_t st;
	skald_ref_t ref;
	char pid[192];
	char eid[160];
} reply_t;

/* With snapshots (on demand only), with recovered. */
extern const skald_entity_type_t acc_type;
/* As acc_type, with snapshot_every = 5 and snapshot_version = 3. */
extern const skald_entity_type_t acc_every5_type;
/* Without snapshot callbacks. */
extern const skald_entity_type_t acc_nosnap_type;

/* Process-wide observations of the acc callbacks. */
extern atomic_long g_apply_calls;
extern atomic_long g_recovered_calls;
extern atomic_long g_restore_calls;
extern atomic_int g_restore_version; /* version restore was given */
/* C_LOOP: the highest v acknowledged (callback with 0) by entity idx. */
#define MAX_ENTITIES 128
extern atomic_long g_acked[MAX_ENTITIES];
extern atomic_long g_acked_total;

/* While g_gate is set, apply of an event with seq 1 waits (bounded) before
 * applying; g_gate_hits counts applies that reached the closed gate. */
extern atomic_int g_gate;
extern atomic_int g_gate_hits;

/* What the snapshot callback does: 0 normal, SNAP_BADUTF8 adds a string the
 * store cannot encode, SNAP_FAIL returns TEST_ERR. */
enum { SNAP_OK = 0, SNAP_BADUTF8 = 1, SNAP_FAIL = 2 };
extern atomic_int g_snapshot_mode;
/* When set, restore fails with TEST_ERR. */
extern atomic_int g_restore_fail;

/* An ordered trace of commits (from the probe store), applies and persist
 * callbacks, for the tests of their order. Off unless g_trace_on. */
enum { TR_COMMIT = 1, TR_APPLY = 2, TR_CB = 3 };
extern atomic_int g_trace_on;
void trace_add(int kind, uint64_t seq);
/* Copies the trace into kinds/seqs (at most max); returns its length. */
size_t trace_get(int *kinds, uint64_t *seqs, size_t max);

/* ------------------------------------------------------------------------ */
/* Talking to entities                                                       */

/* Sends cmd (copied) as an ask and returns the reply (to free); fails the
 * test if the ask fails. */
reply_t *ask_cmd(skald_system_t *sys, skald_ref_t to, const cmd_t *cmd);
/* As ask_cmd, waiting up to ms for the reply. */
reply_t *ask_cmd_within(skald_system_t *sys, skald_ref_t to, const cmd_t *cmd, unsigned ms);
/* Shorthands. */
reply_t *ask_op(skald_system_t *sys, skald_ref_t to, int op, long v, long n);
/* Sends cmd as a tell; fails the test on error. */
void tell_op(skald_system_t *sys, skald_ref_t to, int op, long v, long n);
/* Asks C_GET until the entity has applied `count` events (bounded). Returns
 * the last reply. */
reply_t *await_count(skald_system_t *sys, skald_ref_t to, long count);

/* ------------------------------------------------------------------------ */
/* The observer                                                              */

typedef struct down_rec_s {
	skald_ref_t ref;
	int reason;
} down_rec_t;

/* Spawns the observer, pinned to scheduler thread 0. */
skald_ref_t observer_start(skald_system_t *sys);
/* Spawns the entity (type, id) through the observer, on its thread, and
 * watches it from before its first turn: its down notice cannot be missed. */
skald_ref_t spawn_watched(skald_system_t *sys, skald_ref_t observer,
                          const skald_entity_type_t *type, const char *id);
/* Waits (bounded) for the down notice of ref and returns its reason. */
int await_down(skald_ref_t ref);
/* As await_down, for the nth (from 0) notice of ref: one per watch. */
int await_down_nth(skald_ref_t ref, int nth);
/* Non-zero if a down notice of ref has arrived. */
int has_down(skald_ref_t ref);

/* ------------------------------------------------------------------------ */
/* The probe store (probe.c)                                                 */

/* Registers the "entprobe" scheme (idempotent). URI: entprobe:INNER_URI. */
void probe_register(void);
/* 0, or the error every append completes with (nothing is stored). */
extern atomic_int probe_fail_append;
/* 0, or the error every snapshot save completes with (nothing is saved). */
extern atomic_int probe_fail_snapshot;
/* 0, or the error every snapshot load / event read completes with. */
extern atomic_int probe_fail_snapshot_load;
extern atomic_int probe_fail_read;
/* Events the inner store confirmed, snapshot saves forwarded, and snapshot
 * saves failed on purpose. */
extern atomic_long probe_events_committed;
extern atomic_long probe_snapshots_forwarded;
extern atomic_long probe_snapshots_failed;

#endif /* SKALD_TESTS_ENTITY_HELPERS_H */
