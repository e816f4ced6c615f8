/*
 * actors/internal.h - the runtime's private structures. Never installed.
 *
 * Map of the runtime:
 *   system.c   systems, scheduler threads, graceful stop
 *   sched.c    run queues, turns, the send path, dead letters
 *   actor.c    spawn, stop, termination, supervision
 *   slots.c    the table that turns references into actors safely
 *   ask.c      ask, reply and the blocking ask for outside threads
 *   watch.c    watch and down notices
 *   timer.c    actor timers
 *   types.c    the message type registry
 */
#ifndef SKALD_ACTORS_INTERNAL_H
#define SKALD_ACTORS_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <uv.h>

#include "skald/actor.h"
#include "actors/layer.h"
#include "base/log.h"
#include "base/metrics_int.h"
#include "actors/mpsc.h"

typedef struct skald__thread_s skald__thread_t;

/* Message type ids below this one belong to built-in types: SKALD_TYPE_DOWN
 * (the runtime's own), SKALD_TYPE_NODE (the network layer's),
 * SKALD_TYPE_MEMBER, SKALD_TYPE_NAME_LOST and SKALD_TYPE_GROUP (the
 * cluster's: 3 to 5), all but the first installed with
 * skald__type_install. Ids 6 to 9 are kept free for the registry's next
 * built-in types; 10 to 15 are sharding's (sharding/sharding_int.h). */
#define SKALD__TYPE_FIRST_USER 16u

/* What an envelope carries. */
enum {
	ENV_USER = 0,   /* a user message; corr != 0 for an ask */
	ENV_REPLY,      /* reply to ask corr */
	ENV_ASK_FAIL,   /* ask corr failed with `arg` */
	ENV_DOWN,       /* sender stopped with `arg` (becomes SKALD_TYPE_DOWN) */
	ENV_STOP,       /* stop the receiver, reason `arg` */
	ENV_WATCH,      /* sender watches the receiver */
	ENV_UNWATCH,    /* sender no longer watches the receiver */
	ENV_FAILED,     /* child `sender` failed with `arg` */
	ENV_DIRECTIVE,  /* parent's decision `arg` for a failed child */
	ENV_CHILD_DONE, /* child `sender` terminated */
};

/* A message in flight. One allocation per send; the payload moves with it. */
typedef struct skald__env_s {
	skald__mpsc_node_t node; /* first: the mailbox links envelopes */
	uint32_t type;
	uint16_t kind;
	uint16_t pad;
	skald_ref_t sender;
	uint64_t corr;
	void *payload;
	int64_t arg;
	uint64_t arg2;
} skald__env_t;

/* Actor flags, touched only by the owning thread. */
enum {
	AF_INITED = 1u << 0,
	AF_RUNNING = 1u << 1,    /* inside a turn: the turn frees it if needed */
	AF_STOP_REQ = 1u << 2,   /* skald_stop_self: terminate after the callback */
	AF_SUSPENDED = 1u << 3,  /* failed, waiting for the parent's directive */
	AF_TERMINATED = 1u << 4, /* stop callback ran; memory freed when unqueued */
	AF_PAUSED = 1u << 5,     /* mailbox processing held (persistence) */
};

/* The seldom-used parts of an actor, allocated on first use, so that an idle
 * actor stays small. */
typedef struct skald__refset_s {
	skald_ref_t *v;
	uint32_t n, cap;
} skald__refset_t;

struct skald__timer_s;

typedef struct skald__actor_ext_s {
	skald__refset_t children;
	skald__refset_t watchers;      /* who watches me */
	skald__refset_t watching;      /* whom I watch */
	struct skald__timer_s *timers; /* the user's timers and pending asks */
	uint64_t next_timer_id;
	/* Supervision of this actor by its parent. */
	unsigned restarts;
	uint64_t window_start_ms;
	int fail_reason;
	/* Messages held while suspended, handled first on resume. */
	skald__env_t *stash_head, *stash_tail;
} skald__actor_ext_t;

struct skald_actor_s {
	skald__mpsc_t mailbox;
	skald__mpsc_node_t rq; /* link in a run queue */
	_Atomic int sched;     /* 0 idle, 1 queued or running */
	uint32_t flags;
	const skald_behavior_t *behavior;
	void *state;
	void *arg;
	skald__thread_t *thread;
	skald_ref_t ref;
	skald_ref_t parent;
	struct skald_actor_s *prev, *next; /* the thread's list of actors */
	skald__actor_ext_t *ext;
	/* state_size bytes of state follow, aligned */
};

