/*
 * tests/entity/test_recovery.c - recovery: state rebuilt from events, the
 * recovered signal, commands waiting for recovery, failures, upcasting and
 * long histories.
 */
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

TestSuite(recovery, .init = entity_fixture, .timeout = SUITE_TIMEOUT);

static void pid_of(char *pid, size_t len, const char *id)
{
	snprintf(pid, len, "acc-%s", id);
}

/* Stops e and waits for its down notice (reason 0). */
static void stop_entity(skald_system_t *sys, skald_ref_t e)
{
	cr_assert_eq(skald_stop(sys, e), 0);
	int reason = await_down(e);
	cr_assert_eq(reason, 0, "stopped with %s", skald_err_name(reason));
}

/* Asserts that the journal of pid holds "acc.added" events seq 1..n with v
 * equal to their seq. */
static void assert_history(const char *pid, long n)
{
	jloop_t l;
	jl_open(&l, store_uri());
	rec_t *ev;
	size_t got = jl_read(&l, pid, &ev);
	cr_assert_eq(got, (size_t)n, "%zu events in the journal, expected %ld", got, n);
	for (size_t i = 0; i < got; i++) {
		cr_assert_eq(ev[i].seq, i + 1, "event %zu has seq %llu", i,
		             (unsigned long long)ev[i].seq);
		cr_assert_eq(ev[i].v, (long)i + 1, "seq %zu holds v %ld", i + 1, ev[i].v);
	}
	free(ev);
	jl_close(&l);
}

Test(recovery, state_is_rebuilt_from_events)
{
	skald_system_t *sys = sys_start(store_uri(), 2);
	skald_ref_t obs = observer_start(sys);
	char id[128], pid[192];
	unique_id(id, sizeof id, "rebuild");
	pid_of(pid, sizeof pid, id);
	skald_ref_t e = spawn_watched(sys, obs, &acc_nosnap_type, id);
	for (long v = 1; v <= 50; v += 10) {
		reply_t *r = ask_op(sys, e, C_BATCH, v, 10);
		cr_assert_eq(r->status, 0);
		free(r);
	}
	reply_t *live = ask_op(sys, e, C_GET, 0, 0);
	cr_assert_eq(live->st.d.count, 50);
	stop_entity(sys, e);

	long applies = atomic_load(&g_apply_calls);
	e = spawn_watched(sys, obs, &acc_nosnap_type, id);
	reply_t *r = ask_op(sys, e, C_GET, 0, 0);
	cr_assert(memcmp(&r->st.d, &live->st.d, sizeof r->st.d) == 0,
	          "recovered state differs: count %ld sum %ld last_v %ld (live: %ld %ld %ld)",
	          r->st.d.count, r->st.d.sum, r->st.d.last_v, live->st.d.count, live->st.d.sum,
	          live->st.d.last_v);
	cr_assert_eq(r->seq, 50);
	cr_assert_eq(atomic_load(&g_apply_calls) - applies, 50, "apply ran %ld times in recovery",
	             atomic_load(&g_apply_calls) - applies);
	free(r);
	free(live);

	/* The new incarnation writes after the history. */
	r = ask_op(sys, e, C_ADD, 51, 0);
	cr_assert_eq(r->status, 0, "%s", skald_strerror(r->status));
	cr_assert_eq(r->seq, 51);
	free(r);
	assert_history(pid, 51);
	skald_system_stop(sys);
	test_end();
}

Test(recovery, new_writes_follow_the_highest_seq_when_every_event_was_deleted)
{
	skald_system_t *sys = sys_start(store_uri(), 2);
	skald_ref_t obs = observer_start(sys);
	char id[128], pid[192];
	unique_id(id, sizeof id, "purged");
	pid_of(pid, sizeof pid, id);
	jloop_t l;
	jl_open(&l, store_uri());
	jl_append(&l, pid, 0, 5, "acc.added", 1, "v", 1);
	jl_delete_to(&l, pid, SKALD_SEQ_MAX);

	/* Nothing to replay, but seq 1..5 are taken: the next write is 6. */
	skald_ref_t e = spawn_watched(sys, obs, &acc_nosnap_type, id);
	reply_t *r = ask_op(sys, e, C_GET, 0, 0);
	cr_assert_eq(r->st.d.count, 0);
	cr_assert_eq(r->seq, 5, "recovered at seq %llu, the highest is 5",
	             (unsigned long long)r->seq);
	free(r);
	r = ask_op(sys, e, C_ADD, 6, 0);
	cr_assert_eq(r->status, 0, "write after the deleted history: %s",
	             skald_err_name(r->status));
	cr_assert_eq(r->seq, 6);
	free(r);
	cr_assert_eq(jl_highest(&l, pid), 6);
	jl_close(&l);
	skald_system_stop(sys);
	test_end();
}

