/*
 * examples/tictactoe/node.h - one node of the tic-tac-toe cluster.
 *
 * A node is a system with its network and cluster membership, a sharding
 * region for the games (GameSession entities, game.h), its part of the
 * lobby singleton (GameLobby, lobby.h), a table of the members it knows
 * (for GET /cluster), and optionally the HTTP API (serve.h). Several nodes
 * may live in one process (the demo runs three): the lobby, the games and
 * the players find their node's handles through ttt_node_of().
 */
#ifndef TTT_NODE_H
#define TTT_NODE_H

#include <stdbool.h>

#include <jansson.h>
#include <skald/skald.h>

typedef struct ttt_node_config_s {
	const char *name;   /* the node's name (logs, GET /cluster); required */
	const char *listen; /* cluster address, tcp://HOST:PORT (PORT 0: any) */
	const char *const *seeds;
	size_t nseeds;            /* none: this node forms the cluster */
	const char *secret;       /* the cluster secret; required */
	const char *store;        /* journal URI; NULL: SKALD_JOURNAL, else memory://tictactoe */
	unsigned threads;         /* scheduler threads; 0: one per core */
	unsigned shards;          /* shards of the games; 0: 64 */
	const char *http;         /* HOST:PORT of the HTTP API; NULL: none */
	unsigned max_connections; /* HTTP; 0: 1024 */
	unsigned heartbeat_ms;    /* matchmaking heartbeats; 0: 5000 */
	unsigned join_timeout_ms; /* how long to wait to be up; 0: 30000 */
} ttt_node_config_t;

typedef struct ttt_node_s ttt_node_t;

/*
 * Starts a node and waits until it is up in the cluster. On failure, why
 * (len bytes) says what went wrong and nothing is left running. Not from a
 * scheduler thread. The message types must be registered
 * (ttt_protocol_register). Returns 0 or a negative code.
 */
int ttt_node_start(const ttt_node_config_t *cfg, ttt_node_t **out, char *why, size_t len);

/*
 * Stops the node and frees it. With leave, it leaves the cluster first, so
 * that its games and the lobby are handed over; without, it goes as if it
 * had crashed: no goodbye, its connections close and the others see it
 * down (its entities still finish the write in flight). Not from a
 * scheduler thread. Safe with NULL.
 */
void ttt_node_stop(ttt_node_t *n, bool leave);

/* The node of sys, or NULL. Any thread. */
ttt_node_t *ttt_node_of(skald_system_t *sys);

/* The node's system, name, the games' region, the lobby's proxy; borrowed
 * while the node runs. ttt_node_games takes a system (NULL if it is not a
 * node's). */
skald_system_t *ttt_node_system(const ttt_node_t *n);
const char *ttt_node_name(const ttt_node_t *n);
skald_sharding_t *ttt_node_games(skald_system_t *sys);
skald_singleton_t *ttt_node_lobby(const ttt_node_t *n);
/* The cluster address others reach it at, and the HTTP port (0: none). */
const char *ttt_node_addr(const ttt_node_t *n);
int ttt_node_http_port(const ttt_node_t *n);

/* {"self": NAME, "members": [{"name", "address", "status", "node", "lobby"}]}
 * as GET /cluster answers: the members this node knows, up ones oldest
 * first, then those leaving, down or removed. New reference. Any thread. */
json_t *ttt_node_members_json(ttt_node_t *n);

/* The name of the member that owns game's shard in this node's view, in
 * buf (len bytes); "" while none does. Any thread. */
void ttt_node_owner_name(ttt_node_t *n, const char *game, char *buf, size_t len);

#endif /* TTT_NODE_H */
