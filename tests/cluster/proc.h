/*
 * tests/cluster/proc.h - cluster members as separate processes, for the
 * tests of tests/cluster and for bench/cluster.c.
 *
 * A member is the running binary, executed again with SKALD_CL_NODE in its
 * environment: a constructor (proc.c) runs the member before main. It
 * starts a system and its network, listens on 127.0.0.1, spawns an "echo"
 * actor and a subscriber of member events, starts the cluster with the
 * seeds it was given and waits until it is up. It reports on a pipe, one
 * line per fact (its id and port, every member event with the monotonic
 * time it saw it, answers to commands), and takes commands on another pipe
 * (leave, members, watch, ask, and those of the registry: names, groups,
 * remote spawn; see proc_cmd). With `restart`, a member that learns it was
 * downed stops its system and starts a new one on the same port: a new
 * incarnation that joins again. It exits when its control pipe closes, dies
 * with the process that started it, and ends itself after a watchdog.
 *
 * Nothing here uses Criterion: failures are returned, and the callers
 * assert. All waits of the callers are bounded.
 *
 * Another suite extends its members by defining the hooks below (they are
 * weak here): what a member starts once its cluster is started, what it
 * does with a command line it does not know, and what it stops before its
 * system. Their answers are lines that begin with "x " (proc_hook_reply),
 * which the starting side keeps in proc_t.x. A member's system runs
 * SKALD_MEMBER_THREADS scheduler threads (default 1) and, like every system,
 * the journal SKALD_JOURNAL names.
 */
#ifndef SKALD_TESTS_CLUSTER_PROC_H
#define SKALD_TESTS_CLUSTER_PROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "skald/skald.h"

#define PROC_MAX_NODES   64
#define PROC_MAX_EVENTS  512
#define PROC_MAX_MEMBERS 16
#define PROC_MAX_LINES   512
#define PROC_LINE        400
#define PROC_SECRET      "cluster-tests-shared-secret"

typedef struct proc_event_s {
	int kind; /* skald_member_event_kind_t */
	uint64_t node;
	int self;
	int reason;
	uint64_t at; /* the member's CLOCK_MONOTONIC ms when it saw it */
} proc_event_t;

typedef struct proc_opts_s {
	const char *name;    /* required */
	const char *seeds;   /* comma-separated; NULL: forms a cluster */
	const char *secret;  /* NULL: PROC_SECRET */
	const char *cluster; /* NULL: the default */
	int port;            /* 0: any */
	bool restart;        /* start again as a new incarnation when downed */
	unsigned wait_ms;    /* skald_cluster_wait's timeout; 0: 20,000 */
	const char *reg;     /* a name it registers before it joins (NULL: none) */
	unsigned watchdog_s; /* 0: 120 */
} proc_opts_t;

typedef struct proc_s {
	pid_t pid;
	int ctl, rep;
	bool reaped;
	char name[16];
	/* What it reported (proc_pump). */
	int ups;     /* times it came up: 2 after a restart */
	uint64_t id; /* the current incarnation's node id */
	uint64_t first_id;
	int port;
	skald_ref_t echo;
	bool failed; /* skald_cluster_wait failed: */
	int fail_rc;
	char fail_why[256];
	proc_event_t ev[PROC_MAX_EVENTS];
	int nev;
	char refused_why[256]; /* the last REFUSED event's sentence */
	int nmembers;          /* the last "members" answer; -1: none */
	uint64_t members[PROC_MAX_MEMBERS];
	int answers; /* "members" answers so far */
	bool left;
	int left_rc;
	bool asked;
	int asked_rc;
	bool watching;
	int watch_rc;
	bool watch_down;
	int watch_reason;
	bool counted; /* the last "stats" answer: */
	uint64_t bytes_sent, msgs_sent;
	/* The registry's answers and events, in order: every line that is
	 * none of the above (proc_line). */
	char lines[PROC_MAX_LINES][PROC_LINE];
	int nlines;
	int nx;       /* "x " lines so far; */
	char x[1024]; /* the last one, without "x " */
	char buf[16384];
	size_t len;
} proc_t;

