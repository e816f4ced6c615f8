/*
 * tests/postgres/helpers.c - fixtures of the PostgreSQL store suite (see
 * helpers.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/postgres/helpers.h"

const char *pgt_tag(void)
{
	static char tag[32];
	if (tag[0] == '\0') {
		uint32_t r = 0;
		if (uv_random(NULL, NULL, &r, sizeof r, 0, NULL) != 0)
			r = (uint32_t)time(NULL) ^ (uint32_t)clock();
		snprintf(tag, sizeof tag, "%d_%08x", (int)getpid(), r);
	}
	return tag;
}

int pgt_sh(const char *cmd, char *out, size_t outlen)
{
	FILE *p = popen(cmd, "r");
	if (p == NULL)
		return -1;
	char line[1024] = "";
	int got = fgets(line, sizeof line, p) != NULL;
	/* Drain the rest so the command never blocks on a full pipe. */
	char sink[256];
	while (fgets(sink, sizeof sink, p) != NULL)
		;
	int st = pclose(p);
	if (out && outlen) {
		line[strcspn(line, "\n")] = '\0';
		snprintf(out, outlen, "%s", got ? line : "");
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

const char *pgt_server_uri(void)
{
	static char uri[512];
	if (uri[0])
		return uri;
	const char *e = getenv("SKALD_TEST_PG");
	if (e == NULL || !*e) {
		e = getenv("SKALD_TEST_STORE");
		if (e && strncmp(e, "postgres://", 11) != 0 && strncmp(e, "postgresql://", 13) != 0)
			e = NULL;
	}
	if (e && *e) {
		snprintf(uri, sizeof uri, "%s", e);
		/* The store's own options would confuse libpq. */
		uri[strcspn(uri, "?")] = '\0';
		return uri;
	}
	int rc = pgt_sh("bash scripts/pg.sh start 2>&1", uri, sizeof uri);
	cr_assert_eq(rc, 0,
	             "no PostgreSQL for the postgres suite: `scripts/pg.sh start` failed (%d): %s "
	             "(set SKALD_TEST_PG=postgres://... to use another server)",
	             rc, uri);
	return uri;
}

PGconn *pgt_connect(const char *uri)
{
	PGconn *c = PQconnectdb(uri);
	cr_assert_eq(PQstatus(c), CONNECTION_OK, "cannot connect: %s", PQerrorMessage(c));
	PQclear(PQexec(c, "SET client_min_messages = warning"));
	return c;
}

long long pgt_exec(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	ExecStatusType st = PQresultStatus(r);
	cr_assert(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK, "%s: %s", sql,
	          PQresultErrorMessage(r));
	long long v = 0;
	if (st == PGRES_TUPLES_OK && PQntuples(r) > 0 && PQnfields(r) > 0)
		v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return v;
}

/* uri with its database replaced by db. */
static void with_db(char *out, size_t len, const char *uri, const char *db)
{
	const char *scheme_end = strstr(uri, "://");
	const char *slash = scheme_end ? strchr(scheme_end + 3, '/') : NULL;
	size_t head = slash ? (size_t)(slash - uri) : strlen(uri);
	snprintf(out, len, "%.*s/%s", (int)head, uri, db);
}

void pgt_db_new(pgt_db_t *db, const char *base, int migrate)
{
	static int counter;
	memset(db, 0, sizeof *db);
	snprintf(db->base, sizeof db->base, "%s", base ? base : pgt_server_uri());
	snprintf(db->name, sizeof db->name, "skald_t_%s_%d", pgt_tag(), ++counter);
	PGconn *c = pgt_connect(db->base);
	char sql[256];
	snprintf(sql, sizeof sql, "CREATE DATABASE %s", db->name);
	pgt_exec(c, sql);
	PQfinish(c);
	with_db(db->uri, sizeof db->uri, db->base, db->name);
	if (migrate) {
		char err[512] = "";
		int rc = skald_store_migrate(db->uri, 0, NULL, err, sizeof err);
		cr_assert_eq(rc, 0, "migrate: %d: %s", rc, err);
	}
}

void pgt_db_drop(pgt_db_t *db)
{
	PGconn *c = pgt_connect(db->base);
	char sql[256];
	snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", db->name);
	pgt_exec(c, sql);
	PQfinish(c);
}

static void on_guard(uv_timer_t *timer)
{
	pgt_t *t = timer->data;
	t->expired = 1;
}

void pgt_open(pgt_t *t, const char *uri)
{
	memset(t, 0, sizeof *t);
	cr_assert_eq(uv_loop_init(&t->loop), 0);
	uv_timer_init(&t->loop, &t->guard);
	t->guard.data = t;
	uv_unref((uv_handle_t *)&t->guard);
	int rc = skald_journal_open(&t->loop, uri, &t->j);
	cr_assert_eq(rc, 0, "open: %d: %s", rc, skald_journal_open_errmsg());
}

void pgt_run_until(pgt_t *t, const int *counter, int target)
{
	t->expired = 0;
	uv_timer_start(&t->guard, on_guard, PGT_WAIT_MS, 0);
	while (*counter < target && !t->expired)
		if (uv_run(&t->loop, UV_RUN_ONCE) == 0 && *counter < target)
			break;
	uv_timer_stop(&t->guard);
	cr_assert_geq(*counter, target, "%s: %d of %d callbacks arrived",
	              t->expired ? "timed out" : "the loop ran dry", *counter, target);
}

void pgt_run_for(pgt_t *t, uint64_t ms)
{
	t->expired = 0;
	uv_timer_start(&t->guard, on_guard, ms, 0);
	while (!t->expired)
		uv_run(&t->loop, UV_RUN_ONCE);
}

static void on_closed(skald_journal_t *j, void *arg)
{
	(*(int *)arg)++;
}

void pgt_close(pgt_t *t)
{
	int closed = 0;
	cr_assert_eq(skald_journal_close(t->j, on_closed, &closed), 0);
	pgt_run_until(t, &closed, 1);
	uv_close((uv_handle_t *)&t->guard, NULL);
	uv_run(&t->loop, UV_RUN_DEFAULT);
	cr_assert_eq(uv_loop_close(&t->loop), 0, "handles left on the loop");
}

typedef struct call_s {
	int calls, status;
	uint64_t seq;
} call_t;

static void on_append(skald_journal_t *j, int status, skald_write_t *w, size_t n, void *arg)
{
	call_t *c = arg;
	c->calls++;
	c->status = status;
}

int pgt_append(pgt_t *t, const char *pid, uint64_t expected, size_t n, uint64_t *offsets)
{
	skald_event_t *ev = calloc(n, sizeof *ev);
	for (size_t i = 0; i < n; i++) {
		ev[i].type = "pgt.counted";
		ev[i].data = json_pack("{sI}", "n", (json_int_t)(expected + 1 + i));
	}
	skald_write_t w = {pid, expected, ev, n, 0};
	call_t c = {0};
	int rc = skald_journal_append(t->j, &w, 1, on_append, &c);
	cr_assert_eq(rc, 0, "append: %d: %s", rc, skald_journal_errmsg(t->j));
	pgt_run_until(t, &c.calls, 1);
	for (size_t i = 0; i < n; i++) {
		if (offsets)
			offsets[i] = ev[i].offset;
		json_decref(ev[i].data);
	}
	free(ev);
	return c.status;
}

static void on_seq(skald_journal_t *j, int status, uint64_t seq, void *arg)
{
	call_t *c = arg;
	c->calls++;
	c->status = status;
	c->seq = seq;
}

uint64_t pgt_highest(pgt_t *t, const char *pid)
{
	call_t c = {0};
	cr_assert_eq(skald_journal_highest(t->j, pid, on_seq, &c), 0);
	pgt_run_until(t, &c.calls, 1);
	cr_assert_eq(c.status, 0, "highest: %d: %s", c.status, skald_journal_errmsg(t->j));
	return c.seq;
}

static int on_events(skald_journal_t *j, const skald_event_t *ev, size_t n, void *arg)
{
	pgt_read_t *r = arg;
	if (r->n + n > r->cap) {
		r->cap = (r->n + n) * 2;
		r->pids = realloc(r->pids, r->cap * sizeof *r->pids);
		r->seqs = realloc(r->seqs, r->cap * sizeof *r->seqs);
		r->offsets = realloc(r->offsets, r->cap * sizeof *r->offsets);
		r->data = realloc(r->data, r->cap * sizeof *r->data);
	}
	for (size_t i = 0; i < n; i++) {
		r->pids[r->n] = strdup(ev[i].persistence_id);
		r->seqs[r->n] = ev[i].seq;
		r->offsets[r->n] = ev[i].offset;
		r->data[r->n] = json_incref(ev[i].data);
		r->n++;
	}
	return 0;
}

static void on_read_done(skald_journal_t *j, int status, void *arg)
{
	pgt_read_t *r = arg;
	r->calls++;
	r->status = status;
}

void pgt_read(pgt_t *t, const char *pid, pgt_read_t *r)
{
	memset(r, 0, sizeof *r);
	cr_assert_eq(skald_journal_read(t->j, pid, 1, SKALD_SEQ_MAX, SKALD_SEQ_MAX, on_events,
	                                on_read_done, r),
	             0);
	pgt_run_until(t, &r->calls, 1);
}

void pgt_read_all(pgt_t *t, uint64_t after, uint64_t max, pgt_read_t *r)
{
	memset(r, 0, sizeof *r);
	cr_assert_eq(skald_journal_read_all(t->j, after, max, on_events, on_read_done, r), 0);
	pgt_run_until(t, &r->calls, 1);
}

void pgt_read_free(pgt_read_t *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->pids[i]);
		json_decref(r->data[i]);
	}
	free(r->pids);
	free(r->seqs);
	free(r->offsets);
	free(r->data);
	memset(r, 0, sizeof *r);
}
