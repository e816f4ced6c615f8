/*
 * tests/journal/faulty.c - the faulty:// store (stores/faulty/faulty.c) on
 * the memory store: its URI, and each failure it injects, checked through a
 * second, clean handle on the same data.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/stores/harness.h"

/* The memory database this test's faulty and clean handles share. */
static void db_name(char *buf, size_t len, const char *tag)
{
	snprintf(buf, len, "memory://faulty-%s-%d-%08x", tag, (int)getpid(), rand32());
}

/* Opens f on faulty://?inner=DB&OPTIONS and c on DB itself. */
static void open_pair(tctx_t *f, tctx_t *c, const char *tag, const char *options)
{
	char db[128], uri[512];
	db_name(db, sizeof db, tag);
	snprintf(uri, sizeof uri, "faulty://?inner=%s%s%s", db, options[0] ? "&" : "", options);
	t_open_uri(f, tag, uri);
	t_open_uri(c, tag, db);
	/* The same persistence ids through both. */
	memcpy(c->prefix, f->prefix, sizeof c->prefix);
}

static void expect_open_fails(const char *uri, int code, const char *needle)
{
	uv_loop_t loop;
	skald_journal_t *j = NULL;
	cr_assert_eq(uv_loop_init(&loop), 0);
	int rc = skald_journal_open(&loop, uri, &j);
	cr_assert_eq(rc, code, "open %s: %s, expected %s", uri, skald_err_name(rc),
	             skald_err_name(code));
	cr_assert_null(j);
	const char *msg = skald_journal_open_errmsg();
	cr_assert(strstr(msg, needle) != NULL, "open %s: message \"%s\" does not name \"%s\"", uri,
	          msg, needle);
	cr_assert(strstr(msg, "secret") == NULL, "a password leaked into: %s", msg);
	cr_assert_eq(uv_loop_close(&loop), 0, "a failed open left a handle on the loop");
}

Test(faulty, malformed_uris_are_refused_with_the_mistake_named, TEST_OPT)
{
	expect_open_fails("faulty://", SKALD_EURI, "faulty://?inner=URI");
	expect_open_fails("faulty://x?inner=memory://a", SKALD_EURI, "faulty://?inner=URI");
	expect_open_fails("faulty://?fail_every=2", SKALD_EURI, "inner=URI is required");
	expect_open_fails("faulty://?inner=", SKALD_EURI, "inner=URI is required");
	expect_open_fails("faulty://?bogus=1&inner=memory://a", SKALD_EURI, "\"bogus\"");
	expect_open_fails("faulty://?inner=memory://a&fail_every=x", SKALD_EURI, "fail_every");
	expect_open_fails("faulty://?inner=memory://a&delay_ms=-1", SKALD_EURI, "delay_ms");
	expect_open_fails("faulty://?inner=memory://a&lie_every=10000000000", SKALD_EURI,
	                  "lie_every");
	expect_open_fails("faulty://?inner=memory://a&ops=append,write", SKALD_EURI, "\"write\"");
	expect_open_fails("faulty://?inner=nosuch://u:secret@h/db", SKALD_ESCHEME, "nosuch");
	/* The inner store's own options stay the inner store's: an unknown
	 * one is refused by it, named. */
	expect_open_fails("faulty://?inner=memory://a?batch=2&bogus=1", SKALD_EURI, "bogus");
}

