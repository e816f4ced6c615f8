/*
 * tests/postgres/test_order.c - batching, conflicts under concurrency, and
 * the global order with concurrent writers in several processes.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "stores/postgres/pg.h"
#include "tests/postgres/helpers.h"

typedef struct acall_s {
	int calls, status;
} acall_t;

static void on_append(skald_journal_t *j, int status, skald_write_t *w, size_t n, void *arg)
{
	acall_t *c = arg;
	c->calls++;
	c->status = status;
}

/* One event {"n": seq} per write, for `n` writes of distinct ids. */
typedef struct batch_s {
	skald_write_t *w;
	skald_event_t *ev;
	char (*pids)[96];
	size_t n;
} batch_t;

static void batch_init(batch_t *b, size_t n, const char *prefix)
{
	b->n = n;
	b->w = calloc(n, sizeof *b->w);
	b->ev = calloc(n, sizeof *b->ev);
	b->pids = calloc(n, sizeof *b->pids);
	for (size_t i = 0; i < n; i++) {
		snprintf(b->pids[i], sizeof b->pids[i], "%s-%zu", prefix, i);
		b->ev[i] =
		        (skald_event_t){.type = "pgt.batched", .data = json_pack("{si}", "n", 1)};
		b->w[i] = (skald_write_t){b->pids[i], 0, &b->ev[i], 1, 0};
	}
}

static void batch_free(batch_t *b)
{
	for (size_t i = 0; i < b->n; i++)
		json_decref(b->ev[i].data);
	free(b->w);
	free(b->ev);
	free(b->pids);
}

Test(batching, one_append_of_many_ids_is_one_transaction, .timeout = PGT_TIMEOUT)
{
	pgt_db_t db;
	pgt_db_new(&db, NULL, 1);
	pgt_t t;
	pgt_open(&t, db.uri);
	batch_t b;
	batch_init(&b, 500, "batched");
	acall_t c = {0};
	cr_assert_eq(skald_journal_append(t.j, b.w, b.n, on_append, &c), 0);
	pgt_run_until(&t, &c.calls, 1);
	cr_assert_eq(c.status, 0, "%s", skald_journal_errmsg(t.j));
	/* Offsets are (xid << 20) | index: one transaction id for all, and
	 * the indexes in array order. */
	uint64_t xid = b.ev[0].offset >> SKALD__PG_ORD_BITS;
	cr_assert_gt(xid, 0);
	for (size_t i = 0; i < b.n; i++) {
		cr_assert_eq(b.ev[i].offset >> SKALD__PG_ORD_BITS, xid,
		             "write %zu in another "
		             "transaction",
		             i);
		cr_assert_eq(b.ev[i].offset & ((1u << SKALD__PG_ORD_BITS) - 1), i);
	}
	batch_free(&b);
	pgt_close(&t);
	pgt_db_drop(&db);
}

/* A commit of another process, due after a delay, run from the test's loop
 * while the store waits on the server. */
typedef struct later_s {
	uv_timer_t timer;
	PGconn *conn;
	const char *sql;
	int done;
} later_t;

static void on_later(uv_timer_t *h)
{
	later_t *l = h->data;
	PGresult *r = PQexec(l->conn, l->sql);
	l->done = PQresultStatus(r) == PGRES_COMMAND_OK ? 1 : -1;
	PQclear(r);
	uv_close((uv_handle_t *)h, NULL);
}

static void later(pgt_t *t, later_t *l, PGconn *c, const char *sql, uint64_t ms)
{
	l->conn = c;
	l->sql = sql;
	l->done = 0;
	uv_timer_init(&t->loop, &l->timer);
	l->timer.data = l;
	uv_timer_start(&l->timer, on_later, ms, 0);
}

