/*
 * bench/cluster.c - cluster membership between real processes on loopback
 * (the members of tests/cluster/proc.c), and, from the simulation of
 * tests/cluster/sim.c, the idle traffic of 100 members. One line per
 * figure:
 *
 *   cluster kill_to_down  nodes=5 trials=20 p50_ms=X max_ms=X
 *       SIGKILL of one member -> "down" on every survivor (the last one)
 *   cluster stop_to_down  nodes=5 trials=20 p50_ms=X max_ms=X bound_ms=6000
 *       SIGSTOP of one member -> "down" on every survivor
 *   cluster sixth_up      nodes=6 trials=5 p50_ms=X max_ms=X
 *       a 6th process started -> "up" on all five members
 *   cluster idle_bytes    nodes=5 per_node_bytes_per_s=X msgs_per_s=X
 *   cluster name_visible  nodes=5 trials=20 p50_ms=X max_ms=X
 *       skald_cluster_register on one member -> a waiting lookup answered
 *       on every member (the last one)
 *   cluster idle_bytes    nodes=100 simulated per_node_bytes_per_s=X msgs_per_s=X
 *
 * Times come from the members' own reports (CLOCK_MONOTONIC, one clock for
 * every process of the machine). Usage: cluster [TRIALS]
 */
#define SIM_NO_CRITERION
#include "tests/cluster/proc.c"
#include "tests/cluster/sim.c"

#define WAIT_MS 30000

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void fail(const char *what)
{
	fprintf(stderr, "bench cluster: %s\n", what);
	proc_reap_all();
	exit(1);
}

/* Pumps until cond or WAIT_MS. */
#define WAIT_FOR(cond, what)                                                                       \
	do {                                                                                       \
		uint64_t end_ = proc_now_ms() + WAIT_MS;                                           \
		for (;;) {                                                                         \
			proc_pump();                                                               \
			if (cond)                                                                  \
				break;                                                             \
			if (proc_now_ms() > end_)                                                  \
				fail(what);                                                        \
			usleep(1000);                                                              \
		}                                                                                  \
	} while (0)

static proc_t *member(const char *name, const char *seed)
{
	proc_t *p = proc_start(&(proc_opts_t){.name = name, .seeds = seed, .watchdog_s = 900});
	if (p == NULL)
		fail("cannot start a member");
	WAIT_FOR(p->ups > 0 || p->failed, "a member did not come up");
	if (p->failed)
		fail(p->fail_why);
	return p;
}

/* When every one of m[0..n) saw node's event of kind; 0 if one has not. */
static uint64_t last_seen(proc_t **m, int n, int kind, uint64_t node)
{
	uint64_t last = 0;
	for (int i = 0; i < n; i++) {
		uint64_t t = proc_seen(m[i], kind, node);
		if (t == 0)
			return 0;
		last = t > last ? t : last;
	}
	return last;
}

static int all_see(proc_t **m, int n, int want)
{
	for (int i = 0; i < n; i++) {
		int seen = 0;
		for (int k = 0; k < n; k++)
			seen += proc_seen(m[i], SKALD_MEMBER_EV_UP, m[k]->id) != 0 ||
			        proc_seen(m[i], SKALD_MEMBER_EV_CURRENT, m[k]->id) != 0;
		if (seen < want)
			return 0;
	}
	return 1;
}

static void report(const char *figure, const char *extra, uint64_t *t, int n)
{
	qsort(t, (size_t)n, sizeof *t, cmp_u64);
	printf("cluster %-12s nodes=%d trials=%d p50_ms=%llu max_ms=%llu%s\n", figure,
	       strcmp(figure, "sixth_up") == 0 ? 6 : 5, n, (unsigned long long)t[n / 2],
	       (unsigned long long)t[n - 1], extra);
	fflush(stdout);
}

/* Four lasting members and a fifth, new for each trial, that fails with
 * sig; returns the time from the signal to its down on all four. */
static uint64_t one_failure(proc_t **m, const char *seed, int sig)
{
	proc_t *v = member("victim", seed);
	m[4] = v;
	WAIT_FOR(all_see(m, 5, 5), "the victim did not converge");
	uint64_t t0 = proc_now_ms();
	proc_signal(v, sig);
	uint64_t t = 0;
	WAIT_FOR((t = last_seen(m, 4, SKALD_MEMBER_EV_DOWN, v->id)) != 0,
	         "a failed member was not downed");
	proc_signal(v, SIGKILL);
	return t - t0;
}