/* Writes `history` events directly, closes the gate, spawns the entity and
 * waits until its recovery is stuck at the gate, inside the first apply. */
static skald_ref_t spawn_held_in_recovery(skald_system_t *sys, skald_ref_t obs, const char *id,
                                          long history)
{
	char pid[192];
	pid_of(pid, sizeof pid, id);
	jloop_t l;
	jl_open(&l, store_uri());
	jl_append(&l, pid, 0, (size_t)history, "acc.added", 1, "v", 1);
	jl_close(&l);
	atomic_store(&g_gate, 1);
	skald_ref_t e = spawn_watched(sys, obs, &acc_type, id);
	AWAIT(atomic_load(&g_gate_hits) > 0, WAIT_MS);
	return e;
}

Test(recovery, recovered_runs_before_the_first_command)
{
	skald_system_t *sys = sys_start(store_uri(), 2);
	skald_ref_t obs = observer_start(sys);
	char id[128];
	unique_id(id, sizeof id, "signal");
	skald_ref_t e = spawn_held_in_recovery(sys, obs, id, 300);

	/* Sent while the replay is certainly under way. */
	tell_op(sys, e, C_ADD, 301, 0);
	cr_assert_eq(atomic_load(&g_recovered_calls), 0);
	atomic_store(&g_gate, 0);

	reply_t *r = await_count(sys, e, 301);
	cr_assert_eq(r->st.recovered, 1, "recovered ran %d times", r->st.recovered);
	cr_assert_eq(r->st.count_at_recovered, 300, "recovered ran with %ld of 300 events applied",
	             r->st.count_at_recovered);
	cr_assert_eq(r->st.cmds_before_recovered, 0, "%ld command(s) handled before recovered",
	             r->st.cmds_before_recovered);
	cr_assert_eq(r->st.d.count, 301);
	free(r);
	skald_system_stop(sys);
	test_end();
}

Test(recovery, commands_sent_during_recovery_wait_and_run_after_it_in_order)
{
	enum { HISTORY = 300, COMMANDS = 100 };
	skald_system_t *sys = sys_start(store_uri(), 2);
	skald_ref_t obs = observer_start(sys);
	char id[128], pid[192];
	unique_id(id, sizeof id, "stash");
	pid_of(pid, sizeof pid, id);
	skald_ref_t e = spawn_held_in_recovery(sys, obs, id, HISTORY);

	for (long v = HISTORY + 1; v <= HISTORY + COMMANDS; v++)
		tell_op(sys, e, C_ADD, v, 0);
	atomic_store(&g_gate, 0);

	reply_t *r = await_count(sys, e, HISTORY + COMMANDS);
	cr_assert_eq(r->st.d.count, HISTORY + COMMANDS, "%ld events applied", r->st.d.count);
	cr_assert_eq(r->st.d.bad_order, 0, "commands handled out of order");
	cr_assert_eq(r->st.d.seq_gaps, 0);
	cr_assert_eq(r->st.cmds_before_recovered, 0);
	cr_assert_eq(r->st.cb_ok, COMMANDS);
	cr_assert_eq(r->seq, HISTORY + COMMANDS);
	free(r);
	assert_history(pid, HISTORY + COMMANDS);
	skald_system_stop(sys);
	test_end();
}

Test(recovery, failing_apply_during_recovery_stops_the_entity_with_its_error)
{
	skald_system_t *sys = sys_start(store_uri(), 2);
	skald_ref_t obs = observer_start(sys);
	char id[128], pid[192];
	unique_id(id, sizeof id, "poison");
	pid_of(pid, sizeof pid, id);
	jloop_t l;
	jl_open(&l, store_uri());
	jl_append(&l, pid, 0, 3, "acc.added", 1, "v", 1);
	jl_append(&l, pid, 3, 1, "acc.poison", 1, "v", 4);
	jl_append(&l, pid, 4, 2, "acc.added", 1, "v", 5);

	skald_ref_t e = spawn_watched(sys, obs, &acc_type, id);
	int reason = await_down(e);
	cr_assert_eq(reason, TEST_ERR, "down reason %d (%s), expected apply's error %d", reason,
	             skald_err_name(reason), TEST_ERR);
	cr_assert_eq(atomic_load(&g_recovered_calls), 0, "recovered ran after a failed replay");
	/* It stopped at the poison: 3 good events and the poison itself. */
	cr_assert_eq(atomic_load(&g_apply_calls), 4);
	cr_assert_eq(jl_highest(&l, pid), 6, "the failed entity wrote");
	jl_close(&l);
	skald_system_stop(sys);
	test_end();
}

