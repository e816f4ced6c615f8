/*
 * tests/tool/timed.h - a game with known timestamps, and a snapshot of it
 * that no history leads to, for the time-travel and web tests.
 */
#ifndef SKALD_TESTS_TOOL_TIMED_H
#define SKALD_TESTS_TOOL_TIMED_H

#include "tests/tool/tt.h"

/* Imports tt_game as a new persistence id ("game-...") on s, its event seq N
 * written at 2026-12-03T14:0(N-1):00Z (one a minute from 14:00 to 14:08).
 * Returns the id (tt_pid's ring). */
const char *tt_timed_game(const tt_store_t *s);

/* Saves a snapshot of tt_timed_game's pid at seq 4, saved at 14:03:30,
 * whose board (".OX.X....") differs from the one the events give
 * ("O.X.X...."): a fold that starts from it shows it. */
void tt_fake_snapshot(const tt_store_t *s, const char *pid);

/* The board after seq 5 folded from that snapshot (bob plays 6). */
#define TT_FAKE_BOARD_5 " . | O | X \n . | X | . \n O | . | . \n"

#endif /* SKALD_TESTS_TOOL_TIMED_H */
