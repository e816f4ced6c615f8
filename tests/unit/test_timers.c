/*
 * tests/unit/test_timers.c - one-shot and periodic timers, cancellation.
 */
#include "helpers.h"

TestSuite(timers, .init = fixture_setup, .timeout = 60);

/* What a test wants the actor to do with timers; the actor acts on a message
 * from the test so that every timer call happens in a callback. */
enum {
	T_ONCE = 1,           /* start a one-shot timer of after_ms */
	T_PERIODIC = 2,       /* start a periodic timer (after_ms, repeat_ms) */
	T_CANCEL = 3,         /* cancel the last timer; reply with -rc */
	T_CANCEL_TWICE = 4,   /* cancel the last timer twice; reply with -rc of the second */
	T_ONCE_AND_STOP = 5,  /* start a one-shot timer, then stop_self */
	T_STOP = 6,           /* stop_self */
	T_MANY = 7,           /* start 100 long timers; reply 1 if their ids are distinct */
	T_CANCEL_UNKNOWN = 8, /* cancel an id never given; reply with -rc */
};

typedef struct timer_ctx_s {
	uint64_t after_ms;
	uint64_t repeat_ms;
	unsigned cancel_after; /* a periodic timer cancels itself after that many fires */
	atomic_int fires;
	atomic_int start_rc;
	atomic_int self_cancel_rc;
	atomic_int stops;
	atomic_int fires_at_stop;
	atomic_int wrong_thread;
	atomic_int wrong_state;
	atomic_ullong started_at;
	atomic_ullong first_fire_at;
} timer_ctx_t;

typedef struct timer_state_s {
	timer_ctx_t *ctx;
	uint64_t thread;
	uint64_t last_id;
} timer_state_t;

static void on_timer(skald_actor_t *self, void *state, void *arg)
{
	timer_state_t *st = state;
	timer_ctx_t *ctx = arg;
	if (thread_id() != st->thread)
		atomic_store(&ctx->wrong_thread, 1);
	if (state != skald_actor_state(self) || st->ctx != ctx)
		atomic_store(&ctx->wrong_state, 1);
	int n = atomic_fetch_add(&ctx->fires, 1) + 1;
	if (n == 1)
		atomic_store(&ctx->first_fire_at, now_ms());
	if (ctx->cancel_after && (unsigned)n == ctx->cancel_after)
		atomic_store(&ctx->self_cancel_rc, skald_timer_cancel(self, st->last_id));
}

static int timer_init(skald_actor_t *self, void *state, void *arg)
{
	timer_state_t *st = state;
	st->ctx = arg;
	st->thread = thread_id();
	return 0;
}

static int start(skald_actor_t *self, timer_state_t *st, uint64_t after, uint64_t repeat)
{
	atomic_store(&st->ctx->started_at, now_ms());
	int rc = skald_timer_start(self, after, repeat, on_timer, st->ctx, &st->last_id);
	atomic_store(&st->ctx->start_rc, rc);
	return rc;
}

static int timer_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	timer_state_t *st = state;
	timer_ctx_t *ctx = st->ctx;
	uint64_t out = 0;
	int rc;

	switch (PAYLOAD_INT(msg->payload)) {
	case T_ONCE:
		start(self, st, ctx->after_ms, 0);
		break;
	case T_PERIODIC:
		start(self, st, ctx->after_ms, ctx->repeat_ms);
		break;
	case T_CANCEL:
		out = (uint64_t)-skald_timer_cancel(self, st->last_id);
		break;
	case T_CANCEL_TWICE:
		rc = skald_timer_cancel(self, st->last_id);
		CHECK(rc == 0);
		out = (uint64_t)-skald_timer_cancel(self, st->last_id);
		break;
	case T_ONCE_AND_STOP:
		start(self, st, ctx->after_ms, 0);
		skald_stop_self(self);
		break;
	case T_STOP:
		skald_stop_self(self);
		break;
	case T_CANCEL_UNKNOWN:
		out = (uint64_t)-skald_timer_cancel(self, UINT64_C(0x7777777777));
		break;
	case T_MANY: {
		uint64_t ids[100];
		out = 1;
		for (int i = 0; i < 100; i++) {
			if (skald_timer_start(self, 60000, 0, on_timer, ctx, &ids[i]) != 0)
				out = 0;
			for (int j = 0; j < i; j++)
				if (ids[j] == ids[i])
					out = 0;
		}
		for (int i = 0; i < 100; i++)
			if (skald_timer_cancel(self, ids[i]) != 0)
				out = 0;
		break;
	}
	}
	if (msg->ask_id)
		return skald_reply(self, msg, t_int, INT_PAYLOAD(out));
	return 0;
}

