/*
 * tests/stores/conformance.c - the suite every journal store must pass.
 *
 * Runs against the store named by SKALD_TEST_STORE (default
 * memory://conformance-PID), e.g.
 *	SKALD_TEST_STORE=memory://x build/tests/stores
 * The URI must name shared data: some tests open it twice and expect both
 * handles to see the same events. Every test uses persistence ids (and event
 * type names) made unique by test name, process id and a random number, so
 * tests may run in parallel against one shared database.
 *
 * Each test owns its loop, counts its callbacks (every completion must run
 * exactly once, and never before the call that started it returned), and
 * ends by asserting that the loop closes cleanly.
 *
 * The "registry" suite at the end checks store registration and URI
 * selection; it uses the built-in memory store whatever SKALD_TEST_STORE is.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "skald/journal.h"
#include "skald/store.h"

#include "jsongen.h"

#define INF      SKALD_SEQ_MAX
#define WAIT_MS  30000
#define TEST_OPT .timeout = 120

/* ------------------------------------------------------------------------ */
/* Harness                                                                   */

typedef struct tctx_s {
	uv_loop_t loop;
	skald_journal_t *j;
	uv_timer_t guard;
	int expired;
	char prefix[160];
} tctx_t;

static const char *store_uri(void)
{
	static char buf[64];
	const char *u = getenv("SKALD_TEST_STORE");
	if (u && *u)
		return u;
	snprintf(buf, sizeof buf, "memory://conformance-%d", (int)getpid());
	return buf;
}

