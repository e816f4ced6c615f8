/*
 * examples/tictactoe/protocol.h - the messages of the tic-tac-toe example.
 *
 * Every payload is a JSON object (a json_t *): one codec serves every type,
 * so the same messages can cross nodes unchanged once the cluster layer
 * exists, and what travels is what a person reads in a log. The runtime
 * frees a payload it owns with json_decref.
 *
 *   player -> lobby  ttt.join       {player}                    tell
 *   lobby -> player  ttt.assigned   {game, mark, x, o, session} tell
 *                    ttt.retry      {reason}   (join again)     tell
 *                    ttt.done       {}         (no more games)  tell
 *   lobby -> game    ttt.start      {x, o}                      ask: ttt.state | ttt.rejected
 *   any -> game      ttt.get        {player?}                   ask: ttt.state
 *   player -> game   ttt.move       {player, cell}              ask: ttt.state | ttt.rejected
 *   game -> player   ttt.state      (after the opponent's move) tell
 *   game -> lobby    ttt.finished   {game, result, moves}       tell
 *   referee -> lobby ttt.configure  {games}                     ask: ttt.lobby
 *                    ttt.status     {}                          ask: ttt.lobby
 *
 * A ttt.state payload: {game, x, o, board: "XO.......", moves, status:
 * "new"|"playing"|"x_won"|"o_won"|"draw", turn: "X"|"O" while playing, seq}.
 * A ttt.rejected payload: {game, error, seq}; seq shows that nothing was
 * written. In ttt.assigned, session is the game's reference (ttt_ref_json).
 * ttt.lobby: the lobby's counts, {opened, finished, open, x_wins, o_wins,
 * draws, moves, target, errors, waiting, seq, complete}.
 *
 * A player acts on the states it gets: on its turn it asks ttt.move; out of
 * turn it waits for the ttt.state the game sends after the opponent's move.
 * Its ttt.get and ttt.move also tell the game where that player is now.
 */
#ifndef TTT_PROTOCOL_H
#define TTT_PROTOCOL_H

#include <jansson.h>

#include <skald/skald.h>

/* Longest player or game name, with its terminating NUL. */
#define TTT_NAME_MAX 32

/* The registered ids; valid after ttt_protocol_register(). */
typedef struct {
	uint32_t join, assigned, retry, done;
	uint32_t start, get, move, state, rejected, finished;
	uint32_t configure, status, lobby;
} ttt_types_t;

extern ttt_types_t ttt_type;

/* Registers every message type of the example (idempotent). Thread-safe. */
int ttt_protocol_register(void);

/* The JSON object carried by msg, borrowed; NULL if msg is not one of the
 * example's types or its payload is not an object. */
json_t *ttt_payload(skald_msg_t *msg);

/* The string member key of obj, borrowed, or NULL. */
const char *ttt_str(const json_t *obj, const char *key);

/* Copies the string member key of obj into dst (TTT_NAME_MAX bytes); 0, or
 * SKALD_EDECODE when it is missing, empty or too long. */
int ttt_name(const json_t *obj, const char *key, char *dst);

/* Sends/replies a JSON payload. The payload is stolen in every case: on
 * failure it is freed here, so callers never leak on an error path. */
int ttt_tell(skald_actor_t *self, skald_ref_t to, uint32_t type, json_t *payload);
int ttt_reply(skald_actor_t *self, const skald_msg_t *request, uint32_t type, json_t *payload);

/*
 * What is needed to answer a request after the handler that received it
 * returned: an entity replies only once its events are stored, from the
 * persist callback.
 */
typedef struct {
	skald_msg_t msg; /* sender and ask id; the payload is not kept */
} ttt_pending_t;

void ttt_pending_keep(ttt_pending_t *p, const skald_msg_t *request);
int ttt_pending_reply(skald_actor_t *self, const ttt_pending_t *p, uint32_t type, json_t *payload);

/* A reference as a JSON string ("node.actor.incarnation", as skald_ref_str)
 * and back. ttt_ref_parse returns 0 or SKALD_EDECODE. */
json_t *ttt_ref_json(skald_ref_t ref);
int ttt_ref_parse(const char *s, skald_ref_t *out);

#endif /* TTT_PROTOCOL_H */
