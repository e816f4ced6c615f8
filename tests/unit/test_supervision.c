/*
 * tests/unit/test_supervision.c - failures, directives and restart limits.
 */
#include "helpers.h"

TestSuite(supervision, .init = fixture_setup, .timeout = 60);

/* ------------------------------------------------------------------------ */
/* The child                                                                 */

enum {
	C_SET = 1,  /* state x = 42 */
	C_GET = 2,  /* reply x */
	C_FAIL = 3, /* fail with TEST_ERR */
};

typedef struct child_ctx_s {
	atomic_int inits;
	atomic_int stops;
	atomic_int last_stop_reason;
	atomic_int dirty_state;
	int fail_in_init_once; /* the first init fails */
	int fail_every_init;   /* every incarnation fails at once (via a self message) */
	int timer_first;       /* the first incarnation starts a 100 ms timer */
	atomic_int timer_fired;
	int ask_first; /* the first incarnation asks ask_target, never answered */
	skald_ref_t ask_target;
	atomic_int ask_status;
	atomic_int ask_calls;
} child_ctx_t;

typedef struct child_state_s {
	child_ctx_t *ctx;
	int x;
} child_state_t;

static void child_timer(skald_actor_t *self, void *state, void *arg)
{
	child_ctx_t *ctx = arg;
	atomic_fetch_add(&ctx->timer_fired, 1);
}

static void child_ask_cb(skald_actor_t *self, void *state, int status, skald_msg_t *reply,
                         void *arg)
{
	child_ctx_t *ctx = arg;
	atomic_store(&ctx->ask_status, status);
	atomic_fetch_add(&ctx->ask_calls, 1);
}

static int child_init(skald_actor_t *self, void *state, void *arg)
{
	child_state_t *st = state;
	child_ctx_t *ctx = arg;
	if (ctx == NULL) {
		CHECK(!"init gets its spawn argument on every incarnation");
		return TEST_ERR;
	}
	int n = atomic_fetch_add(&ctx->inits, 1) + 1;
	/* Fresh state on every incarnation. */
	if (st->ctx != NULL || st->x != 0)
		atomic_store(&ctx->dirty_state, 1);
	st->ctx = ctx;
	if (ctx->fail_in_init_once && n == 1)
		return TEST_ERR;
	if (ctx->fail_every_init)
		CHECK(skald_tell(self, skald_self(self), t_int, INT_PAYLOAD(C_FAIL)) == 0);
	if (ctx->timer_first && n == 1)
		CHECK(skald_timer_start(self, 100, 0, child_timer, ctx, NULL) == 0);
	if (ctx->ask_first && n == 1)
		CHECK(skald_ask(self, ctx->ask_target, t_int, INT_PAYLOAD(0), 60000, child_ask_cb,
		                ctx) == 0);
	return 0;
}

static int child_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	child_state_t *st = state;
	switch (PAYLOAD_INT(msg->payload)) {
	case C_SET:
		st->x = 42;
		break;
	case C_GET:
		break;
	case C_FAIL:
		return TEST_ERR;
	}
	if (msg->ask_id)
		return skald_reply(self, msg, t_int, INT_PAYLOAD((uint64_t)st->x));
	return 0;
}

static void child_stop(skald_actor_t *self, void *state, int reason)
{
	child_state_t *st = state;
	child_ctx_t *ctx = st->ctx;
	if (ctx == NULL)
		return; /* init failed before it could record the context */
	atomic_store(&ctx->last_stop_reason, reason);
	atomic_fetch_add(&ctx->stops, 1);
}

static const skald_behavior_t child_behavior = {
        .state_size = sizeof(child_state_t),
        .init = child_init,
        .receive = child_receive,
        .stop = child_stop,
};

/* ------------------------------------------------------------------------ */
/* The parent                                                                */

typedef struct parent_ctx_s {
	skald_directive_t directive;
	const skald_behavior_t *child_behavior;
	child_ctx_t child;
	ref_cell_t child_ref;
	atomic_int failures;
	atomic_int failure_err;
	atomic_int failure_wrong_child;
	atomic_int downs;
	atomic_int down_reason;
	atomic_int down_wrong_ref;
	atomic_int stops;
	atomic_int stop_reason;
} parent_ctx_t;

static skald_directive_t parent_on_failure(skald_actor_t *self, void *state, skald_ref_t child,
                                           int err)
{
	parent_ctx_t *ctx = *(parent_ctx_t **)state;
	if (!skald_ref_eq(child, ctx->child_ref.ref))
		atomic_store(&ctx->failure_wrong_child, 1);
	atomic_store(&ctx->failure_err, err);
	atomic_fetch_add(&ctx->failures, 1);
	return ctx->directive;
}