static uint32_t rand32(void)
{
	uint32_t r = 0;
	if (uv_random(NULL, NULL, &r, sizeof r, 0, NULL) != 0)
		r = (uint32_t)time(NULL) ^ (uint32_t)clock();
	return r;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_guard(uv_timer_t *timer)
{
	tctx_t *t = timer->data;
	t->expired = 1;
}

/* Runs t's loop until *counter reaches target, then a few more iterations
 * to catch a second completion, and asserts exactly target. Fails if the
 * loop runs dry or WAIT_MS pass first. */
static void run_until(tctx_t *t, const int *counter, int target)
{
	t->expired = 0;
	uv_timer_start(&t->guard, on_guard, WAIT_MS, 0);
	while (*counter < target && !t->expired) {
		if (uv_run(&t->loop, UV_RUN_ONCE) == 0 && *counter < target)
			break;
	}
	uv_timer_stop(&t->guard);
	cr_assert_geq(*counter, target, "%s: %d of %d callbacks arrived",
	              t->expired ? "timed out" : "the loop ran dry", *counter, target);
	for (int i = 0; i < 3; i++)
		uv_run(&t->loop, UV_RUN_NOWAIT);
	cr_assert_eq(*counter, target, "a callback ran %d times, expected %d", *counter, target);
}

static void t_open_uri(tctx_t *t, const char *name, const char *uri)
{
	memset(t, 0, sizeof *t);
	cr_assert_eq(uv_loop_init(&t->loop), 0);
	uv_timer_init(&t->loop, &t->guard);
	t->guard.data = t;
	/* The guard must not keep the loop alive, or a lost callback would look
	 * like a slow one. */
	uv_unref((uv_handle_t *)&t->guard);
	int rc = skald_journal_open(&t->loop, uri, &t->j);
	cr_assert_eq(rc, 0, "open %s: %d: %s", uri, rc, skald_journal_open_errmsg());
	cr_assert_not_null(t->j);
	snprintf(t->prefix, sizeof t->prefix, "%s-%d-%08x-", name, (int)getpid(), rand32());
}

static void t_open(tctx_t *t, const char *name)
{
	t_open_uri(t, name, store_uri());
}

static void on_closed(skald_journal_t *j, void *arg)
{
	(*(int *)arg)++;
}

static void t_close(tctx_t *t)
{
	int closed = 0;
	cr_assert_eq(skald_journal_close(t->j, on_closed, &closed), 0);
	cr_assert_eq(closed, 0, "close completed before skald_journal_close returned");
	run_until(t, &closed, 1);
	t->j = NULL;
	uv_close((uv_handle_t *)&t->guard, NULL);
	uv_run(&t->loop, UV_RUN_DEFAULT);
	cr_assert_eq(uv_loop_close(&t->loop), 0, "handles left on the loop");
}

/* A persistence id unique to this test run. */
static const char *pid_of(tctx_t *t, const char *suffix, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s", t->prefix, suffix);
	return buf;
}

/* ------------------------------------------------------------------------ */
/* One operation's outcome                                                   */

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

static void call_free(call_t *c)
{
	for (size_t i = 0; i < c->nev; i++) {
		free(c->ev[i].pid);
		free(c->ev[i].type);
		json_decref(c->ev[i].data);
	}
	free(c->ev);
	for (size_t i = 0; i < c->nids; i++)
		free(c->ids[i]);
	free(c->ids);
	free(c->highs);
	free((char *)c->snap.persistence_id);
	json_decref(c->snap.data);
	memset(c, 0, sizeof *c);
}

static void completed(call_t *c)
{
	cr_assert(c->returned, "a completion ran before its call returned");
	c->calls++;
}

static void on_done(skald_journal_t *j, int status, void *arg)
{
	call_t *c = arg;
	completed(c);
	c->status = status;
}

static void on_seq(skald_journal_t *j, int status, uint64_t seq, void *arg)
{
	call_t *c = arg;
	completed(c);
	c->status = status;
	c->seq = seq;
}

static void on_append(skald_journal_t *j, int status, skald_write_t *w, size_t n, void *arg)
{
	call_t *c = arg;
	completed(c);
	c->status = status;
}

static int on_events(skald_journal_t *j, const skald_event_t *ev, size_t n, void *arg)
{
	call_t *c = arg;
	cr_assert(c->returned, "a batch arrived before the read call returned");
	cr_assert_eq(c->calls, 0, "a batch arrived after the read completed");
	cr_assert_gt(n, 0, "an empty batch");
	c->batches++;
	if (c->nev + n > c->cap) {
		c->cap = (c->nev + n) * 2;
		c->ev = realloc(c->ev, c->cap * sizeof *c->ev);
		cr_assert_not_null(c->ev);
	}
	for (size_t i = 0; i < n; i++) {
		/* Borrowed for the callback: keep copies, and a reference. */
		c->ev[c->nev++] = (got_t){strdup(ev[i].persistence_id),
		                          ev[i].seq,
		                          strdup(ev[i].type),
		                          ev[i].version,
		                          json_incref(ev[i].data),
		                          ev[i].timestamp,
		                          ev[i].writer,
		                          ev[i].offset};
	}
	if (c->stop_after && c->batches >= c->stop_after)
		return c->stop_rc;
	return 0;
}

static int on_ids(skald_journal_t *j, const skald_persistence_id_t *ids, size_t n, void *arg)
{
	call_t *c = arg;
	cr_assert(c->returned, "a batch arrived before the list call returned");
	cr_assert_gt(n, 0, "an empty batch");
	c->batches++;
	c->ids = realloc(c->ids, (c->nids + n) * sizeof *c->ids);
	c->highs = realloc(c->highs, (c->nids + n) * sizeof *c->highs);
	for (size_t i = 0; i < n; i++) {
		c->ids[c->nids] = strdup(ids[i].persistence_id);
		c->highs[c->nids++] = ids[i].highest_seq;
	}
	return 0;
}

static void on_snapshot(skald_journal_t *j, int status, const skald_snapshot_t *snap, void *arg)
{
	call_t *c = arg;
	completed(c);
	c->status = status;
	if (snap) {
		c->found = 1;
		c->snap = *snap;
		c->snap.persistence_id = strdup(snap->persistence_id);
		c->snap.data = json_incref(snap->data);
	}
}

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

/* ------------------------------------------------------------------------ */
/* Synchronous helpers                                                       */

#define TYPE_COUNTED "conformance.counted"
#define WRITER       0x5ca1dull

/* Appends events seq expected+1 .. expected+n in one atomic write; data is
 * {"n": seq}. Returns the status. */
static int append_n(tctx_t *t, const char *pid, uint64_t expected, size_t n)
{
	skald_event_t *ev = calloc(n, sizeof *ev);
	for (size_t i = 0; i < n; i++) {
		ev[i].type = TYPE_COUNTED;
		ev[i].version = 1;
		ev[i].data = json_pack("{sI}", "n", (json_int_t)(expected + 1 + i));
		ev[i].writer = WRITER;
	}
	skald_write_t w = {pid, expected, ev, n, 1};
	call_t c = {0};
	RUN(t, &c, skald_journal_append(t->j, &w, 1, on_append, &c));
	cr_assert_eq(w.status, c.status, "single write: overall and write status differ");
	for (size_t i = 0; i < n; i++)
		json_decref(ev[i].data);
	free(ev);
	return c.status;
}

static void read_range(tctx_t *t, const char *pid, uint64_t from, uint64_t to, uint64_t max,
                       call_t *c)
{
	RUN(t, c, skald_journal_read(t->j, pid, from, to, max, on_events, on_done, c));
}

/* Asserts that c read exactly seq first..last of pid (none if first > last),
 * written by append_n. */
static void expect_seqs(const call_t *c, const char *pid, uint64_t first, uint64_t last)
{
	cr_assert_eq(c->status, 0, "read failed: %d", c->status);
	size_t want = first > last ? 0 : (size_t)(last - first + 1);
	cr_assert_eq(c->nev, want, "read %zu events, expected %zu (seq %llu..%llu)", c->nev, want,
	             (unsigned long long)first, (unsigned long long)last);
	for (size_t i = 0; i < want; i++) {
		const got_t *g = &c->ev[i];
		cr_assert_eq(g->seq, first + i, "event %zu has seq %llu, expected %llu", i,
		             (unsigned long long)g->seq, (unsigned long long)(first + i));
		cr_assert_str_eq(g->pid, pid);
		json_int_t n = json_integer_value(json_object_get(g->data, "n"));
		cr_assert_eq((uint64_t)n, g->seq, "event seq %llu carries data of %lld",
		             (unsigned long long)g->seq, (long long)n);
	}
}

static uint64_t highest(tctx_t *t, const char *pid)
{
	call_t c = {0};
	RUN(t, &c, skald_journal_highest(t->j, pid, on_seq, &c));
	cr_assert_eq(c.status, 0, "highest failed: %d", c.status);
	return c.seq;
}

static int delete_to(tctx_t *t, const char *pid, uint64_t to)
{
	call_t c = {0};
	RUN(t, &c, skald_journal_delete_to(t->j, pid, to, on_done, &c));
	return c.status;
}

/* Writes seq 1..5 of pid as the batches [1], [2], [3], [4, 5]. */
static void write_five(tctx_t *t, const char *pid)
{
	cr_assert_eq(append_n(t, pid, 0, 1), 0);
	cr_assert_eq(append_n(t, pid, 1, 1), 0);
	cr_assert_eq(append_n(t, pid, 2, 1), 0);
	cr_assert_eq(append_n(t, pid, 3, 2), 0);
}

/* Opens, writes five events, replays (from, to, max) and expects first..last. */
static void replay_case(const char *name, uint64_t from, uint64_t to, uint64_t max, uint64_t first,
                        uint64_t last)
{
	tctx_t t;
	char pid[256];
	t_open(&t, name);
	pid_of(&t, "a", pid, sizeof pid);
	write_five(&t, pid);
	call_t c = {0};
	read_range(&t, pid, from, to, max, &c);
	expect_seqs(&c, pid, first, last);
	call_free(&c);
	t_close(&t);
}

/* ------------------------------------------------------------------------ */
/* Journal: replay ranges (Akka JournalSpec)                                 */

Test(journal, replay_all_events, TEST_OPT)
{
	replay_case("replay_all", 1, INF, INF, 1, 5);
}

Test(journal, replay_from_a_seq, TEST_OPT)
{
	replay_case("replay_from", 3, INF, INF, 3, 5);
}

Test(journal, replay_to_a_seq, TEST_OPT)
{
	replay_case("replay_to", 1, 3, INF, 1, 3);
}

Test(journal, replay_at_most_max, TEST_OPT)
{
	replay_case("replay_max", 1, INF, 3, 1, 3);
}

Test(journal, replay_between_two_seqs, TEST_OPT)
{
	replay_case("replay_between", 2, 3, INF, 2, 3);
}

Test(journal, replay_range_cut_by_max, TEST_OPT)
{
	replay_case("replay_range_max", 2, 5, 2, 2, 3);
}

Test(journal, replay_a_single_event, TEST_OPT)
{
	replay_case("replay_single", 2, 2, INF, 2, 2);
}

Test(journal, replay_max_one, TEST_OPT)
{
	replay_case("replay_max_one", 2, 4, 1, 2, 2);
}

Test(journal, replay_max_zero_reads_nothing, TEST_OPT)
{
	replay_case("replay_max_zero", 2, 4, 0, 1, 0);
}

Test(journal, replay_from_after_to_reads_nothing, TEST_OPT)
{
	replay_case("replay_inverted", 3, 2, INF, 1, 0);
}

Test(journal, replay_to_beyond_highest_is_clamped, TEST_OPT)
{
	replay_case("replay_clamped", 4, 1000, INF, 4, 5);
}

Test(journal, replay_from_zero_means_one, TEST_OPT)
{
	replay_case("replay_from_zero", 0, 2, INF, 1, 2);
}

Test(journal, unknown_id_has_no_events_and_highest_zero, TEST_OPT)
{
	tctx_t t;
	char pid[256];
	t_open(&t, "unknown_id");
	pid_of(&t, "never-written", pid, sizeof pid);
	call_t c = {0};
	read_range(&t, pid, 1, INF, INF, &c);
	expect_seqs(&c, pid, 1, 0);
	cr_assert_eq(c.batches, 0);
	call_free(&c);
	cr_assert_eq(highest(&t, pid), 0);
	t_close(&t);
}

Test(journal, highest_is_the_last_seq_written, TEST_OPT)
{
	tctx_t t;
	char pid[256];
	t_open(&t, "highest");
	pid_of(&t, "a", pid, sizeof pid);
	write_five(&t, pid);
	cr_assert_eq(highest(&t, pid), 5);
	t_close(&t);
}

Test(journal, replayed_events_carry_every_field, TEST_OPT)
{
	tctx_t t;
	char pid[256];
	t_open(&t, "fields");
	pid_of(&t, "a", pid, sizeof pid);
	int64_t before = now_ms();
	skald_event_t ev[2] = {
	        {.type = "conformance.first", .version = 3, .writer = 77},
	        {.type = "conformance.second",
	         .version = 0,
	         .writer = 78,
	         .timestamp = 1234567890123},
	};
	ev[0].data = json_pack("{ss}", "k", "v");
	ev[1].data = json_pack("{sb}", "ok", 1);
	skald_write_t w = {pid, 0, ev, 2, 0};
	call_t a = {0};
	RUN(&t, &a, skald_journal_append(t.j, &w, 1, on_append, &a));
	int64_t after = now_ms();
	cr_assert_eq(a.status, 0, "%s", skald_journal_errmsg(t.j));
	/* The journal fills its defaults into the caller's envelopes. */
	cr_assert_eq(ev[0].seq, 1);
	cr_assert_eq(ev[1].seq, 2);
	cr_assert_eq(ev[1].version, 1, "version 0 means 1");
	cr_assert(ev[0].timestamp >= before - 1000 && ev[0].timestamp <= after + 1000);
	cr_assert_eq(ev[1].timestamp, 1234567890123, "a given timestamp is kept");
	cr_assert_str_eq(ev[0].persistence_id, pid);

	call_t c = {0};
	read_range(&t, pid, 1, INF, INF, &c);
	cr_assert_eq(c.nev, 2);
	cr_assert_str_eq(c.ev[0].type, "conformance.first");
	cr_assert_eq(c.ev[0].version, 3);
	cr_assert_eq(c.ev[0].writer, 77);
	cr_assert_eq(c.ev[0].timestamp, ev[0].timestamp);
	cr_assert(json_equal(c.ev[0].data, ev[0].data));
	cr_assert_str_eq(c.ev[1].type, "conformance.second");
	cr_assert_eq(c.ev[1].version, 1);
	cr_assert_eq(c.ev[1].writer, 78);
	cr_assert_eq(c.ev[1].timestamp, 1234567890123);
	cr_assert(json_equal(c.ev[1].data, ev[1].data));
	cr_assert_gt(c.ev[0].offset, 0, "a stored event has a global offset");
	cr_assert_gt(c.ev[1].offset, c.ev[0].offset, "offsets follow seq within an id");
	if (ev[0].offset)
		cr_assert_eq(ev[0].offset, c.ev[0].offset,
		             "the offset given at append is the one read");
	call_free(&c);
	json_decref(ev[0].data);
	json_decref(ev[1].data);
	t_close(&t);
}

/* ------------------------------------------------------------------------ */
/* Journal: deletion                                                         */

Test(journal, delete_to_hides_events_and_keeps_highest, TEST_OPT)
{
	tctx_t t;
	char pid[256];
	t_open(&t, "delete_to");
	pid_of(&t, "a", pid, sizeof pid);
	write_five(&t, pid);
	cr_assert_eq(delete_to(&t, pid, 3), 0);
	call_t c = {0};
	read_range(&t, pid, 1, INF, INF, &c);
	expect_seqs(&c, pid, 4, 5);
	call_free(&c);
	cr_assert_eq(highest(&t, pid), 5);
	t_close(&t);
}

Test(journal, delete_everything_keeps_highest, TEST_OPT)
{
	tctx_t t;
	char pid[256];
	t_open(&t, "delete_all");
	pid_of(&t, "a", pid, sizeof pid);
	write_five(&t, pid);
	cr_assert_eq(delete_to(&t, pid, INF), 0);
	call_t c = {0};
	read_range(&t, pid, 1, INF, INF, &c);
	expect_seqs(&c, pid, 1, 0);
	call_free(&c);
	cr_assert_eq(highest(&t, pid), 5);
	/* The next writer still expects the highest, which survived. */
	cr_assert_eq(append_n(&t, pid, 0, 1), SKALD_ECONFLICT);
	cr_assert_eq(append_n(&t, pid, 5, 1), 0);
	read_range(&t, pid, 1, INF, INF, &c);
	expect_seqs(&c, pid, 6, 6);
	call_free(&c);
	t_close(&t);
}

Test(journal, delete_twice_and_below_previous_is_harmless, TEST_OPT)
{
	tctx_t t;
	char pid[256];
	t_open(&t, "delete_twice");
	pid_of(&t, "a", pid, sizeof pid);
	write_five(&t, pid);
	cr_assert_eq(delete_to(&t, pid, 3), 0);
	cr_assert_eq(delete_to(&t, pid, 2), 0);
	cr_assert_eq(delete_to(&t, pid, 3), 0);
	call_t c = {0};
	read_range(&t, pid, 2, INF, INF, &c);
	expect_seqs(&c, pid, 4, 5);
	call_free(&c);
	char other[256];
	cr_assert_eq(delete_to(&t, pid_of(&t, "never", other, sizeof other), 10), 0);
	cr_assert_eq(highest(&t, other), 0);
	t_close(&t);
}

/* ------------------------------------------------------------------------ */
/* Journal: single writer, atomic writes, rejections                         */

Test(journal, append_with_stale_or_future_expected_seq_conflicts, TEST_OPT)
{
	tctx_t t;
	char pid[256];
	t_open(&t, "stale_seq");
	pid_of(&t, "a", pid, sizeof pid);
	write_five(&t, pid);
	cr_assert_eq(append_n(&t, pid, 3, 1), SKALD_ECONFLICT);
	cr_assert_gt(strlen(skald_journal_errmsg(t.j)), 0, "a conflict explains itself");
	cr_assert_eq(append_n(&t, pid, 7, 1), SKALD_ECONFLICT);
	cr_assert_eq(highest(&t, pid), 5);
	call_t c = {0};
	read_range(&t, pid, 1, INF, INF, &c);
	expect_seqs(&c, pid, 1, 5);
	call_free(&c);
	t_close(&t);
}

Test(journal, two_writers_with_one_expected_seq_only_one_wins, TEST_OPT)
{
	tctx_t t;
	char pid[256];
	t_open(&t, "two_writers");
	pid_of(&t, "a", pid, sizeof pid);
	cr_assert_eq(append_n(&t, pid, 0, 2), 0);
	/* Both writers believe the highest is 2 and append before either is
	 * confirmed. */
	skald_event_t e1 = {.type = TYPE_COUNTED, .writer = 1, .data = json_pack("{si}", "n", 3)};
	skald_event_t e2 = {.type = TYPE_COUNTED, .writer = 2, .data = json_pack("{si}", "n", 3)};
	skald_write_t w1 = {pid, 2, &e1, 1, 1}, w2 = {pid, 2, &e2, 1, 1};
	call_t c1 = {0}, c2 = {0};
	cr_assert_eq(skald_journal_append(t.j, &w1, 1, on_append, &c1), 0);
	c1.returned = 1;
	cr_assert_eq(skald_journal_append(t.j, &w2, 1, on_append, &c2), 0);
	c2.returned = 1;
	run_until(&t, &c1.calls, 1);
	run_until(&t, &c2.calls, 1);
	cr_assert((c1.status == 0 && c2.status == SKALD_ECONFLICT) ||
	                  (c2.status == 0 && c1.status == SKALD_ECONFLICT),
	          "statuses %d and %d: exactly one must win", c1.status, c2.status);
	call_t c = {0};
	read_range(&t, pid, 1, INF, INF, &c);
	expect_seqs(&c, pid, 1, 3);
	cr_assert_eq(c.ev[2].writer, c1.status == 0 ? 1 : 2, "the stored event is the winner's");
	call_free(&c);
	json_decref(e1.data);
	json_decref(e2.data);
	t_close(&t);
}

Test(journal, highest_issued_after_append_sees_it, TEST_OPT)
{
	tctx_t t;
	char pid[256];
	t_open(&t, "highest_after_append");
	pid_of(&t, "a", pid, sizeof pid);
	skald_event_t e = {.type = TYPE_COUNTED, .data = json_pack("{si}", "n", 1)};
	skald_write_t w = {pid, 0, &e, 1, 1};
	call_t a = {0}, h = {0};
	/* Akka's rule: a highest read racing an in-flight write must not miss
	 * it, or sequence numbers would be reused. */
	cr_assert_eq(skald_journal_append(t.j, &w, 1, on_append, &a), 0);
	cr_assert_eq(skald_journal_highest(t.j, pid, on_seq, &h), 0);
	a.returned = h.returned = 1;
	run_until(&t, &a.calls, 1);
	run_until(&t, &h.calls, 1);
	cr_assert_eq(a.status, 0);
	cr_assert_eq(h.seq, 1);
	json_decref(e.data);
	t_close(&t);
}

/* Appends [n=2, bad, n=4] after seq 1 and expects the whole write
 * rejected, nothing stored, and the seq numbers still free. */
static void rejected_batch_case(const char *name, json_t *bad)
{
	tctx_t t;
	char pid[256];
	t_open(&t, name);
	pid_of(&t, "a", pid, sizeof pid);
	cr_assert_eq(append_n(&t, pid, 0, 1), 0);
	skald_event_t ev[3] = {
	        {.type = TYPE_COUNTED, .data = json_pack("{si}", "n", 2)},
	        {.type = TYPE_COUNTED, .data = bad},
	        {.type = TYPE_COUNTED, .data = json_pack("{si}", "n", 4)},
	};
	skald_write_t w = {pid, 1, ev, 3, 1};
	call_t a = {0};
	RUN(&t, &a, skald_journal_append(t.j, &w, 1, on_append, &a));
	cr_assert_eq(a.status, SKALD_EREJECTED, "status %d", a.status);
	cr_assert_eq(w.status, SKALD_EREJECTED);
	cr_assert_gt(strlen(skald_journal_errmsg(t.j)), 0, "a rejection explains itself");
	cr_assert_eq(highest(&t, pid), 1, "a rejected write stores nothing");
	call_t c = {0};
	read_range(&t, pid, 1, INF, INF, &c);
	expect_seqs(&c, pid, 1, 1);
	call_free(&c);
	/* The actor keeps running: its next write takes the same seq. */
	cr_assert_eq(append_n(&t, pid, 1, 2), 0);
	read_range(&t, pid, 1, INF, INF, &c);
	expect_seqs(&c, pid, 1, 3);
	call_free(&c);
	for (int i = 0; i < 3; i++)
		json_decref(ev[i].data);
	t_close(&t);
}

Test(journal, atomic_write_with_non_object_data_stores_nothing, TEST_OPT)
{
	rejected_batch_case("reject_non_object", json_integer(3));
}

Test(journal, atomic_write_with_array_data_stores_nothing, TEST_OPT)
{
	rejected_batch_case("reject_array", json_pack("[i]", 3));
}

Test(journal, atomic_write_with_unencodable_data_stores_nothing, TEST_OPT)
{
	/* jansson refuses to build NaN or infinite reals, so the event that
	 * cannot be encoded carries a string that is not valid UTF-8. */
	json_t *bad = json_object();
	json_object_set_new(bad, "s", json_string_nocheck("\xff\xfe not utf-8"));
	rejected_batch_case("reject_unencodable", bad);
}

Test(journal, multi_write_conflict_fails_only_that_write, TEST_OPT)
{
	tctx_t t;
	char a[256], b[256], c3[256];
	t_open(&t, "multi_conflict");
	pid_of(&t, "a", a, sizeof a);
	pid_of(&t, "b", b, sizeof b);
	pid_of(&t, "c", c3, sizeof c3);
	cr_assert_eq(append_n(&t, b, 0, 2), 0);
	skald_event_t ea = {.type = TYPE_COUNTED, .data = json_pack("{si}", "n", 1)};
	skald_event_t eb = {.type = TYPE_COUNTED, .data = json_pack("{si}", "n", 1)};
	skald_event_t ec[2] = {{.type = TYPE_COUNTED, .data = json_pack("{si}", "n", 1)},
	                       {.type = TYPE_COUNTED, .data = json_pack("{si}", "n", 2)}};
	skald_write_t w[3] = {{a, 0, &ea, 1, 1}, {b, 0, &eb, 1, 1}, {c3, 0, ec, 2, 1}};
	call_t r = {0};
	RUN(&t, &r, skald_journal_append(t.j, w, 3, on_append, &r));
	cr_assert_eq(w[0].status, 0);
	cr_assert_eq(w[1].status, SKALD_ECONFLICT);
	cr_assert_eq(w[2].status, 0);
	cr_assert_eq(r.status, SKALD_ECONFLICT, "the overall status is the first failure");
	cr_assert_eq(highest(&t, a), 1);
	cr_assert_eq(highest(&t, b), 2);
	cr_assert_eq(highest(&t, c3), 2);
	call_t c = {0};
	read_range(&t, b, 1, INF, INF, &c);
	expect_seqs(&c, b, 1, 2);
	call_free(&c);
	read_range(&t, c3, 1, INF, INF, &c);
	expect_seqs(&c, c3, 1, 2);
	call_free(&c);
	json_decref(ea.data);
	json_decref(eb.data);
	json_decref(ec[0].data);
	json_decref(ec[1].data);
	t_close(&t);
}

Test(journal, multi_write_rejection_fails_only_that_write, TEST_OPT)
{
	tctx_t t;
	char a[256], b[256];
	t_open(&t, "multi_reject");
	pid_of(&t, "a", a, sizeof a);
	pid_of(&t, "b", b, sizeof b);
	skald_event_t ea = {.type = TYPE_COUNTED, .data = json_string("not an object")};
	skald_event_t eb = {.type = TYPE_COUNTED, .data = json_pack("{si}", "n", 1)};
	skald_write_t w[2] = {{a, 0, &ea, 1, 1}, {b, 0, &eb, 1, 1}};
	call_t r = {0};
	RUN(&t, &r, skald_journal_append(t.j, w, 2, on_append, &r));
	cr_assert_eq(w[0].status, SKALD_EREJECTED);
	cr_assert_eq(w[1].status, 0);
	cr_assert_eq(r.status, SKALD_EREJECTED);
	cr_assert_eq(highest(&t, a), 0);
	cr_assert_eq(highest(&t, b), 1);
	json_decref(ea.data);
	json_decref(eb.data);
	t_close(&t);
}

Test(journal, multi_write_of_one_id_chains_in_order, TEST_OPT)
{
	tctx_t t;
	char a[256];
	t_open(&t, "multi_chain");
	pid_of(&t, "a", a, sizeof a);
	skald_event_t e1[2] = {{.type = TYPE_COUNTED, .data = json_pack("{si}", "n", 1)},
	                       {.type = TYPE_COUNTED, .data = json_pack("{si}", "n", 2)}};
	skald_event_t e2 = {.type = TYPE_COUNTED, .data = json_pack("{si}", "n", 3)};
	skald_write_t w[2] = {{a, 0, e1, 2, 1}, {a, 2, &e2, 1, 1}};
	call_t r = {0};
	RUN(&t, &r, skald_journal_append(t.j, w, 2, on_append, &r));
	cr_assert_eq(r.status, 0, "%d: %s", r.status, skald_journal_errmsg(t.j));
	call_t c = {0};
	read_range(&t, a, 1, INF, INF, &c);
	expect_seqs(&c, a, 1, 3);
	call_free(&c);
	json_decref(e1[0].data);
	json_decref(e1[1].data);
	json_decref(e2.data);
	t_close(&t);
}

/* ------------------------------------------------------------------------ */
/* Journal: payloads                                                         */

/* Appends data as seq 1 of a fresh id and returns what a replay gives back
 * (a new reference). */
static json_t *round_trip(tctx_t *t, const char *pid, json_t *data)
{
	skald_event_t e = {.type = "conformance.payload", .data = data};
	skald_write_t w = {pid, 0, &e, 1, 1};
	call_t a = {0};
	RUN(t, &a, skald_journal_append(t->j, &w, 1, on_append, &a));
	cr_assert_eq(a.status, 0, "%d: %s", a.status, skald_journal_errmsg(t->j));
	call_t c = {0};
	read_range(t, pid, 1, INF, INF, &c);
	cr_assert_eq(c.nev, 1);
	json_t *back = json_incref(c.ev[0].data);
	call_free(&c);
	return back;
}

Test(journal, one_mebibyte_event_round_trips_exactly, TEST_OPT)
{
	tctx_t t;
	char pid[256];
	t_open(&t, "big_event");
	pid_of(&t, "a", pid, sizeof pid);
	size_t len = (size_t)1 << 20;
	char *blob = malloc(len + 1);
	/* Characters that need escaping are part of the pattern on purpose. */
	static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789 \"\\/\n\t<>&'{}[]:,";
	uint32_t r = rand32();
	for (size_t i = 0; i < len; i++) {
		r = r * 1103515245u + 12345u;
		blob[i] = alphabet[(r >> 16) % (sizeof alphabet - 1)];
	}
	blob[len] = '\0';
	json_t *data = json_pack("{ss}", "blob", blob);
	json_t *back = round_trip(&t, pid, data);
	const char *got = json_string_value(json_object_get(back, "blob"));
	cr_assert_not_null(got);
	cr_assert_eq(json_string_length(json_object_get(back, "blob")), len);
	cr_assert(memcmp(got, blob, len) == 0, "the 1 MiB string changed");
	json_decref(back);
	json_decref(data);
	free(blob);
	t_close(&t);
}

Test(journal, non_ascii_text_and_numbers_round_trip_exactly, TEST_OPT)
{
	tctx_t t;
	char pid[256];
	t_open(&t, "unicode");
	pid_of(&t, "ünïcødé-日本-🎲", pid, sizeof pid);
	const char *text = "Grüße, ça va? — 日本語のテキスト — Ελληνικά — עברית — 🎲🂡 — e\u0301";
	json_t *data =
	        json_pack("{ss s{ss} s[isfbn] sI sI sf}", "text", text, "nested", "ключ",
	                  "значение", "list", 1, "two", 3.5, 1, "big",
	                  (json_int_t)9007199254740993LL, "neg", (json_int_t)-42, "real", 0.1);
	cr_assert_not_null(data);
	json_t *back = round_trip(&t, pid, data);
	cr_assert_str_eq(json_string_value(json_object_get(back, "text")), text);
	cr_assert(json_equal(back, data), "data changed in the journal");
	json_decref(back);
	json_decref(data);
	t_close(&t);
}

Test(journal, long_history_streams_in_order, TEST_OPT)
{
	tctx_t t;
	char pid[256];
	t_open(&t, "long_history");
	pid_of(&t, "a", pid, sizeof pid);
	for (uint64_t s = 0; s < 5000; s += 500)
		cr_assert_eq(append_n(&t, pid, s, 500), 0);
	call_t c = {0};
	read_range(&t, pid, 1, INF, INF, &c);
	expect_seqs(&c, pid, 1, 5000);
	call_free(&c);
	read_range(&t, pid, 1234, 4321, 1000, &c);
	expect_seqs(&c, pid, 1234, 2233);
	call_free(&c);
	t_close(&t);
}

Test(journal, read_stops_when_the_batch_callback_fails, TEST_OPT)
{
	tctx_t t;
	char pid[256];
	t_open(&t, "read_stop");
	pid_of(&t, "a", pid, sizeof pid);
	cr_assert_eq(append_n(&t, pid, 0, 3000), 0);
	call_t c = {.stop_after = 1, .stop_rc = -4242};
	read_range(&t, pid, 1, INF, INF, &c);
	cr_assert_eq(c.status, -4242, "done carries the callback's code, got %d", c.status);
	cr_assert_eq(c.batches, 1, "no batch after a stop");
	call_free(&c);
	t_close(&t);
}

/* ------------------------------------------------------------------------ */
/* Journal: global order, listing                                            */

/* The offset just before the first event written by this test, or 0 when the
 * store does not report offsets at append. */
static uint64_t offset_before(tctx_t *t, const char *pid)
{
	call_t c = {0};
	read_range(t, pid, 1, 1, 1, &c);
	cr_assert_eq(c.nev, 1);
	uint64_t off = c.ev[0].offset;
	call_free(&c);
	return off ? off - 1 : 0;
}

Test(journal, read_all_returns_every_event_exactly_once, TEST_OPT)
{
	tctx_t t;
	char p[3][256];
	t_open(&t, "read_all");
	for (int i = 0; i < 3; i++)
		pid_of(&t, (const char *[]){"a", "b", "c"}[i], p[i], sizeof p[i]);
	/* Interleave writes of three ids. */
	cr_assert_eq(append_n(&t, p[0], 0, 2), 0);
	uint64_t base = offset_before(&t, p[0]);
	cr_assert_eq(append_n(&t, p[1], 0, 3), 0);
	cr_assert_eq(append_n(&t, p[0], 2, 1), 0);
	cr_assert_eq(append_n(&t, p[2], 0, 1), 0);
	cr_assert_eq(append_n(&t, p[1], 3, 2), 0);
	cr_assert_eq(delete_to(&t, p[2], 0), 0);

	call_t c = {0};
	RUN(&t, &c, skald_journal_read_all(t.j, base, INF, on_events, on_done, &c));
	cr_assert_eq(c.status, 0);
	uint64_t seen[3] = {0};
	uint64_t last_offset = base;
	for (size_t i = 0; i < c.nev; i++) {
		const got_t *g = &c.ev[i];
		cr_assert_gt(g->offset, last_offset, "offsets must ascend strictly");
		last_offset = g->offset;
		for (int k = 0; k < 3; k++) {
			if (strcmp(g->pid, p[k]) != 0)
				continue;
			cr_assert_eq(g->seq, seen[k] + 1, "%s: seq %llu after %llu", p[k],
			             (unsigned long long)g->seq, (unsigned long long)seen[k]);
			seen[k] = g->seq;
		}
	}
	cr_assert_eq(seen[0], 3);
	cr_assert_eq(seen[1], 5);
	cr_assert_eq(seen[2], 1);
	call_free(&c);
	t_close(&t);
}

Test(journal, read_all_respects_after_and_max, TEST_OPT)
{
	tctx_t t;
	char pid[256];
	t_open(&t, "read_all_bounds");
	pid_of(&t, "a", pid, sizeof pid);
	cr_assert_eq(append_n(&t, pid, 0, 10), 0);
	uint64_t base = offset_before(&t, pid);
	call_t c = {0};
	RUN(&t, &c, skald_journal_read_all(t.j, base, 4, on_events, on_done, &c));
	cr_assert_eq(c.status, 0);
	cr_assert_eq(c.nev, 4);
	uint64_t last = c.ev[3].offset;
	cr_assert_gt(c.ev[0].offset, base);
	call_free(&c);
	/* A projection resumes after the last offset it processed. */
	RUN(&t, &c, skald_journal_read_all(t.j, last, INF, on_events, on_done, &c));
	for (size_t i = 0; i < c.nev; i++)
		cr_assert_gt(c.ev[i].offset, last);
	size_t mine = 0;
	for (size_t i = 0; i < c.nev; i++)
		if (strcmp(c.ev[i].pid, pid) == 0)
			cr_assert_eq(c.ev[i].seq, 5 + mine++);
	cr_assert_eq(mine, 6);
	call_free(&c);
	RUN(&t, &c, skald_journal_read_all(t.j, base, 0, on_events, on_done, &c));
	cr_assert_eq(c.nev, 0, "max 0 reads nothing");
	call_free(&c);
	t_close(&t);
}

Test(journal, deleted_events_leave_the_global_order, TEST_OPT)
{
	tctx_t t;
	char pid[256];
	t_open(&t, "read_all_deleted");
	pid_of(&t, "a", pid, sizeof pid);
	cr_assert_eq(append_n(&t, pid, 0, 4), 0);
	uint64_t base = offset_before(&t, pid);
	cr_assert_eq(delete_to(&t, pid, 2), 0);
	call_t c = {0};
	RUN(&t, &c, skald_journal_read_all(t.j, base, INF, on_events, on_done, &c));
	uint64_t expect = 3;
	for (size_t i = 0; i < c.nev; i++)
		if (strcmp(c.ev[i].pid, pid) == 0)
			cr_assert_eq(c.ev[i].seq, expect++);
	cr_assert_eq(expect, 5);
	call_free(&c);
	t_close(&t);
}

Test(journal, list_ids_by_prefix_in_pages, TEST_OPT)
{
	tctx_t t;
	char pid[256];
	t_open(&t, "list_ids");
	const char *names[] = {"c", "a", "b", "d"};
	for (int i = 0; i < 4; i++)
		cr_assert_eq(append_n(&t, pid_of(&t, names[i], pid, sizeof pid), 0, (size_t)i + 1),
		             0);
	call_t c = {0};
	RUN(&t, &c, skald_journal_list_ids(t.j, t.prefix, NULL, INF, on_ids, on_done, &c));
	cr_assert_eq(c.status, 0);
	cr_assert_eq(c.nids, 4);
	const char *order[] = {"a", "b", "c", "d"};
	const uint64_t highs[] = {2, 3, 1, 4};
	for (int i = 0; i < 4; i++) {
		cr_assert_str_eq(c.ids[i], pid_of(&t, order[i], pid, sizeof pid));
		cr_assert_eq(c.highs[i], highs[i]);
	}
	call_free(&c);
	/* Paging: two, then the rest after the last one seen. */
	RUN(&t, &c, skald_journal_list_ids(t.j, t.prefix, NULL, 2, on_ids, on_done, &c));
	cr_assert_eq(c.nids, 2);
	char after[256];
	snprintf(after, sizeof after, "%s", c.ids[1]);
	call_free(&c);
	RUN(&t, &c, skald_journal_list_ids(t.j, t.prefix, after, INF, on_ids, on_done, &c));
	cr_assert_eq(c.nids, 2);
	cr_assert_str_eq(c.ids[0], pid_of(&t, "c", pid, sizeof pid));
	call_free(&c);
	RUN(&t, &c, skald_journal_list_ids(t.j, t.prefix, NULL, 0, on_ids, on_done, &c));
	cr_assert_eq(c.nids, 0);
	call_free(&c);
	t_close(&t);
}

/* ------------------------------------------------------------------------ */
/* Journal: handles, completion rules, errors                                */

Test(journal, handles_on_one_uri_share_data, TEST_OPT)
{
	tctx_t t1, t2;
	char pid[256];
	t_open(&t1, "shared");
	t_open(&t2, "shared");
	pid_of(&t1, "a", pid, sizeof pid);
	write_five(&t1, pid);
	/* The second handle has its own loop: its completions run there. */
	cr_assert_eq(highest(&t2, pid), 5);
	cr_assert_eq(append_n(&t2, pid, 4, 1), SKALD_ECONFLICT);
	cr_assert_eq(append_n(&t2, pid, 5, 1), 0);
	call_t c = {0};
	read_range(&t1, pid, 1, INF, INF, &c);
	expect_seqs(&c, pid, 1, 6);
	call_free(&c);
	t_close(&t2);
	t_close(&t1);
}

typedef struct racer_s {
	const char *uri;
	const char *pid;
	uint64_t writer;
	int target;
	int stored, conflicts, errors, wrong_thread, closed;
	pthread_t self;
	uv_loop_t loop;
	skald_journal_t *j;
	skald_event_t ev;
	skald_write_t w;
} racer_t;

static void racer_next(racer_t *r);

static void racer_check_thread(racer_t *r)
{
	if (!pthread_equal(pthread_self(), r->self))
		r->wrong_thread++;
}

static void racer_closed(skald_journal_t *j, void *arg)
{
	racer_t *r = arg;
	racer_check_thread(r);
	r->closed++;
}

static void racer_appended(skald_journal_t *j, int status, skald_write_t *w, size_t n, void *arg)
{
	racer_t *r = arg;
	racer_check_thread(r);
	if (status == 0)
		r->stored++;
	else if (status == SKALD_ECONFLICT)
		r->conflicts++;
	else
		r->errors++;
	if (r->stored < r->target && r->errors == 0)
		racer_next(r);
	else if (skald_journal_close(r->j, racer_closed, r) != 0)
		r->errors++;
}

static void racer_highest(skald_journal_t *j, int status, uint64_t seq, void *arg)
{
	racer_t *r = arg;
	racer_check_thread(r);
	if (status != 0) {
		r->errors++;
		skald_journal_close(r->j, racer_closed, r);
		return;
	}
	r->ev.seq = 0;
	r->ev.timestamp = 0;
	r->w = (skald_write_t){r->pid, seq, &r->ev, 1, 1};
	if (skald_journal_append(r->j, &r->w, 1, racer_appended, r) != 0) {
		r->errors++;
		skald_journal_close(r->j, racer_closed, r);
	}
}

static void racer_next(racer_t *r)
{
	if (skald_journal_highest(r->j, r->pid, racer_highest, r) != 0) {
		r->errors++;
		skald_journal_close(r->j, racer_closed, r);
	}
}

static void *racer_main(void *arg)
{
	racer_t *r = arg;
	r->self = pthread_self();
	if (uv_loop_init(&r->loop) != 0 || skald_journal_open(&r->loop, r->uri, &r->j) != 0) {
		r->errors++;
		return NULL;
	}
	r->ev = (skald_event_t){.type = TYPE_COUNTED, .writer = r->writer};
	r->ev.data = json_pack("{sI}", "writer", (json_int_t)r->writer);
	racer_next(r);
	uv_run(&r->loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&r->loop) != 0)
		r->errors++;
	json_decref(r->ev.data);
	return NULL;
}

