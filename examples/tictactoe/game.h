/*
 * examples/tictactoe/game.h - a game session, the persistent entity "game".
 *
 * Persistence ids are "game-ID" (the lobby names games g1, g2, ...). Events,
 * all at version 1 (the envelope's version):
 *
 *   game.started   {"x": "p1", "o": "p2"}
 *   game.moved     {"player": "p1", "cell": 4}          cells 0..8, row by row
 *   game.finished  {"result": "X", "winner": "p1"}      or {"result": "draw"}
 *
 * X moves first. A move that ends the game is stored together with its
 * game.finished in one atomic write. apply checks every event against the
 * rules, so a history that breaks them fails recovery instead of producing
 * a board nobody could have played.
 *
 * This file and game.c depend only on libskald and protocol.c, so that the
 * type can be built into a shared object for `skald replay`.
 */
#ifndef TTT_GAME_H
#define TTT_GAME_H

#include <skald/skald.h>

#include "protocol.h"

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

	/* The session: who to tell when the game changes. Live references
	 * of this incarnation, learnt from commands; never persisted, never
	 * touched by apply. */
	skald_ref_t lobby;     /* the sender of ttt.start */
	skald_ref_t player[2]; /* X's and O's latest sender */
	void *writing;         /* the command whose events are being stored */
} ttt_game_t;

extern const skald_entity_type_t tictactoe_game;

/* The outcome of a board: 'X' or 'O' for a line of three, 'D' for a full
 * board without one, 0 while the game goes on. */
char ttt_outcome(const char board[9]);

/* The name of a status, as in ttt.state and snapshots ("x_won", ...). */
const char *ttt_status_name(ttt_status_t s);

/* Whose turn it is while playing: 'X' or 'O'. */
char ttt_turn(const ttt_game_t *g);

#endif /* TTT_GAME_H */