Test(batching, a_concurrent_writer_fails_only_its_own_id, .timeout = PGT_TIMEOUT)
{
	pgt_db_t db;
	pgt_db_new(&db, NULL, 1);
	pgt_t t;
	pgt_open(&t, db.uri);
	/* Another process has written seq 1 and 2 of "x" and not committed:
	 * the batch below, which expects "x" empty and writes 1..3, must wait
	 * for it, and once it commits, fail "x" alone. This takes the store
	 * through both of its fallbacks: the plain insert fails on the key,
	 * the safe one inserts seq 3 only (a partial write, rolled back), and
	 * the retry sees the other writer's events: a conflict. */
	PGconn *other = pgt_connect(db.uri);
	pgt_exec(other, "BEGIN");
	pgt_exec(other, "INSERT INTO skald.events (persistence_id, seq, type, version, data, "
	                "timestamp, writer, global_offset) SELECT 'x', s, 'pgt.other', 1, '{}', 0, "
	                "9, (pg_current_xact_id()::text::int8 << 20) | s FROM generate_series(1, "
	                "2) s");
	skald_event_t ex[3], ey = {.type = "pgt.mine", .data = json_pack("{si}", "n", 1)};
	for (int i = 0; i < 3; i++)
		ex[i] = (skald_event_t){.type = "pgt.mine", .data = json_pack("{si}", "n", i + 1)};
	skald_write_t w[2] = {{"x", 0, ex, 3, 0}, {"y", 0, &ey, 1, 0}};
	acall_t c = {0};
	cr_assert_eq(skald_journal_append(t.j, w, 2, on_append, &c), 0);
	later_t l;
	later(&t, &l, other, "COMMIT", 300);
	pgt_run_until(&t, &c.calls, 1);
	cr_assert_eq(l.done, 1, "the other writer committed first");
	cr_assert_eq(w[0].status, SKALD_ECONFLICT, "x: %d (%s)", w[0].status,
	             skald_journal_errmsg(t.j));
	cr_assert_eq(w[1].status, 0, "y was spared: %d", w[1].status);
	cr_assert_eq(pgt_highest(&t, "x"), 2, "nothing of the failed write stayed");
	cr_assert_eq(pgt_highest(&t, "y"), 1);
	pgt_read_t r;
	pgt_read(&t, "x", &r);
	cr_assert_eq(r.n, 2);
	pgt_read_free(&r);
	for (int i = 0; i < 3; i++)
		json_decref(ex[i].data);
	json_decref(ey.data);
	PQfinish(other);
	pgt_close(&t);
	pgt_db_drop(&db);
}

Test(global_order, a_late_commit_is_never_skipped, .timeout = PGT_TIMEOUT)
{
	pgt_db_t db;
	pgt_db_new(&db, NULL, 1);
	char uri[600];
	/* A short wait, so that read_all gives up on the open transaction. */
	snprintf(uri, sizeof uri, "%s?read_all_wait_ms=200", db.uri);
	pgt_t t;
	pgt_open(&t, uri);
	/* Transaction A takes its id and writes, then stays open; B, younger,
	 * commits. B's offset is above A's: a reader that returned B now would
	 * skip A when A commits. */
	PGconn *a = pgt_connect(db.uri);
	pgt_exec(a, "BEGIN");
	pgt_exec(a, "INSERT INTO skald.events (persistence_id, seq, type, version, data, "
	            "timestamp, writer, global_offset) VALUES ('a', 1, 'pgt.late', 1, '{}', 0, 0, "
	            "(pg_current_xact_id()::text::int8 << 20))");
	uint64_t off_b;
	cr_assert_eq(pgt_append(&t, "b", 0, 1, &off_b), 0);
	pgt_read_t r;
	pgt_read_all(&t, 0, SKALD_SEQ_MAX, &r);
	cr_assert_eq(r.status, 0);
	cr_assert_eq(r.n, 0, "returned %s while an older transaction was open",
	             r.n ? r.pids[0] : "");
	pgt_read_free(&r);
	pgt_exec(a, "COMMIT");
	pgt_read_all(&t, 0, SKALD_SEQ_MAX, &r);
	cr_assert_eq(r.n, 2);
	cr_assert_str_eq(r.pids[0], "a", "the late commit comes first");
	cr_assert_str_eq(r.pids[1], "b");
	cr_assert_eq(r.offsets[1], off_b);
	cr_assert_lt(r.offsets[0], r.offsets[1]);
	pgt_read_free(&r);
	PQfinish(a);
	pgt_close(&t);
	pgt_db_drop(&db);
}

