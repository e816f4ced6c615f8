/*
 * tests/remote/test_messaging.c - tell, ask, lookup and their errors between
 * the test's node and a node process.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

TestSuite(messaging, .init = fixture_setup, .fini = fixture_teardown, .timeout = 60);

/* Polls the echo's count until it reaches want (bounded). */
static void await_count(skald_system_t *sys, skald_ref_t echo, uint64_t want)
{
	uint64_t end = now_ms() + WAIT_MS, got;
	while ((got = ask_cmd(sys, echo, CMD_COUNT)) < want) {
		cr_assert_leq(now_ms(), end, "echo counted %llu of %llu messages",
		              (unsigned long long)got, (unsigned long long)want);
		sleep_ms(5);
	}
	cr_assert_eq(got, want, "echo counted %llu messages, expected %llu",
	             (unsigned long long)got, (unsigned long long)want);
}

Test(messaging, ask_and_tell_reach_a_published_actor_on_another_node)
{
	node_t *b = node_start(&(node_opts_t){.name = "b"});
	skald_system_t *a = sys_start(NULL);

	skald_ref_t echo = lookup_on(a, b, "echo");
	cr_assert(skald_ref_eq(echo, node_ref(b, "echo")), "lookup found another actor");

	uint64_t v = 0;
	cr_assert_eq(ask_u64(a, echo, t_int, 41, WAIT_MS, &v), 0);
	cr_assert_eq(v, 42);

	uint32_t rtype;
	void *reply;
	int rc = skald_system_ask(a, echo, t_str, str_dup("hello"), WAIT_MS, &rtype, &reply);
	cr_assert_eq(rc, 0, "ask: %s", skald_err_name(rc));
	cr_assert_eq(rtype, t_str);
	cr_assert_str_eq(reply, "echo:hello");
	free(reply);

	for (int i = 0; i < 100; i++)
		cr_assert_eq(skald_system_tell(a, echo, t_int, INT_PAYLOAD(i)), 0);
	await_count(a, echo, 102);
	HOLDS_FOR(ask_cmd(a, echo, CMD_COUNT) == 102, QUIET_MS);

	sys_stop(a);
	node_exit_clean(b);
}

/* --- the same from an actor: skald_lookup, skald_ask, skald_tell -------- */

typedef struct client_ctx_s {
	char addr[64];
	skald_ref_t echo;
	atomic_int found; /* 1: lookup of "echo" done */
	atomic_int lookup_rc;
	atomic_int missing_done; /* 1: lookup of "nobody" done */
	atomic_int missing_rc;
	atomic_int asked;
	atomic_int ask_rc;
	atomic_ullong ask_value;
	atomic_int told_back; /* replies to plain tells that came back */
	atomic_ullong told_value;
	skald_ref_t told_sender; /* written before told_back is incremented */
} client_ctx_t;

static void client_asked(skald_actor_t *self, void *state, int status, skald_msg_t *reply,
                         void *arg)
{
	client_ctx_t *c = arg;
	if (status == 0) {
		CHECK(reply->type == t_int);
		CHECK(skald_ref_eq(reply->sender, c->echo));
		atomic_store(&c->ask_value, PAYLOAD_INT(reply->payload));
	}
	atomic_store(&c->ask_rc, status);
	atomic_store(&c->asked, 1);
}

static void client_found(skald_actor_t *self, void *state, int status, skald_ref_t ref, void *arg)
{
	client_ctx_t *c = arg;
	atomic_store(&c->lookup_rc, status);
	if (status == 0) {
		c->echo = ref;
		CHECK(skald_ask(self, ref, t_int, INT_PAYLOAD(99), WAIT_MS, client_asked, c) == 0);
		/* A plain tell from an actor: the echo's reply comes back as a
		 * tell whose sender is the echo. */
		CHECK(skald_tell(self, ref, t_int, INT_PAYLOAD(7)) == 0);
	}
	atomic_store(&c->found, 1);
}

static void client_missing(skald_actor_t *self, void *state, int status, skald_ref_t ref, void *arg)
{
	client_ctx_t *c = arg;
	CHECK(skald_ref_is_null(ref));
	atomic_store(&c->missing_rc, status);
	atomic_store(&c->missing_done, 1);
}

static int client_init(skald_actor_t *self, void *state, void *arg)
{
	client_ctx_t *c = arg;
	*(client_ctx_t **)state = c;
	CHECK(skald_lookup(self, c->addr, "echo", WAIT_MS, client_found, c) == 0);
	CHECK(skald_lookup(self, c->addr, "nobody", WAIT_MS, client_missing, c) == 0);
	return 0;
}

static int client_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	client_ctx_t *c = *(client_ctx_t **)state;
	if (msg->type == t_int) {
		atomic_store(&c->told_value, PAYLOAD_INT(msg->payload));
		c->told_sender = msg->sender;
		atomic_fetch_add(&c->told_back, 1);
	}
	return 0;
}

static const skald_behavior_t client_behavior = {
        .state_size = sizeof(void *),
        .init = client_init,
        .receive = client_receive,
};