Test(journal, concurrent_writers_on_two_threads_never_fork_history, TEST_OPT)
{
	tctx_t t;
	char pid[256];
	t_open(&t, "threads");
	pid_of(&t, "contended", pid, sizeof pid);
	enum { TARGET = 300 };
	/* jansson seeds its hash function lazily on the first object; seeding
	 * before the threads start keeps race detectors quiet. */
	json_object_seed(0);
	racer_t r[2];
	pthread_t th[2];
	for (int i = 0; i < 2; i++) {
		memset(&r[i], 0, sizeof r[i]);
		r[i].uri = store_uri();
		r[i].pid = pid;
		r[i].writer = 100 + (uint64_t)i;
		r[i].target = TARGET;
		cr_assert_eq(pthread_create(&th[i], NULL, racer_main, &r[i]), 0);
	}
	for (int i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		cr_assert_eq(r[i].errors, 0, "racer %d had %d errors", i, r[i].errors);
		cr_assert_eq(r[i].wrong_thread, 0, "a completion ran on another thread");
		cr_assert_eq(r[i].closed, 1);
		cr_assert_eq(r[i].stored, TARGET);
	}
	cr_assert_eq(highest(&t, pid), 2 * TARGET);
	call_t c = {0};
	read_range(&t, pid, 1, INF, INF, &c);
	cr_assert_eq(c.nev, 2 * TARGET);
	int per_writer[2] = {0, 0};
	for (size_t i = 0; i < c.nev; i++) {
		cr_assert_eq(c.ev[i].seq, i + 1);
		cr_assert(c.ev[i].writer == 100 || c.ev[i].writer == 101);
		per_writer[c.ev[i].writer - 100]++;
	}
	cr_assert_eq(per_writer[0], TARGET);
	cr_assert_eq(per_writer[1], TARGET);
	call_free(&c);
	t_close(&t);
}

