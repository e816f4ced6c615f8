/*
 * tests/sharding/test_moves.c - shards that move, with members inside the
 * test's process: a member that goes (failover, remembered entities
 * started again without a message), a member that joins (handoff, order
 * kept), a member that leaves gracefully, and singletons that move with
 * their host.
 */
#include <pthread.h>
#include <string.h>

#include "sh.h"

static void setup(void)
{
	entity_fixture();
	cr_assert_eq(ctr_register(), 0);
}

TestSuite(moves, .init = setup, .timeout = SUITE_TIMEOUT);

static skald_sharding_stats_t stats(tnode_t *n)
{
	skald_sharding_stats_t st;
	cr_assert_eq(skald_sharding_stats(n->sh, &st), 0);
	return st;
}

static uint64_t live_on(tnode_t **n, int k)
{
	uint64_t live = 0;
	for (int i = 0; i < k; i++)
		if (n[i] != NULL)
			live += stats(n[i]).live_entities;
	return live;
}

#define NENT 40

Test(moves, a_member_that_goes_has_its_remembered_entities_started_on_the_survivors)
{
	skald_sharding_config_t cfg = ctr_config();
	cfg.remember = 1;
	tnode_t *n[3];
	n[0] = tnode_start(store_uri(), NULL, &cfg);
	n[1] = tnode_start(store_uri(), n[0], &cfg);
	n[2] = tnode_start(store_uri(), n[0], &cfg);
	await_members(n, 3);
	char ids[NENT][64];
	int on_victim = 0;
	for (int i = 0; i < NENT; i++) {
		unique_id(ids[i], sizeof ids[i], "fo");
		cr_assert_eq(ctr_ask_ok(n[0]->sh, ids[i], t_add, 10), 10);
		on_victim += owner_of(n[0], ids[i]) == n[2]->id;
	}
	cr_assert_gt(on_victim, 0, "the member that goes owns some of them");
	AWAIT(live_on(n, 3) == NENT, WAIT_MS);
	uint64_t started_before = stats(n[0]).started + stats(n[1]).started;
	/* The member goes without a handoff, as if it had crashed. */
	tnode_stop(n[2]);
	n[2] = NULL;
	await_members(n, 2);
	/* Remembered: started again on the survivors before any message. */
	AWAIT(live_on(n, 2) == NENT, WAIT_MS);
	cr_assert_eq(stats(n[0]).started + stats(n[1]).started, started_before + on_victim);
	cr_assert_gt(stats(n[0]).takeovers + stats(n[1]).takeovers, 0);
	for (int i = 0; i < NENT; i++)
		cr_assert_eq(ctr_ask_ok(n[i % 2]->sh, ids[i], t_add, 1), 11);
	tnode_stop(n[0]);
	tnode_stop(n[1]);
	jloop_t l;
	jl_open(&l, store_uri());
	for (int i = 0; i < NENT; i++) {
		ctr_history_t h;
		ctr_read(&l, ids[i], &h);
		cr_assert_eq(h.events, 2);
		cr_assert_eq(h.forks + h.gaps, 0);
	}
	jl_close(&l);
	test_end();
}

/* An id of a fresh entity that `owner` owns in shard `shard` (any shard
 * of owner's if shard is -1), as n sees it. */
static void id_on(tnode_t *n, uint64_t owner, int shard, const char *tag, char *id, size_t len)
{
	for (;;) {
		unique_id(id, len, tag);
		unsigned s;
		cr_assert_eq(skald_sharding_shard(n->sh, id, &s), 0);
		if (owner_of(n, id) == owner && (shard < 0 || (unsigned)shard == s))
			return;
	}
}

