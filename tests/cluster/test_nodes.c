/*
 * tests/cluster/test_nodes.c - membership between real processes on
 * loopback: join and convergence, a killed member, a stopped member that
 * wakes and comes back as a new incarnation, graceful leave, refused
 * handshakes, and seeds that cannot be reached or resolved.
 *
 * Every wait is bounded; nothing asserts on how long things took (the
 * benchmark bench/cluster.c measures that).
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "proc.h"

static void teardown(void)
{
	proc_reap_all();
}

TestSuite(members, .fini = teardown, .timeout = 150);

/* Generous for a sanitizer build on a loaded two-core machine. */
#define WAIT_MS 30000

static proc_t *start(const char *name, const char *seeds, bool restart)
{
	proc_t *p = proc_start(&(proc_opts_t){.name = name, .seeds = seeds, .restart = restart});
	cr_assert_not_null(p, "cannot start member %s", name);
	return p;
}

static void await_up(proc_t *p, int ups)
{
	PAWAIT(p->ups >= ups || p->failed, WAIT_MS);
	cr_assert(!p->failed, "member %s failed to join: %s (%s)", p->name, p->fail_why,
	          skald_err_name(p->fail_rc));
}

/* n members: the first forms the cluster, the others join through it. */
static void form(proc_t **m, int n, int restart_idx)
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
static void await_converged(proc_t **m, int n, int want, uint64_t must)
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

static bool all_saw(proc_t **m, int n, int kind, uint64_t node)
{
	for (int i = 0; i < n; i++)
		if (proc_seen(m[i], kind, node) == 0)
			return false;
	return true;
}

Test(members, five_members_join_through_one_seed_and_converge)
{
	proc_t *m[5];
	form(m, 5, -1);
	await_converged(m, 5, 5, 0);
	/* The member that formed the cluster is the oldest everywhere. */
	cr_assert_eq(m[1]->members[0], m[0]->id);
	/* Each member heard of each: in the view it got first, or as UP. */
	for (int i = 0; i < 5; i++)
		for (int k = 0; k < 5; k++)
			cr_assert(proc_seen(m[i], SKALD_MEMBER_EV_UP, m[k]->id) != 0 ||
			                  proc_seen(m[i], SKALD_MEMBER_EV_CURRENT, m[k]->id) != 0,
			          "m%d never heard of m%d", i, k);
}

Test(members, a_killed_member_is_down_on_every_survivor_and_its_watchers_hear_it)
{
	proc_t *m[5];
	form(m, 5, -1);
	await_converged(m, 5, 5, 0);
	proc_t *victim = m[4];
	char cmd[96];
	snprintf(cmd, sizeof cmd, "watch %llx %u %u", (unsigned long long)victim->echo.node,
	         victim->echo.actor, victim->echo.incarnation);
	cr_assert_eq(proc_cmd(m[1], cmd), 0);
	PAWAIT(m[1]->watching, WAIT_MS);
	cr_assert_eq(m[1]->watch_rc, 0);

	proc_signal(victim, SIGKILL);
	PAWAIT(all_saw(m, 4, SKALD_MEMBER_EV_DOWN, victim->id), WAIT_MS);
	PAWAIT(m[1]->watch_down, WAIT_MS);
	cr_assert_eq(m[1]->watch_reason, SKALD_ENODEDOWN);
	await_converged(m, 4, 4, 0);
	for (int i = 0; i < 4; i++)
		for (int k = 0; k < 4; k++)
			cr_assert_neq(m[i]->members[k], victim->id);
}

Test(members, a_stopped_member_is_downed_and_rejoins_as_a_new_incarnation)
{
	proc_t *m[5];
	form(m, 5, 4);
	await_converged(m, 5, 5, 0);
	proc_t *sleeper = m[4];
	skald_ref_t old_echo = sleeper->echo;
	uint64_t old = sleeper->id;

	proc_signal(sleeper, SIGSTOP);
	PAWAIT(all_saw(m, 4, SKALD_MEMBER_EV_DOWN, old), WAIT_MS);
	proc_signal(sleeper, SIGCONT);
	/* It learns it is down, then starts again as a new node id. */
	PAWAIT(sleeper->ups == 2 || sleeper->failed, WAIT_MS);
	cr_assert(!sleeper->failed, "the restarted member failed to join: %s", sleeper->fail_why);
	bool self_down = false;
	for (int i = 0; i < sleeper->nev; i++)
		self_down |= sleeper->ev[i].kind == SKALD_MEMBER_EV_DOWN && sleeper->ev[i].self &&
		             sleeper->ev[i].node == old;
	cr_assert(self_down, "the woken member never heard it was down");
	cr_assert_neq(sleeper->id, old);
	await_converged(m, 5, 5, sleeper->id);

	/* A message to the old incarnation's actor is a dead letter. */
	char cmd[96];
	snprintf(cmd, sizeof cmd, "ask %llx %u %u", (unsigned long long)old_echo.node,
	         old_echo.actor, old_echo.incarnation);
	cr_assert_eq(proc_cmd(m[0], cmd), 0);
	PAWAIT(m[0]->asked, WAIT_MS);
	cr_assert_eq(m[0]->asked_rc, SKALD_ENODEDOWN, "ask of the old incarnation: %s",
	             skald_err_name(m[0]->asked_rc));
}

