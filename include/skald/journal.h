/*
 * skald/journal.h - the journal: where persistent actors write their events.
 *
 * A journal handle is opened on one libuv loop from a URI whose scheme picks
 * the store. Every loop that uses a store opens its own handle; handles on
 * the same data (the same database, or the same memory://NAME in one
 * process) see each other's writes. Built-in schemes:
 *   memory://NAME[?batch=N]  in-process; data shared by every handle of NAME
 *                            in the process, across loops and threads, and
 *                            kept until the process exits. memory:// (no
 *                            NAME) is private to its handle and dropped when
 *                            it closes. batch: events per streamed batch.
 *   postgres://, postgresql://, mongodb://, mongodb+srv://  in programs
 *                            linked with libskald-postgres or libskald-mongo
 *                            (docs/PACKAGING.md); see stores/postgres and
 *                            stores/mongo
 *
 * Which journal, everywhere: a URI given to the call (skald_journal_open,
 * skald_store_migrate, skald_config_t.journal) is used as given. Without
 * one, the environment variable SKALD_JOURNAL, when set and not empty.
 * Without either, a system's entities use "memory://default", so that they
 * run with no configuration, while skald_journal_open and
 * skald_store_migrate (and so every command of the `skald` tool that needs
 * a store) fail with SKALD_EURI: a journal nobody named is never opened.
 *
 * Threading: a handle is bound to the loop it was opened on. Every function
 * taking a skald_journal_t * must be called on that loop's thread, and every
 * callback runs on that thread. The registries (stores, upcasters) are
 * process-wide and thread-safe.
 *
 * Asynchrony: every operation returns at once. A return of 0 means the
 * operation was accepted and its completion callback will run EXACTLY ONCE,
 * on the handle's loop, never before the call has returned. A negative return
 * means nothing was started and no callback will run; the reason is also in
 * skald_journal_errmsg().
 *
 * Events are JSON (jansson). Events delivered to callbacks are borrowed for
 * the callback's duration: to keep an event's data, json_incref() it. Inputs
 * to writes (skald_write_t, skald_snapshot_t and what they point to) are
 * borrowed by the journal from the call until its completion callback.
 */
#ifndef SKALD_JOURNAL_H
#define SKALD_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct skald_journal_s skald_journal_t;

/* "No upper bound" for a sequence number or a count: replay to the end,
 * delete everything, load the latest snapshot, no maximum. */
#define SKALD_SEQ_MAX UINT64_MAX

/* ------------------------------------------------------------------------ */
/* Envelopes                                                                 */

/* The deepest nesting of event and snapshot data that every store keeps:
 * the data object is at level 1 and every value, scalars too, one level
 * below its container. jansson reads no deeper, so a store refuses deeper
 * data (SKALD_EREJECTED, with a reason) rather than store what it could not
 * give back. */
#define SKALD_DATA_MAX_DEPTH 2048

/* The largest event or snapshot data that every store keeps, measured as its
 * compact JSON text (json_dumps with JSON_COMPACT): 8 MiB. Larger data is
 * refused by every store (SKALD_EREJECTED, with a reason that gives its
 * size), so that a history that one store accepted moves to any other. A
 * store may refuse less only where docs/EVENT-DATA.md says so (MongoDB: the
 * events of one atomic write share one 16 MiB document). Strings and keys
 * holding U+0000 are refused by every store too (PostgreSQL cannot keep
 * them). */
#define SKALD_DATA_MAX_BYTES (8u << 20)

/*
 * One event as stored in the journal.
 *
 * On append the caller fills seq (0: the journal numbers the events of a write from
 * expected_seq + 1), type, version (0 means 1), data, timestamp (0: the
 * journal sets the current time) and writer; persistence_id is set to the
 * write's. The journal writes the defaults it chose into the caller's struct,
 * and the store writes offset on success (0 if the store learns it only
 * later).
 *
 * On read every field is set, and the envelope, its strings and data are
 * borrowed for the duration of the callback that receives them.
 */
typedef struct skald_event_s {
	const char *persistence_id; /* the entity's stream, e.g. "game-42" */
	uint64_t seq;               /* 1, 2, 3... within persistence_id */
	const char *type;           /* event type name, e.g. "game.moved" */
	int version;                /* schema version of data, from 1 */
	json_t *data;               /* a JSON object; borrowed, never stolen */
	int64_t timestamp;          /* ms since the Unix epoch, wall clock */
	uint64_t writer;            /* incarnation of the writing actor */
	uint64_t offset;            /* position in the global order, from 1 */
} skald_event_t;