Test(journal, no_completion_before_the_call_returns, TEST_OPT)
{
	tctx_t t;
	char pid[256];
	t_open(&t, "never_early");
	pid_of(&t, "a", pid, sizeof pid);
	skald_event_t e = {.type = TYPE_COUNTED, .data = json_pack("{si}", "n", 1)};
	skald_write_t w = {pid, 0, &e, 1, 1};
	skald_snapshot_t snap = {pid, 1, 1, json_object(), 0};
	call_t c[10];
	memset(c, 0, sizeof c);
	/* `returned` stays 0 until every call below has returned: any completion
	 * that runs inside one of them fails the test. */
	cr_assert_eq(skald_journal_append(t.j, &w, 1, on_append, &c[0]), 0);
	cr_assert_eq(skald_journal_highest(t.j, pid, on_seq, &c[1]), 0);
	cr_assert_eq(skald_journal_read(t.j, pid, 1, INF, INF, on_events, on_done, &c[2]), 0);
	cr_assert_eq(skald_journal_delete_to(t.j, pid, 0, on_done, &c[3]), 0);
	cr_assert_eq(skald_journal_snapshot_save(t.j, &snap, on_done, &c[4]), 0);
	cr_assert_eq(skald_journal_snapshot_load(t.j, pid, INF, on_snapshot, &c[5]), 0);
	cr_assert_eq(skald_journal_snapshot_delete(t.j, pid, 7, on_done, &c[6]), 0);
	cr_assert_eq(skald_journal_snapshot_delete_to(t.j, pid, 0, on_done, &c[7]), 0);
	cr_assert_eq(skald_journal_read_all(t.j, 0, 1, on_events, on_done, &c[8]), 0);
	cr_assert_eq(skald_journal_list_ids(t.j, t.prefix, NULL, INF, on_ids, on_done, &c[9]), 0);
	for (int i = 0; i < 10; i++)
		c[i].returned = 1;
	for (int i = 0; i < 10; i++) {
		run_until(&t, &c[i].calls, 1);
		cr_assert_eq(c[i].status, 0, "operation %d: %d", i, c[i].status);
	}
	cr_assert_eq(c[1].seq, 1);
	cr_assert_eq(c[2].nev, 1);
	cr_assert(c[5].found);
	cr_assert_eq(c[9].nids, 1);
	for (int i = 0; i < 10; i++)
		call_free(&c[i]);
	json_decref(e.data);
	json_decref(snap.data);
	t_close(&t);
}

