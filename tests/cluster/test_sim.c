/*
 * tests/cluster/test_sim.c - the membership protocol, 100 members in the
 * simulated network: convergence, failure detection without false
 * positives, the downing rule under a partition, Lifeguard, leave, rejoin.
 *
 * The figures printed here (virtual time) are the simulation's; benchmarks
 * quote them. Nothing asserts on wall-clock time.
 */
#include <stdio.h>
#include <stdlib.h>

#include "sim.h"
#include "skald/error.h"

TestSuite(sim, .timeout = 120);

#define N 100

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Detection times of member s by the running members other than s:
 * median and max, in ms after t0. */
static void detection(sim_t *sim, int s, uint64_t t0, uint64_t *p50, uint64_t *max)
{
	uint64_t t[SIM_MAX];
	int k = 0;
	for (int o = 0; o < sim->n; o++)
		if (o != s && sim->nodes[o].mode == SIM_RUN && sim->down_at[o][s])
			t[k++] = sim->down_at[o][s] - t0;
	qsort(t, (size_t)k, sizeof t[0], cmp_u64);
	*p50 = k ? t[k / 2] : 0;
	*max = k ? t[k - 1] : 0;
}

typedef struct seen_s {
	int s, want;
} seen_t;

static int seen_by_all(sim_t *sim, void *arg)
{
	seen_t *w = arg;
	return sim_seen_down(sim, w->s, 0, sim->n) >= w->want;
}

Test(sim, hundred_members_join_through_one_seed_and_converge)
{
	sim_t *sim = sim_new(11, N);
	uint64_t t = sim_form(sim, N);
	skald__cl_rec_t up[SIM_MAX];
	for (int i = 0; i < N; i++) {
		size_t n = skald__cl_up_members(sim->nodes[i].cl, up, SIM_MAX);
		SIM_ASSERT(sim, n == N, "member %d sees %zu up", i, n);
		/* The seed formed the cluster: it is the oldest everywhere. */
		SIM_ASSERT(sim, up[0].node == sim->nodes[0].node,
		           "member %d: oldest is not the seed", i);
	}
	SIM_ASSERT(sim, sim->downs == 0 && sim->protoerr == 0, "%llu downs, %llu refused messages",
	           (unsigned long long)sim->downs, (unsigned long long)sim->protoerr);
	printf("cluster sim: %d members joined through one seed, converged in %llu ms (virtual)\n",
	       N, (unsigned long long)t);
	sim_free(sim);
}

Test(sim, lossy_network_never_downs_a_healthy_member)
{
	sim_t *sim = sim_new(12, N);
	sim_form(sim, N);
	/* Idle cost first, without loss: 60 s of a quiet cluster. */
	uint64_t b0 = sim->bytes, m0 = sim->msgs;
	sim_run(sim, 60000);
	double bps = (double)(sim->bytes - b0) / N / 60.0;
	double mps = (double)(sim->msgs - m0) / N / 60.0;
	printf("cluster sim: idle protocol traffic at %d members: %.0f bytes/s and %.1f "
	       "messages/s sent per member\n",
	       N, bps, mps);

	/* Suspicions counted where they were raised (a member whose own
	 * probe failed), not where the gossip carried them. */
	uint64_t raised = 0;
	for (int i = 0; i < N; i++)
		raised += sim->nodes[i].raised;
	double losses[] = {0.05, 0.10};
	for (int l = 0; l < 2; l++) {
		sim->loss = losses[l];
		sim_run(sim, 150000);
		uint64_t u = 0;
		for (int i = 0; i < N; i++)
			u += sim->nodes[i].raised;
		SIM_ASSERT(sim, sim->downs == 0, "%llu false downs at %.0f%% loss",
		           (unsigned long long)sim->downs, losses[l] * 100);
		printf("cluster sim: %.0f%% loss for 150 s at %d members: %llu suspicions raised "
		       "by "
		       "failed probes, all refuted, 0 false downs\n",
		       losses[l] * 100, N, (unsigned long long)(u - raised));
		raised = u;
	}
	sim->loss = 0;
	sim_run(sim, 10000);
	SIM_ASSERT(sim, sim_converged(sim, 0, N), "views differ after the loss stopped");
	sim_free(sim);
}

/* Member s fails the way mode says; waits until `want` others see it
 * down; stores the median and worst time to that, from the failure. */