/*
 * One atomic write: the events of one persistence id, stored all or none,
 * and only if the highest stored seq of persistence_id is expected_seq at
 * that moment (0 for a new id). The store sets status: 0 stored,
 * SKALD_ECONFLICT (the highest seq was not expected_seq: another writer got
 * there first, nothing stored), SKALD_EREJECTED (an event cannot be stored,
 * e.g. data is not a JSON object or not encodable; nothing stored; the actor
 * may go on), or another negative code (failure: it is unknown whether the
 * events were stored; the actor must stop).
 */
typedef struct skald_write_s {
	const char *persistence_id;
	uint64_t expected_seq;
	skald_event_t *events; /* nevents >= 1 events, in seq order */
	size_t nevents;
	int status; /* out */
} skald_write_t;

/* A snapshot of an entity's state at seq. data is a JSON object. On save the
 * journal sets timestamp if it is 0. On load the snapshot is borrowed for the
 * duration of the callback. version is the application's state schema
 * version, stored and returned as given. */
typedef struct skald_snapshot_s {
	const char *persistence_id;
	uint64_t seq;
	int version;
	json_t *data;
	int64_t timestamp;
} skald_snapshot_t;

/* One entry of a persistence id listing. Borrowed for the callback. */
typedef struct skald_persistence_id_s {
	const char *persistence_id;
	uint64_t highest_seq;
} skald_persistence_id_t;

/* ------------------------------------------------------------------------ */
/* Callbacks (all run on the handle's loop)                                  */

/* Completion of an operation with no result beyond its status. */
typedef void (*skald_done_fn)(skald_journal_t *j, int status, void *arg);

/*
 * Completion of skald_journal_append. writes is the caller's array with every
 * status set. status is 0 when every write was stored; otherwise the status of
 * the first write that was not (when the call failed as a whole, e.g. the
 * connection broke, every write carries that code).
 */
typedef void (*skald_append_fn)(skald_journal_t *j, int status, skald_write_t *writes,
                                size_t nwrites, void *arg);

/* Completion carrying a sequence number (skald_journal_highest). */
typedef void (*skald_seq_fn)(skald_journal_t *j, int status, uint64_t seq, void *arg);

/* Completion of a snapshot load: snap is NULL when there is none (status 0),
 * or on error. */
typedef void (*skald_snapshot_fn)(skald_journal_t *j, int status, const skald_snapshot_t *snap,
                                  void *arg);

/*
 * One batch of a streamed read, n >= 1 events in order. Return 0 to receive
 * the next batch, or a negative code to stop the read: no further batch
 * arrives and the read's done callback gets that code.
 */
typedef int (*skald_events_fn)(skald_journal_t *j, const skald_event_t *events, size_t n,
                               void *arg);

/* One batch of a persistence id listing; returns as skald_events_fn. */
typedef int (*skald_ids_fn)(skald_journal_t *j, const skald_persistence_id_t *ids, size_t n,
                            void *arg);

/* The handle is closed; j is valid during the call and freed after it. */
typedef void (*skald_journal_close_fn)(skald_journal_t *j, void *arg);

/* ------------------------------------------------------------------------ */
/* Capabilities of the store behind a handle (skald_journal_caps)            */

/* A write of several events is all-or-nothing. Without it the journal refuses
 * writes of more than one event (SKALD_EUNSUPPORTED). */
#define SKALD_CAP_ATOMIC_WRITES (1u << 0)
/* Several writes in one append cost one round trip: coalescing appends of many
 * actors pays off. */
#define SKALD_CAP_BATCHED_WRITES (1u << 1)
/* Other processes and nodes opening the same URI see the same data. */
#define SKALD_CAP_SHARED (1u << 2)
/* Stored data survives the process. */
#define SKALD_CAP_DURABLE (1u << 3)
/* Snapshots are stored (the snapshot operations are available). */
#define SKALD_CAP_SNAPSHOTS (1u << 4)
/* skald_journal_read_all and skald_journal_list_ids are available. */
#define SKALD_CAP_QUERIES (1u << 5)

/* ------------------------------------------------------------------------ */
/* Opening and closing                                                       */

/*
 * Opens the journal named by uri on loop and stores the handle in *out.
 * uri NULL means the value of the environment variable SKALD_JOURNAL, and
 * SKALD_EURI when that is unset (see "Which journal" above). The
 * scheme (the text before the first ':') picks a registered store, matched
 * exactly; the store parses the rest. Opening never blocks on the network: a
 * store that connects does so in the background and its operations wait for
 * the connection.
 *
 * The handle belongs to the caller until skald_journal_close. loop is
 * borrowed and must outlive the handle; uri is copied as needed.
 *
 * Errors: SKALD_EINVAL (loop or out NULL), SKALD_EURI (no URI, malformed
 * URI, unknown option), SKALD_ESCHEME (no store registered for the scheme),
 * SKALD_ENOMEM, or the store's own. On error *out is NULL and
 * skald_journal_open_errmsg() explains the mistake and its fix (an unknown
 * scheme lists the registered ones).
 */
