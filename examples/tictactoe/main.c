/*
 * examples/tictactoe - the showcase: tic-tac-toe on a Skald cluster.
 *
 *   build/examples/tictactoe node --name NAME --listen tcp://HOST:PORT
 *                                 [--seeds tcp://HOST:PORT,...] [--http HOST:PORT]
 *                                 [--secret S] [--store URI] ...
 *   build/examples/tictactoe demo [--nodes N] [--games N] [--players P] ...
 *
 * `node` runs one node of the cluster: a GameLobby singleton shared by the
 * cluster, GameSession entities placed by sharding, Player actors for the
 * clients that reach it, and the HTTP API with the web page. It runs until
 * SIGINT or SIGTERM, then leaves the cluster (its games and the lobby move
 * to the other nodes) and exits 0.
 *
 * `demo` runs a whole cluster in this process, with bots, stops one node
 * halfway and checks every game against the journal (demo.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "demo.h"
#include "node.h"
#include "protocol.h"

#define MAX_SEEDS 16

static void usage(FILE *out)
{
	fprintf(out, "usage: tictactoe node --name NAME --listen tcp://HOST:PORT [options]\n"
	             "       tictactoe demo [options]\n"
	             "\n"
	             "node: one node of the cluster, serving the HTTP API and the web page\n"
	             "  --name NAME          the node's name (GET /cluster, logs)\n"
	             "  --listen tcp://H:P   the cluster address (port 0: any)\n"
	             "  --seeds A,B,...      tcp:// addresses of members to join through\n"
	             "                       (none: this node forms a new cluster)\n"
	             "  --http H:P           serve the HTTP API there, e.g. 127.0.0.1:8080\n"
	             "  --secret S           the cluster secret (else SKALD_SECRET)\n"
	             "  --store URI          the journal (else SKALD_JOURNAL, else\n"
	             "                       memory://tictactoe, which no other node shares)\n"
	             "  --threads T          scheduler threads, 1..1024 (default one per core)\n"
	             "  --shards N           shards of the games, 1..65536 (default 64; the same\n"
	             "                       on every node)\n"
	             "  --max-connections N  HTTP connections at once (default 1024)\n"
	             "  --heartbeat-ms MS    matchmaking heartbeat lines (default 5000)\n"
	             "\n"
	             "demo: a cluster in one process, bots, one node stopped halfway\n"
	             "  --store URI          journal (default memory://demo)\n"
	             "  --nodes N            nodes, 1..5 (default 3)\n"
	             "  --games N            games to finish, 1..100000 (default 300)\n"
	             "  --players P          bots, 2..10000 (default 30)\n"
	             "  --seed S             seed of the bots' moves (default 1)\n"
	             "  --threads T          scheduler threads per node, 1..64 (default 1)\n"
	             "  --stop NAME          the node to stop halfway: a name (a, b, ...), lobby\n"
	             "                       (the lobby's host, the default) or none\n");
}

static int parse_number(const char *flag, const char *text, long long min, long long max,
                        long long *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0' || v < min || v > max) {
		fprintf(stderr, "tictactoe: %s takes an integer from %lld to %lld, not '%s'\n",
		        flag, min, max, text);
		return -1;
	}
	*out = v;
	return 0;
}

/* The flags of one subcommand: each "--flag value" or "--flag=value" is
 * handed to set(), which returns 0, -1 (reported) or 1 (unknown flag). */
typedef int (*flag_fn)(void *opts, const char *flag, const char *value);

