/*
 * tests/mongo/test_races.c - what the MongoDB store promises under
 * concurrency: no (persistence id, seq) is ever stored twice, whatever
 * batches racing writers send; the global order never skips an event that
 * commits later; a write that never lands is waited for, then fenced off.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mongoc/mongoc.h>

#include "skald/store.h"
#include "stores/mongo/mongo_int.h"
#include "tests/mongo/mt.h"

#define TEST_OPT .timeout = 600

static const char *server(void)
{
	const char *s = mt_server();
	cr_assert_not_null(s, "SKALD_TEST_MONGO is not set: start the test server with "
	                      "scripts/ferretdb.sh start and export SKALD_TEST_MONGO=$(scripts/"
	                      "ferretdb.sh uri)");
	return s;
}

/* The database part of a journal URI made by mt_uri. */
static void db_of(const char *uri, char *db, size_t len)
{
	const char *slash = strrchr(uri, '/');
	snprintf(db, len, "%s", slash + 1);
	char *q = strchr(db, '?');
	if (q)
		*q = '\0';
}

/* ------------------------------------------------------------------------ */
/* Overlapping batches                                                       */

enum { RACE_IDS = 3, RACE_TRIES = 120 };

typedef struct racer_s {
	char uri[600];
	const char *pids[RACE_IDS];
	unsigned seed;
	int stored, conflicts, errors;
} racer_t;

/* Appends batches of 1-3 events at expected seqs around the highest it last
 * saw (one below, at it, one above, or inside its last batch), so that
 * batches of the two racers overlap in every way. */
static void *race(void *arg)
{
	racer_t *r = arg;
	mt_t t;
	if (mt_open(&t, r->uri) != 0) {
		r->errors++;
		return NULL;
	}
	for (int i = 0; i < RACE_TRIES; i++) {
		const char *pid = r->pids[rand_r(&r->seed) % RACE_IDS];
		uint64_t h;
		if (mt_highest(&t, pid, &h) != 0) {
			r->errors++;
			break;
		}
		int64_t e = (int64_t)h + (int)(rand_r(&r->seed) % 4) - 2;
		if (e < 0)
			e = 0;
		size_t n = 1 + rand_r(&r->seed) % 3;
		int rc = mt_append(&t, pid, (uint64_t)e, n, 1000 * (int64_t)r->seed + i);
		if (rc == 0)
			r->stored++;
		else if (rc == SKALD_ECONFLICT)
			r->conflicts++;
		else
			r->errors++;
	}
	if (mt_close(&t) != 0)
		r->errors++;
	return NULL;
}

Test(races, overlapping_batches_never_store_a_seq_twice, TEST_OPT)
{
	char base[512], err[512];
	mt_uri(base, sizeof base, server(), "overlap", NULL);
	cr_assert_eq(mt_migrate(base, err, sizeof err), 0, "%s", err);
	const char *pids[RACE_IDS] = {"o-a", "o-b", "o-c"};
	/* Start every id with a batch of two, so that the first racing
	 * batches can start inside it. */
	mt_t t;
	cr_assert_eq(mt_open(&t, base), 0);
	for (int k = 0; k < RACE_IDS; k++)
		cr_assert_eq(mt_append(&t, pids[k], 0, 2, 0), 0);
	cr_assert_eq(mt_close(&t), 0);

	/* Two racers with different appName values get separate client
	 * pools and caches, as two processes would. */
	racer_t r[2];
	pthread_t th[2];
	json_object_seed(0);
	for (int i = 0; i < 2; i++) {
		memset(&r[i], 0, sizeof r[i]);
		snprintf(r[i].uri, sizeof r[i].uri, "%s?appName=racer%d", base, i);
		memcpy(r[i].pids, pids, sizeof pids);
		r[i].seed = 17 + (unsigned)i;
		cr_assert_eq(pthread_create(&th[i], NULL, race, &r[i]), 0);
	}
	for (int i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		cr_assert_eq(r[i].errors, 0, "racer %d had %d errors", i, r[i].errors);
	}
	cr_assert_gt(r[0].stored + r[1].stored, 10, "the race stored almost nothing");
	cr_assert_gt(r[0].conflicts + r[1].conflicts, 0, "the writers never collided");

	/* Through the journal: every id reads 1..highest, each seq once. */
	cr_assert_eq(mt_open(&t, base), 0);
	for (int k = 0; k < RACE_IDS; k++) {
		uint64_t h;
		cr_assert_eq(mt_highest(&t, pids[k], &h), 0);
		mt_evs_t evs = {0};
		cr_assert_eq(mt_read(&t, pids[k], 1, SKALD_SEQ_MAX, &evs), 0);
		cr_assert_eq(evs.n, h, "%s: %zu events for highest %llu", pids[k], evs.n,
		             (unsigned long long)h);
		for (size_t i = 0; i < evs.n; i++)
			cr_assert_eq(evs.ev[i].seq, i + 1, "%s: seq %llu at %zu", pids[k],
			             (unsigned long long)evs.ev[i].seq, i);
		mt_evs_free(&evs);
	}
	cr_assert_eq(mt_close(&t), 0);

	/* In the database itself: the seq ranges of each id's documents are
	 * disjoint and leave no hole. */
	char db[128];
	db_of(base, db, sizeof db);
	mongoc_client_t *c = mongoc_client_new(server());
	mongoc_collection_t *coll = mongoc_client_get_collection(c, db, SKALD_MONGO_EVENTS);
	for (int k = 0; k < RACE_IDS; k++) {
		bson_t *filter = BCON_NEW("pid", BCON_UTF8(pids[k]));
		bson_t *opts = BCON_NEW("sort", "{", "prev", BCON_INT32(1), "}");
		mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, filter, opts, NULL);
		const bson_t *doc;
		int64_t end = 0;
		while (mongoc_cursor_next(cur, &doc)) {
			bson_iter_t it;
			int64_t prev = 0, to = 0;
			if (bson_iter_init_find(&it, doc, "prev"))
				prev = bson_iter_as_int64(&it);
			if (bson_iter_init_find(&it, doc, "to"))
				to = bson_iter_as_int64(&it);
			cr_assert_eq(prev, end, "%s: a document starts after %lld where %lld ended",
			             pids[k], (long long)prev, (long long)end);
			cr_assert_gt(to, prev);
			end = to;
		}
		bson_error_t berr;
		cr_assert(!mongoc_cursor_error(cur, &berr), "%s", berr.message);
		mongoc_cursor_destroy(cur);
		bson_destroy(filter);
		bson_destroy(opts);
	}
	mongoc_collection_destroy(coll);
	mongoc_client_destroy(c);
}

