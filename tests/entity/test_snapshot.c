/*
 * tests/entity/test_snapshot.c - snapshots: every N events and on demand,
 * recovery from the latest one, and failures that must not be fatal.
 */
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

TestSuite(snapshot, .init = entity_fixture, .timeout = SUITE_TIMEOUT);

static void pid_of(char *pid, size_t len, const char *id)
{
	snprintf(pid, len, "acc-%s", id);
}

static void stop_entity(skald_system_t *sys, skald_ref_t e)
{
	cr_assert_eq(skald_stop(sys, e), 0);
	int reason = await_down(e);
	cr_assert_eq(reason, 0, "stopped with %s", skald_err_name(reason));
}

/* Persists v = first..last one command at a time; each must be stored. */
static void add_each(skald_system_t *sys, skald_ref_t e, long first, long last)
{
	for (long v = first; v <= last; v++) {
		reply_t *r = ask_op(sys, e, C_ADD, v, 0);
		cr_assert_eq(r->status, 0, "persist %ld: %s", v, skald_strerror(r->status));
		cr_assert_eq(r->seq, (uint64_t)v);
		free(r);
	}
}

/* Asserts that pid has no snapshot. */
static void assert_no_snapshot(jloop_t *l, const char *pid)
{
	uint64_t seq = 0;
	json_t *data = NULL;
	int found = jl_snapshot_load(l, pid, SKALD_SEQ_MAX, &seq, &data);
	json_decref(data);
	cr_assert_eq(found, 0, "a snapshot at seq %llu was stored", (unsigned long long)seq);
}

Test(snapshot, snapshot_every_n_events_saves_snapshots)
{
	skald_system_t *sys = sys_start(store_uri(), 2);
	skald_ref_t obs = observer_start(sys);
	char id[128], pid[192];
	unique_id(id, sizeof id, "every");
	pid_of(pid, sizeof pid, id);
	skald_ref_t e = spawn_watched(sys, obs, &acc_every5_type, id);
	add_each(sys, e, 1, 12);

	jloop_t l;
	jl_open(&l, store_uri());
	jl_await_snapshot(&l, pid, 10);
	uint64_t seq = 0;
	json_t *data = NULL;
	cr_assert(jl_snapshot_load(&l, pid, SKALD_SEQ_MAX, &seq, &data));
	cr_assert_eq(json_integer_value(json_object_get(data, "count")), 10,
	             "the snapshot at seq 10 holds the state after 10 events");
	cr_assert_eq(json_integer_value(json_object_get(data, "last_seq")), 10);
	json_decref(data);
	cr_assert(jl_snapshot_load(&l, pid, 9, &seq, &data), "no snapshot at seq 5");
	cr_assert_eq(seq, 5, "the snapshot before seq 10 is at seq %llu", (unsigned long long)seq);
	cr_assert_eq(json_integer_value(json_object_get(data, "count")), 5);
	json_decref(data);
	cr_assert_eq(jl_snapshot_load(&l, pid, 4, &seq, &data), 0, "a snapshot before seq 5");
	jl_close(&l);
	skald_system_stop(sys);
	test_end();
}

Test(snapshot, recovery_starts_from_the_latest_snapshot)
{
	skald_system_t *sys = sys_start(store_uri(), 2);
	skald_ref_t obs = observer_start(sys);
	char id[128], pid[192];
	unique_id(id, sizeof id, "fromsnap");
	pid_of(pid, sizeof pid, id);
	skald_ref_t e = spawn_watched(sys, obs, &acc_every5_type, id);
	add_each(sys, e, 1, 12);
	jloop_t l;
	jl_open(&l, store_uri());
	jl_await_snapshot(&l, pid, 10);
	jl_close(&l);
	stop_entity(sys, e);

	long applies = atomic_load(&g_apply_calls);
	e = spawn_watched(sys, obs, &acc_every5_type, id);
	reply_t *r = ask_op(sys, e, C_GET, 0, 0);
	cr_assert_eq(r->st.restored, 1, "recovery did not restore a snapshot");
	cr_assert_eq(r->st.restored_count, 10, "restored the snapshot of %ld events",
	             r->st.restored_count);
	cr_assert_eq(r->st.applied_after_restore, 2, "%ld events replayed after the snapshot",
	             r->st.applied_after_restore);
	cr_assert_eq(atomic_load(&g_apply_calls) - applies, 2);
	cr_assert_eq(atomic_load(&g_restore_version), 3, "restore got version %d",
	             atomic_load(&g_restore_version));
	cr_assert_eq(r->st.d.count, 12);
	cr_assert_eq(r->st.d.sum, 78);
	cr_assert_eq(r->st.d.bad_order, 0);
	cr_assert_eq(r->st.d.seq_gaps, 0);
	cr_assert_eq(r->seq, 12);
	free(r);
	skald_system_stop(sys);
	test_end();
}

