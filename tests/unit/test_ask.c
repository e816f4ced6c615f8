/*
 * tests/unit/test_ask.c - ask, reply and the blocking ask of outside threads.
 */
#include <stdlib.h>

#include "helpers.h"

TestSuite(ask, .init = fixture_setup, .timeout = 60);

/* ------------------------------------------------------------------------ */
/* Targets                                                                   */

typedef struct target_ctx_s {
	atomic_long received;
	atomic_ullong last_ask_id;
	skald_ref_t last_sender;
	/* Hold: block in receive until release is set (bounded), so that the
	 * asker's timeout surely fires first. */
	atomic_int hold;
	atomic_int release;
	atomic_int held_too_long;
	atomic_int reply_rc;
	atomic_int replied;
} target_ctx_t;

static int target_init(skald_actor_t *self, void *state, void *arg)
{
	*(target_ctx_t **)state = arg;
	return 0;
}

/* Echo: replies to a box with a box holding v + 1 and to an integer with the
 * integer + 1. */
static int echo_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	target_ctx_t *ctx = *(target_ctx_t **)state;
	ctx->last_sender = msg->sender;
	atomic_store(&ctx->last_ask_id, msg->ask_id);
	atomic_fetch_add(&ctx->received, 1);
	if (atomic_load(&ctx->hold)) {
		uint64_t end = now_ms() + WAIT_MS;
		while (!atomic_load(&ctx->release) && now_ms() < end)
			sleep_ms(1);
		if (!atomic_load(&ctx->release))
			atomic_store(&ctx->held_too_long, 1);
	}
	int rc;
	if (msg->type == t_box)
		rc = skald_reply(self, msg, t_box, box_new(((box_t *)msg->payload)->v + 1));
	else
		rc = skald_reply(self, msg, t_int, INT_PAYLOAD(PAYLOAD_INT(msg->payload) + 1));
	atomic_store(&ctx->reply_rc, rc);
	atomic_fetch_add(&ctx->replied, 1);
	return 0;
}

static const skald_behavior_t echo_behavior = {
        .state_size = sizeof(void *),
        .init = target_init,
        .receive = echo_receive,
};

/* Silent: receives and never replies. */
static int silent_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	target_ctx_t *ctx = *(target_ctx_t **)state;
	atomic_fetch_add(&ctx->received, 1);
	return 0;
}

static const skald_behavior_t silent_behavior = {
        .state_size = sizeof(void *),
        .init = target_init,
        .receive = silent_receive,
};

/* ------------------------------------------------------------------------ */
/* The asker: on any message from outside it asks ctx->target.              */

typedef struct asker_ctx_s {
	skald_ref_t target;
	uint64_t timeout_ms;
	int nasks;      /* asks per start message (values 1..nasks) */
	int take_reply; /* take the reply payload in the callback */
	int stop_after; /* stop_self right after asking */
	int use_box;    /* ask with a box instead of an integer */
	atomic_int ask_rc;
	atomic_int calls;
	atomic_int status;
	atomic_int wrong_thread;
	atomic_int wrong_arg;
	atomic_int wrong_reply;
	atomic_int wrong_sender;
	atomic_int received; /* plain messages (anything but the start) */
	atomic_int stops;
	atomic_int calls_at_stop;
	atomic_ullong asked_at;
	atomic_ullong answered_at;
	void *_Atomic taken;
} asker_ctx_t;

typedef struct asker_state_s {
	asker_ctx_t *ctx;
	uint64_t thread;
	int tag[8];
} asker_state_t;