Test(faulty, without_faults_every_operation_reaches_the_inner_store, TEST_OPT)
{
	tctx_t f, c;
	char pid[256];
	/* The inner URI keeps its own option (batch=2), on either side of the
	 * faulty options. */
	open_pair(&f, &c, "clean", "fail_every=0&ops=all");
	pid_of(&f, "a", pid, sizeof pid);
	write_five(&f, pid);
	call_t r = {0};
	read_range(&f, pid, 1, INF, INF, &r);
	expect_seqs(&r, pid, 1, 5);
	call_free(&r);
	cr_assert_eq(highest(&c, pid), 5);
	t_close(&f);
	t_close(&c);

	char db[128], uri[512];
	db_name(db, sizeof db, "inner-options");
	snprintf(uri, sizeof uri, "faulty://?delay_ms=0&inner=%s?batch=2&lie_every=0", db);
	t_open_uri(&f, "inner_options", uri);
	pid_of(&f, "b", pid, sizeof pid);
	write_five(&f, pid);
	read_range(&f, pid, 1, INF, INF, &r);
	expect_seqs(&r, pid, 1, 5);
	cr_assert_eq(r.batches, 3, "batch=2 did not reach the inner store: %zu batches", r.batches);
	call_free(&r);
	t_close(&f);
}

Test(faulty, fail_every_fails_the_nth_operation_before_the_store, TEST_OPT)
{
	tctx_t f, c;
	char pid[256];
	open_pair(&f, &c, "fail", "ops=append&fail_every=2");
	pid_of(&f, "a", pid, sizeof pid);
	cr_assert_eq(append_n(&f, pid, 0, 1), 0);
	cr_assert_eq(append_n(&f, pid, 1, 1), SKALD_EBACKEND);
	const char *msg = skald_journal_errmsg(f.j);
	cr_assert(strstr(msg, "faulty:") && strstr(msg, "operation 2"), "message: %s", msg);
	cr_assert_eq(highest(&c, pid), 1, "a failed append was stored");
	/* Reads are not counted (ops=append): they never fail. */
	for (int i = 0; i < 3; i++)
		cr_assert_eq(highest(&f, pid), 1);
	cr_assert_eq(append_n(&f, pid, 1, 2), 0);
	cr_assert_eq(append_n(&f, pid, 3, 1), SKALD_EBACKEND);
	cr_assert_eq(highest(&c, pid), 3);
	t_close(&f);
	t_close(&c);
}

Test(faulty, counted_reads_fail_and_uncounted_kinds_pass, TEST_OPT)
{
	tctx_t f, c;
	char pid[256];
	open_pair(&f, &c, "reads", "ops=highest,read&fail_every=1");
	pid_of(&f, "a", pid, sizeof pid);
	cr_assert_eq(append_n(&f, pid, 0, 2), 0);
	call_t r = {0};
	RUN(&f, &r, skald_journal_highest(f.j, pid, on_seq, &r));
	cr_assert_eq(r.status, SKALD_EBACKEND);
	call_free(&r);
	read_range(&f, pid, 1, INF, INF, &r);
	cr_assert_eq(r.status, SKALD_EBACKEND);
	cr_assert_eq(r.nev, 0, "a failed read delivered events");
	call_free(&r);
	RUN(&f, &r, skald_journal_snapshot_load(f.j, pid, INF, on_snapshot, &r));
	cr_assert_eq(r.status, 0, "snapshot_load is not in ops, yet it failed");
	call_free(&r);
	t_close(&f);
	t_close(&c);
}

Test(faulty, reject_every_rejects_every_write_of_the_append, TEST_OPT)
{
	tctx_t f, c;
	char a[256], b[256];
	open_pair(&f, &c, "reject", "reject_every=1");
	pid_of(&f, "a", a, sizeof a);
	pid_of(&f, "b", b, sizeof b);
	json_t *d = json_pack("{si}", "n", 1);
	skald_event_t ea = {.type = "t", .version = 1, .data = d};
	skald_event_t eb = {.type = "t", .version = 1, .data = d};
	skald_write_t w[2] = {{a, 0, &ea, 1, 1}, {b, 0, &eb, 1, 1}};
	call_t r = {0};
	RUN(&f, &r, skald_journal_append(f.j, w, 2, on_append, &r));
	cr_assert_eq(r.status, SKALD_EREJECTED);
	cr_assert_eq(w[0].status, SKALD_EREJECTED);
	cr_assert_eq(w[1].status, SKALD_EREJECTED);
	json_decref(d);
	cr_assert_eq(highest(&c, a), 0, "a rejected write was stored");
	cr_assert_eq(highest(&c, b), 0, "a rejected write was stored");
	t_close(&f);
	t_close(&c);
}

