/*
 * examples/tictactoe/check.c - the demo's checks (see check.h).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "node.h"
#include "run.h"

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

static unsigned failures;

void ttt_fail(const char *fmt, ...)
{
	if (++failures > 10)
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
	return failures;
}

/* ------------------------------------------------------------------------ */
/* What the journal holds                                                    */

static long game_number(const char *game)
{
	char *end;
	long n = game != NULL && game[0] == 'g' ? strtol(game + 1, &end, 10) : 0;
	return n > 0 && *end == '\0' ? n : 0;
}

static int record_closed(const skald_event_t *ev, void *arg)
{
	ttt_survey_t *sv = arg;
	if (strcmp(ev->type, "lobby.closed") != 0)
		return 0;
	long n = game_number(ttt_str(ev->data, "game"));
	const char *r = ttt_str(ev->data, "result");
	if (n == 0 || r == NULL)
		return SKALD_EDECODE;
	if ((size_t)n >= sv->cap) {
		size_t cap = (size_t)n * 2;
		char *res = realloc(sv->result, cap);
		if (res == NULL)
			return SKALD_ENOMEM;
		sv->result = res;
		long *mv = realloc(sv->moves, cap * sizeof *mv);
		if (mv == NULL)
			return SKALD_ENOMEM;
		sv->moves = mv;
		memset(res + sv->cap, 0, cap - sv->cap);
		sv->cap = cap;
	}
	sv->result[n] = strcmp(r, "draw") == 0 ? 'D' : r[0];
	sv->moves[n] = (long)json_integer_value(json_object_get(ev->data, "moves"));
	return 0;
}

/* No fini afterwards: a game's fini only frees a command waiting for its
 * write, which a fold never has. */
static int fold_game(ttt_reader_t *r, const char *id, ttt_game_view_t *v)
{
	memset(v, 0, sizeof *v);
	int rc = ttt_reader_fold(r, &tictactoe_game, id, &v->g, &v->seq, NULL, NULL);
	if (rc < 0)
		ttt_fail("the history of game %s does not replay: %s", id, skald_strerror(rc));
	return rc;
}

long ttt_unfinished(const ttt_survey_t *sv)
{
	long n = 0;
	for (size_t i = 0; i < sv->lobby.nopen; i++)
		n += sv->open[i].g.status <= TTT_PLAYING;
	return n;
}

