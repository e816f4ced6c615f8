/*
 * bench/pg_raw.c - Skald's PostgreSQL journal against raw libpq on the same
 * server, in one run.
 *
 *   build/bench/pg_raw --store postgres://... [--scale X] [--reps N] [--threads N]
 *
 * The database must be migrated (skald migrate --store URI). Figures, one
 * line each, "rate=" in events per second:
 *   append-1000  1,000 entities persisting one event at a time through
 *                Skald (the journal batches their writes); 100,000 events
 *   copy-raw     the same rows written with libpq's COPY, 1,000 rows per
 *                transaction, into a table shaped like skald.events (same
 *                columns and indexes)
 *   replay       one entity recovering a history of 1,000,000 events
 *                through Skald (decoded to JSON and applied)
 *   select-raw   one libpq SELECT of the same rows, every field read as
 *                text, data not decoded
 *   select-raw-json  the same, and data decoded with jansson as Skald does
 * then the ratios Skald/raw (above 1: Skald is faster). Each figure runs
 * --reps times (default 3), Skald and raw in turn, and prints the best rate
 * and the median: the machine may be shared, and a neighbour's load should
 * fall on both alike. --scale multiplies the numbers of events.
 */
#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include <skald/skald.h>

static uint32_t T_RUN, T_GET, T_VALUE;
static const skald_msgtype_t run_type = {.name = "pgbench.run"};
static const skald_msgtype_t get_type = {.name = "pgbench.get"};
static const skald_msgtype_t value_type = {.name = "pgbench.value"};

static uv_mutex_t lock;
static uv_cond_t cond;
static atomic_long remaining;

static void die(const char *what, const char *detail)
{
	fprintf(stderr, "pg_raw: %s: %s\n", what, detail);
	exit(1);
}

static void finished_one(void)
{
	if (atomic_fetch_sub(&remaining, 1) == 1) {
		uv_mutex_lock(&lock);
		uv_cond_signal(&cond);
		uv_mutex_unlock(&lock);
	}
}

static void wait_all(void)
{
	uv_mutex_lock(&lock);
	while (atomic_load(&remaining) > 0)
		if (uv_cond_timedwait(&cond, &lock, 600ull * 1000000000ull) == UV_ETIMEDOUT)
			die("append-1000", "timed out");
	uv_mutex_unlock(&lock);
}

typedef struct {
	long events;
	long total;
	long left;
} st_t;

static int apply(void *state, const skald_event_t *ev)
{
	st_t *s = state;
	s->total += (long)json_integer_value(json_object_get(ev->data, "n"));
	s->events++;
	return 0;
}

static void next(skald_actor_t *self, st_t *s);

static void persisted(skald_actor_t *self, void *state, int status, void *arg)
{
	if (status < 0)
		die("persist failed", skald_strerror(status));
	next(self, state);
}

static void next(skald_actor_t *self, st_t *s)
{
	if (s->left == 0) {
		finished_one();
		return;
	}
	s->left--;
	int rc = skald_persist(self, "bench.added", 1, json_pack("{sI}", "n", (json_int_t)1),
	                       persisted, NULL);
	if (rc < 0)
		die("persist refused", skald_strerror(rc));
}

static int command(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	st_t *s = state;
	if (msg->type == T_RUN) {
		s->left = (long)(intptr_t)msg->payload;
		next(self, s);
	} else if (msg->type == T_GET) {
		return skald_reply(self, msg, T_VALUE, (void *)(intptr_t)s->events);
	}
	return 0;
}

static const skald_entity_type_t bench_entity = {
        .name = "pgbench",
        .state_size = sizeof(st_t),
        .command = command,
        .apply = apply,
};

static long ask_events(skald_system_t *sys, skald_ref_t r)
{
	uint32_t type;
	void *v;
	int rc = skald_system_ask(sys, r, T_GET, NULL, 600000, &type, &v);
	if (rc < 0)
		die("ask failed", skald_strerror(rc));
	return (long)(intptr_t)v;
}