Test(global_order, read_all_waits_for_what_was_running_when_it_started, .timeout = PGT_TIMEOUT)
{
	pgt_db_t db;
	pgt_db_new(&db, NULL, 1);
	pgt_t t;
	pgt_open(&t, db.uri);
	PGconn *a = pgt_connect(db.uri);
	pgt_exec(a, "BEGIN");
	pgt_exec(a, "INSERT INTO skald.events (persistence_id, seq, type, version, data, "
	            "timestamp, writer, global_offset) VALUES ('a', 1, 'pgt.late', 1, '{}', 0, 0, "
	            "(pg_current_xact_id()::text::int8 << 20))");
	cr_assert_eq(pgt_append(&t, "b", 0, 1, NULL), 0);
	/* With the default wait, read_all returns once A has committed, and
	 * then with both events. */
	pgt_read_t r = {0};
	later_t l;
	later(&t, &l, a, "COMMIT", 300);
	pgt_read_all(&t, 0, SKALD_SEQ_MAX, &r);
	cr_assert_eq(l.done, 1, "read_all returned before the open transaction ended");
	cr_assert_eq(r.n, 2);
	cr_assert_str_eq(r.pids[0], "a");
	pgt_read_free(&r);
	PQfinish(a);
	pgt_close(&t);
	pgt_db_drop(&db);
}

typedef struct ids_s {
	char out[512];
	int calls, status;
} ids_t;

static int collect_ids(skald_journal_t *j, const skald_persistence_id_t *ids, size_t n, void *arg)
{
	ids_t *c = arg;
	for (size_t i = 0; i < n; i++) {
		strcat(c->out, ids[i].persistence_id);
		strcat(c->out, "|");
	}
	return 0;
}

static void ids_done(skald_journal_t *j, int status, void *arg)
{
	ids_t *c = arg;
	c->calls++;
	c->status = status;
}

Test(listing, prefixes_ending_in_multibyte_characters, .timeout = PGT_TIMEOUT)
{
	pgt_db_t db;
	pgt_db_new(&db, NULL, 1);
	pgt_t t;
	pgt_open(&t, db.uri);
	/* Around the edges of the upper bound the store computes: U+10FFFF,
	 * and U+D7FF, whose successor skips the surrogates to U+E000. */
	const char *ids[] = {"g\xc3\xa9",    "g\xc3\xa9-1", "g\xc3\xa9\xf4\x8f\xbf\xbf",
	                     "g\xc3\xaa",    "gf",          "g\xed\x9f\xbf-x",
	                     "g\xee\x80\x80"};
	for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
		cr_assert_eq(pgt_append(&t, ids[i], 0, 1, NULL), 0, "%s", ids[i]);
	struct {
		const char *prefix, *want;
	} cases[] = {
	        {"g\xc3\xa9", "g\xc3\xa9|g\xc3\xa9-1|g\xc3\xa9\xf4\x8f\xbf\xbf|"},
	        {"g\xc3\xa9\xf4\x8f\xbf\xbf", "g\xc3\xa9\xf4\x8f\xbf\xbf|"},
	        {"g\xed\x9f\xbf", "g\xed\x9f\xbf-x|"},
	        /* Byte order: "gf" (0x66) before "g\xc3...". */
	        {"g", "gf|g\xc3\xa9|g\xc3\xa9-1|g\xc3\xa9\xf4\x8f\xbf\xbf|g\xc3\xaa|"
	              "g\xed\x9f\xbf-x|g\xee\x80\x80|"},
	        {"h", ""},
	};
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		ids_t c = {.out = ""};
		cr_assert_eq(skald_journal_list_ids(t.j, cases[k].prefix, NULL, SKALD_SEQ_MAX,
		                                    collect_ids, ids_done, &c),
		             0);
		pgt_run_until(&t, &c.calls, 1);
		cr_assert_eq(c.status, 0);
		cr_assert_str_eq(c.out, cases[k].want, "prefix %s", cases[k].prefix);
	}
	pgt_close(&t);
	pgt_db_drop(&db);
}

/* ------------------------------------------------------------------------ */
/* The global order under concurrent writers in several processes           */

enum { WRITERS = 4, PER_WRITER = 10000, IDS_PER_WRITER = 16, SLOW_TX = 60, SLOW_EVENTS = 5 };

static uint32_t rng_next(uint32_t *s)
{
	*s = *s * 1103515245u + 12345u;
	return *s >> 8;
}

/* A writer process: PER_WRITER events over its own ids, in appends of 1..4
 * writes of 1..8 events, one append at a time. Exits 0 when all were
 * stored. */
