/*
 * tests/unit/test_tell.c - tell: ordering, ownership of payloads, dead
 * letters, stale references, stop and the per-turn budget.
 */
#include <stdlib.h>

#include "helpers.h"

TestSuite(tell, .init = fixture_setup, .timeout = 120);

/* ------------------------------------------------------------------------ */
/* Ordering                                                                  */

/* Senders send their sequence in chunks, one chunk per turn, so that the
 * receiver drains while the sender is still sending and memory stays flat. */
enum { CHUNK = 1000, GO = 0 };

/* Payload of a sequenced message: sender index and sequence number (from 1). */
#define SEQ_PAYLOAD(sender, seq) INT_PAYLOAD(((uint64_t)(sender) << 32) | (uint64_t)(seq))
#define SEQ_SENDER(p)            (PAYLOAD_INT(p) >> 32)
#define SEQ_NUMBER(p)            (PAYLOAD_INT(p) & 0xffffffffu)

enum { MAX_SENDERS = 8 };

typedef struct order_ctx_s {
	skald_ref_t receiver;
	skald_ref_t senders[MAX_SENDERS];
	unsigned nsenders;
	uint64_t per_sender;
	atomic_long received;
	atomic_long out_of_order;
	atomic_long wrong_sender;
	atomic_ullong receiver_thread;
	atomic_ullong sender_thread;
	atomic_uint next_index;
} order_ctx_t;

typedef struct sender_state_s {
	order_ctx_t *ctx;
	unsigned index;
	uint64_t sent;
} sender_state_t;

static int sender_init(skald_actor_t *self, void *state, void *arg)
{
	sender_state_t *st = state;
	st->ctx = arg;
	st->index = atomic_fetch_add(&st->ctx->next_index, 1);
	atomic_store(&st->ctx->sender_thread, thread_id());
	return 0;
}

static int sender_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	sender_state_t *st = state;
	order_ctx_t *ctx = st->ctx;
	for (int i = 0; i < CHUNK && st->sent < ctx->per_sender; i++) {
		st->sent++;
		int rc = skald_tell(self, ctx->receiver, t_int, SEQ_PAYLOAD(st->index, st->sent));
		CHECK(rc == 0);
	}
	/* The next chunk after whatever is queued for this actor now. */
	if (st->sent < ctx->per_sender)
		CHECK(skald_tell(self, skald_self(self), t_int, INT_PAYLOAD(GO)) == 0);
	return 0;
}

static const skald_behavior_t sender_behavior = {
        .state_size = sizeof(sender_state_t),
        .init = sender_init,
        .receive = sender_receive,
};

typedef struct receiver_state_s {
	order_ctx_t *ctx;
	uint64_t last[MAX_SENDERS];
} receiver_state_t;

static int receiver_init(skald_actor_t *self, void *state, void *arg)
{
	receiver_state_t *st = state;
	st->ctx = arg;
	atomic_store(&st->ctx->receiver_thread, thread_id());
	return 0;
}

static int receiver_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	receiver_state_t *st = state;
	order_ctx_t *ctx = st->ctx;
	uint64_t who = SEQ_SENDER(msg->payload), seq = SEQ_NUMBER(msg->payload);

	if (who >= ctx->nsenders || !skald_ref_eq(msg->sender, ctx->senders[who])) {
		atomic_fetch_add(&ctx->wrong_sender, 1);
	} else {
		if (seq != st->last[who] + 1)
			atomic_fetch_add(&ctx->out_of_order, 1);
		st->last[who] = seq;
	}
	atomic_fetch_add(&ctx->received, 1);
	return 0;
}

static const skald_behavior_t receiver_behavior = {
        .state_size = sizeof(receiver_state_t),
        .init = receiver_init,
        .receive = receiver_receive,
};

/* Spawns the receiver pinned to receiver_thread and nsenders senders pinned
 * round the threads, then starts them all and waits for every message. */