int skald_journal_open(uv_loop_t *loop, const char *uri, skald_journal_t **out);

/*
 * The message of the latest failed skald_journal_open() on the calling
 * thread, "" if the latest call succeeded or none was made. skald_system_new
 * (which checks its journal on the calling thread) and a skald_entity_spawn
 * refused for its journal set it too. Borrowed: valid until the next
 * skald_journal_open() on this thread. Never NULL. Messages never repeat a
 * URI's user information (passwords).
 */
const char *skald_journal_open_errmsg(void);

/*
 * Starts closing j. Operations still in flight complete first (with their
 * result, or SKALD_ECANCELED for a streamed read cut short), then cb (may be
 * NULL) runs on the loop, then the handle is freed. Every operation started
 * after this call returns SKALD_ECLOSED. Errors: SKALD_EINVAL (j NULL),
 * SKALD_ECLOSED (already closing). Call on the loop's thread; never blocks.
 */
int skald_journal_close(skald_journal_t *j, skald_journal_close_fn cb, void *arg);

/*
 * A message describing the latest failure on j: a mistake of the caller
 * found by the journal, a conflict or rejection, or the backend's own message
 * (libpq, libmongoc). "" when nothing failed yet. Borrowed: valid until the
 * next operation on j fails or j is freed. Never NULL (also for j NULL).
 */
const char *skald_journal_errmsg(const skald_journal_t *j);

/*
 * The stored event that the latest read or read_all of j could not decode,
 * when it completed with SKALD_EDECODE: written by another program or an
 * older build, it is in the journal but cannot be given back as JSON. Sets
 * *persistence_id (borrowed: valid until the next read on j or j is freed),
 * *seq and *offset (its place in the global order, 0 if the store does not
 * know it); any of them may be NULL. Returns 0, or SKALD_ENOTFOUND when the
 * latest read did not stop at such an event. Loop thread of j.
 */
int skald_journal_bad_event(const skald_journal_t *j, const char **persistence_id, uint64_t *seq,
                            uint64_t *offset);

/* The loop j is bound to. */
uv_loop_t *skald_journal_loop(const skald_journal_t *j);

/* The SKALD_CAP_* bits of the store behind j. */
unsigned skald_journal_caps(const skald_journal_t *j);

/* The scheme of the store behind j, e.g. "memory". Borrowed, static. */
const char *skald_journal_scheme(const skald_journal_t *j);

/* ------------------------------------------------------------------------ */
/* Events                                                                    */

/*
 * Appends nwrites atomic writes (see skald_write_t), possibly of several
 * persistence ids, in one call. Each write succeeds or fails on its own: a
 * conflict or rejection of one write leaves the others unaffected. Writes are
 * applied in array order, so two writes of one persistence id in one call
 * chain (the second expects the first's last seq).
 *
 * writes and everything it points to are borrowed until cb runs; the journal
 * fills defaults into the events (see skald_event_t) and the statuses. The
 * data objects are never modified or stolen.
 *
 * Errors (nothing started, no callback): SKALD_EINVAL (NULL j, writes or cb,
 * nwrites 0, a write with no persistence id or no events, an event with no
 * type or no data, a seq that does not follow expected_seq), SKALD_ECLOSED,
 * SKALD_EUNSUPPORTED (several events in a write, to a store without
 * SKALD_CAP_ATOMIC_WRITES), SKALD_ENOMEM.
 */
int skald_journal_append(skald_journal_t *j, skald_write_t *writes, size_t nwrites,
                         skald_append_fn cb, void *arg);

/*
 * Replays the events of persistence_id with from <= seq <= to, at most max of
 * them, in seq order, streamed in batches to on_events; then done runs once
 * with the outcome. to is first clamped to the highest seq; from 0 means 1;
 * max 0 or from > to reads nothing; SKALD_SEQ_MAX means no bound. Deleted
 * events are skipped. Registered upcasters are applied before on_events sees
 * an event. A history of any length is read with bounded memory: only one
 * batch is in memory at a time.
 *
 * persistence_id is borrowed for the call only. Errors (no callback):
 * SKALD_EINVAL (NULL or empty persistence_id, NULL callbacks), SKALD_ECLOSED,
 * SKALD_ENOMEM. Through done: a store failure, SKALD_EDECODE, an upcaster's
 * error, or the code on_events returned.
 */
int skald_journal_read(skald_journal_t *j, const char *persistence_id, uint64_t from, uint64_t to,
                       uint64_t max, skald_events_fn on_events, skald_done_fn done, void *arg);

/*
 * The highest seq ever stored for persistence_id (0 if none). It survives
 * deletion of the events. A highest read issued after an append on the same
 * handle sees that append's outcome. Errors as skald_journal_read.
 */
