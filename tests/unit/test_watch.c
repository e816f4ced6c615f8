/*
 * tests/unit/test_watch.c - watch, unwatch and down notices.
 */
#include "helpers.h"

TestSuite(watch, .init = fixture_setup, .timeout = 60);

enum { MAX_DOWNS = 8 };

/* The watcher watches or unwatches the refs the test puts in its context,
 * on request, and records every down notice. */
enum { CMD_WATCH = 1, CMD_UNWATCH = 2, CMD_WATCH_TWICE = 3 };

typedef struct watcher_ctx_s {
	skald_ref_t target; /* what the next command applies to */
	atomic_int downs;
	skald_ref_t down_ref[MAX_DOWNS];
	int down_reason[MAX_DOWNS];
	atomic_int other; /* messages that are not down notices */
	atomic_int bad_payload;
} watcher_ctx_t;

static int watcher_init(skald_actor_t *self, void *state, void *arg)
{
	*(watcher_ctx_t **)state = arg;
	return 0;
}

static int watcher_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	watcher_ctx_t *ctx = *(watcher_ctx_t **)state;
	if (msg->type == SKALD_TYPE_DOWN) {
		const skald_down_t *d = msg->payload;
		int n = atomic_load(&ctx->downs);
		if (d == NULL) {
			atomic_store(&ctx->bad_payload, 1);
		} else if (n < MAX_DOWNS) {
			ctx->down_ref[n] = d->ref;
			ctx->down_reason[n] = d->reason;
		}
		/* Publish after the record, so the test reads a complete one. */
		atomic_fetch_add(&ctx->downs, 1);
		return 0;
	}
	if (msg->type != t_int || !msg->ask_id) {
		atomic_fetch_add(&ctx->other, 1);
		return 0;
	}
	int rc = 0;
	switch (PAYLOAD_INT(msg->payload)) {
	case CMD_WATCH:
		rc = skald_watch(self, ctx->target);
		break;
	case CMD_WATCH_TWICE:
		rc = skald_watch(self, ctx->target);
		if (rc == 0)
			rc = skald_watch(self, ctx->target);
		break;
	case CMD_UNWATCH:
		rc = skald_unwatch(self, ctx->target);
		break;
	}
	/* Encoded as a non-negative value so that it fits the integer reply. */
	return skald_reply(self, msg, t_int, INT_PAYLOAD((uint64_t)(-rc)));
}

static const skald_behavior_t watcher_behavior = {
        .state_size = sizeof(void *),
        .init = watcher_init,
        .receive = watcher_receive,
};

/* Runs cmd on the watcher for target; fails the test if it fails. */
static void watcher_do(skald_system_t *sys, skald_ref_t watcher, watcher_ctx_t *ctx,
                       skald_ref_t target, int cmd)
{
	/* The watcher reads target only while handling the ask below, which
	 * is ordered after this store by the ask's own synchronisation. */
	ctx->target = target;
	uint64_t neg = ask_int(sys, watcher, (uint64_t)cmd);
	cr_assert_eq(neg, 0, "command %d: %s", cmd, skald_err_name(-(int)neg));
}

/* A target that fails on a message with the error it carries, or stops
 * itself on 0. */
static int target_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	if (msg->ask_id)
		return skald_reply(self, msg, t_int, INT_PAYLOAD(0));
	int64_t v = (int64_t)PAYLOAD_INT(msg->payload);
	if (v == 0)
		skald_stop_self(self);
	return (int)v;
}

static const skald_behavior_t target_behavior = {.receive = target_receive};

static void assert_down(watcher_ctx_t *ctx, int i, skald_ref_t ref, int reason)
{
	cr_assert_eq(atomic_load(&ctx->bad_payload), 0, "a down notice without payload");
	cr_assert(skald_ref_eq(ctx->down_ref[i], ref), "down notice %d is for another actor", i);
	cr_assert_eq(ctx->down_reason[i], reason, "down notice %d: reason %s, expected %s", i,
	             skald_err_name(ctx->down_reason[i]), skald_err_name(reason));
}

