/*
 * tests/cluster/proc.c - cluster members as processes (see proc.h): the
 * member's side, run by a constructor before main, and the side of the
 * process that starts them.
 */
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* Present only in sanitizer builds: lets a member report its leaks. */
extern void __lsan_do_leak_check(void) __attribute__((weak));

uint64_t proc_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ------------------------------------------------------------------------ */
/* The member's side                                                         */

/* An integer as decimal text on the wire, in the payload pointer here. */
static int num_encode(const void *payload, void **out, size_t *len)
{
	char *s = malloc(24);
	if (s == NULL)
		return SKALD_ENOMEM;
	*len = (size_t)snprintf(s, 24, "%" PRIuPTR, (uintptr_t)payload);
	*out = s;
	return 0;
}

static int num_decode(const void *data, size_t len, void **payload)
{
	char s[24];
	if (len == 0 || len >= sizeof s)
		return SKALD_EDECODE;
	memcpy(s, data, len);
	s[len] = '\0';
	*payload = (void *)(uintptr_t)strtoull(s, NULL, 10);
	return 0;
}

const skald_msgtype_t proc_num_type = {
        .name = "cltest.num", .encode = num_encode, .decode = num_decode};
static uint32_t t_num;

static int rep_fd = -1;
static atomic_int downed;

static int echo_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	if (msg->type == t_num)
		skald_reply(self, msg, t_num, (void *)((uintptr_t)msg->payload + 1));
	return 0;
}

static const skald_behavior_t echo_behavior = {.receive = echo_receive};

static int events_init(skald_actor_t *self, void *state, void *arg)
{
	return skald_cluster_subscribe(self);
}

static int events_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	if (msg->type != SKALD_TYPE_MEMBER)
		return 0;
	const skald_member_event_t *ev = msg->payload;
	/* The view at subscription: one CURRENT line per member. */
	for (size_t i = 0; i < ev->nmembers; i++)
		dprintf(rep_fd, "ev %d %" PRIx64 " %d 0 %" PRIu64 " \n", (int)ev->kind,
		        ev->members[i].node, ev->members[i].node == skald_self(self).node,
		        proc_now_ms());
	if (ev->kind == SKALD_MEMBER_EV_CURRENT)
		return 0;
	dprintf(rep_fd, "ev %d %" PRIx64 " %d %d %" PRIu64 " %s\n", (int)ev->kind, ev->member.node,
	        ev->self, ev->reason, proc_now_ms(), ev->why);
	if (ev->kind == SKALD_MEMBER_EV_DOWN && ev->self)
		atomic_store(&downed, 1);
	return 0;
}

static const skald_behavior_t events_behavior = {.init = events_init, .receive = events_receive};

static int watcher_init(skald_actor_t *self, void *state, void *arg)
{
	dprintf(rep_fd, "watching %d\n", skald_watch(self, *(skald_ref_t *)arg));
	free(arg);
	return 0;
}

static int watcher_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	if (msg->type == SKALD_TYPE_DOWN)
		dprintf(rep_fd, "watchdown %d\n", ((const skald_down_t *)msg->payload)->reason);
	return 0;
}

static const skald_behavior_t watcher_behavior = {.init = watcher_init, .receive = watcher_receive};

/* --- the registry's commands ---------------------------------------------- */

#define REF_FMT     "%" PRIx64 " %u %u"
#define REF_ARGS(r) (r).node, (r).actor, (r).incarnation

/* An actor registered under a name: says when it loses it, and answers
 * asks of a number like the echo. */
static int named_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	if (msg->type == SKALD_TYPE_NAME_LOST) {
		const skald_name_lost_t *l = msg->payload;
		dprintf(rep_fd, "lost %s " REF_FMT " %" PRIu64 "\n", l->name, REF_ARGS(l->winner),
		        proc_now_ms());
	}
	return echo_receive(self, state, msg);
}

static const skald_behavior_t named_behavior = {.receive = named_receive};

