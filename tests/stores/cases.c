/*
 * tests/stores/cases.c - conformance, the edges of deletion and snapshots
 * that a store gets wrong without noticing: a bound beyond the highest,
 * reads past the end, other ids left alone, the highest kept after a full
 * delete (and never returned as an event), long histories deleted in one
 * call; snapshot timestamps, versions, unicode and size.
 */
#include <stdlib.h>
#include <string.h>

#include "tests/stores/harness.h"

/* ------------------------------------------------------------------------ */
/* Deletion                                                                  */

Test(journal, delete_beyond_the_highest_spares_later_writes, TEST_OPT)
{
	tctx_t t;
	char pid[256];
	t_open(&t, "delete_beyond");
	pid_of(&t, "a", pid, sizeof pid);
	write_five(&t, pid);
	/* A finite bound far beyond the highest deletes up to the highest
	 * only: the events written after it stay. */
	cr_assert_eq(delete_to(&t, pid, 100), 0);
	cr_assert_eq(highest(&t, pid), 5);
	cr_assert_eq(append_n(&t, pid, 5, 3), 0);
	call_t c = {0};
	read_range(&t, pid, 1, INF, INF, &c);
	expect_seqs(&c, pid, 6, 8);
	call_free(&c);
	cr_assert_eq(highest(&t, pid), 8);
	t_close(&t);
}

Test(journal, read_from_beyond_the_highest_with_an_open_end_reads_nothing, TEST_OPT)
{
	tctx_t t;
	char pid[256];
	t_open(&t, "read_beyond");
	pid_of(&t, "a", pid, sizeof pid);
	write_five(&t, pid);
	for (uint64_t from = 6; from <= 1000; from *= 10) {
		call_t c = {0};
		read_range(&t, pid, from, INF, INF, &c);
		expect_seqs(&c, pid, 1, 0);
		call_free(&c);
	}
	call_t c = {0};
	read_range(&t, pid, INF, INF, INF, &c);
	expect_seqs(&c, pid, 1, 0);
	call_free(&c);
	t_close(&t);
}

Test(journal, delete_leaves_other_ids_events_and_snapshots_intact, TEST_OPT)
{
	tctx_t t;
	char a[256], b[256], ab[256];
	t_open(&t, "delete_others");
	pid_of(&t, "a", a, sizeof a);
	pid_of(&t, "b", b, sizeof b);
	/* An id that a prefix match on "a" would catch. */
	pid_of(&t, "ab", ab, sizeof ab);
	write_five(&t, a);
	write_five(&t, b);
	write_five(&t, ab);
	skald_snapshot_t sb = {b, 3, 1, json_pack("{si}", "s", 3), 0};
	skald_snapshot_t sab = {ab, 4, 1, json_pack("{si}", "s", 4), 0};
	call_t c = {0};
	RUN(&t, &c, skald_journal_snapshot_save(t.j, &sb, on_done, &c));
	cr_assert_eq(c.status, 0);
	call_free(&c);
	RUN(&t, &c, skald_journal_snapshot_save(t.j, &sab, on_done, &c));
	cr_assert_eq(c.status, 0);
	call_free(&c);
	json_decref(sb.data);
	json_decref(sab.data);
	cr_assert_eq(delete_to(&t, a, INF), 0);
	RUN(&t, &c, skald_journal_snapshot_delete_to(t.j, a, INF, on_done, &c));
	cr_assert_eq(c.status, 0);
	call_free(&c);
	const char *others[] = {b, ab};
	for (int i = 0; i < 2; i++) {
		read_range(&t, others[i], 1, INF, INF, &c);
		expect_seqs(&c, others[i], 1, 5);
		call_free(&c);
		json_t *snap = kept_doc(&t, others[i], 1);
		cr_assert_not_null(snap, "%s lost its snapshot", others[i]);
		cr_assert_eq(json_integer_value(json_object_get(snap, "s")), 3 + i);
		json_decref(snap);
	}
	t_close(&t);
}

Test(journal, fully_deleted_id_keeps_its_highest_is_listed_and_is_absent_from_the_global_order,
     TEST_OPT)
{
	tctx_t t;
	char pid[256];
	t_open(&t, "delete_marker");
	pid_of(&t, "a", pid, sizeof pid);
	write_five(&t, pid);
	uint64_t base = offset_before(&t, pid);
	cr_assert_eq(delete_to(&t, pid, INF), 0);
	/* Whatever keeps the highest (a marker row, an emptied document) is
	 * never an event. */
	call_t c = {0};
	RUN(&t, &c, skald_journal_read_all(t.j, base, INF, on_events, on_done, &c));
	cr_assert_eq(c.status, 0);
	for (size_t i = 0; i < c.nev; i++)
		cr_assert_str_neq(c.ev[i].pid, pid,
		                  "the global order returned seq %llu of a deleted id",
		                  (unsigned long long)c.ev[i].seq);
	call_free(&c);
	RUN(&t, &c, skald_journal_list_ids(t.j, t.prefix, NULL, INF, on_ids, on_done, &c));
	cr_assert_eq(c.status, 0);
	cr_assert_eq(c.nids, 1, "the deleted id is not listed");
	cr_assert_str_eq(c.ids[0], pid);
	cr_assert_eq(c.highs[0], 5);
	call_free(&c);
	cr_assert_eq(highest(&t, pid), 5);
	t_close(&t);
}

