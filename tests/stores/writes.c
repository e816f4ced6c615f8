/*
 * tests/stores/writes.c - conformance, writes: deletion, the single writer (conflicts), atomic
 * writes and rejections, several writes in one call.
 */
#include <stdlib.h>
#include <string.h>

#include "tests/stores/harness.h"

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
