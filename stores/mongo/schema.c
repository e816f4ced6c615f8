/*
 * stores/mongo/schema.c - the MongoDB store's schema migrations.
 *
 * A migration is a JSON file migrations/mongo/NNNN_name.json holding
 * "commands", an array of MongoDB database commands run in order (extended
 * JSON, so any command can be written). The files are built into the
 * library here, byte for byte, so that a deployed binary carries the schema
 * it expects; tests/mongo checks that the copies below equal the files.
 *
 * The collection skald_migrations records each applied migration as
 * {_id: name, checksum, applied}. Every command must be idempotent (running
 * it twice leaves the same state), and "create" of a collection that exists
 * is taken as done, so two processes migrating at once, or a migration cut
 * short and run again, end in the same state. The record is written after
 * the commands: a migration is never recorded before it has fully run.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "journal/journal_int.h"
#include "stores/mongo/mongo_int.h"

/* MongoDB's NamespaceExists: "create" of a collection that is there. */
#define ERR_NAMESPACE_EXISTS 48
#define ERR_DUPLICATE_KEY    11000

const skald__mongo_migration_t skald__mongo_migrations[] = {
        {"0001_initial",
         "{\n"
         "  \"description\": [\n"
         "    \"The journal's collections, and the secondary indexes that keep its\",\n"
         "    \"range queries cheap on MongoDB (replay of long histories, deletion,\",\n"
         "    \"the latest snapshot). Correctness never rests on them: every\",\n"
         "    \"uniqueness the journal needs is carried by _id.\"\n"
         "  ],\n"
         "  \"commands\": [\n"
         "    {\"create\": \"skald_events\"},\n"
         "    {\"create\": \"skald_payloads\"},\n"
         "    {\"create\": \"skald_order\"},\n"
         "    {\"create\": \"skald_heads\"},\n"
         "    {\"create\": \"skald_meta\"},\n"
         "    {\"create\": \"skald_snapshots\"},\n"
         "    {\"createIndexes\": \"skald_events\",\n"
         "     \"indexes\": [{\"key\": {\"pid\": 1, \"to\": 1}, \"name\": \"pid_to\"}]},\n"
         "    {\"createIndexes\": \"skald_snapshots\",\n"
         "     \"indexes\": [{\"key\": {\"pid\": 1, \"seq\": 1}, \"name\": \"pid_seq\"}]}\n"
         "  ]\n"
         "}\n"},
        {NULL, NULL},
};

/* The names recorded in skald_migrations (freed with free_names), or -1
 * with err set when they cannot be read. */
static int applied_names(mongoc_client_t *client, const char *db, char ***names, size_t *n,
                         bson_error_t *err)
{
	mongoc_collection_t *coll =
	        mongoc_client_get_collection(client, db, SKALD_MONGO_MIGRATIONS);
	bson_t filter = BSON_INITIALIZER;
	mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, &filter, NULL, NULL);
	const bson_t *doc;
	*names = NULL;
	*n = 0;
	while (mongoc_cursor_next(cur, &doc)) {
		bson_iter_t it;
		if (!bson_iter_init_find(&it, doc, "_id") || !BSON_ITER_HOLDS_UTF8(&it))
			continue;
		char **grown = realloc(*names, (*n + 1) * sizeof **names);
		if (grown == NULL)
			break;
		*names = grown;
		(*names)[(*n)++] = bson_strdup(bson_iter_utf8(&it, NULL));
	}
	int rc = mongoc_cursor_error(cur, err) ? -1 : 0;
	mongoc_cursor_destroy(cur);
	bson_destroy(&filter);
	mongoc_collection_destroy(coll);
	return rc;
}

static void free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		bson_free(names[i]);
	free(names);
}

static int has_name(char **names, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return 1;
	return 0;
}

int skald__mongo_schema_check(mongoc_client_t *client, const char *db, char *msg, size_t msglen)
{
	char **names;
	size_t n;
	bson_error_t err;
	if (applied_names(client, db, &names, &n, &err) != 0) {
		snprintf(msg, msglen, "MongoDB journal: cannot read %s.%s: %s", db,
		         SKALD_MONGO_MIGRATIONS, err.message);
		return SKALD_EBACKEND;
	}
	int rc = 0;
	for (const skald__mongo_migration_t *m = skald__mongo_migrations; m->name; m++) {
		if (!has_name(names, n, m->name)) {
			snprintf(
			        msg, msglen,
			        "MongoDB journal database \"%s\" is missing schema migration %s%s: "
			        "run `skald migrate` with this journal URI first",
			        db, m->name, n == 0 ? " (no migration was ever applied)" : "");
			rc = SKALD_ESCHEMA;
			break;
		}
	}
	free_names(names, n);
	return rc;
}