/* ------------------------------------------------------------------------ */
/* The global order under concurrent writers                                 */

enum { WRITERS = 3, APPENDS = 25, PER_APPEND = 4 };

static atomic_int finished;

typedef struct writer_s {
	char uri[600];
	int id;
	int errors;
	int acked; /* events acknowledged */
} writer_t;

static void *write_batches(void *arg)
{
	writer_t *w = arg;
	mt_t t;
	if (mt_open(&t, w->uri) != 0) {
		w->errors++;
		return NULL;
	}
	char pids[PER_APPEND][32];
	uint64_t seq[PER_APPEND] = {0};
	for (int k = 0; k < PER_APPEND; k++)
		snprintf(pids[k], sizeof pids[k], "g%d-%d", w->id, k);
	for (int a = 0; a < APPENDS; a++) {
		skald_event_t ev[PER_APPEND][2];
		skald_write_t ws[PER_APPEND];
		for (int k = 0; k < PER_APPEND; k++) {
			size_t n = 1 + (size_t)((a + k) % 2);
			for (size_t i = 0; i < n; i++)
				ev[k][i] = (skald_event_t){.type = "mt.order",
				                           .data = json_pack("{si}", "n", 1)};
			ws[k] = (skald_write_t){pids[k], seq[k], ev[k], n, 0};
		}
		int rc = mt_append_writes(&t, ws, PER_APPEND);
		for (int k = 0; k < PER_APPEND; k++) {
			if (ws[k].status == 0) {
				seq[k] += ws[k].nevents;
				w->acked += (int)ws[k].nevents;
			}
			for (size_t i = 0; i < ws[k].nevents; i++)
				json_decref(ev[k][i].data);
		}
		if (rc != 0)
			w->errors++;
	}
	if (mt_close(&t) != 0)
		w->errors++;
	atomic_fetch_add(&finished, 1);
	return NULL;
}