static void run_order(unsigned nsenders, uint64_t per_sender, int receiver_thread)
{
	skald_system_t *sys = sys_start(2, 0);
	order_ctx_t *ctx = calloc(1, sizeof(*ctx));
	cr_assert_not_null(ctx);
	ctx->nsenders = nsenders;
	ctx->per_sender = per_sender;
	ctx->receiver = spawn_on(sys, &receiver_behavior, ctx, receiver_thread);
	for (unsigned i = 0; i < nsenders; i++) {
		/* Sender indices follow init order; wait for each so that index i
		 * belongs to senders[i]. */
		ctx->senders[i] = spawn_on(sys, &sender_behavior, ctx, (int)(1 + i) % 2);
		AWAIT(atomic_load(&ctx->next_index) == i + 1, WAIT_MS);
	}
	for (unsigned i = 0; i < nsenders; i++)
		tell_int(sys, ctx->senders[i], GO);

	uint64_t total = nsenders * per_sender;
	AWAIT((uint64_t)atomic_load(&ctx->received) >= total, 100000);
	cr_assert_eq(atomic_load(&ctx->out_of_order), 0);
	cr_assert_eq(atomic_load(&ctx->wrong_sender), 0);
	HOLDS_FOR((uint64_t)atomic_load(&ctx->received) == total, QUIET_MS);
	skald_system_stop(sys);
	free(ctx);
	checks_ok();
}

Test(tell, one_sender_million_messages_arrive_in_order_across_threads)
{
	/* Receiver on thread 0, the sender on thread 1. */
	run_order(1, 1000000, 0);
}

Test(tell, eight_senders_on_two_threads_lose_nothing_and_keep_fifo)
{
	/* Half the senders share the receiver's thread, half do not. */
	run_order(8, 100000, 0);
}

Test(tell, single_sender_test_really_crosses_threads)
{
	/* Guards the ordering test above against placement that would make it
	 * a same-thread test. */
	skald_system_t *sys = sys_start(2, 0);
	order_ctx_t ctx = {.nsenders = 1, .per_sender = 10};
	ctx.receiver = spawn_on(sys, &receiver_behavior, &ctx, 0);
	ctx.senders[0] = spawn_on(sys, &sender_behavior, &ctx, 1);
	tell_int(sys, ctx.senders[0], GO);
	AWAIT(atomic_load(&ctx.received) == 10, WAIT_MS);
	cr_assert_neq(atomic_load(&ctx.receiver_thread), atomic_load(&ctx.sender_thread));
	skald_system_stop(sys);
	checks_ok();
}

/* ------------------------------------------------------------------------ */
/* What a receiver sees                                                      */

typedef struct seen_ctx_s {
	ref_cell_t self;
	atomic_long received;
	atomic_uint type;
	void *_Atomic payload;
	skald_ref_t sender;
	atomic_ullong ask_id;
	atomic_int take; /* take payloads of type test.box */
	atomic_long taken_freed;
} seen_ctx_t;

typedef struct seen_state_s {
	seen_ctx_t *ctx;
} seen_state_t;

static int seen_init(skald_actor_t *self, void *state, void *arg)
{
	seen_state_t *st = state;
	st->ctx = arg;
	ref_cell_put(&st->ctx->self, skald_self(self));
	return 0;
}

static int seen_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	seen_ctx_t *ctx = ((seen_state_t *)state)->ctx;
	/* Record before counting: the test reads these once received moves. */
	atomic_store(&ctx->type, msg->type);
	atomic_store(&ctx->payload, msg->payload);
	ctx->sender = msg->sender;
	atomic_store(&ctx->ask_id, msg->ask_id);
	if (msg->type == t_box && atomic_load(&ctx->take)) {
		void *p = skald_msg_take(msg);
		CHECK(p == msg->payload);
		/* Freed behind the runtime's back: box_frees must not move. */
		free(p);
		atomic_fetch_add(&ctx->taken_freed, 1);
	}
	atomic_fetch_add(&ctx->received, 1);
	if (msg->ask_id)
		return skald_reply(self, msg, t_int, INT_PAYLOAD(atomic_load(&ctx->received)));
	return 0;
}

static const skald_behavior_t seen_behavior = {
        .state_size = sizeof(seen_state_t),
        .init = seen_init,
        .receive = seen_receive,
};

Test(tell, local_delivery_moves_the_payload_pointer)
{
	skald_system_t *sys = sys_start(2, 0);
	seen_ctx_t ctx = {0};
	skald_ref_t r = spawn_on(sys, &seen_behavior, &ctx, 1);
	box_t *b = box_new(7);
	cr_assert_eq(skald_system_tell(sys, r, t_box, b), 0);
	AWAIT(atomic_load(&ctx.received) == 1, WAIT_MS);
	cr_assert_eq(atomic_load(&ctx.type), t_box);
	cr_assert_eq(atomic_load(&ctx.payload), (void *)b);
	skald_system_stop(sys);
}