Test(messaging, an_actor_looks_up_asks_and_tells_across_nodes)
{
	node_t *b = node_start(&(node_opts_t){.name = "b"});
	skald_system_t *a = sys_start(NULL);
	static client_ctx_t c;
	snprintf(c.addr, sizeof c.addr, "%s", b->addr);
	spawn(a, &client_behavior, &c);

	AWAIT(atomic_load(&c.found) && atomic_load(&c.missing_done), WAIT_MS);
	cr_assert_eq(atomic_load(&c.lookup_rc), 0, "lookup: %s",
	             skald_err_name(atomic_load(&c.lookup_rc)));
	cr_assert(skald_ref_eq(c.echo, node_ref(b, "echo")));
	cr_assert_eq(atomic_load(&c.missing_rc), SKALD_ENOTFOUND, "lookup of nobody: %s",
	             skald_err_name(atomic_load(&c.missing_rc)));

	AWAIT(atomic_load(&c.asked), WAIT_MS);
	cr_assert_eq(atomic_load(&c.ask_rc), 0, "ask: %s", skald_err_name(atomic_load(&c.ask_rc)));
	cr_assert_eq(atomic_load(&c.ask_value), 100);

	AWAIT(atomic_load(&c.told_back) == 1, WAIT_MS);
	cr_assert_eq(atomic_load(&c.told_value), 8);
	cr_assert(skald_ref_eq(c.told_sender, c.echo), "the reply's sender is not the echo");
	checks_ok();
	sys_stop(a);
	node_exit_clean(b);
}

Test(messaging, lookup_of_an_unknown_name_is_not_found)
{
	node_t *b = node_start(&(node_opts_t){.name = "b"});
	skald_system_t *a = sys_start(NULL);
	skald_ref_t r = SKALD_REF_NULL;
	int rc = skald_system_lookup(a, b->addr, "nobody", WAIT_MS, &r);
	cr_assert_eq(rc, SKALD_ENOTFOUND, "lookup: %s", skald_err_name(rc));
	cr_assert(skald_ref_is_null(r));
	/* The node still answers for the names it has. */
	lookup_on(a, b, "echo");
	sys_stop(a);
	node_exit_clean(b);
}

Test(messaging, ask_to_a_stale_ref_on_a_live_node_fails_with_enoactor)
{
	node_t *b = node_start(&(node_opts_t){.name = "b"});
	skald_system_t *a = sys_start(NULL);
	skald_ref_t echo = lookup_on(a, b, "echo");
	uint64_t v;

	/* A slot that never held an actor. The ask's timeout is far beyond
	 * the answer's round trip: ETIMEDOUT here means no answer came. */
	skald_ref_t never = {b->id, 4000, 7};
	int rc = ask_u64(a, never, t_int, 1, WAIT_MS, &v);
	cr_assert_eq(rc, SKALD_ENOACTOR, "ask to a never-used slot: %s", skald_err_name(rc));

	/* An actor that stopped: its reference is stale. */
	cr_assert_eq(ask_cmd(a, echo, CMD_STOP), 0);
	uint64_t t0 = now_ms();
	rc = ask_u64(a, echo, t_int, 1, WAIT_MS, &v);
	cr_assert_eq(rc, SKALD_ENOACTOR, "ask to a stopped actor: %s (after %llu ms)",
	             skald_err_name(rc), (unsigned long long)(now_ms() - t0));

	/* Its name went with it, and the node still serves the others. */
	skald_ref_t r;
	uint64_t end = now_ms() + WAIT_MS;
	while ((rc = skald_system_lookup(a, b->addr, "echo", WAIT_MS, &r)) == 0)
		cr_assert_leq(now_ms(), end, "the stopped actor's name is still published");
	cr_assert_eq(rc, SKALD_ENOTFOUND, "lookup: %s", skald_err_name(rc));
	skald_ref_t seq = lookup_on(a, b, "seq");
	cr_assert_eq(ask_cmd(a, seq, CMD_COUNT), 0);
	sys_stop(a);
	node_exit_clean(b);
}

/* --- sends that must fail at the call ------------------------------------ */

typedef struct sender_ctx_s {
	skald_ref_t to;
	uint32_t type;
	void *payload;
	atomic_int done;
	atomic_int tell_rc;
	atomic_int ask_rc;
} sender_ctx_t;

static void never_called(skald_actor_t *self, void *state, int status, skald_msg_t *reply,
                         void *arg)
{
	CHECK(!"an ask that failed at the call completed");
}

static int sender_init(skald_actor_t *self, void *state, void *arg)
{
	sender_ctx_t *s = arg;
	int rc = skald_tell(self, s->to, s->type, s->payload);
	atomic_store(&s->tell_rc, rc);
	/* Only a payload the tell gave back may be offered again. */
	atomic_store(&s->ask_rc, rc < 0 ? skald_ask(self, s->to, s->type, s->payload, WAIT_MS,
	                                            never_called, NULL)
	                                : 1);
	atomic_store(&s->done, 1);
	return 0;
}

static int ignore_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	return 0;
}