typedef struct order_s {
	int next;
	int append_at, read_at, highest_at, close_at;
	int read_status, append_status;
} order_t;

static void order_append(skald_journal_t *j, int status, skald_write_t *w, size_t n, void *arg)
{
	order_t *o = arg;
	o->append_at = ++o->next;
	o->append_status = status;
}

static int order_events(skald_journal_t *j, const skald_event_t *ev, size_t n, void *arg)
{
	return 0;
}

static void order_read(skald_journal_t *j, int status, void *arg)
{
	order_t *o = arg;
	o->read_at = ++o->next;
	o->read_status = status;
}

static void order_highest(skald_journal_t *j, int status, uint64_t seq, void *arg)
{
	order_t *o = arg;
	o->highest_at = ++o->next;
}

static void order_closed(skald_journal_t *j, void *arg)
{
	order_t *o = arg;
	o->close_at = ++o->next;
}

Test(journal, operations_in_flight_complete_before_close, TEST_OPT)
{
	tctx_t t;
	char pid[256];
	t_open(&t, "close_pending");
	pid_of(&t, "a", pid, sizeof pid);
	cr_assert_eq(append_n(&t, pid, 0, 2000), 0);
	skald_event_t e = {.type = TYPE_COUNTED, .data = json_pack("{si}", "n", 2001)};
	skald_write_t w = {pid, 2000, &e, 1, 1};
	order_t o = {0};
	cr_assert_eq(skald_journal_append(t.j, &w, 1, order_append, &o), 0);
	cr_assert_eq(skald_journal_read(t.j, pid, 1, INF, INF, order_events, order_read, &o), 0);
	cr_assert_eq(skald_journal_highest(t.j, pid, order_highest, &o), 0);
	cr_assert_eq(skald_journal_close(t.j, order_closed, &o), 0);
	run_until(&t, &o.next, 4);
	cr_assert_eq(o.close_at, 4, "the close callback comes last");
	cr_assert_gt(o.append_at, 0);
	cr_assert_gt(o.read_at, 0);
	cr_assert_gt(o.highest_at, 0);
	cr_assert_eq(o.append_status, 0, "an accepted append is not dropped by close");
	cr_assert(o.read_status == 0 || o.read_status == SKALD_ECANCELED, "read: %d",
	          o.read_status);
	json_decref(e.data);
	uv_close((uv_handle_t *)&t.guard, NULL);
	uv_run(&t.loop, UV_RUN_DEFAULT);
	cr_assert_eq(uv_loop_close(&t.loop), 0);

	/* The append was stored. */
	t_open(&t, "close_pending_check");
	cr_assert_eq(highest(&t, pid), 2001);
	t_close(&t);
}

Test(journal, operations_after_close_fail, TEST_OPT)
{
	tctx_t t;
	char pid[256];
	t_open(&t, "after_close");
	pid_of(&t, "a", pid, sizeof pid);
	int closed = 0;
	cr_assert_eq(skald_journal_close(t.j, on_closed, &closed), 0);
	call_t c = {.returned = 1};
	skald_event_t e = {.type = TYPE_COUNTED, .data = json_object()};
	skald_write_t w = {pid, 0, &e, 1, 1};
	skald_snapshot_t snap = {pid, 1, 1, e.data, 0};
	cr_assert_eq(skald_journal_append(t.j, &w, 1, on_append, &c), SKALD_ECLOSED);
	cr_assert_eq(skald_journal_read(t.j, pid, 1, INF, INF, on_events, on_done, &c),
	             SKALD_ECLOSED);
	cr_assert_eq(skald_journal_highest(t.j, pid, on_seq, &c), SKALD_ECLOSED);
	cr_assert_eq(skald_journal_delete_to(t.j, pid, 1, on_done, &c), SKALD_ECLOSED);
	cr_assert_eq(skald_journal_snapshot_save(t.j, &snap, on_done, &c), SKALD_ECLOSED);
	cr_assert_eq(skald_journal_snapshot_load(t.j, pid, INF, on_snapshot, &c), SKALD_ECLOSED);
	cr_assert_eq(skald_journal_snapshot_delete(t.j, pid, 1, on_done, &c), SKALD_ECLOSED);
	cr_assert_eq(skald_journal_snapshot_delete_to(t.j, pid, 1, on_done, &c), SKALD_ECLOSED);
	cr_assert_eq(skald_journal_read_all(t.j, 0, INF, on_events, on_done, &c), SKALD_ECLOSED);
	cr_assert_eq(skald_journal_list_ids(t.j, NULL, NULL, INF, on_ids, on_done, &c),
	             SKALD_ECLOSED);
	cr_assert_eq(skald_journal_close(t.j, on_closed, &closed), SKALD_ECLOSED);
	run_until(&t, &closed, 1);
	cr_assert_eq(c.calls, 0, "a refused operation never completes");
	json_decref(e.data);
	uv_close((uv_handle_t *)&t.guard, NULL);
	uv_run(&t.loop, UV_RUN_DEFAULT);
	cr_assert_eq(uv_loop_close(&t.loop), 0);
}

