/*
 * tests/tool/test_example.c - the tic-tac-toe example as a user runs it:
 * on one thread, a seed plays the same games every time.
 */
#include <stdlib.h>
#include <string.h>

#include "tt.h"

/* The example's output without its one line of timing. */
static char *games_of(const char *seed)
{
	char *argv[] = {(char *)tt_build("examples/tictactoe"),
	                "--games",
	                "40",
	                "--players",
	                "6",
	                "--threads",
	                "1",
	                "--seed",
	                (char *)seed,
	                NULL};
	tt_result_t r;
	tt_runv(&r, NULL, argv);
	cr_assert_eq(r.code, 0, "tictactoe exited %d: %s", r.code, r.err);
	char *t = strstr(r.out, " events in ");
	char *end = t != NULL ? strchr(t, '\n') : NULL;
	cr_assert(end != NULL, "%s", r.out);
	char *line = t;
	while (line > r.out && line[-1] != '\n')
		line--;
	memmove(line, end + 1, strlen(end + 1) + 1);
	char *out = strdup(r.out);
	tt_free(&r);
	return out;
}

Test(example, one_thread_and_one_seed_play_the_same_games, .timeout = TT_TIMEOUT)
{
	char *a = games_of("5"), *b = games_of("5"), *c = games_of("6");
	cr_assert_str_eq(a, b, "seed 5 played two different runs");
	cr_assert_str_neq(a, c, "seeds 5 and 6 played the same games");
	free(a);
	free(b);
	free(c);
}
