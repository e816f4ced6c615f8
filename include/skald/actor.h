/*
 * skald/actor.h - the runtime of one node: systems, actors, messages.
 *
 * A system is one node: N scheduler threads, each running its own libuv loop.
 * An actor lives on one thread for its whole life, so its callbacks never run
 * concurrently and never need a lock. Every callback of an actor (init,
 * receive, stop, timer and ask callbacks) runs on that thread.
 *
 * Actors are reached through references (skald_ref_t), small values that can
 * be copied freely and put inside messages. A message sent to an actor that
 * has stopped, or through a stale reference, is a dead letter: it is counted,
 * logged at debug level and freed, never delivered to another actor.
 *
 * Threading: functions taking a skald_actor_t * may be called only from that
 * actor's own callbacks (its thread). Functions taking a skald_system_t * are
 * safe from any thread unless said otherwise.
 */
#ifndef SKALD_ACTOR_H
#define SKALD_ACTOR_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct skald_system_s skald_system_t;
typedef struct skald_actor_s skald_actor_t;

/* ------------------------------------------------------------------------ */
/* References                                                                */

/*
 * A reference to an actor, local or remote. `node` identifies the system
 * (random per system start, so a restarted node never matches an old
 * reference); `actor` is the slot of the actor on that node; `incarnation`
 * tells apart successive actors in one slot. The all-zero value is the null
 * reference (SKALD_REF_NULL), which no actor ever has.
 */
typedef struct skald_ref_s {
	uint64_t node;
	uint32_t actor;
	uint32_t incarnation;
} skald_ref_t;

#define SKALD_REF_NULL ((skald_ref_t){0, 0, 0})

/* Non-zero if a and b are the same reference. */
int skald_ref_eq(skald_ref_t a, skald_ref_t b);
/* Non-zero if r is the null reference. */
int skald_ref_is_null(skald_ref_t r);
/* Writes "node.actor.incarnation" (hex node) into buf; returns buf. 48 bytes
 * are always enough. */
char *skald_ref_str(skald_ref_t r, char *buf, size_t len);

/* ------------------------------------------------------------------------ */
/* Message types                                                             */

typedef struct skald_codec_s skald_codec_t;

/*
 * A message type, registered once per process by name. Local delivery moves
 * the payload pointer from sender to receiver and never serializes; the
 * codec is used only when a message crosses a node boundary. A codec is
 * either chosen (`codec`, below: no code to write) or written by hand
 * (encode and decode).
 *
 * The definition must stay valid for the life of the process (make it
 * static const).
 */
typedef struct skald_msgtype_s {
	/* Unique name, e.g. "chat.say". Compared exactly. Required. */
	const char *name;
	/* Frees a payload the runtime owns (dead letters, a receive that did not
	 * take the payload, system shutdown). NULL: payloads are not owned and
	 * nothing is freed (e.g. NULL payloads, static data, small integers
	 * carried in the pointer). */
	void (*free)(void *payload);
	/* Optional codec for remote delivery. encode writes a malloc'ed buffer
	 * into *out and *len (the runtime frees it); decode builds a payload from
	 * bytes it does not own. Return 0 or a negative code. */
	int (*encode)(const void *payload, void **out, size_t *len);
	int (*decode)(const void *data, size_t len, void **payload);
	/* A ready-made codec instead of encode and decode (which stay NULL):
	 *   &skald_codec_json   the payload is a json_t * (jansson), an owned
	 *                       reference; it crosses as compact JSON text.
	 *   &skald_codec_fixed  the payload is a malloc'ed block of `size`
	 *                       bytes of plain data (a struct of numbers and
	 *                       char arrays, no pointers); it crosses as those
	 *                       bytes, so both nodes must share the struct's
	 *                       layout (same build, same architecture).
	 * With a codec, a NULL free means the codec's: json_decref for JSON,
	 * free() for fixed. */
	const skald_codec_t *codec;
	size_t size; /* &skald_codec_fixed: the payload's size in bytes */
} skald_msgtype_t;