static int parent_init(skald_actor_t *self, void *state, void *arg)
{
	parent_ctx_t *ctx = arg;
	skald_ref_t child = SKALD_REF_NULL;
	*(parent_ctx_t **)state = ctx;
	const skald_behavior_t *b = ctx->child_behavior ? ctx->child_behavior : &child_behavior;
	CHECK(skald_spawn_child(self, b, &ctx->child, NULL, &child) == 0);
	CHECK(skald_watch(self, child) == 0);
	ref_cell_put(&ctx->child_ref, child);
	return 0;
}

static int parent_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	parent_ctx_t *ctx = *(parent_ctx_t **)state;
	if (msg->type == SKALD_TYPE_DOWN) {
		const skald_down_t *d = msg->payload;
		if (!skald_ref_eq(d->ref, ctx->child_ref.ref))
			atomic_store(&ctx->down_wrong_ref, 1);
		atomic_store(&ctx->down_reason, d->reason);
		atomic_fetch_add(&ctx->downs, 1);
	}
	return 0;
}

static void parent_stop(skald_actor_t *self, void *state, int reason)
{
	parent_ctx_t *ctx = *(parent_ctx_t **)state;
	atomic_store(&ctx->stop_reason, reason);
	atomic_fetch_add(&ctx->stops, 1);
}

#define PARENT_BEHAVIOR(handler, max, window)                                                      \
	{                                                                                          \
		.state_size = sizeof(void *), .init = parent_init, .receive = parent_receive,      \
		.stop = parent_stop, .on_child_failure = (handler), .max_restarts = (max),         \
		.restart_window_ms = (window),                                                     \
	}

static const skald_behavior_t supervisor = PARENT_BEHAVIOR(parent_on_failure, 0, 0);
static const skald_behavior_t default_supervisor = PARENT_BEHAVIOR(NULL, 0, 0);
static const skald_behavior_t strict_supervisor = PARENT_BEHAVIOR(parent_on_failure, 3, 10000);
static const skald_behavior_t windowed_supervisor = PARENT_BEHAVIOR(parent_on_failure, 1, 500);

/* Spawns a parent with the given behaviour and returns its child. */
static skald_ref_t start_parent(skald_system_t *sys, const skald_behavior_t *b, parent_ctx_t *ctx,
                                skald_ref_t *parent)
{
	skald_ref_t p = spawn_on(sys, b, ctx, -1);
	if (parent)
		*parent = p;
	return ref_cell_get(&ctx->child_ref);
}

static void assert_parent_clean(parent_ctx_t *ctx)
{
	cr_assert_eq(atomic_load(&ctx->failure_wrong_child), 0, "on_child_failure got another ref");
	cr_assert_eq(atomic_load(&ctx->down_wrong_ref), 0, "a down notice for another actor");
	cr_assert_eq(atomic_load(&ctx->child.dirty_state), 0, "init saw a used state");
}

/* ------------------------------------------------------------------------ */
/* Directives                                                                */

Test(supervision, restart_reruns_init_with_zeroed_state_behind_same_ref)
{
	skald_system_t *sys = sys_start(2, 0);
	parent_ctx_t ctx = {.directive = SKALD_RESTART};
	skald_ref_t child = start_parent(sys, &supervisor, &ctx, NULL);
	cr_assert_eq(ask_int(sys, child, C_SET), 42);
	cr_assert_eq(ask_int(sys, child, C_GET), 42);

	tell_int(sys, child, C_FAIL);
	AWAIT(atomic_load(&ctx.child.inits) == 2, WAIT_MS);
	cr_assert_eq(atomic_load(&ctx.failures), 1);
	cr_assert_eq(atomic_load(&ctx.failure_err), TEST_ERR);
	/* The old incarnation's stop ran once, with the failure. */
	cr_assert_eq(atomic_load(&ctx.child.stops), 1);
	cr_assert_eq(atomic_load(&ctx.child.last_stop_reason), TEST_ERR);
	/* Same reference, fresh state. */
	cr_assert_eq(ask_int(sys, child, C_GET), 0);
	cr_assert_eq(atomic_load(&ctx.downs), 0, "a restart is not a stop");
	assert_parent_clean(&ctx);
	skald_system_stop(sys);
	checks_ok();
}

