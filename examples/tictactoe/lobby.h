/*
 * examples/tictactoe/lobby.h - GameLobby, the persistent entity "lobby".
 *
 * One lobby exists in the cluster: a singleton (skald/sharding.h) named
 * "main", so its persistence id is "lobby-main". It lives on the oldest
 * member and moves, with its state, when that member goes. It pairs players
 * who seek a game, opens a game session for each pair, and keeps track of
 * the games it opened until they end. Its matchmaking state is made of its
 * events, at version 1:
 *
 *   lobby.waiting   {"player", "name", "ref"}   a player waits (ref: its actor)
 *   lobby.left      {"player"}                  it stopped waiting
 *   lobby.matched   {"game", "x", "o", "x_name", "o_name", "x_ref", "o_ref"}
 *                                               two players (or one and the bot)
 *                                               are ready: their game is opening
 *   lobby.started   {"game"}                    the game session has started
 *   lobby.finished  {"game", "result", "moves"} it is over ("X", "O", "draw")
 *
 * so that a lobby that moved knows who waits, which games are being opened
 * (it opens them again: starting a game is idempotent) and which are in
 * progress (it asks each, and records those that ended while it moved).
 * Games are named g1, g2, ... in the order they were matched.
 *
 * A player is in at most one of: the waiting list, a game being opened or
 * in progress. A player that joins while its game is in progress is sent
 * back to it (ttt.matched again): a client that reconnects, or a player
 * restarted on another node, resumes its game.
 */
#ifndef TTT_LOBBY_H
#define TTT_LOBBY_H

#include <stdbool.h>

#include <skald/skald.h>

#include "protocol.h"

/* Players waiting at once; one more is told the lobby is full. */
#define TTT_LOBBY_MAX_WAITING 10000

typedef struct {
	char id[TTT_NAME_MAX], name[TTT_NAME_MAX];
	skald_ref_t ref;
} ttt_waiter_t;

/* A game the lobby opened and that is not over. */
typedef struct {
	char game[TTT_NAME_MAX];
	ttt_waiter_t x, o;
	bool started;   /* lobby.started is stored */
	bool confirmed; /* session: the game answered that it started */
	bool asking;    /* session: a question to the game is on its way */
	bool retry;     /* session: ask again when the retry timer fires */
	/* session: the player came back while the game was in progress; it
	 * is sent back to the game if the game is still on, once the game
	 * has answered. */
	bool back_x, back_o;
} ttt_match_t;

/* A player's wish to play, heard and not yet stored. */
typedef struct {
	ttt_waiter_t who;
	bool bot; /* against the bot, at once */
} ttt_join_t;

/* A game's end, heard and not yet stored. */
typedef struct {
	char game[TTT_NAME_MAX], result[8];
	long moves;
} ttt_result_t;

typedef struct {
	/* The lobby's history, changed only by apply and restore. */
	uint64_t matched, finished;            /* games ever matched, finished */
	uint64_t x_wins, o_wins, draws, moves; /* of the finished games */
	ttt_waiter_t *waiting;                 /* oldest first */
	size_t nwaiting, capwaiting;
	ttt_match_t *games; /* being opened or in progress, oldest first */
	size_t ngames, capgames;

	/* The session, never persisted: decisions heard and not yet
	 * stored, each stored by the next write (one at a time). */
	ttt_join_t *joins; /* players to add to the waiting list */
	size_t njoins, capjoins;
	ttt_waiter_t *lefts; /* waiting players to remove (by id) */
	size_t nlefts, caplefts;
	ttt_result_t *results;
	size_t nresults, capresults;
	void *writing; /* the write in flight (what follows it), or NULL */
	unsigned errors;
} ttt_lobby_t;

extern const skald_entity_type_t tictactoe_lobby;

/* The singleton's name: the lobby's persistence id is "lobby-main". */
#define TTT_LOBBY_NAME "main"

#endif /* TTT_LOBBY_H */
