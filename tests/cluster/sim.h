/*
 * tests/cluster/sim.h - a deterministic network for the membership logic.
 *
 * Up to SIM_MAX members in one process, a virtual clock in ms, and a queue
 * of timed events: a message delivered, a connection reset reported, a
 * member's timer due. Messages are lost with probability `loss`, delayed
 * by delay_min..delay_max ms (plus a slow member's extra delay), and dropped
 * between members of different partition groups. A crashed member's host
 * refuses connections (its sender learns it after one delay, as from a
 * kernel that has no listener); a stopped member is silent. Everything
 * random comes from one seed, so a run is repeated exactly by its seed
 * (SIM_SEED in the environment overrides a test's own).
 */
#ifndef SKALD_TESTS_CLUSTER_SIM_H
#define SKALD_TESTS_CLUSTER_SIM_H

#include <stdint.h>
#include <stdio.h>
#ifdef SIM_NO_CRITERION
/* Outside a test (bench/cluster.c): a broken expectation ends the run. */
#include <stdlib.h>
#define cr_assert(cond, ...)                                                                       \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "cluster sim: failed: %s\n", #cond);                       \
			abort();                                                                   \
		}                                                                                  \
	} while (0)
#else
#include <criterion/criterion.h>
#endif

#include "actors/cluster/state.h"

#define SIM_MAX   128
#define SIM_NEVER UINT64_MAX

typedef enum { SIM_RUN = 0, SIM_CRASHED, SIM_STOPPED, SIM_GONE } sim_mode_t;

typedef struct sim_s sim_t;

typedef struct sim_node_s {
	sim_t *sim;
	int idx;
	skald__cl_t *cl;
	uint64_t node;     /* current node id */
	uint64_t old_node; /* the one before a restart, or 0 */
	char addr[32];
	sim_mode_t mode;
	int group;             /* partition group */
	unsigned slow_ms;      /* extra delay, up to this, on every message in */
	uint64_t wake_at;      /* the timer event in the queue, or SIM_NEVER */
	uint64_t self_down_at; /* when it declared itself down, or 0 */
	uint64_t removed_at;   /* when it finished leaving, or 0 */
	int refused;           /* the reason of a refused join, or 0 */
	uint64_t unreachable;  /* UNREACHABLE events seen here */
	uint64_t raised;       /* ... of which this member was the suspecter */
} sim_node_t;

typedef struct sim_event_s sim_event_t;

struct sim_s {
	uint64_t seed, rng, now;
	double loss;
	unsigned delay_min, delay_max;
	skald__cl_config_t base; /* every member's config, but node/addr/seed */
	sim_node_t nodes[SIM_MAX];
	int n;
	/* down_at[o][s]: when member o saw member s (current id) down. */
	uint64_t down_at[SIM_MAX][SIM_MAX];
	uint64_t downs;    /* DOWN events anywhere, self-downs included */
	uint64_t bytes;    /* bytes sent by running members */
	uint64_t msgs;     /* messages sent */
	uint64_t protoerr; /* messages a member refused as malformed */
	sim_event_t *heap;
	size_t nheap, capheap;
	uint64_t evseq;
};

/* A simulation of n members (not yet joined) with seed: the test's own, or
 * SIM_SEED's. Delays 1..10 ms, no loss, default protocol settings. */
sim_t *sim_new(uint64_t seed, int n);
void sim_free(sim_t *sim);

/* Member i joins through the given seed member (-1: forms the cluster). */
void sim_join(sim_t *sim, int i, int seed_member);
/* n members: 0 forms the cluster, the others join through it at once;
 * runs until every view is the same; returns the virtual ms it took. */
uint64_t sim_form(sim_t *sim, int n);

void sim_run(sim_t *sim, uint64_t ms);
/* Runs until done(sim, arg) or limit ms; returns 1 if done. Checked every
 * 10 ms. */
int sim_run_until(sim_t *sim, uint64_t limit, int (*done)(sim_t *, void *), void *arg);

/* Member i restarts as a new node id at the same address (not joined). */
void sim_restart(sim_t *sim, int i);
void sim_set_mode(sim_t *sim, int i, sim_mode_t mode);

/* 1 if the running members in [from, to) all have one view: the same
 * digest and the same up members (ids, incarnations, order). */
int sim_converged(sim_t *sim, int from, int to);
/* How many running members in [from, to) see member s down. */
int sim_seen_down(sim_t *sim, int s, int from, int to);

uint64_t sim_rand(sim_t *sim, uint64_t n);

/* A failed assertion names the seed that repeats the run. */
#define SIM_ASSERT(sim, cond, ...)                                                                 \
	do {                                                                                       \
		if (!(cond))                                                                       \
			fprintf(stderr, "cluster sim: failed with SIM_SEED=%llu at t=%llu ms\n",   \
			        (unsigned long long)(sim)->seed, (unsigned long long)(sim)->now);  \
		cr_assert((cond), __VA_ARGS__);                                                    \
	} while (0)

#endif /* SKALD_TESTS_CLUSTER_SIM_H */
