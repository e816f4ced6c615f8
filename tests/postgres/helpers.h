/*
 * tests/postgres/helpers.h - fixtures of the PostgreSQL store suite.
 *
 * The server: SKALD_TEST_PG (a postgres:// URI whose user may create
 * databases), else SKALD_TEST_STORE when it is a postgres:// URI, else the
 * suite starts the test cluster itself with `scripts/pg.sh start` (run from
 * the repository's root, as scripts/check.sh does). A server that cannot be
 * had fails the test: the suite never skips.
 *
 * Every test works in a database of its own (pgt_db_new), created fresh and
 * dropped at the end, so tests may run in parallel and each can see the
 * whole journal. Blocking libpq is fine here: it is the test's own thread,
 * and the store under test runs on the test's loop.
 */
#ifndef SKALD_TESTS_POSTGRES_HELPERS_H
#define SKALD_TESTS_POSTGRES_HELPERS_H

#include <criterion/criterion.h>
#include <libpq-fe.h>
#include <stdint.h>
#include <uv.h>

#include "skald/journal.h"
#include "skald/store.h"

#define PGT_TIMEOUT 300
#define PGT_WAIT_MS 60000

/* The server's URI (borrowed, static). */
const char *pgt_server_uri(void);

/* A database of the test's own on the server at base (NULL: pgt_server_uri).
 * uri receives its URI. With migrate, the schema is applied. */
typedef struct pgt_db_s {
	char name[64];
	char uri[512];
	char base[512];
} pgt_db_t;
void pgt_db_new(pgt_db_t *db, const char *base, int migrate);
void pgt_db_drop(pgt_db_t *db);

/* A blocking connection to uri (asserts it works). */
PGconn *pgt_connect(const char *uri);
/* Runs sql (asserts success) and returns the first value of the first row
 * as a number, or 0. */
long long pgt_exec(PGconn *c, const char *sql);

/* A test's loop with one journal handle. */
typedef struct pgt_s {
	uv_loop_t loop;
	skald_journal_t *j;
	uv_timer_t guard;
	int expired;
} pgt_t;

void pgt_open(pgt_t *t, const char *uri);
/* Closes the handle, then asserts the loop closes cleanly. */
void pgt_close(pgt_t *t);
/* Runs the loop until *counter >= target (asserts it happens within
 * PGT_WAIT_MS). */
void pgt_run_until(pgt_t *t, const int *counter, int target);
/* Runs the loop for ms milliseconds. */
void pgt_run_for(pgt_t *t, uint64_t ms);

/* Synchronous operations on t's handle. */
typedef struct pgt_read_s {
	int calls, status;
	size_t n, cap;
	char **pids;
	uint64_t *seqs, *offsets;
	json_t **data;
} pgt_read_t;
void pgt_read_free(pgt_read_t *r);

/* Appends n events {"n": seq} to pid after expected in one write; returns
 * the status. offsets (may be NULL) receives the events' offsets. */
int pgt_append(pgt_t *t, const char *pid, uint64_t expected, size_t n, uint64_t *offsets);
uint64_t pgt_highest(pgt_t *t, const char *pid);
void pgt_read(pgt_t *t, const char *pid, pgt_read_t *r);
void pgt_read_all(pgt_t *t, uint64_t after, uint64_t max, pgt_read_t *r);

/* Runs a shell command from the repository root; returns its exit status.
 * out (may be NULL) receives its first line of output. */
int pgt_sh(const char *cmd, char *out, size_t outlen);

/* A tag unique to this test run, for names. */
const char *pgt_tag(void);

#endif /* SKALD_TESTS_POSTGRES_HELPERS_H */
