/*
 * skald/entity.h - persistent actors (entities): event sourcing on actors.
 *
 * The semantics are Akka Persistence's. An entity type has a command handler
 * that decides, and an event handler that applies: the only code that
 * changes state, run the same way live and during replay. A command handler
 * calls skald_persist() to write events; the events reach the journal
 * *before* they are applied. Until the journal confirms, the entity handles
 * no further message (they wait in its mailbox); then the events are applied
 * in order, then the persist callback runs.
 *
 * Recovery when an entity starts: the latest snapshot, then the events after
 * it (streamed in batches, so a history of any length fits in bounded
 * memory), then the `recovered` callback, then the waiting messages.
 *
 * Outcomes of a write: stored (applied, callback with 0); rejected
 * (SKALD_EREJECTED: certainly not stored, e.g. an event that cannot be
 * encoded; callback with the code and the entity goes on); conflict
 * (SKALD_ECONFLICT: another incarnation of the entity wrote first; the entity
 * stops, its state no longer reflects the journal); failed (any other code:
 * unknown whether stored; callback, then the entity stops).
 *
 * The journal is the system's (skald_config_t.journal, SKALD_JOURNAL, or
 * memory://default: "Which journal" in journal.h). Each scheduler thread opens its own handle and
 * coalesces the writes of all its entities into one journal call per round
 * trip, while each entity still sees its own writes confirmed in order.
 *
 * Threading: as actor.h. Entities are actors: skald_tell, skald_ask,
 * skald_reply, skald_watch and timers work on them as on any actor, and
 * every callback (command, ask replies, timers) receives the user's state.
 * Timer and ask callbacks may run while a write is in flight (only the
 * mailbox is held); a persist from there is then SKALD_EBUSY.
 *
 * Use a named store (memory://NAME, a database): an unnamed memory:// is
 * private to each handle, and every scheduler thread opens its own.
 */
#ifndef SKALD_ENTITY_H
#define SKALD_ENTITY_H

#include <stdio.h>

#include "actor.h"
#include "journal.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * An entity type: a static table. Required: name, command, apply.
 * Snapshots need both snapshot and restore.
 */
typedef struct skald_entity_type_s {
	/* The type's name; persistence ids are "NAME-ID" (e.g. "game-42"). */
	const char *name;
	/* Bytes of state, zeroed before init. */
	size_t state_size;
	/* Prepares the state of entity `id` before recovery. Optional. Must not
	 * depend on anything but its arguments (it also runs in `skald replay`,
	 * without a system). */
	int (*init)(void *state, const char *id);
	/* Decides: handles a command, may persist events, reply, tell. A
	 * negative return is a failure of the actor (see supervision). */
	int (*command)(skald_actor_t *self, void *state, skald_msg_t *cmd);
	/* Applies one event to the state. Deterministic: the same events from
	 * the same state give the same state, live, in recovery and in
	 * `skald replay`. A negative return fails recovery (the entity stops)
	 * or, live, the actor. */
	int (*apply)(void *state, const skald_event_t *event);
	/* Called once when recovery is complete, before any command. Optional. */
	void (*recovered)(skald_actor_t *self, void *state);
	/* Releases what init and apply acquired. Optional. */
	void (*fini)(void *state);

	/* Snapshots: snapshot writes the state as a new JSON object into *out
	 * (an owned reference); restore rebuilds the state from one. Both
	 * optional; with both, a snapshot is saved every snapshot_every events
	 * (0: only on skald_entity_snapshot). */
	int (*snapshot)(const void *state, json_t **out);
	int (*restore)(void *state, const json_t *snapshot, int version);
	unsigned snapshot_every;
	int snapshot_version; /* stored with each snapshot; 0 means 1 */

	/* Prints the state for people (`skald replay`). Optional; without it
	 * the tool prints the snapshot JSON, or nothing. */
	void (*print)(const void *state, FILE *out);
} skald_entity_type_t;

/*
 * Spawns the entity `id` of `type` (a top-level actor, placed as
 * skald_spawn). It recovers from the journal before handling messages. type
 * is borrowed for the life of the process; id is copied. Two live entities
 * with the same persistence id on one or several nodes are a mistake that
 * the journal detects: the one that writes second gets a conflict and stops.
 * Errors: SKALD_EINVAL (NULL argument, missing callbacks, empty id),
 * SKALD_ESCHEME and SKALD_EURI (the system's journal URI; the reason is
 * logged), SKALD_ENOMEM, SKALD_ESTOPPING, SKALD_ETOOMANY (as skald_spawn).
 */