static int writer_main(const char *uri, int k)
{
	uv_loop_t loop;
	skald_journal_t *j;
	if (uv_loop_init(&loop) != 0 || skald_journal_open(&loop, uri, &j) != 0)
		return 10;
	uint64_t highest[IDS_PER_WRITER] = {0};
	char pids[IDS_PER_WRITER][64];
	for (int i = 0; i < IDS_PER_WRITER; i++)
		snprintf(pids[i], sizeof pids[i], "w%d-%d", k, i);
	uint32_t seed = 7919u * (uint32_t)(k + 1);
	int written = 0;
	skald_event_t ev[32];
	skald_write_t w[4];
	while (written < PER_WRITER) {
		size_t nw = 1 + rng_next(&seed) % 4, used = 0, nwrites = 0;
		int first = (int)(rng_next(&seed) % IDS_PER_WRITER);
		for (size_t i = 0; i < nw && written < PER_WRITER; i++) {
			int id = (first + (int)i) % IDS_PER_WRITER;
			size_t n = 1 + rng_next(&seed) % 8;
			if ((int)n > PER_WRITER - written)
				n = (size_t)(PER_WRITER - written);
			for (size_t e = 0; e < n; e++)
				ev[used + e] = (skald_event_t){
				        .type = "pgt.order",
				        .writer = (uint64_t)k,
				        .data = json_pack("{sisI}", "w", k, "s",
				                          (json_int_t)(highest[id] + 1 + e))};
			w[nwrites++] = (skald_write_t){pids[id], highest[id], &ev[used], n, 0};
			used += n;
			written += (int)n;
		}
		acall_t c = {0};
		if (skald_journal_append(j, w, nwrites, on_append, &c) != 0)
			return 11;
		while (c.calls == 0)
			uv_run(&loop, UV_RUN_ONCE);
		for (size_t e = 0; e < used; e++)
			json_decref(ev[e].data);
		if (c.status != 0) {
			fprintf(stderr, "writer %d: %s\n", k, skald_journal_errmsg(j));
			return 12;
		}
		for (size_t i = 0; i < nwrites; i++)
			highest[(first + (int)i) % IDS_PER_WRITER] += w[i].nevents;
	}
	int closed = 0;
	skald_journal_close(j, NULL, &closed);
	uv_run(&loop, UV_RUN_DEFAULT);
	return uv_loop_close(&loop) == 0 ? 0 : 13;
}

/* The adversary: transactions that take their id, write, and then sleep
 * before committing, so that younger transactions commit first, which is
 * exactly what a reader must not be fooled by. */
static int slow_main(const char *uri)
{
	PGconn *c = PQconnectdb(uri);
	if (PQstatus(c) != CONNECTION_OK)
		return 20;
	uint32_t seed = 4242;
	for (int i = 0; i < SLOW_TX; i++) {
		char sql[512];
		snprintf(sql, sizeof sql,
		         "BEGIN; INSERT INTO skald.events (persistence_id, seq, type, version, "
		         "data, "
		         "timestamp, writer, global_offset) SELECT 'slow', s, 'pgt.order', 1, "
		         "'{}', 0, 99, (pg_current_xact_id()::text::int8 << 20) | (s - %d) FROM "
		         "generate_series(%d, %d) s; SELECT pg_sleep(%f); COMMIT",
		         i * SLOW_EVENTS + 1, i * SLOW_EVENTS + 1, (i + 1) * SLOW_EVENTS,
		         (double)(5 + rng_next(&seed) % 60) / 1000.0);
		PGresult *r = PQexec(c, sql);
		int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
		PQclear(r);
		if (!ok)
			return 21;
	}
	PQfinish(c);
	return 0;
}

typedef struct follower_s {
	uint64_t last_offset;
	size_t seen;
	size_t calls, calls_with_events;
	int bad;
	char why[256];
	/* next expected seq per id: w<k>-<i> and "slow" */
	uint64_t next[WRITERS][IDS_PER_WRITER];
	uint64_t next_slow;
	int done, status;
} follower_t;