Test(watch, normal_stop_sends_down_with_reason_zero)
{
	skald_system_t *sys = sys_start(2, 0);
	watcher_ctx_t ctx = {0};
	skald_ref_t w = spawn_on(sys, &watcher_behavior, &ctx, 0);
	skald_ref_t t = spawn_on(sys, &target_behavior, NULL, 1);
	watcher_do(sys, w, &ctx, t, CMD_WATCH);
	cr_assert_eq(skald_stop(sys, t), 0);
	AWAIT(atomic_load(&ctx.downs) == 1, WAIT_MS);
	assert_down(&ctx, 0, t, 0);
	cr_assert_eq(atomic_load(&ctx.other), 0);
	skald_system_stop(sys);
}

Test(watch, stop_self_sends_down_with_reason_zero)
{
	skald_system_t *sys = sys_start(2, 0);
	watcher_ctx_t ctx = {0};
	skald_ref_t w = spawn_on(sys, &watcher_behavior, &ctx, 0);
	skald_ref_t t = spawn_on(sys, &target_behavior, NULL, 1);
	watcher_do(sys, w, &ctx, t, CMD_WATCH);
	tell_int(sys, t, 0);
	AWAIT(atomic_load(&ctx.downs) == 1, WAIT_MS);
	assert_down(&ctx, 0, t, 0);
	skald_system_stop(sys);
}

Test(watch, failure_sends_down_with_the_error)
{
	skald_system_t *sys = sys_start(2, 0);
	watcher_ctx_t ctx = {0};
	skald_ref_t w = spawn_on(sys, &watcher_behavior, &ctx, 0);
	skald_ref_t t = spawn_on(sys, &target_behavior, NULL, 1);
	watcher_do(sys, w, &ctx, t, CMD_WATCH);
	tell_int(sys, t, (uint64_t)(int64_t)TEST_ERR);
	AWAIT(atomic_load(&ctx.downs) == 1, WAIT_MS);
	assert_down(&ctx, 0, t, TEST_ERR);
	skald_system_stop(sys);
}

Test(watch, watch_of_stopped_actor_sends_down_enoactor_at_once)
{
	skald_system_t *sys = sys_start(2, 0);
	watcher_ctx_t ctx = {0};
	uint64_t live = stats_of(sys).live_actors;
	skald_ref_t t = spawn_on(sys, &target_behavior, NULL, 1);
	cr_assert_eq(skald_stop(sys, t), 0);
	AWAIT_LIVE(sys, live);
	skald_ref_t w = spawn_on(sys, &watcher_behavior, &ctx, 0);
	watcher_do(sys, w, &ctx, t, CMD_WATCH);
	AWAIT(atomic_load(&ctx.downs) == 1, WAIT_MS);
	assert_down(&ctx, 0, t, SKALD_ENOACTOR);
	HOLDS_FOR(atomic_load(&ctx.downs) == 1, QUIET_MS);
	skald_system_stop(sys);
}

Test(watch, watch_of_never_spawned_ref_sends_down_enoactor)
{
	skald_system_t *sys = sys_start(1, 0);
	watcher_ctx_t ctx = {0};
	skald_ref_t w = spawn_on(sys, &watcher_behavior, &ctx, 0);
	skald_ref_t ghost = {skald_system_node(sys), 876543u, 9u};
	watcher_do(sys, w, &ctx, ghost, CMD_WATCH);
	AWAIT(atomic_load(&ctx.downs) == 1, WAIT_MS);
	assert_down(&ctx, 0, ghost, SKALD_ENOACTOR);
	skald_system_stop(sys);
}

Test(watch, watching_twice_gives_one_notice)
{
	skald_system_t *sys = sys_start(2, 0);
	watcher_ctx_t ctx = {0};
	skald_ref_t w = spawn_on(sys, &watcher_behavior, &ctx, 0);
	skald_ref_t t = spawn_on(sys, &target_behavior, NULL, 1);
	watcher_do(sys, w, &ctx, t, CMD_WATCH_TWICE);
	watcher_do(sys, w, &ctx, t, CMD_WATCH);
	cr_assert_eq(skald_stop(sys, t), 0);
	AWAIT(atomic_load(&ctx.downs) == 1, WAIT_MS);
	assert_down(&ctx, 0, t, 0);
	HOLDS_FOR(atomic_load(&ctx.downs) == 1, QUIET_MS);
	skald_system_stop(sys);
}

