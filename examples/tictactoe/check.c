/*
 * examples/tictactoe/check.c - the demo's checks (see check.h).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

int ttt_reader_open(ttt_reader_t *r, const char *uri)
{
	int rc = uv_loop_init(&r->loop);
	if (rc < 0)
		return rc;
	if ((rc = skald_journal_open(&r->loop, uri, &r->j)) < 0)
		uv_loop_close(&r->loop);
	return rc;
}

static void closed(skald_journal_t *j, void *arg)
{
	*(bool *)arg = true;
}

void ttt_reader_close(ttt_reader_t *r)
{
	bool done = false;
	if (skald_journal_close(r->j, closed, &done) == 0)
		while (!done)
			uv_run(&r->loop, UV_RUN_ONCE);
	/* Whatever the store still has to close (its idle handles) goes now. */
	uv_run(&r->loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&r->loop) != 0)
		fprintf(stderr, "tictactoe: the journal reader left handles open\n");
}

typedef struct {
	const skald_entity_type_t *type;
	void *state;
	uint64_t seq;
	ttt_event_fn each;
	void *arg;
	bool done;
	int status;
} fold_t;

static int fold_events(skald_journal_t *j, const skald_event_t *events, size_t n, void *arg)
{
	fold_t *f = arg;
	for (size_t i = 0; i < n; i++) {
		int rc = f->each != NULL ? f->each(&events[i], f->arg) : 0;
		if (rc == 0)
			rc = f->type->apply(f->state, &events[i]);
		if (rc < 0) {
			fprintf(stderr, "tictactoe: %s seq %llu (%s) does not apply: %s\n",
			        events[i].persistence_id, (unsigned long long)events[i].seq,
			        events[i].type, skald_strerror(rc));
			return rc;
		}
		f->seq = events[i].seq;
	}
	return 0;
}

static void fold_done(skald_journal_t *j, int status, void *arg)
{
	fold_t *f = arg;
	f->status = status;
	f->done = true;
}

int ttt_reader_fold(ttt_reader_t *r, const skald_entity_type_t *type, const char *id, void *state,
                    uint64_t *seq, ttt_event_fn each, void *arg)
{
	char pid[128];
	snprintf(pid, sizeof pid, "%s-%s", type->name, id);
	fold_t f = {type, state, 0, each, arg, false, 0};
	int rc = type->init != NULL ? type->init(state, id) : 0;
	if (rc < 0)
		return rc;
	rc = skald_journal_read(r->j, pid, 1, SKALD_SEQ_MAX, SKALD_SEQ_MAX, fold_events, fold_done,
	                        &f);
	if (rc < 0)
		return rc;
	while (!f.done)
		uv_run(&r->loop, UV_RUN_ONCE);
	*seq = f.seq;
	return f.status;
}

/* ------------------------------------------------------------------------ */
/* Failed checks                                                             */

static atomic_uint failures;

