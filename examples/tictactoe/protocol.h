/*
 * examples/tictactoe/protocol.h - the messages of the tic-tac-toe cluster.
 *
 * Every payload is a JSON object (a json_t *, sent as compact JSON text):
 * the same messages cross nodes unchanged, and what travels is what a
 * person reads in a log. The runtime frees a payload it owns with
 * json_decref.
 *
 *   player -> lobby   ttt.join      {player, name, bot}            tell, again
 *                                   every TTT_REJOIN_MS while it seeks
 *                     ttt.leave     {player}                       tell
 *   lobby -> player   ttt.update    {waiting, playing}             tell
 *                     ttt.matched   {game, you, opponent, opponent_id}  tell
 *   lobby -> game     ttt.start     {x, o, lobby}                  ask: state | rejected
 *   any -> game       ttt.get       {}                             ask: state | rejected
 *                     ttt.move      {player, cell}                 ask: state | rejected
 *                     ttt.watch     {}                             ask: state | rejected;
 *                                   then a ttt.state after every change, until the
 *                                   watcher stops
 *   game -> lobby     ttt.finished  {game, result, moves}          tell
 *   any -> lobby      ttt.status    {}                             ask: ttt.lobby
 *   stream -> player  ttt.seek      {bot}                          tell
 *   player -> stream  ttt.line      {type, ...}: a line for the client  tell
 *
 * Games and the lobby are reached through sharding and the singleton
 * (node.h), never by a reference kept across calls: the reference of a game
 * changes when it moves to another node.
 *
 * ttt.state: {game, x, o, board: "XO.......", moves, status:
 * "new"|"playing"|"x_won"|"o_won"|"draw", turn: "X"|"O" while playing, seq}.
 * ttt.rejected: {game, error, code, seq}; seq shows that nothing was
 * written; code is one of the TTT_E* words below. ttt.lobby: {waiting,
 * ready, playing, matched, finished, x_wins, o_wins, draws, moves}.
 */
#ifndef TTT_PROTOCOL_H
#define TTT_PROTOCOL_H

#include <jansson.h>

#include <skald/skald.h>

/* Longest player or game id, and player name, with its terminating NUL. */
#define TTT_NAME_MAX 32

/* The id of the seat a game session plays itself (a bot opponent). */
#define TTT_BOT "bot"

/* A player that seeks a game tells the lobby again this often, so that a
 * lobby that moved to another node (and lost what was in flight) hears of
 * it again. */
#define TTT_REJOIN_MS 2000

/* The codes of ttt.rejected, as the HTTP API shows them. */
#define TTT_EUNKNOWN   "unknown_game"
#define TTT_EOVER      "game_over"
#define TTT_ENOTPLAYER "not_a_player"
#define TTT_ETURN      "not_your_turn"
#define TTT_EOCCUPIED  "occupied"
#define TTT_ERANGE     "out_of_range"
#define TTT_EPLAYERS   "bad_players"
#define TTT_ESTARTED   "already_started"
#define TTT_EWATCHERS  "too_many_watchers"
#define TTT_EJOURNAL   "journal"

/* The registered ids; valid after ttt_protocol_register(). */
typedef struct {
	uint32_t join, leave, update, matched;
	uint32_t start, get, move, watch, state, rejected, finished;
	uint32_t status, lobby, seek, line;
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

/* Makes room for one more element in *vp, an array of n elements of size
 * bytes with room for *cap: doubles it when full. 0 or SKALD_ENOMEM (the
 * array is then unchanged). */
int ttt_grow(void *vp, size_t *cap, size_t n, size_t size);

/* A reference as a JSON string ("node.actor.incarnation", as skald_ref_str)
 * and back. ttt_ref_parse returns 0 or SKALD_EDECODE. */
json_t *ttt_ref_json(skald_ref_t ref);
int ttt_ref_parse(const char *s, skald_ref_t *out);

#endif /* TTT_PROTOCOL_H */
