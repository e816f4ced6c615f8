/*
 * tests/entity/test_faults.c - entities on a journal that fails: the store
 * under test seen through faulty:// (stores/faulty/faulty.c), and the
 * outcome each failure must have for the user (include/skald/entity.h):
 *   - rejected: the persist callback gets SKALD_EREJECTED, nothing is
 *     stored, the entity goes on;
 *   - failed (unknown whether stored): the callback gets the error, the
 *     entity stops with it; the event may or may not be in the journal, and
 *     a new incarnation recovers whatever is;
 *   - a recovery that fails stops the entity with the error before
 *     `recovered` runs; a new incarnation recovers everything;
 *   - a failed snapshot save is logged and the entity goes on.
 * Each is checked by reading the journal back through a clean handle and by
 * recovering a new incarnation on the clean store.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

TestSuite(faults, .init = entity_fixture, .timeout = SUITE_TIMEOUT);

/* The store under test through faulty:// with options, in buf. */
static const char *faulty(char *buf, size_t len, const char *options)
{
	snprintf(buf, len, "faulty://?inner=%s&%s", store_uri(), options);
	return buf;
}

static void pid_of(char *pid, size_t len, const char *id)
{
	snprintf(pid, len, "acc-%s", id);
}

/* Recovers id on the clean store and returns its state (to free). */
static reply_t *recover_clean(const skald_entity_type_t *type, const char *id)
{
	skald_system_t *sys = sys_start(store_uri(), 1);
	skald_ref_t obs = observer_start(sys);
	skald_ref_t e = spawn_watched(sys, obs, type, id);
	reply_t *r = ask_op(sys, e, C_GET, 0, 0);
	cr_assert(!has_down(e));
	skald_system_stop(sys);
	return r;
}

/* Spawns id on the store under test through faulty:// with options (one
 * scheduler thread), persists v = 1 (stored) and v = 2, which must get
 * SKALD_EBACKEND and stop the entity with it. Returns the running system. */
static skald_system_t *second_write_fails(const char *options, const char *id, skald_ref_t *obs)
{
	char uri[1024];
	skald_system_t *sys = sys_start(faulty(uri, sizeof uri, options), 1);
	*obs = observer_start(sys);
	skald_ref_t e = spawn_watched(sys, *obs, &acc_type, id);
	reply_t *r = ask_op(sys, e, C_ADD, 1, 0);
	cr_assert_eq(r->status, 0);
	free(r);
	r = ask_op(sys, e, C_ADD, 2, 0);
	cr_assert_eq(r->status, SKALD_EBACKEND, "persist callback: %s", skald_err_name(r->status));
	cr_assert_eq(r->st.d.count, 1, "an event answered as failed was applied");
	free(r);
	int reason = await_down(e);
	cr_assert_eq(reason, SKALD_EBACKEND, "down reason %s", skald_err_name(reason));
	return sys;
}

Test(faults, write_answered_failed_after_it_was_stored_stops_the_entity_and_is_recovered)
{
	char id[128], pid[192];
	skald_ref_t obs;
	unique_id(id, sizeof id, "lie");
	pid_of(pid, sizeof pid, id);
	/* The second append of the handle is stored, then answered "failed". */
	skald_system_stop(second_write_fails("ops=append&lie_every=2", id, &obs));

	/* It was stored all the same: the journal has it, and the next
	 * incarnation applies it. */
	jloop_t l;
	jl_open(&l, store_uri());
	rec_t *ev;
	size_t n = jl_read(&l, pid, &ev);
	cr_assert_eq(n, 2, "%zu events in the journal, expected 2", n);
	cr_assert_eq(ev[1].v, 2);
	free(ev);
	jl_close(&l);
	reply_t *r = recover_clean(&acc_type, id);
	cr_assert_eq(r->st.d.count, 2);
	cr_assert_eq(r->st.d.sum, 3);
	free(r);
	test_end();
}

Test(faults, failed_write_is_not_stored_and_the_next_incarnation_writes_on)
{
	char id[128];
	skald_ref_t obs;
	unique_id(id, sizeof id, "fail");
	skald_system_t *sys = second_write_fails("ops=append&fail_every=2", id, &obs);
	/* A new incarnation on the same faulty handle: its append is the
	 * handle's third, which passes. */
	skald_ref_t e = spawn_watched(sys, obs, &acc_type, id);
	reply_t *r = ask_op(sys, e, C_ADD, 3, 0);
	cr_assert_eq(r->status, 0, "persist after recovery: %s", skald_err_name(r->status));
	cr_assert_eq(r->seq, 2);
	cr_assert_eq(r->st.d.count, 2);
	free(r);
	skald_system_stop(sys);
	r = recover_clean(&acc_type, id);
	cr_assert_eq(r->st.d.count, 2);
	cr_assert_eq(r->st.d.sum, 4, "v 1 and 3 only: the failed 2 is not stored");
	free(r);
	test_end();
}