Test(snapshot, recovery_from_a_snapshot_needs_no_earlier_events)
{
	skald_system_t *sys = sys_start(store_uri(), 2);
	skald_ref_t obs = observer_start(sys);
	char id[128], pid[192];
	unique_id(id, sizeof id, "deleted");
	pid_of(pid, sizeof pid, id);
	skald_ref_t e = spawn_watched(sys, obs, &acc_every5_type, id);
	add_each(sys, e, 1, 12);
	stop_entity(sys, e);
	jloop_t l;
	jl_open(&l, store_uri());
	jl_await_snapshot(&l, pid, 10);
	jl_delete_to(&l, pid, 10);

	e = spawn_watched(sys, obs, &acc_every5_type, id);
	reply_t *r = ask_op(sys, e, C_GET, 0, 0);
	cr_assert_eq(r->st.d.count, 12);
	cr_assert_eq(r->st.d.sum, 78);
	cr_assert_eq(r->seq, 12);
	free(r);
	/* The sequence goes on after the deleted events. */
	r = ask_op(sys, e, C_ADD, 13, 0);
	cr_assert_eq(r->status, 0, "%s", skald_strerror(r->status));
	cr_assert_eq(r->seq, 13);
	free(r);
	cr_assert_eq(jl_highest(&l, pid), 13);
	jl_close(&l);
	skald_system_stop(sys);
	test_end();
}

Test(snapshot, snapshot_on_demand_is_used_by_recovery)
{
	skald_system_t *sys = sys_start(store_uri(), 2);
	skald_ref_t obs = observer_start(sys);
	char id[128], pid[192];
	unique_id(id, sizeof id, "demand");
	pid_of(pid, sizeof pid, id);
	skald_ref_t e = spawn_watched(sys, obs, &acc_type, id);
	add_each(sys, e, 1, 7);
	reply_t *r = ask_op(sys, e, C_SNAPSHOT, 0, 0);
	cr_assert_eq(r->rc, 0, "skald_entity_snapshot: %s", skald_strerror(r->rc));
	free(r);
	add_each(sys, e, 8, 10);
	jloop_t l;
	jl_open(&l, store_uri());
	/* snapshot_every 0: the one on demand is the only one. */
	jl_await_snapshot(&l, pid, 7);
	jl_close(&l);
	stop_entity(sys, e);

	e = spawn_watched(sys, obs, &acc_type, id);
	r = ask_op(sys, e, C_GET, 0, 0);
	cr_assert_eq(r->st.restored, 1);
	cr_assert_eq(r->st.restored_count, 7);
	cr_assert_eq(r->st.applied_after_restore, 3);
	cr_assert_eq(atomic_load(&g_restore_version), 1, "snapshot_version 0 must mean 1");
	cr_assert_eq(r->st.d.count, 10);
	cr_assert_eq(r->st.d.sum, 55);
	free(r);
	skald_system_stop(sys);
	test_end();
}

Test(snapshot, snapshot_without_snapshot_callbacks_is_an_error_and_the_entity_goes_on)
{
	skald_system_t *sys = sys_start(store_uri(), 2);
	skald_ref_t obs = observer_start(sys);
	char id[128], pid[192];
	unique_id(id, sizeof id, "nosnap");
	pid_of(pid, sizeof pid, id);
	skald_ref_t e = spawn_watched(sys, obs, &acc_nosnap_type, id);
	add_each(sys, e, 1, 2);
	reply_t *r = ask_op(sys, e, C_SNAPSHOT, 0, 0);
	cr_assert_lt(r->rc, 0, "skald_entity_snapshot succeeded without snapshot callbacks");
	free(r);
	add_each(sys, e, 3, 4);
	cr_assert(!has_down(e));
	jloop_t l;
	jl_open(&l, store_uri());
	assert_no_snapshot(&l, pid);
	jl_close(&l);
	skald_system_stop(sys);
	test_end();
}

Test(snapshot, failed_snapshot_save_is_not_fatal)
{
	skald_system_t *sys = sys_start(probe_store_uri(), 2);
	skald_ref_t obs = observer_start(sys);
	char id[128], pid[192];
	unique_id(id, sizeof id, "savefail");
	pid_of(pid, sizeof pid, id);
	skald_ref_t e = spawn_watched(sys, obs, &acc_every5_type, id);
	atomic_store(&probe_fail_snapshot, SKALD_EBACKEND);
	add_each(sys, e, 1, 12);
	reply_t *r = ask_op(sys, e, C_SNAPSHOT, 0, 0);
	free(r);
	add_each(sys, e, 13, 14);
	cr_assert(!has_down(e), "the entity stopped after a failed snapshot save");
	/* At seq 5 and 10, and the one on demand at 12. */
	cr_assert_eq(atomic_load(&probe_snapshots_failed), 3, "%ld snapshot saves attempted",
	             atomic_load(&probe_snapshots_failed));
	cr_assert_eq(atomic_load(&probe_snapshots_forwarded), 0);
	jloop_t l;
	jl_open(&l, store_uri());
	assert_no_snapshot(&l, pid);
	jl_close(&l);

	/* Recovery falls back on the events. */
	stop_entity(sys, e);
	e = spawn_watched(sys, obs, &acc_every5_type, id);
	r = ask_op(sys, e, C_GET, 0, 0);
	cr_assert_eq(r->st.restored, 0);
	cr_assert_eq(r->st.d.count, 14);
	free(r);
	skald_system_stop(sys);
	test_end();
}