static const skald_behavior_t sender_behavior = {
        .init = sender_init,
        .receive = ignore_receive,
};

Test(messaging, a_type_without_codec_cannot_cross_nodes)
{
	node_t *b = node_start(&(node_opts_t){.name = "b"});
	skald_system_t *a = sys_start(NULL);
	skald_ref_t echo = lookup_on(a, b, "echo");

	blob_t *p = blob_new(16);
	int rc = skald_system_tell(a, echo, t_nocodec, p);
	cr_assert_eq(rc, SKALD_ENOCODEC, "system tell: %s", skald_err_name(rc));
	cr_assert_eq(atomic_load(&blob_frees), 0, "the runtime freed a payload it refused");

	/* From an actor, tell and ask alike. */
	static sender_ctx_t s;
	s.to = echo;
	s.type = t_nocodec;
	s.payload = p;
	spawn(a, &sender_behavior, &s);
	AWAIT(atomic_load(&s.done), WAIT_MS);
	cr_assert_eq(atomic_load(&s.tell_rc), SKALD_ENOCODEC, "tell: %s",
	             skald_err_name(atomic_load(&s.tell_rc)));
	cr_assert_eq(atomic_load(&s.ask_rc), SKALD_ENOCODEC, "ask: %s",
	             skald_err_name(atomic_load(&s.ask_rc)));
	cr_assert_eq(atomic_load(&blob_frees), 0, "the runtime freed a payload it refused");
	blob_free(p);

	/* Nothing reached the echo, and the connection still works. */
	cr_assert_eq(ask_cmd(a, echo, CMD_COUNT), 0);
	checks_ok();
	sys_stop(a);
	node_exit_clean(b);
}

Test(messaging, a_message_larger_than_max_frame_fails_at_the_call)
{
	node_t *b = node_start(&(node_opts_t){.name = "b"});
	skald_system_t *a = sys_start(&(sys_opts_t){.max_frame = 64 * 1024});
	skald_ref_t echo = lookup_on(a, b, "echo");

	blob_t *big = blob_new(128 * 1024);
	int rc = skald_system_tell(a, echo, t_blob, big);
	cr_assert_lt(rc, 0, "a frame over max_frame was accepted");
	cr_assert_eq(atomic_load(&blob_frees), 0, "the runtime freed a payload it refused");

	static sender_ctx_t s;
	s.to = echo;
	s.type = t_blob;
	s.payload = big;
	spawn(a, &sender_behavior, &s);
	AWAIT(atomic_load(&s.done), WAIT_MS);
	cr_assert_lt(atomic_load(&s.tell_rc), 0, "an actor's tell over max_frame was accepted");
	cr_assert_lt(atomic_load(&s.ask_rc), 0, "an actor's ask over max_frame was accepted");
	cr_assert_eq(atomic_load(&blob_frees), 0, "the runtime freed a payload it refused");
	blob_free(big);

	/* A message within the limit still goes through, alone. */
	uint64_t v = 0;
	uint32_t rtype;
	void *reply;
	rc = skald_system_ask(a, echo, t_blob, blob_new(1000), WAIT_MS, &rtype, &reply);
	cr_assert_eq(rc, 0, "ask: %s", skald_err_name(rc));
	v = PAYLOAD_INT(reply);
	cr_assert_eq(v, 1000);
	cr_assert_eq(ask_cmd(a, echo, CMD_COUNT), 1);
	checks_ok();
	sys_stop(a);
	node_exit_clean(b);
}

Test(messaging, a_frame_over_the_receivers_max_frame_drops_only_that_connection)
{
	/* The sender accepts it (its own limit is the default 8 MiB); the
	 * receiver must close the connection without reading the frame, and
	 * keep serving once the sender reconnects. */
	node_t *b = node_start(&(node_opts_t){.name = "b", .max_frame = 64 * 1024});
	skald_system_t *a = sys_start(NULL);
	static mon_ctx_t m;
	spawn(a, &monitor_behavior, &m);
	AWAIT(atomic_load(&m.armed), WAIT_MS);
	skald_ref_t echo = lookup_on(a, b, "echo");

	cr_assert_eq(skald_system_tell(a, echo, t_blob, blob_new(256 * 1024)), 0);
	AWAIT(mon_find(&m, b->id, 0) >= 0, WAIT_MS);
	cr_assert(node_running(b), "the receiving node died");

	/* The sender reconnects by itself; the same node (same id) answers. */
	uint64_t node = 0;
	int rc = skald_node_wait(a, b->addr, WAIT_MS, &node);
	cr_assert_eq(rc, 0, "reconnect: %s", skald_err_name(rc));
	cr_assert_eq(node, b->id);
	uint64_t v = 0;
	cr_assert_eq(ask_u64(a, echo, t_int, 1, WAIT_MS, &v), 0);
	cr_assert_eq(v, 2);
	cr_assert_eq(ask_cmd(a, echo, CMD_COUNT), 1, "the oversized frame was delivered");
	checks_ok();
	sys_stop(a);
	node_exit_clean(b);
}
