/*
 * examples/tictactoe/api.h - the operations behind the HTTP API, for actors.
 *
 * The HTTP gateway (serve.c) and the demo's bots (player.c) call the same
 * functions: they reach a game through the node's sharding region, from
 * whichever node they run on, and come back with what the API answers: an
 * HTTP status and a JSON body,
 *
 *   200 / 201  a game's state (ttt_api_state) or {"game_id"}
 *   404        {"error", "code": "unknown_game"}
 *   409        an illegal move or not the player's turn (nothing written):
 *              code "occupied", "not_your_turn", "game_over", "not_a_player"
 *   422        {"code": "unknown_player"} (creating a game)
 *   503        {"code": "unavailable"}: the game is moving to another node
 *              or recovering, or its node went; retry (Retry-After: 1). A
 *              move answered 503 may have been applied or not: read the
 *              game to know.
 *
 * Every callback runs once, on the caller's thread, with the body (owned
 * by the callback); ttt_api_create_game's may run before it returns. The
 * caller must be an actor of a node (node.h). Functions return 0, or a
 * negative code when the call could not start (the callback then never
 * runs).
 */
#ifndef TTT_API_H
#define TTT_API_H

#include <stdbool.h>

#include <jansson.h>
#include <skald/skald.h>

#include "protocol.h"

/* How long an operation waits for its game. */
#define TTT_API_ASK_MS 5000

/* status and body (owned by the callee); game: the reference of the game
 * session that answered (null when it did not). */
typedef void (*ttt_api_fn)(skald_actor_t *self, int status, json_t *body, skald_ref_t game,
                           void *arg);

/* POST /games: a game of x and o, each a player id that the cluster's
 * registry knows (waits up to 3 s for it) or TTT_BOT. 201
 * {"game_id"}. */
int ttt_api_create_game(skald_actor_t *self, const char *x, const char *o, ttt_api_fn cb,
                        void *arg);

/* POST /games/{id}/moves: player plays cell (0..8, row by row). */
int ttt_api_move(skald_actor_t *self, const char *game, const char *player, int cell, ttt_api_fn cb,
                 void *arg);

/* GET /games/{id}. */
int ttt_api_get(skald_actor_t *self, const char *game, ttt_api_fn cb, void *arg);

/* As ttt_api_get, and self hears a ttt.state (the game's own shape,
 * ttt_api_state converts it) after every change, until self stops or the
 * game's session stops (watch `game` in the callback to know). */
int ttt_api_watch(skald_actor_t *self, const char *game, ttt_api_fn cb, void *arg);

/* A game's ttt.state as the API shows it: {"game_id", "x", "o", "board",
 * "next": PLAYER_ID or null, "result": "x"|"o"|"draw"|null, "moves"}. New
 * reference; NULL if st is not a game state. */
json_t *ttt_api_state(const json_t *st);

/* {"error": MESSAGE, "code": code}. New reference. */
json_t *ttt_api_error(const char *code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Whether s can be a player or game id: 1 to 31 letters, digits, '-' or
 * '_'. */
bool ttt_api_id_ok(const char *s);

/* A fresh random id: prefix and 16 hex digits, in out (TTT_NAME_MAX). */
void ttt_api_new_id(char prefix, char *out);

/* The registry name of a player's actor ("ttt.player/ID"), in out. */
void ttt_api_player_name(const char *player, char *out, size_t len);

#endif /* TTT_API_H */