void ttt_fail(const char *fmt, ...)
{
	if (atomic_fetch_add(&failures, 1) >= 10)
		return; /* the first few say enough */
	va_list ap;
	va_start(ap, fmt);
	fputs("tictactoe: check failed: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

unsigned ttt_failures(void)
{
	return atomic_load(&failures);
}

/* ------------------------------------------------------------------------ */
/* The lobby's history                                                       */

static int record(const skald_event_t *ev, void *arg)
{
	ttt_survey_t *sv = arg;
	const char *game = ttt_str(ev->data, "game");
	if (strcmp(ev->type, "lobby.matched") == 0 && game != NULL) {
		if (ttt_grow(&sv->matched, &sv->capmatched, sv->nmatched, sizeof *sv->matched) < 0)
			return SKALD_ENOMEM;
		snprintf(sv->matched[sv->nmatched++], TTT_NAME_MAX, "%s", game);
	} else if (strcmp(ev->type, "lobby.finished") == 0 && game != NULL) {
		const char *r = ttt_str(ev->data, "result");
		if (r == NULL)
			return SKALD_EDECODE;
		if (ttt_grow(&sv->records, &sv->caprecords, sv->nrecords, sizeof *sv->records) < 0)
			return SKALD_ENOMEM;
		ttt_record_t *rec = &sv->records[sv->nrecords++];
		snprintf(rec->game, sizeof rec->game, "%s", game);
		rec->result = strcmp(r, "draw") == 0 ? 'D' : r[0];
		rec->moves = (long)json_integer_value(json_object_get(ev->data, "moves"));
	}
	return 0;
}

void ttt_survey_free(ttt_survey_t *sv)
{
	tictactoe_lobby.fini(&sv->lobby);
	free(sv->matched);
	free(sv->records);
	memset(sv, 0, sizeof *sv);
}

int ttt_survey(const char *store, ttt_survey_t *sv)
{
	ttt_reader_t r;
	memset(sv, 0, sizeof *sv);
	int rc = ttt_reader_open(&r, store);
	if (rc < 0) {
		fprintf(stderr, "tictactoe: --store %s: %s\n", store, skald_journal_open_errmsg());
		return rc;
	}
	rc = ttt_reader_fold(&r, &tictactoe_lobby, TTT_LOBBY_NAME, &sv->lobby, &sv->lobby_seq,
	                     record, sv);
	if (rc < 0)
		fprintf(stderr, "tictactoe: the lobby's history does not replay: %s (%s)\n",
		        skald_strerror(rc), skald_journal_errmsg(r.j));
	ttt_reader_close(&r);
	if (rc < 0)
		ttt_survey_free(sv);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Comparing                                                                 */

static const ttt_record_t *record_of(const ttt_survey_t *sv, const char *game)
{
	for (size_t i = 0; i < sv->nrecords; i++)
		if (strcmp(sv->records[i].game, game) == 0)
			return &sv->records[i];
	return NULL;
}

static long game_number(const char *game)
{
	char *end;
	long n = game[0] == 'g' ? strtol(game + 1, &end, 10) : 0;
	return n > 0 && *end == '\0' ? n : 0;
}

/* One game, folded from its history, against the lobby and the bots. */
static void check_game(ttt_reader_t *r, const ttt_survey_t *sv, const char *id, ttt_seen_fn seen,
                       void *ctx, ttt_tally_t *t)
{
	ttt_game_t g;
	uint64_t seq = 0;
	memset(&g, 0, sizeof g);
	int rc = ttt_reader_fold(r, &tictactoe_game, id, &g, &seq, NULL, NULL);
	if (rc < 0) {
		ttt_fail("the history of game %s does not replay: %s", id, skald_strerror(rc));
		return;
	}
	char outcome = ttt_outcome(g.board);
	const ttt_record_t *rec = record_of(sv, id);
	const char *board = seen != NULL ? seen(ctx, id) : NULL;
	if (g.status <= TTT_PLAYING) {
		ttt_fail("game %s is not finished in the journal", id);
		return;
	}
	if (rec == NULL || outcome != rec->result)
		ttt_fail("game %s: the board says %c, the lobby recorded %c", id, outcome,
		         rec != NULL ? rec->result : '-');
	else if (rec->moves != (long)g.moves)
		ttt_fail("game %s: %u moves on the board, the lobby recorded %ld", id, g.moves,
		         rec->moves);
	if (seen != NULL && (board == NULL || strcmp(board, g.board) != 0))
		ttt_fail("game %s: the journal's board %s, the bots saw %s", id, g.board,
		         board != NULL ? board : "nothing");
	if (seq != (uint64_t)g.moves + 2)
		ttt_fail("game %s: %llu events for %u moves (a refused move wrote something?)", id,
		         (unsigned long long)seq, g.moves);
	t->games++;
	t->x_wins += outcome == 'X';
	t->o_wins += outcome == 'O';
	t->draws += outcome == 'D';
	t->moves += g.moves;
	t->events += (long long)seq;
	if (game_number(id) >= game_number(t->last)) {
		snprintf(t->last, sizeof t->last, "%s", id);
		t->last_game = g;
	}
	/* A snapshot restores to the same game. */
	json_t *s1 = NULL, *s2 = NULL;
	ttt_game_t copy;
	memset(&copy, 0, sizeof copy);
	tictactoe_game.init(&copy, id);
	if (tictactoe_game.snapshot(&g, &s1) < 0 || tictactoe_game.restore(&copy, s1, 1) < 0 ||
	    tictactoe_game.snapshot(&copy, &s2) < 0 || !json_equal(s1, s2))
		ttt_fail("game %s does not survive a snapshot and restore", id);
	json_decref(s1);
	json_decref(s2);
}

void ttt_check_games(const char *store, const ttt_survey_t *sv, size_t from, ttt_seen_fn seen,
                     void *ctx, ttt_tally_t *t)
{
	memset(t, 0, sizeof *t);
	strcpy(t->last, "g0");
	ttt_reader_t r;
	if (ttt_reader_open(&r, store) < 0) {
		ttt_fail("cannot read the journal back: %s", skald_journal_open_errmsg());
		return;
	}
	for (size_t i = from; i < sv->nmatched; i++)
		check_game(&r, sv, sv->matched[i], seen, ctx, t);
	ttt_reader_close(&r);

	/* The lobby's snapshot restores to the same lobby. */
	json_t *s1 = NULL, *s2 = NULL;
	ttt_lobby_t copy;
	memset(&copy, 0, sizeof copy);
	if (tictactoe_lobby.snapshot(&sv->lobby, &s1) < 0 ||
	    tictactoe_lobby.restore(&copy, s1, 1) < 0 || tictactoe_lobby.snapshot(&copy, &s2) < 0 ||
	    !json_equal(s1, s2))
		ttt_fail("the lobby does not survive a snapshot and restore");
	tictactoe_lobby.fini(&copy);
	json_decref(s1);
	json_decref(s2);
}
