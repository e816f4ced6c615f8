/*
 * tests/remote/harness.c - the test's side of the harness (see harness.h):
 * starting, stopping and killing node processes, the test's own systems,
 * and the small actors the tests share.
 */
#define SKALD_TEST_DEFINE
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* How long a node may take to come up (a sanitizer build on a busy machine
 * starts slowly) and to exit after its control pipe closed. */
#define START_MS 20000
#define EXIT_MS  15000

/* Each test runs in a process of its own, so these start empty. */
#define MAX_NODES   8
#define MAX_SYSTEMS 4
static node_t nodes[MAX_NODES];
static int nnodes;
static skald_system_t *systems[MAX_SYSTEMS];

/* ------------------------------------------------------------------------ */
/* Node processes                                                            */

static void reap(node_t *n, int status)
{
	n->reaped = true;
	n->status = status;
	if (n->ctl >= 0)
		close(n->ctl);
	if (n->rep >= 0)
		close(n->rep);
	n->ctl = n->rep = -1;
}

/* Waits up to ms for the process to exit; true if it did (and is reaped). */
static bool wait_exit(node_t *n, unsigned ms)
{
	uint64_t end = now_ms() + ms;
	for (;;) {
		int status;
		pid_t r = waitpid(n->pid, &status, WNOHANG);
		if (r == n->pid) {
			reap(n, status);
			return true;
		}
		if (r < 0 && errno != EINTR) {
			reap(n, -1);
			return true;
		}
		if (now_ms() > end)
			return false;
		sleep_ms(2);
	}
}

static void kill_and_reap(node_t *n)
{
	if (n->reaped)
		return;
	kill(n->pid, SIGKILL);
	int status = -1;
	while (waitpid(n->pid, &status, 0) < 0 && errno == EINTR)
		;
	reap(n, status);
}