typedef struct text_s {
	char s[SKALD_NAME_MAX + 1];
	unsigned long ms;
} text_t;

static void waited(skald_actor_t *self, void *state, int status, skald_ref_t ref, void *arg)
{
	const text_t *t = state;
	dprintf(rep_fd, "wait %s %d " REF_FMT " %" PRIu64 "\n", t->s, status, REF_ARGS(ref),
	        proc_now_ms());
	skald_stop_self(self);
}

static int waiter_init(skald_actor_t *self, void *state, void *arg)
{
	text_t *t = state;
	*t = *(text_t *)arg;
	free(arg);
	int rc = skald_cluster_lookup(self, t->s, t->ms, waited, NULL);
	if (rc < 0) {
		dprintf(rep_fd, "wait %s %d 0 0 0 %" PRIu64 "\n", t->s, rc, proc_now_ms());
		skald_stop_self(self);
	}
	return 0;
}

static int nothing_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	return 0;
}

static const skald_behavior_t waiter_behavior = {
        .state_size = sizeof(text_t), .init = waiter_init, .receive = nothing_receive};

static int gsub_init(skald_actor_t *self, void *state, void *arg)
{
	text_t *t = state;
	*t = *(text_t *)arg;
	free(arg);
	int rc = skald_group_subscribe(self, t->s);
	if (rc < 0)
		dprintf(rep_fd, "gcur %s %d\n", t->s, rc);
	return 0;
}

static int gsub_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	if (msg->type != SKALD_TYPE_GROUP)
		return 0;
	const skald_group_event_t *ev = msg->payload;
	uint64_t now = proc_now_ms();
	if (ev->kind == SKALD_GROUP_EV_CURRENT) {
		for (size_t i = 0; i < ev->nrefs; i++)
			dprintf(rep_fd, "gev %s %d " REF_FMT " 0 %" PRIu64 "\n", ev->key, ev->kind,
			        REF_ARGS(ev->refs[i]), now);
		dprintf(rep_fd, "gcur %s %zu\n", ev->key, ev->nrefs);
	} else {
		dprintf(rep_fd, "gev %s %d " REF_FMT " %d %" PRIu64 "\n", ev->key, ev->kind,
		        REF_ARGS(ev->ref), ev->reason, now);
	}
	return 0;
}

static const skald_behavior_t gsub_behavior = {
        .state_size = sizeof(text_t), .init = gsub_init, .receive = gsub_receive};

/* What cltest.adder spawns with: its argument, a number, added to each
 * number it is asked. */
static int adder_init(skald_actor_t *self, void *state, void *arg)
{
	*(uintptr_t *)state = (uintptr_t)arg;
	/* The same id everywhere in the process, also outside a member. */
	return skald_type_register(&proc_num_type, &t_num);
}

static int adder_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	if (msg->type == t_num)
		skald_reply(self, msg, t_num,
		            (void *)((uintptr_t)msg->payload + *(uintptr_t *)state));
	return 0;
}

const skald_behavior_t proc_adder_behavior = {
        .state_size = sizeof(uintptr_t), .init = adder_init, .receive = adder_receive};

/* Spawns `named` and registers it under name; reports it. */
static void register_named(skald_system_t *sys, const char *name)
{
	skald_ref_t r = SKALD_REF_NULL;
	int rc = skald_spawn(sys, &named_behavior, NULL, NULL, &r);
	if (rc == 0)
		rc = skald_cluster_register(sys, name, r);
	dprintf(rep_fd, "reg %s %d " REF_FMT " %" PRIu64 "\n", name, rc, REF_ARGS(r),
	        proc_now_ms());
}

static void spawn_text(skald_system_t *sys, const skald_behavior_t *b, const char *s,
                       unsigned long ms)
{
	text_t *t = calloc(1, sizeof *t);
	skald_ref_t r;
	if (t == NULL)
		return;
	snprintf(t->s, sizeof t->s, "%s", s);
	t->ms = ms;
	if (skald_spawn(sys, b, t, NULL, &r) < 0)
		free(t);
}