Test(members, a_graceful_leave_is_removed_everywhere_without_a_down)
{
	proc_t *m[3];
	form(m, 3, -1);
	await_converged(m, 3, 3, 0);
	cr_assert_eq(proc_cmd(m[2], "leave"), 0);
	PAWAIT(m[2]->left, WAIT_MS);
	cr_assert_eq(m[2]->left_rc, 0, "leave: %s", skald_err_name(m[2]->left_rc));
	PAWAIT(all_saw(m, 2, SKALD_MEMBER_EV_REMOVED, m[2]->id), WAIT_MS);
	cr_assert(all_saw(m, 2, SKALD_MEMBER_EV_LEFT, m[2]->id));
	await_converged(m, 2, 2, 0);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(proc_seen(m[i], SKALD_MEMBER_EV_DOWN, m[2]->id), 0,
		             "m%d downed the member that left", i);
	cr_assert_eq(proc_stop(m[2], WAIT_MS), 0, "the member that left did not exit cleanly");
}

/* A member that will refuse b, and b, which must fail with rc, both
 * saying why. */
static void expect_refused(const proc_opts_t *bad, int rc, const char *words)
{
	proc_t *a = start("a", NULL, false);
	await_up(a, 1);
	char seed[64];
	snprintf(seed, sizeof seed, "tcp://127.0.0.1:%d", a->port);
	proc_opts_t o = *bad;
	o.seeds = seed;
	proc_t *b = proc_start(&o);
	cr_assert_not_null(b);
	PAWAIT(b->failed || b->ups > 0, WAIT_MS);
	cr_assert(b->failed, "a node with the wrong %s joined", words);
	cr_assert_eq(b->fail_rc, rc, "joiner: %s (%s)", skald_err_name(b->fail_rc), b->fail_why);
	cr_assert(strstr(b->fail_why, seed) != NULL, "the joiner's reason names no seed: %s",
	          b->fail_why);
	PAWAIT(a->refused_why[0] != '\0', WAIT_MS);
	cr_assert(strstr(a->refused_why, "refused") != NULL, "seed side: %s", a->refused_why);
	int reason = 0;
	for (int i = 0; i < a->nev; i++)
		if (a->ev[i].kind == SKALD_MEMBER_EV_REFUSED)
			reason = a->ev[i].reason;
	cr_assert_eq(reason, rc, "seed side reason: %s", skald_err_name(reason));
	/* The seed's cluster is still itself alone. */
	int answers = a->answers;
	cr_assert_eq(proc_cmd(a, "members"), 0);
	PAWAIT(a->answers > answers, WAIT_MS);
	cr_assert_eq(a->nmembers, 1);
}

Test(members, a_node_with_the_wrong_secret_is_refused_with_the_reason_on_both_sides)
{
	expect_refused(&(proc_opts_t){.name = "b", .secret = "not-the-secret"}, SKALD_EAUTH,
	               "secret");
}

Test(members, a_node_of_another_cluster_is_refused_with_the_reason_on_both_sides)
{
	expect_refused(&(proc_opts_t){.name = "b", .cluster = "elsewhere"}, SKALD_ECLUSTER,
	               "cluster name");
}

Test(members, an_unreachable_seed_is_a_clear_error)
{
	/* Port 1 on loopback: nothing listens there. */
	proc_t *b = proc_start(
	        &(proc_opts_t){.name = "b", .seeds = "tcp://127.0.0.1:1", .wait_ms = 1500});
	cr_assert_not_null(b);
	PAWAIT(b->failed || b->ups > 0, WAIT_MS);
	cr_assert(b->failed);
	cr_assert_eq(b->fail_rc, UV_ECONNREFUSED, "%s: %s", skald_err_name(b->fail_rc),
	             b->fail_why);
	cr_assert(strstr(b->fail_why, "tcp://127.0.0.1:1") != NULL, "%s", b->fail_why);
}

Test(members, an_unresolvable_dns_seed_is_a_clear_error)
{
	proc_t *b = proc_start(&(proc_opts_t){
	        .name = "b", .seeds = "dns://no-such-host.invalid:7000", .wait_ms = 3000});
	cr_assert_not_null(b);
	PAWAIT(b->failed || b->ups > 0, WAIT_MS);
	cr_assert(b->failed);
	cr_assert(b->fail_rc == UV_EAI_NONAME || b->fail_rc == UV_EAI_AGAIN ||
	                  b->fail_rc == UV_EAI_FAIL,
	          "%s: %s", skald_err_name(b->fail_rc), b->fail_why);
	cr_assert(strstr(b->fail_why, "no-such-host.invalid") != NULL, "%s", b->fail_why);
}

Test(members, a_dns_seed_naming_localhost_joins)
{
	proc_t *m[2];
	m[0] = start("a", NULL, false);
	await_up(m[0], 1);
	char seed[64];
	snprintf(seed, sizeof seed, "dns://localhost:%d", m[0]->port);
	m[1] = start("b", seed, false);
	await_up(m[1], 1);
	await_converged(m, 2, 2, 0);
}
