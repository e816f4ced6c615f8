/*
 * tests/entity/test_conflict.c - single writer: two live incarnations of one
 * entity id. The one that writes second gets a conflict and stops; the
 * history is never forked.
 */
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

TestSuite(conflict, .init = entity_fixture, .timeout = SUITE_TIMEOUT);

typedef struct pair_s {
	skald_system_t *sys;
	skald_ref_t obs, first, second;
	char id[128], pid[192];
} pair_t;

/* Two incarnations of one id over a history of 3 events, both recovered. */
static void pair_start(pair_t *p, const char *tag)
{
	p->sys = sys_start(store_uri(), 2);
	p->obs = observer_start(p->sys);
	unique_id(p->id, sizeof p->id, tag);
	snprintf(p->pid, sizeof p->pid, "acc-%s", p->id);
	p->first = spawn_watched(p->sys, p->obs, &acc_type, p->id);
	reply_t *r = ask_op(p->sys, p->first, C_BATCH, 1, 3);
	cr_assert_eq(r->status, 0);
	free(r);
	p->second = spawn_watched(p->sys, p->obs, &acc_type, p->id);
	r = ask_op(p->sys, p->second, C_GET, 0, 0);
	cr_assert_eq(r->st.d.count, 3, "the second incarnation recovered %ld events",
	             r->st.d.count);
	cr_assert_eq(r->seq, 3);
	free(r);
}

/* The first writes seq 4; the second, still at seq 3, tries too. Returns
 * the second's persist reply. */
static reply_t *pair_race(pair_t *p)
{
	reply_t *r = ask_op(p->sys, p->first, C_ADD, 4, 0);
	cr_assert_eq(r->status, 0, "first writer: %s", skald_strerror(r->status));
	cr_assert_eq(r->seq, 4);
	free(r);
	return ask_op(p->sys, p->second, C_ADD, 4, 0);
}

Test(conflict, second_incarnation_gets_a_conflict_and_stops)
{
	pair_t p;
	pair_start(&p, "conflict");
	long applies = atomic_load(&g_apply_calls);
	reply_t *r = pair_race(&p);
	cr_assert_eq(r->status, SKALD_ECONFLICT, "second writer's callback: %s",
	             skald_err_name(r->status));
	cr_assert_eq(r->st.d.count, 3, "the conflicting event was applied");
	cr_assert_eq(r->seq, 3);
	free(r);
	/* Only the first writer's event was applied, once. */
	cr_assert_eq(atomic_load(&g_apply_calls) - applies, 1);
	int reason = await_down(p.second);
	cr_assert_eq(reason, SKALD_ECONFLICT, "down reason %s", skald_err_name(reason));

	/* The first goes on writing. */
	r = ask_op(p.sys, p.first, C_ADD, 5, 0);
	cr_assert_eq(r->status, 0);
	cr_assert_eq(r->seq, 5);
	free(r);
	cr_assert(!has_down(p.first));
	skald_system_stop(p.sys);
	test_end();
}

Test(conflict, conflict_does_not_fork_the_history)
{
	pair_t p;
	pair_start(&p, "nofork");
	free(pair_race(&p));
	await_down(p.second);
	reply_t *r = ask_op(p.sys, p.first, C_ADD, 5, 0);
	cr_assert_eq(r->status, 0);
	free(r);

	jloop_t l;
	jl_open(&l, store_uri());
	rec_t *ev;
	size_t n = jl_read(&l, p.pid, &ev);
	cr_assert_eq(n, 5, "%zu events in the journal", n);
	for (size_t i = 0; i < n; i++) {
		cr_assert_eq(ev[i].seq, i + 1, "event %zu has seq %llu", i,
		             (unsigned long long)ev[i].seq);
		cr_assert_eq(ev[i].v, (long)i + 1);
		/* Every event is the first incarnation's. */
		cr_assert_eq(ev[i].writer, ev[0].writer, "seq %zu written by another writer",
		             i + 1);
	}
	free(ev);
	cr_assert_eq(jl_highest(&l, p.pid), 5);
	jl_close(&l);
	skald_system_stop(p.sys);
	test_end();
}

Test(conflict, simultaneous_writes_of_two_incarnations_store_exactly_one)
{
	pair_t p;
	pair_start(&p, "race");
	/* Both on one thread: their writes may share one batch of the
	 * thread's journal writer. */
	tell_op(p.sys, p.first, C_ADD, 4, 0);
	tell_op(p.sys, p.second, C_ADD, 4, 0);
	AWAIT(has_down(p.first) || has_down(p.second), WAIT_MS);
	skald_ref_t loser = has_down(p.first) ? p.first : p.second;
	skald_ref_t winner = has_down(p.first) ? p.second : p.first;
	cr_assert_eq(await_down(loser), SKALD_ECONFLICT);
	reply_t *r = ask_op(p.sys, winner, C_GET, 0, 0);
	cr_assert_eq(r->st.d.count, 4);
	cr_assert_eq(r->seq, 4);
	free(r);
	cr_assert(!has_down(winner), "both incarnations stopped");

	jloop_t l;
	jl_open(&l, store_uri());
	rec_t *ev;
	size_t n = jl_read(&l, p.pid, &ev);
	cr_assert_eq(n, 4);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(ev[i].seq, i + 1);
	free(ev);
	jl_close(&l);
	skald_system_stop(p.sys);
	test_end();
}