Test(tell, payload_not_taken_is_freed_once_after_receive)
{
	skald_system_t *sys = sys_start(2, 0);
	seen_ctx_t ctx = {0};
	skald_ref_t r = spawn_on(sys, &seen_behavior, &ctx, 1);
	cr_assert_eq(skald_system_tell(sys, r, t_box, box_new(1)), 0);
	AWAIT(atomic_load(&box_frees) == 1, WAIT_MS);
	cr_assert_eq(atomic_load(&ctx.received), 1);
	skald_system_stop(sys);
	cr_assert_eq(atomic_load(&box_frees), 1);
}

Test(tell, payload_taken_by_receive_is_not_freed_by_runtime)
{
	skald_system_t *sys = sys_start(2, 0);
	seen_ctx_t ctx = {.take = 1};
	skald_ref_t r = spawn_on(sys, &seen_behavior, &ctx, 1);
	cr_assert_eq(skald_system_tell(sys, r, t_box, box_new(1)), 0);
	/* The ask comes after the tell from the same sender: once it is
	 * answered, the tell's receive has returned. */
	cr_assert_eq(ask_int(sys, r, 0), 2);
	cr_assert_eq(atomic_load(&ctx.taken_freed), 1);
	skald_system_stop(sys);
	cr_assert_eq(atomic_load(&box_frees), 0);
}

Test(tell, outside_tell_has_null_sender_and_no_ask_id)
{
	skald_system_t *sys = sys_start(1, 0);
	seen_ctx_t ctx = {0};
	skald_ref_t r = spawn_on(sys, &seen_behavior, &ctx, -1);
	tell_int(sys, r, 5);
	AWAIT(atomic_load(&ctx.received) == 1, WAIT_MS);
	cr_assert(skald_ref_is_null(ctx.sender));
	cr_assert_eq(atomic_load(&ctx.ask_id), 0);
	cr_assert_eq(atomic_load(&ctx.type), t_int);
	cr_assert_eq(PAYLOAD_INT(atomic_load(&ctx.payload)), 5);
	skald_system_stop(sys);
}

/* An actor that forwards every integer to a target given in its argument. */
typedef struct fwd_state_s {
	skald_ref_t *to;
} fwd_state_t;

static int fwd_init(skald_actor_t *self, void *state, void *arg)
{
	((fwd_state_t *)state)->to = arg;
	return 0;
}

static int fwd_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	skald_ref_t to = *((fwd_state_t *)state)->to;
	CHECK(skald_tell(self, to, t_int, msg->payload) == 0);
	return 0;
}

static const skald_behavior_t fwd_behavior = {
        .state_size = sizeof(fwd_state_t),
        .init = fwd_init,
        .receive = fwd_receive,
};

Test(tell, actor_tell_carries_sender_ref)
{
	skald_system_t *sys = sys_start(2, 0);
	seen_ctx_t ctx = {0};
	skald_ref_t target = spawn_on(sys, &seen_behavior, &ctx, 0);
	skald_ref_t fwd = spawn_on(sys, &fwd_behavior, &target, 1);
	tell_int(sys, fwd, 9);
	AWAIT(atomic_load(&ctx.received) == 1, WAIT_MS);
	cr_assert(skald_ref_eq(ctx.sender, fwd));
	cr_assert_eq(atomic_load(&ctx.ask_id), 0);
	cr_assert_eq(PAYLOAD_INT(atomic_load(&ctx.payload)), 9);
	skald_system_stop(sys);
	checks_ok();
}

/* An actor that sends itself a message from init. */
static int self_init(skald_actor_t *self, void *state, void *arg)
{
	seen_state_t *st = state;
	st->ctx = arg;
	CHECK(skald_tell(self, skald_self(self), t_int, INT_PAYLOAD(3)) == 0);
	return 0;
}

static const skald_behavior_t self_tell_behavior = {
        .state_size = sizeof(seen_state_t),
        .init = self_init,
        .receive = seen_receive,
};

Test(tell, tell_from_init_is_delivered_after_init)
{
	skald_system_t *sys = sys_start(1, 0);
	seen_ctx_t ctx = {0};
	skald_ref_t r = spawn_on(sys, &self_tell_behavior, &ctx, -1);
	AWAIT(atomic_load(&ctx.received) == 1, WAIT_MS);
	cr_assert(skald_ref_eq(ctx.sender, r));
	cr_assert_eq(PAYLOAD_INT(atomic_load(&ctx.payload)), 3);
	skald_system_stop(sys);
	checks_ok();
}

/* ------------------------------------------------------------------------ */
/* Errors: the caller keeps the payload                                      */

