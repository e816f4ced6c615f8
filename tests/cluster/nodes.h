/*
 * tests/cluster/nodes.h - what the tests of member processes share: bounded
 * waits on the members' reports, forming a cluster, waiting until views
 * converge. Criterion asserts; never included by the benchmark.
 */
#ifndef SKALD_TESTS_CLUSTER_NODES_H
#define SKALD_TESTS_CLUSTER_NODES_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "proc.h"

/* Generous for a sanitizer build on a loaded two-core machine. */
#define WAIT_MS 30000

static inline proc_t *start(const char *name, const char *seeds, bool restart)
{
	proc_t *p = proc_start(&(proc_opts_t){.name = name, .seeds = seeds, .restart = restart});
	cr_assert_not_null(p, "cannot start member %s", name);
	return p;
}

static inline void await_up(proc_t *p, int ups)
{
	PAWAIT(p->ups >= ups || p->failed, WAIT_MS);
	cr_assert(!p->failed, "member %s failed to join: %s (%s)", p->name, p->fail_why,
	          skald_err_name(p->fail_rc));
}

/* n members: the first forms the cluster, the others join through it. */
static inline void form(proc_t **m, int n, int restart_idx)
{
	m[0] = start("m0", NULL, restart_idx == 0);
	await_up(m[0], 1);
	char seed[64];
	snprintf(seed, sizeof seed, "tcp://127.0.0.1:%d", m[0]->port);
	for (int i = 1; i < n; i++) {
		char name[8];
		snprintf(name, sizeof name, "m%d", i);
		m[i] = start(name, seed, restart_idx == i);
	}
	for (int i = 1; i < n; i++)
		await_up(m[i], 1);
}

/* Asks each member for its up list until all lists are equal and hold
 * want members (and, if must is not 0, hold it); fails after WAIT_MS. */
static inline void await_converged(proc_t **m, int n, int want, uint64_t must)
{
	uint64_t end = proc_now_ms() + WAIT_MS;
	for (;;) {
		int asked[PROC_MAX_NODES];
		for (int i = 0; i < n; i++) {
			asked[i] = m[i]->answers;
			cr_assert_eq(proc_cmd(m[i], "members"), 0);
		}
		for (int i = 0; i < n; i++)
			PAWAIT(m[i]->answers > asked[i], WAIT_MS);
		bool same = true;
		for (int i = 0; i < n && same; i++) {
			same = m[i]->nmembers == want &&
			       memcmp(m[i]->members, m[0]->members, (size_t)want * 8) == 0;
			bool has = must == 0;
			for (int k = 0; k < want && !has; k++)
				has = m[i]->members[k] == must;
			same = same && has;
		}
		if (same)
			return;
		cr_assert(proc_now_ms() < end, "views did not converge to %d members", want);
		usleep(100 * 1000);
	}
}

static inline bool all_saw(proc_t **m, int n, int kind, uint64_t node)
{
	for (int i = 0; i < n; i++)
		if (proc_seen(m[i], kind, node) == 0)
			return false;
	return true;
}

#endif /* SKALD_TESTS_CLUSTER_NODES_H */