static void asker_cb(skald_actor_t *self, void *state, int status, skald_msg_t *reply, void *arg)
{
	asker_state_t *st = state;
	asker_ctx_t *ctx = st->ctx;
	int *tag = arg;
	if (thread_id() != st->thread)
		atomic_store(&ctx->wrong_thread, 1);
	if (tag < st->tag || tag >= st->tag + 8)
		atomic_store(&ctx->wrong_arg, 1);
	if (status == 0) {
		/* The echo answers v with v + 1, in the request's own type. */
		uint64_t want = (uint64_t)*tag + 1;
		if (reply == NULL)
			atomic_store(&ctx->wrong_reply, 1);
		else if (reply->type != (ctx->use_box ? t_box : t_int))
			atomic_store(&ctx->wrong_reply, 1);
		else if ((ctx->use_box ? ((box_t *)reply->payload)->v
		                       : PAYLOAD_INT(reply->payload)) != want)
			atomic_store(&ctx->wrong_reply, 1);
		if (reply && !skald_ref_eq(reply->sender, ctx->target))
			atomic_store(&ctx->wrong_sender, 1);
		if (reply && ctx->take_reply)
			atomic_store(&ctx->taken, skald_msg_take(reply));
	} else if (reply != NULL) {
		atomic_store(&ctx->wrong_reply, 1);
	}
	atomic_store(&ctx->status, status);
	atomic_store(&ctx->answered_at, now_ms());
	atomic_fetch_add(&ctx->calls, 1);
}

static int asker_init(skald_actor_t *self, void *state, void *arg)
{
	asker_state_t *st = state;
	st->ctx = arg;
	st->thread = thread_id();
	for (int i = 0; i < 8; i++)
		st->tag[i] = i + 1;
	return 0;
}

static int asker_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	asker_state_t *st = state;
	asker_ctx_t *ctx = st->ctx;
	if (!skald_ref_is_null(msg->sender)) {
		atomic_fetch_add(&ctx->received, 1);
		return 0;
	}
	atomic_store(&ctx->asked_at, now_ms());
	for (int i = 0; i < ctx->nasks; i++) {
		int rc;
		if (ctx->use_box) {
			box_t *b = box_new((uint64_t)st->tag[i]);
			rc = skald_ask(self, ctx->target, t_box, b, ctx->timeout_ms, asker_cb,
			               &st->tag[i]);
			if (rc != 0)
				box_free(b);
		} else {
			rc = skald_ask(self, ctx->target, t_int, INT_PAYLOAD(st->tag[i]),
			               ctx->timeout_ms, asker_cb, &st->tag[i]);
		}
		atomic_store(&ctx->ask_rc, rc);
	}
	if (ctx->stop_after)
		skald_stop_self(self);
	return 0;
}

static void asker_stop(skald_actor_t *self, void *state, int reason)
{
	asker_state_t *st = state;
	if (thread_id() != st->thread)
		atomic_store(&st->ctx->wrong_thread, 1);
	atomic_store(&st->ctx->calls_at_stop, atomic_load(&st->ctx->calls));
	atomic_fetch_add(&st->ctx->stops, 1);
}

static const skald_behavior_t asker_behavior = {
        .state_size = sizeof(asker_state_t),
        .init = asker_init,
        .receive = asker_receive,
        .stop = asker_stop,
};

static void asker_clean(asker_ctx_t *ctx)
{
	cr_assert_eq(atomic_load(&ctx->wrong_thread), 0, "a callback ran on another thread");
	cr_assert_eq(atomic_load(&ctx->wrong_arg), 0, "the callback got another arg");
	cr_assert_eq(atomic_load(&ctx->wrong_reply), 0, "the callback got a wrong reply");
	cr_assert_eq(atomic_load(&ctx->wrong_sender), 0, "the reply's sender is not the target");
}

/* ------------------------------------------------------------------------ */
/* Replies                                                                   */

