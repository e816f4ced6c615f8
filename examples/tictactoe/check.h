/*
 * examples/tictactoe/check.h - the demo's checks: what the journal holds,
 * compared with what the lobby recorded and the bots saw.
 *
 * Histories are read the way `skald replay` reads them: the journal is
 * opened on a private loop of the calling thread and a persistence id's
 * events are folded through the entity type's init and apply, without a
 * system. Everything here runs on main's thread (ttt_fail also from actors
 * while main waits).
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
/* The lobby's history                                                       */

/* A game as lobby.finished recorded it. */
typedef struct {
	char game[TTT_NAME_MAX];
	char result; /* 'X', 'O' or 'D' */
	long moves;
} ttt_record_t;

typedef struct {
	ttt_lobby_t lobby; /* folded from lobby-main */
	uint64_t lobby_seq;
	/* Every game the lobby matched, in order, and the ends it recorded. */
	char (*matched)[TTT_NAME_MAX];
	size_t nmatched, capmatched;
	ttt_record_t *records;
	size_t nrecords, caprecords;
} ttt_survey_t;

/* Reads the lobby's history from the journal at store. On error (reported
 * on stderr) there is nothing to free. */
int ttt_survey(const char *store, ttt_survey_t *sv);
void ttt_survey_free(ttt_survey_t *sv);

/* ------------------------------------------------------------------------ */
/* Comparing                                                                 */

/* Reports a failed check on stderr (the first ten) and counts it. Any
 * thread. */
void ttt_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
unsigned ttt_failures(void);

/* What the games of a run came to, from their histories. */
typedef struct {
	long games, x_wins, o_wins, draws;
	long long moves, events; /* in the games' histories */
	char last[TTT_NAME_MAX];
	ttt_game_t last_game;
} ttt_tally_t;

/* The final board a bot saw of game, or NULL. */
typedef const char *(*ttt_seen_fn)(void *ctx, const char *game);

/*
 * Checks the games the lobby matched after the first `from` of sv (those
 * of this run) against their histories: each replays under the rules and
 * is finished; its result and moves are what the lobby recorded and its
 * board what the bots saw (seen, may be NULL); it holds exactly one event
 * per move plus its start and end, so no refused move wrote anything; its
 * snapshot restores to the same game. Failures go to ttt_fail.
 */
void ttt_check_games(const char *store, const ttt_survey_t *sv, size_t from, ttt_seen_fn seen,
                     void *ctx, ttt_tally_t *t);

#endif /* TTT_CHECK_H */
