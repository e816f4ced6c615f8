/*
 * tests/postgres/test_schema.c - migrations, the schema check and URIs.
 */
#include <dirent.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stores/postgres/pg.h"
#include "tests/postgres/helpers.h"

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f, "cannot open %s", path);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *buf = malloc((size_t)n + 1);
	cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

Test(migrations, embedded_sql_matches_the_files_byte_for_byte, .timeout = PGT_TIMEOUT)
{
	/* Run from the repository's root, as scripts/check.sh does. */
	DIR *d = opendir("migrations/postgres");
	cr_assert_not_null(d,
	                   "migrations/postgres not found: run the suite from the repository root");
	char *names[256];
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL && n < 256) {
		size_t len = strlen(e->d_name);
		if (len > 4 && strcmp(e->d_name + len - 4, ".sql") == 0)
			names[n++] = strdup(e->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof *names, cmp_names);
	cr_assert_eq(n, skald__pg_nmigrations,
	             "%zu .sql files but %zu embedded migrations: run bash "
	             "stores/postgres/gen_migrations.sh",
	             n, skald__pg_nmigrations);
	for (size_t i = 0; i < n; i++) {
		const skald__pg_migration_t *m = &skald__pg_migrations[i];
		char want[256], path[300];
		snprintf(want, sizeof want, "%04d_%s.sql", m->version, m->name);
		cr_assert_str_eq(names[i], want, "run bash stores/postgres/gen_migrations.sh");
		cr_assert_eq(m->version, (int)i + 1, "versions go 1, 2, 3... without gaps");
		snprintf(path, sizeof path, "migrations/postgres/%s", names[i]);
		size_t len;
		char *text = slurp(path, &len);
		cr_assert_eq(strlen(m->sql), len,
		             "%s differs from the embedded copy: run bash "
		             "stores/postgres/gen_migrations.sh",
		             names[i]);
		cr_assert(memcmp(m->sql, text, len) == 0,
		          "%s differs from the embedded copy: run bash "
		          "stores/postgres/gen_migrations.sh",
		          names[i]);
		free(text);
		free(names[i]);
	}
}

/* Output of a migrate run, captured. */
static int migrate(const char *uri, int status_only, char *out, size_t len, char *err,
                   size_t errlen)
{
	FILE *f = fmemopen(out, len, "w");
	cr_assert_not_null(f);
	int rc = skald_store_migrate(uri, status_only, f, err, errlen);
	fclose(f);
	return rc;
}

Test(migrations, migrate_applies_pending_then_has_nothing_to_do, .timeout = PGT_TIMEOUT)
{
	pgt_db_t db;
	pgt_db_new(&db, NULL, 0);
	char out[4096], err[512];
	const skald__pg_migration_t *last = &skald__pg_migrations[skald__pg_nmigrations - 1];
	char name[128];
	snprintf(name, sizeof name, "%04d_%s", last->version, last->name);

	cr_assert_eq(migrate(db.uri, 1, out, sizeof out, err, sizeof err), SKALD_ESCHEMA,
	             "status with migrations pending");
	cr_assert(strstr(out, "pending") && strstr(out, name), "status: %s", out);
	cr_assert(strstr(err, "pending"), "%s", err);

	cr_assert_eq(migrate(db.uri, 0, out, sizeof out, err, sizeof err), 0, "%s", err);
	cr_assert(strstr(out, "applied") && strstr(out, name), "migrate: %s", out);

	cr_assert_eq(migrate(db.uri, 1, out, sizeof out, err, sizeof err), 0, "%s", err);
	cr_assert(strstr(out, "pending") == NULL, "status after migrate: %s", out);
	cr_assert(strstr(out, "up to date"), "status after migrate: %s", out);

	cr_assert_eq(migrate(db.uri, 0, out, sizeof out, err, sizeof err), 0, "%s", err);
	cr_assert(strstr(out, "nothing to apply"), "second migrate: %s", out);

	PGconn *c = pgt_connect(db.uri);
	cr_assert_eq(pgt_exec(c, "SELECT max(version) FROM skald.schema_migrations"),
	             last->version);
	PQfinish(c);
	pgt_db_drop(&db);
}

Test(migrations, concurrent_migrations_apply_each_once, .timeout = PGT_TIMEOUT)
{
	pgt_db_t db;
	pgt_db_new(&db, NULL, 0);
	enum { N = 3 };
	pid_t kids[N];
	for (int i = 0; i < N; i++) {
		kids[i] = fork();
		cr_assert_neq(kids[i], -1);
		if (kids[i] == 0) {
			char err[512];
			_exit(skald_store_migrate(db.uri, 0, NULL, err, sizeof err) == 0 ? 0 : 1);
		}
	}
	for (int i = 0; i < N; i++) {
		int st;
		cr_assert_eq(waitpid(kids[i], &st, 0), kids[i]);
		cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "migration process %d failed", i);
	}
	PGconn *c = pgt_connect(db.uri);
	cr_assert_eq(pgt_exec(c, "SELECT count(*) FROM skald.schema_migrations"),
	             (long long)skald__pg_nmigrations);
	PQfinish(c);
	pgt_db_drop(&db);
}

static void on_seq(skald_journal_t *j, int status, uint64_t seq, void *arg)
{
	int *st = arg;
	*st = status;
	st[1]++;
}

