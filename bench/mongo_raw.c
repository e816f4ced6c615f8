/*
 * bench/mongo_raw.c - the MongoDB store beside raw libmongoc, on one server.
 *
 *   build/bench/mongo_raw --store mongodb://HOST:PORT [--scale X]
 *
 * (default server: SKALD_TEST_MONGO). Each run uses two fresh databases,
 * one for the journal (migrated first) and one for the raw figures.
 * Figures, one line each:
 *   append-skald  WRITERS threads, each with its own loop and journal
 *                 handle, append rounds of one event for each of their
 *                 entities in one skald_journal_append call, as the
 *                 journal's writer batches the persists of many actors
 *   append-raw    the same documents (the store's own layout, built
 *                 directly in BSON) inserted with insert_many by WRITERS
 *                 threads in batches of the same size
 *   replay-skald  one entity's history of N events (writes of 10) replayed
 *                 with skald_journal_read
 *   replay-raw    a find of the same documents, iterated
 * then the ratios skald/raw. The bar is 0.7.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mongoc/mongoc.h>

#include <skald/skald.h>
#include <skald/store.h>

#define WRITERS 2

static double scale = 1;
static const char *server;
static char jdb[64], rdb[64];

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *msg)
{
	fprintf(stderr, "mongo_raw: %s: %s\n", what, msg);
	exit(1);
}

/* ------------------------------------------------------------------------ */
/* Skald                                                                     */

typedef struct job_s {
	int id;
	long entities, rounds;
	long events;
	double secs;
} job_t;

static void appended(skald_journal_t *j, int status, skald_write_t *w, size_t n, void *arg)
{
	int *done = arg;
	if (status != 0)
		die("append", skald_journal_errmsg(j));
	*done = 1;
}

