/*
 * stores/postgres/migrate.c - `skald migrate` for PostgreSQL: applies the
 * migrations compiled into the library (migrations.c), in version order, each
 * in its own transaction together with its row in skald.schema_migrations.
 *
 * Blocking libpq: this runs in a tool, never on an actor's loop. Runs of
 * several processes at once are serialized by an advisory lock held for the
 * session, so a migration is never applied twice.
 *
 * The migrations are embedded rather than read from a directory at run time:
 * an installed `skald` or an application linked with libskald then needs no
 * share directory and can never apply SQL of another version than the code
 * that will use the schema. tests/postgres checks that the embedded text is
 * byte for byte the files' (bash stores/postgres/gen_migrations.sh rewrites
 * it).
 */
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

#include "journal/journal_int.h"
#include "skald/error.h"
#include "stores/postgres/pg.h"

/* pg_advisory_lock key: "skaldmig" in ASCII. */
#define LOCK_KEY "7741528263508486503"

typedef struct applied_s {
	int version;
	char name[140]; /* NNNN_name, as the file is named */
	int same;       /* checksum matches the embedded SQL */
} applied_t;

static void fail_msg(PGconn *c, const PGresult *res, const char *what, const char *secret,
                     char *err, size_t errlen)
{
	char m[400];
	const char *src = res ? PQresultErrorMessage(res) : PQerrorMessage(c);
	skald__pg_scrub(m, sizeof m, src && *src ? src : "no detail", secret);
	snprintf(err, errlen, "%s: %s", what, m);
}

static int exec_ok(PGconn *c, const char *sql, const char *what, const char *secret, char *err,
                   size_t errlen)
{
	PGresult *r = PQexec(c, sql);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
	if (!ok)
		fail_msg(c, r, what, secret, err, errlen);
	PQclear(r);
	return ok ? 0 : SKALD_EBACKEND;
}

static void quiet(void *arg, const char *message)
{
}

/* Reads skald.schema_migrations (none if it does not exist yet). */
static int read_applied(PGconn *c, applied_t **out, int *n, const char *secret, char *err,
                        size_t errlen)
{
	*out = NULL;
	*n = 0;
	PGresult *r = PQexec(c, "SELECT to_regclass('skald.schema_migrations') IS NOT NULL");
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		fail_msg(c, r, "reading the schema version", secret, err, errlen);
		PQclear(r);
		return SKALD_EBACKEND;
	}
	int exists = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
	PQclear(r);
	if (!exists)
		return 0;
	r = PQexec(c, "SELECT version, name, checksum FROM skald.schema_migrations ORDER BY "
	              "version");
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		fail_msg(c, r, "reading skald.schema_migrations", secret, err, errlen);
		PQclear(r);
		return SKALD_EBACKEND;
	}
	int rows = PQntuples(r);
	applied_t *a = calloc((size_t)rows + 1, sizeof *a);
	if (a == NULL) {
		PQclear(r);
		return SKALD_ENOMEM;
	}
	for (int i = 0; i < rows; i++) {
		a[i].version = atoi(PQgetvalue(r, i, 0));
		snprintf(a[i].name, sizeof a[i].name, "%04d_%s", a[i].version, PQgetvalue(r, i, 1));
		a[i].same = -1;
		for (size_t k = 0; k < skald__pg_nmigrations; k++) {
			if (skald__pg_migrations[k].version != a[i].version)
				continue;
			/* md5 by the server, so that the tool needs no digest of
			 * its own. */
			const char *p[1] = {skald__pg_migrations[k].sql};
			PGresult *m = PQexecParams(c, "SELECT md5($1)", 1, NULL, p, NULL, NULL, 0);
			if (PQresultStatus(m) == PGRES_TUPLES_OK)
				a[i].same = strcmp(PQgetvalue(m, 0, 0), PQgetvalue(r, i, 2)) == 0;
			PQclear(m);
		}
	}
	PQclear(r);
	*out = a;
	*n = rows;
	return 0;
}