Test(faults, rejected_write_stores_nothing_and_the_entity_goes_on)
{
	char uri[1024], id[128];
	skald_system_t *sys = sys_start(faulty(uri, sizeof uri, "ops=append&reject_every=2"), 1);
	skald_ref_t obs = observer_start(sys);
	unique_id(id, sizeof id, "reject");
	skald_ref_t e = spawn_watched(sys, obs, &acc_type, id);
	static const int want[] = {0, SKALD_EREJECTED, 0, SKALD_EREJECTED, 0};
	for (int i = 0; i < 5; i++) {
		reply_t *r = ask_op(sys, e, C_ADD, 10 + i, 0);
		cr_assert_eq(r->status, want[i], "persist %d: %s", i, skald_err_name(r->status));
		free(r);
	}
	cr_assert(!has_down(e), "a rejection stopped the entity");
	skald_system_stop(sys);
	reply_t *r = recover_clean(&acc_type, id);
	cr_assert_eq(r->st.d.count, 3);
	cr_assert_eq(r->st.d.sum, 10 + 12 + 14);
	cr_assert_eq(r->st.d.seq_gaps, 0);
	free(r);
	test_end();
}

/* Every entity of the cut batch hears "failed" and stops; the first half of
 * the batch is in the journal and the rest is not. */
Test(faults, connection_lost_in_the_middle_of_a_batch_stops_every_writer_of_it)
{
	enum { N = 8 };
	char uri[1024], base[128], id[160], pid[192];
	/* Every append is delayed, so that the writes of the entities queue
	 * up behind the first and go down together; every append is cut. */
	skald_system_t *sys =
	        sys_start(faulty(uri, sizeof uri, "ops=append&delay_ms=50&drop_after=1"), 1);
	skald_ref_t obs = observer_start(sys);
	unique_id(base, sizeof base, "drop");
	skald_ref_t refs[N];
	for (int i = 0; i < N; i++) {
		snprintf(id, sizeof id, "%s-%d", base, i);
		refs[i] = spawn_watched(sys, obs, &acc_type, id);
		free(ask_op(sys, refs[i], C_GET, 0, 0));
	}
	for (int i = 0; i < N; i++)
		tell_op(sys, refs[i], C_ADD, 100 + i, 0);
	for (int i = 0; i < N; i++) {
		int reason = await_down(refs[i]);
		cr_assert_eq(reason, SKALD_EBACKEND, "entity %d: down with %s", i,
		             skald_err_name(reason));
	}
	skald_system_stop(sys);

	jloop_t l;
	jl_open(&l, store_uri());
	int stored = 0;
	for (int i = 0; i < N; i++) {
		snprintf(pid, sizeof pid, "acc-%s-%d", base, i);
		rec_t *ev;
		size_t n = jl_read(&l, pid, &ev);
		cr_assert_leq(n, 1, "%s: %zu events", pid, n);
		if (n == 1) {
			cr_assert_eq(ev[0].seq, 1);
			cr_assert_eq(ev[0].v, 100 + i);
			stored++;
		}
		free(ev);
	}
	jl_close(&l);
	/* At least one batch held several writes (the first one waits 50 ms
	 * while the others queue): its first half is stored, its second half
	 * is not. */
	cr_assert_gt(stored, 0, "no write of a cut batch was stored");
	cr_assert_lt(stored, N, "every write of the cut batches was stored");
	for (int i = 0; i < N; i++) {
		snprintf(id, sizeof id, "%s-%d", base, i);
		snprintf(pid, sizeof pid, "acc-%s", id);
		reply_t *r = recover_clean(&acc_type, id);
		cr_assert_leq(r->st.d.count, 1);
		free(r);
	}
	test_end();
}

/* Each way a recovery can fail: the entity stops with SKALD_EBACKEND before
 * `recovered` runs, and a new incarnation on the clean store recovers all. */