/* A codec that a type chooses (skald_msgtype_t.codec). Its members take
 * the type, so that one codec serves many types; they return 0 or a
 * negative code (SKALD_EDECODE for bytes that are not a payload). */
struct skald_codec_s {
	const char *name;
	int sized; /* 1: the type must give its size */
	int (*encode)(const skald_msgtype_t *t, const void *payload, void **out, size_t *len);
	int (*decode)(const skald_msgtype_t *t, const void *data, size_t len, void **payload);
	void (*free)(void *payload);
};

/* The ready-made codecs (see skald_msgtype_t.codec). */
extern const skald_codec_t skald_codec_json;
extern const skald_codec_t skald_codec_fixed;

/*
 * Registers def and stores its process-wide id in *id (ids are > 0).
 * Registering the same definition (same pointer, or same name with the same
 * callbacks and codec) again returns the same id. Errors: SKALD_EINVAL (NULL
 * or no name; a codec together with encode or decode; &skald_codec_fixed
 * without a size),
 * SKALD_ETYPEEXISTS (the name is taken by a different definition),
 * SKALD_ETOOMANY. Thread-safe.
 */
int skald_type_register(const skald_msgtype_t *def, uint32_t *id);
/* The id registered under name, or SKALD_ENOTYPE. Thread-safe. */
int skald_type_lookup(const char *name, uint32_t *id);
/* The definition of id, or NULL if id is not registered. Borrowed. */
const skald_msgtype_t *skald_type_get(uint32_t id);
/* Frees payload of type id as the runtime would: with the type's free, else
 * its codec's; nothing for NULL or an unknown id. For payloads taken with
 * skald_msg_take, or kept after a send failed. Any thread. */
void skald_payload_free(uint32_t id, void *payload);

/* Built-in type of down notices (see skald_watch); payload skald_down_t,
 * owned and freed by the runtime after receive. */
#define SKALD_TYPE_DOWN 1u

typedef struct skald_down_s {
	skald_ref_t ref; /* the actor that stopped */
	int reason;      /* 0: stopped normally; SKALD_ESTOPPING: system
	                    shutdown; otherwise the error it failed with (its
	                    handler's code, or an entity's journal failure:
	                    SKALD_EBACKEND, SKALD_ECONFLICT, SKALD_EURI...);
	                    SKALD_ENOACTOR: it was already gone when watched
	                    and did not fail, or is not known */
} skald_down_t;

/* A message as seen by a receive, reply or command callback. Borrowed for
 * the duration of the callback; the payload is freed by the runtime
 * afterwards unless the callback calls skald_msg_take(). */
typedef struct skald_msg_s {
	uint32_t type;      /* registered type id */
	void *payload;      /* owned by the runtime until taken */
	skald_ref_t sender; /* SKALD_REF_NULL when sent from outside an actor */
	uint64_t ask_id;    /* non-zero when the sender awaits a reply */
} skald_msg_t;

/* Takes ownership of the payload of msg, a message the runtime passed to the
 * running callback: the runtime will not free it. Returns the payload (the
 * caller frees it with skald_payload_free) and sets msg->payload to NULL. */
void *skald_msg_take(skald_msg_t *msg);

/* ------------------------------------------------------------------------ */
/* Behaviours and supervision                                                */

/* What a parent decides when one of its children's handlers fails. */
typedef enum {
	SKALD_RESTART = 1,  /* stop callback, fresh zeroed state, init again */
	SKALD_STOP = 2,     /* stop the child; its watchers see the error */
	SKALD_ESCALATE = 3, /* stop the child and fail the parent itself */
} skald_directive_t;

/*
 * An actor's behaviour: a static table of callbacks. Only receive is
 * required. Any callback returning a negative code is a failure of that
 * actor's handler: the actor suspends (no further messages are handled) and
 * its parent decides what happens (see on_child_failure). An actor spawned
 * from outside any actor has no parent and is stopped on failure.
 */