/* A number carried in the payload pointer, as decimal text on the wire
 * ("cltest.num"), and "cltest.adder": spawned with a number as its
 * argument, it answers an ask of a number X with X + argument. */
extern const skald_msgtype_t proc_num_type;
extern const skald_behavior_t proc_adder_behavior;

/* For Criterion suites: pumps the members' reports until cond holds, and
 * fails the test after ms milliseconds. */
#define PAWAIT(cond, ms)                                                                           \
	do {                                                                                       \
		uint64_t pawait_end_ = proc_now_ms() + (ms);                                       \
		for (;;) {                                                                         \
			proc_pump();                                                               \
			if (cond)                                                                  \
				break;                                                             \
			if (proc_now_ms() > pawait_end_)                                           \
				cr_assert_fail("timed out after %d ms waiting for: %s", (int)(ms), \
				               #cond);                                             \
			usleep(2000);                                                              \
		}                                                                                  \
	} while (0)

/* Starts a member process; returns at once (NULL if fork failed). */
proc_t *proc_start(const proc_opts_t *o);
/* Reads every member's reports that have arrived. */
void proc_pump(void);
/*
 * Sends a command line. Membership: "leave", "members", "stats",
 * "watch N A I", "ask N A I" (N A I: a reference, node in hex). Registry,
 * each answered by a line that starts with its first word (times in ms of
 * CLOCK_MONOTONIC):
 *   reg NAME        spawns an actor and registers it under NAME:
 *                   "reg NAME RC N A I T"; if it loses the name later:
 *                   "lost NAME N A I T" (N A I: the winner)
 *   unreg NAME      "unreg NAME RC"
 *   where NAME      "where NAME RC N A I"
 *   wait NAME MS    skald_cluster_lookup from an actor: "wait NAME RC N A I T"
 *   gjoin KEY       spawns an actor and checks it in under KEY:
 *                   "gjoin KEY RC N A I"
 *   gsub KEY        a subscriber of KEY: "gev KEY KIND N A I REASON T", one
 *                   per reference of the listing for CURRENT (then
 *                   "gcur KEY COUNT")
 *   glist KEY       "glist KEY COUNT N.A.I ..."
 *   stop N A I      skald_stop: "stop RC"
 *   spawn N ARG     skald_cluster_system_spawn of "cltest.adder" on node N
 *                   with ARG: "spawn RC N A I"; the actor answers an ask
 *                   of a number X with X + ARG
 *   spawnx N NAME   the same of behaviour NAME, without argument
 */
int proc_cmd(proc_t *p, const char *line);
/* The last line of p that starts with prefix followed by a space, or
 * NULL; and how many lines do. */
const char *proc_line(const proc_t *p, const char *prefix);
int proc_lines(const proc_t *p, const char *prefix);
/* Sends sig; SIGKILL also reaps. */
void proc_signal(proc_t *p, int sig);
/* Closes the control pipe and waits up to ms for the exit (then kills);
 * returns the wait status, or -1 if it had to be killed. */
int proc_stop(proc_t *p, unsigned ms);
/* Kills and reaps every member still running (test teardown). */
void proc_reap_all(void);
/* When observer saw node's event of kind, or 0. */
uint64_t proc_seen(const proc_t *observer, int kind, uint64_t node);
/* Milliseconds of CLOCK_MONOTONIC (the clock of the reports). */
uint64_t proc_now_ms(void);

/* Hooks of the member's side, defined by a suite that extends members (all
 * optional). start runs once the member's cluster is started, before it
 * waits to be up; command gets each line the member does not know itself
 * and returns 0 if it does not know it either; stop runs before the
 * member's system stops. */
void proc_hook_start(skald_system_t *sys) __attribute__((weak));
int proc_hook_command(skald_system_t *sys, const char *line) __attribute__((weak));
void proc_hook_stop(skald_system_t *sys) __attribute__((weak));
/* Writes "x " and the formatted line to the report pipe (member's side). */
void proc_hook_reply(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* SKALD_TESTS_CLUSTER_PROC_H */
