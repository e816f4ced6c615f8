/*
 * examples/tictactoe/check.h - the demo's checks: what the journal holds,
 * compared with what the actors said.
 *
 * Histories are read the way `skald replay` will read them: the journal is
 * opened on a private loop of the calling thread and a persistence id's
 * events are folded through the entity type's init and apply, without a
 * system. Everything here runs on main's thread (ttt_fail also from an
 * actor while main waits for it).
 */
#ifndef TTT_CHECK_H
#define TTT_CHECK_H

#include <stdbool.h>

#include <skald/skald.h>

#include "game.h"
#include "lobby.h"

/* ------------------------------------------------------------------------ */
/* Reading histories                                                         */

typedef struct {
	uv_loop_t loop;
	skald_journal_t *j;
} ttt_reader_t;

/* Opens the journal at uri. On error, nothing needs closing and
 * skald_journal_open_errmsg() says what is wrong with uri. */
int ttt_reader_open(ttt_reader_t *r, const char *uri);

/* Closes the journal and the loop (blocks until both are done). */
void ttt_reader_close(ttt_reader_t *r);

/* Called with every event before it is applied; a negative return stops the
 * fold with that code. The event is borrowed for the call. */
typedef int (*ttt_event_fn)(const skald_event_t *ev, void *arg);

/*
 * Folds the history of entity `id` of `type` from its first event (never
 * from a snapshot, so that the result is independent of the entity's own
 * recovery) into state: type->state_size bytes, zeroed by the caller, which
 * releases it with type->fini afterwards, also on failure. *seq gets the
 * last seq applied (0: no events). each may be NULL. Blocks.
 */
int ttt_reader_fold(ttt_reader_t *r, const skald_entity_type_t *type, const char *id, void *state,
                    uint64_t *seq, ttt_event_fn each, void *arg);

/* ------------------------------------------------------------------------ */
/* The store at one moment                                                   */

/* A game folded from its history, and the seq it ends at. */
typedef struct {
	ttt_game_t g;
	uint64_t seq;
} ttt_game_view_t;

typedef struct {
	ttt_lobby_t lobby; /* folded from lobby-main */
	uint64_t lobby_seq;
	/* By game number: the result lobby.closed recorded ('X', 'O', 'D' or 0)
	 * and its moves. */
	char *result;
	long *moves;
	size_t cap;
	ttt_game_view_t *open; /* the open games, folded, as in lobby.open */
} ttt_survey_t;

/* Reads the lobby and its open games from the journal at store. On error
 * (reported on stderr) there is nothing to free. */
int ttt_survey(const char *store, ttt_survey_t *sv);
void ttt_survey_free(ttt_survey_t *sv);

/* The games the lobby has open whose own history is not finished. */
long ttt_unfinished(const ttt_survey_t *sv);

/* ------------------------------------------------------------------------ */
/* Comparing                                                                 */

/* Reports a failed check on stderr (the first ten) and counts it. */
void ttt_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
unsigned ttt_failures(void);

/* What the games of a run came to, from their histories. */
typedef struct {
	long games, x_wins, o_wins, draws;
	long long moves, events;                           /* written by this run */
	long unfinished_at_stop, moves_at_stop, continued; /* the restart test */
	char last[TTT_NAME_MAX];
	ttt_game_t last_game;
} ttt_tally_t;

/*
 * Checks the games of a run (those open in `before` and those opened since)
 * against their histories and the lobby's records in `after`: finished,
 * results and moves as the lobby recorded them, snapshots that restore to
 * the same state, and (ttt_recover_and_compare) the same state again when
 * recovered in a fresh system. With mid (the store when the restart test
 * stopped a system), also that every game unfinished then went on from its
 * board. Failures go to ttt_fail.
 */
void ttt_check_run(const char *store, const ttt_survey_t *before, const ttt_survey_t *mid,
                   const ttt_survey_t *after, ttt_tally_t *t);

#endif /* TTT_CHECK_H */