Test(faulty, lie_every_stores_then_answers_failed, TEST_OPT)
{
	tctx_t f, c;
	char pid[256];
	open_pair(&f, &c, "lie", "ops=append,snapshot_save&lie_every=1");
	pid_of(&f, "a", pid, sizeof pid);
	cr_assert_eq(append_n(&f, pid, 0, 2), SKALD_EBACKEND);
	const char *msg = skald_journal_errmsg(f.j);
	cr_assert(strstr(msg, "took effect") != NULL, "message: %s", msg);
	cr_assert_eq(highest(&c, pid), 2, "the append answered as failed was not stored");
	/* Retrying the same write is now a conflict: it is there. */
	cr_assert_eq(append_n(&c, pid, 0, 2), SKALD_ECONFLICT);
	skald_snapshot_t s = {pid, 2, 1, json_pack("{si}", "s", 2), 0};
	call_t r = {0};
	RUN(&f, &r, skald_journal_snapshot_save(f.j, &s, on_done, &r));
	cr_assert_eq(r.status, SKALD_EBACKEND);
	json_decref(s.data);
	call_free(&r);
	RUN(&c, &r, skald_journal_snapshot_load(c.j, pid, INF, on_snapshot, &r));
	cr_assert_eq(r.status, 0);
	cr_assert(r.found, "the snapshot answered as failed was not saved");
	cr_assert_eq(r.snap.seq, 2);
	call_free(&r);
	t_close(&f);
	t_close(&c);
}

Test(faulty, drop_after_stores_the_first_half_of_a_batch_then_fails_it_whole, TEST_OPT)
{
	tctx_t f, c;
	char pid[4][256];
	open_pair(&f, &c, "drop", "ops=append&drop_after=2");
	for (int i = 0; i < 4; i++) {
		char sfx[8];
		snprintf(sfx, sizeof sfx, "p%d", i);
		pid_of(&f, sfx, pid[i], sizeof pid[i]);
	}
	/* Append 1 passes; append 2, one write: the connection is lost before
	 * any of it reached the store. */
	cr_assert_eq(append_n(&f, pid[0], 0, 1), 0);
	cr_assert_eq(append_n(&f, pid[0], 1, 1), SKALD_EBACKEND);
	cr_assert_eq(highest(&c, pid[0]), 1);
	cr_assert_eq(append_n(&f, pid[0], 1, 1), 0);
	/* Append 4, four writes: the first two are stored, then the connection
	 * is lost; every write hears "failed". */
	skald_event_t ev[4];
	skald_write_t w[4];
	for (int i = 0; i < 4; i++) {
		ev[i] = (skald_event_t){
		        .type = "t", .version = 1, .data = json_pack("{si}", "n", 1)};
		w[i] = (skald_write_t){pid[i], i == 0 ? 2 : 0, &ev[i], 1, 1};
	}
	call_t r = {0};
	RUN(&f, &r, skald_journal_append(f.j, w, 4, on_append, &r));
	cr_assert_eq(r.status, SKALD_EBACKEND);
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(w[i].status, SKALD_EBACKEND, "write %d: %s", i,
		             skald_err_name(w[i].status));
		json_decref(ev[i].data);
	}
	cr_assert(strstr(skald_journal_errmsg(f.j), "connection lost") != NULL);
	cr_assert_eq(highest(&c, pid[0]), 3, "the first write of the cut batch is missing");
	cr_assert_eq(highest(&c, pid[1]), 1, "the second write of the cut batch is missing");
	cr_assert_eq(highest(&c, pid[2]), 0, "a write after the cut was stored");
	cr_assert_eq(highest(&c, pid[3]), 0, "a write after the cut was stored");
	t_close(&f);
	t_close(&c);
}

