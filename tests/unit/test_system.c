/*
 * tests/unit/test_system.c - systems, spawning, placement, the accessors
 * available inside an actor, statistics and graceful stop.
 */
#include <string.h>
#include <unistd.h>

#include "helpers.h"

TestSuite(system, .init = fixture_setup, .timeout = 90);

/* ------------------------------------------------------------------------ */
/* Systems                                                                   */

Test(system, null_config_uses_one_thread_per_core)
{
	skald_system_t *sys = NULL;
	cr_assert_eq(skald_system_new(NULL, &sys), 0);
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned n = skald_system_threads(sys);
	cr_assert_eq(n, (unsigned)(cores > 0 ? cores : 1), "%u threads on %ld cores", n, cores);
	skald_system_stop(sys);
}

Test(system, configured_thread_count_is_used)
{
	skald_system_t *sys = sys_start(3, 0);
	cr_assert_eq(skald_system_threads(sys), 3);
	skald_system_stop(sys);
}

Test(system, new_without_out_pointer_is_einval)
{
	skald_config_t cfg = {.threads = 1};
	cr_assert_eq(skald_system_new(&cfg, NULL), SKALD_EINVAL);
}

Test(system, stop_of_null_system_is_safe)
{
	skald_system_stop(NULL);
	/* Still a working process afterwards. */
	skald_system_t *sys = sys_start(1, 0);
	cr_assert_not_null(sys);
	skald_system_stop(sys);
}

static int idle_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	return 0;
}

static const skald_behavior_t idle_behavior = {.receive = idle_receive};

/* Answers an ask with 0: proof that the actor is up. */
static int echo_zero_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	return msg->ask_id ? skald_reply(self, msg, t_int, INT_PAYLOAD(0)) : 0;
}

Test(system, node_ids_are_nonzero_distinct_and_carried_by_refs)
{
	skald_system_t *a = sys_start(1, 0);
	skald_system_t *b = sys_start(1, 0);
	cr_assert_neq(skald_system_node(a), 0);
	cr_assert_neq(skald_system_node(a), skald_system_node(b));
	skald_ref_t r = spawn_on(a, &idle_behavior, NULL, -1);
	cr_assert_eq(r.node, skald_system_node(a));
	skald_system_stop(a);
	skald_system_stop(b);
}

/* ------------------------------------------------------------------------ */
/* Spawning                                                                  */

Test(system, spawn_rejects_missing_behavior_or_receive)
{
	static const skald_behavior_t no_receive = {.state_size = 8};
	skald_system_t *sys = sys_start(1, 0);
	skald_ref_t r = SKALD_REF_NULL;
	cr_assert_eq(skald_spawn(sys, NULL, NULL, NULL, &r), SKALD_EINVAL);
	cr_assert_eq(skald_spawn(sys, &no_receive, NULL, NULL, &r), SKALD_EINVAL);
	skald_system_stop(sys);
}

Test(system, spawned_refs_are_distinct_and_not_null)
{
	enum { N = 100 };
	skald_system_t *sys = sys_start(2, 0);
	skald_ref_t refs[N];
	for (int i = 0; i < N; i++) {
		refs[i] = spawn_on(sys, &idle_behavior, NULL, -1);
		for (int j = 0; j < i; j++)
			cr_assert_not(skald_ref_eq(refs[i], refs[j]), "spawns %d and %d", i, j);
	}
	skald_system_stop(sys);
}

/* The accessors and arguments every callback sees. */
typedef struct acc_ctx_s {
	skald_system_t *sys;
	ref_cell_t self;   /* skald_self() seen in init */
	ref_cell_t parent; /* skald_parent() seen in init */
	ref_cell_t child;  /* what skald_spawn_child() returned, if spawn_child */
	struct acc_ctx_s *child_ctx;
	atomic_int stops;
} acc_ctx_t;

typedef struct acc_state_s {
	acc_ctx_t *ctx;
} acc_state_t;

static const skald_behavior_t acc_behavior;

