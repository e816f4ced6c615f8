/*
 * tests/remote/harness.h - nodes as separate processes, for the tests of
 * remote references.
 *
 * A node is this very test binary, executed again: node_start() forks, the
 * child executes /proc/self/exe with SKALD_RT_NODE in its environment, and
 * a constructor (node.c) runs the node before Criterion's main is reached.
 * The node starts a system, listens on 127.0.0.1 (port 0 unless told), spawns
 * and publishes its actors ("echo", "seq", and "relay" when asked), reports
 * its port, node id and references on a pipe, then serves until its control
 * pipe closes. It can never outlive the test: it exits when the control pipe
 * reaches EOF (the test process died), it gets SIGKILL when its parent dies
 * (PR_SET_PDEATHSIG), and an alarm ends it after a watchdog period. The
 * suite's fini kills and reaps every node that the test did not stop itself.
 *
 * Criterion asserts run only on the test's thread; actors of the test's own
 * node record broken expectations with CHECK() and the test reports them
 * with checks_ok(). Every wait is bounded (AWAIT).
 */
#ifndef SKALD_TESTS_REMOTE_HARNESS_H
#define SKALD_TESTS_REMOTE_HARNESS_H

#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "certs.h"
#include "skald/actor.h"
#include "skald/remote.h"
#include "tests/include/skald_test.h"

/* The bound of an ordinary wait: generous for a sanitizer build on a loaded
 * two-core machine, and still well inside the suite's timeout. */
#define WAIT_MS 15000
/* How long a negative check ("nothing more arrives") watches. */
#define QUIET_MS 300
/* The cluster secret every node of the tests shares unless told otherwise. */
#define SECRET "remote-tests-shared-secret"

/* ------------------------------------------------------------------------ */
/* Message types, registered under the same names in every process          */

/* Integers carried in the payload pointer, 8 bytes big-endian on the wire:
 * t_int (requests and replies), t_seq (sequence numbers), t_cmd (commands
 * to the nodes' actors, CMD_* below). */
extern uint32_t t_int, t_seq, t_cmd;
/* A NUL-terminated string (malloc'ed; its bytes on the wire). */
extern uint32_t t_str;
/* A counted heap buffer (blob_t); frees are counted in blob_frees. */
extern uint32_t t_blob;
/* A blob type without a codec: local only. */
extern uint32_t t_nocodec;

#define INT_PAYLOAD(v) ((void *)(uintptr_t)(v))
#define PAYLOAD_INT(p) ((uint64_t)(uintptr_t)(p))

enum {
	CMD_COUNT = 1,     /* reply: messages handled, commands excluded */
	CMD_STOP = 2,      /* reply 0, then stop normally */
	CMD_FIRST_BAD = 3, /* "seq": the index of the first out-of-order number */
	CMD_PID = 4,       /* reply: the node's process id */
};
/* CMD_FIRST_BAD's reply when every number came in order. */
#define NO_GAP UINT64_MAX
/* What "relay" adds to the reply it gets from the next node. */
#define RELAY_ADD 1000000u

typedef struct blob_s {
	size_t len;
	uint8_t data[];
} blob_t;

extern atomic_long blob_frees;
blob_t *blob_new(size_t len); /* data filled with a pattern */
void blob_free(void *payload);
char *str_dup(const char *s);

/* Registers the types; 0 or the first error. Any process, any time. */
int types_register(void);

/* ------------------------------------------------------------------------ */
/* Node processes                                                            */

typedef struct node_opts_s {
	const char *name;          /* node name (skald_config_t.name); required */
	const char *secret;        /* NULL: SECRET; "": none (certificates only) */
	const char *scheme;        /* the listener's: NULL or "tcp", or "tls" */
	const cert_files_t *certs; /* tls:// keyed by certificates; NULL: by
	                              the secret */
	const char *log;           /* a file that gets the node's log (its
	                              stderr); NULL: the test's stderr */
	bool member;               /* also a cluster member (skald/cluster.h) */
	const char *seeds;         /* its seeds, comma-separated; NULL: forms a
	                              cluster of its own */
	const char *cluster;       /* NULL: the default cluster */
	int port;                  /* 0: any free port */
	unsigned heartbeat_ms;     /* 0: the runtime's defaults */
	unsigned timeout_ms;
	unsigned max_frame;   /* 0: the runtime's default */
	const char *relay_to; /* address of the node whose "echo" a "relay"
	                         actor forwards to; NULL: no relay */
	unsigned watchdog_s;  /* the node ends itself after this; 0: 30 s */
} node_opts_t;

#define NODE_MAX_REFS 4