Test(supervision, missing_handler_means_restart)
{
	skald_system_t *sys = sys_start(2, 0);
	parent_ctx_t ctx = {0};
	skald_ref_t child = start_parent(sys, &default_supervisor, &ctx, NULL);
	cr_assert_eq(ask_int(sys, child, C_SET), 42);
	tell_int(sys, child, C_FAIL);
	AWAIT(atomic_load(&ctx.child.inits) == 2, WAIT_MS);
	cr_assert_eq(ask_int(sys, child, C_GET), 0);
	cr_assert_eq(atomic_load(&ctx.downs), 0);
	skald_system_stop(sys);
	checks_ok();
}

Test(supervision, stop_directive_stops_child_and_watchers_see_error)
{
	skald_system_t *sys = sys_start(2, 0);
	parent_ctx_t ctx = {.directive = SKALD_STOP};
	skald_ref_t child = start_parent(sys, &supervisor, &ctx, NULL);
	tell_int(sys, child, C_FAIL);
	AWAIT(atomic_load(&ctx.downs) == 1, WAIT_MS);
	cr_assert_eq(atomic_load(&ctx.down_reason), TEST_ERR, "reason %s",
	             skald_err_name(atomic_load(&ctx.down_reason)));
	cr_assert_eq(atomic_load(&ctx.failures), 1);
	cr_assert_eq(atomic_load(&ctx.child.inits), 1);
	cr_assert_eq(atomic_load(&ctx.child.stops), 1);
	cr_assert_eq(atomic_load(&ctx.child.last_stop_reason), TEST_ERR);
	/* The parent itself goes on. */
	cr_assert_eq(atomic_load(&ctx.stops), 0);

	uint64_t dead = stats_of(sys).dead_letters;
	tell_int(sys, child, C_GET);
	AWAIT(stats_of(sys).dead_letters == dead + 1, WAIT_MS);
	assert_parent_clean(&ctx);
	skald_system_stop(sys);
	checks_ok();
}

/* Escalation: grandparent G supervises parent P, which escalates the failure
 * of its child C. */
typedef struct grand_ctx_s {
	parent_ctx_t p; /* G's view: its child is P */
	parent_ctx_t c; /* P's view: its child is C */
} grand_ctx_t;

static const skald_behavior_t escalating_parent = PARENT_BEHAVIOR(parent_on_failure, 0, 0);

static int grand_init(skald_actor_t *self, void *state, void *arg)
{
	grand_ctx_t *g = arg;
	skald_ref_t p = SKALD_REF_NULL;
	*(parent_ctx_t **)state = &g->p;
	CHECK(skald_spawn_child(self, &escalating_parent, &g->c, NULL, &p) == 0);
	CHECK(skald_watch(self, p) == 0);
	ref_cell_put(&g->p.child_ref, p);
	return 0;
}

static const skald_behavior_t grand_behavior = {
        .state_size = sizeof(void *),
        .init = grand_init,
        .receive = parent_receive,
        .stop = parent_stop,
        .on_child_failure = parent_on_failure,
};

Test(supervision, escalate_stops_child_and_fails_parent)
{
	skald_system_t *sys = sys_start(2, 0);
	grand_ctx_t g = {0};
	g.p.directive = SKALD_STOP;     /* G stops P when P fails */
	g.c.directive = SKALD_ESCALATE; /* P escalates C's failure */
	spawn_on(sys, &grand_behavior, &g, -1);
	skald_ref_t p = ref_cell_get(&g.p.child_ref);
	skald_ref_t c = ref_cell_get(&g.c.child_ref);
	cr_assert_eq(ask_int(sys, c, C_GET), 0);

	tell_int(sys, c, C_FAIL);
	/* P saw C fail and escalated; G then saw P fail. */
	AWAIT(atomic_load(&g.p.failures) == 1, WAIT_MS);
	cr_assert_eq(atomic_load(&g.c.failures), 1);
	cr_assert_eq(atomic_load(&g.c.failure_err), TEST_ERR);
	cr_assert_eq(atomic_load(&g.p.failure_err), SKALD_ECHILDFAILED, "P failed with %s",
	             skald_err_name(atomic_load(&g.p.failure_err)));
	/* Both are stopped, C with its own error. */
	AWAIT(atomic_load(&g.p.downs) == 1, WAIT_MS);
	AWAIT(atomic_load(&g.c.child.stops) == 1, WAIT_MS);
	cr_assert_eq(atomic_load(&g.c.child.last_stop_reason), TEST_ERR);
	cr_assert_eq(atomic_load(&g.c.child.inits), 1, "an escalated child is not restarted");
	AWAIT(atomic_load(&g.c.stops) == 1, WAIT_MS);
	cr_assert_eq(atomic_load(&g.p.down_reason), SKALD_ECHILDFAILED);
	assert_parent_clean(&g.p);
	assert_parent_clean(&g.c);

	/* Both references are dead now. */
	uint64_t dead = stats_of(sys).dead_letters;
	tell_int(sys, p, 0);
	tell_int(sys, c, C_GET);
	AWAIT(stats_of(sys).dead_letters == dead + 2, WAIT_MS);
	skald_system_stop(sys);
	checks_ok();
}

