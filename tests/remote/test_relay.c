/*
 * tests/remote/test_relay.c - three nodes: the test's node A talks to a
 * relay on node B, which forwards to the echo on node C; replies travel back
 * the same way. A never connects to C.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

TestSuite(relay, .init = fixture_setup, .fini = fixture_teardown, .timeout = 60);

#define ASKS  200
#define TELLS 200

/* --- many asks at once through the relay -------------------------------- */

typedef struct burst_ctx_s {
	skald_ref_t relay;
	atomic_int done;
	atomic_int ok;
	atomic_int first_bad; /* 1 + the index of the first wrong answer */
	atomic_int first_bad_status;
} burst_ctx_t;

static uint64_t request_of(uintptr_t i)
{
	return 1000u * (uint64_t)i + 3u;
}

static void burst_reply(skald_actor_t *self, void *state, int status, skald_msg_t *reply, void *arg)
{
	burst_ctx_t *b = *(burst_ctx_t **)state;
	uintptr_t i = (uintptr_t)arg;
	/* Each answer must be the one to its own question: C added 1, B added
	 * RELAY_ADD. */
	if (status == 0 && reply->type == t_int &&
	    PAYLOAD_INT(reply->payload) == request_of(i) + 1 + RELAY_ADD) {
		atomic_fetch_add(&b->ok, 1);
	} else {
		int none = 0;
		if (atomic_compare_exchange_strong(&b->first_bad, &none, (int)i + 1))
			atomic_store(&b->first_bad_status, status);
	}
	atomic_fetch_add(&b->done, 1);
}

static int burst_init(skald_actor_t *self, void *state, void *arg)
{
	burst_ctx_t *b = arg;
	*(burst_ctx_t **)state = b;
	for (uintptr_t i = 0; i < ASKS; i++) {
		int rc = skald_ask(self, b->relay, t_int, INT_PAYLOAD(request_of(i)), WAIT_MS,
		                   burst_reply, (void *)i);
		CHECK(rc == 0);
		if (rc < 0)
			atomic_fetch_add(&b->done, 1);
	}
	return 0;
}

static int burst_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	return 0;
}

static const skald_behavior_t burst_behavior = {
        .state_size = sizeof(void *),
        .init = burst_init,
        .receive = burst_receive,
};

/* --- tells through the relay, answers back to the teller ---------------- */

typedef struct collect_ctx_s {
	skald_ref_t relay;
	atomic_int got;
	atomic_int first_wrong; /* 1 + the index of the first unexpected string */
	skald_ref_t last_sender;
} collect_ctx_t;

static int collect_init(skald_actor_t *self, void *state, void *arg)
{
	collect_ctx_t *c = arg;
	*(collect_ctx_t **)state = c;
	for (int i = 0; i < TELLS; i++) {
		char s[32];
		snprintf(s, sizeof s, "m%d", i);
		char *p = str_dup(s);
		int rc = skald_tell(self, c->relay, t_str, p);
		CHECK(rc == 0);
		if (rc < 0)
			free(p);
	}
	return 0;
}

static int collect_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	collect_ctx_t *c = *(collect_ctx_t **)state;
	if (msg->type != t_str)
		return 0;
	int i = atomic_load(&c->got);
	char want[40];
	snprintf(want, sizeof want, "echo:m%d", i);
	if (strcmp(msg->payload, want) != 0 && atomic_load(&c->first_wrong) == 0)
		atomic_store(&c->first_wrong, i + 1);
	c->last_sender = msg->sender;
	atomic_store(&c->got, i + 1);
	return 0;
}

static const skald_behavior_t collect_behavior = {
        .state_size = sizeof(void *),
        .init = collect_init,
        .receive = collect_receive,
};

/* C, then B relaying to C's echo; B's node looks C's echo up before it
 * reports ready. */
static void start_chain(node_t **b, node_t **c)
{
	*c = node_start(&(node_opts_t){.name = "c"});
	*b = node_start(&(node_opts_t){.name = "b", .relay_to = (*c)->addr});
}

Test(relay, asks_relayed_from_a_through_b_to_c_get_their_own_replies)
{
	node_t *b, *c;
	start_chain(&b, &c);
	skald_system_t *a = sys_start(NULL);
	skald_ref_t relay = lookup_on(a, b, "relay");

	/* One, blocking, from outside any actor. */
	uint64_t v = 0;
	cr_assert_eq(ask_u64(a, relay, t_int, 5, WAIT_MS, &v), 0);
	cr_assert_eq(v, 5 + 1 + RELAY_ADD);

	/* Many at once from an actor: each reply must find its own ask. */
	static burst_ctx_t bc;
	bc.relay = relay;
	spawn(a, &burst_behavior, &bc);
	AWAIT(atomic_load(&bc.done) == ASKS, WAIT_MS);
	cr_assert_eq(atomic_load(&bc.first_bad), 0, "ask %d got a wrong answer (status %s)",
	             atomic_load(&bc.first_bad) - 1,
	             skald_err_name(atomic_load(&bc.first_bad_status)));
	cr_assert_eq(atomic_load(&bc.ok), ASKS);
	/* B relayed every one of them (C's count is C's business: A never
	 * talks to C). */
	cr_assert_eq(ask_cmd(a, relay, CMD_COUNT), ASKS + 1);
	checks_ok();
	sys_stop(a);
	node_exit_clean(b);
	node_exit_clean(c);
}

Test(relay, tells_relayed_through_three_nodes_come_back_in_order)
{
	node_t *b, *c;
	start_chain(&b, &c);
	skald_system_t *a = sys_start(NULL);
	skald_ref_t relay = lookup_on(a, b, "relay");

	static collect_ctx_t cc;
	cc.relay = relay;
	spawn(a, &collect_behavior, &cc);
	AWAIT(atomic_load(&cc.got) >= TELLS, WAIT_MS);
	cr_assert_eq(atomic_load(&cc.first_wrong), 0, "answer %d out of order or wrong",
	             atomic_load(&cc.first_wrong) - 1);
	/* The answers come from B's relay, which is who A talked to. */
	cr_assert(skald_ref_eq(cc.last_sender, relay));
	HOLDS_FOR(atomic_load(&cc.got) == TELLS, QUIET_MS);
	checks_ok();
	sys_stop(a);
	node_exit_clean(b);
	node_exit_clean(c);
}
