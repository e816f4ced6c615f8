/*
 * bench/failover.c - how long the entities of a member that dies take to
 * answer again from the survivors.
 *
 * Three members, 1,000 entities of 100 events each (written into the
 * journal beforehand), remember-entities on. A client on the first member
 * asks every entity in turn to add 1 (64 asks in flight, 1 s timeout), and
 * keeps the highest total each one acknowledged. Once every entity has
 * answered, the member that owns the most of them (about a third) is
 * killed, and for each entity it owned the benchmark measures the time
 * from the kill to the first successful reply to an ask sent after it. The
 * client never stops meanwhile. Then everything stops, every history is
 * read back from the journal, and the acknowledged totals are checked
 * against it. One line per run:
 *
 *   failover store=postgres nodes=3 entities=1000 events_per_entity=100 moved=N
 *       p50_ms=X p99_ms=X max_ms=X lost_acked=0 duplicate_seq=0
 *
 * store=postgres: the other two members are separate processes
 * (tests/cluster/proc.c running tests/sharding/member.c), each test in a
 * database of its own on the server given with --store (or SKALD_BENCH_PG),
 * and the kill is SIGKILL. store=memory: the three members are systems in
 * this process on one memory:// journal, and the "kill" stops the
 * victim's region and system without leaving the cluster (its connections
 * close as a killed process's would; its entities' writes complete first).
 *
 * lost_acked counts acknowledged adds whose event is not in the journal;
 * duplicate_seq counts seqs read back twice. A history whose totals do not
 * chain (two writers) is reported on stderr and fails the run.
 *
 * Usage: failover [--store postgres://...] [--entities N] [--events N]
 *                 [--recoveries N] [--only postgres|memory]
 */
#include <getopt.h>
#include <libpq-fe.h>

#include "skald/store.h"

#include "tests/cluster/proc.c"
#include "tests/sharding/ctr.c"
#include "tests/sharding/member.c"

#define BENCH_WAIT_MS 120000
#define SHARDS        "64"
#define INFLIGHT      64

static int n_entities = 1000, n_events = 100, recoveries = 32;