/* Runs the commands of one migration. */
static int run_migration(mongoc_client_t *client, const char *db, const skald__mongo_migration_t *m,
                         char *msg, size_t msglen)
{
	bson_error_t err;
	bson_t *spec = bson_new_from_json((const uint8_t *)m->json, -1, &err);
	bson_iter_t it, cmds;
	if (spec == NULL || !bson_iter_init_find(&it, spec, "commands") ||
	    !BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &cmds)) {
		snprintf(msg, msglen, "migration %s is malformed: %s", m->name,
		         spec ? "no \"commands\" array" : err.message);
		if (spec)
			bson_destroy(spec);
		return SKALD_ESCHEMA;
	}
	int rc = 0;
	mongoc_database_t *database = mongoc_client_get_database(client, db);
	for (int k = 0; rc == 0 && bson_iter_next(&cmds); k++) {
		const uint8_t *data;
		uint32_t len;
		bson_t cmd;
		if (!BSON_ITER_HOLDS_DOCUMENT(&cmds)) {
			snprintf(msg, msglen, "migration %s: command %d is not a document", m->name,
			         k);
			rc = SKALD_ESCHEMA;
			break;
		}
		bson_iter_document(&cmds, &len, &data);
		if (!bson_init_static(&cmd, data, len)) {
			rc = SKALD_ESCHEMA;
			break;
		}
		bson_t reply;
		if (!mongoc_database_command_simple(database, &cmd, NULL, &reply, &err) &&
		    err.code != ERR_NAMESPACE_EXISTS) {
			snprintf(msg, msglen, "migration %s, command %d failed: %s", m->name, k,
			         err.message);
			rc = SKALD_EBACKEND;
		}
		bson_destroy(&reply);
	}
	mongoc_database_destroy(database);
	bson_destroy(spec);
	if (rc != 0)
		return rc;

	mongoc_collection_t *coll =
	        mongoc_client_get_collection(client, db, SKALD_MONGO_MIGRATIONS);
	/* The hash of the migration's text is recorded so that an operator can
	 * tell which text was applied. */
	char sum[17];
	snprintf(sum, sizeof sum, "%016" PRIx64, skald__hash_str(m->json));
	bson_t *rec = BCON_NEW("_id", BCON_UTF8(m->name), "checksum", BCON_UTF8(sum), "applied",
	                       BCON_DATE_TIME(skald__now_ms()));
	/* A concurrent migrator may have recorded it first: the same state. */
	if (!mongoc_collection_insert_one(coll, rec, NULL, NULL, &err) &&
	    err.code != ERR_DUPLICATE_KEY) {
		snprintf(msg, msglen, "migration %s ran, but recording it failed: %s", m->name,
		         err.message);
		rc = SKALD_EBACKEND;
	}
	bson_destroy(rec);
	mongoc_collection_destroy(coll);
	return rc;
}

/* The client and database apply_next works on. */
typedef struct apply_s {
	mongoc_client_t *client;
	const char *db;
} apply_t;

static int apply_next(void *arg, size_t i, char *msg, size_t msglen)
{
	apply_t *ap = arg;
	return run_migration(ap->client, ap->db, &skald__mongo_migrations[i], msg, msglen);
}

int skald__mongo_migrate_client(mongoc_client_t *client, const char *db, int status_only, FILE *out,
                                char *msg, size_t msglen)
{
	char **names;
	size_t n;
	bson_error_t err;
	if (applied_names(client, db, &names, &n, &err) != 0) {
		snprintf(msg, msglen, "MongoDB journal: cannot read %s.%s: %s", db,
		         SKALD_MONGO_MIGRATIONS, err.message);
		return SKALD_EBACKEND;
	}
	size_t nk = 0, nu = 0;
	while (skald__mongo_migrations[nk].name)
		nk++;
	skald__migration_t *known = calloc(nk + 1, sizeof *known);
	const char **unknown = calloc(n + 1, sizeof *unknown);
	int rc = 0;
	if (known == NULL || unknown == NULL) {
		snprintf(msg, msglen, "out of memory reading %s.%s", db, SKALD_MONGO_MIGRATIONS);
		rc = SKALD_ENOMEM;
	}
	for (size_t k = 0; k < nk && rc == 0; k++)
		known[k] = (skald__migration_t){
		        .name = skald__mongo_migrations[k].name,
		        .applied = has_name(names, n, skald__mongo_migrations[k].name)};
	for (size_t i = 0; i < n && rc == 0; i++) {
		int found = 0;
		for (size_t k = 0; k < nk && !found; k++)
			found = strcmp(known[k].name, names[i]) == 0;
		if (!found)
			unknown[nu++] = names[i];
	}
	apply_t ap = {client, db};
	if (rc == 0)
		rc = skald__migrate_walk(known, nk, unknown, nu, status_only, out, apply_next, &ap,
		                         msg, msglen);
	free(known);
	free(unknown);
	free_names(names, n);
	return rc;
}