static void *skald_writer(void *arg)
{
	job_t *job = arg;
	char uri[256];
	snprintf(uri, sizeof uri, "%s/%s", server, jdb);
	uv_loop_t loop;
	skald_journal_t *j;
	uv_loop_init(&loop);
	if (skald_journal_open(&loop, uri, &j) != 0)
		die("open", skald_journal_open_errmsg());
	long n = job->entities;
	char(*pids)[32] = calloc((size_t)n, sizeof *pids);
	skald_event_t *ev = calloc((size_t)n, sizeof *ev);
	skald_write_t *w = calloc((size_t)n, sizeof *w);
	for (long k = 0; k < n; k++)
		snprintf(pids[k], sizeof pids[k], "bench-%d-%ld", job->id, k);
	double t0 = now_s();
	for (long r = 0; r < job->rounds; r++) {
		for (long k = 0; k < n; k++) {
			ev[k] = (skald_event_t){.type = "bench.added",
			                        .writer = 7,
			                        .data = json_pack("{sI}", "n", (json_int_t)r)};
			w[k] = (skald_write_t){pids[k], (uint64_t)r, &ev[k], 1, 0};
		}
		int done = 0;
		if (skald_journal_append(j, w, (size_t)n, appended, &done) != 0)
			die("append", skald_journal_errmsg(j));
		while (!done)
			uv_run(&loop, UV_RUN_ONCE);
		for (long k = 0; k < n; k++)
			json_decref(ev[k].data);
		job->events += n;
	}
	job->secs = now_s() - t0;
	skald_journal_close(j, NULL, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	free(pids);
	free(ev);
	free(w);
	return NULL;
}

/* ------------------------------------------------------------------------ */
/* Raw libmongoc, with the store's document layout                           */

static bson_t *raw_doc(const char *pid, int64_t prev, int64_t n, int64_t off)
{
	bson_t *doc = bson_new(), arr, el, d;
	char key[300];
	snprintf(key, sizeof key, "%s@%lld", pid, (long long)prev);
	BSON_APPEND_UTF8(doc, "_id", key);
	BSON_APPEND_UTF8(doc, "pid", pid);
	BSON_APPEND_INT64(doc, "prev", prev);
	BSON_APPEND_INT64(doc, "to", prev + n);
	BSON_APPEND_INT64(doc, "n", n);
	BSON_APPEND_ARRAY_BEGIN(doc, "ev", &arr);
	for (int64_t i = 0; i < n; i++) {
		char idx[16];
		const char *k;
		size_t klen = bson_uint32_to_string((uint32_t)i, &k, idx, sizeof idx);
		bson_append_document_begin(&arr, k, (int)klen, &el);
		BSON_APPEND_UTF8(&el, "t", "bench.added");
		BSON_APPEND_INT32(&el, "v", 1);
		BSON_APPEND_DATE_TIME(&el, "ts", 1700000000000);
		BSON_APPEND_INT64(&el, "w", 7);
		BSON_APPEND_DOCUMENT_BEGIN(&el, "d", &d);
		BSON_APPEND_INT64(&d, "n", prev + i);
		bson_append_document_end(&el, &d);
		bson_append_document_end(&arr, &el);
	}
	bson_append_array_end(doc, &arr);
	BSON_APPEND_INT64(doc, "off", off);
	return doc;
}

static void *raw_writer(void *arg)
{
	job_t *job = arg;
	mongoc_client_t *c = mongoc_client_new(server);
	mongoc_collection_t *coll = mongoc_client_get_collection(c, rdb, "events");
	long n = job->entities;
	bson_t **docs = calloc((size_t)n, sizeof *docs);
	bson_t *opts = BCON_NEW("ordered", BCON_BOOL(false));
	double t0 = now_s();
	for (long r = 0; r < job->rounds; r++) {
		for (long k = 0; k < n; k++) {
			char pid[32];
			snprintf(pid, sizeof pid, "bench-%d-%ld", job->id, k);
			docs[k] = raw_doc(pid, r, 1, (job->id * job->rounds + r) * n + k + 1);
		}
		bson_error_t err;
		if (!mongoc_collection_insert_many(coll, (const bson_t **)docs, (size_t)n, opts,
		                                   NULL, &err))
			die("insert_many", err.message);
		for (long k = 0; k < n; k++)
			bson_destroy(docs[k]);
		job->events += n;
	}
	job->secs = now_s() - t0;
	bson_destroy(opts);
	free(docs);
	mongoc_collection_destroy(coll);
	mongoc_client_destroy(c);
	return NULL;
}

static double run_writers(void *(*fn)(void *), long entities, long rounds)
{
	pthread_t th[WRITERS];
	job_t job[WRITERS];
	double t0 = now_s();
	for (int i = 0; i < WRITERS; i++) {
		job[i] = (job_t){.id = i, .entities = entities / WRITERS, .rounds = rounds};
		pthread_create(&th[i], NULL, fn, &job[i]);
	}
	long events = 0;
	for (int i = 0; i < WRITERS; i++) {
		pthread_join(th[i], NULL);
		events += job[i].events;
	}
	return (double)events / (now_s() - t0);
}

/* ------------------------------------------------------------------------ */
/* Replay                                                                    */

static long replayed;

static int count_events(skald_journal_t *j, const skald_event_t *ev, size_t n, void *arg)
{
	replayed += (long)n;
	return 0;
}

static void read_done(skald_journal_t *j, int status, void *arg)
{
	if (status != 0)
		die("replay", skald_journal_errmsg(j));
	*(int *)arg = 1;
}

static double replay_skald(const char *pid, long n)
{
	char uri[256];
	snprintf(uri, sizeof uri, "%s/%s", server, jdb);
	uv_loop_t loop;
	skald_journal_t *j;
	uv_loop_init(&loop);
	if (skald_journal_open(&loop, uri, &j) != 0)
		die("open", skald_journal_open_errmsg());
	/* The history, in writes of ten events. */
	for (long s = 0; s < n; s += 10) {
		skald_event_t ev[10];
		for (int i = 0; i < 10; i++)
			ev[i] = (skald_event_t){
			        .type = "bench.added",
			        .writer = 7,
			        .data = json_pack("{sI}", "n", (json_int_t)(s + i))};
		skald_write_t w = {pid, (uint64_t)s, ev, 10, 0};
		int done = 0;
		if (skald_journal_append(j, &w, 1, appended, &done) != 0)
			die("append", skald_journal_errmsg(j));
		while (!done)
			uv_run(&loop, UV_RUN_ONCE);
		for (int i = 0; i < 10; i++)
			json_decref(ev[i].data);
	}
	int done = 0;
	replayed = 0;
	double t0 = now_s();
	if (skald_journal_read(j, pid, 1, SKALD_SEQ_MAX, SKALD_SEQ_MAX, count_events, read_done,
	                       &done) != 0)
		die("read", skald_journal_errmsg(j));
	while (!done)
		uv_run(&loop, UV_RUN_ONCE);
	double secs = now_s() - t0;
	if (replayed != n)
		die("replay", "wrong number of events");
	skald_journal_close(j, NULL, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	return (double)n / secs;
}

static double replay_raw(const char *pid, long n)
{
	mongoc_client_t *c = mongoc_client_new(server);
	mongoc_collection_t *coll = mongoc_client_get_collection(c, rdb, "events");
	bson_error_t err;
	for (long s = 0; s < n; s += 10) {
		bson_t *doc = raw_doc(pid, s, 10, 1000000000 + s);
		if (!mongoc_collection_insert_one(coll, doc, NULL, NULL, &err))
			die("insert", err.message);
		bson_destroy(doc);
	}
	double t0 = now_s();
	bson_t *filter = BCON_NEW("pid", BCON_UTF8(pid));
	bson_t *opts = BCON_NEW("sort", "{", "to", BCON_INT32(1), "}");
	mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, filter, opts, NULL);
	const bson_t *doc;
	long events = 0;
	while (mongoc_cursor_next(cur, &doc)) {
		bson_iter_t it;
		if (bson_iter_init_find(&it, doc, "n"))
			events += (long)bson_iter_as_int64(&it);
	}
	if (mongoc_cursor_error(cur, &err))
		die("find", err.message);
	double secs = now_s() - t0;
	if (events != n)
		die("find", "wrong number of events");
	mongoc_cursor_destroy(cur);
	bson_destroy(filter);
	bson_destroy(opts);
	mongoc_collection_destroy(coll);
	mongoc_client_destroy(c);
	return (double)n / secs;
}

int main(int argc, char **argv)
{
	server = getenv("SKALD_TEST_MONGO");
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--store") == 0 && i + 1 < argc)
			server = argv[++i];
		else if (strcmp(argv[i], "--scale") == 0 && i + 1 < argc)
			scale = atof(argv[++i]);
		else
			die("usage", "mongo_raw [--store mongodb://HOST:PORT] [--scale X]");
	}
	if (server == NULL || scale <= 0)
		die("usage",
		    "give the server with --store mongodb://HOST:PORT or SKALD_TEST_MONGO");
	mongoc_init();
	snprintf(jdb, sizeof jdb, "bench_%d", (int)getpid());
	snprintf(rdb, sizeof rdb, "bench_raw_%d", (int)getpid());
	char uri[256], err[512];
	snprintf(uri, sizeof uri, "%s/%s", server, jdb);
	if (skald_store_migrate(uri, 0, NULL, err, sizeof err) != 0)
		die("migrate", err);

	long entities = 1000;
	long rounds = (long)(10 * scale) > 0 ? (long)(10 * scale) : 1;
	long replay_n = (long)(20000 * scale) / 10 * 10;
	if (replay_n < 10)
		replay_n = 10;
	json_object_seed(0);
	/* Raw first: the first run on a fresh server pays for its warm-up. */
	double raw_append = run_writers(raw_writer, entities, rounds);
	double skald_append = run_writers(skald_writer, entities, rounds);
	printf("append-skald  entities=%ld writers=%d rounds=%ld rate=%.0f events/s\n", entities,
	       WRITERS, rounds, skald_append);
	printf("append-raw    entities=%ld writers=%d rounds=%ld rate=%.0f events/s\n", entities,
	       WRITERS, rounds, raw_append);
	double raw_replay = replay_raw("bench-history", replay_n);
	double skald_replay = replay_skald("bench-history", replay_n);
	printf("replay-skald  events=%ld rate=%.0f events/s\n", replay_n, skald_replay);
	printf("replay-raw    events=%ld rate=%.0f events/s\n", replay_n, raw_replay);
	printf("ratio append  skald/raw rate %.2fx (bar 0.70)\n", skald_append / raw_append);
	printf("ratio replay  skald/raw rate %.2fx (bar 0.70)\n", skald_replay / raw_replay);

	/* Drop both databases: a benchmark leaves nothing behind. */
	mongoc_client_t *c = mongoc_client_new(server);
	const char *dbs[2] = {jdb, rdb};
	for (int i = 0; i < 2; i++) {
		mongoc_database_t *d = mongoc_client_get_database(c, dbs[i]);
		mongoc_database_drop(d, NULL);
		mongoc_database_destroy(d);
	}
	mongoc_client_destroy(c);
	return 0;
}
