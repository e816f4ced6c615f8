/*
 * tests/stores/snapshots.c - conformance, snapshots (Akka SnapshotStoreSpec).
 */
#include <stdlib.h>
#include <string.h>

#include "tests/stores/harness.h"

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
