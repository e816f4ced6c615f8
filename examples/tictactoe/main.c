/*
 * examples/tictactoe - the showcase: tic-tac-toe on persistent entities.
 *
 *   build/examples/tictactoe [--store URI] [--games N] [--players P] [--seed S]
 *                            [--threads T]
 *
 * A lobby (one persistent entity) pairs P simulated players and opens a game
 * session (a persistent entity per game) for each pair; players play random
 * legal moves, and some illegal ones that must be rejected, until N games
 * are finished. Then the program checks the journal against what the actors
 * said: it folds every game's history as `skald replay` would, recovers
 * every game again in a fresh system, and compares both with the lobby's
 * records. It prints a summary and exits 0 only if every check passed.
 *
 * A seed fixes each player's choices, not the run: which players meet, and
 * how far the games in flight got when the run stops, depend on timing, so
 * two runs with one seed can differ (one thread makes that rarer, not
 * impossible).
 *
 * With a durable store, stopping the program and starting it again
 * continues every unfinished game from its history. --restart-test (not in
 * the usage) shows it in one process: it stops the system partway through,
 * with games unfinished, starts a new one on the same store (memory://NAME
 * outlives its handles within the process) and checks that those games go
 * on from where they were.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "game.h"
#include "protocol.h"
#include "run.h"

/* ------------------------------------------------------------------------ */
/* Arguments                                                                 */

static void usage(FILE *out)
{
	fprintf(out, "usage: tictactoe [--store URI] [--games N] [--players P] [--seed S]\n"
	             "                 [--threads T]\n"
	             "  --store URI    journal (default memory://demo)\n"
	             "  --games N      games to finish, 1..1000000 (default 300)\n"
	             "  --players P    simulated players, 2..10000 (default 10)\n"
	             "  --seed S       seed of the players' moves (default 1)\n"
	             "  --threads T    scheduler threads, 1..1024 (default one per core)\n");
}

static int parse_number(const char *flag, const char *text, long long min, long long max,
                        long long *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0' || v < min || v > max) {
		fprintf(stderr, "tictactoe: %s takes an integer from %lld to %lld, not '%s'\n",
		        flag, min, max, text);
		return -1;
	}
	*out = v;
	return 0;
}