int skald_journal_highest(skald_journal_t *j, const char *persistence_id, skald_seq_fn cb,
                          void *arg);

/*
 * Deletes the events of persistence_id with seq <= to (clamped to the
 * highest; SKALD_SEQ_MAX deletes all). The highest seq is kept, so the next
 * write still expects it. Errors as skald_journal_read.
 */
int skald_journal_delete_to(skald_journal_t *j, const char *persistence_id, uint64_t to,
                            skald_done_fn cb, void *arg);

/*
 * Reads the events of every persistence id in the global order: events with
 * offset > after, ascending, at most max (SKALD_SEQ_MAX: no bound), streamed
 * as skald_journal_read. A projection passes the offset of the last event it
 * processed. The order never skips a committed event: once an event with
 * offset N has been read, no event with a lower offset appears later.
 * Deleted events are skipped. Upcasters are applied. Errors as
 * skald_journal_read, and SKALD_EUNSUPPORTED without SKALD_CAP_QUERIES.
 */
int skald_journal_read_all(skald_journal_t *j, uint64_t after, uint64_t max,
                           skald_events_fn on_events, skald_done_fn done, void *arg);

/*
 * Lists the persistence ids that ever had events (with their highest seq), in
 * byte order of the id: those starting with prefix (NULL or "": all) and
 * sorting after `after` (NULL: from the start), at most max, streamed in
 * batches. Pass the last id received as `after` to fetch the next page.
 * Strings are borrowed for the call only. Errors as skald_journal_read_all.
 */
int skald_journal_list_ids(skald_journal_t *j, const char *prefix, const char *after, uint64_t max,
                           skald_ids_fn on_ids, skald_done_fn done, void *arg);

/* ------------------------------------------------------------------------ */
/* Snapshots (SKALD_EUNSUPPORTED without SKALD_CAP_SNAPSHOTS)                */

/*
 * Saves snap, replacing a snapshot of the same persistence id and seq. snap
 * is borrowed until cb runs (its timestamp is set if 0). Errors: SKALD_EINVAL
 * (NULL j, snap, cb or data, empty persistence id, seq 0), SKALD_ECLOSED,
 * SKALD_EUNSUPPORTED; through cb: SKALD_EREJECTED (data not a JSON object or
 * not encodable) or a store failure.
 */
int skald_journal_snapshot_save(skald_journal_t *j, skald_snapshot_t *snap, skald_done_fn cb,
                                void *arg);

/*
 * Loads the latest snapshot of persistence_id with seq <= max_seq
 * (SKALD_SEQ_MAX: the latest). No snapshot is status 0 with snap NULL; a
 * failure is a negative status, never "no snapshot". Errors as
 * skald_journal_read.
 */
int skald_journal_snapshot_load(skald_journal_t *j, const char *persistence_id, uint64_t max_seq,
                                skald_snapshot_fn cb, void *arg);

/* Deletes the snapshot of persistence_id at exactly seq; none there is
 * success. Errors as skald_journal_read. */
int skald_journal_snapshot_delete(skald_journal_t *j, const char *persistence_id, uint64_t seq,
                                  skald_done_fn cb, void *arg);

/* Deletes every snapshot of persistence_id with seq <= max_seq. Errors as
 * skald_journal_read. */
int skald_journal_snapshot_delete_to(skald_journal_t *j, const char *persistence_id,
                                     uint64_t max_seq, skald_done_fn cb, void *arg);

/* ------------------------------------------------------------------------ */
/* Upcasters (schema evolution)                                              */

/*
 * Rewrites an event of `type` from version *version (the from_version it was
 * registered for) to a later one. *data is an owned reference: modify the
 * object in place, or json_decref() it and store a new owned reference. Set
 * *version to the new version, which must be greater. Return 0, or a negative
 * code that fails the read. Called on the reading handle's loop thread, from
 * any number of threads at once: it must be thread-safe (pure is best).
 */
typedef int (*skald_upcast_fn)(const char *type, int *version, json_t **data, void *arg);

/*
 * Registers fn for events of `type` at version from_version, for every
 * handle of the process: skald_journal_read and skald_journal_read_all run it
 * before the reader sees such an event, then look again for an upcaster of
 * the new version, so chains 1 -> 2 -> 3 compose. type is copied; arg is
 * borrowed for the life of the process. Thread-safe; register before reading.
 * Errors: SKALD_EINVAL (NULL or empty type, NULL fn, from_version < 1),
 * SKALD_EEXISTS (an upcaster is already registered for type and
 * from_version), SKALD_ENOMEM.
 */
int skald_upcaster_register(const char *type, int from_version, skald_upcast_fn fn, void *arg);

#ifdef __cplusplus
}
#endif
#endif /* SKALD_JOURNAL_H */
