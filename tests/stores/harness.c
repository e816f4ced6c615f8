/*
 * tests/stores/harness.c - loops, handles and recorded outcomes of the
 * conformance suite (see harness.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tests/stores/harness.h"

/* ------------------------------------------------------------------------ */
/* Harness                                                                   */

const char *store_uri(void)
{
	static char buf[64];
	const char *u = getenv("SKALD_TEST_STORE");
	if (u && *u)
		return u;
	snprintf(buf, sizeof buf, "memory://conformance-%d", (int)getpid());
	return buf;
}

uint32_t rand32(void)
{
	uint32_t r = 0;
	if (uv_random(NULL, NULL, &r, sizeof r, 0, NULL) != 0)
		r = (uint32_t)time(NULL) ^ (uint32_t)clock();
	return r;
}

int64_t now_ms(void)
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
void run_until(tctx_t *t, const int *counter, int target)
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

void t_open_uri(tctx_t *t, const char *name, const char *uri)
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

void t_open(tctx_t *t, const char *name)
{
	t_open_uri(t, name, store_uri());
}

void on_closed(skald_journal_t *j, void *arg)
{
	(*(int *)arg)++;
}

void t_close(tctx_t *t)
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
const char *pid_of(tctx_t *t, const char *suffix, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s", t->prefix, suffix);
	return buf;
}

/* ------------------------------------------------------------------------ */
/* One operation's outcome                                                   */

void call_free(call_t *c)
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

void completed(call_t *c)
{
	cr_assert(c->returned, "a completion ran before its call returned");
	c->calls++;
}

void on_done(skald_journal_t *j, int status, void *arg)
{
	call_t *c = arg;
	completed(c);
	c->status = status;
}

void on_seq(skald_journal_t *j, int status, uint64_t seq, void *arg)
{
	call_t *c = arg;
	completed(c);
	c->status = status;
	c->seq = seq;
}

void on_append(skald_journal_t *j, int status, skald_write_t *w, size_t n, void *arg)
{
	call_t *c = arg;
	completed(c);
	c->status = status;
}

int on_events(skald_journal_t *j, const skald_event_t *ev, size_t n, void *arg)
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

int on_ids(skald_journal_t *j, const skald_persistence_id_t *ids, size_t n, void *arg)
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

void on_snapshot(skald_journal_t *j, int status, const skald_snapshot_t *snap, void *arg)
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

/* ------------------------------------------------------------------------ */
/* Synchronous helpers                                                       */

/* Appends events seq expected+1 .. expected+n in one atomic write; data is
 * {"n": seq}. Returns the status. */
int append_n(tctx_t *t, const char *pid, uint64_t expected, size_t n)
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

void read_range(tctx_t *t, const char *pid, uint64_t from, uint64_t to, uint64_t max, call_t *c)
{
	RUN(t, c, skald_journal_read(t->j, pid, from, to, max, on_events, on_done, c));
}

/* Asserts that c read exactly seq first..last of pid (none if first > last),
 * written by append_n. */
void expect_seqs(const call_t *c, const char *pid, uint64_t first, uint64_t last)
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

uint64_t highest(tctx_t *t, const char *pid)
{
	call_t c = {0};
	RUN(t, &c, skald_journal_highest(t->j, pid, on_seq, &c));
	cr_assert_eq(c.status, 0, "highest failed: %d", c.status);
	return c.seq;
}

int delete_to(tctx_t *t, const char *pid, uint64_t to)
{
	call_t c = {0};
	RUN(t, &c, skald_journal_delete_to(t->j, pid, to, on_done, &c));
	return c.status;
}

/* Writes seq 1..5 of pid as the batches [1], [2], [3], [4, 5]. */
void write_five(tctx_t *t, const char *pid)
{
	cr_assert_eq(append_n(t, pid, 0, 1), 0);
	cr_assert_eq(append_n(t, pid, 1, 1), 0);
	cr_assert_eq(append_n(t, pid, 2, 1), 0);
	cr_assert_eq(append_n(t, pid, 3, 2), 0);
}

/* The offset just before the first event written by this test, or 0 when the
 * store does not report offsets at append. */
uint64_t offset_before(tctx_t *t, const char *pid)
{
	call_t c = {0};
	read_range(t, pid, 1, 1, 1, &c);
	cr_assert_eq(c.nev, 1);
	uint64_t off = c.ev[0].offset;
	call_free(&c);
	return off ? off - 1 : 0;
}

/* Saves doc as a snapshot at seq 1 (or appends it as the only event) of
 * pid; returns the status. */
int keep_doc(tctx_t *t, const char *pid, json_t *doc, int as_snapshot)
{
	call_t c = {0};
	if (as_snapshot) {
		skald_snapshot_t s = {pid, 1, 1, doc, 0};
		RUN(t, &c, skald_journal_snapshot_save(t->j, &s, on_done, &c));
		return c.status;
	}
	skald_event_t e = {.type = "conformance.kept", .version = 1, .data = doc};
	skald_write_t w = {pid, 0, &e, 1, 1};
	RUN(t, &c, skald_journal_append(t->j, &w, 1, on_append, &c));
	cr_assert_eq(c.status, w.status);
	return w.status;
}

json_t *kept_doc(tctx_t *t, const char *pid, int as_snapshot)
{
	call_t c = {0};
	json_t *back = NULL;
	if (as_snapshot) {
		RUN(t, &c, skald_journal_snapshot_load(t->j, pid, INF, on_snapshot, &c));
		cr_assert_eq(c.status, 0, "%s: the snapshot load failed (%d): %s", pid, c.status,
		             skald_journal_errmsg(t->j));
		back = json_incref(c.snap.data);
	} else {
		RUN(t, &c, skald_journal_read(t->j, pid, 1, INF, INF, on_events, on_done, &c));
		cr_assert_eq(c.status, 0, "%s: the read failed (%d): %s", pid, c.status,
		             skald_journal_errmsg(t->j));
		cr_assert_leq(c.nev, 1);
		if (c.nev == 1)
			back = json_incref(c.ev[0].data);
	}
	call_free(&c);
	return back;
}
