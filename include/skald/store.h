/*
 * skald/store.h - the contract for journal store authors.
 *
 * A store is a `static const skald_store_t` table: an ABI version, the URI
 * schemes it serves, the size of its private state, capability bits, open,
 * close, fini, one start member, and migrate. The journal front (journal.h)
 * allocates the state together with each handle, zeroed, and hands the store
 * one operation at a time as a skald_op_t: the front allocates the object,
 * checks its arguments, queues it, starts it, delivers its batches, defers its
 * completion to the loop and frees it; a store only starts each operation and
 * produces its results (docs/STORES.md, "How to add a store").
 *
 * Rules:
 * - Every member but migrate is called on the handle's loop thread and must
 *   not block: network and disk work goes through the loop (uv_poll on a
 *   socket, uv_queue_work, a thread that wakes the loop with uv_async_t).
 * - The front starts the operations of one handle one at a time, in the
 *   order they were issued: the next starts once the one before has
 *   finished (skald_op_finish) or, for a streamed one, released its turn
 *   (skald_op_release). So a highest or read issued after an append sees
 *   that append's outcome, and a store needs no queue of its own.
 * - Every started operation is finished exactly once with skald_op_finish,
 *   on the loop thread, at any time, even inside start: the front runs the
 *   caller's callback later, on the loop, never before the caller's call
 *   returned.
 * - Arguments in the op (persistence ids, writes, snapshots) stay valid
 *   until skald_op_finish; after it the store must not touch the op.
 * - A backend's error message is given to the handle with
 *   skald_journal_set_errmsg() before finishing with a failure.
 *
 * Every store must pass the conformance suite in tests/stores/ (run it with
 * SKALD_TEST_STORE=scheme://...).
 */
#ifndef SKALD_STORE_H
#define SKALD_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <uv.h>

#include "error.h"
#include "journal.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define SKALD_STORE_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define SKALD_STORE_PRINTF(f, a)
#endif

/* The ABI this header describes. A table with another abi is refused.
 * 2: the migrate member. 3: one start member and the operation object. */
#define SKALD_STORE_ABI 3

/* At most this many schemes per store (unused entries NULL). */
#define SKALD_STORE_MAX_SCHEMES 4

/* What an operation does; see skald_op_t for its arguments and results. */
typedef enum skald_op_kind_e {
	SKALD_OP_APPEND,
	SKALD_OP_READ,
	SKALD_OP_HIGHEST,
	SKALD_OP_DELETE_TO,
	SKALD_OP_SNAPSHOT_SAVE,
	SKALD_OP_SNAPSHOT_LOAD,
	SKALD_OP_SNAPSHOT_DELETE,
	SKALD_OP_SNAPSHOT_DELETE_TO,
	SKALD_OP_READ_ALL,
	SKALD_OP_LIST_IDS,
} skald_op_kind_t;

typedef struct skald_op_s skald_op_t;

/* See skald_op_t.on_finish. */
typedef int (*skald_op_hook_fn)(skald_op_t *op, int status, void *arg);

/*
 * One journal operation, from the call that issues it to its callback. The
 * front owns it: it allocates it (or, for the entities' write batches,
 * reuses one), fills the arguments, starts it through the store's start,
 * and frees it after the callback. Between start and skald_op_finish the
 * store may use the arguments and the store_data word; it never frees the
 * op and never touches the fields after `the front's`.
 */
struct skald_op_s {
	skald_op_kind_t kind;