Test(journal, null_and_invalid_arguments_are_refused, TEST_OPT)
{
	tctx_t t;
	char pid[256];
	t_open(&t, "null_args");
	pid_of(&t, "a", pid, sizeof pid);
	skald_journal_t *j = t.j, *none = NULL;
	call_t c = {.returned = 1};
	json_t *obj = json_object();
	skald_event_t e = {.type = TYPE_COUNTED, .data = obj};
	skald_write_t w = {pid, 0, &e, 1, 1};

	cr_assert_eq(skald_journal_open(NULL, store_uri(), &none), SKALD_EINVAL);
	cr_assert_eq(skald_journal_open(&t.loop, store_uri(), NULL), SKALD_EINVAL);
	cr_assert_gt(strlen(skald_journal_open_errmsg()), 0);
	cr_assert_str_eq(skald_journal_errmsg(NULL), "");
	cr_assert_eq(skald_journal_close(NULL, NULL, NULL), SKALD_EINVAL);

	cr_assert_eq(skald_journal_append(NULL, &w, 1, on_append, &c), SKALD_EINVAL);
	cr_assert_eq(skald_journal_append(j, NULL, 1, on_append, &c), SKALD_EINVAL);
	cr_assert_eq(skald_journal_append(j, &w, 0, on_append, &c), SKALD_EINVAL);
	cr_assert_eq(skald_journal_append(j, &w, 1, NULL, &c), SKALD_EINVAL);
	skald_write_t bad = w;
	bad.persistence_id = NULL;
	cr_assert_eq(skald_journal_append(j, &bad, 1, on_append, &c), SKALD_EINVAL);
	bad = w;
	bad.persistence_id = "";
	cr_assert_eq(skald_journal_append(j, &bad, 1, on_append, &c), SKALD_EINVAL);
	bad = w;
	bad.events = NULL;
	cr_assert_eq(skald_journal_append(j, &bad, 1, on_append, &c), SKALD_EINVAL);
	bad = w;
	bad.nevents = 0;
	cr_assert_eq(skald_journal_append(j, &bad, 1, on_append, &c), SKALD_EINVAL);
	e.type = NULL;
	cr_assert_eq(skald_journal_append(j, &w, 1, on_append, &c), SKALD_EINVAL);
	e.type = TYPE_COUNTED;
	e.data = NULL;
	cr_assert_eq(skald_journal_append(j, &w, 1, on_append, &c), SKALD_EINVAL);
	e.data = obj;
	e.seq = 5;
	cr_assert_eq(skald_journal_append(j, &w, 1, on_append, &c), SKALD_EINVAL);
	cr_assert(strstr(skald_journal_errmsg(j), "seq") != NULL, "message: %s",
	          skald_journal_errmsg(j));
	e.seq = 0;
	e.version = -1;
	cr_assert_eq(skald_journal_append(j, &w, 1, on_append, &c), SKALD_EINVAL);
	e.version = 1;
	/* A refused call leaves the caller's envelopes as they were. */
	cr_assert_eq(e.seq, 0);
	cr_assert_eq(e.timestamp, 0);

	cr_assert_eq(skald_journal_read(NULL, pid, 1, INF, INF, on_events, on_done, &c),
	             SKALD_EINVAL);
	cr_assert_eq(skald_journal_read(j, NULL, 1, INF, INF, on_events, on_done, &c),
	             SKALD_EINVAL);
	cr_assert_eq(skald_journal_read(j, "", 1, INF, INF, on_events, on_done, &c), SKALD_EINVAL);
	cr_assert_eq(skald_journal_read(j, pid, 1, INF, INF, NULL, on_done, &c), SKALD_EINVAL);
	cr_assert_eq(skald_journal_read(j, pid, 1, INF, INF, on_events, NULL, &c), SKALD_EINVAL);
	cr_assert_eq(skald_journal_highest(NULL, pid, on_seq, &c), SKALD_EINVAL);
	cr_assert_eq(skald_journal_highest(j, NULL, on_seq, &c), SKALD_EINVAL);
	cr_assert_eq(skald_journal_highest(j, pid, NULL, &c), SKALD_EINVAL);
	cr_assert_eq(skald_journal_delete_to(j, NULL, 1, on_done, &c), SKALD_EINVAL);
	cr_assert_eq(skald_journal_delete_to(j, pid, 1, NULL, &c), SKALD_EINVAL);
	cr_assert_eq(skald_journal_snapshot_save(j, NULL, on_done, &c), SKALD_EINVAL);
	skald_snapshot_t snap = {pid, 0, 1, obj, 0};
	cr_assert_eq(skald_journal_snapshot_save(j, &snap, on_done, &c), SKALD_EINVAL);
	snap.seq = 1;
	snap.data = NULL;
	cr_assert_eq(skald_journal_snapshot_save(j, &snap, on_done, &c), SKALD_EINVAL);
	snap.data = obj;
	snap.persistence_id = NULL;
	cr_assert_eq(skald_journal_snapshot_save(j, &snap, on_done, &c), SKALD_EINVAL);
	cr_assert_eq(skald_journal_snapshot_load(j, NULL, INF, on_snapshot, &c), SKALD_EINVAL);
	cr_assert_eq(skald_journal_snapshot_load(j, pid, INF, NULL, &c), SKALD_EINVAL);
	cr_assert_eq(skald_journal_snapshot_delete(j, NULL, 1, on_done, &c), SKALD_EINVAL);
	cr_assert_eq(skald_journal_snapshot_delete_to(j, pid, 1, NULL, &c), SKALD_EINVAL);
	cr_assert_eq(skald_journal_read_all(j, 0, INF, NULL, on_done, &c), SKALD_EINVAL);
	cr_assert_eq(skald_journal_read_all(NULL, 0, INF, on_events, on_done, &c), SKALD_EINVAL);
	cr_assert_eq(skald_journal_list_ids(j, NULL, NULL, INF, NULL, on_done, &c), SKALD_EINVAL);
	cr_assert_eq(skald_journal_list_ids(j, NULL, NULL, INF, on_ids, NULL, &c), SKALD_EINVAL);

	/* Nothing was started: the loop has nothing to deliver. */
	for (int i = 0; i < 3; i++)
		uv_run(&t.loop, UV_RUN_NOWAIT);
	cr_assert_eq(c.calls, 0);
	cr_assert_eq(highest(&t, pid), 0);
	json_decref(obj);
	t_close(&t);
}

/* ------------------------------------------------------------------------ */
/* Upcasters                                                                 */

static int upcast_rename(const char *type, int *version, json_t **data, void *arg)
{
	/* v1 {"old": x} -> v2 {"renamed": x}, replacing the object. */
	json_t *next = json_pack("{sO}", "renamed", json_object_get(*data, "old"));
	if (next == NULL)
		return SKALD_EDECODE;
	json_decref(*data);
	*data = next;
	*version = 2;
	return 0;
}

static int upcast_add_field(const char *type, int *version, json_t **data, void *arg)
{
	/* v2 -> v3 adds a field, in place. */
	json_object_set_new(*data, "added", json_string((const char *)arg));
	*version = 3;
	return 0;
}

static int upcast_fail(const char *type, int *version, json_t **data, void *arg)
{
	return -4343;
}

/* Appends one event of type at version with data {"old": 7}. */
static void append_typed(tctx_t *t, const char *pid, uint64_t expected, const char *type,
                         int version)
{
	skald_event_t e = {.type = type, .version = version, .data = json_pack("{si}", "old", 7)};
	skald_write_t w = {pid, expected, &e, 1, 1};
	call_t a = {0};
	RUN(t, &a, skald_journal_append(t->j, &w, 1, on_append, &a));
	cr_assert_eq(a.status, 0);
	json_decref(e.data);
}

Test(journal, upcasters_rewrite_old_events_on_replay_and_global_read, TEST_OPT)
{
	tctx_t t;
	char pid[256], type[256];
	t_open(&t, "upcast");
	pid_of(&t, "a", pid, sizeof pid);
	pid_of(&t, "type.moved", type, sizeof type);
	cr_assert_eq(skald_upcaster_register(type, 1, upcast_rename, NULL), 0);
	cr_assert_eq(skald_upcaster_register(type, 2, upcast_add_field, "yes"), 0);
	cr_assert_eq(skald_upcaster_register(type, 1, upcast_rename, NULL), SKALD_EEXISTS);
	append_typed(&t, pid, 0, type, 1); /* upcast 1 -> 2 -> 3 */
	append_typed(&t, pid, 1, type, 2); /* upcast 2 -> 3 */
	append_typed(&t, pid, 2, type, 3); /* current */
	append_typed(&t, pid, 3, TYPE_COUNTED, 1);

	call_t c = {0};
	read_range(&t, pid, 1, INF, INF, &c);
	cr_assert_eq(c.nev, 4);
	json_t *v3 = json_pack("{siss}", "renamed", 7, "added", "yes");
	cr_assert_eq(c.ev[0].version, 3);
	cr_assert(json_equal(c.ev[0].data, v3), "1 -> 3");
	cr_assert_eq(c.ev[1].version, 3);
	cr_assert_eq(json_integer_value(json_object_get(c.ev[1].data, "old")), 7);
	cr_assert_str_eq(json_string_value(json_object_get(c.ev[1].data, "added")), "yes");
	cr_assert_eq(c.ev[2].version, 3);
	cr_assert_null(json_object_get(c.ev[2].data, "added"), "a current event is untouched");
	cr_assert_eq(c.ev[3].version, 1, "other types are untouched");
	call_free(&c);

	uint64_t base = offset_before(&t, pid);
	RUN(&t, &c, skald_journal_read_all(t.j, base, INF, on_events, on_done, &c));
	int found = 0;
	for (size_t i = 0; i < c.nev; i++) {
		if (strcmp(c.ev[i].pid, pid) == 0 && c.ev[i].seq == 1) {
			cr_assert_eq(c.ev[i].version, 3);
			cr_assert(json_equal(c.ev[i].data, v3));
			found = 1;
		}
	}
	cr_assert(found);
	call_free(&c);
	json_decref(v3);
	t_close(&t);
}

Test(journal, failing_upcaster_fails_the_read, TEST_OPT)
{
	tctx_t t;
	char pid[256], type[256];
	t_open(&t, "upcast_fail");
	pid_of(&t, "a", pid, sizeof pid);
	pid_of(&t, "type.broken", type, sizeof type);
	cr_assert_eq(skald_upcaster_register(type, 1, upcast_fail, NULL), 0);
	append_typed(&t, pid, 0, type, 1);
	call_t c = {0};
	read_range(&t, pid, 1, INF, INF, &c);
	cr_assert_eq(c.status, -4343);
	cr_assert_eq(c.nev, 0, "the reader never sees an event that failed to upcast");
	call_free(&c);
	cr_assert_eq(skald_upcaster_register(NULL, 1, upcast_fail, NULL), SKALD_EINVAL);
	cr_assert_eq(skald_upcaster_register(type, 0, upcast_fail, NULL), SKALD_EINVAL);
	cr_assert_eq(skald_upcaster_register(type, 5, NULL, NULL), SKALD_EINVAL);
	t_close(&t);
}

/* ------------------------------------------------------------------------ */
/* Snapshots (Akka SnapshotStoreSpec)                                        */

static int snap_save(tctx_t *t, const char *pid, uint64_t seq, json_t *data)
{
	skald_snapshot_t s = {pid, seq, 1, data, 0};
	call_t c = {0};
	RUN(t, &c, skald_journal_snapshot_save(t->j, &s, on_done, &c));
	json_decref(data);
	return c.status;
}

/* Loads the latest snapshot at or below max_seq; returns its seq, 0 for none. */
static uint64_t snap_load(tctx_t *t, const char *pid, uint64_t max_seq, call_t *c)
{
	RUN(t, c, skald_journal_snapshot_load(t->j, pid, max_seq, on_snapshot, c));
	cr_assert_eq(c->status, 0, "load failed: %d", c->status);
	if (!c->found)
		return 0;
	cr_assert_str_eq(c->snap.persistence_id, pid);
	return c->snap.seq;
}

static uint64_t snap_seq(tctx_t *t, const char *pid, uint64_t max_seq)
{
	call_t c = {0};
	uint64_t seq = snap_load(t, pid, max_seq, &c);
	if (seq)
		cr_assert_eq(json_integer_value(json_object_get(c.snap.data, "s")), (json_int_t)seq,
		             "snapshot %llu carries another's data", (unsigned long long)seq);
	call_free(&c);
	return seq;
}

/* Saves snapshots at 11..15 of a fresh id with data {"s": seq}. */
static void save_eleven_to_fifteen(tctx_t *t, const char *pid)
{
	for (uint64_t s = 11; s <= 15; s++)
		cr_assert_eq(snap_save(t, pid, s, json_pack("{sI}", "s", (json_int_t)s)), 0);
}

Test(snapshots, load_the_latest, TEST_OPT)
{
	tctx_t t;
	char pid[256];
	t_open(&t, "snap_latest");
	pid_of(&t, "a", pid, sizeof pid);
	int64_t before = now_ms();
	save_eleven_to_fifteen(&t, pid);
	call_t c = {0};
	cr_assert_eq(snap_load(&t, pid, INF, &c), 15);
	cr_assert_eq(c.snap.version, 1);
	cr_assert(c.snap.timestamp >= before - 1000 && c.snap.timestamp <= now_ms() + 1000,
	          "the journal stamps a snapshot saved without a timestamp");
	call_free(&c);
	t_close(&t);
}

Test(snapshots, load_the_latest_at_or_below_a_bound, TEST_OPT)
{
	tctx_t t;
	char pid[256];
	t_open(&t, "snap_bound");
	pid_of(&t, "a", pid, sizeof pid);
	save_eleven_to_fifteen(&t, pid);
	cr_assert_eq(snap_seq(&t, pid, 13), 13);
	cr_assert_eq(snap_seq(&t, pid, 1000), 15);
	cr_assert_eq(snap_seq(&t, pid, 11), 11);
	cr_assert_eq(snap_seq(&t, pid, 10), 0, "none at or below 10");
	t_close(&t);
}

Test(snapshots, none_for_an_unknown_id, TEST_OPT)
{
	tctx_t t;
	char pid[256];
	t_open(&t, "snap_unknown");
	pid_of(&t, "never", pid, sizeof pid);
	cr_assert_eq(snap_seq(&t, pid, INF), 0);
	t_close(&t);
}