static int acc_init(skald_actor_t *self, void *state, void *arg)
{
	acc_state_t *st = state;
	acc_ctx_t *ctx = arg;
	st->ctx = ctx;
	CHECK(skald_actor_state(self) == state);
	CHECK(skald_actor_system(self) == ctx->sys);
	ref_cell_put(&ctx->self, skald_self(self));
	ref_cell_put(&ctx->parent, skald_parent(self));
	if (ctx->child_ctx) {
		skald_ref_t child = SKALD_REF_NULL;
		CHECK(skald_spawn_child(self, &acc_behavior, ctx->child_ctx, NULL, &child) == 0);
		ref_cell_put(&ctx->child, child);
	}
	return 0;
}

static int acc_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	acc_state_t *st = state;
	CHECK(skald_actor_state(self) == state);
	CHECK(skald_actor_system(self) == st->ctx->sys);
	return skald_reply(self, msg, t_int, INT_PAYLOAD(1));
}

static void acc_stop(skald_actor_t *self, void *state, int reason)
{
	acc_state_t *st = state;
	CHECK(skald_actor_state(self) == state);
	atomic_fetch_add(&st->ctx->stops, 1);
}

static const skald_behavior_t acc_behavior = {
        .state_size = sizeof(acc_state_t),
        .init = acc_init,
        .receive = acc_receive,
        .stop = acc_stop,
};

Test(system, accessors_report_self_system_parent_and_state)
{
	skald_system_t *sys = sys_start(2, 0);
	acc_ctx_t child_ctx = {.sys = sys};
	acc_ctx_t top_ctx = {.sys = sys, .child_ctx = &child_ctx};

	skald_ref_t top = spawn_on(sys, &acc_behavior, &top_ctx, -1);
	cr_assert(skald_ref_eq(ref_cell_get(&top_ctx.self), top));
	cr_assert(skald_ref_is_null(ref_cell_get(&top_ctx.parent)));

	skald_ref_t child = ref_cell_get(&top_ctx.child);
	cr_assert_not(skald_ref_is_null(child));
	cr_assert_eq(child.node, skald_system_node(sys));
	cr_assert(skald_ref_eq(ref_cell_get(&child_ctx.self), child));
	cr_assert(skald_ref_eq(ref_cell_get(&child_ctx.parent), top));

	cr_assert_eq(ask_int(sys, top, 0), 1);
	cr_assert_eq(ask_int(sys, child, 0), 1);
	skald_system_stop(sys);
	cr_assert_eq(atomic_load(&top_ctx.stops), 1);
	cr_assert_eq(atomic_load(&child_ctx.stops), 1);
	checks_ok();
}

/* init receives its argument, a zeroed state, and runs before any message. */
typedef struct zero_ctx_s {
	atomic_int inits;
	atomic_int received;
} zero_ctx_t;

enum { ZERO_STATE_SIZE = 4096 };

static int zero_init(skald_actor_t *self, void *state, void *arg)
{
	zero_ctx_t *ctx = arg;
	const unsigned char *p = state;
	for (size_t i = 0; i < ZERO_STATE_SIZE; i++) {
		if (p[i] != 0) {
			CHECK(!"state zeroed before init");
			break;
		}
	}
	/* Dirty the whole state so that memory reused by a later spawn would
	 * show through if it were not zeroed again. */
	memset(state, 0xab, ZERO_STATE_SIZE);
	atomic_fetch_add(&ctx->inits, 1);
	return 0;
}

static int zero_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	return skald_reply(self, msg, t_int, INT_PAYLOAD(((unsigned char *)state)[0]));
}

static const skald_behavior_t zero_behavior = {
        .state_size = ZERO_STATE_SIZE,
        .init = zero_init,
        .receive = zero_receive,
};

Test(system, state_is_zeroed_before_init_even_when_memory_is_reused)
{
	skald_system_t *sys = sys_start(1, 0);
	zero_ctx_t ctx = {0};
	uint64_t base = stats_of(sys).live_actors;
	for (int i = 0; i < 50; i++) {
		skald_ref_t r = spawn_on(sys, &zero_behavior, &ctx, -1);
		/* The reply shows that receive sees what init left. */
		cr_assert_eq(ask_int(sys, r, 0), 0xab);
		cr_assert_eq(skald_stop(sys, r), 0);
		AWAIT_LIVE(sys, base);
	}
	cr_assert_eq(atomic_load(&ctx.inits), 50);
	skald_system_stop(sys);
	checks_ok();
}

