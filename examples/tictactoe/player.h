/*
 * examples/tictactoe/player.h - a simulated player.
 *
 * A player asks the lobby for a game, plays random legal moves until the
 * game is over, and asks again, until the lobby says there are no more
 * games. Now and then it also tries a move the rules forbid (an occupied
 * cell, a cell out of range, a move out of turn) and checks that the game
 * rejects it without writing anything.
 *
 * The player keeps no state of its own between games: after a restart a new
 * player of the same name joins, and the lobby sends it back to its
 * unfinished game, whose state it asks for.
 */
#ifndef TTT_PLAYER_H
#define TTT_PLAYER_H

#include <stdatomic.h>

#include <skald/skald.h>

#include "protocol.h"

/* What the players of a run did, summed as it happens (the counts are
 * read while the players play). */
typedef struct {
	_Atomic long games, moves, probes, rejected, unanswered, errors;
	_Atomic long done; /* players who heard ttt.done */
	_Atomic long gone; /* players who walked away (leave_after) */
} ttt_player_totals_t;

/* The spawn argument; the player owns it (freed with free()). */
typedef struct {
	char name[TTT_NAME_MAX];
	skald_ref_t lobby;
	uint64_t seed;
	unsigned probe_percent; /* chance of an illegal move per turn, 0..100 */
	/* 0, or walk away on the first turn after this many moves, leaving
	 * the game unfinished (how the restart test stops mid-game). */
	unsigned long leave_after;
	ttt_player_totals_t *totals; /* borrowed; must outlive the player */
} ttt_player_arg_t;

extern const skald_behavior_t ttt_player;

#endif /* TTT_PLAYER_H */