typedef struct node_s {
	pid_t pid;
	int ctl; /* write end of the control pipe; -1 once closed */
	int rep; /* read end of the report pipe */
	bool reaped;
	int status; /* wait status once reaped */
	int port;
	uint64_t id;   /* the node id it reported */
	char addr[64]; /* tcp:// or tls://127.0.0.1:PORT */
	char scheme[4];
	char name[32];
	struct {
		char name[16];
		skald_ref_t ref;
	} refs[NODE_MAX_REFS];
	int nrefs;
} node_t;

/* Starts a node process and waits (bounded) for its report; fails the test
 * if it does not come up. The node is owned by the harness. */
node_t *node_start(const node_opts_t *o);
/* The reference the node reported under name (fails the test if none). */
skald_ref_t node_ref(const node_t *n, const char *name);
/* Sends sig; SIGKILL also reaps the process. */
void node_kill(node_t *n, int sig);
/* Closes the control pipe and waits (bounded) for a graceful exit; returns
 * the wait status, or -1 if the node had to be killed. */
int node_exit(node_t *n);
/* Non-zero while the process has not exited. */
bool node_running(node_t *n);
/* Fails the test unless the node exits gracefully with status 0. */
void node_exit_clean(node_t *n);

/* ------------------------------------------------------------------------ */
/* The test's own node                                                       */

typedef struct sys_opts_s {
	const char *name;          /* NULL: "tester" */
	const char *secret;        /* NULL: SECRET; "": none (certificates only) */
	const cert_files_t *certs; /* NULL: tls:// keyed by the secret */
	const char *cluster;       /* NULL: the default */
	unsigned heartbeat_ms, timeout_ms, max_frame;
	size_t max_queue;
} sys_opts_t;

/* A running system with the network started (opts may be NULL); stopped by
 * the fixture if the test does not stop it. */
skald_system_t *sys_start(const sys_opts_t *o);
void sys_stop(skald_system_t *sys);
skald_stats_t stats_of(skald_system_t *sys);

/* skald_system_lookup of name on node n; fails the test on error. */
skald_ref_t lookup_on(skald_system_t *sys, const node_t *n, const char *name);
/* skald_system_ask with an integer payload of type `type`; the integer
 * reply in *out. Returns the ask's status; a reply of another type fails the
 * test. */
int ask_u64(skald_system_t *sys, skald_ref_t to, uint32_t type, uint64_t v, uint64_t timeout_ms,
            uint64_t *out);
/* ask_u64 of a t_cmd; fails the test unless it succeeds. */
uint64_t ask_cmd(skald_system_t *sys, skald_ref_t to, uint64_t cmd);

/* Spawns a top-level actor; fails the test on error. */
skald_ref_t spawn(skald_system_t *sys, const skald_behavior_t *b, void *arg);

/* ------------------------------------------------------------------------ */
/* Actors of the test's node                                                 */

/* Watches `target` from init; records the down notice. */
typedef struct watch_ctx_s {
	skald_ref_t target;
	atomic_int armed; /* set after skald_watch returned */
	atomic_int watch_rc;
	atomic_int downs;
	atomic_int reason;
	skald_ref_t down_ref; /* written before downs is incremented */
} watch_ctx_t;
extern const skald_behavior_t watcher_behavior;

/* Monitors nodes from init; records every node event. */
#define MON_MAX 32
typedef struct mon_ctx_s {
	atomic_int armed;
	atomic_int n;
	skald_node_event_t ev[MON_MAX]; /* ev[i] is written before n passes i */
} mon_ctx_t;
extern const skald_behavior_t monitor_behavior;
/* The index of the first event for node with that `up`, or -1. */
int mon_find(mon_ctx_t *m, uint64_t node, int up);

/* ------------------------------------------------------------------------ */
/* Files                                                                     */

#define SCRATCH_PATH_MAX 160
/* The path of file in the test's scratch directory, which is made on first
 * use under /tmp and removed with all it holds by fixture_teardown. */
void scratch_path(const char *file, char out[SCRATCH_PATH_MAX]);
/* From now on this process's log (its stderr) goes to path, appended. */
void log_to(const char *path);
/* True when the file at path contains needle. */
bool file_has(const char *path, const char *needle);
/* Waits (bounded) until the file at path contains needle; fails the test
 * with what the file holds if it never does. */
void expect_log(const char *path, const char *needle);

/* ------------------------------------------------------------------------ */
/* Fixtures                                                                  */

/* The suite fixtures: .init registers the types and resets the counters;
 * .fini kills the nodes and stops the systems the test left running. */
void fixture_setup(void);
void fixture_teardown(void);

#endif /* SKALD_TESTS_REMOTE_HARNESS_H */
