/*
 * tests/tool/test_timetravel.c - `skald replay --at TIME` (the state as of
 * a moment), `--from-snapshot` (restore, then fold only what follows) and
 * `skald snapshots`.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/tool/timed.h"

static const char *entity(void)
{
	return tt_build("examples/tictactoe_game.so:tictactoe_game");
}

/* Runs replay of pid on s with the arguments that follow (up to NULL) and
 * asserts exit code. */
static void replay(tt_result_t *r, const tt_store_t *s, const char *pid, int code, ...)
{
	char *argv[32];
	int n = 0;
	argv[n++] = (char *)tt_build("skald");
	argv[n++] = "replay";
	argv[n++] = (char *)pid;
	argv[n++] = "--entity";
	argv[n++] = (char *)entity();
	argv[n++] = "--store";
	argv[n++] = (char *)s->uri;
	va_list ap;
	va_start(ap, code);
	tt_argv_add(argv, n, 32, ap);
	va_end(ap);
	tt_runv(r, NULL, argv);
	tt_assert_code(r, code, s->name);
}

/* The highest seq whose block replay printed ("seq N  "), 0 if none. */
static int last_seq_shown(const char *out)
{
	int last = 0;
	for (const char *p = out; (p = strstr(p, "seq ")) != NULL; p += 4)
		if (p == out || p[-1] == '\n')
			last = atoi(p + 4) > last ? atoi(p + 4) : last;
	return last;
}

Test(timetravel, at_before_the_first_event_shows_nothing, .timeout = TT_TIMEOUT)
{
	for (const tt_store_t *s = tt_stores(); s->name; s++) {
		const char *pid = tt_timed_game(s);
		tt_result_t r;
		replay(&r, s, pid, 0, "--at", "2026-12-03T13:59:59.999Z", NULL);
		cr_assert_eq(last_seq_shown(r.out), 0, "%s: %s", s->name, r.out);
		cr_assert_not_null(strstr(r.err, "had no events yet"), "%s", r.err);
		cr_assert_not_null(strstr(r.err, "2026-12-03T14:00:00.000Z"), "%s", r.err);
		tt_free(&r);
	}
}

Test(timetravel, at_the_first_event_includes_it, .timeout = TT_TIMEOUT)
{
	/* The same moment three ways: UTC, another zone, fractions. */
	static const char *const moments[] = {"2026-12-03T14:00:00Z", "2026-12-03T15:00:00+01:00",
	                                      "2026-12-03T14:00:00.000Z", "2026-12-03T14:00:59.9Z"};
	for (const tt_store_t *s = tt_stores(); s->name; s++) {
		const char *pid = tt_timed_game(s);
		for (size_t i = 0; i < sizeof moments / sizeof moments[0]; i++) {
			tt_result_t r;
			replay(&r, s, pid, 0, "--at", moments[i], NULL);
			cr_assert_eq(last_seq_shown(r.out), 1, "%s %s: %s", s->name, moments[i],
			             r.out);
			cr_assert_not_null(strstr(r.out, tt_boards[0]), "%s", r.out);
			cr_assert_not_null(
			        strstr(r.out, "stopped after seq 1; the next event, seq 2"), "%s",
			        r.out);
			tt_free(&r);
		}
	}
}

Test(timetravel, at_just_before_the_last_event_stops_before_it, .timeout = TT_TIMEOUT)
{
	for (const tt_store_t *s = tt_stores(); s->name; s++) {
		const char *pid = tt_timed_game(s);
		tt_result_t r;
		replay(&r, s, pid, 0, "--at", "2026-12-03T14:07:59.999Z", NULL);
		cr_assert_eq(last_seq_shown(r.out), 8, "%s: %s", s->name, r.out);
		cr_assert_not_null(strstr(r.out, "the next event, seq 9, was written at "
		                                 "2026-12-03T14:08:00.000Z"),
		                   "%s", r.out);
		tt_free(&r);
	}
}