Test(faults, every_failure_of_recovery_stops_the_entity_before_recovered)
{
	static const char *const faults[] = {
	        "ops=snapshot_load&fail_every=1", "ops=snapshot_load&lie_every=1",
	        "ops=read&fail_every=1",          "ops=read&drop_after=1&drop_keep=3",
	        "ops=highest&fail_every=1",       "ops=highest&delay_ms=20&lie_every=1",
	};
	char id[128], pid[192], uri[1024];
	unique_id(id, sizeof id, "recfail");
	pid_of(pid, sizeof pid, id);
	jloop_t l;
	jl_open(&l, store_uri());
	jl_append(&l, pid, 0, 7, "acc.added", 1, "v", 1);
	jl_close(&l);
	for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++) {
		atomic_store(&g_recovered_calls, 0);
		skald_system_t *sys = sys_start(faulty(uri, sizeof uri, faults[i]), 1);
		skald_ref_t obs = observer_start(sys);
		skald_ref_t e = spawn_watched(sys, obs, &acc_type, id);
		int reason = await_down(e);
		cr_assert_eq(reason, SKALD_EBACKEND, "%s: down with %s", faults[i],
		             skald_err_name(reason));
		cr_assert_eq(atomic_load(&g_recovered_calls), 0, "%s: recovered ran", faults[i]);
		skald_system_stop(sys);
	}
	reply_t *r = recover_clean(&acc_type, id);
	cr_assert_eq(r->st.d.count, 7);
	cr_assert_eq(r->st.d.sum, 28);
	cr_assert_eq(r->st.d.bad_order, 0);
	free(r);
	test_end();
}

Test(faults, snapshot_save_answered_failed_is_not_fatal_and_is_used_by_recovery)
{
	char uri[1024], id[128], pid[192];
	skald_system_t *sys =
	        sys_start(faulty(uri, sizeof uri, "ops=snapshot_save&lie_every=1"), 1);
	skald_ref_t obs = observer_start(sys);
	unique_id(id, sizeof id, "snaplie");
	pid_of(pid, sizeof pid, id);
	skald_ref_t e = spawn_watched(sys, obs, &acc_every5_type, id);
	for (long v = 1; v <= 7; v++) {
		reply_t *r = ask_op(sys, e, C_ADD, v, 0);
		cr_assert_eq(r->status, 0, "persist %ld: %s", v, skald_err_name(r->status));
		free(r);
	}
	cr_assert(!has_down(e), "a failed snapshot save stopped the entity");
	skald_system_stop(sys);
	jloop_t l;
	jl_open(&l, store_uri());
	jl_await_snapshot(&l, pid, 5);
	jl_close(&l);
	long restores = atomic_load(&g_restore_calls);
	reply_t *r = recover_clean(&acc_every5_type, id);
	cr_assert_eq(atomic_load(&g_restore_calls), restores + 1, "recovery ignored the snapshot");
	cr_assert_eq(r->st.restored_count, 5);
	cr_assert_eq(r->st.d.count, 7);
	free(r);
	test_end();
}

/* Entities that write one event after the other on a store that is slow and
 * fails, lies and drops now and then: nothing acknowledged is lost, no seq
 * is written twice, every history is the one its entity wrote, and a new
 * incarnation recovers exactly what is there. */
Test(faults, every_acknowledged_event_survives_a_store_that_fails_in_every_way)
{
	enum { N = 12 };
	char uri[1024], base[128], id[160], pid[192];
	skald_system_t *sys = sys_start(faulty(uri, sizeof uri,
	                                       "ops=append&delay_ms=1&fail_every=29&lie_every=17&"
	                                       "drop_after=23&reject_every=31"),
	                                2);
	unique_id(base, sizeof base, "chaos");
	skald_ref_t refs[N];
	for (int i = 0; i < N; i++) {
		snprintf(id, sizeof id, "%s-%d", base, i);
		cr_assert_eq(skald_entity_spawn(sys, &acc_nosnap_type, id, NULL, &refs[i]), 0);
	}
	for (int i = 0; i < N; i++)
		free(ask_op(sys, refs[i], C_GET, 0, 0));
	for (int i = 0; i < N; i++)
		tell_op(sys, refs[i], C_LOOP, 1, 0);
	/* Every loop ends at its first failure or rejection (C_LOOP stops on
	 * any status but 0); wait until enough were acknowledged, or all
	 * entities went quiet. */
	uint64_t end = now_ms() + WAIT_MS;
	long last = -1;
	while (now_ms() < end && atomic_load(&g_acked_total) < 40 * N) {
		sleep_ms(200);
		long now = atomic_load(&g_acked_total);
		if (now == last)
			break;
		last = now;
	}
	skald_system_stop(sys);

	jloop_t l;
	jl_open(&l, store_uri());
	long acked_total = 0;
	for (int i = 0; i < N; i++) {
		snprintf(pid, sizeof pid, "acc-%s-%d", base, i);
		long acked = atomic_load(&g_acked[i]);
		acked_total += acked;
		size_t n = jl_check_loop_history(&l, pid, acked);
		snprintf(id, sizeof id, "%s-%d", base, i);
		reply_t *r = recover_clean(&acc_nosnap_type, id);
		cr_assert_eq(r->st.d.count, (long)n);
		cr_assert_eq(r->st.d.seq_gaps, 0);
		cr_assert_eq(r->st.d.bad_order, 0);
		free(r);
	}
	jl_close(&l);
	cr_assert_eq(acked_total, atomic_load(&g_acked_total));
	cr_assert_gt(acked_total, 0);
	test_end();
}
