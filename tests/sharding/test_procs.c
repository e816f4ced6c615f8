/*
 * tests/sharding/test_procs.c - sharding between member processes on
 * loopback, on PostgreSQL (the shared journal), each test in a database of
 * its own: a member killed while clients keep sending, a member stopped
 * past the timeout that wakes to a conflict, a partition 2|1 (the
 * transport's fault hook), an ask whose owner dies, and the database
 * restarted under load. What the journal holds is read back from the journal, never
 * taken from the members' word.
 *
 * Members are this binary run again (tests/cluster/proc.c, with the hooks
 * of member.c); the client that keeps sending runs in the first member,
 * which is never the one that fails.
 */
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sh.h"
#include "tests/cluster/proc.h"
#include "tests/postgres/helpers.h"

#define PWAIT_MS 90000

static pgt_db_t db;
static bool have_db;

static void setup(void)
{
	entity_fixture();
	cr_assert_eq(ctr_register(), 0);
	pgt_db_new(&db, NULL, 1);
	have_db = true;
}

static void teardown(void)
{
	proc_reap_all();
	if (have_db)
		pgt_db_drop(&db);
	have_db = false;
}

TestSuite(procs, .init = setup, .fini = teardown, .timeout = 300);

static proc_t *member(const char *name, const proc_t *seed, bool remember)
{
	char s[64] = "";
	if (seed != NULL)
		snprintf(s, sizeof s, "tcp://127.0.0.1:%d", seed->port);
	setenv("SKALD_JOURNAL", db.uri, 1);
	setenv("SKALD_MEMBER_THREADS", "2", 1);
	setenv("SKALD_SH_REMEMBER", remember ? "1" : "0", 1);
	proc_t *p = proc_start(
	        &(proc_opts_t){.name = name, .seeds = seed != NULL ? s : NULL, .watchdog_s = 280});
	cr_assert_not_null(p);
	PAWAIT(p->ups > 0 || p->failed, PWAIT_MS);
	cr_assert(!p->failed, "member %s: %s", name, p->fail_why);
	return p;
}