static void timer_stop(skald_actor_t *self, void *state, int reason)
{
	timer_state_t *st = state;
	atomic_store(&st->ctx->fires_at_stop, atomic_load(&st->ctx->fires));
	atomic_fetch_add(&st->ctx->stops, 1);
}

static const skald_behavior_t timer_behavior = {
        .state_size = sizeof(timer_state_t),
        .init = timer_init,
        .receive = timer_receive,
        .stop = timer_stop,
};

static void assert_clean(timer_ctx_t *ctx)
{
	cr_assert_eq(atomic_load(&ctx->wrong_thread), 0, "a timer fired on another thread");
	cr_assert_eq(atomic_load(&ctx->wrong_state), 0, "a timer got the wrong state or arg");
}

Test(timers, once_fires_once_on_actor_thread_after_delay)
{
	skald_system_t *sys = sys_start(2, 0);
	timer_ctx_t ctx = {.after_ms = 100};
	skald_ref_t r = spawn_on(sys, &timer_behavior, &ctx, 1);
	ask_int(sys, r, T_ONCE);
	cr_assert_eq(atomic_load(&ctx.start_rc), 0);
	AWAIT(atomic_load(&ctx.fires) == 1, WAIT_MS);
	/* Not at once. The slack covers the loop's cached clock and a thread
	 * preempted between the loop's clock reading and ours. */
	cr_assert_geq(atomic_load(&ctx.first_fire_at) - atomic_load(&ctx.started_at), 50);
	HOLDS_FOR(atomic_load(&ctx.fires) == 1, 150);
	assert_clean(&ctx);
	skald_system_stop(sys);
}

Test(timers, periodic_repeats_until_cancelled_from_its_callback)
{
	skald_system_t *sys = sys_start(2, 0);
	timer_ctx_t ctx = {.after_ms = 5, .repeat_ms = 10, .cancel_after = 5};
	skald_ref_t r = spawn_on(sys, &timer_behavior, &ctx, 1);
	ask_int(sys, r, T_PERIODIC);
	cr_assert_eq(atomic_load(&ctx.start_rc), 0);
	AWAIT(atomic_load(&ctx.fires) == 5, WAIT_MS);
	cr_assert_eq(atomic_load(&ctx.self_cancel_rc), 0);
	HOLDS_FOR(atomic_load(&ctx.fires) == 5, 100);
	assert_clean(&ctx);
	skald_system_stop(sys);
}

Test(timers, periodic_cancelled_from_a_message_stops_firing)
{
	skald_system_t *sys = sys_start(2, 0);
	timer_ctx_t ctx = {.after_ms = 1, .repeat_ms = 5};
	skald_ref_t r = spawn_on(sys, &timer_behavior, &ctx, 1);
	ask_int(sys, r, T_PERIODIC);
	AWAIT(atomic_load(&ctx.fires) >= 3, WAIT_MS);
	cr_assert_eq(ask_int(sys, r, T_CANCEL), 0);
	int fired = atomic_load(&ctx.fires);
	HOLDS_FOR(atomic_load(&ctx.fires) == fired, 100);
	skald_system_stop(sys);
}