/* A top-level actor that escalates has no parent: it is stopped. */
Test(supervision, escalate_from_top_level_stops_it)
{
	skald_system_t *sys = sys_start(2, 0);
	parent_ctx_t ctx = {.directive = SKALD_ESCALATE};
	uint64_t live = stats_of(sys).live_actors;
	skald_ref_t child = start_parent(sys, &supervisor, &ctx, NULL);
	tell_int(sys, child, C_FAIL);
	AWAIT(atomic_load(&ctx.stops) == 1, WAIT_MS);
	cr_assert_eq(atomic_load(&ctx.stop_reason), SKALD_ECHILDFAILED, "parent stopped with %s",
	             skald_err_name(atomic_load(&ctx.stop_reason)));
	AWAIT(atomic_load(&ctx.child.stops) == 1, WAIT_MS);
	AWAIT_LIVE(sys, live);
	skald_system_stop(sys);
	checks_ok();
}

/* ------------------------------------------------------------------------ */
/* Restart limits                                                            */

Test(supervision, restart_limit_stops_child_with_erestartlimit)
{
	skald_system_t *sys = sys_start(2, 0);
	parent_ctx_t ctx = {.directive = SKALD_RESTART, .child = {.fail_every_init = 1}};
	start_parent(sys, &strict_supervisor, &ctx, NULL);
	AWAIT(atomic_load(&ctx.downs) == 1, WAIT_MS);
	cr_assert_eq(atomic_load(&ctx.down_reason), SKALD_ERESTARTLIMIT, "reason %s",
	             skald_err_name(atomic_load(&ctx.down_reason)));
	/* The first incarnation and three restarts; every init paired with a stop. */
	cr_assert_eq(atomic_load(&ctx.child.inits), 4);
	AWAIT(atomic_load(&ctx.child.stops) == 4, WAIT_MS);
	HOLDS_FOR(atomic_load(&ctx.child.inits) == 4 && atomic_load(&ctx.downs) == 1, QUIET_MS);
	cr_assert_eq(atomic_load(&ctx.stops), 0, "the parent is not affected");
	assert_parent_clean(&ctx);
	skald_system_stop(sys);
	checks_ok();
}

Test(supervision, default_restart_limit_is_ten)
{
	skald_system_t *sys = sys_start(2, 0);
	parent_ctx_t ctx = {.directive = SKALD_RESTART, .child = {.fail_every_init = 1}};
	start_parent(sys, &supervisor, &ctx, NULL);
	AWAIT(atomic_load(&ctx.downs) == 1, WAIT_MS);
	cr_assert_eq(atomic_load(&ctx.down_reason), SKALD_ERESTARTLIMIT);
	cr_assert_eq(atomic_load(&ctx.child.inits), 11);
	AWAIT(atomic_load(&ctx.child.stops) == 11, WAIT_MS);
	skald_system_stop(sys);
	checks_ok();
}

Test(supervision, restarts_outside_the_window_do_not_count)
{
	skald_system_t *sys = sys_start(2, 0);
	parent_ctx_t ctx = {.directive = SKALD_RESTART};
	/* At most one restart per 500 ms. */
	skald_ref_t child = start_parent(sys, &windowed_supervisor, &ctx, NULL);
	tell_int(sys, child, C_FAIL);
	AWAIT(atomic_load(&ctx.child.inits) == 2, WAIT_MS);
	sleep_ms(800);
	tell_int(sys, child, C_FAIL);
	AWAIT(atomic_load(&ctx.child.inits) == 3, WAIT_MS);
	cr_assert_eq(ask_int(sys, child, C_GET), 0);
	cr_assert_eq(atomic_load(&ctx.downs), 0);
	/* A second failure inside the window is one restart too many. */
	tell_int(sys, child, C_FAIL);
	AWAIT(atomic_load(&ctx.downs) == 1, WAIT_MS);
	cr_assert_eq(atomic_load(&ctx.down_reason), SKALD_ERESTARTLIMIT);
	cr_assert_eq(atomic_load(&ctx.child.inits), 3);
	skald_system_stop(sys);
	checks_ok();
}