Test(ask, reply_arrives_on_the_askers_thread)
{
	skald_system_t *sys = sys_start(2, 0);
	target_ctx_t tctx = {0};
	asker_ctx_t ctx = {.timeout_ms = WAIT_MS, .nasks = 1, .use_box = 1};
	ctx.target = spawn_on(sys, &echo_behavior, &tctx, 1);
	skald_ref_t asker = spawn_on(sys, &asker_behavior, &ctx, 0);
	tell_int(sys, asker, 0);
	AWAIT(atomic_load(&ctx.calls) == 1, WAIT_MS);
	cr_assert_eq(atomic_load(&ctx.ask_rc), 0);
	cr_assert_eq(atomic_load(&ctx.status), 0);
	asker_clean(&ctx);
	/* The request seen by the target carried the asker and an ask id. */
	cr_assert(skald_ref_eq(tctx.last_sender, asker));
	cr_assert_neq(atomic_load(&tctx.last_ask_id), 0);
	/* Request and reply are both freed by the runtime, once each. */
	AWAIT(atomic_load(&box_frees) == 2, WAIT_MS);
	HOLDS_FOR(atomic_load(&ctx.calls) == 1, QUIET_MS);
	cr_assert_eq(atomic_load(&ctx.received), 0, "the reply was also delivered as a message");
	skald_system_stop(sys);
	cr_assert_eq(atomic_load(&box_frees), 2);
}

Test(ask, reply_between_actors_on_one_thread)
{
	skald_system_t *sys = sys_start(1, 0);
	target_ctx_t tctx = {0};
	asker_ctx_t ctx = {.timeout_ms = WAIT_MS, .nasks = 1};
	ctx.target = spawn_on(sys, &echo_behavior, &tctx, 0);
	skald_ref_t asker = spawn_on(sys, &asker_behavior, &ctx, 0);
	tell_int(sys, asker, 0);
	AWAIT(atomic_load(&ctx.calls) == 1, WAIT_MS);
	cr_assert_eq(atomic_load(&ctx.status), 0);
	asker_clean(&ctx);
	skald_system_stop(sys);
}

Test(ask, reply_payload_taken_in_callback_is_not_freed)
{
	skald_system_t *sys = sys_start(2, 0);
	target_ctx_t tctx = {0};
	asker_ctx_t ctx = {.timeout_ms = WAIT_MS, .nasks = 1, .use_box = 1, .take_reply = 1};
	ctx.target = spawn_on(sys, &echo_behavior, &tctx, 1);
	skald_ref_t asker = spawn_on(sys, &asker_behavior, &ctx, 0);
	tell_int(sys, asker, 0);
	AWAIT(atomic_load(&ctx.calls) == 1, WAIT_MS);
	AWAIT(atomic_load(&box_frees) == 1, WAIT_MS); /* the request */
	skald_system_stop(sys);
	cr_assert_eq(atomic_load(&box_frees), 1);
	box_t *taken = atomic_load(&ctx.taken);
	cr_assert_not_null(taken);
	cr_assert_eq(taken->v, 2);
	box_free(taken);
}

Test(ask, concurrent_asks_each_get_their_own_reply)
{
	skald_system_t *sys = sys_start(2, 0);
	target_ctx_t tctx = {0};
	asker_ctx_t ctx = {.timeout_ms = WAIT_MS, .nasks = 8};
	ctx.target = spawn_on(sys, &echo_behavior, &tctx, 1);
	skald_ref_t asker = spawn_on(sys, &asker_behavior, &ctx, 0);
	tell_int(sys, asker, 0);
	AWAIT(atomic_load(&ctx.calls) == 8, WAIT_MS);
	asker_clean(&ctx);
	HOLDS_FOR(atomic_load(&ctx.calls) == 8, QUIET_MS);
	skald_system_stop(sys);
}

/* ------------------------------------------------------------------------ */
/* Timeouts and late replies                                                 */

