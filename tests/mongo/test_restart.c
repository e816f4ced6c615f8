/*
 * tests/mongo/test_restart.c - the server goes away and comes back. The
 * test runs its own FerretDB (the binary scripts/ferretdb.sh installs, or
 * SKALD_FERRETDB_BIN) on a free loopback port with its own data directory,
 * kills it with SIGKILL while writes are in flight, and starts it again on
 * the same port and data.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "skald/store.h"
#include "tests/mongo/mt.h"

#define TEST_OPT .timeout = 600

typedef struct ferret_s {
	char bin[512];
	char dir[128];
	int port;
	pid_t pid;
} ferret_t;

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof a;
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) != 0)
		return -1;
	close(fd);
	return ntohs(a.sin_port);
}

static int reachable(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons((uint16_t)port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

static void ferret_start(ferret_t *f)
{
	char url[256], listen[64], state[256];
	snprintf(url, sizeof url, "--sqlite-url=file:%s/data/", f->dir);
	snprintf(listen, sizeof listen, "--listen-addr=127.0.0.1:%d", f->port);
	snprintf(state, sizeof state, "--state-dir=%s/state", f->dir);
	f->pid = fork();
	cr_assert_geq(f->pid, 0);
	if (f->pid == 0) {
		freopen("/dev/null", "w", stdout);
		freopen("/dev/null", "w", stderr);
		execl(f->bin, f->bin, "--handler=sqlite", url, listen, "--debug-addr=-", state,
		      "--telemetry=disable", "--log-level=error", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 300 && !reachable(f->port); i++)
		usleep(50000);
	cr_assert(reachable(f->port), "FerretDB (%s) did not start on port %d", f->bin, f->port);
}

static void ferret_kill(ferret_t *f)
{
	kill(f->pid, SIGKILL);
	waitpid(f->pid, NULL, 0);
	f->pid = 0;
}

static void ferret_init(ferret_t *f)
{
	memset(f, 0, sizeof *f);
	const char *bin = getenv("SKALD_FERRETDB_BIN");
	const char *cache = getenv("SKALD_CACHE");
	const char *home = getenv("HOME");
	if (bin && *bin)
		snprintf(f->bin, sizeof f->bin, "%s", bin);
	else if (cache && *cache)
		snprintf(f->bin, sizeof f->bin, "%s/ferretdb-1.24.2", cache);
	else
		snprintf(f->bin, sizeof f->bin, "%s/.cache/skald/ferretdb-1.24.2",
		         home ? home : "/root");
	cr_assert_eq(access(f->bin, X_OK), 0,
	             "no FerretDB at %s: run scripts/ferretdb.sh install (or set "
	             "SKALD_FERRETDB_BIN)",
	             f->bin);
	snprintf(f->dir, sizeof f->dir, "/tmp/skald-restart-XXXXXX");
	cr_assert_not_null(mkdtemp(f->dir));
	char sub[256];
	snprintf(sub, sizeof sub, "%s/data", f->dir);
	mkdir(sub, 0700);
	snprintf(sub, sizeof sub, "%s/state", f->dir);
	mkdir(sub, 0700);
	f->port = free_port();
	cr_assert_gt(f->port, 0);
}

static void ferret_fini(ferret_t *f)
{
	if (f->pid > 0)
		ferret_kill(f);
	char cmd[256];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", f->dir);
}

enum { IDS = 20 };

typedef struct call_s {
	int done, status;
} call_t;

static void on_append(skald_journal_t *j, int status, skald_write_t *w, size_t n, void *arg)
{
	call_t *c = arg;
	c->status = status;
	c->done = 1;
}

typedef struct batch_s {
	char pids[IDS][16];
	uint64_t acked[IDS]; /* highest seq acknowledged */
	uint64_t next[IDS];  /* expected seq of the next write */
	skald_event_t ev[IDS];
	skald_write_t w[IDS];
} batch_t;

/* Starts one write of one event for every id: {"n": its seq}. */
static int start_round(mt_t *t, batch_t *b, call_t *c)
{
	for (int k = 0; k < IDS; k++) {
		b->ev[k] = (skald_event_t){
		        .type = "mt.restart",
		        .data = json_pack("{sI}", "n", (json_int_t)(b->next[k] + 1))};
		b->w[k] = (skald_write_t){b->pids[k], b->next[k], &b->ev[k], 1, 0};
	}
	memset(c, 0, sizeof *c);
	return skald_journal_append(t->j, b->w, IDS, on_append, c);
}

static void finish_round(mt_t *t, batch_t *b, call_t *c)
{
	while (!c->done)
		uv_run(&t->loop, UV_RUN_ONCE);
	for (int k = 0; k < IDS; k++) {
		if (b->w[k].status == 0) {
			b->next[k]++;
			b->acked[k] = b->next[k];
		}
		json_decref(b->ev[k].data);
	}
}