static void idle_traffic_5(proc_t **m)
{
	uint64_t before[4], after[4], mb[4], ma[4];
	for (int i = 0; i < 4; i++) {
		m[i]->counted = false;
		proc_cmd(m[i], "stats");
	}
	WAIT_FOR(m[0]->counted && m[1]->counted && m[2]->counted && m[3]->counted, "stats");
	for (int i = 0; i < 4; i++)
		before[i] = m[i]->bytes_sent, mb[i] = m[i]->msgs_sent;
	unsigned secs = 20;
	usleep(secs * 1000000u);
	for (int i = 0; i < 4; i++) {
		m[i]->counted = false;
		proc_cmd(m[i], "stats");
	}
	WAIT_FOR(m[0]->counted && m[1]->counted && m[2]->counted && m[3]->counted, "stats");
	uint64_t bytes = 0, msgs = 0;
	for (int i = 0; i < 4; i++) {
		after[i] = m[i]->bytes_sent, ma[i] = m[i]->msgs_sent;
		bytes += after[i] - before[i];
		msgs += ma[i] - mb[i];
	}
	printf("cluster idle_bytes   nodes=5 per_node_bytes_per_s=%.0f msgs_per_s=%.1f\n",
	       (double)bytes / 4 / secs, (double)msgs / 4 / secs);
	fflush(stdout);
}

/* The time of a "wait NAME ..." or "reg NAME ..." answer of p, or 0. */
static uint64_t answered_at(proc_t *p, const char *word, const char *name)
{
	char prefix[64];
	snprintf(prefix, sizeof prefix, "%s %s", word, name);
	const char *l = proc_line(p, prefix);
	int rc;
	unsigned long long node, at;
	unsigned actor, inc;
	if (l == NULL ||
	    sscanf(l, "%*s %*s %d %llx %u %u %llu", &rc, &node, &actor, &inc, &at) != 5)
		return 0;
	if (rc != 0)
		fail(l);
	return at;
}

/* A name registered on m[i % 5]: the time until the lookups that waited
 * for it on all five members are answered. */
static uint64_t name_visible(proc_t **m, int i)
{
	char name[32];
	snprintf(name, sizeof name, "bench-%d", i);
	char cmd[64];
	snprintf(cmd, sizeof cmd, "wait %s 30000", name);
	for (int k = 0; k < 5; k++)
		proc_cmd(m[k], cmd);
	/* The lookups wait once their actors run: give them a moment. */
	usleep(50 * 1000);
	snprintf(cmd, sizeof cmd, "reg %s", name);
	proc_cmd(m[i % 5], cmd);
	uint64_t t0 = 0, last = 0;
	WAIT_FOR((t0 = answered_at(m[i % 5], "reg", name)) != 0, "a registration failed");
	for (int k = 0; k < 5; k++) {
		uint64_t t = 0;
		WAIT_FOR((t = answered_at(m[k], "wait", name)) != 0, "a name was not seen");
		last = t > last ? t : last;
	}
	return last > t0 ? last - t0 : 0;
}

static void idle_traffic_100(void)
{
	sim_t *sim = sim_new(11, 100);
	sim_form(sim, 100);
	sim_run(sim, 10000);
	uint64_t b0 = sim->bytes, m0 = sim->msgs;
	sim_run(sim, 60000);
	printf("cluster idle_bytes   nodes=100 simulated per_node_bytes_per_s=%.0f "
	       "msgs_per_s=%.1f\n",
	       (double)(sim->bytes - b0) / 100 / 60.0, (double)(sim->msgs - m0) / 100 / 60.0);
	sim_free(sim);
}

int main(int argc, char **argv)
{
	int trials = argc > 1 ? atoi(argv[1]) : 20;
	if (trials < 1)
		trials = 1;
	uint64_t *t = calloc((size_t)trials, sizeof *t);
	proc_t *m[6];
	m[0] = member("m0", NULL);
	char seed[64];
	snprintf(seed, sizeof seed, "tcp://127.0.0.1:%d", m[0]->port);
	m[1] = member("m1", seed);
	m[2] = member("m2", seed);
	m[3] = member("m3", seed);
	WAIT_FOR(all_see(m, 4, 4), "four members did not converge");

	for (int i = 0; i < trials; i++)
		t[i] = one_failure(m, seed, SIGKILL);
	report("kill_to_down", "", t, trials);
	for (int i = 0; i < trials; i++)
		t[i] = one_failure(m, seed, SIGSTOP);
	report("stop_to_down", " bound_ms=6000", t, trials);

	m[4] = member("m4", seed);
	WAIT_FOR(all_see(m, 5, 5), "five members did not converge");
	idle_traffic_5(m);
	for (int i = 0; i < trials; i++)
		t[i] = name_visible(m, i);
	report("name_visible", "", t, trials);
	int sixth = trials < 5 ? trials : 5;
	for (int i = 0; i < sixth; i++) {
		uint64_t t0 = proc_now_ms();
		proc_t *s = member("sixth", seed);
		uint64_t up = 0;
		WAIT_FOR((up = last_seen(m, 5, SKALD_MEMBER_EV_UP, s->id)) != 0,
		         "the sixth member was not up everywhere");
		t[i] = up - t0;
		proc_signal(s, SIGKILL);
		WAIT_FOR(last_seen(m, 5, SKALD_MEMBER_EV_DOWN, s->id) != 0, "sixth not downed");
	}
	report("sixth_up", "", t, sixth);
	proc_reap_all();
	free(t);
	idle_traffic_100();
	return 0;
}