Test(moves, an_entity_passivated_for_good_is_not_started_again_after_a_failover)
{
	skald_sharding_config_t cfg = ctr_config();
	cfg.remember = 1;
	cfg.passivate_ms = 600;
	tnode_t *n[3];
	n[0] = tnode_start(store_uri(), NULL, &cfg);
	n[1] = tnode_start(store_uri(), n[0], &cfg);
	n[2] = tnode_start(store_uri(), n[0], &cfg);
	await_members(n, 3);
	/* Two entities of one shard of the member that will go: one goes
	 * idle and is passivated, the other is kept busy. */
	char idle[64], busy[64];
	id_on(n[0], n[2]->id, -1, "idle", idle, sizeof idle);
	unsigned shard;
	skald_sharding_shard(n[0]->sh, idle, &shard);
	id_on(n[0], n[2]->id, (int)shard, "busy", busy, sizeof busy);
	cr_assert_eq(ctr_ask_ok(n[0]->sh, idle, t_add, 1), 1);
	uint64_t total = 0;
	while (stats(n[2]).passivated == 0)
		total = ctr_ask_ok(n[0]->sh, busy, t_add, 1);
	cr_assert_gt(total, 0);
	/* The idle one stops (it was asked to); the busy one runs on. */
	AWAIT(stats(n[2]).live_entities == 1, WAIT_MS);
	uint64_t started = stats(n[0]).started + stats(n[1]).started;
	tnode_stop(n[2]);
	n[2] = NULL;
	/* The busy one is remembered: started without a message. The idle
	 * one stopped for good: it is not. */
	AWAIT(live_on(n, 2) == 1, WAIT_MS);
	cr_assert_eq(stats(n[0]).started + stats(n[1]).started, started + 1);
	cr_assert_eq(ctr_ask_ok(n[1]->sh, busy, t_get, 0), total);
	tnode_stop(n[0]);
	tnode_stop(n[1]);
	test_end();
}

/* A sender that tells t_seen 1, 2, 3... to each of its entities in turn,
 * from outside any actor, until told to stop. */
typedef struct pump_s {
	tnode_t *via;
	char ids[NENT][64];
	int nids;
	pthread_t th;
	atomic_int stop;
	atomic_long sent;
	uint64_t next[NENT];
	int failed;
} pump_t;

static void *pump_main(void *arg)
{
	pump_t *p = arg;
	while (!atomic_load(&p->stop)) {
		for (int i = 0; i < p->nids && !atomic_load(&p->stop); i++) {
			int rc = skald_sharding_tell(p->via->sh, NULL, p->ids[i], t_seen,
			                             U(p->next[i] + 1));
			if (rc == SKALD_EBUFFERFULL) {
				sleep_ms(1);
				continue;
			}
			if (rc < 0) {
				p->failed = rc;
				return NULL;
			}
			p->next[i]++;
			atomic_fetch_add(&p->sent, 1);
		}
		sleep_ms(1);
	}
	return NULL;
}

/* Starts a pump through via to NENT fresh entities, and waits until it has
 * sent a first 2,000 messages. */
static void pump_start(pump_t *p, tnode_t *via, const char *tag)
{
	memset(p, 0, sizeof *p);
	p->via = via;
	p->nids = NENT;
	for (int i = 0; i < NENT; i++)
		unique_id(p->ids[i], sizeof p->ids[i], tag);
	cr_assert_eq(pthread_create(&p->th, NULL, pump_main, p), 0);
	AWAIT(atomic_load(&p->sent) > 2000, WAIT_MS);
}

/* Lets the pump send 2,000 more, then stops it. */
static void pump_stop(pump_t *p)
{
	long at = atomic_load(&p->sent);
	AWAIT(atomic_load(&p->sent) > at + 2000, WAIT_MS);
	atomic_store(&p->stop, 1);
	pthread_join(p->th, NULL);
	cr_assert_eq(p->failed, 0, "a tell failed: %s", skald_err_name(p->failed));
}

/* Every message the pump sent is in its entity's history, each history in
 * the order sent, with no gap (read back from the journal). */