static const char *describe_status(int status, char *buf, size_t len)
{
	if (status == -1)
		snprintf(buf, len, "killed after the exit timeout");
	else if (WIFEXITED(status))
		snprintf(buf, len, "exit status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "signal %d", WTERMSIG(status));
	else
		snprintf(buf, len, "wait status %#x", status);
	return buf;
}

/* Reads the node's report until "ready" (bounded). */
static void read_report(node_t *n)
{
	char buf[2048];
	size_t len = 0;
	buf[0] = '\0';
	uint64_t end = now_ms() + START_MS;
	while (strstr(buf, "ready\n") == NULL) {
		uint64_t now = now_ms();
		if (now > end) {
			kill_and_reap(n);
			cr_assert_fail("node %s did not report within %d ms", n->name, START_MS);
		}
		struct pollfd p = {.fd = n->rep, .events = POLLIN};
		int rc = poll(&p, 1, (int)(end - now));
		if (rc < 0 && errno == EINTR)
			continue;
		cr_assert_geq(rc, 0, "poll: %s", strerror(errno));
		if (rc == 0)
			continue;
		ssize_t r = read(n->rep, buf + len, sizeof buf - 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			char d[64];
			bool gone = wait_exit(n, EXIT_MS);
			if (!gone)
				kill_and_reap(n);
			cr_assert_fail("node %s ended before it was ready: %s", n->name,
			               gone ? describe_status(n->status, d, sizeof d) : "hung");
		}
		len += (size_t)r;
		buf[len] = '\0';
		cr_assert_lt(len, sizeof buf - 1, "node report too long");
	}
	for (char *line = strtok(buf, "\n"); line != NULL; line = strtok(NULL, "\n")) {
		unsigned long long node;
		unsigned actor, inc;
		char name[16];
		if (sscanf(line, "node %llx", &node) == 1) {
			n->id = node;
		} else if (sscanf(line, "port %d", &n->port) == 1) {
			snprintf(n->addr, sizeof n->addr, "%s://127.0.0.1:%d",
			         strcmp(n->scheme, "tls") == 0 ? "tls" : "tcp", n->port);
		} else if (sscanf(line, "ref %15s %llx %u %u", name, &node, &actor, &inc) == 4) {
			cr_assert_lt(n->nrefs, NODE_MAX_REFS);
			snprintf(n->refs[n->nrefs].name, sizeof n->refs[n->nrefs].name, "%s", name);
			n->refs[n->nrefs].ref = (skald_ref_t){node, actor, inc};
			n->nrefs++;
		}
	}
	cr_assert_neq(n->id, 0, "node %s reported no id", n->name);
	cr_assert_gt(n->port, 0, "node %s reported no port", n->name);
}

node_t *node_start(const node_opts_t *o)
{
	cr_assert_not_null(o->name);
	cr_assert_lt(nnodes, MAX_NODES, "too many nodes in one test");
	node_t *n = &nodes[nnodes];
	memset(n, 0, sizeof *n);
	snprintf(n->name, sizeof n->name, "%s", o->name);
	snprintf(n->scheme, sizeof n->scheme, "%s", o->scheme ? o->scheme : "tcp");
	int ctl[2], rep[2];
	/* Close-on-exec everywhere: no other node may inherit these pipes, or
	 * its copy would keep this node's control pipe from reaching EOF. */
	cr_assert_eq(pipe2(ctl, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(rep, O_CLOEXEC), 0);

	/* The environment of the node: ours, without Criterion's sandbox map
	 * (which would make the new process a Criterion worker) and without
	 * stale settings of an enclosing node. */
	enum { OWN = 19 };
	char own[OWN][224];
	int k = 0;
	snprintf(own[k++], sizeof own[0], "SKALD_RT_NODE=%s", o->name);
	snprintf(own[k++], sizeof own[0], "SKALD_RT_FDS=%d,%d", ctl[0], rep[1]);
	snprintf(own[k++], sizeof own[0], "SKALD_RT_PPID=%d", (int)getpid());
	snprintf(own[k++], sizeof own[0], "SKALD_RT_SECRET=%s", o->secret ? o->secret : SECRET);
	snprintf(own[k++], sizeof own[0], "SKALD_RT_CLUSTER=%s", o->cluster ? o->cluster : "");
	snprintf(own[k++], sizeof own[0], "SKALD_RT_PORT=%d", o->port);
	snprintf(own[k++], sizeof own[0], "SKALD_RT_HEARTBEAT=%u", o->heartbeat_ms);
	snprintf(own[k++], sizeof own[0], "SKALD_RT_TIMEOUT=%u", o->timeout_ms);
	snprintf(own[k++], sizeof own[0], "SKALD_RT_MAX_FRAME=%u", o->max_frame);
	snprintf(own[k++], sizeof own[0], "SKALD_RT_RELAY=%s", o->relay_to ? o->relay_to : "");
	snprintf(own[k++], sizeof own[0], "SKALD_RT_WATCHDOG=%u",
	         o->watchdog_s ? o->watchdog_s : 30);
	snprintf(own[k++], sizeof own[0], "SKALD_RT_SCHEME=%s", n->scheme);
	snprintf(own[k++], sizeof own[0], "SKALD_RT_CA=%s", o->certs ? o->certs->ca : "");
	snprintf(own[k++], sizeof own[0], "SKALD_RT_CERT=%s", o->certs ? o->certs->cert : "");
	snprintf(own[k++], sizeof own[0], "SKALD_RT_KEY=%s", o->certs ? o->certs->key : "");
	snprintf(own[k++], sizeof own[0], "SKALD_RT_LOG=%s", o->log ? o->log : "");
	snprintf(own[k++], sizeof own[0], "SKALD_RT_MEMBER=%d", o->member);
	snprintf(own[k++], sizeof own[0], "SKALD_RT_SEEDS=%s", o->seeds ? o->seeds : "");
	size_t nenv = 0;
	while (environ[nenv] != NULL)
		nenv++;
	char **env = calloc(nenv + OWN + 1, sizeof *env);
	cr_assert_not_null(env);
	size_t e = 0;
	for (size_t i = 0; i < nenv; i++)
		if (strncmp(environ[i], "BXFI_", 5) != 0 &&
		    strncmp(environ[i], "SKALD_RT_", 9) != 0)
			env[e++] = environ[i];
	for (int i = 0; i < k; i++)
		env[e++] = own[i];
	env[e] = NULL;
	char *argv[] = {"skald-remote-test-node", NULL};

	pid_t pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		/* Only async-signal-safe calls between fork and exec: the test
		 * process may be running threads. */
		fcntl(ctl[0], F_SETFD, 0);
		fcntl(rep[1], F_SETFD, 0);
		execve("/proc/self/exe", argv, env);
		_exit(127);
	}
	free(env);
	close(ctl[0]);
	close(rep[1]);
	n->pid = pid;
	n->ctl = ctl[1];
	n->rep = rep[0];
	nnodes++;
	read_report(n);
	return n;
}

skald_ref_t node_ref(const node_t *n, const char *name)
{
	for (int i = 0; i < n->nrefs; i++)
		if (strcmp(n->refs[i].name, name) == 0)
			return n->refs[i].ref;
	cr_assert_fail("node %s reported no ref named %s", n->name, name);
	return SKALD_REF_NULL;
}

void node_kill(node_t *n, int sig)
{
	cr_assert(!n->reaped, "node %s is gone already", n->name);
	if (sig == SIGKILL) {
		kill_and_reap(n);
		return;
	}
	cr_assert_eq(kill(n->pid, sig), 0);
}

int node_exit(node_t *n)
{
	if (n->reaped)
		return n->status;
	if (n->ctl >= 0) {
		close(n->ctl);
		n->ctl = -1;
	}
	if (wait_exit(n, EXIT_MS))
		return n->status;
	kill_and_reap(n);
	n->status = -1;
	return -1;
}

bool node_running(node_t *n)
{
	if (n->reaped)
		return false;
	int status;
	pid_t r = waitpid(n->pid, &status, WNOHANG);
	if (r == n->pid) {
		reap(n, status);
		return false;
	}
	return true;
}

void node_exit_clean(node_t *n)
{
	char d[64];
	int status = node_exit(n);
	cr_assert(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	          "node %s did not exit cleanly: %s", n->name,
	          describe_status(status, d, sizeof d));
}

/* ------------------------------------------------------------------------ */
/* The test's own systems                                                    */

skald_system_t *sys_start(const sys_opts_t *o)
{
	sys_opts_t dflt = {0};
	if (o == NULL)
		o = &dflt;
	int slot = 0;
	while (slot < MAX_SYSTEMS && systems[slot] != NULL)
		slot++;
	cr_assert_lt(slot, MAX_SYSTEMS, "too many systems in one test");
	skald_config_t cfg = {.threads = 2, .name = o->name ? o->name : "tester"};
	skald_system_t *sys;
	int rc = skald_system_new(&cfg, &sys);
	cr_assert_eq(rc, 0, "skald_system_new: %s", skald_strerror(rc));
	systems[slot] = sys;
	skald_remote_config_t rcfg = {
	        .cluster = o->cluster,
	        .secret = o->secret ? o->secret : SECRET,
	        .heartbeat_ms = o->heartbeat_ms,
	        .timeout_ms = o->timeout_ms,
	        .max_frame = o->max_frame,
	        .max_queue = o->max_queue,
	        .tls_ca_file = o->certs ? o->certs->ca : NULL,
	        .tls_cert_file = o->certs ? o->certs->cert : NULL,
	        .tls_key_file = o->certs ? o->certs->key : NULL,
	};
	rc = skald_remote_start(sys, &rcfg);
	cr_assert_eq(rc, 0, "skald_remote_start: %s", skald_strerror(rc));
	return sys;
}

void sys_stop(skald_system_t *sys)
{
	for (int i = 0; i < MAX_SYSTEMS; i++)
		if (systems[i] == sys)
			systems[i] = NULL;
	skald_system_stop(sys);
}

skald_stats_t stats_of(skald_system_t *sys)
{
	skald_stats_t s;
	cr_assert_eq(skald_system_stats(sys, &s), 0);
	return s;
}

skald_ref_t lookup_on(skald_system_t *sys, const node_t *n, const char *name)
{
	skald_ref_t r = SKALD_REF_NULL;
	int rc = skald_system_lookup(sys, n->addr, name, WAIT_MS, &r);
	cr_assert_eq(rc, 0, "lookup of %s on node %s: %s", name, n->name, skald_err_name(rc));
	cr_assert_eq(r.node, n->id, "%s on node %s has another node's id", name, n->name);
	return r;
}

int ask_u64(skald_system_t *sys, skald_ref_t to, uint32_t type, uint64_t v, uint64_t timeout_ms,
            uint64_t *out)
{
	uint32_t rtype = 0;
	void *reply = NULL;
	int rc = skald_system_ask(sys, to, type, INT_PAYLOAD(v), timeout_ms, &rtype, &reply);
	if (rc == 0) {
		cr_assert_eq(rtype, t_int, "reply of type %u, not rt.int", rtype);
		*out = PAYLOAD_INT(reply);
	}
	return rc;
}

uint64_t ask_cmd(skald_system_t *sys, skald_ref_t to, uint64_t cmd)
{
	uint64_t v = 0;
	int rc = ask_u64(sys, to, t_cmd, cmd, WAIT_MS, &v);
	cr_assert_eq(rc, 0, "ask of command %llu: %s", (unsigned long long)cmd, skald_err_name(rc));
	return v;
}

skald_ref_t spawn(skald_system_t *sys, const skald_behavior_t *b, void *arg)
{
	skald_ref_t r;
	int rc = skald_spawn(sys, b, arg, NULL, &r);
	cr_assert_eq(rc, 0, "spawn: %s", skald_strerror(rc));
	return r;
}

/* ------------------------------------------------------------------------ */
/* Shared actors                                                             */

static int watcher_init(skald_actor_t *self, void *state, void *arg)
{
	watch_ctx_t *w = arg;
	*(watch_ctx_t **)state = w;
	atomic_store(&w->watch_rc, skald_watch(self, w->target));
	atomic_store(&w->armed, 1);
	return 0;
}

static int watcher_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	watch_ctx_t *w = *(watch_ctx_t **)state;
	if (msg->type != SKALD_TYPE_DOWN)
		return 0;
	const skald_down_t *d = msg->payload;
	w->down_ref = d->ref;
	atomic_store(&w->reason, d->reason);
	atomic_fetch_add(&w->downs, 1);
	return 0;
}