static void fail_and_measure(sim_t *sim, int s, sim_mode_t mode, int want, uint64_t *p50,
                             uint64_t *max)
{
	uint64_t t0 = sim->now;
	sim_set_mode(sim, s, mode);
	seen_t w = {s, want};
	int ok = sim_run_until(sim, 30000, seen_by_all, &w);
	SIM_ASSERT(sim, ok, "only %d of %d saw member %d down", sim_seen_down(sim, s, 0, sim->n),
	           want, s);
	detection(sim, s, t0, p50, max);
}

Test(sim, crashed_member_is_down_everywhere)
{
	sim_t *sim = sim_new(13, N);
	sim_form(sim, N);
	sim_run(sim, 5000);
	uint64_t p50, max;
	fail_and_measure(sim, 37, SIM_CRASHED, N - 1, &p50, &max);
	printf("cluster sim: crash (connection refused) -> down on all %d others: p50 %llu ms, "
	       "max %llu ms (virtual)\n",
	       N - 1, (unsigned long long)p50, (unsigned long long)max);
	SIM_ASSERT(sim, sim->downs == N - 1, "someone else was downed too");
	sim_run(sim, 5000);
	SIM_ASSERT(sim, sim_converged(sim, 0, N), "views differ");
	sim_free(sim);
}

Test(sim, silent_member_is_down_within_timeout_plus_one_interval)
{
	sim_t *sim = sim_new(14, N);
	sim_form(sim, N);
	sim_run(sim, 5000);
	uint64_t worst = 0, sum = 0;
	int trials = 5;
	for (int k = 0; k < trials; k++) {
		int s = 10 + 17 * k;
		uint64_t p50, max;
		fail_and_measure(sim, s, SIM_STOPPED, N - 1 - k, &p50, &max);
		SIM_ASSERT(sim, max <= 5000 + 1000, "member %d down everywhere only after %llu ms",
		           s, (unsigned long long)max);
		worst = max > worst ? max : worst;
		sum += max;
		sim_set_mode(sim, s, SIM_GONE);
		sim_run(sim, 3000);
	}
	printf("cluster sim: silent member -> down on all others: mean %llu ms, worst %llu ms "
	       "over %d trials (timeout 5000 + interval 1000)\n",
	       (unsigned long long)(sum / (uint64_t)trials), (unsigned long long)worst, trials);
	SIM_ASSERT(sim, sim->downs == (uint64_t)((N - 1) + (N - 2) + (N - 3) + (N - 4) + (N - 5)),
	           "%llu downs: some member other than the silent ones was downed",
	           (unsigned long long)sim->downs);
	sim_free(sim);
}

typedef struct split_s {
	int cut; /* members [cut, N) are the minority */
} split_t;

static int split_settled(sim_t *sim, void *arg)
{
	split_t *sp = arg;
	for (int i = sp->cut; i < N; i++)
		if (!sim->nodes[i].self_down_at)
			return 0;
	for (int i = sp->cut; i < N; i++)
		if (sim_seen_down(sim, i, 0, sp->cut) < sp->cut)
			return 0;
	return 1;
}

Test(sim, partition_minority_downs_itself_and_majority_downs_it)
{
	sim_t *sim = sim_new(15, N);
	sim_form(sim, N);
	sim_run(sim, 5000);
	split_t sp = {60};
	for (int i = sp.cut; i < N; i++)
		sim->nodes[i].group = 1;
	uint64_t t0 = sim->now;
	int ok = sim_run_until(sim, 60000, split_settled, &sp);
	int selfdown = 0, seen = 0, wrong = 0;
	for (int i = sp.cut; i < N; i++) {
		selfdown += sim->nodes[i].self_down_at != 0;
		seen += sim_seen_down(sim, i, 0, sp.cut);
	}
	for (int i = 0; i < sp.cut; i++)
		wrong += sim_seen_down(sim, i, 0, N);
	SIM_ASSERT(sim, ok,
	           "the 60|40 partition did not settle within 60 s: %d of 40 downed themselves, "
	           "%d of 2400 downs seen by the majority, %d majority members seen down",
	           selfdown, seen, wrong);
	uint64_t self_max = 0, seen_max = 0;
	for (int i = sp.cut; i < N; i++) {
		uint64_t t = sim->nodes[i].self_down_at - t0;
		self_max = t > self_max ? t : self_max;
		for (int o = 0; o < sp.cut; o++)
			if (sim->down_at[o][i] - t0 > seen_max)
				seen_max = sim->down_at[o][i] - t0;
	}
	/* The majority is intact: nobody there down, in any view. */
	for (int i = 0; i < sp.cut; i++) {
		SIM_ASSERT(sim, !sim->nodes[i].self_down_at, "majority member %d downed itself", i);
		SIM_ASSERT(sim, sim_seen_down(sim, i, 0, N) == 0, "majority member %d seen down",
		           i);
		SIM_ASSERT(sim, !skald__cl_stopped(sim->nodes[i].cl), "majority member %d stopped",
		           i);
	}
	SIM_ASSERT(sim, sim_converged(sim, 0, sp.cut));
	skald__cl_rec_t up[SIM_MAX];
	SIM_ASSERT(sim, skald__cl_up_members(sim->nodes[0].cl, up, SIM_MAX) == (size_t)sp.cut,
	           "the majority's up list is not the 60");
	printf("cluster sim: partition 60|40: minority all self-downed after %llu ms, majority "
	       "saw all 40 down after %llu ms (virtual)\n",
	       (unsigned long long)self_max, (unsigned long long)seen_max);
	sim_free(sim);
}