/* The registry's commands; 0 if line is none of them. */
static int registry_command(skald_system_t *sys, const char *line)
{
	char w[SKALD_NAME_MAX + 1];
	unsigned long long node;
	unsigned long ms;
	unsigned actor, inc;
	skald_ref_t r = SKALD_REF_NULL;
	int rc;
	if (sscanf(line, "reg %255s", w) == 1) {
		register_named(sys, w);
	} else if (sscanf(line, "unreg %255s", w) == 1) {
		dprintf(rep_fd, "unreg %s %d\n", w, skald_cluster_unregister(sys, w));
	} else if (sscanf(line, "where %255s", w) == 1) {
		rc = skald_cluster_whereis(sys, w, &r);
		dprintf(rep_fd, "where %s %d " REF_FMT "\n", w, rc, REF_ARGS(r));
	} else if (sscanf(line, "wait %255s %lu", w, &ms) == 2) {
		spawn_text(sys, &waiter_behavior, w, ms);
	} else if (sscanf(line, "gjoin %255s", w) == 1) {
		rc = skald_spawn(sys, &named_behavior, NULL, NULL, &r);
		if (rc == 0)
			rc = skald_group_join(sys, w, r);
		dprintf(rep_fd, "gjoin %s %d " REF_FMT "\n", w, rc, REF_ARGS(r));
	} else if (sscanf(line, "gsub %255s", w) == 1) {
		spawn_text(sys, &gsub_behavior, w, 0);
	} else if (sscanf(line, "glist %255s", w) == 1) {
		skald_ref_t v[32];
		size_t n = 0;
		rc = skald_group_members(sys, w, v, 32, &n);
		char out[32 * 40 + 300];
		int k = snprintf(out, sizeof out, "glist %s %zu", w, rc < 0 ? (size_t)0 : n);
		for (size_t i = 0; rc == 0 && i < n && i < 32; i++)
			k += snprintf(out + k, sizeof out - (size_t)k, " %" PRIx64 ".%u.%u",
			              REF_ARGS(v[i]));
		dprintf(rep_fd, "%s\n", out);
	} else if (sscanf(line, "stop %llx %u %u", &node, &actor, &inc) == 3) {
		dprintf(rep_fd, "stop %d\n", skald_stop(sys, (skald_ref_t){node, actor, inc}));
	} else if (sscanf(line, "spawn %llx %lu", &node, &ms) == 2) {
		rc = skald_cluster_system_spawn(sys, node, "cltest.adder", t_num,
		                                (void *)(uintptr_t)ms, 5000, &r);
		dprintf(rep_fd, "spawn %d " REF_FMT "\n", rc, REF_ARGS(r));
	} else if (sscanf(line, "spawnx %llx %255s", &node, w) == 2) {
		rc = skald_cluster_system_spawn(sys, node, w, 0, NULL, 5000, &r);
		dprintf(rep_fd, "spawn %d " REF_FMT "\n", rc, REF_ARGS(r));
	} else {
		return 0;
	}
	return 1;
}

static unsigned env_uint(const char *name, unsigned dflt)
{
	const char *s = getenv(name);
	return s != NULL && *s != '\0' ? (unsigned)strtoul(s, NULL, 10) : dflt;
}

