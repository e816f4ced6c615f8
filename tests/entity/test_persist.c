/*
 * tests/entity/test_persist.c - persist: order of write, apply and callback;
 * commands waiting for writes; atomic batches; refusals, rejections and
 * failures.
 */
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

TestSuite(persist, .init = entity_fixture, .timeout = SUITE_TIMEOUT);

/* Spawns an acc entity and waits until it has recovered (a GET is answered
 * only after recovery). */
static skald_ref_t spawn_ready(skald_system_t *sys, skald_ref_t observer, const char *id)
{
	skald_ref_t ref = spawn_watched(sys, observer, &acc_type, id);
	free(ask_op(sys, ref, C_GET, 0, 0));
	return ref;
}

static const char *trace_name(int kind)
{
	return kind == TR_COMMIT  ? "commit"
	       : kind == TR_APPLY ? "apply"
	       : kind == TR_CB    ? "callback"
	                          : "?";
}

/* Asserts that the trace is exactly kinds/seqs. */
static void assert_trace(const int *kinds, const uint64_t *seqs, size_t n)
{
	int k[64];
	uint64_t s[64];
	size_t got = trace_get(k, s, 64);
	for (size_t i = 0; i < n && i < got; i++)
		cr_assert(k[i] == kinds[i] && s[i] == seqs[i],
		          "step %zu: %s of seq %llu, expected %s of seq %llu", i, trace_name(k[i]),
		          (unsigned long long)s[i], trace_name(kinds[i]),
		          (unsigned long long)seqs[i]);
	cr_assert_eq(got, n, "%zu steps traced, expected %zu", got, n);
}

Test(persist, event_is_stored_then_applied_then_called_back)
{
	skald_system_t *sys = sys_start(probe_store_uri(), 2);
	skald_ref_t obs = observer_start(sys);
	char id[128];
	unique_id(id, sizeof id, "order");
	skald_ref_t e = spawn_ready(sys, obs, id);

	atomic_store(&g_trace_on, 1);
	reply_t *r = ask_op(sys, e, C_ADD, 1, 0);
	cr_assert_eq(r->status, 0, "persist callback: %s", skald_strerror(r->status));
	/* The reply is sent from the callback: the state it carries is what
	 * the callback saw. */
	cr_assert_eq(r->st.d.count, 1);
	cr_assert_eq(r->st.d.last_v, 1);
	cr_assert_eq(r->seq, 1);
	cr_assert_eq(r->st.cb_ok, 1);
	free(r);
	r = ask_op(sys, e, C_ADD, 2, 0);
	cr_assert_eq(r->status, 0);
	cr_assert_eq(r->seq, 2);
	free(r);

	const int kinds[] = {TR_COMMIT, TR_APPLY, TR_CB, TR_COMMIT, TR_APPLY, TR_CB};
	const uint64_t seqs[] = {1, 1, 1, 2, 2, 2};
	assert_trace(kinds, seqs, 6);
	cr_assert_eq(atomic_load(&probe_events_committed), 2);
	skald_system_stop(sys);
	test_end();
}

Test(persist, batch_is_stored_whole_then_applied_in_order_then_called_back_once)
{
	skald_system_t *sys = sys_start(probe_store_uri(), 2);
	skald_ref_t obs = observer_start(sys);
	char id[128];
	unique_id(id, sizeof id, "batch");
	skald_ref_t e = spawn_ready(sys, obs, id);

	atomic_store(&g_trace_on, 1);
	reply_t *r = ask_op(sys, e, C_BATCH, 1, 4);
	cr_assert_eq(r->status, 0, "persist callback: %s", skald_strerror(r->status));
	cr_assert_eq(r->st.d.count, 4);
	cr_assert_eq(r->st.d.last_v, 4);
	cr_assert_eq(r->st.d.bad_order, 0);
	cr_assert_eq(r->seq, 4);
	cr_assert_eq(r->st.cb_ok, 1);
	free(r);

	const int kinds[] = {TR_COMMIT, TR_COMMIT, TR_COMMIT, TR_COMMIT, TR_APPLY,
	                     TR_APPLY,  TR_APPLY,  TR_APPLY,  TR_CB};
	const uint64_t seqs[] = {1, 2, 3, 4, 1, 2, 3, 4, 4};
	assert_trace(kinds, seqs, 9);

	jloop_t l;
	jl_open(&l, store_uri());
	rec_t *ev;
	char pid[192];
	snprintf(pid, sizeof pid, "acc-%s", id);
	size_t n = jl_read(&l, pid, &ev);
	cr_assert_eq(n, 4);
	for (size_t i = 0; i < n; i++) {
		cr_assert_eq(ev[i].seq, i + 1);
		cr_assert_eq(ev[i].v, (long)i + 1);
		cr_assert_str_eq(ev[i].type, "acc.added");
	}
	free(ev);
	jl_close(&l);
	skald_system_stop(sys);
	test_end();
}