static int parse_flags(int argc, char **argv, flag_fn set, void *opts)
{
	for (int i = 0; i < argc; i++) {
		const char *flag = argv[i], *value = NULL;
		char name[32];
		const char *eq = strchr(flag, '=');
		if (strncmp(flag, "--", 2) == 0 && eq != NULL &&
		    (size_t)(eq - flag) < sizeof name) {
			snprintf(name, sizeof name, "%.*s", (int)(eq - flag), flag);
			flag = name;
			value = eq + 1;
		}
		if (strcmp(flag, "--help") == 0 || strcmp(flag, "-h") == 0) {
			usage(stdout);
			exit(0);
		}
		if (strncmp(flag, "--", 2) != 0) {
			fprintf(stderr, "tictactoe: unexpected argument '%s'\n", argv[i]);
			return -1;
		}
		if (value == NULL) {
			if (i + 1 >= argc) {
				fprintf(stderr, "tictactoe: %s needs a value\n", flag);
				return -1;
			}
			value = argv[++i];
		}
		int rc = set(opts, flag, value);
		if (rc > 0) {
			fprintf(stderr, "tictactoe: unknown argument '%s'\n", flag);
			return -1;
		}
		if (rc < 0)
			return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------------ */
/* tictactoe node                                                            */

typedef struct {
	ttt_node_config_t cfg;
	const char *seeds[MAX_SEEDS];
	char seed_list[1024];
} node_opts_t;

static int node_flag(void *arg, const char *flag, const char *value)
{
	node_opts_t *o = arg;
	long long v;
	if (strcmp(flag, "--name") == 0) {
		if (value[0] == '\0' || strlen(value) >= 64) {
			fprintf(stderr, "tictactoe: --name takes 1 to 63 characters\n");
			return -1;
		}
		o->cfg.name = value;
	} else if (strcmp(flag, "--listen") == 0) {
		if (strncmp(value, "tcp://", 6) != 0 || strrchr(value, ':') == value + 3) {
			fprintf(stderr, "tictactoe: --listen takes tcp://HOST:PORT, not '%s'\n",
			        value);
			return -1;
		}
		o->cfg.listen = value;
	} else if (strcmp(flag, "--seeds") == 0) {
		snprintf(o->seed_list, sizeof o->seed_list, "%s", value);
		o->cfg.nseeds = 0;
		for (char *save = NULL, *s = strtok_r(o->seed_list, ",", &save); s != NULL;
		     s = strtok_r(NULL, ",", &save)) {
			if (o->cfg.nseeds == MAX_SEEDS) {
				fprintf(stderr, "tictactoe: at most %d seeds\n", MAX_SEEDS);
				return -1;
			}
			o->seeds[o->cfg.nseeds++] = s;
		}
		o->cfg.seeds = o->seeds;
	} else if (strcmp(flag, "--http") == 0) {
		o->cfg.http = value;
	} else if (strcmp(flag, "--secret") == 0) {
		o->cfg.secret = value;
	} else if (strcmp(flag, "--store") == 0) {
		o->cfg.store = value;
	} else if (strcmp(flag, "--threads") == 0) {
		if (parse_number(flag, value, 1, 1024, &v) < 0)
			return -1;
		o->cfg.threads = (unsigned)v;
	} else if (strcmp(flag, "--shards") == 0) {
		if (parse_number(flag, value, 1, 65536, &v) < 0)
			return -1;
		o->cfg.shards = (unsigned)v;
	} else if (strcmp(flag, "--max-connections") == 0) {
		if (parse_number(flag, value, 1, 1000000, &v) < 0)
			return -1;
		o->cfg.max_connections = (unsigned)v;
	} else if (strcmp(flag, "--heartbeat-ms") == 0) {
		if (parse_number(flag, value, 10, 3600000, &v) < 0)
			return -1;
		o->cfg.heartbeat_ms = (unsigned)v;
	} else {
		return 1;
	}
	return 0;
}

static int run_node(int argc, char **argv)
{
	node_opts_t o = {.cfg = {.secret = getenv("SKALD_SECRET")}};
	if (parse_flags(argc, argv, node_flag, &o) < 0) {
		usage(stderr);
		return 2;
	}
	const char *missing = o.cfg.name == NULL     ? "--name"
	                      : o.cfg.listen == NULL ? "--listen"
	                      : o.cfg.secret == NULL || o.cfg.secret[0] == '\0'
	                              ? "--secret (or SKALD_SECRET)"
	                              : NULL;
	if (missing != NULL) {
		fprintf(stderr, "tictactoe: node needs %s\n", missing);
		usage(stderr);
		return 2;
	}
	int rc = ttt_protocol_register();
	if (rc < 0) {
		fprintf(stderr, "tictactoe: cannot register the messages: %s\n",
		        skald_strerror(rc));
		return 1;
	}
	/* SIGINT and SIGTERM are taken by this thread with sigwait: blocked
	 * before any thread starts, so that no other thread gets them. */
	sigset_t stop;
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);

	ttt_node_t *n;
	char why[512];
	if ((rc = ttt_node_start(&o.cfg, &n, why, sizeof why)) < 0) {
		fprintf(stderr, "tictactoe: node %s: %s\n", o.cfg.name, why);
		return 1;
	}
	size_t members = 0;
	skald_cluster_members(ttt_node_system(n), NULL, 0, &members);
	printf("tictactoe: node %s up (%zu members): cluster %s", ttt_node_name(n), members,
	       ttt_node_addr(n));
	if (ttt_node_http_port(n) > 0) {
		char host[64];
		const char *colon = strrchr(o.cfg.http, ':');
		snprintf(host, sizeof host, "%.*s", (int)(colon - o.cfg.http), o.cfg.http);
		printf(", http://%s:%d/", host, ttt_node_http_port(n));
	}
	printf("\n");
	fflush(stdout);

	int sig = 0;
	sigwait(&stop, &sig);
	ttt_node_stop(n, true);
	printf("tictactoe: node %s left the cluster\n", o.cfg.name);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* tictactoe demo                                                            */

static int demo_flag(void *arg, const char *flag, const char *value)
{
	ttt_demo_options_t *o = arg;
	long long v;
	if (strcmp(flag, "--store") == 0) {
		if (value[0] == '\0') {
			fprintf(stderr, "tictactoe: --store needs a journal URI, such as "
			                "memory://demo\n");
			return -1;
		}
		o->store = value;
		return 0;
	}
	if (strcmp(flag, "--stop") == 0) {
		o->stop = value;
		return 0;
	}
	static const struct {
		const char *flag;
		long long min, max;
	} ranges[] = {{"--nodes", 1, 5},
	              {"--games", 1, 100000},
	              {"--players", 2, 10000},
	              {"--seed", 0, INT64_MAX},
	              {"--threads", 1, 64}};
	for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++) {
		if (strcmp(flag, ranges[i].flag) != 0)
			continue;
		if (parse_number(flag, value, ranges[i].min, ranges[i].max, &v) < 0)
			return -1;
		if (i == 0)
			o->nodes = (unsigned)v;
		else if (i == 1)
			o->games = (long)v;
		else if (i == 2)
			o->players = (long)v;
		else if (i == 3)
			o->seed = (uint64_t)v;
		else
			o->threads = (unsigned)v;
		return 0;
	}
	return 1;
}

static int run_demo(int argc, char **argv)
{
	ttt_demo_options_t o = {.store = "memory://demo",
	                        .games = 300,
	                        .players = 30,
	                        .seed = 1,
	                        .nodes = 3,
	                        .threads = 1,
	                        .stop = "lobby"};
	if (parse_flags(argc, argv, demo_flag, &o) < 0) {
		usage(stderr);
		return 2;
	}
	/* Each scheduler thread opens its own handle; with an unnamed memory
	 * store every handle is a separate database, and a game recovered on
	 * another thread would find no history. */
	if (strcmp(o.store, "memory://") == 0 || strncmp(o.store, "memory://?", 10) == 0) {
		fprintf(stderr,
		        "tictactoe: --store %s is private to each journal handle (one per "
		        "thread), so games could not find their history; give it a name, "
		        "e.g. memory://demo\n",
		        o.store);
		return 2;
	}
	return ttt_demo(&o);
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "node") == 0)
		return run_node(argc - 2, argv + 2);
	if (argc >= 2 && strcmp(argv[1], "demo") == 0)
		return run_demo(argc - 2, argv + 2);
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "tictactoe: %s\n",
	        argc < 2 ? "say what to run: node or demo" : "unknown command; try node or demo");
	usage(stderr);
	return 2;
}