Test(timetravel, at_or_after_the_last_event_is_the_whole_history, .timeout = TT_TIMEOUT)
{
	static const char *const moments[] = {"2026-12-03T14:08:00Z", "2030-01-01T00:00:00Z"};
	for (const tt_store_t *s = tt_stores(); s->name; s++) {
		const char *pid = tt_timed_game(s);
		for (size_t i = 0; i < 2; i++) {
			tt_result_t r;
			replay(&r, s, pid, 0, "--at", moments[i], "--json", NULL);
			json_t *lines = tt_json_lines(r.out);
			cr_assert_eq(json_array_size(lines), 9, "%s %s", s->name, moments[i]);
			cr_assert_str_eq(json_string_value(json_object_get(json_array_get(lines, 8),
			                                                   "printed")),
			                 tt_boards[8]);
			json_decref(lines);
			tt_free(&r);
			replay(&r, s, pid, 0, "--at", moments[i], NULL);
			cr_assert_not_null(strstr(r.out, "the whole history, up to seq 9"), "%s",
			                   r.out);
			tt_free(&r);
		}
	}
}

Test(timetravel, at_refuses_a_time_it_cannot_read_and_to_with_it, .timeout = TT_TIMEOUT)
{
	const tt_store_t *s = tt_stores();
	const char *pid = tt_timed_game(s);
	static const char *const bad[] = {"yesterday", "2026-12-03", "2026-12-03T14:00:00",
	                                  "2026-13-03T14:00:00Z"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		tt_result_t r;
		replay(&r, s, pid, 1, "--at", bad[i], NULL);
		cr_assert_not_null(strstr(r.err, "--at takes an ISO 8601 time"), "%s: %s", bad[i],
		                   r.err);
		tt_free(&r);
	}
	tt_result_t r;
	replay(&r, s, pid, 1, "--at", "2026-12-03T14:00:00Z", "--to", "3", NULL);
	cr_assert_not_null(strstr(r.err, "give one of them"), "%s", r.err);
	tt_free(&r);
}

Test(timetravel, from_snapshot_restores_and_folds_what_follows, .timeout = TT_TIMEOUT)
{
	for (const tt_store_t *s = tt_stores(); s->name; s++) {
		const char *pid = tt_timed_game(s);
		tt_fake_snapshot(s, pid);
		tt_result_t r;
		replay(&r, s, pid, 0, "--from-snapshot", NULL);
		cr_assert(strncmp(r.out, "snapshot at seq 4  v1  2026-12-03T14:03:30.000Z", 47) ==
		                  0,
		          "%s: %s", s->name, r.out);
		cr_assert_null(strstr(r.out, "\nseq 4  "), "%s", r.out);
		/* The board grows from the snapshot's, not from the events'. */
		cr_assert_not_null(strstr(r.out, TT_FAKE_BOARD_5), "%s", r.out);
		cr_assert_eq(last_seq_shown(r.out), 9);
		tt_free(&r);

		/* --to 6: the snapshot at 4 is at or before it. */
		replay(&r, s, pid, 0, "--from-snapshot", "--to", "6", NULL);
		cr_assert(strncmp(r.out, "snapshot at seq 4", 17) == 0, "%s", r.out);
		cr_assert_eq(last_seq_shown(r.out), 6, "%s", r.out);
		tt_free(&r);

		/* --to 3: no snapshot that early, so the fold starts at init. */
		replay(&r, s, pid, 0, "--from-snapshot", "--to", "3", NULL);
		cr_assert_null(strstr(r.out, "snapshot at"), "%s", r.out);
		cr_assert_not_null(strstr(r.out, tt_boards[2]), "%s", r.out);
		tt_free(&r);
	}
}