static void check_all_arrived(const pump_t *p)
{
	jloop_t l;
	jl_open(&l, store_uri());
	for (int i = 0; i < p->nids; i++) {
		ctr_history_t h;
		uint64_t end = now_ms() + WAIT_MS;
		do {
			ctr_read(&l, p->ids[i], &h);
			if (h.last_n != p->next[i])
				sleep_ms(10);
		} while (h.last_n != p->next[i] && now_ms() < end);
		cr_assert_eq(h.last_n, p->next[i], "entity %d: last %llu of %llu sent", i,
		             (unsigned long long)h.last_n, (unsigned long long)p->next[i]);
		cr_assert_eq(h.disorder, 0,
		             "entity %d saw its messages out of order: %llu after %llu (seq %llu)",
		             i, (unsigned long long)h.bad_n, (unsigned long long)h.bad_after,
		             (unsigned long long)h.bad_seq);
		cr_assert_eq(h.events, p->next[i], "entity %d: %zu events for %llu messages", i,
		             h.events, (unsigned long long)p->next[i]);
		cr_assert_eq(h.gaps, 0);
	}
	jl_close(&l);
}

Test(moves, a_member_that_joins_takes_its_shards_by_handoff_and_order_is_kept)
{
	tnode_t *n[3] = {0};
	n[0] = tnode_start(store_uri(), NULL, NULL);
	n[1] = tnode_start(store_uri(), n[0], NULL);
	await_members(n, 2);
	static pump_t p;
	pump_start(&p, n[0], "ho");
	n[2] = tnode_start(store_uri(), n[0], NULL);
	await_members(n, 3);
	/* The new member's shards come by handoff, while messages flow. */
	AWAIT(stats(n[2]).shards_owned > 0 && stats(n[2]).handoffs_in == stats(n[2]).shards_owned,
	      WAIT_MS);
	pump_stop(&p);
	check_all_arrived(&p);
	cr_assert_gt(stats(n[0]).handoffs_out + stats(n[1]).handoffs_out, 0);
	cr_assert_eq(stats(n[2]).takeovers, 0, "nobody was gone: no takeover");
	for (int i = 0; i < 3; i++)
		tnode_stop(n[i]);
	test_end();
}

Test(moves, a_member_that_leaves_hands_its_shards_over_without_losing_a_message)
{
	tnode_t *n[3];
	n[0] = tnode_start(store_uri(), NULL, NULL);
	n[1] = tnode_start(store_uri(), n[0], NULL);
	n[2] = tnode_start(store_uri(), n[0], NULL);
	await_members(n, 3);
	static pump_t p;
	pump_start(&p, n[0], "lv");
	cr_assert_eq(skald_cluster_leave(n[2]->sys, WAIT_MS), 0);
	pump_stop(&p);
	cr_assert_gt(stats(n[2]).handoffs_out, 0);
	check_all_arrived(&p);
	for (int i = 0; i < 3; i++)
		tnode_stop(n[i]);
	test_end();
}

/* A plain singleton: counts what it got, answers with the count, and
 * records how many instances are alive at once in the whole process. */
static atomic_int plain_live, plain_max;

static int plain_init(skald_actor_t *self, void *state, void *arg)
{
	int live = atomic_fetch_add(&plain_live, 1) + 1;
	int max = atomic_load(&plain_max);
	while (live > max && !atomic_compare_exchange_weak(&plain_max, &max, live))
		;
	return 0;
}

static int plain_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	uint64_t *count = state;
	if (msg->type == t_add)
		*count += V(msg->payload);
	return skald_reply(self, msg, t_val, U(*count));
}

static void plain_stop(skald_actor_t *self, void *state, int reason)
{
	atomic_fetch_sub(&plain_live, 1);
}

static const skald_behavior_t plain_behavior = {
        .state_size = sizeof(uint64_t),
        .init = plain_init,
        .receive = plain_receive,
        .stop = plain_stop,
};

static uint64_t singleton_ask(skald_singleton_t *s, uint32_t type, uint64_t v)
{
	uint32_t rt;
	void *rp;
	int rc = skald_singleton_system_ask(s, type, U(v), WAIT_MS, &rt, &rp);
	cr_assert_eq(rc, 0, "singleton ask: %s", skald_err_name(rc));
	cr_assert_eq(rt, t_val);
	return V(rp);
}