/* Every message to the slow member arrives up to this late: more than a
 * period, so its probes often fail although their targets are healthy. */
#define SLOW_MS 1500

typedef struct slow_run_s {
	uint64_t seed;
	uint64_t raised;      /* suspicions the slow member raised */
	uint64_t others_down; /* members other than the slow one, seen down */
	int slow_down;        /* the slow member itself was downed */
} slow_run_t;

static slow_run_t slow_prober_run(int lhm_max)
{
	slow_run_t r = {0};
	sim_t *sim = sim_new(16, N);
	sim->base.lhm_max = lhm_max;
	sim_form(sim, N);
	int slow = 5;
	uint64_t before = sim->nodes[slow].raised;
	sim->nodes[slow].slow_ms = SLOW_MS;
	sim_run(sim, 120000);
	r.raised = sim->nodes[slow].raised - before;
	for (int i = 0; i < N; i++)
		if (i != slow)
			r.others_down += (uint64_t)sim_seen_down(sim, i, 0, N);
	r.slow_down = sim->nodes[slow].self_down_at != 0;
	r.seed = sim->seed;
	sim_free(sim);
	return r;
}

/* The slow member may be downed itself (it answers later than the
 * failure detector allows), but the healthy ones it fails to hear in time
 * must not be. */
Test(sim, slow_prober_does_not_down_healthy_members)
{
	slow_run_t on = slow_prober_run(0);
	cr_assert(on.others_down == 0, "[SIM_SEED=%llu] %llu downs of healthy members",
	          (unsigned long long)on.seed, (unsigned long long)on.others_down);
	slow_run_t off = slow_prober_run(-1);
	printf("cluster sim: a member whose every message in is up to %d ms late, 120 s: it "
	       "raised %llu suspicions with Lifeguard, %llu without; healthy members downed: %llu "
	       "with, %llu without; the slow one downed: %s with, %s without\n",
	       SLOW_MS, (unsigned long long)on.raised, (unsigned long long)off.raised,
	       (unsigned long long)on.others_down, (unsigned long long)off.others_down,
	       on.slow_down ? "yes" : "no", off.slow_down ? "yes" : "no");
}

typedef struct gone_s {
	int s;
} gone_t;

static int removed_everywhere(sim_t *sim, void *arg)
{
	gone_t *g = arg;
	uint64_t node = sim->nodes[g->s].node;
	if (!sim->nodes[g->s].removed_at)
		return 0;
	for (int o = 0; o < sim->n; o++) {
		if (o == g->s || sim->nodes[o].mode != SIM_RUN)
			continue;
		const skald__cl_rec_t *r = skald__cl_lookup(sim->nodes[o].cl, node);
		if (!r || skald__cl_rec_status(r) != SKALD__CL_ST_REMOVED)
			return 0;
	}
	return 1;
}

Test(sim, graceful_leave_is_removed_everywhere_without_a_down)
{
	sim_t *sim = sim_new(17, N);
	sim_form(sim, N);
	int s = 42;
	skald__cl_leave(sim->nodes[s].cl, sim->now);
	gone_t g = {s};
	int ok = sim_run_until(sim, 30000, removed_everywhere, &g);
	SIM_ASSERT(sim, ok, "the leaving member is not removed everywhere");
	SIM_ASSERT(sim, sim->nodes[s].removed_at, "the leaving member did not finish");
	SIM_ASSERT(sim, skald__cl_stopped(sim->nodes[s].cl), "the leaving member still runs");
	printf("cluster sim: graceful leave -> removed on all others in %llu ms (virtual)\n",
	       (unsigned long long)sim->now);
	sim_set_mode(sim, s, SIM_GONE);
	sim_run(sim, 20000);
	SIM_ASSERT(sim, sim->downs == 0, "a leave caused a down");
	SIM_ASSERT(sim, sim_converged(sim, 0, N), "views differ");
	skald__cl_rec_t up[SIM_MAX];
	SIM_ASSERT(sim, skald__cl_up_members(sim->nodes[0].cl, up, SIM_MAX) == N - 1,
	           "the leaver is still in the up list");
	sim_free(sim);
}

