/*
 * examples/tictactoe/player.h - Player: one actor per connected client.
 *
 * A player lives on the node its client reached (POST /players), under the
 * cluster-wide name "ttt.player/ID", so that a request on any node finds
 * it. It talks to the lobby, wherever the lobby lives: while its client
 * seeks a game (POST /matchmaking) it joins the lobby, again every
 * TTT_REJOIN_MS so that a lobby that moved hears of it, and it passes what
 * the lobby says to the client's stream as JSON lines ({"type": "waiting"},
 * then {"type": "matched", ...}). A client that goes away before it is
 * matched leaves the lobby.
 *
 * A bot of the demo is a player that plays by itself (autoplay): it seeks
 * games, watches each game it is matched in and plays random legal moves
 * on its turn (sometimes also an illegal one, which must be refused) through
 * the same operations the HTTP API uses (api.h).
 *
 * A player that has had no client for TTT_PLAYER_IDLE_MS stops.
 */
#ifndef TTT_PLAYER_H
#define TTT_PLAYER_H

#include <stdbool.h>

#include <jansson.h>
#include <skald/skald.h>

#include "protocol.h"

#define TTT_PLAYER_IDLE_MS (30 * 60 * 1000)

/* What a bot reports, called on its thread; ctx is the autoplay's. */
typedef struct ttt_autoplay_s {
	uint64_t seed;          /* of its moves */
	unsigned probe_percent; /* chance of an illegal move on a turn */
	unsigned think_ms;      /* it waits 0 to 2 * think_ms before each move */
	/* A game to go on with first (a bot started again on another node
	 * after its own node went), or "". */
	char resume[TTT_NAME_MAX];
	void *ctx;
	/* May it seek another game now? */
	bool (*want_game)(void *ctx, const char *player);
	/* It plays game. */
	void (*playing)(void *ctx, const char *player, const char *game);
	/* The game is over; state is the API's final state (borrowed). */
	void (*game_over)(void *ctx, const char *player, const char *game, const json_t *state);
	/* Its game answered a request (a watch or a move) from the session
	 * on node. */
	void (*answered)(void *ctx, const char *game, uint64_t node);
	/* An illegal move it tried was refused (1), or accepted (0: a bug). */
	void (*probed)(void *ctx, bool refused);
	/* Something went wrong that should not have (what). */
	void (*fault)(void *ctx, const char *player, const char *what);
} ttt_autoplay_t;

/*
 * Starts player id (named name) on sys. autoplay (copied) makes it a bot;
 * NULL makes it a client's player, registered in the cluster as
 * "ttt.player/ID". Errors as skald_spawn, and those of
 * skald_cluster_register (SKALD_EEXISTS: the id is taken; SKALD_EFULL),
 * after which nothing is left running. Any thread.
 */
int ttt_player_start(skald_system_t *sys, const char *id, const char *name,
                     const ttt_autoplay_t *autoplay, skald_ref_t *out);

#endif /* TTT_PLAYER_H */
