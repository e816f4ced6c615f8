/*
 * tests/sharding/test_local.c - sharding with members inside the test's
 * process: placement, entities started by their first message wherever it
 * comes from, recovery after passivation, errors that say why, and the
 * bound on held messages.
 */
#include <string.h>

#include "sh.h"

static void setup(void)
{
	entity_fixture();
	cr_assert_eq(ctr_register(), 0);
}

TestSuite(local, .init = setup, .timeout = SUITE_TIMEOUT);

static void three(tnode_t **n, const skald_sharding_config_t *cfg)
{
	n[0] = tnode_start(store_uri(), NULL, cfg);
	n[1] = tnode_start(store_uri(), n[0], cfg);
	n[2] = tnode_start(store_uri(), n[0], cfg);
	await_members(n, 3);
}

static void stop_all(tnode_t **n, int k)
{
	for (int i = 0; i < k; i++)
		tnode_stop(n[i]);
}

static skald_sharding_stats_t stats(tnode_t *n)
{
	skald_sharding_stats_t st;
	cr_assert_eq(skald_sharding_stats(n->sh, &st), 0);
	return st;
}

Test(local, every_member_places_ids_alike_and_each_owns_a_share)
{
	/* 64 shards: a member without any is then a one in 10^11 draw of
	 * node ids, not a broken placement. */
	skald_sharding_config_t cfg = ctr_config();
	cfg.shards = 64;
	tnode_t *n[3];
	three(n, &cfg);
	int owned[3] = {0};
	for (int i = 0; i < 3000; i++) {
		char id[32];
		snprintf(id, sizeof id, "place-%d", i);
		uint64_t o = owner_of(n[0], id);
		cr_assert_eq(owner_of(n[1], id), o);
		cr_assert_eq(owner_of(n[2], id), o);
		for (int k = 0; k < 3; k++)
			owned[k] += n[k]->id == o;
	}
	cr_assert_eq(owned[0] + owned[1] + owned[2], 3000);
	for (int k = 0; k < 3; k++)
		cr_assert_gt(owned[k], 0, "member %d owns none of 3000 ids", k);
	unsigned s1, s2;
	cr_assert_eq(skald_sharding_shard(n[0]->sh, "place-1", &s1), 0);
	cr_assert_eq(skald_sharding_shard(n[2]->sh, "place-1", &s2), 0);
	cr_assert_eq(s1, s2);
	cr_assert_lt(s1, 64);
	stop_all(n, 3);
	test_end();
}

Test(local, an_entity_starts_on_its_first_message_from_any_member_and_lives_on_its_owner)
{
	tnode_t *n[3];
	three(n, NULL);
	char ids[12][64];
	for (int i = 0; i < 12; i++) {
		unique_id(ids[i], sizeof ids[i], "first");
		/* Three adds, each through another member. */
		for (int k = 0; k < 3; k++)
			cr_assert_eq(ctr_ask_ok(n[k]->sh, ids[i], t_add, (uint64_t)k + 1),
			             (uint64_t)(k == 0   ? 1
			                        : k == 1 ? 3
			                                 : 6));
	}
	uint64_t started = 0, live = 0;
	for (int k = 0; k < 3; k++) {
		started += stats(n[k]).started;
		live += stats(n[k]).live_entities;
	}
	cr_assert_eq(started, 12, "each entity started once, on its owner");
	cr_assert_eq(live, 12);
	for (int i = 0; i < 12; i++) {
		tnode_t *o = node_by_id(n, 3, owner_of(n[1], ids[i]));
		cr_assert_not_null(o);
		cr_assert_eq(ctr_ask_ok(o->sh, ids[i], t_get, 0), 6);
	}
	stop_all(n, 3);
	jloop_t l;
	jl_open(&l, store_uri());
	for (int i = 0; i < 12; i++) {
		ctr_history_t h;
		ctr_read(&l, ids[i], &h);
		cr_assert_eq(h.events, 3);
		cr_assert_eq(h.total, 6);
		cr_assert_eq(h.forks + h.gaps, 0);
	}
	jl_close(&l);
	test_end();
}

Test(local, an_idle_entity_is_passivated_and_recovers_its_state_on_the_next_message)
{
	skald_sharding_config_t cfg = ctr_config();
	cfg.passivate_ms = 300;
	tnode_t *n = tnode_start(store_uri(), NULL, &cfg);
	tnode_t *one[1] = {n};
	await_members(one, 1);
	char id[64];
	unique_id(id, sizeof id, "idle");
	cr_assert_eq(ctr_ask_ok(n->sh, id, t_add, 5), 5);
	cr_assert_eq(ctr_ask_ok(n->sh, id, t_add, 2), 7);
	AWAIT(stats(n).passivated == 1 && stats(n).live_entities == 0, WAIT_MS);
	long recovered = atomic_load(&g_ctr_recovered);
	cr_assert_eq(ctr_ask_ok(n->sh, id, t_get, 0), 7, "the state came back from the journal");
	cr_assert_eq(atomic_load(&g_ctr_recovered), recovered + 1);
	cr_assert_eq(stats(n).started, 2);
	tnode_stop(n);
	test_end();
}

