/*
 * tests/tool/test_replay.c - `skald replay`: a history folded with the
 * application's own entity type, loaded from a shared object, the state
 * shown after every event; --to travels back in time; --verify catches an
 * event handler that does not give the same state twice.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/tool/tt.h"

static const char *entity(void)
{
	return tt_build("examples/tictactoe_game.so:tictactoe_game");
}

static const char *new_game(const tt_store_t *s)
{
	const char *pid = tt_pid("game");
	tt_result_t r;
	tt_skald(&r, tt_game, "append", pid, "--expect", "0", "--store", s->uri, NULL);
	tt_assert_code(&r, 0, s->name);
	cr_assert_str_eq(r.out, "9\n");
	tt_free(&r);
	return pid;
}

/* The text shown for seq in replay's output, up to the next event's (a
 * static copy), or NULL. */
static const char *block(const char *out, int seq)
{
	static char buf[4096];
	char head[32];
	snprintf(head, sizeof head, "seq %d  ", seq);
	const char *p = strstr(out, head);
	if (p == NULL)
		return NULL;
	snprintf(head, sizeof head, "\nseq %d  ", seq + 1);
	const char *end = strstr(p, head);
	size_t len = end ? (size_t)(end - p) + 1 : strlen(p);
	snprintf(buf, sizeof buf, "%.*s", (int)len, p);
	return buf;
}

Test(replay, shows_the_board_after_every_move, .timeout = TT_TIMEOUT)
{
	for (const tt_store_t *s = tt_stores(); s->name; s++) {
		const char *pid = new_game(s);
		tt_result_t r;
		tt_skald(&r, NULL, "replay", pid, "--entity", entity(), "--store", s->uri, NULL);
		tt_assert_code(&r, 0, s->name);
		for (int seq = 1; seq <= 9; seq++) {
			const char *b = block(r.out, seq);
			cr_assert_not_null(b, "%s: no seq %d in\n%s", s->name, seq, r.out);
			/* The event's line, then the board after it. */
			const char *nl = strchr(b, '\n');
			cr_assert_not_null(nl);
			cr_assert(strncmp(nl + 1, tt_boards[seq - 1], strlen(tt_boards[seq - 1])) ==
			                  0,
			          "%s: after seq %d want\n%s\ngot\n%s", s->name, seq,
			          tt_boards[seq - 1], b);
		}
		cr_assert_not_null(strstr(block(r.out, 9), "game.finished"));
		tt_free(&r);
	}
}

Test(replay, to_stops_at_a_seq_in_the_past, .timeout = TT_TIMEOUT)
{
	for (const tt_store_t *s = tt_stores(); s->name; s++) {
		const char *pid = new_game(s);
		tt_result_t r;
		tt_skald(&r, NULL, "replay", pid, "--entity", entity(), "--to", "3", "--store",
		         s->uri, NULL);
		tt_assert_code(&r, 0, s->name);
		cr_assert_not_null(block(r.out, 3), "%s", r.out);
		cr_assert_null(strstr(r.out, "seq 4  "), "%s", r.out);
		cr_assert_not_null(strstr(r.out, "stopped after seq 3"), "%s", r.out);
		cr_assert_not_null(strstr(r.out, tt_boards[2]), "%s", r.out);
		tt_free(&r);
	}
}

Test(replay, json_gives_the_snapshot_and_the_printed_state, .timeout = TT_TIMEOUT)
{
	for (const tt_store_t *s = tt_stores(); s->name; s++) {
		const char *pid = new_game(s);
		tt_result_t r;
		tt_skald(&r, NULL, "replay", pid, "--entity", entity(), "--json", "--store", s->uri,
		         NULL);
		tt_assert_code(&r, 0, s->name);
		json_t *lines = tt_json_lines(r.out);
		cr_assert_eq(json_array_size(lines), 9);
		for (size_t i = 0; i < 9; i++) {
			json_t *l = json_array_get(lines, i);
			json_t *ev = json_object_get(l, "event");
			cr_assert_eq(json_integer_value(json_object_get(ev, "seq")),
			             (json_int_t)i + 1);
			cr_assert_str_eq(json_string_value(json_object_get(l, "printed")),
			                 tt_boards[i]);
		}
		json_t *last = json_object_get(json_array_get(lines, 8), "state");
		cr_assert_str_eq(json_string_value(json_object_get(last, "status")), "x_won");
		cr_assert_str_eq(json_string_value(json_object_get(last, "board")), "O.XXXXO.O");
		json_decref(lines);
		tt_free(&r);
	}
}