int skald_entity_spawn(skald_system_t *sys, const skald_entity_type_t *type, const char *id,
                       const skald_spawn_opts_t *opts, skald_ref_t *out);

/* As skald_entity_spawn, as a child of self (supervised by self). Errors
 * as skald_entity_spawn. */
int skald_entity_spawn_child(skald_actor_t *self, const skald_entity_type_t *type, const char *id,
                             const skald_spawn_opts_t *opts, skald_ref_t *out);

/*
 * Called on the entity's thread when a persist completes: status 0 after the
 * events were applied, or the write's error (see above). state is the
 * entity's. If the entity stops (or restarts) while the write is in flight,
 * the callback never runs: keep what arg owns in the state and release it
 * in fini.
 */
typedef void (*skald_persist_fn)(skald_actor_t *self, void *state, int status, void *arg);

/* An event to persist: type name, schema version (0 means 1) and data. */
typedef struct skald_new_event_s {
	const char *type;
	int version;
	json_t *data;
} skald_new_event_t;

/*
 * Persists n events as one atomic write (all stored or none), from inside a
 * command handler or a callback of self. On 0 the journal owns the data
 * references (it steals them, decref'd after the write); on error the caller
 * still owns them. type strings are copied. cb may be NULL. One persist may
 * be in flight per entity: a second call before the first completes is
 * SKALD_EBUSY (put every event of a decision into one call).
 * Errors: SKALD_EINVAL (self is not an entity, n 0, an event without type or
 * with data that is not a JSON object), SKALD_EBUSY, SKALD_ENOMEM.
 */
int skald_persist_all(skald_actor_t *self, const skald_new_event_t *events, size_t n,
                      skald_persist_fn cb, void *arg);

/* skald_persist_all of one event. data is stolen on 0. */
int skald_persist(skald_actor_t *self, const char *type, int version, json_t *data,
                  skald_persist_fn cb, void *arg);

/*
 * Builds the answer to a command after its events were persisted: called on
 * the entity's thread with the write's outcome, status 0 once the events
 * are applied (state is the new state) or the write's error (see
 * skald_persist_fn; after a conflict or failure the entity stops right
 * after). Stores the reply's registered type in *type and its payload in
 * *payload (the runtime owns it from then on) and returns 0; a negative
 * return sends nothing (the asker then times out).
 */
typedef int (*skald_reply_build_fn)(skald_actor_t *self, void *state, int status, void *arg,
                                    uint32_t *type, void **payload);

/*
 * Persist, then reply (Akka's thenReply): persists n events as
 * skald_persist_all and, once the write completes, answers cmd, the ask
 * being handled, with what build makes of the outcome. The entity keeps
 * nothing of the request in its state: the runtime keeps who asked. cmd is
 * borrowed for the call (only its sender and ask id are kept); arg is
 * passed to build as is. If the entity stops before the write completes,
 * build never runs and the asker gets SKALD_ETIMEDOUT. Errors as
 * skald_persist_all; SKALD_EINVAL also for a cmd that is not an ask or a
 * NULL build; on error nothing is kept and no reply is sent.
 */
int skald_persist_reply(skald_actor_t *self, const skald_msg_t *cmd,
                        const skald_new_event_t *events, size_t n, skald_reply_build_fn build,
                        void *arg);

/* Saves a snapshot of self's state now (needs snapshot and restore). The
 * outcome of the save is logged; a failed save is not fatal. Errors (no
 * save started): SKALD_EINVAL (self is not an entity, or has not recovered
 * yet), SKALD_EUNSUPPORTED (the type has no snapshot or restore), the code
 * the snapshot callback returned (SKALD_EENCODE if it gave no data),
 * SKALD_ENOMEM, or an error of skald_journal_snapshot_save. */
int skald_entity_snapshot(skald_actor_t *self);

/* The persistence id of self ("NAME-ID"), borrowed; NULL if self is not an
 * entity. */
const char *skald_entity_pid(const skald_actor_t *self);
/* The entity's id ("ID"), borrowed; NULL if self is not an entity. */
const char *skald_entity_id(const skald_actor_t *self);
/* The seq of the last event applied (0 before any, and if self is not an
 * entity). */
uint64_t skald_entity_seq(const skald_actor_t *self);

#ifdef __cplusplus
}
#endif
#endif /* SKALD_ENTITY_H */