typedef struct skald_behavior_s {
	/* Bytes of state allocated with the actor, zeroed before init. */
	size_t state_size;
	/* Runs on the actor's thread before any message. arg is the pointer
	 * given to spawn, passed again on every restart; it must outlive the
	 * actor (see free_arg). Optional. */
	int (*init)(skald_actor_t *self, void *state, void *arg);
	/* Handles one message. Required. */
	int (*receive)(skald_actor_t *self, void *state, skald_msg_t *msg);
	/* Runs once when the actor stops (and before a restart), with 0 for a
	 * normal stop or the reason. Must release what init acquired. Optional. */
	void (*stop)(skald_actor_t *self, void *state, int reason);

	/* If set, the actor owns its spawn argument: free_arg(arg) runs once,
	 * on the actor's thread, after its final stop (not on restarts). When
	 * spawn fails the caller still owns arg. Optional. */
	void (*free_arg)(void *arg);

	/* Supervision of this actor's children. Called on this actor's thread
	 * when a child fails with err; NULL means SKALD_RESTART. */
	skald_directive_t (*on_child_failure)(skald_actor_t *self, void *state, skald_ref_t child,
	                                      int err);
	/* A child restarted more than max_restarts times within
	 * restart_window_ms is stopped instead (reason SKALD_ERESTARTLIMIT).
	 * 0 and 0 mean the defaults: 10 restarts within 10 s. */
	unsigned max_restarts;
	unsigned restart_window_ms;
} skald_behavior_t;

/* ------------------------------------------------------------------------ */
/* Systems                                                                   */

typedef struct skald_config_s {
	/* Scheduler threads; 0 means the number of cores. */
	unsigned threads;
	/* Messages one actor handles per turn before others get a turn; 0 means
	 * the default (64). */
	unsigned budget;
	/* Node name used in logs and, later, in the cluster. NULL: "skald". */
	const char *name;
	/* The journal of this system's persistent entities (see entity.h), as
	 * a URI (copied). NULL: the environment variable SKALD_JOURNAL, or
	 * "memory://default" when that is unset or empty ("Which journal" in
	 * skald/journal.h). */
	const char *journal;
} skald_config_t;

/*
 * Starts a system with cfg (NULL: defaults) and stores it in *out. Threads are
 * running when this returns. When the program links the journal (it uses
 * entities or skald/journal.h), the journal the system's entities will use
 * is checked first, as its store parses it (scheme and options, without
 * connecting): a bad one fails here rather than at the first entity, and
 * skald_journal_open_errmsg() on the calling thread says why. A store
 * registered by the application must be registered before. Errors:
 * SKALD_EINVAL, SKALD_ESCHEME (no store for the URI's scheme), SKALD_EURI
 * (no scheme, a malformed URI or option), SKALD_ENOMEM, libuv codes.
 */
int skald_system_new(const skald_config_t *cfg, skald_system_t **out);

/*
 * Stops the system gracefully and waits: every live actor's stop callback
 * runs (reason SKALD_ESTOPPING) on its thread, queued messages are freed,
 * timers are cancelled and loops close. Then frees sys. Must not be called
 * from an actor's thread (use skald_system_shutdown there). Safe with NULL.
 */
void skald_system_stop(skald_system_t *sys);

/* Asks the system to stop without waiting: skald_system_wait() returns.
 * Safe from any thread, including actors'. */
void skald_system_shutdown(skald_system_t *sys);

/* Blocks until skald_system_shutdown() has been called. Not from an actor. */
void skald_system_wait(skald_system_t *sys);

/* This system's node id (the `node` of every local reference); 0 for NULL. */
uint64_t skald_system_node(const skald_system_t *sys);
/* The number of scheduler threads of sys; 0 for NULL. */
unsigned skald_system_threads(const skald_system_t *sys);

typedef struct skald_stats_s {
	uint64_t live_actors;
	uint64_t spawned;
	uint64_t delivered;    /* messages handed to receive callbacks */
	uint64_t dead_letters; /* messages to stopped or unknown actors */
	uint64_t late_replies; /* replies that arrived after their ask ended */
} skald_stats_t;

/* Writes a snapshot of the counters into *out; approximate while actors
 * run. Errors: SKALD_EINVAL (NULL argument). */
int skald_system_stats(skald_system_t *sys, skald_stats_t *out);

/* ------------------------------------------------------------------------ */
/* Spawning and stopping                                                     */