Test(tell, tell_to_null_ref_is_einval_and_caller_keeps_payload)
{
	skald_system_t *sys = sys_start(1, 0);
	box_t *b = box_new(1);
	cr_assert_eq(skald_system_tell(sys, SKALD_REF_NULL, t_box, b), SKALD_EINVAL);
	HOLDS_FOR(atomic_load(&box_frees) == 0, QUIET_MS);
	cr_assert_eq(b->v, 1);
	box_free(b);
	skald_system_stop(sys);
	cr_assert_eq(atomic_load(&box_frees), 1);
}

Test(tell, outside_tell_of_unregistered_type_is_enotype)
{
	skald_system_t *sys = sys_start(1, 0);
	seen_ctx_t ctx = {0};
	skald_ref_t r = spawn_on(sys, &seen_behavior, &ctx, -1);
	box_t *b = box_new(4);
	cr_assert_eq(skald_system_tell(sys, r, 0xdead0u, b), SKALD_ENOTYPE);
	cr_assert_eq(skald_system_tell(sys, r, 0, b), SKALD_ENOTYPE);
	/* Nothing was delivered: the only message the actor sees is the ask. */
	cr_assert_eq(ask_int(sys, r, 0), 1);
	cr_assert_eq(b->v, 4);
	free(b);
	skald_system_stop(sys);
}

typedef struct badtype_ctx_s {
	skald_ref_t target;
	atomic_int rc_tell;
	atomic_int rc_null;
	atomic_int done;
} badtype_ctx_t;

static int badtype_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	badtype_ctx_t *ctx = *(badtype_ctx_t **)state;
	box_t *b = box_new(1);
	atomic_store(&ctx->rc_tell, skald_tell(self, ctx->target, 0xdead0u, b));
	atomic_store(&ctx->rc_null, skald_tell(self, SKALD_REF_NULL, t_box, b));
	/* Still ours on both errors. */
	box_free(b);
	atomic_store(&ctx->done, 1);
	return 0;
}

static int ptr_init(skald_actor_t *self, void *state, void *arg)
{
	*(void **)state = arg;
	return 0;
}

static const skald_behavior_t badtype_behavior = {
        .state_size = sizeof(void *),
        .init = ptr_init,
        .receive = badtype_receive,
};

Test(tell, actor_tell_errors_leave_payload_with_caller)
{
	skald_system_t *sys = sys_start(1, 0);
	seen_ctx_t seen = {0};
	badtype_ctx_t ctx = {0};
	ctx.target = spawn_on(sys, &seen_behavior, &seen, -1);
	skald_ref_t r = spawn_on(sys, &badtype_behavior, &ctx, -1);
	tell_int(sys, r, 0);
	AWAIT(atomic_load(&ctx.done), WAIT_MS);
	cr_assert_eq(atomic_load(&ctx.rc_tell), SKALD_ENOTYPE);
	cr_assert_eq(atomic_load(&ctx.rc_null), SKALD_EINVAL);
	cr_assert_eq(ask_int(sys, ctx.target, 0), 1);
	skald_system_stop(sys);
	cr_assert_eq(atomic_load(&box_frees), 1);
}

/* ------------------------------------------------------------------------ */
/* Dead letters and stale references                                         */

Test(tell, tell_to_stopped_actor_is_dead_letter_freed_once)
{
	skald_system_t *sys = sys_start(2, 0);
	seen_ctx_t ctx = {0};
	uint64_t live = stats_of(sys).live_actors;
	skald_ref_t r = spawn_on(sys, &seen_behavior, &ctx, -1);
	cr_assert_eq(ask_int(sys, r, 0), 1);
	cr_assert_eq(skald_stop(sys, r), 0);
	AWAIT_LIVE(sys, live);

	uint64_t dead = stats_of(sys).dead_letters;
	cr_assert_eq(skald_system_tell(sys, r, t_box, box_new(1)), 0);
	AWAIT(stats_of(sys).dead_letters == dead + 1, WAIT_MS);
	AWAIT(atomic_load(&box_frees) == 1, WAIT_MS);
	cr_assert_eq(atomic_load(&ctx.received), 1);
	skald_system_stop(sys);
	cr_assert_eq(atomic_load(&box_frees), 1);
}