static void command(skald_system_t *sys, char *line)
{
	unsigned long long node;
	unsigned actor, inc;
	if (registry_command(sys, line)) {
		return;
	} else if (strcmp(line, "leave") == 0) {
		dprintf(rep_fd, "left %d\n", skald_cluster_leave(sys, 20000));
	} else if (strcmp(line, "members") == 0) {
		skald_member_t m[PROC_MAX_MEMBERS];
		size_t n = 0;
		skald_cluster_members(sys, m, PROC_MAX_MEMBERS, &n);
		char out[PROC_MAX_MEMBERS * 20 + 32];
		int k = snprintf(out, sizeof out, "members %zu", n);
		for (size_t i = 0; i < n && i < PROC_MAX_MEMBERS; i++)
			k += snprintf(out + k, sizeof out - (size_t)k, " %" PRIx64, m[i].node);
		dprintf(rep_fd, "%s\n", out);
	} else if (strcmp(line, "stats") == 0) {
		skald_cluster_stats_t st = {0};
		skald_cluster_stats(sys, &st);
		dprintf(rep_fd, "stats %" PRIu64 " %" PRIu64 "\n", st.bytes_sent, st.msgs_sent);
	} else if (sscanf(line, "watch %llx %u %u", &node, &actor, &inc) == 3) {
		skald_ref_t *r = malloc(sizeof *r);
		if (r != NULL)
			*r = (skald_ref_t){node, actor, inc};
		skald_ref_t w;
		if (r == NULL || skald_spawn(sys, &watcher_behavior, r, NULL, &w) < 0) {
			free(r);
			dprintf(rep_fd, "watching %d\n", SKALD_ENOMEM);
		}
	} else if (sscanf(line, "ask %llx %u %u", &node, &actor, &inc) == 3) {
		uint32_t type;
		void *reply;
		int rc = skald_system_ask(sys, (skald_ref_t){node, actor, inc}, t_num, (void *)1,
		                          3000, &type, &reply);
		dprintf(rep_fd, "asked %d\n", rc);
	} else if (proc_hook_command != NULL) {
		proc_hook_command(sys, line);
	}
}

void proc_hook_reply(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	dprintf(rep_fd, "x %s\n", line);
}

/* One incarnation: returns 1 to start again, 0 to exit, or > 1 on a
 * failure (the exit code). */
static int incarnation(const char *name, int ctl, int *port)
{
	skald_config_t cfg = {.threads = env_uint("SKALD_MEMBER_THREADS", 1), .name = name};
	skald_system_t *sys;
	if (skald_system_new(&cfg, &sys) < 0)
		return 13;
	const char *cluster = getenv("SKALD_CL_CLUSTER");
	skald_remote_config_t rcfg = {
	        .cluster = cluster != NULL && *cluster != '\0' ? cluster : NULL,
	        .secret = getenv("SKALD_CL_SECRET"),
	};
	if (skald_remote_start(sys, &rcfg) < 0)
		return 14;
	char addr[64];
	snprintf(addr, sizeof addr, "tcp://127.0.0.1:%d", *port);
	int rc;
	/* The previous incarnation's port may still be held for a moment. */
	for (int i = 0; i < 200; i++) {
		rc = skald_listen(sys, addr, port);
		if (rc != UV_EADDRINUSE)
			break;
		usleep(50 * 1000);
	}
	if (rc < 0)
		return 15;
	skald_ref_t echo;
	if (skald_spawn(sys, &echo_behavior, NULL, NULL, &echo) < 0)
		return 16;
	/* Seeds: comma-separated in the environment. */
	char seeds_buf[512];
	const char *seeds[8];
	size_t nseeds = 0;
	snprintf(seeds_buf, sizeof seeds_buf, "%s",
	         getenv("SKALD_CL_SEEDS") ? getenv("SKALD_CL_SEEDS") : "");
	for (char *s = strtok(seeds_buf, ","); s != NULL && nseeds < 8; s = strtok(NULL, ","))
		seeds[nseeds++] = s;
	skald_cluster_config_t cc = {.seeds = seeds, .nseeds = nseeds};
	if (skald_cluster_start(sys, &cc) < 0)
		return 17;
	/* A name registered before joining: it meets the names of the
	 * members once this node is up. */
	const char *pre = getenv("SKALD_CL_REG");
	if (pre != NULL && pre[0] != '\0')
		register_named(sys, pre);
	/* Subscribed once the cluster exists: the view it gets first
	 * already holds what happened before. */
	skald_ref_t events;
	if (skald_spawn(sys, &events_behavior, NULL, NULL, &events) < 0)
		return 18;
	if (proc_hook_start != NULL)
		proc_hook_start(sys);
	char why[256] = "";
	rc = skald_cluster_wait(sys, env_uint("SKALD_CL_WAIT", 20000), why, sizeof why);
	if (rc < 0)
		dprintf(rep_fd, "fail %d %s\n", rc, why);
	else
		dprintf(rep_fd, "up %" PRIx64 " %d %u %u\n", skald_system_node(sys), *port,
		        echo.actor, echo.incarnation);
	int again = 0;
	char line[256];
	size_t len = 0;
	for (;;) {
		if (atomic_load(&downed) && getenv("SKALD_CL_RESTART")[0] == '1') {
			again = 1;
			break;
		}
		struct pollfd p = {.fd = ctl, .events = POLLIN};
		if (poll(&p, 1, 10) <= 0)
			continue;
		ssize_t n = read(ctl, line + len, 1);
		if (n == 0 || (n < 0 && errno != EINTR))
			break;
		if (n < 0)
			continue;
		if (line[len] == '\n' || len == sizeof line - 2) {
			line[len] = '\0';
			command(sys, line);
			len = 0;
		} else {
			len++;
		}
	}
	if (proc_hook_stop != NULL)
		proc_hook_stop(sys);
	skald_system_stop(sys);
	return again;
}

