/*
 * tests/entity/test_reasons.c - an entity that stopped on a failure tells
 * those who ask it why: its journal failed (SKALD_EBACKEND) or another
 * incarnation wrote first (SKALD_ECONFLICT), not SKALD_ENOACTOR. The same
 * for an ask queued behind the failed write, for one sent after the stop
 * (a sender who raced it), and for a watch that comes too late.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

TestSuite(reasons, .init = entity_fixture, .timeout = SUITE_TIMEOUT);

/* skald_system_ask of C_GET: its return code, the reply freed. */
static int ask_get(skald_system_t *sys, skald_ref_t to)
{
	cmd_t *c = calloc(1, sizeof *c);
	cr_assert_not_null(c);
	c->op = C_GET;
	uint32_t type = 0;
	void *reply = NULL;
	int rc = skald_system_ask(sys, to, T_CMD, c, WAIT_MS, &type, &reply);
	free(reply);
	return rc;
}

/* e stopped with code: its down notice says so, and so does an ask sent
 * after the stop (a sender who raced it). */
static void expect_gone(skald_system_t *sys, skald_ref_t e, int code)
{
	int rc = await_down(e);
	cr_assert_eq(rc, code, "down: %s", skald_err_name(rc));
	rc = ask_get(sys, e);
	cr_assert_eq(rc, code, "ask after the stop: %s", skald_err_name(rc));
}

Test(reasons, asks_to_an_entity_whose_journal_failed_get_ebackend)
{
	skald_system_t *sys = sys_start(probe_store_uri(), 2);
	skald_ref_t obs = observer_start(sys);
	char id[128];
	unique_id(id, sizeof id, "failed");
	skald_ref_t e = spawn_watched(sys, obs, &acc_type, id);
	cr_assert_eq(ask_get(sys, e), 0);

	atomic_store(&probe_fail_append, SKALD_EBACKEND);
	/* The write fails while the ask waits behind it in the mailbox. */
	tell_op(sys, e, C_ADD, 1, 0);
	int rc = ask_get(sys, e);
	cr_assert_eq(rc, SKALD_EBACKEND, "queued ask: %s", skald_err_name(rc));
	expect_gone(sys, e, SKALD_EBACKEND);
	skald_system_stop(sys);
	test_end();
}

Test(reasons, asks_to_an_entity_that_lost_a_conflict_get_econflict)
{
	skald_system_t *sys = sys_start(store_uri(), 2);
	skald_ref_t obs = observer_start(sys);
	char id[128];
	unique_id(id, sizeof id, "lost");
	skald_ref_t first = spawn_watched(sys, obs, &acc_type, id);
	skald_ref_t second = spawn_watched(sys, obs, &acc_type, id);
	cr_assert_eq(ask_get(sys, second), 0, "the second has recovered");
	reply_t *r = ask_op(sys, first, C_ADD, 1, 0);
	cr_assert_eq(r->status, 0);
	free(r);
	r = ask_op(sys, second, C_ADD, 1, 0);
	cr_assert_eq(r->status, SKALD_ECONFLICT);
	free(r);
	expect_gone(sys, second, SKALD_ECONFLICT);
	/* A watch that comes after the stop learns the reason too. */
	cmd_t *c = calloc(1, sizeof *c);
	c->op = O_WATCH;
	c->ref = second;
	uint32_t type;
	void *reply = NULL;
	cr_assert_eq(skald_system_ask(sys, obs, T_CMD, c, WAIT_MS, &type, &reply), 0);
	free(reply);
	int rc = await_down_nth(second, 1);
	cr_assert_eq(rc, SKALD_ECONFLICT, "late watch: %s", skald_err_name(rc));
	skald_system_stop(sys);
	test_end();
}

Test(reasons, an_entity_that_stopped_normally_is_enoactor)
{
	skald_system_t *sys = sys_start(store_uri(), 2);
	skald_ref_t obs = observer_start(sys);
	char id[128];
	unique_id(id, sizeof id, "normal");
	skald_ref_t e = spawn_watched(sys, obs, &acc_type, id);
	cr_assert_eq(ask_get(sys, e), 0);
	cr_assert_eq(skald_stop(sys, e), 0);
	cr_assert_eq(await_down(e), 0);
	int rc = ask_get(sys, e);
	cr_assert_eq(rc, SKALD_ENOACTOR, "%s", skald_err_name(rc));
	skald_system_stop(sys);
	test_end();
}

/* stderr into a file made from the template path, from here on (each test
 * runs in a process of its own). */
static void stderr_to(char *path)
{
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_geq(dup2(fd, 2), 0);
	close(fd);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f);
	static char buf[65536];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

Test(reasons, a_failed_first_read_is_not_called_a_failed_replay)
{
	char path[] = "/tmp/skald-entity-log-XXXXXX";
	stderr_to(path);
	skald_system_t *sys = sys_start(probe_store_uri(), 2);
	skald_ref_t obs = observer_start(sys);
	char id[128];
	unique_id(id, sizeof id, "firstread");
	/* As a store whose connection fails at its first operation. */
	atomic_store(&probe_fail_read, SKALD_EBACKEND);
	skald_ref_t e = spawn_watched(sys, obs, &acc_nosnap_type, id);
	cr_assert_eq(await_down(e), SKALD_EBACKEND);
	skald_system_stop(sys);
	const char *log = slurp(path);
	cr_assert_not_null(strstr(log, "recovery failed while reading its events (none was "
	                               "replayed): journal backend error"),
	                   "%s", log);
	unlink(path);
	test_end();
}

Test(reasons, a_failure_without_a_backend_message_has_no_empty_brackets)
{
	char path[] = "/tmp/skald-entity-log-XXXXXX";
	stderr_to(path);
	skald_system_t *sys = sys_start(store_uri(), 2);
	skald_ref_t obs = observer_start(sys);
	char id[128];
	unique_id(id, sizeof id, "nobrackets");
	skald_ref_t e = spawn_watched(sys, obs, &acc_type, id);
	reply_t *r = ask_op(sys, e, C_ADD, 1, 0);
	free(r);
	r = ask_op(sys, e, C_SNAPSHOT, 0, 0);
	cr_assert_eq(r->rc, 0);
	free(r);
	cr_assert_eq(skald_stop(sys, e), 0);
	cr_assert_eq(await_down(e), 0);
	/* Recovery restores the snapshot, and restore fails: a failure of the
	 * entity's own code, with no message from the store. */
	atomic_store(&g_restore_fail, 1);
	e = spawn_watched(sys, obs, &acc_type, id);
	cr_assert_eq(await_down_nth(e, 0), TEST_ERR);
	skald_system_stop(sys);
	const char *log = slurp(path);
	cr_assert_not_null(strstr(log, "recovery failed while restoring the snapshot"), "%s", log);
	cr_assert_null(strstr(log, "()"), "%s", log);
	unlink(path);
	test_end();
}