Test(ask, timeout_calls_back_once_and_late_reply_is_counted_not_delivered)
{
	enum { TIMEOUT = 100 };
	skald_system_t *sys = sys_start(2, 0);
	target_ctx_t tctx = {.hold = 1};
	asker_ctx_t ctx = {.timeout_ms = TIMEOUT, .nasks = 1, .use_box = 1};
	ctx.target = spawn_on(sys, &echo_behavior, &tctx, 1);
	skald_ref_t asker = spawn_on(sys, &asker_behavior, &ctx, 0);
	uint64_t late = stats_of(sys).late_replies;

	tell_int(sys, asker, 0);
	AWAIT(atomic_load(&ctx.calls) == 1, WAIT_MS);
	cr_assert_eq(atomic_load(&ctx.status), SKALD_ETIMEDOUT, "status %s",
	             skald_err_name(atomic_load(&ctx.status)));
	/* Not at once. The slack covers the loop's cached clock and a thread
	 * preempted between the loop's clock reading and ours. */
	cr_assert_geq(atomic_load(&ctx.answered_at) - atomic_load(&ctx.asked_at), TIMEOUT / 2);
	asker_clean(&ctx);

	/* Now let the target reply: too late. */
	atomic_store(&tctx.release, 1);
	AWAIT(atomic_load(&tctx.replied) == 1, WAIT_MS);
	cr_assert_eq(atomic_load(&tctx.held_too_long), 0);
	cr_assert_eq(atomic_load(&tctx.reply_rc), 0);
	AWAIT(stats_of(sys).late_replies == late + 1, WAIT_MS);
	/* The late reply's payload was freed by the runtime, after the request's. */
	AWAIT(atomic_load(&box_frees) == 2, WAIT_MS);
	HOLDS_FOR(atomic_load(&ctx.calls) == 1 && atomic_load(&ctx.received) == 0, QUIET_MS);
	skald_system_stop(sys);
	cr_assert_eq(atomic_load(&box_frees), 2);
}

Test(ask, ask_to_stopped_actor_calls_back_enoactor_at_once)
{
	skald_system_t *sys = sys_start(2, 0);
	target_ctx_t tctx = {0};
	/* A long timeout: the answer must not wait for it. */
	asker_ctx_t ctx = {.timeout_ms = 60000, .nasks = 1, .use_box = 1};
	uint64_t live = stats_of(sys).live_actors;
	ctx.target = spawn_on(sys, &echo_behavior, &tctx, 1);
	cr_assert_eq(skald_stop(sys, ctx.target), 0);
	AWAIT_LIVE(sys, live);

	skald_ref_t asker = spawn_on(sys, &asker_behavior, &ctx, 0);
	tell_int(sys, asker, 0);
	AWAIT(atomic_load(&ctx.calls) == 1, WAIT_MS);
	cr_assert_eq(atomic_load(&ctx.ask_rc), 0);
	cr_assert_eq(atomic_load(&ctx.status), SKALD_ENOACTOR, "status %s",
	             skald_err_name(atomic_load(&ctx.status)));
	asker_clean(&ctx);
	AWAIT(atomic_load(&box_frees) == 1, WAIT_MS); /* the request, as a dead letter */
	HOLDS_FOR(atomic_load(&ctx.calls) == 1, QUIET_MS);
	cr_assert_eq(atomic_load(&tctx.received), 0);
	skald_system_stop(sys);
	cr_assert_eq(atomic_load(&box_frees), 1);
}

Test(ask, pending_ask_is_canceled_when_asker_stops)
{
	skald_system_t *sys = sys_start(2, 0);
	target_ctx_t tctx = {0};
	asker_ctx_t ctx = {.timeout_ms = 60000, .nasks = 1, .stop_after = 1};
	ctx.target = spawn_on(sys, &silent_behavior, &tctx, 1);
	skald_ref_t asker = spawn_on(sys, &asker_behavior, &ctx, 0);
	tell_int(sys, asker, 0);
	AWAIT(atomic_load(&ctx.stops) == 1, WAIT_MS);
	AWAIT(atomic_load(&ctx.calls) == 1, WAIT_MS);
	cr_assert_eq(atomic_load(&ctx.status), SKALD_ECANCELED, "status %s",
	             skald_err_name(atomic_load(&ctx.status)));
	asker_clean(&ctx);
	HOLDS_FOR(atomic_load(&ctx.calls) == 1, QUIET_MS);
	skald_system_stop(sys);
	cr_assert_eq(atomic_load(&ctx.calls), 1);
}