/* A read that fails, and one that meets a stored event it cannot decode,
 * stop the entity with the store's reason. */
Test(recovery, failed_event_read_fails_recovery_with_its_reason)
{
	skald_system_t *sys = sys_start(probe_store_uri(), 2);
	skald_ref_t obs = observer_start(sys);
	static const int failures[] = {SKALD_EBACKEND, SKALD_EDECODE};
	for (size_t i = 0; i < sizeof failures / sizeof failures[0]; i++) {
		char id[128], pid[192];
		unique_id(id, sizeof id, "readfail");
		pid_of(pid, sizeof pid, id);
		jloop_t l;
		jl_open(&l, store_uri());
		jl_append(&l, pid, 0, 3, "acc.added", 1, "v", 1);
		jl_close(&l);

		atomic_store(&probe_fail_read, failures[i]);
		skald_ref_t e = spawn_watched(sys, obs, &acc_nosnap_type, id);
		int reason = await_down(e);
		cr_assert_eq(reason, failures[i], "down reason %d (%s), expected %s", reason,
		             skald_err_name(reason), skald_err_name(failures[i]));
	}
	cr_assert_eq(atomic_load(&g_recovered_calls), 0);
	skald_system_stop(sys);
	test_end();
}

Test(recovery, events_another_incarnation_writes_during_recovery_are_not_skipped)
{
	skald_system_t *sys = sys_start(store_uri(), 2);
	skald_ref_t obs = observer_start(sys);
	char id[128], pid[192];
	unique_id(id, sizeof id, "overtaken");
	pid_of(pid, sizeof pid, id);
	jloop_t l;
	jl_open(&l, store_uri());
	jl_append(&l, pid, 0, 3, "acc.added", 1, "v", 1);
	jl_close(&l);

	/* The first incarnation lives on thread 1, the observer and the second
	 * on thread 0. */
	skald_spawn_opts_t on1 = {.flags = SKALD_SPAWN_PIN, .thread = 1};
	skald_ref_t first;
	cr_assert_eq(skald_entity_spawn(sys, &acc_type, id, &on1, &first), 0);
	free(ask_op(sys, first, C_GET, 0, 0));

	/* The second's replay is held inside its first apply, with 3 events
	 * in the journal; meanwhile the first writes seq 4. */
	atomic_store(&g_gate, 1);
	skald_ref_t second = spawn_watched(sys, obs, &acc_type, id);
	AWAIT(atomic_load(&g_gate_hits) > 0, WAIT_MS);
	/* No ask here: its helper actor might be placed on the held thread. */
	tell_op(sys, first, C_ADD, 4, 0);
	jl_open(&l, store_uri());
	uint64_t end = now_ms() + WAIT_MS;
	while (jl_highest(&l, pid) < 4) {
		cr_assert(now_ms() < end, "the first incarnation did not write seq 4");
		sleep_ms(1);
	}
	jl_close(&l);
	atomic_store(&g_gate, 0);
	reply_t *r = ask_op(sys, first, C_GET, 0, 0);
	cr_assert_eq(r->seq, 4);
	free(r);

	/* Either the second applied seq 4 too, or it is gone; it must never
	 * continue from seq 4 with a state that lacks it. */
	r = ask_op(sys, second, C_GET, 0, 0);
	cr_assert_eq(r->st.d.count, (long)r->seq,
	             "the second incarnation recovered at seq %llu having applied %ld events "
	             "(the last one seq %llu): it would go on writing from a state that lacks "
	             "the events in between",
	             (unsigned long long)r->seq, r->st.d.count,
	             (unsigned long long)r->st.d.last_seq);
	free(r);
	skald_system_stop(sys);
	test_end();
}

static int legacy_to_v2(const char *type, int *version, json_t **data, void *arg)
{
	json_t *amount = json_object_get(*data, "amount");
	if (!json_is_integer(amount))
		return TEST_ERR;
	json_t *now = json_pack("{sI}", "v", (json_int_t)json_integer_value(amount));
	if (now == NULL)
		return SKALD_ENOMEM;
	json_decref(*data);
	*data = now;
	*version = 2;
	return 0;
}