Test(timetravel, from_snapshot_with_at_uses_a_snapshot_only_of_the_past, .timeout = TT_TIMEOUT)
{
	for (const tt_store_t *s = tt_stores(); s->name; s++) {
		const char *pid = tt_timed_game(s);
		tt_fake_snapshot(s, pid);
		tt_result_t r;
		/* Event 4, the snapshot's, was written at 14:03: not yet at 14:02:30. */
		replay(&r, s, pid, 0, "--from-snapshot", "--at", "2026-12-03T14:02:30Z", NULL);
		cr_assert_null(strstr(r.out, "snapshot at"), "%s: %s", s->name, r.out);
		cr_assert_eq(last_seq_shown(r.out), 3, "%s", r.out);
		tt_free(&r);
		replay(&r, s, pid, 0, "--from-snapshot", "--at", "2026-12-03T14:04:00Z", NULL);
		cr_assert(strncmp(r.out, "snapshot at seq 4", 17) == 0, "%s", r.out);
		cr_assert_eq(last_seq_shown(r.out), 5, "%s", r.out);
		cr_assert_not_null(strstr(r.out, TT_FAKE_BOARD_5), "%s", r.out);
		tt_free(&r);
	}
}

Test(timetravel, from_snapshot_without_one_folds_from_init, .timeout = TT_TIMEOUT)
{
	const tt_store_t *s = tt_stores();
	const char *pid = tt_timed_game(s);
	tt_result_t r;
	replay(&r, s, pid, 0, "--from-snapshot", NULL);
	/* No snapshot at all: the fold starts at init and goes to the end. */
	cr_assert_eq(last_seq_shown(r.out), 9, "%s", r.out);
	tt_free(&r);
}

Test(snapshots, lists_them_newest_first_with_their_size, .timeout = TT_TIMEOUT)
{
	for (const tt_store_t *s = tt_stores(); s->name; s++) {
		const char *pid = tt_timed_game(s);
		tt_fake_snapshot(s, pid);
		static const char late[] =
		        "{\"x\":\"alice\",\"o\":\"bob\",\"board\":\"O.XXXXO.O\",\"moves\":7,"
		        "\"status\":\"x_won\"}";
		tt_snapshot_save(s->uri, pid, 8, 1, late, 1796306940000);
		tt_result_t r;
		tt_skald(&r, NULL, "snapshots", pid, "--store", s->uri, NULL);
		tt_assert_code(&r, 0, s->name);
		const char *eight = strstr(r.out, "\n8 ");
		const char *four = strstr(r.out, "\n4 ");
		cr_assert(eight != NULL && four != NULL && eight < four, "%s: %s", s->name, r.out);
		tt_free(&r);

		tt_skald(&r, NULL, "snapshots", pid, "--json", "--store", s->uri, NULL);
		tt_assert_code(&r, 0, s->name);
		json_t *lines = tt_json_lines(r.out);
		cr_assert_eq(json_array_size(lines), 2);
		json_t *first = json_array_get(lines, 0), *second = json_array_get(lines, 1);
		cr_assert_eq(json_integer_value(json_object_get(first, "seq")), 8);
		cr_assert_eq(json_integer_value(json_object_get(second, "seq")), 4);
		cr_assert_eq(json_integer_value(json_object_get(second, "version")), 1);
		cr_assert_str_eq(json_string_value(json_object_get(second, "timestamp")),
		                 "2026-12-03T14:03:30.000Z");
		cr_assert_eq(json_integer_value(json_object_get(first, "size")),
		             (json_int_t)strlen(late));
		json_decref(lines);
		tt_free(&r);

		tt_skald(&r, NULL, "snapshots", pid, "--max", "1", "--json", "--store", s->uri,
		         NULL);
		tt_assert_code(&r, 0, s->name);
		lines = tt_json_lines(r.out);
		cr_assert_eq(json_array_size(lines), 1);
		json_decref(lines);
		tt_free(&r);
	}
}

Test(snapshots, none_is_said_and_an_unknown_id_is_4, .timeout = TT_TIMEOUT)
{
	const tt_store_t *s = tt_stores();
	const char *pid = tt_timed_game(s);
	tt_result_t r;
	tt_skald(&r, NULL, "snapshots", pid, "--store", s->uri, NULL);
	tt_assert_code(&r, 0, "no snapshots");
	cr_assert_str_eq(r.out, "");
	cr_assert_not_null(strstr(r.err, "has no snapshots"), "%s", r.err);
	tt_free(&r);
	tt_skald(&r, NULL, "snapshots", tt_pid("nobody"), "--store", s->uri, NULL);
	tt_assert_code(&r, 4, "unknown id");
	tt_free(&r);
}
