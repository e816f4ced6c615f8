/*
 * stores/mongo/mongo_int.h - internals of the MongoDB journal store, shared by
 * its files and by its own tests (tests/mongo). Never installed.
 */
#ifndef SKALD_STORE_MONGO_INT_H
#define SKALD_STORE_MONGO_INT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>
#include <mongoc/mongoc.h>

#include "skald/store.h"

/* Collection names, all in the database named by the URI. */
#define SKALD_MONGO_EVENTS     "skald_events"
#define SKALD_MONGO_ORDER      "skald_order"
#define SKALD_MONGO_HEADS      "skald_heads"
#define SKALD_MONGO_META       "skald_meta"
#define SKALD_MONGO_PAYLOADS   "skald_payloads"
#define SKALD_MONGO_SNAPSHOTS  "skald_snapshots"
#define SKALD_MONGO_MIGRATIONS "skald_migrations"

/*
 * Registers the store's table with the journal (skald_store_register). A
 * constructor: it runs when the program, or the shared library holding the
 * store, is loaded, so that a program linked with this store picks it by URI
 * without calling anything. Nothing references it, so links name it with
 * -Wl,-u (skald-mongo.pc, the Makefile): that keeps the archive member that
 * holds it in a static link (docs/PACKAGING.md).
 */
void skald__store_mongo_register(void);

/* ------------------------------------------------------------------------ */
/* Event data (codec.c)                                                      */

/*
 * Appends data to doc as the field "d" (a BSON document) or, when some key
 * cannot be a field name on every MongoDB server ('$' first, a '.', an
 * empty key), the nesting is too deep for BSON, or its BSON would be larger
 * than SKALD_DATA_MAX_BYTES, as the field "j" (the JSON text). Returns 0, or
 * SKALD_EREJECTED with the reason in why (whylen bytes, a phrase after
 * "data ...") when data breaks the rules of every store (skald__data_check)
 * or holds a string or key that is not valid UTF-8 (then doc may hold part
 * of the field: discard it). data is borrowed.
 */
int skald__mongo_put_data(bson_t *doc, const json_t *data, char *why, size_t whylen);

/*
 * The event or snapshot data held by the document iter points into (the
 * fields "d" or "j" of its parent, read through the two iterators), as a new
 * reference, or NULL (with *err set to a reason) when neither is there or
 * they do not decode. d and j may be NULL when absent.
 */
json_t *skald__mongo_get_data(const bson_iter_t *d, const bson_iter_t *j, const char **err);

/* The document key of the events document of persistence_id whose first
 * seq is prev + 1: "PID@PREV". Returns a malloc'ed string, or NULL. */
char *skald__mongo_event_key(const char *persistence_id, uint64_t prev);

/* ------------------------------------------------------------------------ */
/* Schema migrations (schema.c)                                              */

typedef struct skald__mongo_migration_s {
	const char *name; /* "0001_initial", the file name without .json */
	const char *json; /* the file's text, byte for byte */
} skald__mongo_migration_t;

/* The migrations built into the library, in order, ending with {NULL}. The
 * files in migrations/mongo/ are the source; a test checks that these are
 * identical to them. */
extern const skald__mongo_migration_t skald__mongo_migrations[];

/*
 * The store's migrate member (see skald_store_t.migrate): applies, in
 * order, every built-in migration not yet recorded in the database named by
 * uri, recording each in skald_migrations; with status_only lists them
 * instead. Blocks (network): for tools and tests, never on an event loop.
 * Safe to run concurrently from several processes, and again: applied
 * migrations are skipped, and every step is idempotent. Errors: SKALD_EURI,
 * SKALD_EBACKEND, SKALD_ESCHEMA (a built-in migration is malformed), with a
 * message in err that never repeats a password.
 */
int skald__mongo_migrate(const char *uri, int status_only, FILE *out, char *err, size_t errlen);

/*
 * Checks on client that every built-in migration is recorded in db. Returns
 * 0, SKALD_ESCHEMA (some are pending: msg names the first and tells to run
 * `skald migrate`) or SKALD_EBACKEND (the check failed). Blocks.
 */
int skald__mongo_schema_check(mongoc_client_t *client, const char *db, char *msg, size_t msglen);

/* The work of skald__mongo_migrate once connected: client on db. Blocks. */
int skald__mongo_migrate_client(mongoc_client_t *client, const char *db, int status_only, FILE *out,
                                char *msg, size_t msglen);

#endif /* SKALD_STORE_MONGO_INT_H */