static int member_main(const char *name)
{
	int ctl = -1;
	const char *fds = getenv("SKALD_CL_FDS");
	if (fds == NULL || sscanf(fds, "%d,%d", &ctl, &rep_fd) != 2)
		return 10;
	alarm(env_uint("SKALD_CL_WATCHDOG", 120));
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if ((unsigned)getppid() != env_uint("SKALD_CL_PPID", 0))
		return 11;
	if (skald_type_register(&proc_num_type, &t_num) < 0 ||
	    skald_cluster_behavior_register("cltest.adder", &proc_adder_behavior) < 0 ||
	    skald_cluster_behavior_register("cltest.echo", &echo_behavior) < 0)
		return 12;
	int port = (int)env_uint("SKALD_CL_PORT", 0), rc;
	while ((rc = incarnation(name, ctl, &port)) == 1) {
		atomic_store(&downed, 0);
		dprintf(rep_fd, "restarting\n");
	}
	close(ctl);
	close(rep_fd);
	if (rc == 0 && __lsan_do_leak_check != NULL)
		__lsan_do_leak_check();
	return rc;
}

__attribute__((constructor)) static void member_entry(void)
{
	const char *name = getenv("SKALD_CL_NODE");
	if (name != NULL)
		_exit(member_main(name));
}

/* ------------------------------------------------------------------------ */
/* The starting side                                                         */

static proc_t procs[PROC_MAX_NODES];
static int nprocs;