Test(timers, cancel_before_firing_prevents_it_and_second_cancel_is_enotfound)
{
	skald_system_t *sys = sys_start(2, 0);
	timer_ctx_t ctx = {.after_ms = 100};
	skald_ref_t r = spawn_on(sys, &timer_behavior, &ctx, 1);
	ask_int(sys, r, T_ONCE);
	cr_assert_eq(ask_int(sys, r, T_CANCEL_TWICE), (uint64_t)-SKALD_ENOTFOUND);
	HOLDS_FOR(atomic_load(&ctx.fires) == 0, 250);
	skald_system_stop(sys);
	checks_ok();
}

Test(timers, cancel_after_one_shot_fired_is_enotfound)
{
	skald_system_t *sys = sys_start(2, 0);
	timer_ctx_t ctx = {.after_ms = 1};
	skald_ref_t r = spawn_on(sys, &timer_behavior, &ctx, 1);
	ask_int(sys, r, T_ONCE);
	AWAIT(atomic_load(&ctx.fires) == 1, WAIT_MS);
	cr_assert_eq(ask_int(sys, r, T_CANCEL), (uint64_t)-SKALD_ENOTFOUND);
	skald_system_stop(sys);
}

Test(timers, cancel_of_unknown_id_is_enotfound)
{
	skald_system_t *sys = sys_start(1, 0);
	timer_ctx_t ctx = {0};
	skald_ref_t r = spawn_on(sys, &timer_behavior, &ctx, 0);
	cr_assert_eq(ask_int(sys, r, T_CANCEL_UNKNOWN), (uint64_t)-SKALD_ENOTFOUND);
	skald_system_stop(sys);
}

Test(timers, ids_are_unique_within_an_actor)
{
	skald_system_t *sys = sys_start(1, 0);
	timer_ctx_t ctx = {0};
	skald_ref_t r = spawn_on(sys, &timer_behavior, &ctx, 0);
	cr_assert_eq(ask_int(sys, r, T_MANY), 1);
	cr_assert_eq(atomic_load(&ctx.fires), 0);
	skald_system_stop(sys);
}

Test(timers, pending_one_shot_is_cancelled_when_actor_stops)
{
	skald_system_t *sys = sys_start(2, 0);
	timer_ctx_t ctx = {.after_ms = 50};
	skald_ref_t r = spawn_on(sys, &timer_behavior, &ctx, 1);
	tell_int(sys, r, T_ONCE_AND_STOP);
	AWAIT(atomic_load(&ctx.stops) == 1, WAIT_MS);
	cr_assert_eq(atomic_load(&ctx.start_rc), 0);
	HOLDS_FOR(atomic_load(&ctx.fires) == 0, 200);
	skald_system_stop(sys);
}

Test(timers, periodic_is_cancelled_when_actor_stops)
{
	skald_system_t *sys = sys_start(2, 0);
	timer_ctx_t ctx = {.after_ms = 1, .repeat_ms = 2};
	skald_ref_t r = spawn_on(sys, &timer_behavior, &ctx, 1);
	ask_int(sys, r, T_PERIODIC);
	AWAIT(atomic_load(&ctx.fires) >= 2, WAIT_MS);
	tell_int(sys, r, T_STOP);
	AWAIT(atomic_load(&ctx.stops) == 1, WAIT_MS);
	int at_stop = atomic_load(&ctx.fires_at_stop);
	HOLDS_FOR(atomic_load(&ctx.fires) == at_stop, 100);
	skald_system_stop(sys);
}

Test(timers, system_stop_cancels_running_timers)
{
	skald_system_t *sys = sys_start(2, 0);
	timer_ctx_t ctx = {.after_ms = 1, .repeat_ms = 1};
	skald_ref_t r = spawn_on(sys, &timer_behavior, &ctx, 1);
	ask_int(sys, r, T_PERIODIC);
	AWAIT(atomic_load(&ctx.fires) >= 2, WAIT_MS);
	skald_system_stop(sys);
	cr_assert_eq(atomic_load(&ctx.stops), 1);
	/* Nothing fired after the actor's stop callback. */
	cr_assert_eq(atomic_load(&ctx.fires), atomic_load(&ctx.fires_at_stop));
}
