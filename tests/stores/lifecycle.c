/*
 * tests/stores/lifecycle.c - conformance, handles and the completion rules: shared data,
 * concurrent writers on two threads, no completion before the call returns,
 * close with operations in flight, operations after close, refused
 * arguments.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "tests/stores/harness.h"

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