Test(tell, tell_to_unknown_local_ref_is_dead_letter)
{
	skald_system_t *sys = sys_start(1, 0);
	skald_ref_t ghost = {skald_system_node(sys), 987654u, 3u};
	uint64_t dead = stats_of(sys).dead_letters;
	cr_assert_eq(skald_system_tell(sys, ghost, t_box, box_new(1)), 0);
	AWAIT(stats_of(sys).dead_letters == dead + 1, WAIT_MS);
	AWAIT(atomic_load(&box_frees) == 1, WAIT_MS);
	skald_system_stop(sys);
	cr_assert_eq(atomic_load(&box_frees), 1);
}

/* Counts what every actor of one kind receives, and tells which actor it
 * is by the slot of its reference. */
typedef struct slot_ctx_s {
	atomic_long received;
} slot_ctx_t;

static int slot_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	slot_ctx_t *ctx = *(slot_ctx_t **)state;
	if (msg->ask_id)
		return skald_reply(self, msg, t_int, INT_PAYLOAD(atomic_load(&ctx->received)));
	atomic_fetch_add(&ctx->received, 1);
	return 0;
}

static const skald_behavior_t slot_behavior = {
        .state_size = sizeof(void *),
        .init = ptr_init,
        .receive = slot_receive,
};

Test(tell, stale_ref_to_reused_slot_is_dead_letter)
{
	enum { MAX_SPAWNS = 20000 };
	skald_system_t *sys = sys_start(1, 0);
	slot_ctx_t old_ctx = {0}, new_ctx = {0};
	uint64_t live = stats_of(sys).live_actors;
	skald_ref_t old = spawn_on(sys, &slot_behavior, &old_ctx, -1);
	cr_assert_eq(ask_int(sys, old, 0), 0);
	cr_assert_eq(skald_stop(sys, old), 0);
	AWAIT_LIVE(sys, live);

	/* Spawn until an actor takes the old one's slot. */
	skald_ref_t *fresh = calloc(MAX_SPAWNS, sizeof(*fresh));
	cr_assert_not_null(fresh);
	int n = 0, reused = -1;
	while (n < MAX_SPAWNS && reused < 0) {
		fresh[n] = spawn_on(sys, &slot_behavior, &new_ctx, -1);
		if (fresh[n].actor == old.actor)
			reused = n;
		n++;
	}
	cr_assert_geq(reused, 0, "slot %u not reused after %d spawns", old.actor, n);
	skald_ref_t heir = fresh[reused];
	cr_assert_eq(heir.node, old.node);
	cr_assert_neq(heir.incarnation, old.incarnation);
	cr_assert_not(skald_ref_eq(heir, old));

	uint64_t dead = stats_of(sys).dead_letters;
	cr_assert_eq(skald_system_tell(sys, old, t_box, box_new(1)), 0);
	AWAIT(stats_of(sys).dead_letters == dead + 1, WAIT_MS);
	AWAIT(atomic_load(&box_frees) == 1, WAIT_MS);
	/* Had the stale message reached the heir, it would be ahead of this ask
	 * in the heir's mailbox. */
	cr_assert_eq(ask_int(sys, heir, 0), 0);
	cr_assert_eq(atomic_load(&new_ctx.received), 0);
	cr_assert_eq(atomic_load(&old_ctx.received), 0);

	/* The heir itself is reachable through its own reference. */
	tell_int(sys, heir, 1);
	cr_assert_eq(ask_int(sys, heir, 0), 1);
	free(fresh);
	skald_system_stop(sys);
}

Test(tell, stop_through_stale_ref_leaves_slot_heir_alone)
{
	enum { MAX_SPAWNS = 20000 };
	skald_system_t *sys = sys_start(1, 0);
	slot_ctx_t ctx = {0};
	uint64_t live = stats_of(sys).live_actors;
	skald_ref_t old = spawn_on(sys, &slot_behavior, &ctx, -1);
	cr_assert_eq(skald_stop(sys, old), 0);
	AWAIT_LIVE(sys, live);

	skald_ref_t heir = SKALD_REF_NULL;
	for (int n = 0; n < MAX_SPAWNS && skald_ref_is_null(heir); n++) {
		skald_ref_t r = spawn_on(sys, &slot_behavior, &ctx, -1);
		if (r.actor == old.actor)
			heir = r;
	}
	cr_assert_not(skald_ref_is_null(heir), "slot %u not reused", old.actor);
	uint64_t before = stats_of(sys).live_actors;
	int rc = skald_stop(sys, old);
	cr_assert(rc == 0 || rc == SKALD_ENOACTOR, "%s", skald_err_name(rc));
	/* The heir still answers, and nothing stopped. */
	cr_assert_eq(ask_int(sys, heir, 0), 0);
	AWAIT_LIVE(sys, before);
	HOLDS_FOR(stats_of(sys).live_actors == before, QUIET_MS);
	skald_system_stop(sys);
}