Test(ask, pending_ask_is_canceled_when_system_stops)
{
	skald_system_t *sys = sys_start(2, 0);
	target_ctx_t tctx = {0};
	asker_ctx_t ctx = {.timeout_ms = 60000, .nasks = 1};
	ctx.target = spawn_on(sys, &silent_behavior, &tctx, 1);
	skald_ref_t asker = spawn_on(sys, &asker_behavior, &ctx, 0);
	tell_int(sys, asker, 0);
	AWAIT(atomic_load(&tctx.received) == 1, WAIT_MS);
	skald_system_stop(sys);
	cr_assert_eq(atomic_load(&ctx.calls), 1);
	cr_assert_eq(atomic_load(&ctx.status), SKALD_ECANCELED, "status %s",
	             skald_err_name(atomic_load(&ctx.status)));
	cr_assert_eq(atomic_load(&ctx.wrong_thread), 0);
}

Test(ask, ask_with_unregistered_type_is_enotype_and_never_calls_back)
{
	skald_system_t *sys = sys_start(1, 0);
	target_ctx_t tctx = {0};
	skald_ref_t target = spawn_on(sys, &echo_behavior, &tctx, 0);
	uint32_t rtype = 0;
	void *reply = NULL;
	box_t *b = box_new(1);
	cr_assert_eq(skald_system_ask(sys, target, 0xdead0u, b, 1000, &rtype, &reply),
	             SKALD_ENOTYPE);
	cr_assert_eq(b->v, 1);
	box_free(b);
	cr_assert_eq(atomic_load(&tctx.received), 0);
	skald_system_stop(sys);
}

typedef struct badask_ctx_s {
	skald_ref_t target;
	atomic_int rc_type;
	atomic_int rc_null;
	atomic_int calls;
	atomic_int done;
} badask_ctx_t;

static void badask_cb(skald_actor_t *self, void *state, int status, skald_msg_t *reply, void *arg)
{
	badask_ctx_t *ctx = arg;
	atomic_fetch_add(&ctx->calls, 1);
}

static int badask_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	badask_ctx_t *ctx = *(badask_ctx_t **)state;
	box_t *b = box_new(1);
	atomic_store(&ctx->rc_type, skald_ask(self, ctx->target, 0xdead0u, b, 100, badask_cb, ctx));
	atomic_store(&ctx->rc_null, skald_ask(self, SKALD_REF_NULL, t_box, b, 100, badask_cb, ctx));
	box_free(b);
	atomic_store(&ctx->done, 1);
	return 0;
}

static const skald_behavior_t badask_behavior = {
        .state_size = sizeof(void *),
        .init = target_init,
        .receive = badask_receive,
};

Test(ask, actor_ask_errors_return_at_once_and_never_call_back)
{
	skald_system_t *sys = sys_start(1, 0);
	target_ctx_t tctx = {0};
	badask_ctx_t ctx = {0};
	ctx.target = spawn_on(sys, &echo_behavior, &tctx, 0);
	skald_ref_t r = spawn_on(sys, &badask_behavior, &ctx, 0);
	tell_int(sys, r, 0);
	AWAIT(atomic_load(&ctx.done), WAIT_MS);
	cr_assert_eq(atomic_load(&ctx.rc_type), SKALD_ENOTYPE);
	cr_assert_eq(atomic_load(&ctx.rc_null), SKALD_EINVAL);
	/* Longer than the asks' timeout: no late callback either. */
	HOLDS_FOR(atomic_load(&ctx.calls) == 0, 300);
	skald_system_stop(sys);
	cr_assert_eq(atomic_load(&box_frees), 1);
}

/* ------------------------------------------------------------------------ */
/* skald_reply to plain tells                                                */

/* On a message from outside, tells its target 7; records what comes back. */
typedef struct teller_ctx_s {
	skald_ref_t target;
	skald_ref_t from;
	atomic_ullong value;
	atomic_ullong ask_id;
	atomic_uint type;
	atomic_int got;
} teller_ctx_t;