typedef struct slow_init_ctx_s {
	atomic_int inited;
	atomic_int early; /* messages handled before init finished */
	atomic_int received;
} slow_init_ctx_t;

typedef struct slow_init_state_s {
	slow_init_ctx_t *ctx;
} slow_init_state_t;

static int slow_init(skald_actor_t *self, void *state, void *arg)
{
	slow_init_state_t *st = state;
	st->ctx = arg;
	/* Long enough that the test's sends surely arrive while init runs. */
	sleep_ms(50);
	atomic_store(&st->ctx->inited, 1);
	return 0;
}

static int slow_init_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	slow_init_state_t *st = state;
	if (!atomic_load(&st->ctx->inited))
		atomic_fetch_add(&st->ctx->early, 1);
	atomic_fetch_add(&st->ctx->received, 1);
	return 0;
}

static const skald_behavior_t slow_init_behavior = {
        .state_size = sizeof(slow_init_state_t),
        .init = slow_init,
        .receive = slow_init_receive,
};

Test(system, messages_sent_at_once_wait_for_init)
{
	skald_system_t *sys = sys_start(2, 0);
	slow_init_ctx_t ctx = {0};
	skald_ref_t r = spawn_on(sys, &slow_init_behavior, &ctx, 1);
	for (int i = 0; i < 100; i++)
		tell_int(sys, r, (uint64_t)i);
	AWAIT(atomic_load(&ctx.received) == 100, WAIT_MS);
	cr_assert_eq(atomic_load(&ctx.early), 0);
	skald_system_stop(sys);
}

/* ------------------------------------------------------------------------ */
/* Placement                                                                 */

enum {
	W_THREAD = 1,     /* reply: the actor's thread id */
	W_CHILD = 2,      /* spawn a child with default placement */
	W_CHILD_PIN1 = 3, /* spawn a child pinned to thread 1 */
};

typedef struct where_state_s {
	ref_cell_t *child; /* where the actor publishes the child it spawns */
	uint64_t init_thread;
} where_state_t;

static const skald_behavior_t where_behavior;

static int where_init(skald_actor_t *self, void *state, void *arg)
{
	where_state_t *st = state;
	st->child = arg;
	st->init_thread = thread_id();
	return 0;
}

static int where_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	where_state_t *st = state;
	uint64_t cmd = PAYLOAD_INT(msg->payload);
	skald_spawn_opts_t pin = {.flags = SKALD_SPAWN_PIN, .thread = 1};
	skald_ref_t child = SKALD_REF_NULL;
	int rc;

	CHECK(st->init_thread == thread_id());
	if (cmd == W_THREAD)
		return skald_reply(self, msg, t_int, INT_PAYLOAD(thread_id()));
	rc = skald_spawn_child(self, &where_behavior, NULL, cmd == W_CHILD ? NULL : &pin, &child);
	CHECK(rc == 0);
	ref_cell_put(st->child, child);
	return skald_reply(self, msg, t_int, INT_PAYLOAD(1));
}

static const skald_behavior_t where_behavior = {
        .state_size = sizeof(where_state_t),
        .init = where_init,
        .receive = where_receive,
};

static uint64_t thread_of(skald_system_t *sys, skald_ref_t r)
{
	return ask_int(sys, r, W_THREAD);
}

Test(system, top_level_spawns_alternate_threads)
{
	skald_system_t *sys = sys_start(2, 0);
	skald_ref_t r[4];
	uint64_t t[4];
	/* Spawn all first: the asks below must not come between the spawns. */
	for (int i = 0; i < 4; i++)
		r[i] = spawn_on(sys, &where_behavior, NULL, -1);
	for (int i = 0; i < 4; i++)
		t[i] = thread_of(sys, r[i]);
	cr_assert_neq(t[0], t[1]);
	cr_assert_eq(t[0], t[2]);
	cr_assert_eq(t[1], t[3]);
	skald_system_stop(sys);
	checks_ok();
}