proc_t *proc_start(const proc_opts_t *o)
{
	if (nprocs == PROC_MAX_NODES)
		return NULL;
	proc_t *p = &procs[nprocs];
	memset(p, 0, sizeof *p);
	snprintf(p->name, sizeof p->name, "%s", o->name);
	p->nmembers = -1;
	int ctl[2], rep[2];
	if (pipe2(ctl, O_CLOEXEC) < 0 || pipe2(rep, O_CLOEXEC) < 0)
		return NULL;
	enum { OWN = 12 };
	char own[OWN][256];
	int k = 0;
	snprintf(own[k++], sizeof own[0], "SKALD_CL_NODE=%s", o->name);
	snprintf(own[k++], sizeof own[0], "SKALD_CL_FDS=%d,%d", ctl[0], rep[1]);
	snprintf(own[k++], sizeof own[0], "SKALD_CL_PPID=%d", (int)getpid());
	snprintf(own[k++], sizeof own[0], "SKALD_CL_SECRET=%s",
	         o->secret ? o->secret : PROC_SECRET);
	snprintf(own[k++], sizeof own[0], "SKALD_CL_CLUSTER=%s", o->cluster ? o->cluster : "");
	snprintf(own[k++], sizeof own[0], "SKALD_CL_SEEDS=%s", o->seeds ? o->seeds : "");
	snprintf(own[k++], sizeof own[0], "SKALD_CL_PORT=%d", o->port);
	snprintf(own[k++], sizeof own[0], "SKALD_CL_RESTART=%d", o->restart ? 1 : 0);
	snprintf(own[k++], sizeof own[0], "SKALD_CL_WAIT=%u", o->wait_ms ? o->wait_ms : 20000);
	snprintf(own[k++], sizeof own[0], "SKALD_CL_WATCHDOG=%u",
	         o->watchdog_s ? o->watchdog_s : 120);
	snprintf(own[k++], sizeof own[0], "SKALD_CL_REG=%s", o->reg ? o->reg : "");
	size_t nenv = 0;
	while (environ[nenv] != NULL)
		nenv++;
	char **env = calloc(nenv + OWN + 1, sizeof *env);
	if (env == NULL)
		return NULL;
	size_t e = 0;
	/* Without Criterion's sandbox variables (the child would become a
	 * Criterion worker) and without an enclosing member's settings. */
	for (size_t i = 0; i < nenv; i++)
		if (strncmp(environ[i], "BXFI_", 5) != 0 &&
		    strncmp(environ[i], "SKALD_CL_", 9) != 0)
			env[e++] = environ[i];
	for (int i = 0; i < k; i++)
		env[e++] = own[i];
	env[e] = NULL;
	char *argv[] = {"skald-cluster-member", NULL};
	pid_t pid = fork();
	if (pid < 0) {
		free(env);
		return NULL;
	}
	if (pid == 0) {
		fcntl(ctl[0], F_SETFD, 0);
		fcntl(rep[1], F_SETFD, 0);
		execve("/proc/self/exe", argv, env);
		_exit(127);
	}
	free(env);
	close(ctl[0]);
	close(rep[1]);
	fcntl(rep[0], F_SETFL, O_NONBLOCK);
	p->pid = pid;
	p->ctl = ctl[1];
	p->rep = rep[0];
	nprocs++;
	return p;
}

static void parse_line(proc_t *p, char *line)
{
	unsigned long long node;
	int kind, self, reason, rc, n;
	unsigned long long at;
	unsigned actor, inc;
	if (sscanf(line, "up %llx %d %u %u", &node, &p->port, &actor, &inc) == 4) {
		p->id = node;
		if (p->ups++ == 0)
			p->first_id = node;
		p->echo = (skald_ref_t){node, actor, inc};
	} else if (sscanf(line, "fail %d %n", &rc, &n) == 1) {
		p->failed = true;
		p->fail_rc = rc;
		snprintf(p->fail_why, sizeof p->fail_why, "%s", line + n);
	} else if (sscanf(line, "ev %d %llx %d %d %llu %n", &kind, &node, &self, &reason, &at,
	                  &n) == 5) {
		if (p->nev < PROC_MAX_EVENTS)
			p->ev[p->nev++] = (proc_event_t){kind, node, self, reason, at};
		if (kind == SKALD_MEMBER_EV_REFUSED)
			snprintf(p->refused_why, sizeof p->refused_why, "%s", line + n);
	} else if (sscanf(line, "members %d%n", &rc, &n) == 1) {
		char *s = line + n;
		p->nmembers = rc;
		for (int i = 0; i < rc && i < PROC_MAX_MEMBERS; i++)
			p->members[i] = strtoull(s, &s, 16);
		p->answers++;
	} else if (sscanf(line, "left %d", &rc) == 1) {
		p->left = true;
		p->left_rc = rc;
	} else if (sscanf(line, "asked %d", &rc) == 1) {
		p->asked = true;
		p->asked_rc = rc;
	} else if (sscanf(line, "watching %d", &rc) == 1) {
		p->watching = true;
		p->watch_rc = rc;
	} else if (sscanf(line, "stats %llu %llu", &node, &at) == 2) {
		p->counted = true;
		p->bytes_sent = node;
		p->msgs_sent = at;
	} else if (sscanf(line, "watchdown %d", &rc) == 1) {
		p->watch_down = true;
		p->watch_reason = rc;
	} else if (strncmp(line, "x ", 2) == 0) {
		snprintf(p->x, sizeof p->x, "%s", line + 2);
		p->nx++;
	} else {
		if (p->nlines == PROC_MAX_LINES) {
			/* Keep the later half. */
			memmove(p->lines, p->lines[PROC_MAX_LINES / 2],
			        sizeof p->lines[0] * (PROC_MAX_LINES / 2));
			p->nlines = PROC_MAX_LINES / 2;
		}
		snprintf(p->lines[p->nlines++], PROC_LINE, "%s", line);
	}
}