static int teller_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	teller_ctx_t *ctx = *(teller_ctx_t **)state;
	if (skald_ref_is_null(msg->sender)) {
		CHECK(skald_tell(self, ctx->target, t_int, INT_PAYLOAD(7)) == 0);
		return 0;
	}
	ctx->from = msg->sender;
	atomic_store(&ctx->type, msg->type);
	atomic_store(&ctx->value, PAYLOAD_INT(msg->payload));
	atomic_store(&ctx->ask_id, msg->ask_id);
	atomic_fetch_add(&ctx->got, 1);
	return 0;
}

static const skald_behavior_t teller_behavior = {
        .state_size = sizeof(void *),
        .init = target_init,
        .receive = teller_receive,
};

Test(ask, reply_to_a_tell_is_a_plain_tell_to_the_sender)
{
	skald_system_t *sys = sys_start(2, 0);
	target_ctx_t tctx = {0};
	teller_ctx_t ctx = {0};
	ctx.target = spawn_on(sys, &echo_behavior, &tctx, 1);
	skald_ref_t teller = spawn_on(sys, &teller_behavior, &ctx, 0);
	tell_int(sys, teller, 0);
	AWAIT(atomic_load(&ctx.got) == 1, WAIT_MS);
	cr_assert_eq(atomic_load(&ctx.type), t_int);
	cr_assert_eq(atomic_load(&ctx.value), 8);
	cr_assert_eq(atomic_load(&ctx.ask_id), 0);
	cr_assert(skald_ref_eq(ctx.from, ctx.target));
	cr_assert_eq(atomic_load(&tctx.last_ask_id), 0);
	HOLDS_FOR(atomic_load(&ctx.got) == 1, QUIET_MS);
	skald_system_stop(sys);
	checks_ok();
}

Test(ask, reply_to_an_outside_tell_is_a_dead_letter)
{
	skald_system_t *sys = sys_start(2, 0);
	target_ctx_t tctx = {0};
	skald_ref_t echo = spawn_on(sys, &echo_behavior, &tctx, 1);
	uint64_t dead = stats_of(sys).dead_letters;
	cr_assert_eq(skald_system_tell(sys, echo, t_box, box_new(1)), 0);
	AWAIT(atomic_load(&tctx.replied) == 1, WAIT_MS);
	cr_assert_eq(atomic_load(&tctx.reply_rc), 0);
	AWAIT(stats_of(sys).dead_letters == dead + 1, WAIT_MS);
	AWAIT(atomic_load(&box_frees) == 2, WAIT_MS);
	skald_system_stop(sys);
	cr_assert_eq(atomic_load(&box_frees), 2);
}

/* ------------------------------------------------------------------------ */
/* skald_system_ask                                                          */

Test(ask, system_ask_round_trip_hands_reply_to_caller)
{
	skald_system_t *sys = sys_start(2, 0);
	target_ctx_t tctx = {0};
	skald_ref_t echo = spawn_on(sys, &echo_behavior, &tctx, 1);
	uint32_t type = 0;
	void *reply = NULL;
	int rc = skald_system_ask(sys, echo, t_box, box_new(5), WAIT_MS, &type, &reply);
	cr_assert_eq(rc, 0, "%s", skald_err_name(rc));
	cr_assert_eq(type, t_box);
	cr_assert_not_null(reply);
	cr_assert_eq(((box_t *)reply)->v, 6);
	cr_assert_neq(atomic_load(&tctx.last_ask_id), 0);
	/* The request is the runtime's to free; the reply is ours. */
	AWAIT(atomic_load(&box_frees) == 1, WAIT_MS);
	box_free(reply);
	skald_system_stop(sys);
	cr_assert_eq(atomic_load(&box_frees), 2);
}