struct skald__thread_s {
	skald_system_t *sys;
	unsigned index;
	uv_thread_t tid;
	uv_loop_t loop;
	uv_async_t wake;
	uv_idle_t runner;
	skald__mpsc_t inbound;                 /* actors made runnable by other threads */
	_Atomic int sleeping;                  /* 1: other threads must wake us */
	skald__mpsc_node_t *rq_head, *rq_tail; /* local run queue */
	skald_actor_t *actors;                 /* live actors of this thread */
	uint64_t next_ask_id;
	uint64_t last_work; /* uv_hrtime() of the last turn, for the idle spin */
	bool shutting_down;
	/* Per-thread contexts of upper layers (the journal's handle and write
	 * batcher), created lazily on this thread and finished in phase 2 of
	 * the graceful stop, while the loop still runs. */
	struct {
		void *ctx;
		void (*fini)(void *ctx);
	} layer[SKALD__LAYERS];
	_Atomic uint64_t delivered; /* written by this thread only */
	_Atomic uint64_t late_replies;
	char pad[64];
};

/* The slot table (slots.c). */
typedef struct skald__slot_s {
	_Atomic uint64_t word; /* incarnation << 32 | pins << 1 | alive */
	_Atomic(skald_actor_t *) actor;
	/* Why the slot's last actor stopped: its incarnation << 32 | the
	 * reason as uint32_t; kept until the slot's next actor stops, so that
	 * senders who raced the stop learn why (skald__slot_reason). */
	_Atomic uint64_t last_stop;
} skald__slot_t;

#define SKALD__SLOT_PAGE_BITS 12
#define SKALD__SLOT_PAGE_SIZE (1u << SKALD__SLOT_PAGE_BITS)
#define SKALD__SLOT_PAGES     65536u

typedef struct skald__slots_s {
	_Atomic(skald__slot_t *) pages[SKALD__SLOT_PAGES];
	uv_mutex_t lock;
	uint32_t *free; /* stack of free slot indices */
	uint32_t nfree, capfree;
	uint32_t next; /* first never-used index */
} skald__slots_t;

struct skald_system_s {
	uint64_t node;
	unsigned nthreads;
	unsigned budget;
	char name[64];
	char *journal_uri; /* as configured: NULL when none */
	skald__thread_t *threads;
	/* The transport to other nodes (actors/transport.h); NULL until a
	 * network layer installs one. transport_ctx is written first. */
	_Atomic(const struct skald__transport_s *) transport;
	void *transport_ctx;
	skald__slots_t slots;
	_Atomic unsigned next_thread; /* round-robin placement */
	_Atomic int stopping;
	_Atomic int spawning; /* spawns under way, for a race-free stop */
	_Atomic uint64_t live_actors;
	_Atomic uint64_t spawned;
	_Atomic uint64_t dead_letters;
	skald__msource_t metrics; /* the counts above, read by /metrics */
	/* Phase barrier of the graceful stop. */
	uv_mutex_t stop_lock;
	uv_cond_t stop_cond;
	unsigned phase1_done;
	bool shutdown_requested;
};

/* The thread the caller runs on, if it is one of a system's schedulers. */
extern _Thread_local skald__thread_t *skald__current;

/* Counters written by one thread only: a plain load and store suffice, and
 * readers on other threads see a recent value. */
static inline void skald__bump(_Atomic uint64_t *c)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
	                      memory_order_relaxed);
}

/* types.c: a type's codec, chosen or written by hand. encode and decode
 * return 0, SKALD_ENOCODEC (none), SKALD_EENCODE or SKALD_EDECODE (or the
 * codec's own code); free uses the type's free, else its codec's. */
int skald__type_encode(const skald_msgtype_t *t, const void *payload, void **out, size_t *len);
int skald__type_decode(const skald_msgtype_t *t, const void *data, size_t len, void **payload);
void skald__type_free(const skald_msgtype_t *t, void *payload);

/* slots.c */
int skald__slots_init(skald__slots_t *s);
void skald__slots_fini(skald__slots_t *s);
int skald__slot_alloc(skald__slots_t *s, skald_actor_t *a, uint32_t *index, uint32_t *inc);
skald_actor_t *skald__slot_pin(skald_system_t *sys, skald_ref_t ref, skald__slot_t **slot);
void skald__slot_unpin(skald__slot_t *slot);
/* Makes the slot unreachable for new senders, recording why its actor
 * stops, and waits for the pins to drain. */
void skald__slot_kill(skald__slots_t *s, uint32_t index, int reason);
/* Why the actor of ref is not there: the failure it stopped with, if it is
 * the slot's last actor and stopped with one, else SKALD_ENOACTOR. */
int skald__slot_reason(skald_system_t *sys, skald_ref_t ref);
void skald__slot_free(skald__slots_t *s, uint32_t index);