/* ------------------------------------------------------------------------ */
/* Stopping                                                                  */

Test(tell, stop_comes_after_messages_already_queued_by_the_caller)
{
	enum { N = 1000 };
	skald_system_t *sys = sys_start(2, 0);
	seen_ctx_t seen = {0};
	skald_ref_t r = spawn_on(sys, &seen_behavior, &seen, 1);
	for (int i = 0; i < N; i++)
		cr_assert_eq(skald_system_tell(sys, r, t_box, box_new((uint64_t)i)), 0);
	cr_assert_eq(skald_stop(sys, r), 0);
	AWAIT(atomic_load(&box_frees) == N, WAIT_MS);
	cr_assert_eq(atomic_load(&seen.received), N);
	skald_system_stop(sys);
}

typedef struct selfstop_ctx_s {
	atomic_long received;
	atomic_int stops;
	atomic_int reason;
	atomic_int returned; /* receive had returned when stop ran */
	atomic_int stopped_early;
	skald_ref_t witness;
} selfstop_ctx_t;

typedef struct selfstop_state_s {
	selfstop_ctx_t *ctx;
	int in_receive;
} selfstop_state_t;

static int selfstop_init(skald_actor_t *self, void *state, void *arg)
{
	((selfstop_state_t *)state)->ctx = arg;
	return 0;
}

static int selfstop_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	selfstop_state_t *st = state;
	st->in_receive = 1;
	atomic_fetch_add(&st->ctx->received, 1);
	skald_stop_self(self);
	/* The callback goes on after stop_self: sends still work. */
	if (atomic_load(&st->ctx->stops) != 0)
		atomic_store(&st->ctx->stopped_early, 1);
	CHECK(skald_tell(self, st->ctx->witness, t_int, INT_PAYLOAD(1)) == 0);
	st->in_receive = 0;
	return 0;
}

static void selfstop_stop(skald_actor_t *self, void *state, int reason)
{
	selfstop_state_t *st = state;
	atomic_store(&st->ctx->returned, !st->in_receive);
	atomic_store(&st->ctx->reason, reason);
	atomic_fetch_add(&st->ctx->stops, 1);
}

static const skald_behavior_t selfstop_behavior = {
        .state_size = sizeof(selfstop_state_t),
        .init = selfstop_init,
        .receive = selfstop_receive,
        .stop = selfstop_stop,
};

Test(tell, stop_self_stops_after_callback_and_drops_later_messages)
{
	enum { N = 100 };
	skald_system_t *sys = sys_start(2, 0);
	seen_ctx_t witness = {0};
	selfstop_ctx_t ctx = {0};
	ctx.witness = spawn_on(sys, &seen_behavior, &witness, 0);
	skald_ref_t r = spawn_on(sys, &selfstop_behavior, &ctx, 1);
	uint64_t dead = stats_of(sys).dead_letters;
	for (int i = 0; i < N; i++)
		cr_assert_eq(skald_system_tell(sys, r, t_box, box_new((uint64_t)i)), 0);
	AWAIT(atomic_load(&box_frees) == N, WAIT_MS);
	AWAIT(atomic_load(&ctx.stops) == 1, WAIT_MS);
	AWAIT(atomic_load(&witness.received) == 1, WAIT_MS);
	cr_assert_eq(atomic_load(&ctx.received), 1);
	cr_assert_eq(atomic_load(&ctx.reason), 0);
	cr_assert(atomic_load(&ctx.returned), "stop callback ran inside receive");
	cr_assert_eq(atomic_load(&ctx.stopped_early), 0);
	AWAIT(stats_of(sys).dead_letters == dead + N - 1, WAIT_MS);
	HOLDS_FOR(atomic_load(&ctx.stops) == 1, QUIET_MS);
	skald_system_stop(sys);
	cr_assert_eq(atomic_load(&ctx.stops), 1);
	checks_ok();
}

/* ------------------------------------------------------------------------ */
/* Budget: a flooded actor does not starve another on its thread             */

enum { FLOOD = 1000000, WINDOW = 1000 };

typedef struct flood_ctx_s {
	skald_ref_t peer;      /* told once the flood runs (local variant) */
	int tell_peer;         /* the flooder tells peer itself */
	long flood;            /* messages the flooder sends itself at most */
	int stop_when_served;  /* end the flood early once the peer was served */
	atomic_long processed; /* flood messages handled so far */
	atomic_long peer_seen; /* processed + 1 when the peer got its message */
	atomic_int finished;   /* the flood is over */
} flood_ctx_t;