/* The status and message of a highest on a fresh handle to uri. */
static int first_op(const char *uri, char *msg, size_t len)
{
	pgt_t t;
	pgt_open(&t, uri);
	int st[2] = {0, 0};
	cr_assert_eq(skald_journal_highest(t.j, "any", on_seq, st), 0);
	pgt_run_until(&t, &st[1], 1);
	snprintf(msg, len, "%s", skald_journal_errmsg(t.j));
	pgt_close(&t);
	return st[0];
}

Test(schema, store_refuses_a_database_without_the_schema, .timeout = PGT_TIMEOUT)
{
	pgt_db_t db;
	pgt_db_new(&db, NULL, 0);
	char msg[512];
	cr_assert_eq(first_op(db.uri, msg, sizeof msg), SKALD_ESCHEMA, "%s", msg);
	cr_assert(strstr(msg, "skald migrate") != NULL, "the message names the fix: %s", msg);
	/* Migrating heals it, without reopening anything but the handle. */
	char err[512];
	cr_assert_eq(skald_store_migrate(db.uri, 0, NULL, err, sizeof err), 0, "%s", err);
	cr_assert_eq(first_op(db.uri, msg, sizeof msg), 0, "%s", msg);
	pgt_db_drop(&db);
}

Test(schema, store_refuses_an_older_schema, .timeout = PGT_TIMEOUT)
{
	pgt_db_t db;
	pgt_db_new(&db, NULL, 1);
	PGconn *c = pgt_connect(db.uri);
	/* As if the latest migration had not been applied yet. */
	pgt_exec(c, "DELETE FROM skald.schema_migrations WHERE version = (SELECT max(version) "
	            "FROM skald.schema_migrations)");
	PQfinish(c);
	char msg[512];
	cr_assert_eq(first_op(db.uri, msg, sizeof msg), SKALD_ESCHEMA, "%s", msg);
	cr_assert(strstr(msg, "skald migrate") != NULL, "%s", msg);
	cr_assert(strstr(msg, "version") != NULL, "%s", msg);
	pgt_db_drop(&db);
}

Test(uri, store_options_and_libpq_options_are_told_apart, .timeout = PGT_TIMEOUT)
{
	uv_loop_t loop;
	skald_journal_t *j;
	cr_assert_eq(uv_loop_init(&loop), 0);
	cr_assert_eq(skald_journal_open(&loop, "postgres://u:hunter2-secret@h/db?bogus=1", &j),
	             SKALD_EURI);
	const char *m = skald_journal_open_errmsg();
	cr_assert(strstr(m, "bogus") != NULL, "names the mistake: %s", m);
	cr_assert(strstr(m, "hunter2-secret") == NULL, "a password leaked: %s", m);
	cr_assert_eq(skald_journal_open(&loop, "postgres://h/db?batch=0", &j), SKALD_EURI);
	cr_assert(strstr(skald_journal_open_errmsg(), "batch") != NULL);
	cr_assert_eq(skald_journal_open(&loop, "postgres:h", &j), SKALD_EURI);
	/* Valid: store options, a libpq option, both schemes. Opening does
	 * not connect. */
	cr_assert_eq(skald_journal_open(&loop,
	                                "postgresql://u:p@127.0.0.1:1/db?batch=7&connect_timeout=3&"
	                                "read_all_wait_ms=5",
	                                &j),
	             0, "%s", skald_journal_open_errmsg());
	cr_assert_str_eq(skald_journal_scheme(j), "postgres");
	int closed = 0;
	cr_assert_eq(skald_journal_close(j, NULL, &closed), 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	cr_assert_eq(uv_loop_close(&loop), 0);
}

Test(uri, connection_failure_names_the_server_and_never_the_password, .timeout = PGT_TIMEOUT)
{
	char msg[512];
	int st = first_op("postgres://skald:hunter2-secret@127.0.0.1:1/skald", msg, sizeof msg);
	cr_assert_eq(st, SKALD_EBACKEND, "%d: %s", st, msg);
	cr_assert(strstr(msg, "connect") != NULL, "%s", msg);
	cr_assert(strstr(msg, "hunter2-secret") == NULL, "a password leaked: %s", msg);
	/* A host name is resolved off the loop. */
	st = first_op("postgres://skald:x@no-such-host.invalid:5432/skald?connect_timeout=5", msg,
	              sizeof msg);
	cr_assert_eq(st, SKALD_EBACKEND, "%d: %s", st, msg);
	cr_assert(strstr(msg, "no-such-host.invalid") != NULL, "%s", msg);
	/* The right server by name. */
	pgt_db_t db;
	pgt_db_new(&db, NULL, 1);
	char uri[600];
	snprintf(uri, sizeof uri, "%s", db.uri);
	char *at = strstr(uri, "@127.0.0.1:");
	cr_assert_not_null(at, "the test server's URI: %s", uri);
	char rest[600];
	snprintf(rest, sizeof rest, "%s", at + strlen("@127.0.0.1"));
	snprintf(at, sizeof uri - (size_t)(at - uri), "@localhost%s", rest);
	st = first_op(uri, msg, sizeof msg);
	cr_assert_eq(st, 0, "%d: %s", st, msg);
	pgt_db_drop(&db);
}