	/*
	 * Arguments, set by the front before start; the store only reads them
	 * (append writes statuses and offsets into writes). persistence_id
	 * lives in the op: a store may keep the pointer until it finishes.
	 *   APPEND            writes[0..nwrites)
	 *   READ              persistence_id, from (>= 1), to, max
	 *   HIGHEST           persistence_id
	 *   DELETE_TO         persistence_id, to
	 *   SNAPSHOT_SAVE     snapshot (persistence_id also set)
	 *   SNAPSHOT_LOAD     persistence_id, to (the max seq)
	 *   SNAPSHOT_DELETE   persistence_id, to (exactly this seq)
	 *   SNAPSHOT_DELETE_TO persistence_id, to (the max seq)
	 *   READ_ALL          from (the offset after which to read), max
	 *   LIST_IDS          persistence_id (the prefix; NULL: all), after_id
	 *                     (NULL: from the start), max
	 */
	const char *persistence_id;
	const char *after_id;
	uint64_t from, to, max;
	skald_write_t **writes;
	size_t nwrites;
	skald_snapshot_t *snapshot;

	/*
	 * Results, set by the store before skald_op_finish: HIGHEST sets seq;
	 * SNAPSHOT_LOAD sets loaded when it found one (loaded.data an owned
	 * reference that the front releases after the callback; NULL: none).
	 */
	uint64_t seq;
	skald_snapshot_t loaded;

	/* The store's own word for this op (a pointer to what the op holds in
	 * the store, an index...). 0 when the op starts; never read by the
	 * front. */
	void *store_data;

	/*
	 * For a store that wraps another (a fault injector, a tracer): set
	 * before handing the op to the inner store's start, on_finish runs
	 * first when the op is finished, with on_finish_arg, and returns the
	 * status the op finishes with. NULL when the op starts.
	 */
	skald_op_hook_fn on_finish;
	void *on_finish_arg;

	/* The front's: a store never reads or writes what follows. */
	struct skald__op_front_s {
		skald_op_t *next;
		skald_journal_t *j;
		int status;
		unsigned flags;
		void *arg;
		union skald__op_cb_u {
			skald_append_fn append;
			skald_done_fn done;
			skald_seq_fn seq;
			skald_snapshot_fn snapshot;
			void (*internal)(skald_op_t *op, int status);
		} cb;
		union {
			skald_events_fn events;
			skald_ids_fn ids;
		} stream;
		skald_write_t *user_writes;
	} front;
};