void ttt_survey_free(ttt_survey_t *sv)
{
	tictactoe_lobby.fini(&sv->lobby);
	free(sv->result);
	free(sv->moves);
	free(sv->open);
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
	rc = ttt_reader_fold(&r, &tictactoe_lobby, TTT_LOBBY_ID, &sv->lobby, &sv->lobby_seq,
	                     record_closed, sv);
	if (rc < 0) {
		fprintf(stderr, "tictactoe: the lobby's history does not replay: %s (%s)\n",
		        skald_strerror(rc), skald_journal_errmsg(r.j));
	} else if (sv->lobby.nopen > 0) {
		sv->open = calloc(sv->lobby.nopen, sizeof *sv->open);
		rc = sv->open != NULL ? 0 : SKALD_ENOMEM;
		for (size_t i = 0; rc == 0 && i < sv->lobby.nopen; i++)
			rc = fold_game(&r, sv->lobby.open[i].game, &sv->open[i]);
	}
	ttt_reader_close(&r);
	if (rc < 0)
		ttt_survey_free(sv);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Comparing                                                                 */

/* A board that `later` could have grown from: every mark of `earlier` is
 * still there. */
static bool continues(const char *earlier, const char *later)
{
	for (int i = 0; i < 9; i++)
		if (earlier[i] != '.' && earlier[i] != later[i])
			return false;
	return true;
}

void ttt_check_run(const char *store, const ttt_survey_t *before, const ttt_survey_t *mid,
                   const ttt_survey_t *after, ttt_tally_t *t)
{
	memset(t, 0, sizeof *t);
	if (after->lobby.nopen > 0)
		ttt_fail("%zu games are still open at the end", after->lobby.nopen);
	size_t n = before->lobby.nopen + (size_t)(after->lobby.opened - before->lobby.opened);
	char(*ids)[TTT_NAME_MAX] = calloc(n + 1, sizeof *ids);
	ttt_game_view_t *views = calloc(n + 1, sizeof *views);
	ttt_reader_t r;
	if (ids == NULL || views == NULL || ttt_reader_open(&r, store) < 0) {
		ttt_fail("cannot read the journal back");
		free(ids);
		free(views);
		return;
	}
	for (size_t i = 0; i < before->lobby.nopen; i++)
		strcpy(ids[i], before->lobby.open[i].game);
	for (size_t i = before->lobby.nopen; i < n; i++)
		snprintf(ids[i], sizeof ids[i], "g%" PRIu64,
		         before->lobby.opened + 1 + (i - before->lobby.nopen));

	for (size_t i = 0; i < n; i++) {
		ttt_game_view_t *v = &views[i];
		if (fold_game(&r, ids[i], v) < 0)
			continue;
		char outcome = ttt_outcome(v->g.board);
		long num = game_number(ids[i]);
		char recorded = (size_t)num < after->cap ? after->result[num] : 0;
		if (v->g.status <= TTT_PLAYING) {
			ttt_fail("game %s is not finished in the journal", ids[i]);
			continue;
		}
		if (outcome == 0 || recorded != outcome)
			ttt_fail("game %s: the board says %c, the lobby recorded %c", ids[i],
			         outcome ? outcome : '-', recorded ? recorded : '-');
		else if (after->moves[num] != (long)v->g.moves)
			ttt_fail("game %s: %u moves on the board, the lobby recorded %ld", ids[i],
			         v->g.moves, after->moves[num]);
		t->games++;
		t->x_wins += outcome == 'X';
		t->o_wins += outcome == 'O';
		t->draws += outcome == 'D';
		t->moves += v->g.moves;
		t->events += (long long)v->seq;
		if (num >= game_number(t->last)) {
			strcpy(t->last, ids[i]);
			t->last_game = v->g;
		}

		/* A snapshot restores to the same game. */
		json_t *s1 = NULL, *s2 = NULL;
		ttt_game_t copy;
		tictactoe_game.init(&copy, ids[i]);
		if (tictactoe_game.snapshot(&v->g, &s1) < 0 ||
		    tictactoe_game.restore(&copy, s1, 1) < 0 ||
		    tictactoe_game.snapshot(&copy, &s2) < 0 || !json_equal(s1, s2))
			ttt_fail("game %s does not survive a snapshot and restore", ids[i]);
		json_decref(s1);
		json_decref(s2);
	}
	ttt_reader_close(&r);

	/* What was already there before this run is not this run's work. */
	for (size_t i = 0; i < before->lobby.nopen; i++) {
		t->moves -= before->open[i].g.moves;
		t->events -= (long long)before->open[i].seq;
	}
	t->events += (long long)(after->lobby_seq - before->lobby_seq);

	/* The lobby's snapshot restores to the same lobby. */
	json_t *s1 = NULL, *s2 = NULL;
	ttt_lobby_t copy = {0};
	if (tictactoe_lobby.snapshot(&after->lobby, &s1) < 0 ||
	    tictactoe_lobby.restore(&copy, s1, 1) < 0 || tictactoe_lobby.snapshot(&copy, &s2) < 0 ||
	    !json_equal(s1, s2))
		ttt_fail("the lobby does not survive a snapshot and restore");
	tictactoe_lobby.fini(&copy);
	json_decref(s1);
	json_decref(s2);

	if ((long)(after->lobby.finished - before->lobby.finished) != t->games ||
	    (long)(after->lobby.x_wins - before->lobby.x_wins) != t->x_wins ||
	    (long)(after->lobby.o_wins - before->lobby.o_wins) != t->o_wins ||
	    (long)(after->lobby.draws - before->lobby.draws) != t->draws)
		ttt_fail("the lobby's totals disagree with the games' histories");

	/* The restart: every game unfinished when the first system stopped
	 * must have gone on from the board it had then. */
	for (size_t k = 0; mid != NULL && k < mid->lobby.nopen; k++) {
		const ttt_game_view_t *m = &mid->open[k];
		size_t i = 0;
		while (i < n && strcmp(ids[i], mid->lobby.open[k].game) != 0)
			i++;
		if (m->g.status > TTT_PLAYING)
			continue; /* ended just before the stop; the lobby closed it after */
		t->unfinished_at_stop++;
		t->moves_at_stop += m->g.moves;
		if (i == n || views[i].seq <= m->seq || !continues(m->g.board, views[i].g.board))
			ttt_fail("game %s did not continue from its history after the restart",
			         mid->lobby.open[k].game);
		else
			t->continued++;
	}
	if (mid != NULL && t->unfinished_at_stop == 0)
		ttt_fail("the restart test stopped with no unfinished game: nothing was tested");

	ttt_recover_and_compare(store, ids, views, n);
	free(ids);
	free(views);
}
