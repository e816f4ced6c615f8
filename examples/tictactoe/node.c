/*
 * examples/tictactoe/node.c - one node of the cluster (see node.h).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "game.h"
#include "lobby.h"
#include "node.h"
#include "serve.h"

/* Games that got no message for this long are stopped (they recover on
 * the next one). */
#define PASSIVATE_MS 60000

/* Members a node keeps in its table (the cluster's own bound is larger;
 * the example's clusters are small). */
#define MAX_MEMBERS 64

typedef struct {
	uint64_t node;
	uint32_t up_number;
	skald_member_status_t status; /* 0: only its name is known yet */
	int reachable;
	char name[64];
	char addr[64];
} member_t;

struct ttt_node_s {
	char name[64];
	char addr[80];
	skald_system_t *sys;
	skald_sharding_t *games;
	skald_singleton_t *lobby;
	ttt_serve_t *http;
	skald_ref_t monitor;
	uv_mutex_t lock; /* the member table */
	member_t members[MAX_MEMBERS];
	size_t nmembers;
};

/* ------------------------------------------------------------------------ */
/* The nodes of this process                                                 */

static uv_once_t nodes_once = UV_ONCE_INIT;
static uv_mutex_t nodes_lock;
static ttt_node_t *nodes[16];

static void nodes_init(void)
{
	uv_mutex_init(&nodes_lock);
}

static int nodes_add(ttt_node_t *n)
{
	uv_once(&nodes_once, nodes_init);
	uv_mutex_lock(&nodes_lock);
	int rc = SKALD_ETOOMANY;
	for (size_t i = 0; i < sizeof nodes / sizeof nodes[0] && rc < 0; i++)
		if (nodes[i] == NULL) {
			nodes[i] = n;
			rc = 0;
		}
	uv_mutex_unlock(&nodes_lock);
	return rc;
}

static void nodes_remove(ttt_node_t *n)
{
	uv_once(&nodes_once, nodes_init);
	uv_mutex_lock(&nodes_lock);
	for (size_t i = 0; i < sizeof nodes / sizeof nodes[0]; i++)
		if (nodes[i] == n)
			nodes[i] = NULL;
	uv_mutex_unlock(&nodes_lock);
}

ttt_node_t *ttt_node_of(skald_system_t *sys)
{
	ttt_node_t *found = NULL;
	uv_once(&nodes_once, nodes_init);
	uv_mutex_lock(&nodes_lock);
	for (size_t i = 0; i < sizeof nodes / sizeof nodes[0] && found == NULL; i++)
		if (nodes[i] != NULL && nodes[i]->sys == sys)
			found = nodes[i];
	uv_mutex_unlock(&nodes_lock);
	return found;
}

skald_system_t *ttt_node_system(const ttt_node_t *n)
{
	return n->sys;
}

const char *ttt_node_name(const ttt_node_t *n)
{
	return n->name;
}

skald_sharding_t *ttt_node_games(skald_system_t *sys)
{
	ttt_node_t *n = ttt_node_of(sys);
	return n != NULL ? n->games : NULL;
}

skald_singleton_t *ttt_node_lobby(const ttt_node_t *n)
{
	return n->lobby;
}

const char *ttt_node_addr(const ttt_node_t *n)
{
	return n->addr;
}

int ttt_node_http_port(const ttt_node_t *n)
{
	return n->http != NULL ? ttt_serve_port(n->http) : 0;
}

/* A game the lobby opened is over: the lobby hears it, wherever it is. At
 * most once: a lobby that moved asks its games again (lobby.c). */
static void game_finished(skald_actor_t *self, const ttt_game_t *g)
{
	ttt_node_t *n = ttt_node_of(skald_actor_system(self));
	const char *result = g->status == TTT_DRAW ? "draw" : g->status == TTT_X_WON ? "X" : "O";
	json_t *m = json_pack("{s:s, s:s, s:i}", "game", g->id, "result", result, "moves",
	                      (int)g->moves);
	if (n == NULL || m == NULL ||
	    skald_singleton_tell(n->lobby, self, ttt_type.finished, m) < 0)
		json_decref(m);
}

static void set_hook(void)
{
	ttt_game_on_finished = game_finished;
}

/* ------------------------------------------------------------------------ */
/* The member table: what GET /cluster shows                                 */