Test(races, the_global_order_never_skips_an_event_that_commits_later, TEST_OPT)
{
	char base[512], err[512];
	mt_uri(base, sizeof base, server(), "order", NULL);
	cr_assert_eq(mt_migrate(base, err, sizeof err), 0, "%s", err);
	writer_t w[WRITERS];
	pthread_t th[WRITERS];
	json_object_seed(0);
	for (int i = 0; i < WRITERS; i++) {
		memset(&w[i], 0, sizeof w[i]);
		/* One writer on its own pool, as another process would be. */
		snprintf(w[i].uri, sizeof w[i].uri, "%s%s", base, i == 0 ? "?appName=other" : "");
		w[i].id = i;
		cr_assert_eq(pthread_create(&th[i], NULL, write_batches, &w[i]), 0);
	}
	/* A projection tails the order while the writers run: each read
	 * resumes after the last offset it saw. A reader that skipped an
	 * offset committed late would miss events; one that read an offset
	 * twice would see duplicates. */
	mt_t t;
	cr_assert_eq(mt_open(&t, base), 0);
	uint64_t after = 0;
	size_t seen = 0, cap = 4096;
	char **keys = calloc(cap, sizeof *keys);
	int last = 0;
	while (!last) {
		/* Decide before reading: a read that starts after every writer
		 * has finished must find everything. */
		last = atomic_load(&finished) == WRITERS;
		mt_evs_t evs = {0};
		cr_assert_eq(mt_read_all(&t, after, SKALD_SEQ_MAX, &evs), 0, "%s",
		             skald_journal_errmsg(t.j));
		for (size_t i = 0; i < evs.n; i++) {
			cr_assert_gt(evs.ev[i].offset, after, "offsets must ascend");
			after = evs.ev[i].offset;
			char key[64];
			snprintf(key, sizeof key, "%s#%llu", evs.ev[i].pid,
			         (unsigned long long)evs.ev[i].seq);
			for (size_t k = 0; k < seen; k++)
				cr_assert_str_neq(keys[k], key, "%s read twice", key);
			if (seen == cap)
				keys = realloc(keys, (cap *= 2) * sizeof *keys);
			keys[seen++] = strdup(key);
		}
		mt_evs_free(&evs);
		if (!last)
			usleep(20000);
	}
	int acked = 0;
	for (int i = 0; i < WRITERS; i++) {
		pthread_join(th[i], NULL);
		cr_assert_eq(w[i].errors, 0, "writer %d failed", i);
		acked += w[i].acked;
	}
	/* The last read came after every writer finished: nothing may be
	 * missing. */
	mt_evs_t evs = {0};
	cr_assert_eq(mt_read_all(&t, after, SKALD_SEQ_MAX, &evs), 0);
	cr_assert_eq(evs.n, 0, "%zu events appeared below the reader's position", evs.n);
	mt_evs_free(&evs);
	cr_assert_eq(seen, (size_t)acked, "the reader saw %zu of %d acknowledged events", seen,
	             acked);
	for (size_t k = 0; k < seen; k++)
		free(keys[k]);
	free(keys);
	cr_assert_eq(mt_close(&t), 0);
}

/* ------------------------------------------------------------------------ */
/* A write listed in the order but never stored                              */

/* Inserts, as a writer that died after its manifest, a manifest at the
 * current end of the order listing one write of pid (one event). Returns
 * the offset it allocated. */
static uint64_t dead_manifest(const char *uri, const char *pid)
{
	char db[128];
	db_of(uri, db, sizeof db);
	mongoc_client_t *c = mongoc_client_new(server());
	mongoc_collection_t *coll = mongoc_client_get_collection(c, db, SKALD_MONGO_ORDER);
	bson_t filter = BSON_INITIALIZER;
	bson_t *opts = BCON_NEW("sort", "{", "_id", BCON_INT32(-1), "}", "limit", BCON_INT64(1));
	mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, &filter, opts, NULL);
	const bson_t *doc;
	int64_t end = 0;
	if (mongoc_cursor_next(cur, &doc)) {
		bson_iter_t it;
		bson_iter_init_find(&it, doc, "_id");
		end = bson_iter_as_int64(&it);
		bson_iter_init_find(&it, doc, "n");
		end += bson_iter_as_int64(&it);
	}
	mongoc_cursor_destroy(cur);
	bson_destroy(opts);
	bson_t *man = BCON_NEW("_id", BCON_INT64(end), "n", BCON_INT64(1), "w", "[", "{", "p",
	                       BCON_UTF8(pid), "e", BCON_INT64(0), "c", BCON_INT64(1), "}", "]");
	bson_error_t err;
	cr_assert(mongoc_collection_insert_one(coll, man, NULL, NULL, &err), "%s", err.message);
	bson_destroy(man);
	mongoc_collection_destroy(coll);
	mongoc_client_destroy(c);
	return (uint64_t)end + 1;
}

/* Inserts the events document of the write dead_manifest listed, as the
 * late writer would. Returns whether the insert succeeded. */
static bool late_insert(const char *uri, const char *pid, uint64_t off, bson_error_t *err)
{
	char db[128];
	db_of(uri, db, sizeof db);
	mongoc_client_t *c = mongoc_client_new(server());
	mongoc_collection_t *coll = mongoc_client_get_collection(c, db, SKALD_MONGO_EVENTS);
	char *key = skald__mongo_event_key(pid, 0);
	bson_t *doc = BCON_NEW("_id", BCON_UTF8(key), "pid", BCON_UTF8(pid), "prev", BCON_INT64(0),
	                       "to", BCON_INT64(1), "n", BCON_INT64(1), "off",
	                       BCON_INT64((int64_t)off), "ev", "[", "{", "t", BCON_UTF8("mt.late"),
	                       "v", BCON_INT32(1), "ts", BCON_DATE_TIME(0), "w", BCON_INT64(0), "d",
	                       "{", "n", BCON_INT64(42), "}", "}", "]");
	bool ok = mongoc_collection_insert_one(coll, doc, NULL, NULL, err);
	bson_destroy(doc);
	free(key);
	mongoc_collection_destroy(coll);
	mongoc_client_destroy(c);
	return ok;
}