typedef struct flood_state_s {
	flood_ctx_t *ctx;
	long sent;
} flood_state_t;

static int flood_init(skald_actor_t *self, void *state, void *arg)
{
	((flood_state_t *)state)->ctx = arg;
	return 0;
}

static int flood_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	flood_state_t *st = state;
	flood_ctx_t *ctx = st->ctx;

	if (skald_ref_is_null(msg->sender)) {
		/* The start signal: keep WINDOW messages in the mailbox from now on. */
		for (; st->sent < WINDOW; st->sent++)
			CHECK(skald_tell(self, skald_self(self), t_int, INT_PAYLOAD(1)) == 0);
		return 0;
	}
	long done = atomic_fetch_add(&ctx->processed, 1) + 1;
	if (ctx->tell_peer && done == WINDOW)
		CHECK(skald_tell(self, ctx->peer, t_int, INT_PAYLOAD(1)) == 0);
	int more = st->sent < ctx->flood;
	if (ctx->stop_when_served && atomic_load(&ctx->peer_seen) != 0)
		more = 0;
	if (more) {
		st->sent++;
		CHECK(skald_tell(self, skald_self(self), t_int, INT_PAYLOAD(1)) == 0);
	} else if (done == st->sent) {
		atomic_store(&ctx->finished, 1);
	}
	return 0;
}

static const skald_behavior_t flood_behavior = {
        .state_size = sizeof(flood_state_t),
        .init = flood_init,
        .receive = flood_receive,
};

static int peer_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	flood_ctx_t *ctx = *(flood_ctx_t **)state;
	atomic_store(&ctx->peer_seen, atomic_load(&ctx->processed) + 1);
	return 0;
}

static const skald_behavior_t peer_behavior = {
        .state_size = sizeof(void *),
        .init = ptr_init,
        .receive = peer_receive,
};

Test(tell, flooded_actor_does_not_starve_peer_told_from_same_thread)
{
	skald_system_t *sys = sys_start(1, 0);
	flood_ctx_t ctx = {.tell_peer = 1, .flood = FLOOD};
	ctx.peer = spawn_on(sys, &peer_behavior, &ctx, 0);
	skald_ref_t flooder = spawn_on(sys, &flood_behavior, &ctx, 0);
	tell_int(sys, flooder, 0);
	AWAIT(atomic_load(&ctx.finished), 60000);
	cr_assert_eq(atomic_load(&ctx.processed), FLOOD);
	long seen = atomic_load(&ctx.peer_seen);
	cr_assert_gt(seen, 0, "the peer was never served");
	cr_assert_lt(seen - 1, FLOOD, "the peer was served only after the flood");
	skald_system_stop(sys);
	checks_ok();
}

Test(tell, flooded_actor_does_not_starve_peer_told_from_outside)
{
	/* The flood ends as soon as the peer is served; its length only bounds
	 * how long a starved peer is waited for, and is large so that a slow
	 * test thread cannot miss it. */
	enum { LONG_FLOOD = 10 * FLOOD };
	skald_system_t *sys = sys_start(1, 0);
	flood_ctx_t ctx = {.flood = LONG_FLOOD, .stop_when_served = 1};
	skald_ref_t peer = spawn_on(sys, &peer_behavior, &ctx, 0);
	skald_ref_t flooder = spawn_on(sys, &flood_behavior, &ctx, 0);
	tell_int(sys, flooder, 0);
	AWAIT(atomic_load(&ctx.processed) >= WINDOW, WAIT_MS);
	tell_int(sys, peer, 0);
	AWAIT(atomic_load(&ctx.finished), 60000);
	long seen = atomic_load(&ctx.peer_seen);
	cr_assert_gt(seen, 0, "the peer was never served");
	cr_assert_lt(seen - 1, LONG_FLOOD, "the peer was served only after the flood");
	skald_system_stop(sys);
	checks_ok();
}

/* The configured budget: with two actors of one thread both holding a
 * backlog, no turn handles more than `budget` messages. */
enum { BACKLOG = 100, LOG_MAX = 2 * BACKLOG };

typedef struct turns_ctx_s {
	atomic_int busy;
	atomic_int release;
	atomic_int logged;
	char log[LOG_MAX]; /* which actor handled each message, in order */
} turns_ctx_t;

