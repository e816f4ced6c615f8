/*
 * tests/postgres/test_restart.c - the server goes away and comes back.
 *
 * The test runs a cluster of its own (scripts/pg.sh start NAME), because it
 * kills it: `pg_ctl stop -m immediate`, as a crash would.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/postgres/helpers.h"

typedef struct acall_s {
	int calls, status;
} acall_t;

static void on_append(skald_journal_t *j, int status, skald_write_t *w, size_t n, void *arg)
{
	acall_t *c = arg;
	c->calls++;
	c->status = status;
}

static char cluster[64];

static void destroy_cluster(void)
{
	char cmd[160];
	snprintf(cmd, sizeof cmd, "bash scripts/pg.sh destroy %s >/dev/null 2>&1", cluster);
	pgt_sh(cmd, NULL, 0);
}

Test(restart, writes_in_flight_fail_later_ones_reconnect_and_nothing_acknowledged_is_lost,
     .timeout = PGT_TIMEOUT, .fini = destroy_cluster)
{
	snprintf(cluster, sizeof cluster, "restart-%s", pgt_tag());
	char cmd[200], base[512], again[512];
	snprintf(cmd, sizeof cmd, "bash scripts/pg.sh start %s 2>&1", cluster);
	cr_assert_eq(pgt_sh(cmd, base, sizeof base), 0, "cannot start a cluster: %s", base);
	pgt_db_t db;
	pgt_db_new(&db, base, 1);

	pgt_t t;
	pgt_open(&t, db.uri);
	const char *pid = "restart-me";
	for (uint64_t s = 0; s < 20; s += 4)
		cr_assert_eq(pgt_append(&t, pid, s, 4, NULL), 0, "%s", skald_journal_errmsg(t.j));

	/* Hold the append below on the server (a lock it must wait for), so
	 * that it is surely in flight when the server dies. */
	PGconn *blocker = pgt_connect(db.uri);
	pgt_exec(blocker, "BEGIN");
	pgt_exec(blocker, "LOCK TABLE skald.events IN SHARE MODE");
	skald_event_t ev[4];
	for (int i = 0; i < 4; i++)
		ev[i] = (skald_event_t){.type = "pgt.counted",
		                        .data = json_pack("{si}", "n", 21 + i)};
	skald_write_t w = {pid, 20, ev, 4, 0};
	acall_t c = {0};
	cr_assert_eq(skald_journal_append(t.j, &w, 1, on_append, &c), 0);
	pgt_run_for(&t, 300);
	cr_assert_eq(c.calls, 0, "the append should be waiting for the lock");

	snprintf(cmd, sizeof cmd, "bash scripts/pg.sh stop %s --immediate 2>&1", cluster);
	char out[512];
	cr_assert_eq(pgt_sh(cmd, out, sizeof out), 0, "stop: %s", out);
	PQfinish(blocker);

	pgt_run_until(&t, &c.calls, 1);
	cr_assert_lt(c.status, 0, "a write in flight when the server died must fail");
	cr_assert_neq(c.status, SKALD_ECONFLICT, "a lost connection is not a conflict");
	cr_assert_neq(c.status, SKALD_EREJECTED, "a lost connection is not a rejection");
	const char *msg = skald_journal_errmsg(t.j);
	cr_assert(strstr(msg, "connection") != NULL, "a clear message: %s", msg);
	cr_log_info("in flight: %s: %s", skald_strerror(c.status), msg);

	/* While the server is down, writes fail at once and say why. */
	acall_t down = {0};
	w.status = 0;
	cr_assert_eq(skald_journal_append(t.j, &w, 1, on_append, &down), 0);
	pgt_run_until(&t, &down.calls, 1);
	cr_assert_eq(down.status, SKALD_EBACKEND, "%d: %s", down.status, skald_journal_errmsg(t.j));
	cr_log_info("while down: %s", skald_journal_errmsg(t.j));

	snprintf(cmd, sizeof cmd, "bash scripts/pg.sh start %s 2>&1", cluster);
	cr_assert_eq(pgt_sh(cmd, again, sizeof again), 0, "restart: %s", again);
	cr_assert_str_eq(again, base, "the cluster came back on another port");

	/* The same handle reconnects: what was acknowledged is all there, and
	 * the write that failed in flight was not stored (it never got the
	 * lock). */
	cr_assert_eq(pgt_highest(&t, pid), 20);
	cr_assert_eq(pgt_append(&t, pid, 20, 4, NULL), 0, "%s", skald_journal_errmsg(t.j));
	pgt_read_t r;
	pgt_read(&t, pid, &r);
	cr_assert_eq(r.status, 0);
	cr_assert_eq(r.n, 24);
	for (size_t i = 0; i < r.n; i++) {
		cr_assert_eq(r.seqs[i], i + 1);
		cr_assert_eq(json_integer_value(json_object_get(r.data[i], "n")),
		             (json_int_t)(i + 1));
	}
	pgt_read_free(&r);
	for (int i = 0; i < 4; i++)
		json_decref(ev[i].data);
	pgt_close(&t);
}
