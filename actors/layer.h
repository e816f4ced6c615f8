/*
 * actors/layer.h - what the runtime offers the layers built on it (the
 * journal's persistent entities, sharding). Never installed. A layer includes this
 * header, never actors/internal.h: the actor's and the thread's structures
 * stay the runtime's.
 *
 * Threads: an actor lives on one scheduler thread, its owner. Every function
 * here that takes an actor must be called on that thread: from one of the
 * actor's callbacks, or from a completion that runs on the thread's loop
 * (a journal callback) after skald__actor_local has found the actor.
 *
 * Completions: a layer that runs a callback of the user's outside a turn of
 * the actor (a journal write confirmed, a recovery finished) must call
 * skald__actor_after_callback afterwards, as the runtime does after each
 * turn, so that a skald_stop_self inside it takes effect.
 */
#ifndef SKALD_ACTORS_LAYER_H
#define SKALD_ACTORS_LAYER_H

#include <stdbool.h>
#include <uv.h>

#include "skald/actor.h"

/* Layers that keep a context per scheduler thread (skald__layer_ctx). */
enum { SKALD__LAYER_JOURNAL = 0, SKALD__LAYERS };

/* The state block allocated with a (behavior->state_size bytes, zeroed
 * before init, owned and freed by the runtime with a) if a runs behaviour
 * b, else NULL: how a layer tells its own actors from others. */
void *skald__actor_block_of(const skald_actor_t *a, const skald_behavior_t *b);

/* Points the `state` that a's later callbacks receive (asks, timers,
 * receive) at state, which stays the layer's to free (in a's stop callback,
 * say); the block stays the runtime's. */
void skald__actor_set_state(skald_actor_t *a, void *state);

/* True once a has stopped (its stop callback ran). a's memory is then
 * freed as soon as the thread returns to its loop: a completion must look
 * the actor up again (skald__actor_local) rather than keep the pointer. */
bool skald__actor_terminated(const skald_actor_t *a);

/* The live actor behind ref if it lives on the calling thread, else NULL
 * (stopped, unknown, or on another thread): never one that has stopped.
 * The pointer stays valid until the caller returns to the loop. Any
 * thread. */
skald_actor_t *skald__actor_local(skald_system_t *sys, skald_ref_t ref);

/* Holds a's mailbox: no message is handled, new ones wait, until
 * skald__actor_resume. Does not nest: one resume ends any number of
 * pauses. */
void skald__actor_pause(skald_actor_t *a);
void skald__actor_resume(skald_actor_t *a);

/* Stops a now if one of its callbacks asked to (skald_stop_self) and no
 * turn of a is under way. */
void skald__actor_after_callback(skald_actor_t *a);

/* A failure of a's handler with err, outside a turn: the same as a
 * callback returning err (a suspends and its parent decides; without a
 * parent a stops). A no-op if a is already suspended or stopped. */
void skald__actor_fail(skald_actor_t *a, int err);

/* Stops a at once with reason: its stop callback runs, its watchers and
 * parent are told, its queued messages become dead letters. May free a
 * (see skald__actor_terminated). A no-op if a has stopped. */
void skald__actor_terminate(skald_actor_t *a, int reason);

/* The loop of a's thread, for the layer's handles on that thread. */
uv_loop_t *skald__actor_loop(skald_actor_t *a);

/*
 * The context of layer on a's thread, or NULL until skald__layer_set. One
 * context per layer and thread, created lazily by the layer. fini(ctx) runs
 * once on that thread during the graceful stop, after every actor of every
 * thread has stopped and while the loop still runs (handles may be closed
 * there); the context is the layer's to free.
 */
void *skald__layer_ctx(skald_actor_t *a, int layer);
void skald__layer_set(skald_actor_t *a, int layer, void *ctx, void (*fini)(void *ctx));

/* The journal URI given in sys's configuration (skald_config_t.journal),
 * or NULL. Borrowed while sys lives. Any thread. */
const char *skald__system_journal(const skald_system_t *sys);

/* Checks the journal a system will use (its configured URI, or NULL for
 * SKALD_JOURNAL or the default): 0, or the error of opening it, such as
 * SKALD_ESCHEME or SKALD_EURI, with the reason in
 * skald_journal_open_errmsg() on the calling thread. Installed by the
 * journal layer when it is linked; NULL otherwise (nothing to check). */
extern int (*skald__journal_check)(const char *uri);

/*
 * Places def, a layer's built-in message type, at id, one of the ids below
 * SKALD__TYPE_FIRST_USER (actors/internal.h) that the layer owns:
 * SKALD_TYPE_NODE (the network), SKALD_TYPE_MEMBER (the cluster), 10 to 15
 * (sharding, sharding/sharding_int.h). Installing the same definition again
 * is a no-op. Safe from any thread. Errors: SKALD_EINVAL (id not reserved,
 * or def without a name), SKALD_ETYPEEXISTS (another definition holds id,
 * or def's name is taken).
 */
int skald__type_install(uint32_t id, const skald_msgtype_t *def);

/*
 * Delivers payload of type `type` to `to` as if `sender` had sent it, as
 * part of the ask ask_id of sender's when ask_id is not 0: the receiver's
 * skald_reply then answers sender directly, wherever it lives. For a layer
 * that routes messages on behalf of their senders (sharding). to must be an
 * actor of this node; a dead one makes the message a dead letter (an ask
 * fails with SKALD_ENOACTOR). Ownership of payload as skald_tell. Any
 * thread. Errors: SKALD_EINVAL (to is not local), SKALD_ENOTYPE,
 * SKALD_ENOMEM.
 */
int skald__forward(skald_system_t *sys, skald_ref_t to, uint32_t type, void *payload,
                   skald_ref_t sender, uint64_t ask_id);

/*
 * Completes the ask ask_id of asker (an actor of any node) with the error
 * reason, as a dead letter would: its callback gets reason, or, if the ask
 * has already ended, the notice is counted as a late reply. Any thread.
 * Errors: SKALD_EINVAL (null asker, ask_id 0, reason not negative),
 * SKALD_ENOMEM.
 */
int skald__ask_fail(skald_system_t *sys, skald_ref_t asker, uint64_t ask_id, int reason);

#endif /* SKALD_ACTORS_LAYER_H */