Test(ask, system_ask_request_comes_from_a_short_lived_asker)
{
	/* actor.h: the request's sender is an actor that exists only to take
	 * the reply, and is gone once the call returns. */
	skald_system_t *sys = sys_start(2, 0);
	target_ctx_t tctx = {0};
	skald_ref_t echo = spawn_on(sys, &echo_behavior, &tctx, 1);
	cr_assert_eq(ask_int(sys, echo, 1), 2);
	cr_assert_not(skald_ref_is_null(tctx.last_sender));
	cr_assert_eq(tctx.last_sender.node, skald_system_node(sys));
	uint64_t dead = stats_of(sys).dead_letters;
	cr_assert_eq(skald_system_tell(sys, tctx.last_sender, t_int, INT_PAYLOAD(1)), 0);
	AWAIT(stats_of(sys).dead_letters == dead + 1, WAIT_MS);
	skald_system_stop(sys);
}

Test(ask, system_ask_many_in_a_row)
{
	skald_system_t *sys = sys_start(2, 0);
	target_ctx_t tctx = {0};
	skald_ref_t echo = spawn_on(sys, &echo_behavior, &tctx, -1);
	for (uint64_t i = 0; i < 1000; i++)
		cr_assert_eq(ask_int(sys, echo, i), i + 1);
	skald_system_stop(sys);
}

Test(ask, system_ask_times_out_when_target_never_replies)
{
	enum { TIMEOUT = 100 };
	skald_system_t *sys = sys_start(2, 0);
	target_ctx_t tctx = {0};
	skald_ref_t silent = spawn_on(sys, &silent_behavior, &tctx, 1);
	uint32_t type = 0;
	void *reply = NULL;
	uint64_t t0 = now_ms();
	int rc = skald_system_ask(sys, silent, t_box, box_new(1), TIMEOUT, &type, &reply);
	uint64_t took = now_ms() - t0;
	cr_assert_eq(rc, SKALD_ETIMEDOUT, "%s", skald_err_name(rc));
	cr_assert_geq(took, TIMEOUT / 2);
	cr_assert_lt(took, WAIT_MS);
	cr_assert_eq(atomic_load(&tctx.received), 1);
	AWAIT(atomic_load(&box_frees) == 1, WAIT_MS);
	skald_system_stop(sys);
	cr_assert_eq(atomic_load(&box_frees), 1);
}

Test(ask, system_ask_late_reply_is_a_dead_letter_and_freed)
{
	/* actor.h: after a timeout the asker is gone, so a late reply is a
	 * dead letter; it is freed, never handed to anyone. */
	skald_system_t *sys = sys_start(2, 0);
	target_ctx_t tctx = {.hold = 1};
	skald_ref_t echo = spawn_on(sys, &echo_behavior, &tctx, 1);
	uint64_t dead = stats_of(sys).dead_letters;
	uint32_t type = 0;
	void *reply = NULL;
	int rc = skald_system_ask(sys, echo, t_box, box_new(1), 50, &type, &reply);
	cr_assert_eq(rc, SKALD_ETIMEDOUT, "%s", skald_err_name(rc));
	atomic_store(&tctx.release, 1);
	AWAIT(atomic_load(&tctx.replied) == 1, WAIT_MS);
	AWAIT(stats_of(sys).dead_letters == dead + 1, WAIT_MS);
	AWAIT(atomic_load(&box_frees) == 2, WAIT_MS);
	skald_system_stop(sys);
	cr_assert_eq(atomic_load(&box_frees), 2);
}

Test(ask, system_ask_to_stopped_actor_is_enoactor_at_once)
{
	skald_system_t *sys = sys_start(2, 0);
	target_ctx_t tctx = {0};
	uint64_t live = stats_of(sys).live_actors;
	skald_ref_t echo = spawn_on(sys, &echo_behavior, &tctx, 1);
	cr_assert_eq(skald_stop(sys, echo), 0);
	AWAIT_LIVE(sys, live);
	uint32_t type = 0;
	void *reply = NULL;
	uint64_t t0 = now_ms();
	int rc = skald_system_ask(sys, echo, t_int, INT_PAYLOAD(1), 60000, &type, &reply);
	cr_assert_eq(rc, SKALD_ENOACTOR, "%s", skald_err_name(rc));
	cr_assert_lt(now_ms() - t0, WAIT_MS);
	cr_assert_eq(atomic_load(&tctx.received), 0);
	skald_system_stop(sys);
}