const skald_behavior_t watcher_behavior = {
        .state_size = sizeof(void *),
        .init = watcher_init,
        .receive = watcher_receive,
};

static int monitor_init(skald_actor_t *self, void *state, void *arg)
{
	mon_ctx_t *m = arg;
	*(mon_ctx_t **)state = m;
	CHECK(skald_monitor_nodes(self) == 0);
	atomic_store(&m->armed, 1);
	return 0;
}

static int monitor_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	mon_ctx_t *m = *(mon_ctx_t **)state;
	if (msg->type != SKALD_TYPE_NODE)
		return 0;
	int i = atomic_load(&m->n);
	CHECK(i < MON_MAX);
	if (i < MON_MAX) {
		m->ev[i] = *(const skald_node_event_t *)msg->payload;
		atomic_store(&m->n, i + 1);
	}
	return 0;
}

const skald_behavior_t monitor_behavior = {
        .state_size = sizeof(void *),
        .init = monitor_init,
        .receive = monitor_receive,
};

int mon_find(mon_ctx_t *m, uint64_t node, int up)
{
	int n = atomic_load(&m->n);
	for (int i = 0; i < n; i++)
		if (m->ev[i].node == node && m->ev[i].up == up)
			return i;
	return -1;
}

/* ------------------------------------------------------------------------ */
/* Files                                                                     */

