/*
 * examples/tictactoe/game.h - GameSession, the persistent entity "game".
 *
 * One entity per game, placed by sharding on the member that owns its id
 * (node.h); persistence ids are "game-ID". Events, all at version 1:
 *
 *   game.started   {"x": "p1", "o": "p2", "lobby": true}   lobby: opened by the
 *                                                          lobby (optional)
 *   game.moved     {"player": "p1", "cell": 4}             cells 0..8, row by row
 *   game.finished  {"result": "X", "winner": "p1"}         or {"result": "draw"}
 *
 * X moves first. A move is a game.moved event written before it is applied;
 * a move that ends the game is stored together with its game.finished in
 * one atomic write. An illegal move is answered with ttt.rejected and
 * writes nothing. apply checks every event against the rules, so a history
 * that breaks them fails recovery instead of producing a board nobody could
 * have played.
 *
 * A seat whose player id is TTT_BOT is played by the session itself: after
 * each move of the other player (and after a recovery that finds it on
 * turn) it writes the bot's move, chosen from the board alone.
 *
 * This file and game.c depend only on libskald and protocol.c, so that the
 * type can be built into a shared object for `skald replay` and `skald
 * web`. What the node adds (telling the lobby that a game it opened is
 * over) comes through ttt_game_on_finished.
 */
#ifndef TTT_GAME_H
#define TTT_GAME_H

#include <stdbool.h>

#include <skald/skald.h>

#include "protocol.h"

/* Watchers of one game at once (ttt.watch); one more is refused with
 * TTT_EWATCHERS. */
#define TTT_WATCHERS 16

typedef enum {
	TTT_NEW, /* no game.started yet */
	TTT_PLAYING,
	TTT_X_WON,
	TTT_O_WON,
	TTT_DRAW,
} ttt_status_t;

typedef struct {
	/* The game, changed only by init, apply and restore. */
	char id[TTT_NAME_MAX];
	char x[TTT_NAME_MAX], o[TTT_NAME_MAX];
	char board[10]; /* 9 cells of '.', 'X' or 'O', then a NUL */
	unsigned moves;
	ttt_status_t status;
	bool lobby; /* opened by the lobby, which hears when it is over */

	/* The session: who to tell when the game changes. Live references
	 * learnt from ttt.watch; never persisted, never touched by apply. */
	skald_ref_t watchers[TTT_WATCHERS];
	unsigned nwatchers;
	void *writing; /* the command whose events are being stored */
} ttt_game_t;

extern const skald_entity_type_t tictactoe_game;

/* Called on the game's thread once a game opened by the lobby is over (its
 * last events stored), by the node that runs it; NULL (the default, and in
 * `skald replay`) does nothing. */
extern void (*ttt_game_on_finished)(skald_actor_t *self, const ttt_game_t *g);

/* The outcome of a board: 'X' or 'O' for a line of three, 'D' for a full
 * board without one, 0 while the game goes on. */
char ttt_outcome(const char board[9]);

/* The name of a status, as in ttt.state and snapshots ("x_won", ...). */
const char *ttt_status_name(ttt_status_t s);

/* Whose turn it is while playing: 'X' or 'O'. */
char ttt_turn(const ttt_game_t *g);

/* The cell the bot plays with mark on board: a win, else a block, else the
 * centre, a corner, a side; -1 on a full board. */
int ttt_bot_cell(const char board[9], char mark);

#endif /* TTT_GAME_H */