#define SKALD_SPAWN_PIN 1u /* place the actor on thread `thread` */

typedef struct skald_spawn_opts_s {
	unsigned flags;  /* SKALD_SPAWN_* */
	unsigned thread; /* with SKALD_SPAWN_PIN: index, taken modulo threads */
} skald_spawn_opts_t;

/*
 * Spawns a top-level actor (no parent) from any thread. Placement by default
 * is round-robin over the threads. The reference is valid at once: messages
 * sent to it wait until init has run. opts may be NULL. arg is the
 * behaviour's (see free_arg) once the call returns 0; on error the caller
 * still owns it. Errors: SKALD_EINVAL (NULL argument, no receive callback),
 * SKALD_ENOMEM, SKALD_ESTOPPING, SKALD_ETOOMANY (no free actor slot).
 */
int skald_spawn(skald_system_t *sys, const skald_behavior_t *b, void *arg,
                const skald_spawn_opts_t *opts, skald_ref_t *out);

/*
 * Spawns a child of self: self supervises it, and it is stopped when self
 * stops. By default the child lives on self's thread (messages between them
 * never cross threads). arg and errors as skald_spawn.
 */
int skald_spawn_child(skald_actor_t *self, const skald_behavior_t *b, void *arg,
                      const skald_spawn_opts_t *opts, skald_ref_t *out);

/* Stops self after the current callback returns, with reason 0. */
void skald_stop_self(skald_actor_t *self);

/* Stops the actor `ref` with reason 0, after the messages already queued for
 * it from the caller. A stale reference is a no-op. Any thread. Errors:
 * SKALD_EINVAL (NULL system, null reference), SKALD_ENOMEM. */
int skald_stop(skald_system_t *sys, skald_ref_t ref);

/* ------------------------------------------------------------------------ */
/* Messaging                                                                 */

/*
 * Sends payload of type `type` to `to`, from self. On 0 the payload belongs
 * to the runtime (it reaches the receiver, or is freed as a dead letter);
 * on error the caller still owns it. Messages from one sender to one receiver
 * arrive in the order sent. A message to an actor that is gone, or to a node
 * that is not connected, is a dead letter, not an error.
 * Errors: SKALD_EINVAL (NULL self, null reference), SKALD_ENOTYPE
 * (unregistered type), SKALD_ENOMEM; and for an actor on another node:
 * SKALD_ENOCODEC (the type has no codec), SKALD_EENCODE (its encode
 * failed), SKALD_EPROTO (larger than the largest frame), SKALD_EQUEUEFULL
 * (the queue to that node is full).
 */
int skald_tell(skald_actor_t *self, skald_ref_t to, uint32_t type, void *payload);

/* As skald_tell, from outside any actor (the sender is SKALD_REF_NULL). Any
 * thread. Ownership and errors as skald_tell (SKALD_EINVAL for a NULL
 * system). */
int skald_system_tell(skald_system_t *sys, skald_ref_t to, uint32_t type, void *payload);

/*
 * Called on self's thread with the outcome of an ask: status 0 with the reply
 * (borrowed as in receive; take its payload with skald_msg_take), or a
 * negative status with reply NULL: SKALD_ETIMEDOUT, SKALD_ENOACTOR (the target
 * did not exist, or stopped normally), the error the target failed with if
 * it stopped on a failure before handling the request (an entity whose
 * journal failed: SKALD_EBACKEND; a write conflict: SKALD_ECONFLICT; a bad
 * journal URI: SKALD_EURI; see skald_down_t), SKALD_ECANCELED (self is
 * stopping or restarting). A stopped actor's reason is kept until the next
 * actor in its slot stops, so senders that raced the stop get it too.
 */
typedef void (*skald_reply_fn)(skald_actor_t *self, void *state, int status, skald_msg_t *reply,
                               void *arg);

/*
 * Sends a request and calls cb exactly once, on self's thread, with the reply
 * or a timeout after timeout_ms. A reply that arrives after the timeout is
 * dropped and counted as late. Ownership of payload as skald_tell; arg is
 * passed to cb as is. Errors as skald_tell (SKALD_EINVAL also for a NULL
 * cb), SKALD_ENOTOWNER (not on self's thread), libuv codes (the timer);
 * on error cb is never called.
 */