static void fail(const char *what)
{
	fprintf(stderr, "bench failover: %s\n", what);
	proc_reap_all();
	exit(1);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* ------------------------------------------------------------------------ */
/* A member in this process                                                  */

typedef struct local_s {
	skald_system_t *sys;
	skald_sharding_t *sh;
	char addr[64];
} local_t;

static skald_entity_type_t run_type;

static skald_sharding_config_t run_config(void)
{
	skald_sharding_config_t cfg = ctr_config();
	cfg.type = &run_type;
	cfg.shards = (unsigned)atoi(SHARDS);
	cfg.remember = 1;
	cfg.max_recoveries = (unsigned)recoveries;
	return cfg;
}

static void local_start(local_t *m, const char *journal, const char *seed)
{
	skald_config_t sc = {.threads = 2, .name = "bench", .journal = journal};
	int port;
	if (skald_system_new(&sc, &m->sys) < 0 ||
	    skald_remote_start(m->sys, &(skald_remote_config_t){.secret = PROC_SECRET}) < 0 ||
	    skald_listen(m->sys, "tcp://127.0.0.1:0", &port) < 0)
		fail("cannot start a member");
	snprintf(m->addr, sizeof m->addr, "tcp://127.0.0.1:%d", port);
	const char *seeds[1] = {seed != NULL ? seed : m->addr};
	skald_sharding_config_t cfg = run_config();
	char why[256];
	if (skald_cluster_start(m->sys, &(skald_cluster_config_t){.seeds = seeds, .nseeds = 1}) <
	            0 ||
	    skald_sharding_start(m->sys, &cfg, &m->sh) < 0 ||
	    skald_cluster_wait(m->sys, BENCH_WAIT_MS, why, sizeof why) < 0)
		fail("a member did not join");
}

static void local_stop(local_t *m)
{
	skald_sharding_stop(m->sh);
	skald_system_stop(m->sys);
}

/* The member that owns entity i, as via sees it. */
static uint64_t owner(local_t *via, int i)
{
	char id[160];
	uint64_t o = 0;
	snprintf(id, sizeof id, "%s-%d", load.prefix, i);
	skald_sharding_owner(via->sh, id, &o);
	return o;
}

/* Waits until sh places the entities on exactly `want` members, all of
 * them among nodes[0..k), and every member lists `want` members. */
static void await_placement(local_t *via, int want)
{
	uint64_t end = proc_now_ms() + BENCH_WAIT_MS;
	for (;;) {
		size_t n = 0;
		skald_cluster_members(via->sys, NULL, 0, &n);
		uint64_t seen[8] = {0};
		int distinct = 0;
		for (int i = 0; i < n_entities && n == (size_t)want; i++) {
			uint64_t o = owner(via, i);
			int k = 0;
			while (k < distinct && seen[k] != o)
				k++;
			if (k == distinct && distinct < 8)
				seen[distinct++] = o;
		}
		if (n == (size_t)want && distinct == want)
			return;
		if (proc_now_ms() > end)
			fail("the members did not agree on placement");
		usleep(20000);
	}
}

/* ------------------------------------------------------------------------ */
/* One run                                                                   */

static int all_answered(void)
{
	for (int i = 0; i < n_entities; i++)
		if (!atomic_load(&load.since[i]))
			return 0;
	return 1;
}

/* The client runs on m; waits until every entity answered once. */
static void client_start(local_t *m, const char *prefix)
{
	memset(&load, 0, sizeof load);
	snprintf(load.prefix, sizeof load.prefix, "%s", prefix);
	load.n = n_entities;
	load.w = INFLIGHT;
	region = m->sh;
	skald_ref_t ref;
	if (skald_spawn(m->sys, &client_behavior, NULL, NULL, &ref) < 0)
		fail("cannot start the client");
	uint64_t end = proc_now_ms() + BENCH_WAIT_MS;
	while (!all_answered()) {
		if (proc_now_ms() > end)
			fail("not every entity answered before the kill");
		usleep(10000);
	}
}

/* Marks which entities node owns, just before it is killed; returns how
 * many. */
static int mark_moved(local_t *via, uint64_t node, bool *moved)
{
	int k = 0;
	for (int i = 0; i < n_entities; i++) {
		moved[i] = owner(via, i) == node;
		k += moved[i];
	}
	return k;
}

/* Waits until every moved entity answered; fills lat[] (ms). */
static int collect(const bool *moved, uint64_t *lat)
{
	uint64_t end = proc_now_ms() + BENCH_WAIT_MS;
	for (;;) {
		int k = 0, done = 1;
		for (int i = 0; i < n_entities; i++) {
			if (!moved[i])
				continue;
			uint64_t f = atomic_load(&load.first_ms[i]);
			if (f == 0)
				done = 0;
			else
				lat[k++] = f - 1;
		}
		if (done)
			return k;
		if (proc_now_ms() > end)
			fail("some moved entities never answered again");
		usleep(2000);
	}
}

/* A journal handle on a loop of the benchmark's own thread. */
typedef struct jh_s {
	uv_loop_t loop;
	skald_journal_t *j;
} jh_t;

static void jh_open(jh_t *h, const char *journal)
{
	if (uv_loop_init(&h->loop) != 0 || skald_journal_open(&h->loop, journal, &h->j) < 0)
		fail("cannot open the journal");
}

static void jh_close(jh_t *h)
{
	skald_journal_close(h->j, NULL, NULL);
	uv_run(&h->loop, UV_RUN_DEFAULT);
	uv_loop_close(&h->loop);
}

/* Reads every history back and compares it with what the client was
 * told. */
static void verify(const char *journal, const char *pids, long *lost, long *dups)
{
	jh_t jh;
	jh_open(&jh, journal);
	*lost = *dups = 0;
	long forks = 0;
	for (int i = 0; i < n_entities; i++) {
		char pid[192];
		snprintf(pid, sizeof pid, "%s-%d", pids, i);
		ctr_history_t h;
		if (ctr_history(jh.j, &jh.loop, pid, &h) < 0)
			fail("a history could not be read back");
		uint64_t acked = atomic_load(&load.acked[i]);
		if (acked > h.total)
			*lost += (long)(acked - h.total);
		*dups += h.dup_seqs;
		forks += h.forks + h.gaps;
	}
	jh_close(&jh);
	if (forks > 0) {
		fprintf(stderr, "bench failover: %ld histories with a fork or a gap\n", forks);
		exit(1);
	}
}

static void report(const char *store, uint64_t *lat, int k, long lost, long dups)
{
	qsort(lat, (size_t)k, sizeof *lat, cmp_u64);
	printf("failover store=%s nodes=3 entities=%d events_per_entity=%d moved=%d p50_ms=%llu "
	       "p99_ms=%llu max_ms=%llu lost_acked=%ld duplicate_seq=%ld\n",
	       store, n_entities, n_events, k, (unsigned long long)lat[k / 2],
	       (unsigned long long)lat[(k * 99) / 100 < k ? (k * 99) / 100 : k - 1],
	       (unsigned long long)lat[k - 1], lost, dups);
	fflush(stdout);
}

static void prefill(const char *journal, const char *pids)
{
	jh_t jh;
	jh_open(&jh, journal);
	if (ctr_prefill(jh.j, &jh.loop, pids, n_entities, n_events) < 0)
		fail("cannot write the histories");
	jh_close(&jh);
}

static void run_memory(void)
{
	char journal[64], prefix[64], pids[128];
	snprintf(journal, sizeof journal, "memory://failover-%d", (int)getpid());
	snprintf(prefix, sizeof prefix, "m%d", (int)getpid());
	snprintf(pids, sizeof pids, "%s-%s", run_type.name, prefix);
	prefill(journal, pids);
	local_t m[3];
	local_start(&m[0], journal, NULL);
	local_start(&m[1], journal, m[0].addr);
	local_start(&m[2], journal, m[0].addr);
	snprintf(load.prefix, sizeof load.prefix, "%s", prefix);
	await_placement(&m[0], 3);
	client_start(&m[0], prefix);
	bool *moved = calloc((size_t)n_entities, sizeof *moved);
	int a = mark_moved(&m[0], skald_system_node(m[1].sys), moved);
	int b = mark_moved(&m[0], skald_system_node(m[2].sys), moved);
	int victim = a >= b ? 1 : 2;
	mark_moved(&m[0], skald_system_node(m[victim].sys), moved);
	load_mark();
	local_stop(&m[victim]);
	uint64_t *lat = calloc((size_t)n_entities, sizeof *lat);
	int k = collect(moved, lat);
	if (load_stop() < 0)
		fail("the client's asks did not end");
	local_stop(&m[0]);
	local_stop(&m[3 - victim]);
	long lost, dups;
	verify(journal, pids, &lost, &dups);
	report("memory", lat, k, lost, dups);
	free(lat);
	free(moved);
}

/* uri with its database replaced by db. */
static void with_db(char *out, size_t len, const char *uri, const char *db)
{
	const char *scheme_end = strstr(uri, "://");
	const char *slash = scheme_end ? strchr(scheme_end + 3, '/') : NULL;
	size_t head = slash ? (size_t)(slash - uri) : strlen(uri);
	snprintf(out, len, "%.*s/%s", (int)head, uri, db);
}

static void sql(const char *uri, const char *statement)
{
	PGconn *c = PQconnectdb(uri);
	if (PQstatus(c) != CONNECTION_OK)
		fail(PQerrorMessage(c));
	PGresult *r = PQexec(c, statement);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		fail(PQresultErrorMessage(r));
	PQclear(r);
	PQfinish(c);
}

static void run_postgres(const char *server)
{
	char db[64], journal[512], statement[128], prefix[64], pids[128];
	snprintf(db, sizeof db, "skald_failover_%d", (int)getpid());
	snprintf(statement, sizeof statement, "CREATE DATABASE %s", db);
	sql(server, statement);
	with_db(journal, sizeof journal, server, db);
	char err[512] = "";
	if (skald_store_migrate(journal, 0, NULL, err, sizeof err) < 0)
		fail(err);
	snprintf(prefix, sizeof prefix, "p%d", (int)getpid());
	snprintf(pids, sizeof pids, "%s-%s", run_type.name, prefix);
	prefill(journal, pids);

	local_t m0;
	local_start(&m0, journal, NULL);
	setenv("SKALD_JOURNAL", journal, 1);
	setenv("SKALD_MEMBER_THREADS", "2", 1);
	setenv("SKALD_SH_REMEMBER", "1", 1);
	setenv("SKALD_SH_SHARDS", SHARDS, 1);
	setenv("SKALD_SH_TYPE", run_type.name, 1);
	char rec[16];
	snprintf(rec, sizeof rec, "%d", recoveries);
	setenv("SKALD_SH_RECOVERIES", rec, 1);
	proc_t *p[2];
	for (int i = 0; i < 2; i++) {
		char name[8];
		snprintf(name, sizeof name, "m%d", i + 1);
		p[i] = proc_start(
		        &(proc_opts_t){.name = name, .seeds = m0.addr, .watchdog_s = 900});
		if (p[i] == NULL)
			fail("cannot start a member process");
	}
	for (int i = 0; i < 2; i++) {
		uint64_t end = proc_now_ms() + BENCH_WAIT_MS;
		for (proc_pump(); p[i]->ups == 0 && !p[i]->failed; proc_pump()) {
			if (proc_now_ms() > end)
				fail("a member process did not come up");
			usleep(2000);
		}
		if (p[i]->failed)
			fail(p[i]->fail_why);
	}
	snprintf(load.prefix, sizeof load.prefix, "%s", prefix);
	await_placement(&m0, 3);
	client_start(&m0, prefix);
	bool *moved = calloc((size_t)n_entities, sizeof *moved);
	int a = mark_moved(&m0, p[0]->id, moved);
	int b = mark_moved(&m0, p[1]->id, moved);
	proc_t *victim = a >= b ? p[0] : p[1];
	mark_moved(&m0, victim->id, moved);
	load_mark();
	proc_signal(victim, SIGKILL);
	uint64_t *lat = calloc((size_t)n_entities, sizeof *lat);
	int k = collect(moved, lat);
	if (load_stop() < 0)
		fail("the client's asks did not end");
	proc_stop(victim == p[0] ? p[1] : p[0], 30000);
	local_stop(&m0);
	long lost, dups;
	verify(journal, pids, &lost, &dups);
	report("postgres", lat, k, lost, dups);
	free(lat);
	fprintf(stderr, "bench failover: postgres: max_recoveries=%d per member, shards=%s\n",
	        recoveries, SHARDS);
	free(moved);
	proc_reap_all();
	snprintf(statement, sizeof statement, "DROP DATABASE IF EXISTS %s WITH (FORCE)", db);
	sql(server, statement);
}

int main(int argc, char **argv)
{
	const char *server = getenv("SKALD_BENCH_PG");
	const char *only = NULL;
	static const struct option opts[] = {
	        {"store", required_argument, NULL, 's'},
	        {"entities", required_argument, NULL, 'n'},
	        {"events", required_argument, NULL, 'e'},
	        {"recoveries", required_argument, NULL, 'r'},
	        {"only", required_argument, NULL, 'o'},
	        {NULL, 0, NULL, 0},
	};
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			server = optarg;
			break;
		case 'n':
			n_entities = atoi(optarg);
			break;
		case 'e':
			n_events = atoi(optarg);
			break;
		case 'r':
			recoveries = atoi(optarg);
			break;
		case 'o':
			only = optarg;
			break;
		default:
			fprintf(stderr, "usage: failover [--store postgres://...] [--entities N] "
			                "[--events N] [--recoveries N] [--only postgres|memory]\n");
			return 2;
		}
	}
	if (n_entities < 3 || n_entities > MAX_LOAD || n_events < 1 || recoveries < 1)
		fail("--entities must be 3 to 4096, --events and --recoveries at least 1");
	skald__store_postgres_register();
	if (ctr_register() < 0)
		fail("cannot register the message types");
	static char type_name[32];
	snprintf(type_name, sizeof type_name, "fo%d", (int)getpid());
	run_type = ctr_type;
	run_type.name = type_name;
	if (only == NULL || strcmp(only, "memory") == 0)
		run_memory();
	if (only == NULL || strcmp(only, "postgres") == 0) {
		if (server == NULL || *server == '\0')
			fail("no PostgreSQL server: give --store postgres://... or SKALD_BENCH_PG");
		run_postgres(server);
	}
	return 0;
}