Test(snapshots, delete_one, TEST_OPT)
{
	tctx_t t;
	char pid[256];
	t_open(&t, "snap_delete");
	pid_of(&t, "a", pid, sizeof pid);
	save_eleven_to_fifteen(&t, pid);
	call_t c = {0};
	RUN(&t, &c, skald_journal_snapshot_delete(t.j, pid, 13, on_done, &c));
	cr_assert_eq(c.status, 0);
	cr_assert_eq(snap_seq(&t, pid, 13), 12);
	cr_assert_eq(snap_seq(&t, pid, INF), 15);
	call_free(&c);
	/* Deleting what is not there is not an error. */
	RUN(&t, &c, skald_journal_snapshot_delete(t.j, pid, 13, on_done, &c));
	cr_assert_eq(c.status, 0);
	t_close(&t);
}

Test(snapshots, delete_by_bound, TEST_OPT)
{
	tctx_t t;
	char pid[256];
	t_open(&t, "snap_delete_to");
	pid_of(&t, "a", pid, sizeof pid);
	save_eleven_to_fifteen(&t, pid);
	call_t c = {0};
	RUN(&t, &c, skald_journal_snapshot_delete_to(t.j, pid, 13, on_done, &c));
	cr_assert_eq(c.status, 0);
	call_free(&c);
	cr_assert_eq(snap_seq(&t, pid, 13), 0);
	cr_assert_eq(snap_seq(&t, pid, 14), 14);
	cr_assert_eq(snap_seq(&t, pid, INF), 15);
	RUN(&t, &c, skald_journal_snapshot_delete_to(t.j, pid, INF, on_done, &c));
	cr_assert_eq(c.status, 0);
	cr_assert_eq(snap_seq(&t, pid, INF), 0);
	t_close(&t);
}

Test(snapshots, save_at_the_same_seq_overwrites, TEST_OPT)
{
	tctx_t t;
	char pid[256];
	t_open(&t, "snap_overwrite");
	pid_of(&t, "a", pid, sizeof pid);
	save_eleven_to_fifteen(&t, pid);
	cr_assert_eq(snap_save(&t, pid, 15, json_pack("{sIss}", "s", (json_int_t)15, "v", "new")),
	             0);
	call_t c = {0};
	cr_assert_eq(snap_load(&t, pid, INF, &c), 15);
	cr_assert_str_eq(json_string_value(json_object_get(c.snap.data, "v")), "new");
	call_free(&c);
	cr_assert_eq(snap_seq(&t, pid, 14), 14);
	t_close(&t);
}

Test(snapshots, large_snapshot_round_trips, TEST_OPT)
{
	tctx_t t;
	char pid[256];
	t_open(&t, "snap_large");
	pid_of(&t, "a", pid, sizeof pid);
	char blob[10001];
	for (int i = 0; i < 10000; i++)
		blob[i] = (char)('a' + i % 26);
	blob[10000] = '\0';
	json_t *data = json_pack("{ss}", "blob", blob);
	cr_assert_eq(snap_save(&t, pid, 1, json_incref(data)), 0);
	call_t c = {0};
	cr_assert_eq(snap_load(&t, pid, INF, &c), 1);
	cr_assert(json_equal(c.snap.data, data));
	call_free(&c);
	json_decref(data);
	t_close(&t);
}

Test(snapshots, non_object_snapshot_is_rejected, TEST_OPT)
{
	tctx_t t;
	char pid[256];
	t_open(&t, "snap_reject");
	pid_of(&t, "a", pid, sizeof pid);
	cr_assert_eq(snap_save(&t, pid, 3, json_integer(3)), SKALD_EREJECTED);
	cr_assert_eq(snap_seq(&t, pid, INF), 0);
	t_close(&t);
}

/* ------------------------------------------------------------------------ */
/* Generated documents round-trip                                            */

/* Every document a store accepts comes back equal as a JSON value (numbers
 * keep their kind and value, strings their bytes); a document it cannot keep
 * is refused at the write with SKALD_EREJECTED and a reason, and nothing is
 * stored. SKALD_TEST_SEED=N repeats a run. */

#define GENERATED_DOCS 250

static uint64_t test_seed(void)
{
	const char *e = getenv("SKALD_TEST_SEED");
	if (e && *e)
		return strtoull(e, NULL, 0);
	return (uint64_t)rand32() << 32 | rand32();
}

/* The start of v's JSON text, for a failure message. */
static char *excerpt(const json_t *v)
{
	char *text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	if (text && strlen(text) > 400)
		strcpy(text + 396, "...");
	return text;
}

/* Saves doc as a snapshot (or appends it as the only event) of pid. */
static int keep(tctx_t *t, const char *pid, json_t *doc, int as_snapshot)
{
	call_t c = {0};
	if (as_snapshot) {
		skald_snapshot_t s = {pid, 1, 1, doc, 0};
		RUN(t, &c, skald_journal_snapshot_save(t->j, &s, on_done, &c));
		return c.status;
	}
	skald_event_t e = {.type = "conformance.generated", .version = 1, .data = doc};
	skald_write_t w = {pid, 0, &e, 1, 1};
	RUN(t, &c, skald_journal_append(t->j, &w, 1, on_append, &c));
	cr_assert_eq(c.status, w.status);
	return w.status;
}

/* What pid holds: its snapshot's data or its only event's (a new
 * reference), NULL when nothing is stored. */
static json_t *kept(tctx_t *t, const char *pid, int as_snapshot, uint64_t seed, unsigned i)
{
	call_t c = {0};
	json_t *back = NULL;
	if (as_snapshot) {
		RUN(t, &c, skald_journal_snapshot_load(t->j, pid, INF, on_snapshot, &c));
		cr_assert_eq(c.status, 0, "seed %llu document %u: the load failed (%d): %s",
		             (unsigned long long)seed, i, c.status, skald_journal_errmsg(t->j));
		back = json_incref(c.snap.data);
	} else {
		RUN(t, &c, skald_journal_read(t->j, pid, 1, INF, INF, on_events, on_done, &c));
		cr_assert_eq(c.status, 0, "seed %llu document %u: the read failed (%d): %s",
		             (unsigned long long)seed, i, c.status, skald_journal_errmsg(t->j));
		cr_assert_leq(c.nev, 1);
		if (c.nev == 1)
			back = json_incref(c.ev[0].data);
	}
	call_free(&c);
	return back;
}

static void generated_documents_round_trip(const char *name, int as_snapshot)
{
	tctx_t t;
	char pid[256];
	t_open(&t, name);
	uint64_t seed = test_seed();
	jsongen_t g;
	jsongen_init(&g, seed);
	unsigned refused = 0;
	for (unsigned i = 0; i < GENERATED_DOCS; i++) {
		char suffix[32];
		snprintf(suffix, sizeof suffix, "doc-%u", i);
		pid_of(&t, suffix, pid, sizeof pid);
		json_t *doc = jsongen_doc(&g, i);
		int status = keep(&t, pid, doc, as_snapshot);
		json_t *back = kept(&t, pid, as_snapshot, seed, i);
		char *wrote = excerpt(doc);
		if (g.too_deep) {
			cr_assert_eq(status, SKALD_EREJECTED,
			             "seed %llu document %u: data deeper than SKALD_DATA_MAX_DEPTH "
			             "was not refused (%d)",
			             (unsigned long long)seed, i, status);
		}
		if (status == SKALD_EREJECTED) {
			refused++;
			const char *why = skald_journal_errmsg(t.j);
			cr_assert(
			        g.exotic || g.too_deep,
			        "seed %llu document %u: refused a document every store must keep: "
			        "%s; the document: %s",
			        (unsigned long long)seed, i, why, wrote);
			cr_assert(why && *why, "seed %llu document %u: refused without a reason",
			          (unsigned long long)seed, i);
			cr_assert_null(back, "seed %llu document %u: refused, yet stored",
			               (unsigned long long)seed, i);
		} else {
			cr_assert_eq(status, 0, "seed %llu document %u: the write failed (%d): %s",
			             (unsigned long long)seed, i, status,
			             skald_journal_errmsg(t.j));
			cr_assert_not_null(back, "seed %llu document %u: accepted, then missing",
			                   (unsigned long long)seed, i);
			char *read = excerpt(back);
			cr_assert(json_equal(doc, back),
			          "seed %llu document %u changed in the store:\nwrote %s\nread  %s",
			          (unsigned long long)seed, i, wrote, read);
			free(read);
		}
		free(wrote);
		json_decref(back);
		json_decref(doc);
	}
	cr_log_info("%s: %u documents, %u refused (seed %llu)", name, GENERATED_DOCS, refused,
	            (unsigned long long)seed);
	t_close(&t);
}

Test(journal, generated_documents_round_trip_as_events, TEST_OPT)
{
	generated_documents_round_trip("generated_events", 0);
}

Test(snapshots, generated_documents_round_trip, TEST_OPT)
{
	generated_documents_round_trip("generated_snapshots", 1);
}

/* ------------------------------------------------------------------------ */
/* Registry and URI selection (built-in memory store)                        */

Test(registry, unknown_scheme_lists_the_registered_ones, TEST_OPT)
{
	uv_loop_t loop;
	skald_journal_t *j = (skald_journal_t *)&loop;
	cr_assert_eq(uv_loop_init(&loop), 0);
	cr_assert_eq(skald_journal_open(&loop, "nosuchstore://user:secret@host/db", &j),
	             SKALD_ESCHEME);
	cr_assert_null(j);
	const char *msg = skald_journal_open_errmsg();
	cr_assert(strstr(msg, "memory") != NULL, "message: %s", msg);
	cr_assert(strstr(msg, "nosuchstore") != NULL, "message: %s", msg);
	cr_assert(strstr(msg, "secret") == NULL, "a password leaked into: %s", msg);
	/* Schemes match exactly. */
	cr_assert_eq(skald_journal_open(&loop, "Memory://x", &j), SKALD_ESCHEME);
	cr_assert_eq(skald_journal_open(&loop, "memoryx://x", &j), SKALD_ESCHEME);
	cr_assert_eq(skald_journal_open(&loop, "mem://x", &j), SKALD_ESCHEME);
	cr_assert_eq(uv_loop_close(&loop), 0);
}

Test(registry, uri_without_scheme_is_malformed, TEST_OPT)
{
	uv_loop_t loop;
	skald_journal_t *j;
	cr_assert_eq(uv_loop_init(&loop), 0);
	cr_assert_eq(skald_journal_open(&loop, "just-a-name", &j), SKALD_EURI);
	cr_assert_eq(skald_journal_open(&loop, "://x", &j), SKALD_EURI);
	cr_assert_gt(strlen(skald_journal_open_errmsg()), 0);
	cr_assert_eq(skald_journal_open(&loop, "memory:x", &j), SKALD_EURI);
	cr_assert_eq(skald_journal_open(&loop, "memory://x?bogus=1", &j), SKALD_EURI);
	cr_assert(strstr(skald_journal_open_errmsg(), "bogus") != NULL, "%s",
	          skald_journal_open_errmsg());
	cr_assert_eq(skald_journal_open(&loop, "memory://x?batch=0", &j), SKALD_EURI);
	cr_assert_eq(uv_loop_close(&loop), 0);
}