int skald_ask(skald_actor_t *self, skald_ref_t to, uint32_t type, void *payload,
              uint64_t timeout_ms, skald_reply_fn cb, void *arg);

/*
 * Replies to request, a message self received. If the request was an ask,
 * the reply completes it; otherwise it is a plain tell to the sender. Only
 * request->sender and request->ask_id are read, so a copy of the request
 * kept by value may be answered later from any callback of self (an entity
 * answers once its events are stored). A request from outside any actor
 * (null sender) makes the reply a dead letter. Ownership of payload and
 * errors as skald_tell.
 */
int skald_reply(skald_actor_t *self, const skald_msg_t *request, uint32_t type, void *payload);

/*
 * Blocking ask from a thread that is not one of sys's (main, tests, tools).
 * The request's sender is a short-lived actor that exists only to take the
 * reply (it counts in the stats like any actor); once the call has returned
 * it is gone, so a reply after the timeout is a dead letter.
 * On 0, *reply_type and *reply_payload hold the reply; the caller owns the
 * reply payload. Errors as skald_reply_fn's status, and SKALD_ENOTOWNER when
 * called from a scheduler thread. The request payload is consumed, except
 * when the call fails with SKALD_EINVAL, SKALD_ENOTYPE, SKALD_ENOTOWNER,
 * SKALD_ENOMEM or SKALD_ESTOPPING, which are detected before sending.
 */
int skald_system_ask(skald_system_t *sys, skald_ref_t to, uint32_t type, void *payload,
                     uint64_t timeout_ms, uint32_t *reply_type, void **reply_payload);

/* ------------------------------------------------------------------------ */
/* Watch                                                                     */

/*
 * self will receive one message of type SKALD_TYPE_DOWN when `target` stops,
 * with the reason. If target is already gone, the notice comes at once with
 * the reason it failed with, or SKALD_ENOACTOR. Watching twice still gives one notice. Errors:
 * SKALD_EINVAL (NULL self, null reference, or self), SKALD_ENOMEM.
 */
int skald_watch(skald_actor_t *self, skald_ref_t target);
/* Cancels a watch; a notice already sent may still arrive. Unwatching what
 * self does not watch is a no-op. Errors: SKALD_EINVAL (NULL self, null
 * reference). */
int skald_unwatch(skald_actor_t *self, skald_ref_t target);

/* ------------------------------------------------------------------------ */
/* Timers                                                                    */

typedef void (*skald_timer_fn)(skald_actor_t *self, void *state, void *arg);

/*
 * Calls fn on self's thread after `after_ms`, then every repeat_ms if
 * repeat_ms > 0. Timers are cancelled when self stops or restarts. The id in
 * *id (may be NULL) is unique for the life of the actor. arg is passed to fn
 * as is. Errors: SKALD_EINVAL (NULL self or fn), SKALD_ENOTOWNER (not on
 * self's thread), SKALD_ENOMEM, libuv codes.
 */
int skald_timer_start(skald_actor_t *self, uint64_t after_ms, uint64_t repeat_ms, skald_timer_fn fn,
                      void *arg, uint64_t *id);
/* Cancels a timer. Errors: SKALD_EINVAL (NULL self), SKALD_ENOTFOUND (it
 * already fired, if it fires once, or is unknown). */
int skald_timer_cancel(skald_actor_t *self, uint64_t id);

/* ------------------------------------------------------------------------ */
/* Inside an actor                                                           */

/* The reference of self. */
skald_ref_t skald_self(const skald_actor_t *self);
/* The system self lives in. */
skald_system_t *skald_actor_system(const skald_actor_t *self);
/* The actor's parent, or SKALD_REF_NULL for a top-level actor. */
skald_ref_t skald_parent(const skald_actor_t *self);
/* The actor's state (the same pointer its callbacks receive). */
void *skald_actor_state(const skald_actor_t *self);

#ifdef __cplusplus
}
#endif
#endif /* SKALD_ACTOR_H */
