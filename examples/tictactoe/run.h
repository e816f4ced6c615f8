/*
 * examples/tictactoe/run.h - running the example on a system.
 *
 * Main starts and stops systems and waits; inside, actors drive the run: a
 * referee starts the lobby (through node.h) and the players and watches the
 * lobby until the run is over, and a verifier recovers every game of a run
 * in a fresh system.
 */
#ifndef TTT_RUN_H
#define TTT_RUN_H

#include <stdbool.h>
#include <stdint.h>

#include "check.h"

typedef struct {
	const char *store;
	long games, players;
	uint64_t seed;
	unsigned threads; /* scheduler threads; 0: one per core */
	bool restart_test;
} ttt_options_t;

/* What happened in one run (one system). */
typedef struct {
	long long probes, rejected, unanswered; /* illegal moves tried */
	long long errors;                       /* protocol errors the players saw */
	long long lobby_errors;                 /* inconsistencies the lobby saw */
	bool complete;                          /* every game of the target finished */
} ttt_phase_t;

void ttt_phase_add(ttt_phase_t *sum, const ttt_phase_t *p);

/*
 * Starts a system on o->store, configures the lobby for `games` more games
 * and plays until they are finished and every player knows it; or, partial,
 * until players walked away mid-game (each after its own number of moves,
 * on its turn) and play stopped. Then stops the system, with whatever is in
 * flight. phase varies the players' random streams. Returns 0 or the error
 * that ended the run (reported on stderr).
 */
int ttt_run_phase(const ttt_options_t *o, int phase, long games, bool partial, ttt_phase_t *out);

/* Recovers each game of ids (n of them) in a fresh system on store, asks for
 * its state and compares it with views[i]; then checks that the game, being
 * over, refuses a move and writes nothing. Failures go to ttt_fail. */
void ttt_recover_and_compare(const char *store, char (*ids)[TTT_NAME_MAX],
                             const ttt_game_view_t *views, size_t n);

#endif /* TTT_RUN_H */