static uint64_t host_of(skald_singleton_t *s)
{
	uint64_t node = 0;
	cr_assert_eq(skald_singleton_host(s, &node), 0);
	return node;
}

Test(moves, singletons_live_on_the_oldest_member_and_move_with_their_state)
{
	tnode_t *n[3];
	skald_singleton_t *lobby[3], *plain[3];
	n[0] = tnode_start(store_uri(), NULL, NULL);
	n[1] = tnode_start(store_uri(), n[0], NULL);
	n[2] = tnode_start(store_uri(), n[0], NULL);
	await_members(n, 3);
	char name[64], pname[64];
	unique_id(name, sizeof name, "lobby");
	unique_id(pname, sizeof pname, "plain");
	atomic_store(&plain_live, 0);
	atomic_store(&plain_max, 0);
	for (int i = 0; i < 3; i++) {
		skald_singleton_config_t c = {.name = name, .type = &ctr_type};
		cr_assert_eq(skald_singleton_start(n[i]->sys, &c, &lobby[i]), 0);
		cr_assert_eq(skald_singleton_start(n[i]->sys, &c, &lobby[i]), SKALD_EINVAL,
		             "one singleton of a name per member");
		skald_singleton_config_t p = {.name = pname, .behavior = &plain_behavior};
		cr_assert_eq(skald_singleton_start(n[i]->sys, &p, &plain[i]), 0);
	}
	for (int i = 0; i < 3; i++)
		AWAIT(host_of(lobby[i]) == n[0]->id && host_of(plain[i]) == n[0]->id, WAIT_MS);
	cr_assert_eq(singleton_ask(lobby[1], t_add, 5), 5);
	cr_assert_eq(singleton_ask(lobby[2], t_add, 2), 7);
	cr_assert_eq(singleton_ask(plain[2], t_add, 3), 3);
	cr_assert_eq(singleton_ask(plain[1], t_get, 0), 3);

	/* The host goes without a handoff: the next oldest starts both. */
	skald_singleton_stop(lobby[0]);
	skald_singleton_stop(plain[0]);
	tnode_stop(n[0]);
	for (int i = 1; i < 3; i++)
		AWAIT(host_of(lobby[i]) == n[1]->id && host_of(plain[i]) == n[1]->id, WAIT_MS);
	cr_assert_eq(singleton_ask(lobby[2], t_get, 0), 7, "the lobby recovered its state");
	cr_assert_eq(singleton_ask(plain[2], t_get, 0), 0, "a plain singleton starts afresh");

	/* The host leaves: a handoff to the last member. */
	cr_assert_eq(skald_cluster_leave(n[1]->sys, WAIT_MS), 0);
	AWAIT(host_of(lobby[2]) == n[2]->id, WAIT_MS);
	cr_assert_eq(singleton_ask(lobby[2], t_add, 1), 8);
	cr_assert_eq(atomic_load(&plain_max), 1, "never two plain instances at once");
	for (int i = 1; i < 3; i++) {
		skald_singleton_stop(lobby[i]);
		skald_singleton_stop(plain[i]);
		tnode_stop(n[i]);
	}
	test_end();
}

Test(moves, order_and_every_message_survive_joins_and_a_leave_in_quick_succession)
{
	tnode_t *n[4] = {0};
	n[0] = tnode_start(store_uri(), NULL, NULL);
	n[1] = tnode_start(store_uri(), n[0], NULL);
	await_members(n, 2);
	static pump_t p;
	pump_start(&p, n[0], "churn");
	/* Two members join one after the other while the first handoffs are
	 * under way, then one of the first two leaves. */
	n[2] = tnode_start(store_uri(), n[0], NULL);
	n[3] = tnode_start(store_uri(), n[0], NULL);
	await_members(n, 4);
	cr_assert_eq(skald_cluster_leave(n[1]->sys, WAIT_MS), 0);
	pump_stop(&p);
	check_all_arrived(&p);
	for (int i = 0; i < 4; i++)
		tnode_stop(n[i]);
	test_end();
}