Test(system, pinned_thread_index_is_taken_modulo_threads)
{
	skald_system_t *sys = sys_start(2, 0);
	uint64_t t[4];
	for (int i = 0; i < 4; i++)
		t[i] = thread_of(sys, spawn_on(sys, &where_behavior, NULL, i));
	cr_assert_neq(t[0], t[1]);
	cr_assert_eq(t[0], t[2]);
	cr_assert_eq(t[1], t[3]);
	skald_system_stop(sys);
	checks_ok();
}

Test(system, children_live_on_parent_thread_by_default)
{
	skald_system_t *sys = sys_start(2, 0);
	for (int p = 0; p < 2; p++) {
		ref_cell_t cell = {0};
		skald_ref_t parent = spawn_on(sys, &where_behavior, &cell, p);
		cr_assert_eq(ask_int(sys, parent, W_CHILD), 1);
		skald_ref_t child = ref_cell_get(&cell);
		cr_assert_eq(thread_of(sys, child), thread_of(sys, parent), "parent on thread %d",
		             p);
	}
	skald_system_stop(sys);
	checks_ok();
}

Test(system, pinned_child_lives_on_its_pinned_thread)
{
	skald_system_t *sys = sys_start(2, 0);
	ref_cell_t cell = {0};
	skald_ref_t parent = spawn_on(sys, &where_behavior, &cell, 0);
	skald_ref_t other = spawn_on(sys, &where_behavior, NULL, 1);
	cr_assert_eq(ask_int(sys, parent, W_CHILD_PIN1), 1);
	skald_ref_t child = ref_cell_get(&cell);
	cr_assert_eq(thread_of(sys, child), thread_of(sys, other));
	cr_assert_neq(thread_of(sys, child), thread_of(sys, parent));
	skald_system_stop(sys);
	checks_ok();
}

/* ------------------------------------------------------------------------ */
/* Statistics                                                                */

typedef struct count_ctx_s {
	atomic_long received;
	atomic_int stops;
	atomic_int last_reason;
} count_ctx_t;

static int count_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	count_ctx_t *ctx = *(count_ctx_t **)state;
	atomic_fetch_add(&ctx->received, 1);
	if (msg->ask_id)
		return skald_reply(self, msg, t_int, INT_PAYLOAD(atomic_load(&ctx->received)));
	return 0;
}

static int count_init(skald_actor_t *self, void *state, void *arg)
{
	*(count_ctx_t **)state = arg;
	return 0;
}

static void count_stop(skald_actor_t *self, void *state, int reason)
{
	count_ctx_t *ctx = *(count_ctx_t **)state;
	atomic_store(&ctx->last_reason, reason);
	atomic_fetch_add(&ctx->stops, 1);
}

static const skald_behavior_t count_behavior = {
        .state_size = sizeof(count_ctx_t *),
        .init = count_init,
        .receive = count_receive,
        .stop = count_stop,
};

Test(system, stats_count_spawns_live_actors_and_deliveries)
{
	skald_system_t *sys = sys_start(2, 0);
	count_ctx_t ctx = {0};
	skald_stats_t base = stats_of(sys);
	skald_ref_t r[3];
	for (int i = 0; i < 3; i++)
		r[i] = spawn_on(sys, &count_behavior, &ctx, -1);
	skald_stats_t now = stats_of(sys);
	cr_assert_eq(now.spawned, base.spawned + 3);
	cr_assert_eq(now.live_actors, base.live_actors + 3);

	for (int i = 0; i < 10; i++)
		tell_int(sys, r[0], 0);
	AWAIT(atomic_load(&ctx.received) == 10, WAIT_MS);
	AWAIT(stats_of(sys).delivered >= base.delivered + 10, WAIT_MS);

	cr_assert_eq(skald_stop(sys, r[1]), 0);
	AWAIT_LIVE(sys, base.live_actors + 2);
	AWAIT(atomic_load(&ctx.stops) == 1, WAIT_MS);
	cr_assert_eq(stats_of(sys).spawned, base.spawned + 3);
	skald_system_stop(sys);
}