typedef struct skald_store_s {
	/* SKALD_STORE_ABI. First, so that a table from another build is
	 * recognised before any other member is read. */
	int abi;

	/* URI schemes served, e.g. {"postgres", "postgresql"}: lower-case,
	 * without ':'; the first is the store's name. At least one. */
	const char *schemes[SKALD_STORE_MAX_SCHEMES];

	/* Bytes of private state the front allocates with each handle, zeroed,
	 * aligned for any type, freed after fini. May be 0. */
	size_t state_size;

	/* SKALD_CAP_* bits (journal.h). */
	unsigned caps;

	/*
	 * Required. Prepares state for uri (the whole URI; the scheme is one of
	 * schemes) on loop, for handle j. Must not block: a store that connects
	 * starts connecting here and queues operations until connected. On
	 * failure returns a negative code (SKALD_EURI for a malformed URI or an
	 * unknown option, with a message through skald_journal_set_errmsg that
	 * names the mistake and never repeats a password), and must leave state
	 * safe for fini: the front then calls fini and nothing else, so open must
	 * not leave loop handles that need uv_close. uri is borrowed for the
	 * call; j and loop outlive state.
	 */
	int (*open)(void *state, skald_journal_t *j, uv_loop_t *loop, const char *uri);

	/*
	 * Required. Starts closing a state that opened successfully, once every
	 * operation issued before skald_journal_close has started: finishes
	 * every operation still running (a stream released with
	 * skald_op_release ends with what skald_op_events returns once the
	 * handle closes, SKALD_ECANCELED), closes its loop handles and
	 * connections, then calls done(j) on the loop, never before returning.
	 * The front starts no operation after close; done hands the state back
	 * to the front, which calls fini and frees it after the last callback:
	 * touch nothing of state after calling done.
	 */
	void (*close)(void *state, void (*done)(skald_journal_t *j));

	/*
	 * Required. Releases what state holds, synchronously, without the loop:
	 * after a failed open (state as open left it) or after close's done.
	 * Must accept a zeroed state.
	 */
	void (*fini)(void *state);

	/*
	 * Required. Starts op (see skald_op_t for the arguments of each kind);
	 * returns nothing: every outcome, failures included, is reported with
	 * skald_op_finish, which may be called inside start. The front has
	 * checked the arguments and the capabilities, so a store is only started
	 * on the kinds its caps allow. What each kind does:
	 *
	 * APPEND: applies writes[0..nwrites) in order, each atomically and
	 *   independently (see skald_write_t in journal.h): one write's conflict
	 *   or rejection must not fail the others, and an event whose data is not
	 *   a JSON object or cannot be encoded makes its whole write
	 *   SKALD_EREJECTED. The front has numbered the events (seq =
	 *   expected_seq + 1 + i) and set their persistence_id, version and
	 *   timestamp. Sets every writes[i]->status and, where it knows them,
	 *   events' offsets, then finishes with 0, or with a negative status when
	 *   the call failed as a whole (the front then gives every write that
	 *   status). With SKALD_CAP_BATCHED_WRITES, in one round trip.
	 * READ: streams the events of persistence_id with from <= seq <=
	 *   min(to, highest), at most max, in seq order, skipping deleted ones,
	 *   in batches of bounded size (a history of any length must not be
	 *   loaded at once) through skald_op_events, then finishes. max 0 or
	 *   from > to: no batch, finish 0. Events carry every field.
	 * HIGHEST: sets seq to the highest seq ever stored for persistence_id, 0
	 *   if none; unchanged by deletion.
	 * DELETE_TO: deletes events with seq <= min(to, highest); keeps the
	 *   highest seq.
	 * SNAPSHOT_*, with SKALD_CAP_SNAPSHOTS: save (replace at the same seq;
	 *   SKALD_EREJECTED for data that is not an encodable object; the front
	 *   has set the timestamp), load the latest with seq <= to into loaded,
	 *   delete at exactly to, delete all with seq <= to.
	 * READ_ALL, with SKALD_CAP_QUERIES: streams every event with offset >
	 *   from in ascending offset order, at most max, as READ does; it must
	 *   never skip a committed event (an event may be returned only once
	 *   every event with a lower offset that will ever commit is visible).
	 * LIST_IDS, with SKALD_CAP_QUERIES: streams, through skald_op_ids, the
	 *   persistence ids with highest seq > 0 that start with persistence_id
	 *   (NULL or "": all) and sort after after_id (NULL: from the start), in
	 *   strcmp order, at most max.
	 */
	void (*start)(void *state, skald_op_t *op);

	/*
	 * Optional (NULL: the store has no schema to migrate). For tools, not
	 * for the loop: BLOCKS until done, on the calling thread, with no
	 * handle and no state. Brings the schema of the database named by uri
	 * (whose scheme is one of schemes) to the version this build needs,
	 * applying each pending migration in its own transaction, and writes
	 * one line per migration applied to out; with status_only it changes
	 * nothing and writes one line per migration, applied or pending. out
	 * may be NULL (nothing written). Safe to run from several processes at
	 * once. Returns 0, or a negative code with a message in err (errlen
	 * bytes) that never repeats a password: SKALD_EURI, SKALD_EBACKEND
	 * (cannot connect, or a migration failed: it was rolled back),
	 * SKALD_ESCHEMA (the database holds migrations this build does not
	 * know; with status_only: migrations are pending), SKALD_ENOMEM.
	 */
	int (*migrate)(const char *uri, int status_only, FILE *out, char *err, size_t errlen);
} skald_store_t;