Test(journal, delete_across_a_history_of_many_writes, TEST_OPT)
{
	/* 80 writes of one event: more than a store walks one by one
	 * (MongoDB's WALK_LIMIT, 32 documents). */
	tctx_t t;
	char pid[256];
	t_open(&t, "delete_many");
	pid_of(&t, "a", pid, sizeof pid);
	for (uint64_t s = 0; s < 80; s++)
		cr_assert_eq(append_n(&t, pid, s, 1), 0);
	cr_assert_eq(delete_to(&t, pid, 50), 0);
	call_t c = {0};
	read_range(&t, pid, 1, INF, INF, &c);
	expect_seqs(&c, pid, 51, 80);
	call_free(&c);
	cr_assert_eq(delete_to(&t, pid, INF), 0);
	read_range(&t, pid, 1, INF, INF, &c);
	expect_seqs(&c, pid, 1, 0);
	call_free(&c);
	cr_assert_eq(highest(&t, pid), 80);
	cr_assert_eq(append_n(&t, pid, 80, 1), 0);
	read_range(&t, pid, 1, INF, INF, &c);
	expect_seqs(&c, pid, 81, 81);
	call_free(&c);
	t_close(&t);
}

/* ------------------------------------------------------------------------ */
/* Snapshots                                                                 */

static void save(tctx_t *t, skald_snapshot_t *s)
{
	call_t c = {0};
	RUN(t, &c, skald_journal_snapshot_save(t->j, s, on_done, &c));
	cr_assert_eq(c.status, 0, "save: %s", skald_journal_errmsg(t->j));
}

Test(snapshots, timestamp_and_version_are_kept_as_given, TEST_OPT)
{
	tctx_t t;
	char pid[256];
	t_open(&t, "snap_fields");
	pid_of(&t, "a", pid, sizeof pid);
	static const int versions[] = {0x7fffffff, 2, 17};
	static const int64_t stamps[] = {1, 1700000000123, 4102444800999};
	for (int i = 0; i < 3; i++) {
		skald_snapshot_t s = {pid, (uint64_t)i + 1, versions[i], json_pack("{si}", "i", i),
		                      stamps[i]};
		save(&t, &s);
		json_decref(s.data);
		call_t c = {0};
		RUN(&t, &c, skald_journal_snapshot_load(t.j, pid, INF, on_snapshot, &c));
		cr_assert(c.found);
		cr_assert_eq(c.snap.seq, (uint64_t)i + 1);
		cr_assert_eq(c.snap.version, versions[i]);
		cr_assert_eq(c.snap.timestamp, stamps[i], "timestamp %lld came back as %lld",
		             (long long)stamps[i], (long long)c.snap.timestamp);
		call_free(&c);
	}
	t_close(&t);
}

Test(snapshots, unicode_and_one_mebibyte_data_round_trip, TEST_OPT)
{
	tctx_t t;
	char pid[256];
	t_open(&t, "snap_data");
	pid_of(&t, "\xc3\xa9t\xc3\xa9-\xf0\x9f\x8e\xb2", pid, sizeof pid);
	size_t len = (size_t)1 << 20;
	char *blob = malloc(len + 1);
	/* Two, three and four byte characters, and escapes. */
	static const char *const parts[] = {
	        "\xc3\xa9", "\xe6\x97\xa5", "\xf0\x9f\x8e\xb2", "\"", "\\", "\n", "a"};
	size_t n = 0;
	for (uint32_t r = rand32(); n < len - 4;) {
		r = r * 1103515245u + 12345u;
		const char *p = parts[(r >> 16) % 7];
		memcpy(blob + n, p, strlen(p));
		n += strlen(p);
	}
	blob[n] = '\0';
	json_t *data = json_pack("{ss s{ss}}", "blob", blob, "\xd0\xba\xd0\xbb\xd1\x8e\xd1\x87",
	                         "k", "\xd0\xb7\xd0\xbd\xd0\xb0\xd1\x87");
	cr_assert_not_null(data);
	skald_snapshot_t s = {pid, 9, 1, data, 0};
	save(&t, &s);
	json_t *back = kept_doc(&t, pid, 1);
	cr_assert_not_null(back);
	cr_assert(json_equal(back, data), "the 1 MiB unicode snapshot changed");
	json_decref(back);
	call_t c = {0};
	RUN(&t, &c, skald_journal_snapshot_delete(t.j, pid, 9, on_done, &c));
	cr_assert_eq(c.status, 0);
	json_decref(data);
	free(blob);
	t_close(&t);
}
