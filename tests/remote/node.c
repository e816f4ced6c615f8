/*
 * tests/remote/node.c - the node side: what a node process runs (see
 * harness.h). Nothing here runs in the test's own process except the
 * constructor's check of the environment.
 *
 * The node's actors:
 *   echo   counts what it handles; replies to t_int v with v + 1, to a
 *          string s with "echo:" s, to a blob with its length (a reply to a
 *          plain tell from an actor is a tell back to it); answers t_cmd
 *          CMD_COUNT, CMD_STOP, CMD_PID
 *   seq    receives t_seq numbers and checks that the n-th one is n;
 *          answers CMD_COUNT and CMD_FIRST_BAD
 *   relay  (with SKALD_RT_RELAY) forwards asks of t_int to the "echo" of
 *          another node and answers with that node's reply + RELAY_ADD;
 *          forwards strings to that echo and the echo's answers back to
 *          whoever sent the last string
 *
 * With SKALD_RT_MEMBER the node is also a cluster member: it starts the
 * cluster with the seeds of SKALD_RT_SEEDS and waits to be up before it
 * reports.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <uv.h>

#include "harness.h"
#include "skald/cluster.h"

/* Present only in sanitizer builds: lets a node that exits with _exit still
 * report its leaks. */
extern void __lsan_do_leak_check(void) __attribute__((weak));

static int reply_u64(skald_actor_t *self, skald_msg_t *msg, uint64_t v)
{
	if (msg->ask_id == 0 && skald_ref_is_null(msg->sender))
		return 0; /* a tell from outside any actor: nobody to answer */
	skald_reply(self, msg, t_int, INT_PAYLOAD(v));
	return 0;
}

/* --- echo ---------------------------------------------------------------- */

static int echo_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	uint64_t *count = state;
	if (msg->type == t_cmd) {
		switch (PAYLOAD_INT(msg->payload)) {
		case CMD_COUNT:
			return reply_u64(self, msg, *count);
		case CMD_STOP:
			reply_u64(self, msg, 0);
			skald_stop_self(self);
			return 0;
		case CMD_PID:
			return reply_u64(self, msg, (uint64_t)getpid());
		default:
			return 0;
		}
	}
	(*count)++;
	if (msg->type == t_int)
		return reply_u64(self, msg, PAYLOAD_INT(msg->payload) + 1);
	if (msg->type == t_blob)
		return reply_u64(self, msg, ((const blob_t *)msg->payload)->len);
	if (msg->type == t_str) {
		if (msg->ask_id == 0 && skald_ref_is_null(msg->sender))
			return 0;
		const char *s = msg->payload;
		size_t n = strlen(s);
		char *r = malloc(n + 6);
		if (r == NULL)
			return 0;
		memcpy(r, "echo:", 5);
		memcpy(r + 5, s, n + 1);
		if (skald_reply(self, msg, t_str, r) < 0)
			free(r);
	}
	return 0;
}

static const skald_behavior_t echo_behavior = {
        .state_size = sizeof(uint64_t),
        .receive = echo_receive,
};

/* --- seq ----------------------------------------------------------------- */

typedef struct seq_state_s {
	uint64_t count;
	uint64_t first_bad;
} seq_state_t;

static int seq_init(skald_actor_t *self, void *state, void *arg)
{
	((seq_state_t *)state)->first_bad = NO_GAP;
	return 0;
}

static int seq_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	seq_state_t *s = state;
	if (msg->type == t_seq) {
		if (s->first_bad == NO_GAP && PAYLOAD_INT(msg->payload) != s->count)
			s->first_bad = s->count;
		s->count++;
	} else if (msg->type == t_cmd) {
		uint64_t c = PAYLOAD_INT(msg->payload);
		if (c == CMD_COUNT)
			return reply_u64(self, msg, s->count);
		if (c == CMD_FIRST_BAD)
			return reply_u64(self, msg, s->first_bad);
	}
	return 0;
}

static const skald_behavior_t seq_behavior = {
        .state_size = sizeof(seq_state_t),
        .init = seq_init,
        .receive = seq_receive,
};

/* --- relay --------------------------------------------------------------- */

typedef struct relay_state_s {
	skald_ref_t next;   /* the echo of the next node */
	skald_ref_t origin; /* the sender of the last string from elsewhere */
	uint64_t relayed;
} relay_state_t;