static int parse_args(int argc, char **argv, ttt_options_t *o)
{
	*o = (ttt_options_t){"memory://demo", 300, 10, 1, 0, false};
	for (int i = 1; i < argc; i++) {
		const char *flag = argv[i], *value = NULL;
		char name[32];
		/* Both "--flag value" and "--flag=value". */
		const char *eq = strchr(flag, '=');
		if (strncmp(flag, "--", 2) == 0 && eq != NULL &&
		    (size_t)(eq - flag) < sizeof name) {
			snprintf(name, sizeof name, "%.*s", (int)(eq - flag), flag);
			flag = name;
			value = eq + 1;
		}
		if (strcmp(flag, "--help") == 0 || strcmp(flag, "-h") == 0) {
			usage(stdout);
			exit(0);
		}
		if (strcmp(flag, "--restart-test") == 0 && value == NULL) {
			o->restart_test = true;
			continue;
		}
		bool known = strcmp(flag, "--store") == 0 || strcmp(flag, "--games") == 0 ||
		             strcmp(flag, "--players") == 0 || strcmp(flag, "--seed") == 0 ||
		             strcmp(flag, "--threads") == 0;
		if (!known) {
			fprintf(stderr, "tictactoe: unknown argument '%s'\n", argv[i]);
			usage(stderr);
			return -1;
		}
		if (value == NULL) {
			if (i + 1 >= argc) {
				fprintf(stderr, "tictactoe: %s needs a value\n", flag);
				usage(stderr);
				return -1;
			}
			value = argv[++i];
		}
		long long v;
		if (strcmp(flag, "--store") == 0) {
			if (value[0] == '\0') {
				fprintf(stderr, "tictactoe: --store needs a journal URI, such as "
				                "memory://demo\n");
				return -1;
			}
			o->store = value;
		} else if (strcmp(flag, "--games") == 0) {
			if (parse_number(flag, value, 1, 1000000, &v) < 0)
				return -1;
			o->games = (long)v;
		} else if (strcmp(flag, "--players") == 0) {
			if (parse_number(flag, value, 2, 10000, &v) < 0)
				return -1;
			o->players = (long)v;
		} else if (strcmp(flag, "--threads") == 0) {
			if (parse_number(flag, value, 1, 1024, &v) < 0)
				return -1;
			o->threads = (unsigned)v;
		} else {
			if (parse_number(flag, value, 0, INT64_MAX, &v) < 0)
				return -1;
			o->seed = (uint64_t)v;
		}
	}
	/* Each scheduler thread opens its own handle; with an unnamed memory
	 * store every handle is a separate database, and a game recovered on
	 * another thread would find no history. */
	if (strcmp(o->store, "memory://") == 0 || strncmp(o->store, "memory://?", 10) == 0) {
		fprintf(stderr,
		        "tictactoe: --store %s is private to each journal handle (one per "
		        "thread), so games could not find their history; give it a name, "
		        "e.g. memory://demo\n",
		        o->store);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------------ */

int main(int argc, char **argv)
{
	ttt_options_t o;
	if (parse_args(argc, argv, &o) < 0)
		return 1;
	int rc = ttt_protocol_register();
	if (rc < 0) {
		fprintf(stderr, "tictactoe: cannot register the messages: %s\n",
		        skald_strerror(rc));
		return 1;
	}
	/* The state of the store before this run: a durable store may hold
	 * earlier runs, and their unfinished games. Opening it here is also
	 * where a bad --store is reported. */
	ttt_survey_t before, mid, after;
	memset(&mid, 0, sizeof mid);
	if (ttt_survey(o.store, &before) < 0)
		return 1;
	if (before.lobby.nopen > 0)
		printf("tictactoe: %s holds %zu unfinished games; they continue first\n", o.store,
		       before.lobby.nopen);

	/* p: the phases stopped partway (restart test), last: the final one. */
	ttt_phase_t p = {0}, last = {0};
	int stops = 0;
	uint64_t t0 = uv_hrtime();
	long done = 0;
	while (o.restart_test) {
		/* Stop partway through what is left, with games left
		 * unfinished by players who walked away. Should every game end
		 * before anyone leaves, play on and stop again (every stop is
		 * a restart). */
		ttt_phase_t h;
		rc = ttt_run_phase(&o, 1 + stops, o.games - done, true, &h);
		ttt_phase_add(&p, &h);
		ttt_survey_free(&mid);
		if (rc < 0 || (rc = ttt_survey(o.store, &mid)) < 0)
			break;
		stops++;
		done = (long)(mid.lobby.finished - before.lobby.finished);
		long open = ttt_unfinished(&mid);
		printf("tictactoe: stopped the system after %ld games, %ld unfinished; starting a "
		       "new one on %s\n",
		       done, open, o.store);
		if (open > 0 || h.complete)
			break;
	}
	if (rc == 0)
		rc = ttt_run_phase(&o, 1 + stops, o.games - done, false, &last);
	ttt_phase_add(&p, &last);
	double secs = (double)(uv_hrtime() - t0) / 1e9;
	if (rc < 0 || ttt_survey(o.store, &after) < 0) {
		fprintf(stderr, "tictactoe: the run failed: %s\n", skald_strerror(rc));
		ttt_survey_free(&before);
		ttt_survey_free(&mid);
		return 1;
	}

	ttt_tally_t t;
	ttt_check_run(o.store, &before, o.restart_test ? &mid : NULL, &after, &t);
	if (p.errors > 0)
		ttt_fail("players saw %lld protocol errors (see above)", p.errors);
	if (p.lobby_errors > 0)
		ttt_fail("the lobby saw %lld inconsistencies (see above)", p.lobby_errors);
	if (!last.complete)
		ttt_fail("the run did not complete");

	printf("tictactoe: %ld games finished on %s by %ld players (seed %" PRIu64 ")\n", t.games,
	       o.store, o.players, o.seed);
	printf("tictactoe: X won %ld, O won %ld, draws %ld\n", t.x_wins, t.o_wins, t.draws);
	printf("tictactoe: %lld moves persisted, %lld events in %.3f s (%.0f events/s)\n", t.moves,
	       t.events, secs, (double)t.events / secs);
	printf("tictactoe: %lld illegal moves tried: %lld rejected with nothing written, %lld "
	       "unanswered (their game had closed)\n",
	       p.probes, p.rejected, p.unanswered);
	if (o.restart_test)
		printf("tictactoe: restart: %ld games were unfinished at the last of %d stops (%ld "
		       "moves in); %ld continued from their history and finished\n",
		       t.unfinished_at_stop, stops, t.moves_at_stop, t.continued);
	printf("tictactoe: checked %ld games: replayed from the journal, recovered in a fresh "
	       "system, compared with the lobby's records\n",
	       t.games);
	if (t.last[0] != '\0') {
		ttt_game_t *g = &t.last_game;
		printf("tictactoe: last game %s, X %s, O %s: %s\n", t.last, g->x, g->o,
		       g->status == TTT_DRAW    ? "draw"
		       : g->status == TTT_X_WON ? "X won"
		                                : "O won");
		tictactoe_game.print(g, stdout);
	}
	ttt_survey_free(&before);
	ttt_survey_free(&mid);
	ttt_survey_free(&after);
	if (ttt_failures() > 0) {
		printf("tictactoe: INCONSISTENT: %u checks failed\n", ttt_failures());
		return 1;
	}
	return 0;
}