Test(snapshot, snapshot_rejected_by_the_store_is_not_fatal)
{
	skald_system_t *sys = sys_start(store_uri(), 2);
	skald_ref_t obs = observer_start(sys);
	char id[128], pid[192];
	unique_id(id, sizeof id, "snapreject");
	pid_of(pid, sizeof pid, id);
	skald_ref_t e = spawn_watched(sys, obs, &acc_every5_type, id);
	/* The snapshot holds a string that is not UTF-8: the store cannot
	 * encode it and must reject the save. */
	atomic_store(&g_snapshot_mode, SNAP_BADUTF8);
	add_each(sys, e, 1, 12);
	cr_assert(!has_down(e), "the entity stopped after a rejected snapshot");
	jloop_t l;
	jl_open(&l, store_uri());
	assert_no_snapshot(&l, pid);
	jl_close(&l);
	stop_entity(sys, e);
	e = spawn_watched(sys, obs, &acc_every5_type, id);
	reply_t *r = ask_op(sys, e, C_GET, 0, 0);
	cr_assert_eq(r->st.restored, 0);
	cr_assert_eq(r->st.d.count, 12);
	free(r);
	skald_system_stop(sys);
	test_end();
}

Test(snapshot, failing_snapshot_callback_is_reported_and_not_fatal)
{
	skald_system_t *sys = sys_start(store_uri(), 2);
	skald_ref_t obs = observer_start(sys);
	char id[128], pid[192];
	unique_id(id, sizeof id, "snapcbfail");
	pid_of(pid, sizeof pid, id);
	skald_ref_t e = spawn_watched(sys, obs, &acc_every5_type, id);
	atomic_store(&g_snapshot_mode, SNAP_FAIL);
	add_each(sys, e, 1, 7);
	reply_t *r = ask_op(sys, e, C_SNAPSHOT, 0, 0);
	cr_assert_eq(r->rc, TEST_ERR, "skald_entity_snapshot: %d (%s)", r->rc,
	             skald_err_name(r->rc));
	free(r);
	add_each(sys, e, 8, 9);
	cr_assert(!has_down(e));
	jloop_t l;
	jl_open(&l, store_uri());
	assert_no_snapshot(&l, pid);
	jl_close(&l);
	skald_system_stop(sys);
	test_end();
}

Test(snapshot, failing_restore_stops_the_entity_with_its_error)
{
	skald_system_t *sys = sys_start(store_uri(), 2);
	skald_ref_t obs = observer_start(sys);
	char id[128], pid[192];
	unique_id(id, sizeof id, "restorefail");
	pid_of(pid, sizeof pid, id);
	skald_ref_t e = spawn_watched(sys, obs, &acc_every5_type, id);
	add_each(sys, e, 1, 6);
	jloop_t l;
	jl_open(&l, store_uri());
	jl_await_snapshot(&l, pid, 5);
	jl_close(&l);
	stop_entity(sys, e);

	/* Starting from nothing instead would be wrong: the events before the
	 * snapshot may be gone. */
	atomic_store(&g_restore_fail, 1);
	e = spawn_watched(sys, obs, &acc_every5_type, id);
	int reason = await_down(e);
	cr_assert_eq(reason, TEST_ERR, "down reason %d (%s)", reason, skald_err_name(reason));
	cr_assert_eq(atomic_load(&g_recovered_calls), 1, "recovered ran after a failed restore");
	skald_system_stop(sys);
	test_end();
}

Test(snapshot, failed_snapshot_load_fails_recovery)
{
	skald_system_t *sys = sys_start(probe_store_uri(), 2);
	skald_ref_t obs = observer_start(sys);
	char id[128], pid[192];
	unique_id(id, sizeof id, "loadfail");
	pid_of(pid, sizeof pid, id);
	skald_ref_t e = spawn_watched(sys, obs, &acc_every5_type, id);
	add_each(sys, e, 1, 6);
	stop_entity(sys, e);

	/* "No snapshot" instead would replay from events that may be gone. */
	atomic_store(&probe_fail_snapshot_load, SKALD_EBACKEND);
	long recovered = atomic_load(&g_recovered_calls);
	e = spawn_watched(sys, obs, &acc_every5_type, id);
	int reason = await_down(e);
	cr_assert_eq(reason, SKALD_EBACKEND, "down reason %d (%s)", reason, skald_err_name(reason));
	cr_assert_eq(atomic_load(&g_recovered_calls), recovered,
	             "recovered ran after a failed snapshot load");
	skald_system_stop(sys);
	test_end();
}