static int apply_one(PGconn *c, const skald__pg_migration_t *m, const char *secret, char *err,
                     size_t errlen)
{
	char what[200];
	snprintf(what, sizeof what, "migration %04d_%s failed and was rolled back", m->version,
	         m->name);
	if (exec_ok(c, "BEGIN", what, secret, err, errlen) != 0)
		return SKALD_EBACKEND;
	/* The file may hold several statements: the simple query protocol
	 * runs them all, inside the transaction begun above. */
	int rc = exec_ok(c, m->sql, what, secret, err, errlen);
	if (rc == 0) {
		char version[16];
		snprintf(version, sizeof version, "%d", m->version);
		const char *p[3] = {version, m->name, m->sql};
		PGresult *r = PQexecParams(c,
		                           "INSERT INTO skald.schema_migrations (version, name, "
		                           "checksum) VALUES ($1::int, $2, md5($3))",
		                           3, NULL, p, NULL, NULL, 0);
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			fail_msg(c, r, what, secret, err, errlen);
			rc = SKALD_EBACKEND;
		}
		PQclear(r);
	}
	if (rc == 0)
		rc = exec_ok(c, "COMMIT", what, secret, err, errlen);
	if (rc != 0)
		PQclear(PQexec(c, "ROLLBACK"));
	return rc;
}

/* The connection apply_next works on, and the password to keep out of
 * messages. */
typedef struct apply_s {
	PGconn *c;
	const char *secret;
} apply_t;

static int apply_next(void *arg, size_t i, char *err, size_t errlen)
{
	apply_t *ap = arg;
	return apply_one(ap->c, &skald__pg_migrations[i], ap->secret, err, errlen);
}

static const applied_t *find_applied(const applied_t *a, int n, int version)
{
	for (int i = 0; i < n; i++)
		if (a[i].version == version)
			return &a[i];
	return NULL;
}

int skald__pg_migrate(const char *uri, int status_only, FILE *out, char *err, size_t errlen)
{
	skald__pg_uri_t u;
	int rc = skald__pg_uri_parse(uri, &u, err, errlen);
	if (rc != 0)
		return rc;
	PGconn *c = PQconnectdbParams((const char *const *)u.keywords,
	                              (const char *const *)u.values, 0);
	char secret[256];
	snprintf(secret, sizeof secret, "%s", u.password ? u.password : "");
	skald__pg_uri_free(&u);
	if (c == NULL) {
		snprintf(err, errlen, "out of memory connecting to PostgreSQL");
		return SKALD_ENOMEM;
	}
	if (PQstatus(c) != CONNECTION_OK) {
		fail_msg(c, NULL, "cannot connect to PostgreSQL", secret, err, errlen);
		PQfinish(c);
		return SKALD_EBACKEND;
	}
	PQsetNoticeProcessor(c, quiet, NULL);
	applied_t *a = NULL;
	int na = 0;
	rc = exec_ok(c, "SELECT pg_advisory_lock(" LOCK_KEY ")", "taking the migration lock",
	             secret, err, errlen);
	if (rc == 0)
		rc = read_applied(c, &a, &na, secret, err, errlen);
	if (rc != 0)
		goto out;

	const skald__pg_migration_t *last = &skald__pg_migrations[skald__pg_nmigrations - 1];
	size_t nk = skald__pg_nmigrations, nu = 0;
	skald__migration_t *known = calloc(nk, sizeof *known);
	char(*names)[140] = calloc(nk, sizeof *names);
	const char **unknown = calloc((size_t)na + 1, sizeof *unknown);
	if (known == NULL || names == NULL || unknown == NULL) {
		snprintf(err, errlen, "out of memory reading the schema version");
		rc = SKALD_ENOMEM;
	}
	for (size_t k = 0; k < nk && rc == 0; k++) {
		const applied_t *have = find_applied(a, na, skald__pg_migrations[k].version);
		snprintf(names[k], sizeof names[k], "%04d_%s", skald__pg_migrations[k].version,
		         skald__pg_migrations[k].name);
		known[k] = (skald__migration_t){.name = names[k],
		                                .applied = have != NULL,
		                                .changed = have && have->same == 0};
	}
	for (int i = 0; i < na && rc == 0; i++)
		if (a[i].version > last->version)
			unknown[nu++] = a[i].name;
	apply_t ap = {c, secret};
	if (rc == 0)
		rc = skald__migrate_walk(known, nk, unknown, nu, status_only, out, apply_next, &ap,
		                         err, errlen);
	free(known);
	free(names);
	free(unknown);
out:
	free(a);
	PQfinish(c); /* ends the session, and with it the advisory lock */
	return rc;
}