static double secs_since(uint64_t t0)
{
	return (double)(uv_hrtime() - t0) / 1e9;
}

static PGresult *must(PGconn *c, PGresult *r, const char *what)
{
	ExecStatusType st = PQresultStatus(r);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_COPY_IN)
		die(what, PQresultErrorMessage(r));
	return r;
}

static void exec(PGconn *c, const char *sql)
{
	PQclear(must(c, PQexec(c, sql), sql));
}

/* COPY into skald.events of rows like Skald's: `actors` ids with `each`
 * events, in transactions of `per` rows. Their offsets lie far above any
 * transaction's (readers of the global order never reach them), and they
 * are deleted afterwards. */
static double copy_raw(PGconn *c, const char *tag, long actors, long each, int rep, long per)
{
	char sql[256], line[512];
	long n = actors * each, done = 0;
	long long ts = 1700000000000LL;
	uint64_t t0 = uv_hrtime();
	while (done < n) {
		exec(c, "BEGIN");
		snprintf(sql, sizeof sql,
		         "COPY skald.events (persistence_id, seq, type, version, data, timestamp, "
		         "writer, global_offset) FROM STDIN");
		PQclear(must(c, PQexec(c, sql), "COPY"));
		for (long k = 0; k < per && done < n; k++, done++) {
			long actor = done % actors, seq = (long)rep * each + done / actors + 1;
			int len = snprintf(
			        line, sizeof line,
			        "pgbench-raw-%s-%ld\t%ld\tbench.added\t1\t{\"n\":1}\t%lld\t%ld"
			        "\t%lld\n",
			        tag, actor, seq, ts, actor,
			        (1LL << 62) + (long long)rep * n + done + 1);
			if (PQputCopyData(c, line, len) != 1)
				die("COPY", PQerrorMessage(c));
		}
		if (PQputCopyEnd(c, NULL) != 1)
			die("COPY end", PQerrorMessage(c));
		PGresult *r;
		while ((r = PQgetResult(c)) != NULL)
			PQclear(must(c, r, "COPY result"));
		exec(c, "COMMIT");
	}
	return secs_since(t0);
}

/* Reads every event of pid with one SELECT; decodes data if asked. */
static double select_raw(PGconn *c, const char *pid, long expect, bool json)
{
	const char *p[1] = {pid};
	uint64_t t0 = uv_hrtime();
	PGresult *r = PQexecParams(c,
	                           "SELECT seq, type, version, data, timestamp, writer, "
	                           "global_offset FROM skald.events WHERE persistence_id = $1 "
	                           "AND NOT deleted ORDER BY seq",
	                           1, NULL, p, NULL, NULL, 0);
	must(c, r, "SELECT");
	long rows = PQntuples(r), sum = 0;
	for (long i = 0; i < rows; i++) {
		int row = (int)i;
		sum += (long)strtoull(PQgetvalue(r, row, 0), NULL, 10);
		sum += (long)strlen(PQgetvalue(r, row, 1));
		sum += atoi(PQgetvalue(r, row, 2));
		sum += (long)strtoll(PQgetvalue(r, row, 4), NULL, 10);
		sum += (long)strtoll(PQgetvalue(r, row, 5), NULL, 10);
		sum += (long)strtoull(PQgetvalue(r, row, 6), NULL, 10);
		if (json) {
			json_t *d = json_loadb(PQgetvalue(r, row, 3),
			                       (size_t)PQgetlength(r, row, 3), 0, NULL);
			sum += (long)json_integer_value(json_object_get(d, "n"));
			json_decref(d);
		} else {
			sum += PQgetlength(r, row, 3);
		}
	}
	PQclear(r);
	double s = secs_since(t0);
	if (rows != expect) {
		fprintf(stderr, "pg_raw: select read %ld rows of %ld\n", rows, expect);
		exit(1);
	}
	if (sum == 42)
		fprintf(stderr, "(unlikely)\n");
	return s;
}