/* ------------------------------------------------------------------------ */
/* Failures in init, and what a restart cancels                             */

Test(supervision, failing_init_is_supervised_like_receive)
{
	skald_system_t *sys = sys_start(2, 0);
	parent_ctx_t ctx = {.directive = SKALD_RESTART, .child = {.fail_in_init_once = 1}};
	skald_ref_t child = start_parent(sys, &supervisor, &ctx, NULL);
	AWAIT(atomic_load(&ctx.child.inits) == 2, WAIT_MS);
	cr_assert_eq(atomic_load(&ctx.failures), 1);
	cr_assert_eq(atomic_load(&ctx.failure_err), TEST_ERR);
	cr_assert_eq(ask_int(sys, child, C_SET), 42);
	skald_system_stop(sys);
	checks_ok();
}

Test(supervision, restart_cancels_timers_of_old_incarnation)
{
	skald_system_t *sys = sys_start(2, 0);
	parent_ctx_t ctx = {.directive = SKALD_RESTART, .child = {.timer_first = 1}};
	skald_ref_t child = start_parent(sys, &supervisor, &ctx, NULL);
	tell_int(sys, child, C_FAIL);
	AWAIT(atomic_load(&ctx.child.inits) == 2, WAIT_MS);
	/* Well past the 100 ms the timer was set for. */
	HOLDS_FOR(atomic_load(&ctx.child.timer_fired) == 0, 300);
	skald_system_stop(sys);
	checks_ok();
}

static int mute_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	return 0;
}

static const skald_behavior_t mute_behavior = {.receive = mute_receive};

Test(supervision, restart_cancels_pending_asks)
{
	skald_system_t *sys = sys_start(2, 0);
	parent_ctx_t ctx = {.directive = SKALD_RESTART, .child = {.ask_first = 1}};
	ctx.child.ask_target = spawn_on(sys, &mute_behavior, NULL, 1);
	skald_ref_t child = start_parent(sys, &supervisor, &ctx, NULL);
	tell_int(sys, child, C_FAIL);
	AWAIT(atomic_load(&ctx.child.inits) == 2, WAIT_MS);
	AWAIT(atomic_load(&ctx.child.ask_calls) == 1, WAIT_MS);
	cr_assert_eq(atomic_load(&ctx.child.ask_status), SKALD_ECANCELED, "status %s",
	             skald_err_name(atomic_load(&ctx.child.ask_status)));
	HOLDS_FOR(atomic_load(&ctx.child.ask_calls) == 1, QUIET_MS);
	skald_system_stop(sys);
	checks_ok();
}

/* ------------------------------------------------------------------------ */
/* Top-level failures                                                        */

Test(supervision, top_level_failure_stops_the_actor_with_the_error)
{
	skald_system_t *sys = sys_start(2, 0);
	child_ctx_t ctx = {0};
	uint64_t live = stats_of(sys).live_actors;
	skald_ref_t r = spawn_on(sys, &child_behavior, &ctx, -1);
	cr_assert_eq(ask_int(sys, r, C_SET), 42);
	tell_int(sys, r, C_FAIL);
	AWAIT(atomic_load(&ctx.stops) == 1, WAIT_MS);
	cr_assert_eq(atomic_load(&ctx.last_stop_reason), TEST_ERR);
	AWAIT_LIVE(sys, live);
	cr_assert_eq(atomic_load(&ctx.inits), 1, "a top-level actor is not restarted");
	uint64_t dead = stats_of(sys).dead_letters;
	tell_int(sys, r, C_GET);
	AWAIT(stats_of(sys).dead_letters == dead + 1, WAIT_MS);
	skald_system_stop(sys);
	checks_ok();
}

Test(supervision, top_level_failing_init_never_receives)
{
	skald_system_t *sys = sys_start(2, 0);
	child_ctx_t ctx = {.fail_in_init_once = 1};
	uint64_t live = stats_of(sys).live_actors;
	skald_ref_t r = spawn_on(sys, &child_behavior, &ctx, -1);
	AWAIT(atomic_load(&ctx.inits) == 1, WAIT_MS);
	AWAIT_LIVE(sys, live);
	uint32_t type = 0;
	void *reply = NULL;
	/* The ask learns why the actor is gone: the error its init failed
	 * with. */
	cr_assert_eq(skald_system_ask(sys, r, t_int, INT_PAYLOAD(C_GET), WAIT_MS, &type, &reply),
	             TEST_ERR);
	cr_assert_eq(atomic_load(&ctx.inits), 1);
	skald_system_stop(sys);
}