typedef struct pending_s {
	skald_ref_t sender;
	uint64_t ask_id;
} pending_t;

static int relay_init(skald_actor_t *self, void *state, void *arg)
{
	((relay_state_t *)state)->next = *(const skald_ref_t *)arg;
	return 0;
}

static void relay_answer(skald_actor_t *self, void *state, int status, skald_msg_t *reply,
                         void *arg)
{
	pending_t *p = arg;
	/* The request itself is long gone; its sender and ask id are all a
	 * reply needs. */
	skald_msg_t request = {t_int, NULL, p->sender, p->ask_id};
	uint64_t v = 0;
	if (status == 0 && reply->type == t_int)
		v = PAYLOAD_INT(reply->payload) + RELAY_ADD;
	skald_reply(self, &request, t_int, INT_PAYLOAD(v));
	free(p);
}

static int relay_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	relay_state_t *r = state;
	if (msg->type == t_int && msg->ask_id != 0) {
		pending_t *p = malloc(sizeof *p);
		if (p == NULL)
			return reply_u64(self, msg, 0);
		p->sender = msg->sender;
		p->ask_id = msg->ask_id;
		r->relayed++;
		if (skald_ask(self, r->next, t_int, msg->payload, WAIT_MS, relay_answer, p) < 0) {
			free(p);
			return reply_u64(self, msg, 0);
		}
	} else if (msg->type == t_str) {
		char *s = skald_msg_take(msg);
		skald_ref_t to = r->next;
		if (skald_ref_eq(msg->sender, r->next)) {
			to = r->origin;
		} else {
			r->origin = msg->sender;
			r->relayed++;
		}
		if (skald_ref_is_null(to) || skald_tell(self, to, t_str, s) < 0)
			free(s);
	} else if (msg->type == t_cmd && PAYLOAD_INT(msg->payload) == CMD_COUNT) {
		return reply_u64(self, msg, r->relayed);
	}
	return 0;
}

static const skald_behavior_t relay_behavior = {
        .state_size = sizeof(relay_state_t),
        .init = relay_init,
        .receive = relay_receive,
};

/* --- the node process ---------------------------------------------------- */

static unsigned env_uint(const char *name, unsigned dflt)
{
	const char *s = getenv(name);
	return s != NULL && *s != '\0' ? (unsigned)strtoul(s, NULL, 10) : dflt;
}

static int report_ref(int fd, const char *name, skald_ref_t r)
{
	return dprintf(fd, "ref %s %llx %u %u\n", name, (unsigned long long)r.node, r.actor,
	               r.incarnation) > 0
	               ? 0
	               : -1;
}

/* Starts the cluster with the seeds of SKALD_RT_SEEDS (comma-separated;
 * none: a cluster of its own) and waits until this node is up. */
static int join_cluster(skald_system_t *sys, const char *name)
{
	static char buf[512];
	const char *seeds[8];
	size_t n = 0;
	snprintf(buf, sizeof buf, "%s", getenv("SKALD_RT_SEEDS"));
	for (char *s = strtok(buf, ","); s != NULL && n < 8; s = strtok(NULL, ","))
		seeds[n++] = s;
	int rc = skald_cluster_start(sys, &(skald_cluster_config_t){.seeds = seeds, .nseeds = n});
	char why[256] = "";
	if (rc == 0)
		rc = skald_cluster_wait(sys, WAIT_MS, why, sizeof why);
	if (rc < 0)
		fprintf(stderr, "node %s: cluster: %s: %s\n", name, skald_strerror(rc), why);
	return rc;
}