/* Sends a command and waits for its "x " answer (in p->x). */
static void cmd(proc_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void cmd(proc_t *p, const char *fmt, ...)
{
	char line[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	int before = p->nx;
	cr_assert_eq(proc_cmd(p, line), 0, "member %s is gone", p->name);
	uint64_t end = proc_now_ms() + PWAIT_MS;
	for (proc_pump(); p->nx == before; proc_pump()) {
		cr_assert(proc_now_ms() < end, "member %s did not answer \"%s\"", p->name, line);
		usleep(2000);
	}
}

static int count_of(proc_t *p)
{
	cmd(p, "count");
	int k = -1;
	sscanf(p->x, "count %d", &k);
	return k;
}

typedef struct mstats_s {
	unsigned long long shards, live, started, takeovers, conflicts, restarts, dropped;
} mstats_t;

static mstats_t stats_of(proc_t *p)
{
	mstats_t m = {0};
	cmd(p, "shstats");
	cr_assert_eq(sscanf(p->x, "stats %llu %llu %llu %llu %llu %llu %llu", &m.shards, &m.live,
	                    &m.started, &m.takeovers, &m.conflicts, &m.restarts, &m.dropped),
	             7, "stats: %s", p->x);
	return m;
}

/* Waits until every member of m[0..k) lists k members. */
static void await_view(proc_t **m, int k)
{
	for (int i = 0; i < k; i++) {
		uint64_t end = proc_now_ms() + PWAIT_MS;
		for (;;) {
			int before = m[i]->answers;
			cr_assert_eq(proc_cmd(m[i], "members"), 0);
			PAWAIT(m[i]->answers > before, PWAIT_MS);
			if (m[i]->nmembers == k)
				break;
			cr_assert(proc_now_ms() < end, "member %s sees %d members", m[i]->name,
			          m[i]->nmembers);
			usleep(50000);
		}
	}
}

/* Waits until the client has heard from every one of n entities since the
 * last "since". */
static void await_all_answered(proc_t *client, int n)
{
	uint64_t end = proc_now_ms() + PWAIT_MS;
	int k;
	while ((k = count_of(client)) < n) {
		cr_assert(proc_now_ms() < end, "%d of %d entities answered", k, n);
		usleep(100000);
	}
}

/* Stops the client and checks every entity's history against what it
 * acknowledged: every acknowledged total is in the journal, the totals
 * chain (no history written by two owners), no seq is missing or twice. */
static void check_histories(proc_t *client, const char *prefix, int n, int prefilled)
{
	char file[128];
	snprintf(file, sizeof file, "/tmp/skald-sh-acks-%d-%s", (int)getpid(), prefix);
	cmd(client, "unload %s", file);
	cr_assert_str_eq(client->x, "unloaded 0");
	FILE *f = fopen(file, "r");
	cr_assert_not_null(f);
	jloop_t l;
	jl_open(&l, db.uri);
	int i;
	unsigned long long acked;
	int seen = 0;
	long more = 0;
	while (fscanf(f, "%d %llu", &i, &acked) == 2) {
		char id[96];
		snprintf(id, sizeof id, "%s-%d", prefix, i);
		ctr_history_t h;
		ctr_read(&l, id, &h);
		cr_assert_eq(h.forks, 0, "%s: a total that does not follow the one before", id);
		cr_assert_eq(h.gaps, 0, "%s: a seq missing", id);
		cr_assert_eq(h.dup_seqs, 0, "%s: a seq read twice", id);
		cr_assert_eq(h.events, h.highest, "%s", id);
		cr_assert_geq(h.highest, (uint64_t)prefilled, "%s", id);
		cr_assert_geq(h.total, acked, "%s: acknowledged total %llu is not in the journal",
		              id, acked);
		more += (long)(h.highest - (uint64_t)prefilled);
		seen++;
	}
	fclose(f);
	unlink(file);
	jl_close(&l);
	cr_assert_eq(seen, n);
	cr_assert_gt(more, 0, "the client's adds were written");
}

/* Three members with remember on, n entities of `events` events each
 * written beforehand under a fresh prefix (into prefix), and the first
 * member's client sending to all of them (w asks in flight) until each has
 * answered once. */
static void three_loaded(proc_t **m, char *prefix, size_t len, const char *tag, int n, int events,
                         int w)
{
	unique_id(prefix, len, tag);
	jloop_t l;
	jl_open(&l, db.uri);
	char fill[96];
	snprintf(fill, sizeof fill, "ctr-%s", prefix);
	cr_assert_eq(ctr_prefill(l.j, &l.loop, fill, n, events), 0, "prefill: %s",
	             skald_journal_errmsg(l.j));
	jl_close(&l);
	m[0] = member("m0", NULL, true);
	m[1] = member("m1", m[0], true);
	m[2] = member("m2", m[0], true);
	await_view(m, 3);
	cmd(m[0], "load %s %d %d", prefix, n, w);
	await_all_answered(m[0], n);
}

Test(procs, a_killed_member_s_entities_answer_again_from_the_survivors_and_no_acked_event_is_lost)
{
	enum { N = 1000, EVENTS = 100 };
	char prefix[64];
	proc_t *m[3];
	three_loaded(m, prefix, sizeof prefix, "kill", N, EVENTS, 32);
	cr_assert_gt(stats_of(m[2]).live, 100, "the member to kill hosts a share");
	cmd(m[0], "since");
	proc_signal(m[2], SIGKILL);
	/* Every entity answers again, the killed member's from a survivor,
	 * while the client keeps sending. */
	await_all_answered(m[0], N);
	mstats_t a = stats_of(m[0]), b = stats_of(m[1]);
	cr_assert_gt(a.takeovers + b.takeovers, 0);
	cr_assert_eq(a.live + b.live, N, "every entity lives on a survivor");
	check_histories(m[0], prefix, N, EVENTS);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(proc_stop(m[i], 30000), 0);
}

Test(procs, a_stopped_member_that_wakes_after_its_shards_moved_loses_its_writes_to_conflicts)
{
	enum { N = 200, EVENTS = 20 };
	char prefix[64];
	proc_t *m[3];
	three_loaded(m, prefix, sizeof prefix, "stop", N, EVENTS, 16);
	cr_assert_gt(stats_of(m[2]).live, 0);
	proc_signal(m[2], SIGSTOP);
	/* Past the timeout, the others down it and take its shards; the
	 * client's messages to it meanwhile wait in its sockets. */
	PAWAIT(proc_seen(m[0], SKALD_MEMBER_EV_DOWN, m[2]->id) &&
	               proc_seen(m[1], SKALD_MEMBER_EV_DOWN, m[2]->id),
	       PWAIT_MS);
	cmd(m[0], "since");
	await_all_answered(m[0], N);
	/* It wakes: its entities write what waited for them, behind the new
	 * owners, and conflict; then it hears it was downed. */
	proc_signal(m[2], SIGCONT);
	PAWAIT(proc_seen(m[2], SKALD_MEMBER_EV_DOWN, m[2]->id), PWAIT_MS);
	uint64_t end = proc_now_ms() + PWAIT_MS;
	mstats_t c;
	while ((c = stats_of(m[2])).live > 0) {
		cr_assert(proc_now_ms() < end, "the downed member still runs %llu entities",
		          c.live);
		usleep(50000);
	}
	cr_assert_gt(c.conflicts, 0, "the stale owner's first writes conflicted");
	check_histories(m[0], prefix, N, EVENTS);
	for (int i = 0; i < 3; i++)
		proc_stop(m[i], 30000);
}

Test(procs, a_partitioned_minority_stops_its_entities_and_the_majority_serves_them)
{
	enum { N = 200, EVENTS = 20 };
	char prefix[64];
	proc_t *m[3];
	three_loaded(m, prefix, sizeof prefix, "part", N, EVENTS, 16);
	cr_assert_gt(stats_of(m[2]).live, 0);
	/* m2 | m0 m1: every frame between the sides is dropped, while the
	 * connections stay up (no reset to speed anything up). */
	for (int i = 0; i < 2; i++) {
		cmd(m[2], "cut %llx", (unsigned long long)m[i]->id);
		cr_assert_str_eq(m[2]->x, "cut 0");
		cmd(m[i], "cut %llx", (unsigned long long)m[2]->id);
		cr_assert_str_eq(m[i]->x, "cut 0");
	}
	/* Keep-majority: the two down the one, the one downs itself. */
	PAWAIT(proc_seen(m[2], SKALD_MEMBER_EV_DOWN, m[2]->id) &&
	               proc_seen(m[0], SKALD_MEMBER_EV_DOWN, m[2]->id) &&
	               proc_seen(m[1], SKALD_MEMBER_EV_DOWN, m[2]->id),
	       PWAIT_MS);
	uint64_t end = proc_now_ms() + PWAIT_MS;
	while (stats_of(m[2]).live > 0)
		cr_assert(proc_now_ms() < end, "the minority still runs entities");
	cmd(m[0], "since");
	await_all_answered(m[0], N);
	mstats_t a = stats_of(m[0]), b = stats_of(m[1]);
	cr_assert_eq(a.live + b.live, N, "the majority serves every entity");
	check_histories(m[0], prefix, N, EVENTS);
	for (int i = 0; i < 3; i++)
		proc_stop(m[i], 30000);
}

Test(procs, an_ask_whose_owner_dies_fails_with_enodedown_at_once)
{
	proc_t *m[2];
	m[0] = member("m0", NULL, false);
	m[1] = member("m1", m[0], false);
	await_view(m, 2);
	char id[64];
	do {
		unique_id(id, sizeof id, "doomed");
		cmd(m[0], "owner %s", id);
	} while (strtoull(m[0]->x + strlen("owner "), NULL, 16) != m[1]->id);
	/* The owner is stopped: the ask reaches it and waits in its socket
	 * (m0 forwards it at once; the owner is killed well after). */
	proc_signal(m[1], SIGSTOP);
	char line[128];
	snprintf(line, sizeof line, "askone %s 60000", id);
	int before = m[0]->nx;
	cr_assert_eq(proc_cmd(m[0], line), 0);
	usleep(300000);
	proc_signal(m[1], SIGKILL);
	PAWAIT(m[0]->nx > before, PWAIT_MS);
	int rc = 0;
	sscanf(m[0]->x, "askone %d", &rc);
	cr_assert_eq(rc, SKALD_ENODEDOWN, "the asker heard %s, not that the node went down",
	             skald_err_name(rc));
	proc_stop(m[0], 30000);
}

/* Asks adds of 1 to ids[0..n) in turn from outside any actor, keeping the
 * highest total each one acknowledged and whether it answered since the
 * last mark. */
typedef struct pumper_s {
	skald_sharding_t *sh;
	char ids[20][64];
	int n;
	pthread_t th;
	atomic_int stop;
	uint64_t acked[20];
	atomic_int since[20];
} pumper_t;

static void *pumper_main(void *arg)
{
	pumper_t *p = arg;
	for (int i = 0; !atomic_load(&p->stop); i = (i + 1) % p->n) {
		uint64_t total;
		if (ctr_ask(p->sh, p->ids[i], t_add, 1, 1000, &total) == 0) {
			if (total > p->acked[i])
				p->acked[i] = total;
			atomic_store(&p->since[i], 1);
		} else {
			sleep_ms(10);
		}
	}
	return NULL;
}

static bool all_since(pumper_t *p)
{
	for (int i = 0; i < p->n; i++)
		if (!atomic_load(&p->since[i]))
			return false;
	return true;
}

static char restart_cluster[64];

static void restart_fini(void)
{
	char cmdline[160];
	snprintf(cmdline, sizeof cmdline, "bash scripts/pg.sh destroy %s >/dev/null 2>&1",
	         restart_cluster);
	pgt_sh(cmdline, NULL, 0);
	teardown();
}

Test(procs, entities_come_back_by_themselves_after_the_database_restarts_under_load,
     .fini = restart_fini)
{
	/* A server of the test's own: it is killed. */
	snprintf(restart_cluster, sizeof restart_cluster, "shrestart-%s", pgt_tag());
	char cmdline[200], base[512], again[512];
	snprintf(cmdline, sizeof cmdline, "bash scripts/pg.sh start %s 2>&1", restart_cluster);
	cr_assert_eq(pgt_sh(cmdline, base, sizeof base), 0, "cannot start a server: %s", base);
	pgt_db_t own;
	pgt_db_new(&own, base, 1);
	skald_sharding_config_t cfg = ctr_config();
	cfg.backoff_min_ms = 100;
	cfg.backoff_max_ms = 1000;
	tnode_t *n[2];
	n[0] = tnode_start(own.uri, NULL, &cfg);
	n[1] = tnode_start(own.uri, n[0], &cfg);
	await_members(n, 2);
	static pumper_t p;
	memset(&p, 0, sizeof p);
	p.sh = n[0]->sh;
	p.n = 20;
	for (int i = 0; i < p.n; i++)
		unique_id(p.ids[i], sizeof p.ids[i], "db");
	cr_assert_eq(pthread_create(&p.th, NULL, pumper_main, &p), 0);
	AWAIT(all_since(&p), WAIT_MS);

	snprintf(cmdline, sizeof cmdline, "bash scripts/pg.sh stop %s --immediate 2>&1",
	         restart_cluster);
	cr_assert_eq(pgt_sh(cmdline, again, sizeof again), 0, "stop: %s", again);
	sleep_ms(1500);
	for (int i = 0; i < p.n; i++)
		atomic_store(&p.since[i], 0);
	snprintf(cmdline, sizeof cmdline, "bash scripts/pg.sh start %s 2>&1", restart_cluster);
	cr_assert_eq(pgt_sh(cmdline, again, sizeof again), 0, "restart: %s", again);
	cr_assert_str_eq(again, base, "the server came back on another port");
	/* Nobody restarts anything: the entities come back by themselves. */
	AWAIT(all_since(&p), PWAIT_MS);
	atomic_store(&p.stop, 1);
	pthread_join(p.th, NULL);
	skald_sharding_stats_t a, b;
	skald_sharding_stats(n[0]->sh, &a);
	skald_sharding_stats(n[1]->sh, &b);
	cr_assert_gt(a.restarts + b.restarts, 0, "entities were restarted after failing");
	tnode_stop(n[0]);
	tnode_stop(n[1]);
	jloop_t l;
	jl_open(&l, own.uri);
	for (int i = 0; i < p.n; i++) {
		ctr_history_t h;
		ctr_read(&l, p.ids[i], &h);
		cr_assert_eq(h.forks + h.gaps, 0, "%s", p.ids[i]);
		cr_assert_geq(h.total, p.acked[i], "%s: an acknowledged add is missing", p.ids[i]);
	}
	jl_close(&l);
	pgt_db_drop(&own);
}