static member_t *member_get(ttt_node_t *n, uint64_t node)
{
	for (size_t i = 0; i < n->nmembers; i++)
		if (n->members[i].node == node)
			return &n->members[i];
	if (n->nmembers == MAX_MEMBERS) {
		/* Forget the first that is gone for good. */
		for (size_t i = 0; i < n->nmembers; i++) {
			if (n->members[i].status == SKALD_MEMBER_REMOVED ||
			    n->members[i].status == SKALD_MEMBER_DOWN) {
				n->members[i] = n->members[--n->nmembers];
				break;
			}
		}
		if (n->nmembers == MAX_MEMBERS)
			return NULL;
	}
	member_t *m = &n->members[n->nmembers++];
	memset(m, 0, sizeof *m);
	m->node = node;
	return m;
}

static void member_set(ttt_node_t *n, const skald_member_t *sm)
{
	member_t *m = member_get(n, sm->node);
	if (m == NULL)
		return;
	m->up_number = sm->up_number;
	m->status = sm->status;
	m->reachable = sm->reachable;
	snprintf(m->addr, sizeof m->addr, "%s", sm->addr);
	if (sm->node == skald_system_node(n->sys))
		snprintf(m->name, sizeof m->name, "%s", n->name);
}

static int monitor_init(skald_actor_t *self, void *state, void *arg)
{
	*(ttt_node_t **)state = arg;
	int rc = skald_cluster_subscribe(self);
	return rc < 0 ? rc : skald_monitor_nodes(self);
}

static int monitor_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	ttt_node_t *n = *(ttt_node_t **)state;
	uv_mutex_lock(&n->lock);
	if (msg->type == SKALD_TYPE_MEMBER) {
		const skald_member_event_t *ev = msg->payload;
		if (ev->kind == SKALD_MEMBER_EV_CURRENT)
			for (size_t i = 0; i < ev->nmembers; i++)
				member_set(n, &ev->members[i]);
		else if (ev->kind != SKALD_MEMBER_EV_REFUSED)
			member_set(n, &ev->member);
	} else if (msg->type == SKALD_TYPE_NODE) {
		/* Member events carry no names; the connections' do. */
		const skald_node_event_t *ev = msg->payload;
		member_t *m = ev->up ? member_get(n, ev->node) : NULL;
		if (m != NULL)
			snprintf(m->name, sizeof m->name, "%s", ev->name);
	}
	uv_mutex_unlock(&n->lock);
	return 0;
}

static const skald_behavior_t monitor_behavior = {
        .state_size = sizeof(ttt_node_t *),
        .init = monitor_init,
        .receive = monitor_receive,
};

/* Up members by age, then the others by status. */
static int member_order(const void *a, const void *b)
{
	const member_t *x = a, *y = b;
	if (x->status != y->status)
		return x->status < y->status ? -1 : 1;
	if (x->up_number != y->up_number)
		return x->up_number < y->up_number ? -1 : 1;
	return x->node < y->node ? -1 : x->node > y->node;
}

json_t *ttt_node_members_json(ttt_node_t *n)
{
	uint64_t host = 0;
	skald_singleton_host(n->lobby, &host);
	member_t copy[MAX_MEMBERS];
	uv_mutex_lock(&n->lock);
	size_t k = 0;
	for (size_t i = 0; i < n->nmembers; i++)
		if (n->members[i].status != 0 && n->members[i].status != SKALD_MEMBER_JOINING)
			copy[k++] = n->members[i];
	uv_mutex_unlock(&n->lock);
	qsort(copy, k, sizeof copy[0], member_order);
	json_t *members = json_array();
	for (size_t i = 0; i < k; i++) {
		const member_t *m = &copy[i];
		char id[20];
		snprintf(id, sizeof id, "%016" PRIx64, m->node);
		const char *status = m->status == SKALD_MEMBER_UP && !m->reachable
		                             ? "unreachable"
		                             : skald_member_status_name(m->status);
		json_array_append_new(members,
		                      json_pack("{s:s, s:s, s:s, s:s, s:b}", "name",
		                                m->name[0] ? m->name : id, "address", m->addr,
		                                "status", status, "node", id, "lobby",
		                                m->node == host && m->status == SKALD_MEMBER_UP));
	}
	return json_pack("{s:s, s:o}", "self", n->name, "members", members);
}

void ttt_node_owner_name(ttt_node_t *n, const char *game, char *buf, size_t len)
{
	uint64_t owner = 0;
	buf[0] = '\0';
	if (skald_sharding_owner(n->games, game, &owner) < 0 || owner == 0)
		return;
	uv_mutex_lock(&n->lock);
	for (size_t i = 0; i < n->nmembers; i++)
		if (n->members[i].node == owner)
			snprintf(buf, len, "%s", n->members[i].name);
	uv_mutex_unlock(&n->lock);
	if (buf[0] == '\0')
		snprintf(buf, len, "%016" PRIx64, owner);
}

/* ------------------------------------------------------------------------ */
/* Starting and stopping                                                     */