/* Exit codes tell the test which step failed. */
static int node_main(const char *name)
{
	int ctl = -1, rep = -1;
	const char *fds = getenv("SKALD_RT_FDS");
	if (fds == NULL || sscanf(fds, "%d,%d", &ctl, &rep) != 2)
		return 10;
	alarm(env_uint("SKALD_RT_WATCHDOG", 30));
	/* Die with the test process, and do not start if it is already gone. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if ((unsigned)getppid() != env_uint("SKALD_RT_PPID", 0))
		return 11;
	if (types_register() < 0)
		return 12;
	const char *log = getenv("SKALD_RT_LOG");
	if (log != NULL && *log != '\0') {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (fd < 0 || dup2(fd, 2) != 2)
			return 20;
		close(fd);
	}

	skald_config_t cfg = {.threads = 2, .name = name};
	skald_system_t *sys;
	if (skald_system_new(&cfg, &sys) < 0)
		return 13;
	const char *cluster = getenv("SKALD_RT_CLUSTER");
	const char *ca = getenv("SKALD_RT_CA");
	bool certs = ca != NULL && *ca != '\0';
	skald_remote_config_t rcfg = {
	        .tls_ca_file = certs ? ca : NULL,
	        .tls_cert_file = certs ? getenv("SKALD_RT_CERT") : NULL,
	        .tls_key_file = certs ? getenv("SKALD_RT_KEY") : NULL,
	        .cluster = cluster != NULL && *cluster != '\0' ? cluster : NULL,
	        .secret = getenv("SKALD_RT_SECRET"),
	        .heartbeat_ms = env_uint("SKALD_RT_HEARTBEAT", 0),
	        .timeout_ms = env_uint("SKALD_RT_TIMEOUT", 0),
	        .max_frame = env_uint("SKALD_RT_MAX_FRAME", 0),
	};
	if (skald_remote_start(sys, &rcfg) < 0)
		return 14;

	/* A fixed port may still be held briefly by the kernel for another
	 * socket: retry for a while. */
	char addr[64];
	snprintf(addr, sizeof addr, "%s://127.0.0.1:%u", getenv("SKALD_RT_SCHEME"),
	         env_uint("SKALD_RT_PORT", 0));
	int port = 0, rc;
	for (int i = 0; i < 100; i++) {
		rc = skald_listen(sys, addr, &port);
		if (rc != UV_EADDRINUSE)
			break;
		usleep(50 * 1000);
	}
	if (rc < 0) {
		fprintf(stderr, "node %s: listen on %s: %s\n", name, addr, skald_strerror(rc));
		return 15;
	}

	if (env_uint("SKALD_RT_MEMBER", 0) && join_cluster(sys, name) < 0)
		return 21;

	skald_ref_t echo, seq, relay = SKALD_REF_NULL;
	if (skald_spawn(sys, &echo_behavior, NULL, NULL, &echo) < 0 ||
	    skald_spawn(sys, &seq_behavior, NULL, NULL, &seq) < 0 ||
	    skald_publish(sys, "echo", echo) < 0 || skald_publish(sys, "seq", seq) < 0)
		return 16;
	/* The relay's target lives as long as the process. */
	static skald_ref_t next;
	const char *relay_to = getenv("SKALD_RT_RELAY");
	if (relay_to != NULL && *relay_to != '\0') {
		rc = skald_system_lookup(sys, relay_to, "echo", WAIT_MS, &next);
		if (rc < 0) {
			fprintf(stderr, "node %s: lookup of echo at %s: %s\n", name, relay_to,
			        skald_strerror(rc));
			return 17;
		}
		if (skald_spawn(sys, &relay_behavior, &next, NULL, &relay) < 0 ||
		    skald_publish(sys, "relay", relay) < 0)
			return 18;
	}

	if (dprintf(rep, "node %llx\nport %d\n", (unsigned long long)skald_system_node(sys), port) <
	            0 ||
	    report_ref(rep, "echo", echo) < 0 || report_ref(rep, "seq", seq) < 0 ||
	    (!skald_ref_is_null(relay) && report_ref(rep, "relay", relay) < 0) ||
	    dprintf(rep, "ready\n") < 0)
		return 19;

	/* Serve until the test closes the control pipe (or dies). */
	char c;
	ssize_t n;
	do
		n = read(ctl, &c, 1);
	while (n > 0 || (n < 0 && errno == EINTR));
	skald_system_stop(sys);
	close(rep);
	close(ctl);
	if (__lsan_do_leak_check != NULL)
		__lsan_do_leak_check();
	return 0;
}

/* Runs before Criterion's main: in a node process, the node is all there
 * is, and the process must never return into the test framework. */
__attribute__((constructor)) static void node_entry(void)
{
	const char *name = getenv("SKALD_RT_NODE");
	if (name == NULL)
		return;
	_exit(node_main(name));
}