#define MAX_REPS 9

static void ratio(const char *what, double skald, double raw)
{
	printf("ratio %-22s skald/raw rate %.2fx (best of each)\n", what, skald / raw);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double best(const double *r, int n)
{
	double b = 0;
	for (int i = 0; i < n; i++)
		if (r[i] > b)
			b = r[i];
	return b;
}

/* One line: the best rate and the median of `reps` runs. */
static void figure(const char *name, long n, const double *r, int reps, const char *note)
{
	double s[MAX_REPS];
	memcpy(s, r, (size_t)reps * sizeof *s);
	qsort(s, (size_t)reps, sizeof *s, cmp_double);
	printf("%s n=%ld runs=%d rate=%.0f events/s median=%.0f %s\n", name, n, reps, best(r, reps),
	       s[reps / 2], note);
}

int main(int argc, char **argv)
{
	const char *store = getenv("SKALD_JOURNAL");
	double scale = 1;
	unsigned threads = 0;
	int reps = 3;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--store") == 0 && i + 1 < argc)
			store = argv[++i];
		else if (strcmp(argv[i], "--scale") == 0 && i + 1 < argc)
			scale = atof(argv[++i]);
		else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
			threads = (unsigned)atoi(argv[++i]);
		else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
			reps = atoi(argv[++i]);
		else {
			fprintf(stderr,
			        "usage: %s --store postgres://... [--scale X] [--threads N]\n",
			        argv[0]);
			return 2;
		}
	}
	if (store == NULL ||
	    (strncmp(store, "postgres://", 11) != 0 && strncmp(store, "postgresql://", 13) != 0)) {
		fprintf(stderr,
		        "pg_raw: --store must name a PostgreSQL journal (postgres://...)\n");
		return 2;
	}
	/* libpq gets the URI without the store's own options. */
	char conninfo[1024];
	snprintf(conninfo, sizeof conninfo, "%s", store);
	char *q = strchr(conninfo, '?');
	if (q)
		*q = '\0';
	PGconn *c = PQconnectdb(conninfo);
	if (PQstatus(c) != CONNECTION_OK)
		die("connect", PQerrorMessage(c));
	PQclear(PQexec(c, "SET client_min_messages = warning"));
	if (reps < 1 || reps > MAX_REPS)
		die("--reps", "must be 1 to 9");

	skald_type_register(&run_type, &T_RUN);
	skald_type_register(&get_type, &T_GET);
	skald_type_register(&value_type, &T_VALUE);
	uv_mutex_init(&lock);
	uv_cond_init(&cond);
	skald_system_t *sys;
	skald_config_t cfg = {.journal = store, .threads = threads};
	if (skald_system_new(&cfg, &sys) < 0)
		die("system", "cannot start");
	char id[64];
	snprintf(id, sizeof id, "%llx", (unsigned long long)skald_system_node(sys));

	/* Every figure runs `reps` times, Skald and raw in turn, so that a
	 * neighbour's load on the machine falls on both alike; the best and
	 * the median of each are printed, and the ratios of the bests. */
	long actors = 1000, each = (long)(100 * scale);
	if (each < 1)
		each = 1;
	long n_append = actors * each;
	double r_append[MAX_REPS], r_copy[MAX_REPS], r_replay[MAX_REPS], r_select[MAX_REPS],
	        r_json[MAX_REPS];
	skald_ref_t *refs = malloc((size_t)actors * sizeof *refs);
	char eid[80], sql[256];
	for (long i = 0; i < actors; i++) {
		snprintf(eid, sizeof eid, "many-%s-%ld", id, i);
		if (skald_entity_spawn(sys, &bench_entity, eid, NULL, &refs[i]) < 0)
			die("spawn", eid);
	}
	for (long i = 0; i < actors; i++)
		ask_events(sys, refs[i]); /* recovered: only persists are timed */
	for (int rep = 0; rep < reps; rep++) {
		atomic_store(&remaining, actors);
		uint64_t t0 = uv_hrtime();
		for (long i = 0; i < actors; i++)
			skald_system_tell(sys, refs[i], T_RUN, (void *)(intptr_t)each);
		wait_all();
		r_append[rep] = (double)n_append / secs_since(t0);
		/* Into the same table, so that both pay for the same indexes. */
		r_copy[rep] = (double)n_append / copy_raw(c, id, actors, each, rep, 1000);
	}
	for (long i = 0; i < actors; i++)
		skald_stop(sys, refs[i]);
	free(refs);
	figure("append-1000", n_append, r_append, reps, "(1000 entities, 1 event per persist)");
	figure("copy-raw", n_append, r_copy, reps, "(1000 rows per COPY transaction)");
	snprintf(sql, sizeof sql, "DELETE FROM skald.events WHERE global_offset > %lld", 1LL << 62);
	exec(c, sql);

	/* replay: a history written server-side (it is not what is measured),
	 * as Skald would have stored it. */
	long hist = (long)(1000000 * scale);
	if (hist < 1000)
		hist = 1000;
	char pid[96];
	snprintf(eid, sizeof eid, "long-%s", id);
	snprintf(pid, sizeof pid, "pgbench-%s", eid);
	for (long from = 1; from <= hist; from += 500000) {
		long to = from + 499999 < hist ? from + 499999 : hist;
		char a[24], b[24];
		snprintf(a, sizeof a, "%ld", from);
		snprintf(b, sizeof b, "%ld", to);
		const char *p[3] = {pid, a, b};
		PQclear(must(
		        c,
		        PQexecParams(c,
		                     "INSERT INTO skald.events (persistence_id, seq, type, "
		                     "version, data, timestamp, writer, global_offset) "
		                     "SELECT $1, i, 'bench.added', 1, '{\"n\": 1}', "
		                     "1700000000000, 7, (pg_current_xact_id()::text::int8 << 20) "
		                     "| (i - $2::int8) FROM generate_series($2::int8, $3::int8) "
		                     "AS i",
		                     3, NULL, p, NULL, NULL, 0),
		        "writing the history"));
	}
	exec(c, "ANALYZE skald.events");
	for (int rep = 0; rep < reps; rep++) {
		skald_ref_t w;
		uint64_t t0 = uv_hrtime();
		if (skald_entity_spawn(sys, &bench_entity, eid, NULL, &w) < 0)
			die("spawn", eid);
		long got = ask_events(sys, w);
		r_replay[rep] = (double)hist / secs_since(t0);
		if (got != hist) {
			fprintf(stderr, "pg_raw: recovered %ld events of %ld\n", got, hist);
			return 1;
		}
		skald_stop(sys, w);
		r_select[rep] = (double)hist / select_raw(c, pid, hist, false);
		r_json[rep] = (double)hist / select_raw(c, pid, hist, true);
	}
	figure("replay", hist, r_replay, reps, "(one entity recovering)");
	figure("select-raw", hist, r_select, reps, "(one SELECT, data not decoded)");
	figure("select-raw-json", hist, r_json, reps, "(one SELECT, data decoded)");

	ratio("append-1000/copy-raw", best(r_append, reps), best(r_copy, reps));
	ratio("replay/select-raw", best(r_replay, reps), best(r_select, reps));
	ratio("replay/select-raw-json", best(r_replay, reps), best(r_json, reps));

	/* Leave the database as it was, apart from dead tuples. */
	const char *p[1] = {pid};
	PQclear(PQexecParams(c, "DELETE FROM skald.events WHERE persistence_id = $1", 1, NULL, p,
	                     NULL, NULL, 0));
	snprintf(sql, sizeof sql, "pgbench-many-%s-%%", id);
	p[0] = sql;
	PQclear(PQexecParams(c, "DELETE FROM skald.events WHERE persistence_id LIKE $1", 1, NULL, p,
	                     NULL, NULL, 0));
	PQfinish(c);
	skald_system_stop(sys);
	return 0;
}