Test(system, stopping_parent_stops_its_children)
{
	skald_system_t *sys = sys_start(2, 0);
	acc_ctx_t child_ctx = {.sys = sys};
	acc_ctx_t top_ctx = {.sys = sys, .child_ctx = &child_ctx};
	uint64_t base = stats_of(sys).live_actors;
	skald_ref_t top = spawn_on(sys, &acc_behavior, &top_ctx, -1);
	skald_ref_t child = ref_cell_get(&top_ctx.child);
	cr_assert_eq(ask_int(sys, child, 0), 1);

	cr_assert_eq(skald_stop(sys, top), 0);
	AWAIT(atomic_load(&child_ctx.stops) == 1, WAIT_MS);
	AWAIT_LIVE(sys, base);
	cr_assert_eq(atomic_load(&top_ctx.stops), 1);

	/* The child is gone: a message to it is a dead letter. */
	uint64_t dead = stats_of(sys).dead_letters;
	tell_int(sys, child, 0);
	AWAIT(stats_of(sys).dead_letters == dead + 1, WAIT_MS);
	skald_system_stop(sys);
	cr_assert_eq(atomic_load(&child_ctx.stops), 1);
	checks_ok();
}

/* ------------------------------------------------------------------------ */
/* Shutdown and wait                                                         */

static int shutdown_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	skald_system_shutdown(skald_actor_system(self));
	return 0;
}

static const skald_behavior_t shutdown_behavior = {.receive = shutdown_receive};

static atomic_int waited;

static void *wait_thread(void *arg)
{
	skald_system_wait(arg);
	atomic_store(&waited, 1);
	return NULL;
}

Test(system, wait_returns_after_shutdown_from_an_actor)
{
	skald_system_t *sys = sys_start(2, 0);
	skald_ref_t r = spawn_on(sys, &shutdown_behavior, NULL, -1);
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, wait_thread, sys), 0);
	HOLDS_FOR(!atomic_load(&waited), QUIET_MS);
	tell_int(sys, r, 0);
	AWAIT(atomic_load(&waited), WAIT_MS);
	pthread_join(th, NULL);
	skald_system_stop(sys);
}

Test(system, wait_after_shutdown_returns_at_once)
{
	skald_system_t *sys = sys_start(1, 0);
	skald_system_shutdown(sys);
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, wait_thread, sys), 0);
	AWAIT(atomic_load(&waited), WAIT_MS);
	pthread_join(th, NULL);
	skald_system_stop(sys);
}

/* Every live actor's stop callback runs exactly once, with ESTOPPING, on its
 * own thread. */
typedef struct many_ctx_s {
	atomic_long inits;
	atomic_long stopping;
	atomic_long other;
} many_ctx_t;

typedef struct many_state_s {
	many_ctx_t *ctx;
	uint64_t thread;
	int stopped;
} many_state_t;

static int many_init(skald_actor_t *self, void *state, void *arg)
{
	many_state_t *st = state;
	st->ctx = arg;
	st->thread = thread_id();
	atomic_fetch_add(&st->ctx->inits, 1);
	return 0;
}

static void many_stop(skald_actor_t *self, void *state, int reason)
{
	many_state_t *st = state;
	CHECK(st->thread == thread_id());
	CHECK(!st->stopped);
	st->stopped = 1;
	if (reason == SKALD_ESTOPPING)
		atomic_fetch_add(&st->ctx->stopping, 1);
	else
		atomic_fetch_add(&st->ctx->other, 1);
}

static const skald_behavior_t many_behavior = {
        .state_size = sizeof(many_state_t),
        .init = many_init,
        .receive = idle_receive,
        .stop = many_stop,
};

Test(system, stop_with_100k_live_actors_stops_each_once_with_estopping)
{
	enum { N = 100000 };
	skald_system_t *sys = sys_start(2, 0);
	many_ctx_t ctx = {0};
	for (int i = 0; i < N; i++) {
		skald_ref_t r;
		int rc = skald_spawn(sys, &many_behavior, &ctx, NULL, &r);
		if (rc != 0)
			cr_assert_fail("spawn %d: %s", i, skald_strerror(rc));
	}
	uint64_t t0 = now_ms();
	while (atomic_load(&ctx.inits) != N && now_ms() - t0 < 30000)
		sleep_ms(1);
	cr_assert_eq(atomic_load(&ctx.inits), N, "%ld of %d actors ran init; live %llu",
	             atomic_load(&ctx.inits), N, (unsigned long long)stats_of(sys).live_actors);
	cr_assert_eq(stats_of(sys).live_actors, N);
	skald_system_stop(sys);
	cr_assert_eq(atomic_load(&ctx.stopping), N);
	cr_assert_eq(atomic_load(&ctx.other), 0);
	checks_ok();
}