Test(persist, commands_wait_while_a_write_is_in_flight)
{
	enum { N = 1000 };
	skald_system_t *sys = sys_start(store_uri(), 2);
	skald_ref_t obs = observer_start(sys);
	char id[128];
	unique_id(id, sizeof id, "wait");
	skald_ref_t e = spawn_ready(sys, obs, id);

	/* Each command persists; sent back to back, all but the first arrive
	 * while a write is in flight. A command handled then would get
	 * SKALD_EBUSY and its event would be missing. */
	for (long v = 1; v <= N; v++)
		tell_op(sys, e, C_ADD, v, 0);
	reply_t *r = await_count(sys, e, N);
	cr_assert_eq(r->st.d.count, N, "%ld of %d events applied", r->st.d.count, N);
	cr_assert_eq(r->st.d.bad_order, 0, "events applied out of command order");
	cr_assert_eq(r->st.d.last_v, N);
	cr_assert_eq(r->st.d.seq_gaps, 0);
	cr_assert_eq(r->st.cb_ok, N);
	cr_assert_eq(r->st.cb_failed, 0);
	cr_assert_eq(r->seq, N);
	free(r);
	cr_assert(!has_down(e));

	jloop_t l;
	jl_open(&l, store_uri());
	rec_t *ev;
	char pid[192];
	snprintf(pid, sizeof pid, "acc-%s", id);
	size_t n = jl_read(&l, pid, &ev);
	cr_assert_eq(n, N, "%zu events in the journal", n);
	for (size_t i = 0; i < n; i++) {
		cr_assert_eq(ev[i].seq, i + 1, "event %zu has seq %llu", i,
		             (unsigned long long)ev[i].seq);
		cr_assert_eq(ev[i].v, (long)i + 1, "seq %zu holds command %ld", i + 1, ev[i].v);
	}
	free(ev);
	jl_close(&l);
	skald_system_stop(sys);
	test_end();
}

Test(persist, second_persist_while_one_is_in_flight_is_ebusy)
{
	skald_system_t *sys = sys_start(store_uri(), 2);
	skald_ref_t obs = observer_start(sys);
	char id[128];
	unique_id(id, sizeof id, "busy");
	skald_ref_t e = spawn_ready(sys, obs, id);

	reply_t *r = ask_op(sys, e, C_DOUBLE, 1, 0);
	cr_assert_eq(r->rc2, SKALD_EBUSY, "second persist: %s", skald_err_name(r->rc2));
	cr_assert_eq(r->status, 0, "first persist: %s", skald_strerror(r->status));
	cr_assert_eq(r->st.d.count, 1);
	cr_assert_eq(r->seq, 1);
	free(r);
	/* The refused call left no trace: the next write follows the first. */
	r = ask_op(sys, e, C_ADD, 2, 0);
	cr_assert_eq(r->status, 0);
	cr_assert_eq(r->seq, 2);
	cr_assert_eq(r->st.cb_ok, 2);
	free(r);

	jloop_t l;
	jl_open(&l, store_uri());
	rec_t *ev;
	char pid[192];
	snprintf(pid, sizeof pid, "acc-%s", id);
	size_t n = jl_read(&l, pid, &ev);
	cr_assert_eq(n, 2);
	cr_assert_eq(ev[0].v, 1);
	cr_assert_eq(ev[1].v, 2);
	free(ev);
	jl_close(&l);
	skald_system_stop(sys);
	test_end();
}

Test(persist, batch_with_data_that_is_not_an_object_is_refused_and_writes_nothing)
{
	skald_system_t *sys = sys_start(store_uri(), 2);
	skald_ref_t obs = observer_start(sys);
	char id[128];
	unique_id(id, sizeof id, "nonobj");
	skald_ref_t e = spawn_ready(sys, obs, id);

	reply_t *r = ask_op(sys, e, C_BATCH_NONOBJ, 1, 3);
	cr_assert_eq(r->rc, SKALD_EINVAL, "persist_all: %s", skald_err_name(r->rc));
	cr_assert_eq(r->st.d.count, 0);
	cr_assert_eq(r->seq, 0);
	free(r);

	jloop_t l;
	jl_open(&l, store_uri());
	char pid[192];
	snprintf(pid, sizeof pid, "acc-%s", id);
	cr_assert_eq(jl_highest(&l, pid), 0, "part of a refused batch was written");

	/* The entity goes on, and its next write is seq 1. */
	r = ask_op(sys, e, C_ADD, 1, 0);
	cr_assert_eq(r->status, 0);
	cr_assert_eq(r->seq, 1);
	free(r);
	rec_t *ev;
	size_t n = jl_read(&l, pid, &ev);
	cr_assert_eq(n, 1);
	cr_assert_eq(ev[0].v, 1);
	free(ev);
	jl_close(&l);
	cr_assert(!has_down(e));
	skald_system_stop(sys);
	test_end();
}

