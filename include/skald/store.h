/*
 * skald/store.h - the contract for journal store authors.
 *
 * A store is a `static const skald_store_t` table: an ABI version, the URI
 * schemes it serves, the size of its private state, capability bits and the
 * operations. The journal front (journal.h) allocates the state together with
 * each handle, zeroed, and calls the operations; it validates arguments
 * before they reach the store, so a store may rely on what each member says
 * it is given.
 *
 * Rules for every operation (members after fini):
 * - It is called on the handle's loop thread and must not block: network and
 *   disk work goes through the loop (uv_poll on a socket, uv_queue_work).
 * - It returns 0 when accepted; then its completion callback runs EXACTLY
 *   ONCE, on the handle's loop thread, NEVER before the operation has
 *   returned (defer with a uv_idle_t, uv_async_t, or an I/O completion). A
 *   negative return means nothing was started and no callback runs.
 * - Callbacks receive the skald_journal_t * given to open, and the arg given
 *   to the operation.
 * - Operations of one handle take effect in the order they were issued: a
 *   highest or read issued after an append sees that append's outcome.
 * - Strings passed in (persistence ids, prefixes) are borrowed for the call
 *   only; copy what is kept. Write inputs (skald_write_t, skald_snapshot_t)
 *   are borrowed until the completion callback.
 * - Data delivered to callbacks (events, snapshots, ids) belongs to the store,
 *   which releases it after the callback returns. For read batches, each
 *   event's data must be one reference the store owns, and the front may
 *   replace it (an upcaster rewriting it): after the batch callback returns,
 *   json_decref() whatever events[i].data then holds.
 * - A backend's error message is given to the handle with
 *   skald_journal_set_errmsg() before failing.
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
 * 2: the migrate member. */
#define SKALD_STORE_ABI 2

/* At most this many schemes per store (unused entries NULL). */
#define SKALD_STORE_MAX_SCHEMES 4

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
	 * Required. Starts closing a state that opened successfully: completes
	 * every operation in flight (with its result, or SKALD_ECANCELED for a
	 * streamed read cut short), closes its loop handles and connections, then
	 * calls done(j) on the loop, never before returning. The front starts no
	 * operation after close. done calls fini and frees state: touch nothing
	 * of state after calling it.
	 */
	void (*close)(void *state, void (*done)(skald_journal_t *j));

	/*
	 * Required. Releases what state holds, synchronously, without the loop:
	 * after a failed open (state as open left it) or after close's done.
	 * Must accept a zeroed state.
	 */
	void (*fini)(void *state);

	/*
	 * Required. Applies writes[0..nwrites) in order, each atomically and
	 * independently (see skald_write_t in journal.h): one write's conflict or
	 * rejection must not fail the others, and an event whose data is not a
	 * JSON object or cannot be encoded makes its whole write
	 * SKALD_EREJECTED. The front has validated every write, numbered the
	 * events (seq = expected_seq + 1 + i) and set their persistence_id,
	 * version and timestamp. Sets every writes[i].status and, where it knows
	 * them, events' offsets, then calls cb with status 0, or with a negative
	 * status when the call failed as a whole (then every write carries it).
	 * A store with SKALD_CAP_BATCHED_WRITES does this in one round trip.
	 */
	int (*append)(void *state, skald_write_t *writes, size_t nwrites, skald_append_fn cb,
	              void *arg);

	/*
	 * Required. Streams the events of persistence_id with from <= seq <=
	 * min(to, highest), at most max, in seq order, skipping deleted ones, in
	 * batches of bounded size (a history of any length must not be loaded at
	 * once), then calls done. from >= 1 (the front maps 0 to 1); max 0 or
	 * from > to: no batch, done(0). A non-zero return of on_events stops the
	 * read: done gets that code. Events carry every field.
	 */
	int (*read)(void *state, const char *persistence_id, uint64_t from, uint64_t to,
	            uint64_t max, skald_events_fn on_events, skald_done_fn done, void *arg);

	/* Required. The highest seq ever stored for persistence_id, 0 if none;
	 * unchanged by deletion. */
	int (*highest)(void *state, const char *persistence_id, skald_seq_fn cb, void *arg);

	/* Required. Deletes events with seq <= min(to, highest); keeps the
	 * highest seq. */
	int (*delete_to)(void *state, const char *persistence_id, uint64_t to, skald_done_fn cb,
	                 void *arg);

	/* Optional, with SKALD_CAP_SNAPSHOTS: save (replace at the same seq;
	 * SKALD_EREJECTED for data that is not an encodable object), load the
	 * latest with seq <= max_seq (snap NULL if none), delete at exactly seq,
	 * delete all with seq <= max_seq. The front has set snap->timestamp. */
	int (*snapshot_save)(void *state, skald_snapshot_t *snap, skald_done_fn cb, void *arg);
	int (*snapshot_load)(void *state, const char *persistence_id, uint64_t max_seq,
	                     skald_snapshot_fn cb, void *arg);
	int (*snapshot_delete)(void *state, const char *persistence_id, uint64_t seq,
	                       skald_done_fn cb, void *arg);
	int (*snapshot_delete_to)(void *state, const char *persistence_id, uint64_t max_seq,
	                          skald_done_fn cb, void *arg);

	/*
	 * Optional, with SKALD_CAP_QUERIES. read_all streams every event with
	 * offset > after in ascending offset order, at most max, as read does; it
	 * must never skip a committed event (an event may be returned only once
	 * every event with a lower offset that will ever commit is visible).
	 * list_ids streams persistence ids with highest seq > 0 that start with
	 * prefix (NULL or "": all) and sort after `after` (NULL: from the
	 * start), in strcmp order, at most max.
	 */
	int (*read_all)(void *state, uint64_t after, uint64_t max, skald_events_fn on_events,
	                skald_done_fn done, void *arg);
	int (*list_ids)(void *state, const char *prefix, const char *after, uint64_t max,
	                skald_ids_fn on_ids, skald_done_fn done, void *arg);

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
 * For stores: sets the message skald_journal_errmsg(j) returns, printf-style
 * (truncated to a few hundred bytes). Call on j's loop thread.
 */
void skald_journal_set_errmsg(skald_journal_t *j, const char *fmt, ...) SKALD_STORE_PRINTF(2, 3);

/*
 * For stores: names the stored event that a read or read_all cannot decode,
 * before the read completes with SKALD_EDECODE (see skald_journal_bad_event).
 * persistence_id is copied; offset is the event's place in the global order,
 * 0 if the store does not know it. Call on j's loop thread.
 */
void skald_journal_set_bad_event(skald_journal_t *j, const char *persistence_id, uint64_t seq,
                                 uint64_t offset);

#ifdef __cplusplus
}
#endif
#endif /* SKALD_STORE_H */