typedef struct turns_state_s {
	turns_ctx_t *ctx;
	char name;
} turns_state_t;

static atomic_int turns_next_name;

static int turns_init(skald_actor_t *self, void *state, void *arg)
{
	turns_state_t *st = state;
	st->ctx = arg;
	st->name = (char)('A' + atomic_fetch_add(&turns_next_name, 1));
	return 0;
}

static int turns_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	turns_state_t *st = state;
	turns_ctx_t *ctx = st->ctx;
	/* Every actor here shares one thread, so the log needs no lock. */
	int n = atomic_load(&ctx->logged);
	if (n < LOG_MAX)
		ctx->log[n] = st->name;
	atomic_store(&ctx->logged, n + 1);
	return 0;
}

static const skald_behavior_t turns_behavior = {
        .state_size = sizeof(turns_state_t),
        .init = turns_init,
        .receive = turns_receive,
};

static int blocker_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	turns_ctx_t *ctx = *(turns_ctx_t **)state;
	/* Hold the thread (bounded) while the test fills both backlogs. */
	atomic_store(&ctx->busy, 1);
	uint64_t end = now_ms() + WAIT_MS;
	while (!atomic_load(&ctx->release) && now_ms() < end)
		sleep_ms(1);
	return 0;
}

static const skald_behavior_t blocker_behavior = {
        .state_size = sizeof(void *),
        .init = ptr_init,
        .receive = blocker_receive,
};

/* The longest run of consecutive messages handled by one actor. */
static int longest_turn(skald_system_t *sys)
{
	turns_ctx_t *ctx = calloc(1, sizeof(*ctx));
	cr_assert_not_null(ctx);
	skald_ref_t a = spawn_on(sys, &turns_behavior, ctx, 0);
	skald_ref_t b = spawn_on(sys, &turns_behavior, ctx, 0);
	skald_ref_t blocker = spawn_on(sys, &blocker_behavior, ctx, 0);
	tell_int(sys, blocker, 0);
	AWAIT(atomic_load(&ctx->busy), WAIT_MS);
	for (int i = 0; i < BACKLOG; i++) {
		tell_int(sys, a, 0);
		tell_int(sys, b, 0);
	}
	atomic_store(&ctx->release, 1);
	AWAIT(atomic_load(&ctx->logged) == LOG_MAX, WAIT_MS);
	int longest = 0, run = 0;
	for (int i = 0; i < LOG_MAX; i++) {
		run = i > 0 && ctx->log[i] == ctx->log[i - 1] ? run + 1 : 1;
		if (run > longest)
			longest = run;
	}
	free(ctx);
	return longest;
}

Test(tell, configured_budget_bounds_messages_per_turn)
{
	skald_system_t *sys = sys_start(1, 4);
	int longest = longest_turn(sys);
	cr_assert_eq(longest, 4, "longest turn %d messages, budget 4", longest);
	skald_system_stop(sys);
}

Test(tell, default_budget_is_64_messages_per_turn)
{
	skald_system_t *sys = sys_start(1, 0);
	int longest = longest_turn(sys);
	cr_assert_eq(longest, 64, "longest turn %d messages, default budget 64", longest);
	skald_system_stop(sys);
}

/* ------------------------------------------------------------------------ */
/* Wake-ups: a sleeping thread is always woken by an outside send           */

Test(tell, outside_sends_always_wake_the_receiving_thread)
{
	/* Bursts of one message to each of many idle actors of one thread: every
	 * send makes an actor runnable, and the sender's wake-ups race the
	 * thread's own last look before it sleeps, thousands of times. */
	enum { ACTORS = 100, BURSTS = 3000 };
	skald_system_t *sys = sys_start(2, 0);
	slot_ctx_t ctx = {0};
	skald_ref_t r[ACTORS];
	for (int i = 0; i < ACTORS; i++)
		r[i] = spawn_on(sys, &slot_behavior, &ctx, 1);
	for (long b = 0; b < BURSTS; b++) {
		for (int i = 0; i < ACTORS; i++)
			tell_int(sys, r[i], 1);
		long want = (b + 1) * ACTORS;
		uint64_t end = now_ms() + 2000;
		while (atomic_load(&ctx.received) < want && now_ms() < end)
			sleep_ms(0);
		cr_assert_eq(atomic_load(&ctx.received), want,
		             "burst %ld: %ld of %ld messages handled after 2 s", b,
		             atomic_load(&ctx.received), want);
	}
	skald_system_stop(sys);
}