static int follow_events(skald_journal_t *j, const skald_event_t *ev, size_t n, void *arg)
{
	follower_t *f = arg;
	for (size_t i = 0; i < n && !f->bad; i++) {
		const skald_event_t *e = &ev[i];
		if (e->offset <= f->last_offset) {
			f->bad = 1;
			snprintf(f->why, sizeof f->why, "offset %llu after %llu",
			         (unsigned long long)e->offset, (unsigned long long)f->last_offset);
			break;
		}
		f->last_offset = e->offset;
		uint64_t *next;
		int k, id;
		if (strcmp(e->persistence_id, "slow") == 0) {
			next = &f->next_slow;
		} else if (sscanf(e->persistence_id, "w%d-%d", &k, &id) == 2 && k >= 0 &&
		           k < WRITERS && id >= 0 && id < IDS_PER_WRITER) {
			next = &f->next[k][id];
		} else {
			f->bad = 1;
			snprintf(f->why, sizeof f->why, "unknown id %s", e->persistence_id);
			break;
		}
		/* Every id's events come in seq order, each once: a skipped
		 * or repeated event breaks the chain. */
		if (e->seq != *next + 1) {
			f->bad = 1;
			snprintf(f->why, sizeof f->why, "%s: seq %llu after %llu",
			         e->persistence_id, (unsigned long long)e->seq,
			         (unsigned long long)*next);
			break;
		}
		*next = e->seq;
		f->seen++;
	}
	return f->bad ? -1 : 0;
}

static void follow_done(skald_journal_t *j, int status, void *arg)
{
	follower_t *f = arg;
	f->done++;
	f->status = status;
}

Test(global_order, four_writer_processes_and_a_follower_see_every_event_once_in_order,
     .timeout = PGT_TIMEOUT)
{
	pgt_db_t db;
	pgt_db_new(&db, NULL, 1);
	pid_t kids[WRITERS + 1];
	for (int k = 0; k <= WRITERS; k++) {
		kids[k] = fork();
		cr_assert_neq(kids[k], -1);
		if (kids[k] == 0)
			_exit(k < WRITERS ? writer_main(db.uri, k) : slow_main(db.uri));
	}
	const size_t total = (size_t)WRITERS * PER_WRITER + SLOW_TX * SLOW_EVENTS;
	pgt_t t;
	pgt_open(&t, db.uri);
	follower_t *f = calloc(1, sizeof *f);
	int running = WRITERS + 1, failed = 0;
	size_t seen_while_writing = 0;
	uint64_t deadline = uv_hrtime() + 240ull * 1000000000ull;
	while ((f->seen < total || running > 0) && !f->bad && uv_hrtime() < deadline) {
		/* A projection's loop: read on from the last offset seen. */
		size_t before = f->seen;
		f->done = 0;
		cr_assert_eq(skald_journal_read_all(t.j, f->last_offset, SKALD_SEQ_MAX,
		                                    follow_events, follow_done, f),
		             0);
		pgt_run_until(&t, &f->done, 1);
		f->calls++;
		if (f->seen > before) {
			f->calls_with_events++;
			if (running > 0)
				seen_while_writing += f->seen - before;
		}
		cr_assert(f->bad || f->status == 0, "read_all: %d: %s", f->status,
		          skald_journal_errmsg(t.j));
		for (int k = 0; k <= WRITERS; k++) {
			int st;
			if (kids[k] > 0 && waitpid(kids[k], &st, WNOHANG) == kids[k]) {
				kids[k] = 0;
				running--;
				if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
					failed++;
			}
		}
		if (f->seen == before)
			pgt_run_for(&t, 5);
	}
	for (int k = 0; k <= WRITERS; k++)
		if (kids[k] > 0)
			kill(kids[k], SIGKILL);
	cr_assert_not(f->bad, "the follower saw %s", f->why);
	cr_assert_eq(failed, 0, "%d writer processes failed", failed);
	cr_assert_eq(f->seen, total, "saw %zu of %zu events", f->seen, total);
	cr_assert_gt(seen_while_writing, 0, "the follower only read after the writers were done");
	for (int k = 0; k < WRITERS; k++) {
		uint64_t sum = 0;
		for (int i = 0; i < IDS_PER_WRITER; i++)
			sum += f->next[k][i];
		cr_assert_eq(sum, PER_WRITER, "writer %d", k);
	}
	cr_log_info("global order: %zu events, %zu while writing, in %zu reads (%zu with events)",
	            f->seen, seen_while_writing, f->calls, f->calls_with_events);
	free(f);
	pgt_close(&t);
	pgt_db_drop(&db);
}