/* sched.c */
skald__env_t *skald__env_new(uint16_t kind, uint32_t type, skald_ref_t sender, void *payload);
void skald__env_free(skald__env_t *e);
/* Frees e as a dead letter for `to`, telling who needs to know: an asker
 * (ask failed with `reason`), a watcher (down with `reason`), a failed child
 * (stop). */
void skald__env_dispose(skald_system_t *sys, skald_ref_t to, skald__env_t *e, int reason);
/* Delivers e to `to`: 0 when e was consumed (delivered, sent to the network,
 * or disposed of as a dead letter), or a negative code when it was not
 * (remote only: the transport's send errors, see actors/transport.h); then
 * the caller still owns e. */
int skald__deliver(skald_system_t *sys, skald_ref_t to, skald__env_t *e);
/* skald__deliver, disposing of e as a dead letter if it fails. */
void skald__send(skald_system_t *sys, skald_ref_t to, skald__env_t *e);
/* Frees e but not its payload, which stays the caller's. */
void skald__env_release(skald__env_t *e);
void skald__send_sys(skald_system_t *sys, skald_ref_t to, uint16_t kind, skald_ref_t sender,
                     int64_t arg);
void skald__schedule(skald_actor_t *a);
void skald__thread_wake_cb(uv_async_t *h);
/* Moves the actors other threads made runnable into t's run queue. */
void skald__thread_drain(skald__thread_t *t);
void skald__thread_runner_cb(uv_idle_t *h);
void skald__rq_drain_free(skald__thread_t *t);
uint64_t skald__mono_ms(void);

/* actor.c */
skald__actor_ext_t *skald__ext(skald_actor_t *a);
void skald__dispatch(skald_actor_t *a, skald__env_t *e);
void skald__actor_link(skald_actor_t *a);
int skald__actor_init(skald_actor_t *a);
void skald__actor_free(skald_actor_t *a);
int skald__refset_add(skald__refset_t *s, skald_ref_t r);
int skald__refset_del(skald__refset_t *s, skald_ref_t r);
int skald__refset_has(const skald__refset_t *s, skald_ref_t r);
void skald__refset_fini(skald__refset_t *s);

/* ask.c */
/* Registers a pending ask (callback, timeout) whose request the caller
 * sends itself, carrying *corr (lookups through the network thread). */
int skald__ask_pending(skald_actor_t *self, uint64_t timeout_ms, skald_reply_fn cb, void *arg,
                       uint64_t *corr);
void skald__ask_complete(skald_actor_t *a, skald__env_t *e);
/* Closes k, a pending ask's timer, then runs the ask's callback with status
 * and reply (NULL unless status is 0). */
void skald__ask_finish(struct skald__timer_s *k, int status, skald_msg_t *reply);

/* watch.c */
void skald__watch_add(skald_actor_t *a, skald_ref_t watcher);
void skald__watch_notify(skald_actor_t *a, int reason);
void skald__down_deliver(skald_actor_t *a, skald__env_t *e);
void skald__down_send(skald_system_t *sys, skald_ref_t watcher, skald_ref_t target, int reason);

/* timer.c: the timers an actor owns on its loop, in one list per actor:
 * the user's (skald_timer_start) and the timeouts of pending asks. */
enum { SKALD__TIMER_USER = 1, SKALD__TIMER_ASK };

typedef struct skald__timer_s {
	uv_timer_t h;
	skald_actor_t *owner;
	struct skald__timer_s *next, *prev;
	int kind;    /* SKALD__TIMER_* */
	uint64_t id; /* unique per kind: per actor (USER), per thread (ASK) */
	/* Runs on the owner's thread when the timer fires. */
	void (*expire)(struct skald__timer_s *t);
	union {
		skald_timer_fn timer;
		skald_reply_fn reply;
	} fn;
	void *arg;
	bool repeat;
} skald__timer_t;

/* Starts a timer of kind with id for a (owner thread only), linked to a;
 * expire(t) runs when it fires, after after_ms and then every repeat_ms
 * (0: once; the timer stays linked until closed). NULL with *err set
 * (SKALD_ENOMEM, a libuv code) on failure. */
skald__timer_t *skald__timer_new(skald_actor_t *a, int kind, uint64_t id, uint64_t after_ms,
                                 uint64_t repeat_ms, void (*expire)(skald__timer_t *t), int *err);
/* a's timer of kind with id, or NULL. */
skald__timer_t *skald__timer_find(skald_actor_t *a, int kind, uint64_t id);
/* Unlinks t and closes it; its memory goes in the close callback. */
void skald__timer_close(skald__timer_t *t);
/* Ends every timer of a, when it stops or restarts: pending asks complete
 * with SKALD_ECANCELED (their callbacks run), the user's timers close
 * silently. */
void skald__timers_cancel(skald_actor_t *a);

#endif /* SKALD_ACTORS_INTERNAL_H */