Test(watch, unwatch_cancels_the_notice)
{
	skald_system_t *sys = sys_start(2, 0);
	watcher_ctx_t ctx = {0};
	skald_ref_t w = spawn_on(sys, &watcher_behavior, &ctx, 0);
	skald_ref_t t = spawn_on(sys, &target_behavior, NULL, 1);
	skald_ref_t sentinel = spawn_on(sys, &target_behavior, NULL, 1);
	watcher_do(sys, w, &ctx, t, CMD_WATCH);
	watcher_do(sys, w, &ctx, t, CMD_UNWATCH);
	watcher_do(sys, w, &ctx, sentinel, CMD_WATCH);
	/* Both stop; only the sentinel's notice may come. */
	cr_assert_eq(skald_stop(sys, t), 0);
	cr_assert_eq(skald_stop(sys, sentinel), 0);
	AWAIT(atomic_load(&ctx.downs) >= 1, WAIT_MS);
	HOLDS_FOR(atomic_load(&ctx.downs) == 1, QUIET_MS);
	assert_down(&ctx, 0, sentinel, 0);
	skald_system_stop(sys);
}

Test(watch, many_watchers_each_get_a_notice)
{
	enum { W = 6 };
	skald_system_t *sys = sys_start(2, 0);
	watcher_ctx_t ctx[W] = {0};
	skald_ref_t t = spawn_on(sys, &target_behavior, NULL, 1);
	for (int i = 0; i < W; i++) {
		skald_ref_t w = spawn_on(sys, &watcher_behavior, &ctx[i], i);
		watcher_do(sys, w, &ctx[i], t, CMD_WATCH);
	}
	tell_int(sys, t, (uint64_t)(int64_t)TEST_ERR);
	for (int i = 0; i < W; i++) {
		AWAIT(atomic_load(&ctx[i].downs) == 1, WAIT_MS);
		assert_down(&ctx[i], 0, t, TEST_ERR);
	}
	skald_system_stop(sys);
}

Test(watch, watcher_that_stopped_first_is_harmless)
{
	skald_system_t *sys = sys_start(2, 0);
	watcher_ctx_t ctx = {0};
	uint64_t live = stats_of(sys).live_actors;
	skald_ref_t w = spawn_on(sys, &watcher_behavior, &ctx, 0);
	skald_ref_t t = spawn_on(sys, &target_behavior, NULL, 1);
	watcher_do(sys, w, &ctx, t, CMD_WATCH);
	cr_assert_eq(skald_stop(sys, w), 0);
	AWAIT_LIVE(sys, live + 1);
	cr_assert_eq(skald_stop(sys, t), 0);
	AWAIT_LIVE(sys, live);
	/* The node still works, and the dead watcher got nothing. */
	skald_ref_t probe = spawn_on(sys, &target_behavior, NULL, 0);
	cr_assert_eq(ask_int(sys, probe, 1), 0);
	cr_assert_eq(atomic_load(&ctx.downs), 0);
	skald_system_stop(sys);
}

/* A parent that watches the child it spawns in init. */
typedef struct parent_ctx_s {
	watcher_ctx_t w;
	ref_cell_t child;
} parent_ctx_t;

static int parent_init(skald_actor_t *self, void *state, void *arg)
{
	parent_ctx_t *ctx = arg;
	skald_ref_t child = SKALD_REF_NULL;
	*(watcher_ctx_t **)state = &ctx->w;
	CHECK(skald_spawn_child(self, &target_behavior, NULL, NULL, &child) == 0);
	CHECK(skald_watch(self, child) == 0);
	ref_cell_put(&ctx->child, child);
	return 0;
}

static const skald_behavior_t parent_behavior = {
        .state_size = sizeof(void *),
        .init = parent_init,
        .receive = watcher_receive,
};

Test(watch, parent_watching_child_sees_its_stop)
{
	skald_system_t *sys = sys_start(2, 0);
	parent_ctx_t ctx = {0};
	spawn_on(sys, &parent_behavior, &ctx, -1);
	skald_ref_t child = ref_cell_get(&ctx.child);
	tell_int(sys, child, 0);
	AWAIT(atomic_load(&ctx.w.downs) == 1, WAIT_MS);
	assert_down(&ctx.w, 0, child, 0);
	skald_system_stop(sys);
	checks_ok();
}