/* A tree: every child and grandchild is stopped with ESTOPPING too, not with
 * whatever reason its parent's stop would give it. */
enum { TREE_CHILDREN = 500 };

static int mid_init(skald_actor_t *self, void *state, void *arg)
{
	skald_ref_t leaf;
	many_init(self, state, arg);
	CHECK(skald_spawn_child(self, &many_behavior, arg, NULL, &leaf) == 0);
	return 0;
}

static const skald_behavior_t mid_behavior = {
        .state_size = sizeof(many_state_t),
        .init = mid_init,
        .receive = idle_receive,
        .stop = many_stop,
};

static int root_init(skald_actor_t *self, void *state, void *arg)
{
	skald_ref_t child;
	many_init(self, state, arg);
	for (int i = 0; i < TREE_CHILDREN; i++)
		CHECK(skald_spawn_child(self, &mid_behavior, arg, NULL, &child) == 0);
	return 0;
}

static const skald_behavior_t root_behavior = {
        .state_size = sizeof(many_state_t),
        .init = root_init,
        .receive = idle_receive,
        .stop = many_stop,
};

Test(system, stop_stops_every_child_and_grandchild_once_with_estopping)
{
	enum { TOTAL = 1 + 2 * TREE_CHILDREN };
	skald_system_t *sys = sys_start(2, 0);
	many_ctx_t ctx = {0};
	spawn_on(sys, &root_behavior, &ctx, -1);
	AWAIT(atomic_load(&ctx.inits) == TOTAL, WAIT_MS);
	skald_system_stop(sys);
	cr_assert_eq(atomic_load(&ctx.stopping), TOTAL);
	cr_assert_eq(atomic_load(&ctx.other), 0);
	checks_ok();
}

/* Messages still queued when the system stops are freed, each exactly once. */
typedef struct backlog_ctx_s {
	atomic_int busy;
	atomic_long received;
} backlog_ctx_t;

static int backlog_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	backlog_ctx_t *ctx = *(backlog_ctx_t **)state;
	if (atomic_fetch_add(&ctx->received, 1) == 0) {
		/* Hold the thread on the first message while the test queues the
		 * rest and starts the stop, so that a backlog is surely left. */
		atomic_store(&ctx->busy, 1);
		sleep_ms(200);
	}
	return 0;
}

static int backlog_init(skald_actor_t *self, void *state, void *arg)
{
	*(backlog_ctx_t **)state = arg;
	return 0;
}

static const skald_behavior_t backlog_behavior = {
        .state_size = sizeof(backlog_ctx_t *),
        .init = backlog_init,
        .receive = backlog_receive,
};

Test(system, stop_frees_payloads_left_in_mailboxes_exactly_once)
{
	enum { N = 10000 };
	skald_system_t *sys = sys_start(2, 0);
	backlog_ctx_t ctx = {0};
	skald_ref_t r = spawn_on(sys, &backlog_behavior, &ctx, 0);
	cr_assert_eq(skald_system_tell(sys, r, t_box, box_new(0)), 0);
	AWAIT(atomic_load(&ctx.busy), WAIT_MS);
	for (int i = 1; i < N; i++)
		cr_assert_eq(skald_system_tell(sys, r, t_box, box_new((uint64_t)i)), 0);
	skald_system_stop(sys);
	cr_assert_eq(atomic_load(&box_frees), N, "%ld of %d payloads freed (%ld received)",
	             atomic_load(&box_frees), N, atomic_load(&ctx.received));
}

/* Messages sent from stop callbacks while the system stops are freed too. */
typedef struct farewell_ctx_s {
	ref_cell_t peer[2];
	atomic_int stops;
	atomic_int send_errors;
} farewell_ctx_t;

typedef struct farewell_state_s {
	farewell_ctx_t *ctx;
	int index;
} farewell_state_t;