/*
 * Registers store for its schemes, process-wide. The table is borrowed for
 * the life of the process (make it static const). Registering the same table
 * again is a no-op. The memory store, part of libskald, is registered before
 * any other; the database stores (libskald-postgres, libskald-mongo) register
 * themselves when the program that links them starts, and a store in a
 * library of its own can do the same (docs/PACKAGING.md). Thread-safe; may
 * be called from a constructor.
 * Errors: SKALD_EINVAL (NULL, abi not SKALD_STORE_ABI, no scheme, a scheme
 * with characters outside [a-z0-9+.-], a required member NULL, a snapshot or
 * query capability without its members), SKALD_EEXISTS (a scheme is already
 * registered by another table), SKALD_ETOOMANY.
 */
int skald_store_register(const skald_store_t *store);

/*
 * The store registered for scheme (exact match, no ':'), or NULL. Borrowed,
 * valid for the process. For wrapping stores (e.g. one that injects faults
 * into another). Thread-safe.
 */
const skald_store_t *skald_store_lookup(const char *scheme);

/*
 * Applies the pending schema migrations of the store named by uri's scheme
 * (see skald_store_t.migrate), or with status_only lists them, writing one
 * line per migration to out (may be NULL). BLOCKS: for tools such as
 * `skald migrate`, never on an actor's loop. uri NULL means SKALD_JOURNAL. A
 * store without a schema (memory://) has nothing to migrate: 0, and a line
 * that says so. Returns 0 or a negative code with a message in err (errlen
 * bytes; may be NULL) that names the mistake: SKALD_EURI, SKALD_ESCHEME, or
 * the store's (see skald_store_t.migrate); with status_only, SKALD_ESCHEMA
 * when migrations are pending (after listing them). Thread-safe.
 */
int skald_store_migrate(const char *uri, int status_only, FILE *out, char *err, size_t errlen);

/*
 * For stores: finishes op with status (0 or a negative code), on the loop
 * thread, exactly once, at any time after start was called (inside start
 * too). The front runs the caller's callback on the loop, after the call
 * that issued op returned, and starts the handle's next operation. The store
 * must not touch op afterwards.
 */
void skald_op_finish(skald_op_t *op, int status);

/*
 * For stores, on a streamed READ or READ_ALL: delivers events[0..n) to the
 * caller, synchronously, and returns its code: 0 to go on, anything else to
 * stop, and then the store finishes op with that code (SKALD_ECANCELED once
 * the handle is closing: the caller is not called). Call on the loop thread,
 * never inside start (the caller's call has not returned yet). Each event's
 * data must be one reference the store owns, and the front may replace it
 * (an upcaster rewriting it): after the call json_decref() whatever
 * events[i].data then holds. The rest stays the store's.
 */
int skald_op_events(skald_op_t *op, skald_event_t *events, size_t n);

/* As skald_op_events, for LIST_IDS: ids[0..n) stay the store's. */
int skald_op_ids(skald_op_t *op, const skald_persistence_id_t *ids, size_t n);

/*
 * For stores, on a streamed operation that has taken effect (its range is
 * fixed, or its first batch is read) and can go on while later operations
 * of the handle run: the front may start the next operation before op
 * finishes. Optional; a store whose connection can run one thing at a time
 * never calls it. At most once per op, on the loop thread.
 */
void skald_op_release(skald_op_t *op);

/*
 * For stores: sets the message skald_journal_errmsg(j) returns, printf-style
 * (truncated to a few hundred bytes). Call on j's loop thread.
 */
void skald_journal_set_errmsg(skald_journal_t *j, const char *fmt, ...) SKALD_STORE_PRINTF(2, 3);

/* For stores: the handle op belongs to. */
skald_journal_t *skald_op_journal(const skald_op_t *op);

/*
 * For stores: names the stored event that a read or read_all cannot decode,
 * before the read finishes with SKALD_EDECODE (see skald_journal_bad_event).
 * persistence_id is copied; offset is the event's place in the global order,
 * 0 if the store does not know it. Call on j's loop thread.
 */
void skald_journal_set_bad_event(skald_journal_t *j, const char *persistence_id, uint64_t seq,
                                 uint64_t offset);

#ifdef __cplusplus
}
#endif
#endif /* SKALD_STORE_H */