Test(races, a_write_that_never_lands_is_waited_for_then_fenced_off, TEST_OPT)
{
	char base[512], uri[600], err[512];
	mt_uri(base, sizeof base, server(), "fence", NULL);
	cr_assert_eq(mt_migrate(base, err, sizeof err), 0, "%s", err);
	snprintf(uri, sizeof uri, "%s?gapTimeoutMS=400", base);
	mt_t t;
	cr_assert_eq(mt_open(&t, uri), 0);
	cr_assert_eq(mt_append(&t, "before", 0, 1, 1), 0);
	uint64_t ghost_off = dead_manifest(base, "ghost");
	cr_assert_eq(mt_append(&t, "after", 0, 1, 2), 0, "%s", skald_journal_errmsg(t.j));

	int64_t t0 = mt_now_ms();
	mt_evs_t evs = {0};
	cr_assert_eq(mt_read_all(&t, 0, SKALD_SEQ_MAX, &evs), 0, "%s", skald_journal_errmsg(t.j));
	int64_t waited = mt_now_ms() - t0;
	cr_assert_geq(waited, 400, "the reader passed a write in flight after %lld ms",
	              (long long)waited);
	cr_assert_eq(evs.n, 2, "%zu events", evs.n);
	cr_assert_str_eq(evs.ev[0].pid, "before");
	cr_assert_str_eq(evs.ev[1].pid, "after");
	cr_assert_gt(evs.ev[1].offset, ghost_off);
	mt_evs_free(&evs);

	/* The late writer can no longer store its event where the reader
	 * has already been. */
	bson_error_t berr;
	cr_assert(!late_insert(base, "ghost", ghost_off, &berr), "the late write was stored");
	cr_assert_eq(berr.code, 11000, "%s", berr.message);
	/* Its seq is burnt, not reused. */
	uint64_t h;
	cr_assert_eq(mt_highest(&t, "ghost", &h), 0);
	cr_assert_eq(h, 1);
	cr_assert_eq(mt_read(&t, "ghost", 1, SKALD_SEQ_MAX, &evs), 0);
	cr_assert_eq(evs.n, 0);
	mt_evs_free(&evs);
	/* A second reader sees the same, without waiting. */
	t0 = mt_now_ms();
	cr_assert_eq(mt_read_all(&t, 0, SKALD_SEQ_MAX, &evs), 0);
	cr_assert_eq(evs.n, 2);
	cr_assert_lt(mt_now_ms() - t0, 400 + 5000, "the fence made no difference");
	mt_evs_free(&evs);
	cr_assert_eq(mt_close(&t), 0);
}

typedef struct late_s {
	char uri[600];
	uint64_t off;
	int ok;
} late_t;

static void *land_late(void *arg)
{
	late_t *l = arg;
	usleep(300000);
	bson_error_t err;
	l->ok = late_insert(l->uri, "slow", l->off, &err);
	return NULL;
}

Test(races, a_write_that_lands_late_is_not_skipped, TEST_OPT)
{
	char base[512], uri[600], err[512];
	mt_uri(base, sizeof base, server(), "late", NULL);
	cr_assert_eq(mt_migrate(base, err, sizeof err), 0, "%s", err);
	snprintf(uri, sizeof uri, "%s?gapTimeoutMS=20000", base);
	mt_t t;
	cr_assert_eq(mt_open(&t, uri), 0);
	late_t l = {.ok = 0};
	snprintf(l.uri, sizeof l.uri, "%s", base);
	l.off = dead_manifest(base, "slow");
	cr_assert_eq(mt_append(&t, "after", 0, 1, 2), 0);
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, land_late, &l), 0);
	mt_evs_t evs = {0};
	cr_assert_eq(mt_read_all(&t, 0, SKALD_SEQ_MAX, &evs), 0, "%s", skald_journal_errmsg(t.j));
	pthread_join(th, NULL);
	cr_assert(l.ok, "the late write was refused");
	cr_assert_eq(evs.n, 2, "%zu events: the late one was skipped", evs.n);
	cr_assert_str_eq(evs.ev[0].pid, "slow");
	cr_assert_eq(evs.ev[0].offset, l.off);
	cr_assert_str_eq(evs.ev[1].pid, "after");
	mt_evs_free(&evs);
	cr_assert_eq(mt_close(&t), 0);
}