static int rejoined(sim_t *sim, void *arg)
{
	gone_t *g = arg;
	skald__cl_rec_t up[SIM_MAX];
	return sim_converged(sim, 0, N) &&
	       skald__cl_up_members(sim->nodes[0].cl, up, SIM_MAX) == N &&
	       skald__cl_lookup(sim->nodes[0].cl, sim->nodes[g->s].node);
}

Test(sim, downed_member_wakes_learns_it_is_down_and_rejoins_as_new_incarnation)
{
	sim_t *sim = sim_new(18, N);
	sim_form(sim, N);
	int s = 23;
	uint64_t old = sim->nodes[s].node;
	uint64_t p50, max;
	fail_and_measure(sim, s, SIM_STOPPED, N - 1, &p50, &max);
	/* SIGCONT: its first message is answered with its own down record. */
	sim_set_mode(sim, s, SIM_RUN);
	sim_run(sim, 5000);
	SIM_ASSERT(sim, sim->nodes[s].self_down_at, "the woken member did not learn it is down");
	SIM_ASSERT(sim, skald__cl_stopped(sim->nodes[s].cl), "the downed member still runs");

	sim_restart(sim, s);
	sim_join(sim, s, 0);
	gone_t g = {s};
	SIM_ASSERT(sim, sim_run_until(sim, 30000, rejoined, &g), "the new incarnation is not up");
	for (int o = 0; o < N; o++) {
		const skald__cl_rec_t *r = skald__cl_lookup(sim->nodes[o].cl, old);
		if (o != s)
			SIM_ASSERT(sim, r && skald__cl_rec_status(r) == SKALD__CL_ST_DOWN,
			           "member %d lost the old incarnation's tombstone", o);
	}
	/* The newcomer is the youngest: last in age order everywhere. */
	skald__cl_rec_t up[SIM_MAX];
	skald__cl_up_members(sim->nodes[0].cl, up, SIM_MAX);
	SIM_ASSERT(sim, up[N - 1].node == sim->nodes[s].node,
	           "the new incarnation is not the youngest");
	sim_free(sim);
}

Test(sim, join_beyond_max_members_is_refused_with_a_reason)
{
	sim_t *sim = sim_new(19, 9);
	sim->base.max_members = 8;
	sim_form(sim, 8);
	sim_join(sim, 8, 0);
	sim_run(sim, 5000);
	SIM_ASSERT(sim, sim->nodes[8].refused == SKALD_ETOOMANY, "refused with %d",
	           sim->nodes[8].refused);
	SIM_ASSERT(sim, skald__cl_stopped(sim->nodes[8].cl), "the refused member still runs");
	SIM_ASSERT(sim, sim_converged(sim, 0, 8), "views differ");
	sim_free(sim);
}

/* A member that crashes again and again, each time coming back as a new
 * node id within a second: every crash is downed, and the downs of earlier
 * crashes never make the healthy members count themselves a minority. */
Test(sim, crash_loop_of_one_member_never_downs_the_healthy_ones)
{
	sim_t *sim = sim_new(17, 5);
	sim_form(sim, 5);
	sim_run(sim, 3000);
	for (int round = 0; round < 12; round++) {
		sim_set_mode(sim, 4, SIM_CRASHED);
		seen_t w = {4, 4};
		SIM_ASSERT(sim, sim_run_until(sim, 20000, seen_by_all, &w), "crash %d not downed",
		           round);
		sim_restart(sim, 4);
		sim_join(sim, 4, 0);
		sim_run(sim, 500);
	}
	for (int i = 0; i < 4; i++)
		SIM_ASSERT(sim, sim->nodes[i].self_down_at == 0, "healthy member %d downed itself",
		           i);
	/* Each of the four saw each crash down once. */
	SIM_ASSERT(sim, sim->downs == 4 * 12, "%llu downs for 12 crashes",
	           (unsigned long long)sim->downs);
	sim_free(sim);
}