Test(recovery, upcaster_rewrites_old_events_before_apply)
{
	int rc = skald_upcaster_register("acc.legacy", 1, legacy_to_v2, NULL);
	cr_assert(rc == 0 || rc == SKALD_EEXISTS, "register: %s", skald_strerror(rc));
	skald_system_t *sys = sys_start(store_uri(), 2);
	skald_ref_t obs = observer_start(sys);
	char id[128], pid[192];
	unique_id(id, sizeof id, "upcast");
	pid_of(pid, sizeof pid, id);
	jloop_t l;
	jl_open(&l, store_uri());
	/* Version 1 of "acc.legacy" carried {"amount": N}. */
	jl_append(&l, pid, 0, 5, "acc.legacy", 1, "amount", 1);
	jl_append(&l, pid, 5, 2, "acc.added", 1, "v", 6);
	jl_close(&l);

	skald_ref_t e = spawn_watched(sys, obs, &acc_type, id);
	reply_t *r = ask_op(sys, e, C_GET, 0, 0);
	cr_assert_eq(r->st.d.bad_legacy, 0, "apply saw %ld legacy event(s) not upcast",
	             r->st.d.bad_legacy);
	cr_assert_eq(r->st.d.v2_events, 5, "apply saw %ld events at version 2", r->st.d.v2_events);
	cr_assert_eq(r->st.d.v1_events, 2);
	cr_assert_eq(r->st.d.count, 7);
	cr_assert_eq(r->st.d.sum, 28);
	cr_assert_eq(r->st.d.bad_order, 0);
	cr_assert_eq(r->seq, 7);
	free(r);
	skald_system_stop(sys);
	test_end();
}

static int failing_upcast(const char *type, int *version, json_t **data, void *arg)
{
	return TEST_ERR;
}

Test(recovery, failing_upcaster_stops_recovery_with_its_error)
{
	int rc = skald_upcaster_register("acc.broken", 1, failing_upcast, NULL);
	cr_assert(rc == 0 || rc == SKALD_EEXISTS, "register: %s", skald_strerror(rc));
	skald_system_t *sys = sys_start(store_uri(), 2);
	skald_ref_t obs = observer_start(sys);
	char id[128], pid[192];
	unique_id(id, sizeof id, "badupcast");
	pid_of(pid, sizeof pid, id);
	jloop_t l;
	jl_open(&l, store_uri());
	jl_append(&l, pid, 0, 2, "acc.added", 1, "v", 1);
	jl_append(&l, pid, 2, 1, "acc.broken", 1, "v", 3);
	jl_close(&l);

	skald_ref_t e = spawn_watched(sys, obs, &acc_type, id);
	int reason = await_down(e);
	cr_assert_eq(reason, TEST_ERR, "down reason %d (%s)", reason, skald_err_name(reason));
	cr_assert_eq(atomic_load(&g_recovered_calls), 0);
	skald_system_stop(sys);
	test_end();
}

Test(recovery, long_history_of_200000_events_is_replayed_completely, .timeout = 300)
{
	enum { N = 200000, CHUNK = 10000 };
	skald_system_t *sys = sys_start(store_uri(), 2);
	skald_ref_t obs = observer_start(sys);
	char id[128], pid[192];
	unique_id(id, sizeof id, "long");
	pid_of(pid, sizeof pid, id);
	jloop_t l;
	jl_open(&l, store_uri());
	for (long done = 0; done < N; done += CHUNK)
		jl_append(&l, pid, (uint64_t)done, CHUNK, "acc.added", 1, "v", done + 1);
	jl_close(&l);

	uint64_t t0 = now_ms();
	skald_ref_t e = spawn_watched(sys, obs, &acc_nosnap_type, id);
	/* The reply comes once recovery is done: a slow store (FerretDB on
	 * SQLite) takes well over a minute here. */
	reply_t *r = ask_cmd_within(sys, e, &(cmd_t){.op = C_GET}, 240000);
	cr_log_info("recovered %d events in %llu ms", N, (unsigned long long)(now_ms() - t0));
	cr_assert_eq(r->st.d.count, N, "%ld events recovered", r->st.d.count);
	cr_assert_eq(r->st.d.sum, (long)N * (N + 1) / 2);
	cr_assert_eq(r->st.d.bad_order, 0);
	cr_assert_eq(r->st.d.seq_gaps, 0);
	cr_assert_eq(r->st.recovered, 1);
	cr_assert_eq(r->seq, N);
	free(r);
	r = ask_op(sys, e, C_ADD, N + 1, 0);
	cr_assert_eq(r->status, 0);
	cr_assert_eq(r->seq, N + 1);
	free(r);
	skald_system_stop(sys);
	test_end();
}