Test(local, an_entity_that_stops_itself_starts_again_on_its_next_message)
{
	tnode_t *n = tnode_start(store_uri(), NULL, NULL);
	tnode_t *one[1] = {n};
	await_members(one, 1);
	char id[64];
	unique_id(id, sizeof id, "quit");
	cr_assert_eq(ctr_ask_ok(n->sh, id, t_add, 4), 4);
	cr_assert_eq(skald_sharding_tell(n->sh, NULL, id, t_quit, NULL), 0);
	AWAIT(stats(n).live_entities == 0, WAIT_MS);
	cr_assert_eq(ctr_ask_ok(n->sh, id, t_add, 1), 5);
	cr_assert_eq(stats(n).started, 2);
	tnode_stop(n);
	test_end();
}

Test(local, an_ask_that_cannot_reach_its_entity_fails_with_the_reason)
{
	tnode_t *n[3];
	three(n, NULL);
	/* An id another member owns, asked with a type that has no codec. */
	char id[64];
	do
		unique_id(id, sizeof id, "far");
	while (owner_of(n[0], id) == n[0]->id);
	uint64_t out;
	cr_assert_eq(ctr_ask(n[0]->sh, id, t_local, 0, WAIT_MS, &out), SKALD_ENOCODEC);
	/* Locally owned, the same type is fine: it never crosses a node. */
	do
		unique_id(id, sizeof id, "near");
	while (owner_of(n[0], id) != n[0]->id);
	cr_assert_eq(ctr_ask(n[0]->sh, id, t_local, 0, WAIT_MS, &out), 0);
	cr_assert_eq(out, 0);
	/* Bad arguments are refused before anything is sent. */
	cr_assert_eq(skald_sharding_tell(n[0]->sh, NULL, "", t_add, U(1)), SKALD_EINVAL);
	cr_assert_eq(skald_sharding_tell(n[0]->sh, NULL, id, 999999, U(1)), SKALD_ENOTYPE);
	cr_assert_eq(skald_sharding_tell(NULL, NULL, id, t_add, U(1)), SKALD_EINVAL);
	stop_all(n, 3);
	test_end();
}

Test(local, a_type_is_started_once_per_system)
{
	tnode_t *n = tnode_start(store_uri(), NULL, NULL);
	skald_sharding_config_t cfg = ctr_config();
	skald_sharding_t *again = NULL;
	cr_assert_eq(skald_sharding_start(n->sys, &cfg, &again), SKALD_EINVAL);
	cfg.shards = 100000;
	cr_assert_eq(skald_sharding_start(n->sys, &cfg, &again), SKALD_EINVAL);
	tnode_stop(n);
	test_end();
}

Test(local, messages_held_beyond_max_buffer_are_refused_with_an_error_the_sender_sees)
{
	/* A member whose seed never answers has no view: it holds every
	 * message until it joins. */
	skald_config_t sc = {.threads = 2, .journal = store_uri()};
	skald_system_t *sys;
	cr_assert_eq(skald_system_new(&sc, &sys), 0);
	cr_assert_eq(skald_remote_start(sys, &(skald_remote_config_t){.secret = "x"}), 0);
	cr_assert_eq(skald_listen(sys, "tcp://127.0.0.1:0", NULL), 0);
	const char *seeds[1] = {"tcp://127.0.0.1:1"};
	cr_assert_eq(
	        skald_cluster_start(sys, &(skald_cluster_config_t){.seeds = seeds, .nseeds = 1}),
	        0);
	skald_sharding_config_t cfg = ctr_config();
	cfg.max_buffer = 3;
	skald_sharding_t *sh;
	cr_assert_eq(skald_sharding_start(sys, &cfg, &sh), 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(skald_sharding_tell(sh, NULL, "held", t_add, U(1)), 0);
	skald_sharding_stats_t st;
	AWAIT(skald_sharding_stats(sh, &st) == 0 && st.buffered == 3, WAIT_MS);
	cr_assert_eq(skald_sharding_tell(sh, NULL, "held", t_add, U(1)), SKALD_EBUFFERFULL);
	uint32_t rt;
	void *rp;
	cr_assert_eq(skald_sharding_system_ask(sh, "held", t_get, NULL, 1000, &rt, &rp),
	             SKALD_EBUFFERFULL);
	skald_sharding_stop(sh);
	skald_system_stop(sys);
	test_end();
}

Test(local, an_entity_whose_journal_fails_is_restarted_with_backoff_until_the_journal_returns)
{
	skald_sharding_config_t cfg = ctr_config();
	cfg.backoff_min_ms = 50;
	cfg.backoff_max_ms = 400;
	tnode_t *n = tnode_start(probe_store_uri(), NULL, &cfg);
	tnode_t *one[1] = {n};
	await_members(one, 1);
	char id[64];
	unique_id(id, sizeof id, "flaky");
	cr_assert_eq(ctr_ask_ok(n->sh, id, t_add, 3), 3);
	/* The database goes: the write fails, the entity stops, and every
	 * restart's recovery fails too. */
	atomic_store(&probe_fail_append, SKALD_EBACKEND);
	atomic_store(&probe_fail_read, SKALD_EBACKEND);
	uint64_t out;
	cr_assert_neq(ctr_ask(n->sh, id, t_add, 1, 500, &out), 0);
	AWAIT(stats(n).restarts >= 3, WAIT_MS);
	cr_assert_eq(stats(n).live_entities + stats(n).recovering <= 1, 1);
	/* It returns: the next restart recovers, and what waited is served. */
	atomic_store(&probe_fail_append, 0);
	atomic_store(&probe_fail_read, 0);
	cr_assert_eq(ctr_ask_ok(n->sh, id, t_get, 0), 3, "the failed write was not stored");
	cr_assert_eq(ctr_ask_ok(n->sh, id, t_add, 1), 4);
	tnode_stop(n);
	test_end();
}