static atomic_int farewell_next;

static int farewell_init(skald_actor_t *self, void *state, void *arg)
{
	farewell_state_t *st = state;
	st->ctx = arg;
	st->index = atomic_fetch_add(&farewell_next, 1);
	ref_cell_put(&st->ctx->peer[st->index], skald_self(self));
	return 0;
}

static void farewell_stop(skald_actor_t *self, void *state, int reason)
{
	farewell_state_t *st = state;
	/* One message to the other actor and one to itself. */
	for (int i = 0; i < 2; i++) {
		box_t *b = box_new((uint64_t)i);
		if (skald_tell(self, st->ctx->peer[i].ref, t_box, b) != 0) {
			atomic_fetch_add(&st->ctx->send_errors, 1);
			box_free(b);
		}
	}
	atomic_fetch_add(&st->ctx->stops, 1);
}

static const skald_behavior_t farewell_behavior = {
        .state_size = sizeof(farewell_state_t),
        .init = farewell_init,
        .receive = idle_receive,
        .stop = farewell_stop,
};

Test(system, stop_frees_payloads_sent_from_stop_callbacks)
{
	skald_system_t *sys = sys_start(2, 0);
	farewell_ctx_t ctx = {0};
	spawn_on(sys, &farewell_behavior, &ctx, 0);
	ref_cell_get(&ctx.peer[0]);
	spawn_on(sys, &farewell_behavior, &ctx, 1);
	ref_cell_get(&ctx.peer[1]);
	skald_system_stop(sys);
	cr_assert_eq(atomic_load(&ctx.stops), 2);
	cr_assert_eq(atomic_load(&box_frees), 4);
}

typedef struct late_spawn_ctx_s {
	skald_system_t *sys;
	atomic_int rc;
	atomic_int calls;
} late_spawn_ctx_t;

static void late_spawn_stop(skald_actor_t *self, void *state, int reason)
{
	late_spawn_ctx_t *ctx = *(late_spawn_ctx_t **)state;
	skald_ref_t r;
	atomic_store(&ctx->rc, skald_spawn(ctx->sys, &idle_behavior, NULL, NULL, &r));
	atomic_fetch_add(&ctx->calls, 1);
}

static int late_spawn_init(skald_actor_t *self, void *state, void *arg)
{
	*(late_spawn_ctx_t **)state = arg;
	return 0;
}

static const skald_behavior_t late_spawn_behavior = {
        .state_size = sizeof(late_spawn_ctx_t *),
        .init = late_spawn_init,
        .receive = echo_zero_receive,
        .stop = late_spawn_stop,
};

Test(system, spawn_while_system_stops_is_estopping)
{
	skald_system_t *sys = sys_start(2, 0);
	late_spawn_ctx_t ctx = {.sys = sys};
	skald_ref_t r = spawn_on(sys, &late_spawn_behavior, &ctx, -1);
	cr_assert_eq(ask_int(sys, r, 0), 0);
	skald_system_stop(sys);
	cr_assert_eq(atomic_load(&ctx.calls), 1);
	cr_assert_eq(atomic_load(&ctx.rc), SKALD_ESTOPPING, "spawn during stop returned %s",
	             skald_err_name(atomic_load(&ctx.rc)));
}

Test(system, stop_right_after_spawn_frees_payloads_of_unstarted_actors)
{
	/* Spawn, send and stop at once, many times: the actor has often not had
	 * its first turn when the stop arrives, and what waits in its mailbox
	 * must still be freed. */
	enum { ROUNDS = 50, SENDS = 4 };
	for (int round = 0; round < ROUNDS; round++) {
		skald_system_t *sys = sys_start(1, 0);
		skald_ref_t r = spawn_on(sys, &idle_behavior, NULL, 0);
		for (int i = 0; i < SENDS; i++)
			cr_assert_eq(skald_system_tell(sys, r, t_box, box_new((uint64_t)i)), 0);
		skald_system_stop(sys);
		cr_assert_eq(atomic_load(&box_frees), (long)(round + 1) * SENDS,
		             "round %d: %ld of %d payloads freed", round, atomic_load(&box_frees),
		             (round + 1) * SENDS);
	}
}