static void node_free(ttt_node_t *n)
{
	nodes_remove(n);
	uv_mutex_destroy(&n->lock);
	free(n);
}

int ttt_node_start(const ttt_node_config_t *cfg, ttt_node_t **out, char *why, size_t len)
{
	ttt_node_t *n = calloc(1, sizeof *n);
	if (n == NULL) {
		snprintf(why, len, "out of memory");
		return SKALD_ENOMEM;
	}
	snprintf(n->name, sizeof n->name, "%s", cfg->name);
	uv_mutex_init(&n->lock);
	/* Once, before any node's thread runs: games of every node read it. */
	static uv_once_t hook_once = UV_ONCE_INIT;
	uv_once(&hook_once, set_hook);
	const char *store = cfg->store != NULL ? cfg->store : getenv("SKALD_JOURNAL");
	skald_config_t sc = {
	        .threads = cfg->threads,
	        .name = cfg->name,
	        .journal = store != NULL && store[0] != '\0' ? store : "memory://tictactoe",
	};
	int port = 0, rc = skald_system_new(&sc, &n->sys);
	if (rc < 0) {
		snprintf(why, len, "the journal: %s", skald_journal_open_errmsg());
		uv_mutex_destroy(&n->lock);
		free(n);
		return rc;
	}
	const char *step = "the network";
	if ((rc = nodes_add(n)) < 0)
		goto fail;
	rc = skald_remote_start(n->sys, &(skald_remote_config_t){.secret = cfg->secret});
	if (rc == 0) {
		step = "listening";
		rc = skald_listen(n->sys, cfg->listen, &port);
	}
	if (rc < 0)
		goto fail;
	/* The address others reach this node at: the one it listens on, with
	 * the port the kernel chose for port 0. */
	const char *colon = strrchr(cfg->listen, ':');
	snprintf(n->addr, sizeof n->addr, "%.*s:%d", (int)(colon - cfg->listen), cfg->listen, port);
	const char *self_seed[1] = {n->addr};
	step = "the cluster";
	rc = skald_cluster_start(n->sys, &(skald_cluster_config_t){
	                                         .addr = n->addr,
	                                         .seeds = cfg->nseeds > 0 ? cfg->seeds : self_seed,
	                                         .nseeds = cfg->nseeds > 0 ? cfg->nseeds : 1,
	                                 });
	if (rc == 0) {
		step = "the member table";
		rc = skald_spawn(n->sys, &monitor_behavior, n, NULL, &n->monitor);
	}
	if (rc == 0) {
		step = "the games' region";
		rc = skald_sharding_start(n->sys,
		                          &(skald_sharding_config_t){.type = &tictactoe_game,
		                                                     .shards = cfg->shards,
		                                                     .passivate_ms = PASSIVATE_MS},
		                          &n->games);
	}
	if (rc == 0) {
		step = "the lobby";
		rc = skald_singleton_start(n->sys,
		                           &(skald_singleton_config_t){.name = TTT_LOBBY_NAME,
		                                                       .type = &tictactoe_lobby},
		                           &n->lobby);
	}
	if (rc < 0)
		goto fail;
	char wait_why[256] = "";
	rc = skald_cluster_wait(n->sys, cfg->join_timeout_ms ? cfg->join_timeout_ms : 30000,
	                        wait_why, sizeof wait_why);
	if (rc < 0) {
		snprintf(why, len, "joining the cluster: %s",
		         wait_why[0] ? wait_why : skald_strerror(rc));
		goto stop;
	}
	if (cfg->http != NULL && (rc = ttt_serve_start(n, cfg->http, cfg->max_connections,
	                                               cfg->heartbeat_ms, &n->http, why, len)) < 0)
		goto stop;
	*out = n;
	return 0;
fail:
	snprintf(why, len, "%s: %s", step, skald_strerror(rc));
stop:
	skald_singleton_stop(n->lobby);
	skald_sharding_stop(n->games);
	skald_system_stop(n->sys);
	node_free(n);
	return rc;
}

void ttt_node_stop(ttt_node_t *n, bool leave)
{
	if (n == NULL)
		return;
	/* No new requests, then hand over (or not), then stop. */
	ttt_serve_stop(n->http);
	int rc = leave ? skald_cluster_leave(n->sys, 10000) : 0;
	if (rc < 0)
		fprintf(stderr, "tictactoe: node %s: leaving the cluster: %s\n", n->name,
		        skald_strerror(rc));
	skald_singleton_stop(n->lobby);
	skald_sharding_stop(n->games);
	skald_system_stop(n->sys);
	ttt_serve_free(n->http);
	node_free(n);
}
