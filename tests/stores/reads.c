/*
 * tests/stores/reads.c - conformance, reads: replay ranges (Akka JournalSpec), the fields of a
 * replayed event, payloads that must come back exactly, streaming.
 */
#include <stdlib.h>
#include <string.h>

#include "tests/stores/harness.h"

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
	/* Bounded batches (at most 1000 events by default, batch=N): a long
	 * history never arrives in one piece. */
	cr_assert_geq(c.batches, 5, "5000 events arrived in %zu batches", c.batches);
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