static void close_and_run(uv_loop_t *loop, skald_journal_t *j)
{
	int closed = 0;
	cr_assert_eq(skald_journal_close(j, on_closed, &closed), 0);
	uv_run(loop, UV_RUN_DEFAULT);
	cr_assert_eq(closed, 1);
}

Test(registry, null_uri_means_the_environment, TEST_OPT)
{
	uv_loop_t loop;
	skald_journal_t *j;
	cr_assert_eq(uv_loop_init(&loop), 0);
	unsetenv("SKALD_JOURNAL");
	cr_assert_eq(skald_journal_open(&loop, NULL, &j), SKALD_EURI);
	cr_assert(strstr(skald_journal_open_errmsg(), "SKALD_JOURNAL") != NULL);
	setenv("SKALD_JOURNAL", "memory://from-env", 1);
	cr_assert_eq(skald_journal_open(&loop, NULL, &j), 0, "%s", skald_journal_open_errmsg());
	cr_assert_str_eq(skald_journal_open_errmsg(), "");
	cr_assert_str_eq(skald_journal_scheme(j), "memory");
	cr_assert_eq(skald_journal_loop(j), &loop);
	close_and_run(&loop, j);
	cr_assert_eq(uv_loop_close(&loop), 0);
}

Test(registry, lookup_finds_the_memory_store, TEST_OPT)
{
	const skald_store_t *s = skald_store_lookup("memory");
	cr_assert_not_null(s);
	cr_assert_eq(s->abi, SKALD_STORE_ABI);
	cr_assert(s->caps & SKALD_CAP_ATOMIC_WRITES);
	cr_assert_null(skald_store_lookup("memory:"));
	cr_assert_null(skald_store_lookup(NULL));
	/* Registering the same table again is harmless. */
	cr_assert_eq(skald_store_register(s), 0);
}

static int fake_fini_calls;

static int fake_open(void *state, skald_journal_t *j, uv_loop_t *loop, const char *uri)
{
	skald_journal_set_errmsg(j, "fake store: cannot reach %s", "the moon");
	return SKALD_EBACKEND;
}

static void fake_close(void *state, void (*done)(skald_journal_t *j))
{
}

static void fake_fini(void *state)
{
	fake_fini_calls++;
}

static int fake_append(void *state, skald_write_t *w, size_t n, skald_append_fn cb, void *arg)
{
	return SKALD_EUNSUPPORTED;
}

static int fake_read(void *state, const char *pid, uint64_t from, uint64_t to, uint64_t max,
                     skald_events_fn batch, skald_done_fn done, void *arg)
{
	return SKALD_EUNSUPPORTED;
}

static int fake_highest(void *state, const char *pid, skald_seq_fn cb, void *arg)
{
	return SKALD_EUNSUPPORTED;
}

static int fake_delete_to(void *state, const char *pid, uint64_t to, skald_done_fn cb, void *arg)
{
	return SKALD_EUNSUPPORTED;
}

#define FAKE_MEMBERS                                                                               \
	.open = fake_open, .close = fake_close, .fini = fake_fini, .append = fake_append,          \
	.read = fake_read, .highest = fake_highest, .delete_to = fake_delete_to

static const skald_store_t fake_store = {
        .abi = SKALD_STORE_ABI,
        .schemes = {"conformance-fake", "conformance-fake2"},
        .state_size = 24,
        FAKE_MEMBERS,
};

Test(registry, duplicate_scheme_is_refused, TEST_OPT)
{
	static const skald_store_t dup = {
	        .abi = SKALD_STORE_ABI, .schemes = {"other", "memory"}, FAKE_MEMBERS};
	cr_assert_eq(skald_store_register(&dup), SKALD_EEXISTS);
	cr_assert_null(skald_store_lookup("other"), "a refused table registers no scheme");
	cr_assert_eq(skald_store_register(&fake_store), 0);
	static const skald_store_t dup2 = {
	        .abi = SKALD_STORE_ABI, .schemes = {"conformance-fake2"}, FAKE_MEMBERS};
	cr_assert_eq(skald_store_register(&dup2), SKALD_EEXISTS);
}

Test(registry, invalid_tables_are_refused, TEST_OPT)
{
	static const skald_store_t wrong_abi = {
	        .abi = SKALD_STORE_ABI + 1, .schemes = {"conformance-abi"}, FAKE_MEMBERS};
	static const skald_store_t no_scheme = {.abi = SKALD_STORE_ABI, FAKE_MEMBERS};
	static const skald_store_t bad_scheme = {
	        .abi = SKALD_STORE_ABI, .schemes = {"Bad:Scheme"}, FAKE_MEMBERS};
	static const skald_store_t no_read = {.abi = SKALD_STORE_ABI,
	                                      .schemes = {"conformance-noread"},
	                                      .open = fake_open,
	                                      .close = fake_close,
	                                      .fini = fake_fini,
	                                      .append = fake_append,
	                                      .highest = fake_highest,
	                                      .delete_to = fake_delete_to};
	static const skald_store_t caps_without_members = {.abi = SKALD_STORE_ABI,
	                                                   .schemes = {"conformance-caps"},
	                                                   .caps = SKALD_CAP_SNAPSHOTS,
	                                                   FAKE_MEMBERS};
	cr_assert_eq(skald_store_register(NULL), SKALD_EINVAL);
	cr_assert_eq(skald_store_register(&wrong_abi), SKALD_EINVAL);
	cr_assert_eq(skald_store_register(&no_scheme), SKALD_EINVAL);
	cr_assert_eq(skald_store_register(&bad_scheme), SKALD_EINVAL);
	cr_assert_eq(skald_store_register(&no_read), SKALD_EINVAL);
	cr_assert_eq(skald_store_register(&caps_without_members), SKALD_EINVAL);
}

Test(registry, failed_open_reports_and_calls_fini, TEST_OPT)
{
	uv_loop_t loop;
	skald_journal_t *j;
	cr_assert_eq(uv_loop_init(&loop), 0);
	cr_assert_eq(skald_store_register(&fake_store), 0);
	fake_fini_calls = 0;
	cr_assert_eq(skald_journal_open(&loop, "conformance-fake2://x", &j), SKALD_EBACKEND);
	cr_assert_null(j);
	cr_assert_eq(fake_fini_calls, 1, "fini runs after a failed open");
	cr_assert(strstr(skald_journal_open_errmsg(), "the moon") != NULL, "%s",
	          skald_journal_open_errmsg());
	cr_assert_eq(uv_loop_close(&loop), 0);
}

/* A store with no capability and only the required members: enough to open
 * and close, to check what the front refuses on its behalf. */
typedef struct bare_s {
	uv_idle_t idle;
	skald_journal_t *j;
	void (*done)(skald_journal_t *j);
} bare_t;

static int bare_open(void *state, skald_journal_t *j, uv_loop_t *loop, const char *uri)
{
	bare_t *b = state;
	b->j = j;
	uv_idle_init(loop, &b->idle);
	b->idle.data = b;
	return 0;
}

static void bare_closed(uv_handle_t *h)
{
	bare_t *b = h->data;
	b->done(b->j);
}

static void bare_close(void *state, void (*done)(skald_journal_t *j))
{
	bare_t *b = state;
	b->done = done;
	uv_close((uv_handle_t *)&b->idle, bare_closed);
}

static void bare_fini(void *state)
{
}

static const skald_store_t bare_store = {
        .abi = SKALD_STORE_ABI,
        .schemes = {"conformance-bare"},
        .state_size = sizeof(bare_t),
        .open = bare_open,
        .close = bare_close,
        .fini = bare_fini,
        .append = fake_append,
        .read = fake_read,
        .highest = fake_highest,
        .delete_to = fake_delete_to,
};

Test(registry, front_refuses_what_a_store_cannot_do, TEST_OPT)
{
	uv_loop_t loop;
	skald_journal_t *j;
	cr_assert_eq(uv_loop_init(&loop), 0);
	cr_assert_eq(skald_store_register(&bare_store), 0);
	cr_assert_eq(skald_journal_open(&loop, "conformance-bare://", &j), 0);
	cr_assert_eq(skald_journal_caps(j), 0);
	call_t c = {.returned = 1};
	json_t *obj = json_object();
	skald_event_t ev[2] = {{.type = TYPE_COUNTED, .data = obj},
	                       {.type = TYPE_COUNTED, .data = obj}};
	skald_write_t w = {"a", 0, ev, 2, 1};
	skald_snapshot_t snap = {"a", 1, 1, obj, 0};
	cr_assert_eq(skald_journal_append(j, &w, 1, on_append, &c), SKALD_EUNSUPPORTED,
	             "several events need SKALD_CAP_ATOMIC_WRITES");
	cr_assert(strstr(skald_journal_errmsg(j), "atomic") != NULL, "%s", skald_journal_errmsg(j));
	cr_assert_eq(skald_journal_snapshot_save(j, &snap, on_done, &c), SKALD_EUNSUPPORTED);
	cr_assert_eq(skald_journal_snapshot_load(j, "a", INF, on_snapshot, &c), SKALD_EUNSUPPORTED);
	cr_assert_eq(skald_journal_snapshot_delete(j, "a", 1, on_done, &c), SKALD_EUNSUPPORTED);
	cr_assert_eq(skald_journal_snapshot_delete_to(j, "a", 1, on_done, &c), SKALD_EUNSUPPORTED);
	cr_assert_eq(skald_journal_read_all(j, 0, INF, on_events, on_done, &c), SKALD_EUNSUPPORTED);
	cr_assert_eq(skald_journal_list_ids(j, NULL, NULL, INF, on_ids, on_done, &c),
	             SKALD_EUNSUPPORTED);
	/* A store's own refusal passes through. */
	cr_assert_eq(skald_journal_highest(j, "a", on_seq, &c), SKALD_EUNSUPPORTED);
	close_and_run(&loop, j);
	cr_assert_eq(c.calls, 0);
	json_decref(obj);
	cr_assert_eq(uv_loop_close(&loop), 0);
}

Test(registry, memory_batches_follow_the_batch_option, TEST_OPT)
{
	tctx_t t;
	char pid[256];
	t_open_uri(&t, "mem_batch", "memory://batch-test?batch=2");
	pid_of(&t, "a", pid, sizeof pid);
	write_five(&t, pid);
	call_t c = {0};
	read_range(&t, pid, 1, INF, INF, &c);
	expect_seqs(&c, pid, 1, 5);
	cr_assert_eq(c.batches, 3, "5 events in batches of 2");
	call_free(&c);
	RUN(&t, &c, skald_journal_list_ids(t.j, t.prefix, NULL, INF, on_ids, on_done, &c));
	cr_assert_eq(c.nids, 1);
	call_free(&c);
	t_close(&t);
}

Test(registry, private_memory_journal_is_not_shared, TEST_OPT)
{
	tctx_t t1, t2;
	char pid[256];
	t_open_uri(&t1, "mem_private", "memory://");
	t_open_uri(&t2, "mem_private", "memory://");
	pid_of(&t1, "a", pid, sizeof pid);
	cr_assert_eq(append_n(&t1, pid, 0, 3), 0);
	cr_assert_eq(highest(&t1, pid), 3);
	cr_assert_eq(highest(&t2, pid), 0);
	t_close(&t1);
	t_close(&t2);
}