Test(persist, malformed_persist_calls_are_einval)
{
	skald_system_t *sys = sys_start(store_uri(), 2);
	skald_ref_t obs = observer_start(sys);
	char id[128];
	unique_id(id, sizeof id, "badargs");
	skald_ref_t e = spawn_ready(sys, obs, id);

	reply_t *r = ask_op(sys, e, C_BADARGS, 0, 0);
	cr_assert_eq(r->rc, 0, "a malformed persist returned %d (%s), expected SKALD_EINVAL", r->rc,
	             skald_err_name(r->rc));
	cr_assert_eq(r->st.d.count, 0);
	free(r);
	r = ask_op(sys, e, C_ADD, 1, 0);
	cr_assert_eq(r->status, 0);
	cr_assert_eq(r->seq, 1);
	free(r);
	skald_system_stop(sys);
	test_end();
}

Test(persist, batch_rejected_by_the_store_writes_nothing_and_the_entity_goes_on)
{
	skald_system_t *sys = sys_start(store_uri(), 2);
	skald_ref_t obs = observer_start(sys);
	char id[128];
	unique_id(id, sizeof id, "rejected");
	skald_ref_t e = spawn_ready(sys, obs, id);
	long applies = atomic_load(&g_apply_calls);

	/* The middle event holds a string that is not UTF-8: it cannot be
	 * encoded as JSON, so the store must reject the whole write. */
	reply_t *r = ask_op(sys, e, C_BATCH_BADUTF8, 1, 3);
	cr_assert_eq(r->rc, 0, "persist_all: %s", skald_err_name(r->rc));
	cr_assert_eq(r->status, SKALD_EREJECTED, "persist callback: %s", skald_err_name(r->status));
	cr_assert_eq(r->st.d.count, 0, "a rejected event was applied");
	cr_assert_eq(r->seq, 0);
	free(r);
	cr_assert_eq(atomic_load(&g_apply_calls), applies, "apply ran for a rejected write");

	jloop_t l;
	jl_open(&l, store_uri());
	char pid[192];
	snprintf(pid, sizeof pid, "acc-%s", id);
	cr_assert_eq(jl_highest(&l, pid), 0, "part of a rejected batch was written");

	r = ask_op(sys, e, C_ADD, 1, 0);
	cr_assert_eq(r->status, 0, "persist after the rejection: %s", skald_strerror(r->status));
	cr_assert_eq(r->seq, 1);
	free(r);
	rec_t *ev;
	size_t n = jl_read(&l, pid, &ev);
	cr_assert_eq(n, 1);
	cr_assert_eq(ev[0].seq, 1);
	cr_assert_eq(ev[0].v, 1);
	free(ev);
	jl_close(&l);
	cr_assert(!has_down(e), "the entity stopped after a rejection");
	skald_system_stop(sys);
	test_end();
}

Test(persist, failed_write_is_reported_then_the_entity_stops)
{
	skald_system_t *sys = sys_start(probe_store_uri(), 2);
	skald_ref_t obs = observer_start(sys);
	char id[128];
	unique_id(id, sizeof id, "failed");
	skald_ref_t e = spawn_ready(sys, obs, id);

	atomic_store(&probe_fail_append, SKALD_EBACKEND);
	reply_t *r = ask_op(sys, e, C_ADD, 1, 0);
	cr_assert_eq(r->status, SKALD_EBACKEND, "persist callback: %s", skald_err_name(r->status));
	cr_assert_eq(r->st.d.count, 0, "an event that failed to write was applied");
	free(r);
	int reason = await_down(e);
	cr_assert_eq(reason, SKALD_EBACKEND, "down reason %s", skald_err_name(reason));
	skald_system_stop(sys);
	test_end();
}

Test(persist, persist_from_an_actor_that_is_not_an_entity_is_einval)
{
	skald_system_t *sys = sys_start(store_uri(), 2);
	skald_ref_t obs = observer_start(sys);
	cmd_t c = {.op = O_PERSIST};
	reply_t *r = ask_cmd(sys, obs, &c);
	cr_assert_eq(r->rc, 0, "an entity-only call accepted a plain actor (step %d: %s)", r->rc,
	             skald_err_name(r->rc));
	free(r);
	skald_system_stop(sys);
	test_end();
}

Test(persist, entity_knows_its_persistence_id_and_seq)
{
	skald_system_t *sys = sys_start(store_uri(), 2);
	skald_ref_t obs = observer_start(sys);
	char id[128], pid[192];
	unique_id(id, sizeof id, "names");
	snprintf(pid, sizeof pid, "acc-%s", id);
	skald_ref_t e = spawn_ready(sys, obs, id);
	reply_t *r = ask_op(sys, e, C_BATCH, 1, 3);
	cr_assert_str_eq(r->pid, pid);
	cr_assert_str_eq(r->eid, id);
	cr_assert_eq(r->seq, 3);
	free(r);
	skald_system_stop(sys);
	test_end();
}