Test(restart, writes_fail_while_the_server_is_gone_and_nothing_acknowledged_is_lost, TEST_OPT)
{
	ferret_t f;
	ferret_init(&f);
	ferret_start(&f);
	char uri[256], err[512];
	snprintf(uri, sizeof uri,
	         "mongodb://127.0.0.1:%d/restart?serverSelectionTimeoutMS=1500&"
	         "gapTimeoutMS=1000",
	         f.port);
	cr_assert_eq(mt_migrate(uri, err, sizeof err), 0, "%s", err);
	mt_t t;
	cr_assert_eq(mt_open(&t, uri), 0);
	batch_t b;
	memset(&b, 0, sizeof b);
	for (int k = 0; k < IDS; k++)
		snprintf(b.pids[k], sizeof b.pids[k], "r-%d", k);
	call_t c;
	for (int r = 0; r < 5; r++) {
		cr_assert_eq(start_round(&t, &b, &c), 0);
		finish_round(&t, &b, &c);
		cr_assert_eq(c.status, 0, "%s", skald_journal_errmsg(t.j));
	}

	/* Kill the server with a write surely in flight: stopped (SIGSTOP),
	 * the server takes the write's bytes and never answers; after a while
	 * without an answer, it dies. */
	kill(f.pid, SIGSTOP);
	cr_assert_eq(start_round(&t, &b, &c), 0);
	for (int i = 0; i < 500 && !c.done; i++) {
		uv_run(&t.loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
	cr_assert(!c.done, "a write to a stopped server completed (%d)", c.status);
	ferret_kill(&f);
	finish_round(&t, &b, &c);
	cr_assert_eq(c.status, SKALD_EBACKEND, "the write in flight: %s", skald_err_name(c.status));
	cr_assert(strstr(skald_journal_errmsg(t.j), "MongoDB") != NULL ||
	                  strstr(skald_journal_errmsg(t.j), "append") != NULL,
	          "unclear message: %s", skald_journal_errmsg(t.j));
	/* While it is gone, writes fail, with the reason. */
	cr_assert_eq(start_round(&t, &b, &c), 0);
	finish_round(&t, &b, &c);
	cr_assert_eq(c.status, SKALD_EBACKEND, "a write succeeded with the server down");
	cr_assert(strstr(skald_journal_errmsg(t.j), "MongoDB") != NULL ||
	                  strstr(skald_journal_errmsg(t.j), "append") != NULL,
	          "unclear message: %s", skald_journal_errmsg(t.j));
	fprintf(stderr, "restart: with the server down: %s\n", skald_journal_errmsg(t.j));

	ferret_start(&f);
	/* A write that failed is of unknown outcome: like a restarted actor,
	 * the writer reads its highest seq before going on. */
	for (int k = 0; k < IDS; k++) {
		uint64_t h = 0;
		int rc = -1;
		for (int i = 0; i < 50 && rc != 0; i++) {
			rc = mt_highest(&t, b.pids[k], &h);
			if (rc != 0)
				usleep(100000);
		}
		cr_assert_eq(rc, 0, "the server came back, the journal did not: %s",
		             skald_journal_errmsg(t.j));
		cr_assert_geq(h, b.acked[k], "%s lost acknowledged events: highest %llu < %llu",
		              b.pids[k], (unsigned long long)h, (unsigned long long)b.acked[k]);
		b.next[k] = h;
		b.acked[k] = h > b.acked[k] ? h : b.acked[k];
	}
	for (int r = 0; r < 3; r++) {
		cr_assert_eq(start_round(&t, &b, &c), 0);
		finish_round(&t, &b, &c);
		cr_assert_eq(c.status, 0, "after the restart: %s", skald_journal_errmsg(t.j));
	}
	/* Every acknowledged event is there, in order, once. */
	for (int k = 0; k < IDS; k++) {
		mt_evs_t evs = {0};
		cr_assert_eq(mt_read(&t, b.pids[k], 1, SKALD_SEQ_MAX, &evs), 0);
		cr_assert_eq(evs.n, b.acked[k], "%s: %zu events, %llu acknowledged", b.pids[k],
		             evs.n, (unsigned long long)b.acked[k]);
		for (size_t i = 0; i < evs.n; i++) {
			cr_assert_eq(evs.ev[i].seq, i + 1);
			cr_assert_eq(evs.ev[i].n, (int64_t)(i + 1), "%s seq %zu holds %lld",
			             b.pids[k], i + 1, (long long)evs.ev[i].n);
		}
		mt_evs_free(&evs);
	}
	cr_assert_eq(mt_close(&t), 0);
	ferret_fini(&f);
}