static char scratch[64];

void scratch_path(const char *file, char out[SCRATCH_PATH_MAX])
{
	if (scratch[0] == '\0') {
		snprintf(scratch, sizeof scratch, "/tmp/skald-rt-XXXXXX");
		cr_assert_not_null(mkdtemp(scratch), "mkdtemp: %s", strerror(errno));
	}
	int n = snprintf(out, SCRATCH_PATH_MAX, "%s/%s", scratch, file);
	cr_assert_lt(n, SCRATCH_PATH_MAX, "scratch path too long");
}

void log_to(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
	cr_assert_eq(dup2(fd, 2), 2);
	close(fd);
}

bool file_has(const char *path, const char *needle)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return false;
	static char buf[1 << 20];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	return strstr(buf, needle) != NULL;
}

void expect_log(const char *path, const char *needle)
{
	uint64_t end = now_ms() + WAIT_MS;
	while (!file_has(path, needle)) {
		if (now_ms() > end) {
			static char buf[2048];
			FILE *f = fopen(path, "r");
			size_t n = f != NULL ? fread(buf, 1, sizeof buf - 1, f) : 0;
			if (f != NULL)
				fclose(f);
			buf[n] = '\0';
			cr_assert_fail("%s never said \"%s\"; it holds:\n%s", path, needle, buf);
		}
		sleep_ms(5);
	}
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

/* ------------------------------------------------------------------------ */
/* Fixtures                                                                  */

void fixture_setup(void)
{
	atomic_store(&blob_frees, 0);
	checks_reset();
	int rc = types_register();
	cr_assert_eq(rc, 0, "types_register: %s", skald_strerror(rc));
}

void fixture_teardown(void)
{
	/* Nodes first: a node stopped by SIGSTOP still dies of SIGKILL, and
	 * the systems below then see their peers gone rather than hung. */
	for (int i = 0; i < nnodes; i++)
		kill_and_reap(&nodes[i]);
	for (int i = 0; i < MAX_SYSTEMS; i++) {
		if (systems[i] != NULL) {
			skald_system_stop(systems[i]);
			systems[i] = NULL;
		}
	}
	/* Keys and logs of the test: nothing stays behind. */
	if (scratch[0] != '\0') {
		nftw(scratch, remove_one, 8, FTW_DEPTH | FTW_PHYS);
		scratch[0] = '\0';
	}
}
