/*
 * tests/remote/test_failure.c - remote watches, node monitors, lost and hung
 * nodes, and a node restarted on the same port.
 */
#include <signal.h>

#include "harness.h"

TestSuite(failure, .init = fixture_setup, .fini = fixture_teardown, .timeout = 60);

/* Heartbeats of these tests: a hung node is noticed within about two
 * seconds, and a busy machine does not make a live one look dead. */
#define HB_MS         500
#define HB_TIMEOUT_MS 2000

static node_t *start_node(const char *name, int port)
{
	return node_start(&(node_opts_t){
	        .name = name, .port = port, .heartbeat_ms = HB_MS, .timeout_ms = HB_TIMEOUT_MS});
}

static skald_system_t *start_sys(void)
{
	return sys_start(&(sys_opts_t){.heartbeat_ms = HB_MS, .timeout_ms = HB_TIMEOUT_MS});
}

static void watch_from(skald_system_t *sys, watch_ctx_t *w, skald_ref_t target)
{
	w->target = target;
	spawn(sys, &watcher_behavior, w);
	AWAIT(atomic_load(&w->armed), WAIT_MS);
	cr_assert_eq(atomic_load(&w->watch_rc), 0, "skald_watch: %s",
	             skald_err_name(atomic_load(&w->watch_rc)));
}

Test(failure, watch_of_a_remote_actor_sees_its_normal_stop)
{
	node_t *b = start_node("b", 0);
	skald_system_t *a = start_sys();
	skald_ref_t echo = lookup_on(a, b, "echo");
	static watch_ctx_t w;
	watch_from(a, &w, echo);

	cr_assert_eq(ask_cmd(a, echo, CMD_STOP), 0);
	AWAIT(atomic_load(&w.downs) > 0, WAIT_MS);
	cr_assert_eq(atomic_load(&w.reason), 0, "reason %s",
	             skald_err_name(atomic_load(&w.reason)));
	cr_assert(skald_ref_eq(w.down_ref, echo));
	HOLDS_FOR(atomic_load(&w.downs) == 1, QUIET_MS);
	/* The node lives on. */
	cr_assert_eq(ask_cmd(a, lookup_on(a, b, "seq"), CMD_COUNT), 0);
	sys_stop(a);
	node_exit_clean(b);
}

Test(failure, watch_of_an_already_stopped_remote_actor_reports_enoactor)
{
	node_t *b = start_node("b", 0);
	skald_system_t *a = start_sys();
	skald_ref_t echo = lookup_on(a, b, "echo");
	cr_assert_eq(ask_cmd(a, echo, CMD_STOP), 0);

	static watch_ctx_t w;
	watch_from(a, &w, echo);
	AWAIT(atomic_load(&w.downs) > 0, WAIT_MS);
	cr_assert_eq(atomic_load(&w.reason), SKALD_ENOACTOR, "reason %s",
	             skald_err_name(atomic_load(&w.reason)));
	cr_assert(skald_ref_eq(w.down_ref, echo));
	HOLDS_FOR(atomic_load(&w.downs) == 1, QUIET_MS);
	sys_stop(a);
	node_exit_clean(b);
}

Test(failure, a_killed_node_downs_its_watched_actors_and_tells_node_monitors)
{
	node_t *b = start_node("bee", 0);
	skald_system_t *a = start_sys();
	static mon_ctx_t m;
	spawn(a, &monitor_behavior, &m);
	AWAIT(atomic_load(&m.armed), WAIT_MS);

	uint64_t node = 0;
	int rc = skald_node_wait(a, b->addr, WAIT_MS, &node);
	cr_assert_eq(rc, 0, "node_wait: %s", skald_err_name(rc));
	cr_assert_eq(node, b->id);
	AWAIT(mon_find(&m, b->id, 1) >= 0, WAIT_MS);
	int up = mon_find(&m, b->id, 1);
	cr_assert_str_eq(m.ev[up].name, "bee");

	static watch_ctx_t w1, w2;
	watch_from(a, &w1, lookup_on(a, b, "echo"));
	watch_from(a, &w2, lookup_on(a, b, "seq"));
	/* The watches must have reached the node before it dies, or there
	 * is nothing to test: a round trip on the same connection after
	 * them proves it. */
	cr_assert_eq(ask_cmd(a, node_ref(b, "seq"), CMD_COUNT), 0);

	node_kill(b, SIGKILL);
	AWAIT(atomic_load(&w1.downs) > 0 && atomic_load(&w2.downs) > 0, WAIT_MS);
	cr_assert_eq(atomic_load(&w1.reason), SKALD_ENODEDOWN, "reason %s",
	             skald_err_name(atomic_load(&w1.reason)));
	cr_assert_eq(atomic_load(&w2.reason), SKALD_ENODEDOWN, "reason %s",
	             skald_err_name(atomic_load(&w2.reason)));
	cr_assert(skald_ref_eq(w1.down_ref, node_ref(b, "echo")));
	cr_assert(skald_ref_eq(w2.down_ref, node_ref(b, "seq")));

	AWAIT(mon_find(&m, b->id, 0) >= 0, WAIT_MS);
	int down = mon_find(&m, b->id, 0);
	cr_assert_eq(m.ev[down].reason, SKALD_ENODEDOWN, "reason %s",
	             skald_err_name(m.ev[down].reason));
	cr_assert_gt(down, up);

	/* An ask to the lost node fails at once. */
	uint64_t v;
	rc = ask_u64(a, node_ref(b, "echo"), t_int, 1, WAIT_MS, &v);
	cr_assert_eq(rc, SKALD_ENODEDOWN, "ask to a lost node: %s", skald_err_name(rc));
	HOLDS_FOR(atomic_load(&w1.downs) == 1 && atomic_load(&w2.downs) == 1, QUIET_MS);
	checks_ok();
	sys_stop(a);
}

