/*
 * tests/cluster/test_registry_nodes.c - the registry between member
 * processes on loopback: names replicated to five members and removed
 * when withdrawn, when their actor stops and when their node is killed;
 * one name registered on two members at once resolved to one winner
 * everywhere, the loser's actor told; group listings that follow joins,
 * stops and a SIGKILL; remote spawn; lookups that wait for a name.
 *
 * Every wait is bounded; nothing asserts on how long things took
 * (bench/cluster.c measures that).
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "nodes.h"

static void teardown(void)
{
	proc_reap_all();
}

TestSuite(registry_nodes, .fini = teardown, .timeout = 150);

/* Sends the command and returns the first answer of p that starts with
 * prefix and came after it. */
static const char *answer(proc_t *p, const char *prefix, const char *fmt, ...)
{
	char line[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	int before = proc_lines(p, prefix);
	cr_assert_eq(proc_cmd(p, line), 0, "%s: cannot send \"%s\"", p->name, line);
	PAWAIT(proc_lines(p, prefix) > before, WAIT_MS);
	return proc_line(p, prefix);
}

/* The return code and reference of an answer "WORD NAME RC N A I ...". */
static int parse(const char *line, int skip, skald_ref_t *ref)
{
	char fmt[64] = "";
	for (int i = 0; i < skip; i++)
		strcat(fmt, "%*s ");
	strcat(fmt, "%d %llx %u %u");
	int rc;
	unsigned long long node;
	unsigned actor, inc;
	cr_assert_eq(sscanf(line, fmt, &rc, &node, &actor, &inc), 4, "unreadable: %s", line);
	*ref = (skald_ref_t){node, actor, inc};
	return rc;
}

/* Registers name on p; returns the code, with the actor in *ref. */
static int reg(proc_t *p, const char *name, skald_ref_t *ref)
{
	char prefix[64];
	snprintf(prefix, sizeof prefix, "reg %s", name);
	return parse(answer(p, prefix, "reg %s", name), 2, ref);
}

/* Until every one of m[0..n) answers the command line (whose answers
 * start with prefix) in a way ok() accepts. */
static void await_answers(proc_t **m, int n, const char *prefix, const char *line,
                          bool (*ok)(const char *answer, const void *want), const void *want)
{
	uint64_t end = proc_now_ms() + WAIT_MS;
	for (;;) {
		int agree = 0;
		for (int i = 0; i < n; i++)
			agree += ok(answer(m[i], prefix, "%s", line), want);
		if (agree == n)
			return;
		cr_assert(proc_now_ms() < end, "\"%s\": %d of %d members answer as expected", line,
		          agree, n);
		usleep(50 * 1000);
	}
}

static bool resolves_to(const char *line, const void *want)
{
	skald_ref_t r;
	int rc = parse(line, 2, &r);
	const skald_ref_t *w = want;
	return skald_ref_is_null(*w) ? rc == SKALD_ENOTFOUND : rc == 0 && skald_ref_eq(r, *w);
}

/* Until every one of m[0..n) resolves name to want (null: to nothing). */
static void await_where(proc_t **m, int n, const char *name, skald_ref_t want)
{
	char prefix[64];
	snprintf(prefix, sizeof prefix, "where %s", name);
	await_answers(m, n, prefix, prefix, resolves_to, &want);
}

static int cmd(proc_t *p, const char *fmt, ...)
{
	char line[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	return proc_cmd(p, line);
}

Test(registry_nodes, names_reach_five_members_and_end_with_their_actor_or_node)
{
	proc_t *m[5];
	form(m, 5, -1);
	await_converged(m, 5, 5, 0);
	skald_ref_t svc[5];
	for (int i = 0; i < 5; i++) {
		char name[16];
		snprintf(name, sizeof name, "svc-%d", i);
		cr_assert_eq(reg(m[i], name, &svc[i]), 0);
		cr_assert_eq(svc[i].node, m[i]->id);
	}
	for (int i = 0; i < 5; i++) {
		char name[16];
		snprintf(name, sizeof name, "svc-%d", i);
		await_where(m, 5, name, svc[i]);
	}
	/* Withdrawn by the member that registered it. */
	int rc = -1;
	sscanf(answer(m[1], "unreg svc-1", "unreg svc-1"), "%*s %*s %d", &rc);
	cr_assert_eq(rc, 0, "%s", skald_err_name(rc));
	await_where(m, 5, "svc-1", SKALD_REF_NULL);
	/* Its actor stops. */
	cr_assert_eq(cmd(m[2], "stop %llx %u %u", (unsigned long long)svc[2].node, svc[2].actor,
	                 svc[2].incarnation),
	             0);
	await_where(m, 5, "svc-2", SKALD_REF_NULL);
	/* Its node is killed: gone on every survivor. */
	proc_signal(m[4], SIGKILL);
	await_where(m, 4, "svc-4", SKALD_REF_NULL);
	await_where(m, 4, "svc-3", svc[3]);
	await_where(m, 4, "svc-0", svc[0]);
}

/* The member of a and b that is older (first in the age order). */
static proc_t *older(proc_t *observer, proc_t *a, proc_t *b)
{
	int answers = observer->answers;
	cr_assert_eq(proc_cmd(observer, "members"), 0);
	PAWAIT(observer->answers > answers, WAIT_MS);
	for (int i = 0; i < observer->nmembers && i < PROC_MAX_MEMBERS; i++) {
		if (observer->members[i] == a->id)
			return a;
		if (observer->members[i] == b->id)
			return b;
	}
	cr_assert_fail("neither member is in the view");
	return NULL;
}

static bool told_lost(proc_t *p, const char *name, skald_ref_t winner)
{
	char prefix[64];
	snprintf(prefix, sizeof prefix, "lost %s", name);
	const char *l = proc_line(p, prefix);
	skald_ref_t w;
	unsigned long long node;
	return l != NULL && sscanf(l, "%*s %*s %llx %u %u", &node, &w.actor, &w.incarnation) == 3 &&
	       node == winner.node && w.actor == winner.actor &&
	       w.incarnation == winner.incarnation;
}

Test(registry_nodes, a_name_registered_by_a_joiner_that_did_not_know_it_loses_everywhere)
{
	proc_t *m[4];
	form(m, 3, -1);
	await_converged(m, 3, 3, 0);
	skald_ref_t held;
	cr_assert_eq(reg(m[1], "lobby", &held), 0);
	await_where(m, 3, "lobby", held);
	/* The joiner registers "lobby" before it knows anyone: both hold it
	 * until they meet, then the older member's registration wins. */
	char seed[64];
	snprintf(seed, sizeof seed, "tcp://127.0.0.1:%d", m[0]->port);
	m[3] = proc_start(&(proc_opts_t){.name = "m3", .seeds = seed, .reg = "lobby"});
	cr_assert_not_null(m[3]);
	await_up(m[3], 1);
	skald_ref_t mine;
	PAWAIT(proc_line(m[3], "reg lobby") != NULL, WAIT_MS);
	cr_assert_eq(parse(proc_line(m[3], "reg lobby"), 2, &mine), 0,
	             "the joiner could not register before joining");
	await_converged(m, 4, 4, 0);
	await_where(m, 4, "lobby", held);
	PAWAIT(told_lost(m[3], "lobby", held), WAIT_MS);
	cr_assert(!told_lost(m[1], "lobby", mine), "the winner was told it lost");
}

Test(registry_nodes, names_registered_on_two_members_at_once_have_one_winner_everywhere)
{
	proc_t *m[5];
	form(m, 5, -1);
	await_converged(m, 5, 5, 0);
	proc_t *old = older(m[0], m[1], m[2]), *young = old == m[1] ? m[2] : m[1];
	enum { NAMES = 10 };
	/* Both commands leave together: the two members register while the
	 * other's registration is still on its way. */
	for (int k = 0; k < NAMES; k++) {
		cr_assert_eq(cmd(m[1], "reg race-%d", k), 0);
		cr_assert_eq(cmd(m[2], "reg race-%d", k), 0);
	}
	int conflicts = 0;
	for (int k = 0; k < NAMES; k++) {
		char prefix[32];
		snprintf(prefix, sizeof prefix, "reg race-%d", k);
		PAWAIT(proc_line(m[1], prefix) && proc_line(m[2], prefix), WAIT_MS);
		skald_ref_t r_old, r_young;
		int rc_old = parse(proc_line(old, prefix), 2, &r_old);
		int rc_young = parse(proc_line(young, prefix), 2, &r_young);
		cr_assert(rc_old == 0 || rc_young == 0, "race-%d: nobody holds it", k);
		cr_assert(rc_old == 0 || rc_old == SKALD_EEXISTS);
		cr_assert(rc_young == 0 || rc_young == SKALD_EEXISTS);
		skald_ref_t winner = rc_old == 0 ? r_old : r_young;
		await_where(m, 5, prefix + 4, winner);
		if (rc_old == 0 && rc_young == 0) {
			conflicts++;
			PAWAIT(told_lost(young, prefix + 4, r_old), WAIT_MS);
		}
		cr_assert(!told_lost(old, prefix + 4, r_young), "race-%d: the older lost", k);
	}
	cr_log_info("%d of %d names were registered on both members at once", conflicts, NAMES);
}

/* How many events of kind about ref m's subscriber of key reported, and
 * the reason of the last. */
static int gevents(proc_t *p, const char *key, int kind, skald_ref_t ref, int *reason)
{
	int n = 0;
	for (int i = 0; i < p->nlines; i++) {
		char k[64];
		int kd, rs;
		unsigned long long node;
		unsigned actor, inc;
		if (sscanf(p->lines[i], "gev %63s %d %llx %u %u %d", k, &kd, &node, &actor, &inc,
		           &rs) == 6 &&
		    strcmp(k, key) == 0 && kd == kind && node == ref.node && actor == ref.actor &&
		    inc == ref.incarnation) {
			n++;
			if (reason != NULL)
				*reason = rs;
		}
	}
	return n;
}

static bool lists(const char *line, const void *want)
{
	int count = -1;
	sscanf(line, "%*s %*s %d", &count);
	return count == *(const int *)want;
}

/* Until every one of m[0..n) lists want entries under key. */
static void await_listing(proc_t **m, int n, const char *key, int want)
{
	char prefix[64];
	snprintf(prefix, sizeof prefix, "glist %s", key);
	await_answers(m, n, prefix, prefix, lists, &want);
}

Test(registry_nodes, group_listings_follow_joins_stops_and_a_killed_member)
{
	proc_t *m[5];
	form(m, 5, -1);
	await_converged(m, 5, 5, 0);
	cr_assert_eq(proc_cmd(m[0], "gsub players"), 0);
	PAWAIT(proc_line(m[0], "gcur players") != NULL, WAIT_MS);
	skald_ref_t p[5];
	for (int i = 1; i < 5; i++) {
		const char *l = answer(m[i], "gjoin players", "gjoin players");
		cr_assert_eq(parse(l, 2, &p[i]), 0);
	}
	for (int i = 1; i < 5; i++)
		PAWAIT(gevents(m[0], "players", SKALD_GROUP_EV_JOINED, p[i], NULL) == 1, WAIT_MS);
	await_listing(m, 5, "players", 4);

	/* m1's player stops: every member drops it; the subscriber hears
	 * why. */
	cr_assert_eq(cmd(m[1], "stop %llx %u %u", (unsigned long long)p[1].node, p[1].actor,
	                 p[1].incarnation),
	             0);
	int reason = 0;
	PAWAIT(gevents(m[0], "players", SKALD_GROUP_EV_LEFT, p[1], &reason) == 1, WAIT_MS);
	cr_assert_eq(reason, SKALD_ENOACTOR, "%s", skald_err_name(reason));
	await_listing(m, 5, "players", 3);

	/* m4 is killed: its player leaves every listing, with the reason. */
	proc_signal(m[4], SIGKILL);
	PAWAIT(gevents(m[0], "players", SKALD_GROUP_EV_LEFT, p[4], &reason) == 1, WAIT_MS);
	cr_assert_eq(reason, SKALD_ENODEDOWN, "%s", skald_err_name(reason));
	await_listing(m, 4, "players", 2);

	/* A later subscriber gets the listing as it is now. */
	cr_assert_eq(proc_cmd(m[3], "gsub players"), 0);
	PAWAIT(proc_line(m[3], "gcur players") != NULL, WAIT_MS);
	cr_assert_str_eq(proc_line(m[3], "gcur players"), "gcur players 2");
	cr_assert_eq(gevents(m[3], "players", SKALD_GROUP_EV_CURRENT, p[2], NULL), 1);
	cr_assert_eq(gevents(m[3], "players", SKALD_GROUP_EV_CURRENT, p[3], NULL), 1);
	/* The subscriber saw each change once. */
	for (int i = 1; i < 5; i++)
		cr_assert_eq(gevents(m[0], "players", SKALD_GROUP_EV_JOINED, p[i], NULL), 1);
}

Test(registry_nodes, a_behaviour_is_spawned_on_a_chosen_member)
{
	proc_t *m[3];
	form(m, 3, -1);
	await_converged(m, 3, 3, 0);
	skald_ref_t r;
	cr_assert_eq(
	        parse(answer(m[0], "spawn", "spawn %llx 40", (unsigned long long)m[2]->id), 1, &r),
	        0);
	cr_assert_eq(r.node, m[2]->id, "spawned on another node");
	/* It answers (an ask of 1, answered 41 by the adder). */
	cr_assert_eq(
	        cmd(m[0], "ask %llx %u %u", (unsigned long long)r.node, r.actor, r.incarnation), 0);
	PAWAIT(m[0]->asked, WAIT_MS);
	cr_assert_eq(m[0]->asked_rc, 0, "%s", skald_err_name(m[0]->asked_rc));
	/* A behaviour the member does not know. */
	int rc = parse(
	        answer(m[0], "spawn", "spawnx %llx cltest.nothing", (unsigned long long)m[1]->id),
	        1, &r);
	cr_assert_eq(rc, SKALD_ENOTFOUND, "%s", skald_err_name(rc));
	/* Without an argument, on this node. */
	rc = parse(answer(m[0], "spawn", "spawnx %llx cltest.echo", (unsigned long long)m[0]->id),
	           1, &r);
	cr_assert_eq(rc, 0, "%s", skald_err_name(rc));
	cr_assert_eq(r.node, m[0]->id);
}

Test(registry_nodes, a_lookup_waits_for_a_name_registered_on_another_member)
{
	proc_t *m[3];
	form(m, 3, -1);
	await_converged(m, 3, 3, 0);
	cr_assert_eq(proc_cmd(m[0], "wait late 60000"), 0);
	cr_assert_eq(proc_cmd(m[0], "wait never 300"), 0);
	skald_ref_t r;
	PAWAIT(proc_line(m[0], "wait never") != NULL, WAIT_MS);
	cr_assert_eq(parse(proc_line(m[0], "wait never"), 2, &r), SKALD_ETIMEDOUT);
	cr_assert_null(proc_line(m[0], "wait late"), "answered before the name existed");
	skald_ref_t late;
	cr_assert_eq(reg(m[2], "late", &late), 0);
	PAWAIT(proc_line(m[0], "wait late") != NULL, WAIT_MS);
	cr_assert_eq(parse(proc_line(m[0], "wait late"), 2, &r), 0);
	cr_assert(skald_ref_eq(r, late));
}