void proc_pump(void)
{
	for (int i = 0; i < nprocs; i++) {
		proc_t *p = &procs[i];
		if (p->rep < 0)
			continue;
		for (;;) {
			ssize_t n = read(p->rep, p->buf + p->len, sizeof p->buf - 1 - p->len);
			if (n <= 0)
				break;
			p->len += (size_t)n;
			p->buf[p->len] = '\0';
			char *nl;
			while ((nl = strchr(p->buf, '\n')) != NULL) {
				*nl = '\0';
				parse_line(p, p->buf);
				size_t used = (size_t)(nl + 1 - p->buf);
				memmove(p->buf, nl + 1, p->len - used + 1);
				p->len -= used;
			}
			if (p->len == sizeof p->buf - 1)
				p->len = 0; /* a line longer than the buffer: dropped */
		}
	}
}

int proc_cmd(proc_t *p, const char *line)
{
	if (p->ctl < 0)
		return -1;
	return dprintf(p->ctl, "%s\n", line) > 0 ? 0 : -1;
}

static void reap(proc_t *p, int status)
{
	p->reaped = true;
	(void)status;
	if (p->ctl >= 0)
		close(p->ctl);
	p->ctl = -1;
}

void proc_signal(proc_t *p, int sig)
{
	if (p->reaped)
		return;
	kill(p->pid, sig);
	if (sig == SIGKILL) {
		int status;
		while (waitpid(p->pid, &status, 0) < 0 && errno == EINTR)
			;
		reap(p, status);
	}
}

int proc_stop(proc_t *p, unsigned ms)
{
	if (p->reaped)
		return 0;
	if (p->ctl >= 0) {
		close(p->ctl);
		p->ctl = -1;
	}
	uint64_t end = proc_now_ms() + ms;
	int status;
	while (proc_now_ms() < end) {
		if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
			reap(p, status);
			return status;
		}
		usleep(5000);
	}
	proc_signal(p, SIGKILL);
	return -1;
}

void proc_reap_all(void)
{
	for (int i = 0; i < nprocs; i++) {
		proc_signal(&procs[i], SIGKILL);
		if (procs[i].rep >= 0)
			close(procs[i].rep);
		procs[i].rep = -1;
	}
	nprocs = 0;
}

static bool line_is(const char *line, const char *prefix)
{
	size_t n = strlen(prefix);
	return strncmp(line, prefix, n) == 0 && line[n] == ' ';
}

const char *proc_line(const proc_t *p, const char *prefix)
{
	for (int i = p->nlines - 1; i >= 0; i--)
		if (line_is(p->lines[i], prefix))
			return p->lines[i];
	return NULL;
}

int proc_lines(const proc_t *p, const char *prefix)
{
	int n = 0;
	for (int i = 0; i < p->nlines; i++)
		n += line_is(p->lines[i], prefix);
	return n;
}

uint64_t proc_seen(const proc_t *observer, int kind, uint64_t node)
{
	for (int i = 0; i < observer->nev; i++)
		if (observer->ev[i].kind == kind && observer->ev[i].node == node)
			return observer->ev[i].at;
	return 0;
}