Test(faulty, drop_after_cuts_a_read_after_drop_keep_events, TEST_OPT)
{
	tctx_t f, c;
	char pid[256];
	open_pair(&f, &c, "dropread", "ops=read,read_all,list_ids&drop_after=1&drop_keep=3");
	pid_of(&f, "a", pid, sizeof pid);
	write_five(&f, pid);
	write_five(&c, pid_of(&c, "b", (char[256]){0}, 256));
	call_t r = {0};
	read_range(&f, pid, 1, INF, INF, &r);
	cr_assert_eq(r.status, SKALD_EBACKEND);
	cr_assert_eq(r.nev, 3, "a cut read delivered %zu events, expected 3", r.nev);
	for (size_t i = 0; i < r.nev; i++)
		cr_assert_eq(r.ev[i].seq, i + 1);
	call_free(&r);
	RUN(&f, &r, skald_journal_read_all(f.j, 0, INF, on_events, on_done, &r));
	cr_assert_eq(r.status, SKALD_EBACKEND);
	cr_assert_eq(r.nev, 3);
	call_free(&r);
	RUN(&f, &r, skald_journal_list_ids(f.j, NULL, NULL, INF, on_ids, on_done, &r));
	cr_assert_eq(r.status, SKALD_EBACKEND);
	cr_assert_leq(r.nids, 3);
	call_free(&r);
	t_close(&f);
	t_close(&c);
}

Test(faulty, delayed_operations_keep_their_order_and_close_waits_for_them, TEST_OPT)
{
	tctx_t f, c;
	char pid[256];
	open_pair(&f, &c, "delay", "delay_ms=20");
	pid_of(&f, "a", pid, sizeof pid);
	/* An append, a read and a highest issued at once: each starts 20 ms
	 * late, in order, and sees the one before. */
	skald_event_t ev = {.type = "t", .version = 1, .data = json_pack("{si}", "n", 1)};
	skald_write_t w = {pid, 0, &ev, 1, 1};
	call_t a = {0}, r = {0}, h = {0};
	cr_assert_eq(skald_journal_append(f.j, &w, 1, on_append, &a), 0);
	a.returned = 1;
	cr_assert_eq(skald_journal_read(f.j, pid, 1, INF, INF, on_events, on_done, &r), 0);
	r.returned = 1;
	cr_assert_eq(skald_journal_highest(f.j, pid, on_seq, &h), 0);
	h.returned = 1;
	run_until(&f, &h.calls, 1);
	cr_assert_eq(a.calls, 1);
	cr_assert_eq(a.status, 0);
	cr_assert_eq(r.calls, 1);
	cr_assert_eq(r.status, 0, "read: %s", skald_err_name(r.status));
	cr_assert_eq(r.nev, 1, "the read issued after the append did not see it");
	cr_assert_eq(h.seq, 1);
	call_free(&r);

	/* An append still waiting for its delay when the handle closes: close
	 * completes after it, and it is stored. */
	call_t a2 = {0};
	w.expected_seq = 1;
	ev.seq = 0;
	cr_assert_eq(skald_journal_append(f.j, &w, 1, on_append, &a2), 0);
	a2.returned = 1;
	int closed = 0;
	cr_assert_eq(skald_journal_close(f.j, on_closed, &closed), 0);
	run_until(&f, &closed, 1);
	cr_assert_eq(a2.calls, 1);
	cr_assert_eq(a2.status, 0, "append before close: %s", skald_err_name(a2.status));
	json_decref(ev.data);
	uv_close((uv_handle_t *)&f.guard, NULL);
	uv_run(&f.loop, UV_RUN_DEFAULT);
	cr_assert_eq(uv_loop_close(&f.loop), 0, "handles left on the loop");
	cr_assert_eq(highest(&c, pid), 2);
	t_close(&c);
}