Test(replay, verify_passes_for_a_deterministic_type, .timeout = TT_TIMEOUT)
{
	for (const tt_store_t *s = tt_stores(); s->name; s++) {
		const char *pid = new_game(s);
		tt_result_t r;
		tt_skald(&r, NULL, "replay", pid, "--entity", entity(), "--verify", "--store",
		         s->uri, NULL);
		tt_assert_code(&r, 0, s->name);
		cr_assert_not_null(strstr(r.out, "verified: 9 events"), "%s", r.out);
		tt_free(&r);
	}
}

Test(replay, an_event_the_type_refuses_is_1_naming_its_seq, .timeout = TT_TIMEOUT)
{
	for (const tt_store_t *s = tt_stores(); s->name; s++) {
		const char *pid = tt_pid("game");
		/* bob plays on alice's cell. */
		static const char bad[] =
		        "{\"type\":\"game.started\",\"data\":{\"x\":\"alice\",\"o\":\"bob\"}}\n"
		        "{\"type\":\"game.moved\",\"data\":{\"player\":\"alice\",\"cell\":4}}\n"
		        "{\"type\":\"game.moved\",\"data\":{\"player\":\"bob\",\"cell\":4}}\n";
		tt_result_t r;
		tt_skald(&r, bad, "append", pid, "--expect", "0", "--store", s->uri, NULL);
		tt_assert_code(&r, 0, s->name);
		tt_free(&r);
		tt_skald(&r, NULL, "replay", pid, "--entity", entity(), "--store", s->uri, NULL);
		tt_assert_code(&r, 1, s->name);
		cr_assert_not_null(strstr(r.err, "seq 3"), "%s", r.err);
		cr_assert_not_null(block(r.out, 2), "the events before are shown: %s", r.out);
		tt_free(&r);
	}
}

Test(replay, a_library_or_symbol_that_is_not_there_is_1, .timeout = TT_TIMEOUT)
{
	const tt_store_t *s = tt_stores();
	const char *pid = new_game(s);
	tt_result_t r;
	tt_skald(&r, NULL, "replay", pid, "--entity", "/nonexistent/game.so:tictactoe_game",
	         "--store", s->uri, NULL);
	tt_assert_code(&r, 1, "no library");
	cr_assert_not_null(strstr(r.err, "cannot load"), "%s", r.err);
	tt_free(&r);
	tt_skald(&r, NULL, "replay", pid, "--entity",
	         tt_build("examples/tictactoe_game.so:no_such_type"), "--store", s->uri, NULL);
	tt_assert_code(&r, 1, "no symbol");
	cr_assert_not_null(strstr(r.err, "no_such_type"), "%s", r.err);
	tt_free(&r);
}

/* An entity type whose apply counts its calls in a global: two folds of
 * the same history disagree from the first event on. Built at run time,
 * because the suite's build makes one binary per folder. */
static const char nondet_src[] =
        "#include <skald/entity.h>\n"
        "typedef struct { int n; int applied; } st_t;\n"
        "static int calls;\n"
        "static int apply(void *s, const skald_event_t *ev)\n"
        "{ st_t *st = s; st->applied++; st->n = ++calls; return 0; }\n"
        "static int snap(const void *s, json_t **out)\n"
        "{ const st_t *st = s; *out = json_pack(\"{s:i, s:i}\", \"n\", st->n, \"applied\","
        " st->applied); return 0; }\n"
        "const skald_entity_type_t counting_snap = {.name = \"c\", .state_size = sizeof(st_t),"
        " .apply = apply, .snapshot = snap};\n"
        "const skald_entity_type_t counting_raw = {.name = \"c\", .state_size = sizeof(st_t),"
        " .apply = apply};\n";

