/*
 * examples/tictactoe/lobby.h - the lobby, the persistent entity "lobby".
 *
 * One lobby exists ("lobby-main", see node.h). It pairs waiting players,
 * opens a game session for each pair and closes it when the game is over.
 * Its events record which games are open, so that after a restart it knows
 * every unfinished game, starts those sessions again (they recover their
 * moves from the journal) and sends each returning player back to its game.
 * Events, at version 1:
 *
 *   lobby.opened  {"game": "g7", "x": "p1", "o": "p2"}
 *   lobby.closed  {"game": "g7", "result": "X"|"O"|"draw", "moves": 7}
 *
 * Games are named g1, g2, ... in the order they were opened.
 */
#ifndef TTT_LOBBY_H
#define TTT_LOBBY_H

#include <skald/skald.h>

#include "protocol.h"

typedef struct {
	char game[TTT_NAME_MAX], x[TTT_NAME_MAX], o[TTT_NAME_MAX];
} ttt_open_game_t;

/* A player or a session, by name, with its live reference. */
typedef struct {
	char name[TTT_NAME_MAX];
	skald_ref_t ref;
} ttt_seat_t;

typedef struct {
	/* The lobby's history, changed only by apply and restore. */
	uint64_t opened, finished;             /* games ever opened, closed */
	uint64_t x_wins, o_wins, draws, moves; /* of the closed games */
	ttt_open_game_t *open;                 /* in the order opened */
	size_t nopen, capopen;

	/* The session, never persisted: what this incarnation is doing. */
	uint64_t target;     /* open no game beyond this number (ttt.configure) */
	unsigned errors;     /* inconsistencies seen (reported in ttt.lobby) */
	ttt_seat_t *waiting; /* players waiting for an opponent, oldest first */
	size_t nwaiting, capwaiting;
	ttt_seat_t *sessions; /* the live session of each open game */
	size_t nsessions, capsessions;
	void *writing; /* what waits for the event being stored */
} ttt_lobby_t;

extern const skald_entity_type_t tictactoe_lobby;

#endif /* TTT_LOBBY_H */