Test(failure, a_hung_node_is_declared_down_by_the_heartbeat_timeout)
{
	/* SIGSTOP keeps the TCP connection open: only the silence tells. */
	node_t *b = start_node("b", 0);
	skald_system_t *a = start_sys();
	static mon_ctx_t m;
	spawn(a, &monitor_behavior, &m);
	AWAIT(atomic_load(&m.armed), WAIT_MS);
	static watch_ctx_t w;
	watch_from(a, &w, lookup_on(a, b, "echo"));
	cr_assert_eq(ask_cmd(a, node_ref(b, "echo"), CMD_COUNT), 0);

	node_kill(b, SIGSTOP);
	uint64_t t0 = now_ms();
	AWAIT(atomic_load(&w.downs) > 0, WAIT_MS);
	cr_assert_eq(atomic_load(&w.reason), SKALD_ENODEDOWN, "reason %s",
	             skald_err_name(atomic_load(&w.reason)));
	uint64_t took = now_ms() - t0;
	AWAIT(mon_find(&m, b->id, 0) >= 0, WAIT_MS);
	cr_log_info("hung node declared down after %llu ms (timeout %d ms)",
	            (unsigned long long)took, HB_TIMEOUT_MS);
	/* Not before the silence lasted the timeout (the last frame from b,
	 * the answer above, came at most one heartbeat before t0), and not
	 * much after it: one check per heartbeat, and room for a loaded
	 * machine under a sanitizer. */
	cr_assert_geq(took, HB_TIMEOUT_MS - HB_MS,
	              "declared down after %llu ms, before the %d ms timeout",
	              (unsigned long long)took, HB_TIMEOUT_MS);
	cr_assert_leq(took, HB_TIMEOUT_MS + 2 * HB_MS + 3000,
	              "declared down only after %llu ms (timeout %d ms)", (unsigned long long)took,
	              HB_TIMEOUT_MS);
	checks_ok();
	node_kill(b, SIGKILL);
	sys_stop(a);
}

Test(failure, a_node_restarted_on_the_same_port_is_a_new_incarnation)
{
	node_t *b1 = start_node("b", 0);
	skald_system_t *a = start_sys();
	static mon_ctx_t m;
	spawn(a, &monitor_behavior, &m);
	AWAIT(atomic_load(&m.armed), WAIT_MS);
	skald_ref_t old_echo = lookup_on(a, b1, "echo");
	uint64_t v = 0;
	cr_assert_eq(ask_u64(a, old_echo, t_int, 1, WAIT_MS, &v), 0);
	cr_assert_eq(v, 2);

	node_kill(b1, SIGKILL);
	AWAIT(mon_find(&m, b1->id, 0) >= 0, WAIT_MS);

	node_t *b2 = start_node("b", b1->port);
	cr_assert_str_eq(b2->addr, b1->addr);
	cr_assert_neq(b2->id, b1->id, "a restarted node kept its id");
	/* The test's node reconnects by itself and meets the new node. */
	uint64_t node = 0;
	int rc = skald_node_wait(a, b2->addr, WAIT_MS, &node);
	cr_assert_eq(rc, 0, "node_wait: %s", skald_err_name(rc));
	cr_assert_eq(node, b2->id);
	skald_ref_t new_echo = lookup_on(a, b2, "echo");
	cr_assert(!skald_ref_eq(new_echo, old_echo));

	/* The old reference reaches nobody: a tell is a dead letter here... */
	uint64_t dead = stats_of(a).dead_letters;
	cr_assert_eq(skald_system_tell(a, old_echo, t_int, INT_PAYLOAD(5)), 0);
	AWAIT(stats_of(a).dead_letters > dead, WAIT_MS);
	/* ... and an ask fails (at once) rather than being answered. */
	rc = ask_u64(a, old_echo, t_int, 1, WAIT_MS, &v);
	cr_assert(rc == SKALD_ENODEDOWN || rc == SKALD_ENOACTOR, "ask to the old incarnation: %s",
	          skald_err_name(rc));

	/* The new echo saw none of it, and works. */
	cr_assert_eq(ask_cmd(a, new_echo, CMD_COUNT), 0, "a message to the old node arrived");
	cr_assert_eq(ask_u64(a, new_echo, t_int, 10, WAIT_MS, &v), 0);
	cr_assert_eq(v, 11);
	cr_assert_eq(ask_cmd(a, new_echo, CMD_COUNT), 1);
	checks_ok();
	sys_stop(a);
	node_exit_clean(b2);
}