static void build_nondet(char *so, size_t len)
{
	char dir[] = "/tmp/skald_tool_XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	char src[256], cmd[2048];
	snprintf(src, sizeof src, "%s/counting.c", dir);
	snprintf(so, len, "%s/counting.so", dir);
	FILE *f = fopen(src, "w");
	cr_assert_not_null(f);
	fputs(nondet_src, f);
	fclose(f);
	const char *cc = getenv("CC") && *getenv("CC") ? getenv("CC") : "cc";
	snprintf(cmd, sizeof cmd,
	         "%s -std=c11 -D_GNU_SOURCE -shared -fPIC -I'%s' $(pkg-config --cflags jansson "
	         "libuv) -o '%s' "
	         "'%s'",
	         cc, tt_build("../include"), so, src);
	char *argv[] = {"/bin/sh", "-c", cmd, NULL};
	tt_result_t r;
	tt_runv(&r, NULL, argv);
	cr_assert_eq(r.code, 0, "building the test's entity type failed (%s): %s", cmd, r.err);
	tt_free(&r);
}

Test(replay, verify_names_the_first_seq_where_two_folds_differ, .timeout = TT_TIMEOUT)
{
	char so[256], spec[300];
	build_nondet(so, sizeof so);
	for (const tt_store_t *s = tt_stores(); s->name; s++) {
		const char *pid = new_game(s);
		static const char *const types[] = {"counting_snap", "counting_raw"};
		for (size_t i = 0; i < 2; i++) {
			snprintf(spec, sizeof spec, "%s:%s", so, types[i]);
			tt_result_t r;
			tt_skald(&r, NULL, "replay", pid, "--entity", spec, "--store", s->uri,
			         NULL);
			tt_assert_code(&r, 0, "without --verify the fold goes through");
			tt_free(&r);
			tt_skald(&r, NULL, "replay", pid, "--entity", spec, "--verify", "--store",
			         s->uri, NULL);
			tt_assert_code(&r, 1, types[i]);
			cr_assert_not_null(strstr(r.err, "after seq 1 "), "%s: %s", types[i],
			                   r.err);
			cr_assert_not_null(strstr(r.err, "not deterministic"), "%s", r.err);
			tt_free(&r);
		}
	}
	/* The library, its source and their directory. */
	char path[256];
	snprintf(path, sizeof path, "%s", so);
	unlink(path);
	strcpy(strrchr(path, '/'), "/counting.c");
	unlink(path);
	*strrchr(path, '/') = '\0';
	rmdir(path);
}

Test(replay, the_games_of_the_example_fold_and_verify, .timeout = TT_TIMEOUT)
{
	for (const tt_store_t *s = tt_stores(); s->name; s++) {
		tt_db_t db;
		tt_db_new(&db, s);
		char *argv[] = {(char *)tt_build("examples/tictactoe"),
		                "demo",
		                "--nodes",
		                "1",
		                "--store",
		                db.uri,
		                "--games",
		                "3",
		                "--players",
		                "4",
		                NULL};
		tt_result_t r;
		tt_runv(&r, NULL, argv);
		tt_assert_code(&r, 0, "the tic-tac-toe example");
		tt_free(&r);

		tt_skald(&r, NULL, "ids", "--prefix", "game-", "--json", "--store", db.uri, NULL);
		tt_assert_code(&r, 0, s->name);
		json_t *ids = tt_json_lines(r.out);
		tt_free(&r);
		cr_assert_eq(json_array_size(ids), 3, "%s: the example played 3 games", s->name);
		int finished = 0;
		size_t i;
		json_t *id;
		json_array_foreach(ids, i, id)
		{
			const char *pid = json_string_value(json_object_get(id, "persistence_id"));
			tt_skald(&r, NULL, "replay", pid, "--entity", entity(), "--verify",
			         "--json", "--store", db.uri, NULL);
			tt_assert_code(&r, 0, pid);
			json_t *lines = tt_json_lines(r.out);
			cr_assert_eq((json_int_t)json_array_size(lines),
			             json_integer_value(json_object_get(id, "highest_seq")));
			json_t *state = json_object_get(
			        json_array_get(lines, json_array_size(lines) - 1), "state");
			const char *status = json_string_value(json_object_get(state, "status"));
			finished += status != NULL && strcmp(status, "playing") != 0;
			json_decref(lines);
			tt_free(&r);
		}
		cr_assert_eq(finished, 3, "%s: %d finished games of 3", s->name, finished);
		json_decref(ids);
		tt_db_drop(&db);
	}
}
