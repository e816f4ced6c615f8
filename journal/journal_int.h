/*
 * journal/journal_int.h - internals shared by the journal front and the
 * stores of this tree (the database stores' libraries use them too, from the
 * same release). Never installed.
 */
#ifndef SKALD_JOURNAL_INT_H
#define SKALD_JOURNAL_INT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "skald/store.h"

/*
 * Adds store to the registry without first registering the memory store:
 * the memory store's registration calls this (calling skald_store_register
 * from there would re-enter the one-time registration of the memory store).
 * Errors as skald_store_register.
 */
int skald__registry_add(const skald_store_t *store);

/*
 * Finds the store for uri's scheme (the text before the first ':'). On
 * failure returns SKALD_EURI or SKALD_ESCHEME and writes a message for the
 * user into err (errlen bytes), which names the mistake and, for an unknown
 * scheme, lists the registered ones. Thread-safe.
 */
int skald__registry_find(const char *uri, const skald_store_t **out, char *err, size_t errlen);

/*
 * Applies the registered upcasters to ev (type, version and data) until none
 * matches its version. ev->data must be an owned reference, which may be
 * replaced. Returns 0 or the failing upcaster's code (SKALD_EINVAL if it did
 * not raise the version or left no data). Thread-safe.
 */
int skald__upcast(skald_event_t *ev);

/* Non-zero once any upcaster is registered: lets readers skip the lookup. */
int skald__upcasters_active(void);

/* The batch=N option of every store's URI: events (or ids) per streamed
 * batch of read, read_all and list_ids, and the default without it. */
#define SKALD__BATCH_DEFAULT 1000
#define SKALD__BATCH_MAX     65536

/*
 * Parses the value of a store's batch=N option (len bytes at value, not
 * terminated) into *batch. Returns 0, or SKALD_EURI when it is not a number
 * from 1 to SKALD__BATCH_MAX, with a message in err (errlen bytes) that
 * starts "STORE journal URI: ". Thread-safe.
 */
int skald__uri_batch(const char *store, const char *value, size_t len, size_t *batch, char *err,
                     size_t errlen);

/* One of a store's migrations, as skald__migrate_walk reports it. */
typedef struct skald__migration_s {
	const char *name; /* "0001_initial": the file name, as the user sees it */
	int applied;      /* recorded as applied in the database */
	int changed;      /* applied, but recorded with another text than this build's */
} skald__migration_t;

/*
 * The part of a store's migrate member (skald_store_t.migrate) that is the
 * same for every store, once the store has read what its database records:
 * walks this build's migrations, known[0..nknown) in order, and lists them
 * (status_only) or applies each one not applied yet through apply(arg, i),
 * stopping at the first failure; then names the recorded migrations this
 * build does not know, unknown[0..nunknown), and says where the schema
 * stands. Every line goes to out (nothing when NULL), in one format for
 * every store: "applied  NAME", "pending  NAME", "unknown  NAME  (applied by
 * a newer build)", then a summary. apply returns 0, or an error with its
 * message in err (errlen bytes); the walk returns 0 or that error, or, with
 * status_only, SKALD_ESCHEMA when migrations are pending (with a message in
 * err). Blocks as long as apply does.
 */
int skald__migrate_walk(const skald__migration_t *known, size_t nknown, const char *const *unknown,
                        size_t nunknown, int status_only, FILE *out,
                        int (*apply)(void *arg, size_t i, char *err, size_t errlen), void *arg,
                        char *err, size_t errlen);

/* The journal of a system's entities when nothing names one. */
#define SKALD__JOURNAL_DEFAULT "memory://default"

/*
 * What "no journal URI" means, in one place: uri when given (not NULL),
 * else the environment variable SKALD_JOURNAL when it is set and not empty,
 * else dflt. A system's entities pass SKALD__JOURNAL_DEFAULT, so that they
 * run with no configuration at all; skald_journal_open and
 * skald_store_migrate (the tool's way in) pass NULL, so that no journal is
 * ever opened or migrated that nobody named. Stores the URI in *out
 * (borrowed) and returns 0, or returns SKALD_EURI when there is none (or it
 * is empty) with a message for the user in err (errlen bytes; may be NULL).
 */
int skald__journal_uri(const char *uri, const char *dflt, const char **out, char *err,
                       size_t errlen);

/*
 * Submits op, an append the caller owns and reuses (the writer's batch):
 * op->writes[0..op->nwrites) point at the caller's writes, which are checked
 * and numbered as skald_journal_append does. Returns 0, then done(op,
 * status) runs once on the loop, status normalised as for
 * skald_journal_append's callback, and op is the caller's again; or a
 * negative code (as skald_journal_append) and nothing runs.
 */
int skald__journal_append_op(skald_journal_t *j, skald_op_t *op,
                             void (*done)(skald_op_t *op, int status), void *arg);

/* Sets what skald_journal_open_errmsg() says on the calling thread: the
 * journal was refused before any open (an entity's spawn). */
void skald__journal_open_failed(const char *msg);

/*
 * The rules every store applies to event and snapshot data before keeping
 * it (docs/EVENT-DATA.md): a JSON object, nested at most
 * SKALD_DATA_MAX_DEPTH levels, no string or key holding U+0000, at most
 * SKALD_DATA_MAX_BYTES as compact JSON text. Returns 0, or SKALD_EREJECTED
 * with the reason in why (whylen bytes), a phrase that follows "data ...",
 * e.g. "is not a JSON object". Strings are not checked for UTF-8 here: each
 * store does (jansson only builds invalid ones through its _nocheck calls).
 * Thread-safe.
 */
int skald__data_check(const json_t *data, char *why, size_t whylen);

/* Wall-clock milliseconds since the Unix epoch. */
int64_t skald__now_ms(void);

/* Registers the memory store, which is part of the core library; called
 * once by the registry (journal/registry.c, register_builtins). */
int skald__store_memory_register(void);

/* Registers the faulty:// store (stores/faulty/faulty.c), which wraps any
 * other store and injects failures; called once by the registry after the
 * memory store. */
int skald__store_faulty_register(void);

#endif /* SKALD_JOURNAL_INT_H */
