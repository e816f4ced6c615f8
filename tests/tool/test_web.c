/*
 * tests/tool/test_web.c - `skald web`: its JSON API on every store, the
 * token, bad input, the live stream, and the page in headless Chromium.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/tool/timed.h"

static const char *entity(void)
{
	return tt_build("examples/tictactoe_game.so:tictactoe_game");
}

static json_int_t int_of(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	cr_assert(json_is_integer(v), "no integer %s", key);
	return json_integer_value(v);
}

static const char *str_of(json_t *o, const char *key)
{
	const char *v = json_string_value(json_object_get(o, key));
	cr_assert_not_null(v, "no string %s", key);
	return v;
}

/* GET on w, formatted like printf, expecting status. */
static json_t *get(const tt_web_t *w, int status, const char *fmt, ...)
{
	char target[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(target, sizeof target, fmt, ap);
	va_end(ap);
	return tt_http_json(w->port, target, status);
}

Test(web, ids_come_in_pages_filtered_by_prefix_and_type, .timeout = TT_TIMEOUT)
{
	for (const tt_store_t *s = tt_stores(); s->name; s++) {
		const char *base = tt_pid("game");
		char pid[200];
		for (int i = 1; i <= 5; i++) {
			snprintf(pid, sizeof pid, "%s-%d", base, i);
			tt_result_t r;
			tt_skald(&r,
			         "{\"type\":\"game.started\",\"data\":{\"x\":\"a\",\"o\":\"b\"}}\n",
			         "append", pid, "--expect", "0", "--store", s->uri, NULL);
			tt_assert_code(&r, 0, s->name);
			tt_free(&r);
		}
		tt_web_t w;
		tt_web_start(&w, "--store", s->uri, "--entity", entity(), NULL);
		int seen = 0;
		char after[256] = "";
		for (int page = 0; page < 3; page++) {
			json_t *v = get(&w, 200, "/api/ids?prefix=%s&limit=2%s%s", base,
			                after[0] ? "&after=" : "", after);
			json_t *ids = json_object_get(v, "ids");
			cr_assert_eq(json_array_size(ids), page < 2 ? 2 : 1, "%s page %d", s->name,
			             page);
			size_t i;
			json_t *id;
			json_array_foreach(ids, i, id)
			{
				snprintf(pid, sizeof pid, "%s-%d", base, ++seen);
				cr_assert_str_eq(str_of(id, "persistence_id"), pid);
				cr_assert_eq(int_of(id, "highest_seq"), 1);
				cr_assert_str_eq(str_of(id, "entity_type"), "game");
			}
			json_t *next = json_object_get(v, "next");
			if (page < 2)
				snprintf(after, sizeof after, "%s", str_of(v, "next"));
			else
				cr_assert(json_is_null(next), "the last page has no next");
			json_decref(v);
		}
		cr_assert_eq(seen, 5);
		/* The type is a prefix too: "game-"; "lobby-" has none of them. */
		json_t *v = get(&w, 200, "/api/ids?type=game&prefix=%s", base);
		cr_assert_eq(json_array_size(json_object_get(v, "ids")), 5);
		json_decref(v);
		v = get(&w, 200, "/api/ids?type=lobby&prefix=%s", base);
		cr_assert_eq(json_array_size(json_object_get(v, "ids")), 0);
		json_decref(v);
		v = get(&w, 200, "/api/info");
		cr_assert_str_eq(str_of(v, "store"),
		                 strcmp(s->name, "postgres") == 0 ? "postgres" : "mongodb");
		json_t *type = json_array_get(json_object_get(v, "entity_types"), 0);
		cr_assert_str_eq(str_of(type, "name"), "game");
		json_decref(v);
		tt_web_stop(&w);
	}
}

Test(web, events_carry_the_state_after_each_one, .timeout = TT_TIMEOUT)
{
	for (const tt_store_t *s = tt_stores(); s->name; s++) {
		const char *pid = tt_timed_game(s);
		tt_web_t w;
		tt_web_start(&w, "--store", s->uri, "--entity", entity(), NULL);
		json_t *v = get(&w, 200, "/api/entities/%s/events", pid);
		cr_assert_str_eq(str_of(v, "entity_type"), "game");
		cr_assert_eq(int_of(v, "highest_seq"), 9);
		cr_assert(json_is_null(json_object_get(v, "next")));
		cr_assert_str_eq(str_of(json_object_get(v, "initial"), "printed"),
		                 " . | . | . \n . | . | . \n . | . | . \n");
		json_t *steps = json_object_get(v, "steps");
		cr_assert_eq(json_array_size(steps), 9, "%s", s->name);
		for (size_t i = 0; i < 9; i++) {
			json_t *st = json_array_get(steps, i);
			json_t *ev = json_object_get(st, "event");
			cr_assert_eq(int_of(ev, "seq"), (json_int_t)i + 1);
			cr_assert_str_eq(str_of(st, "printed"), tt_boards[i], "%s seq %zu", s->name,
			                 i + 1);
			char ts[64];
			snprintf(ts, sizeof ts, "2026-12-03T14:%02zu:00.000Z", i);
			cr_assert_str_eq(str_of(ev, "timestamp"), ts);
		}
		cr_assert_str_eq(
		        str_of(json_object_get(json_array_get(steps, 8), "state"), "status"),
		        "x_won");
		json_decref(v);

		v = get(&w, 200, "/api/entities/%s/events?from=4&limit=3", pid);
		steps = json_object_get(v, "steps");
		cr_assert_eq(json_array_size(steps), 3);
		cr_assert_eq(int_of(json_array_get(steps, 0), "seq"), 4);
		cr_assert_str_eq(str_of(json_array_get(steps, 2), "printed"), tt_boards[5]);
		cr_assert_eq(int_of(v, "next"), 7);
		cr_assert_null(json_object_get(v, "initial"));
		json_decref(v);
		tt_web_stop(&w);
	}
}

Test(web, state_at_a_seq_or_a_time_and_the_diff_of_two_steps, .timeout = TT_TIMEOUT)
{
	for (const tt_store_t *s = tt_stores(); s->name; s++) {
		const char *pid = tt_timed_game(s);
		tt_web_t w;
		tt_web_start(&w, "--store", s->uri, "--entity", entity(), NULL);
		json_t *v = get(&w, 200, "/api/entities/%s/state?seq=3", pid);
		cr_assert_eq(int_of(v, "seq"), 3);
		cr_assert_str_eq(str_of(v, "printed"), tt_boards[2]);
		json_decref(v);

		/* Before the first event: init's state, and when the first came. */
		v = get(&w, 200, "/api/entities/%s/state?at=2026-12-03T13:59:00Z", pid);
		cr_assert_eq(int_of(v, "seq"), 0, "%s", s->name);
		cr_assert(json_is_null(json_object_get(v, "event")));
		cr_assert_eq(int_of(json_object_get(v, "next"), "seq"), 1);
		json_decref(v);
		/* At the first, with an offset and fractions. */
		v = get(&w, 200, "/api/entities/%s/state?at=2026-12-03T15:00:30.5%%2B01:00", pid);
		cr_assert_eq(int_of(v, "seq"), 1);
		cr_assert_str_eq(str_of(v, "at"), "2026-12-03T14:00:30.500Z");
		json_decref(v);
		/* Just before the last, and at it. */
		v = get(&w, 200, "/api/entities/%s/state?at=2026-12-03T14:07:59.999Z", pid);
		cr_assert_eq(int_of(v, "seq"), 8);
		cr_assert_str_eq(str_of(json_object_get(v, "next"), "timestamp"),
		                 "2026-12-03T14:08:00.000Z");
		json_decref(v);
		v = get(&w, 200, "/api/entities/%s/state?at=2026-12-03T14:08:00Z", pid);
		cr_assert_eq(int_of(v, "seq"), 9);
		cr_assert(json_is_null(json_object_get(v, "next")));
		cr_assert_str_eq(str_of(v, "printed"), tt_boards[8]);
		json_decref(v);

		v = get(&w, 200, "/api/entities/%s/diff?from=1&to=2", pid);
		json_t *changes = json_object_get(v, "changes");
		int board = 0;
		size_t i;
		json_t *c;
		json_array_foreach(changes, i, c)
		{
			if (strcmp(str_of(c, "path"), "/board") != 0)
				continue;
			board = 1;
			cr_assert_str_eq(str_of(c, "op"), "changed");
			cr_assert_str_eq(str_of(c, "before"), ".........");
			cr_assert_str_eq(str_of(c, "after"), "....X....");
		}
		cr_assert(board, "%s: no change of /board", s->name);
		cr_assert_eq(json_array_size(json_object_get(v, "events")), 1);
		cr_assert_str_eq(str_of(json_object_get(v, "to"), "printed"), tt_boards[1]);
		json_decref(v);
		tt_web_stop(&w);
	}
}

Test(web, snapshots_and_the_state_from_one, .timeout = TT_TIMEOUT)
{
	for (const tt_store_t *s = tt_stores(); s->name; s++) {
		const char *pid = tt_timed_game(s);
		tt_fake_snapshot(s, pid);
		tt_web_t w;
		tt_web_start(&w, "--store", s->uri, "--entity", entity(), NULL);
		json_t *v = get(&w, 200, "/api/entities/%s/snapshots", pid);
		json_t *snaps = json_object_get(v, "snapshots");
		cr_assert_eq(json_array_size(snaps), 1, "%s", s->name);
		json_t *snap = json_array_get(snaps, 0);
		cr_assert_eq(int_of(snap, "seq"), 4);
		cr_assert_eq(int_of(snap, "version"), 1);
		cr_assert_str_eq(str_of(snap, "timestamp"), "2026-12-03T14:03:30.000Z");
		cr_assert_str_eq(str_of(json_object_get(snap, "data"), "board"), ".OX.X....");
		cr_assert_gt(int_of(snap, "size"), 0);
		json_decref(v);

		v = get(&w, 200, "/api/entities/%s/state?seq=5&from_snapshot=1", pid);
		cr_assert_eq(int_of(json_object_get(v, "snapshot"), "seq"), 4);
		cr_assert_eq(int_of(v, "events_folded"), 1);
		cr_assert_str_eq(str_of(v, "printed"), TT_FAKE_BOARD_5);
		json_decref(v);
		/* Without from_snapshot the events alone are folded. */
		v = get(&w, 200, "/api/entities/%s/state?seq=5", pid);
		cr_assert(json_is_null(json_object_get(v, "snapshot")));
		cr_assert_str_eq(str_of(v, "printed"), tt_boards[4]);
		json_decref(v);
		tt_web_stop(&w);
	}
}

Test(web, bad_input_gets_a_json_error, .timeout = TT_TIMEOUT)
{
	const tt_store_t *s = tt_stores();
	const char *pid = tt_timed_game(s);
	tt_web_t w;
	tt_web_start(&w, "--store", s->uri, "--entity", entity(), NULL);
	static const struct {
		const char *fmt;
		int status;
		const char *code;
	} cases[] = {
	        {"/api/ids?limit=abc", 400, "bad_param"},
	        {"/api/ids?limit=0", 400, "bad_param"},
	        {"/api/ids?limit=100000", 400, "bad_param"},
	        {"/api/entities/%s/events?from=-1", 400, "bad_param"},
	        {"/api/entities/%s/state?at=yesterday", 400, "bad_time"},
	        {"/api/entities/%s/state?at=2026-12-03T14:00:00Z&seq=3", 400, "bad_param"},
	        {"/api/entities/%s/diff?from=5&to=2", 400, "bad_param"},
	        {"/api/entities/%s/events?type=nosuch", 400, "unknown_type"},
	        {"/api/entities/%s/snapshots?limit=x", 400, "bad_param"},
	        {"/api/entities/%s-never/events", 404, "not_found"},
	        {"/api/entities/%s-never", 404, "not_found"},
	        {"/api/nothing/%s", 404, "not_found"},
	        {"/api/stream?from=x", 400, "bad_param"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		json_t *v = get(&w, cases[i].status, cases[i].fmt, pid);
		tt_assert_error(v, cases[i].code, cases[i].fmt);
		json_decref(v);
	}
	tt_web_stop(&w);

	/* Without an entity type for the id, the events come without state. */
	tt_web_start(&w, "--store", s->uri, NULL);
	json_t *v = get(&w, 200, "/api/entities/%s/events?limit=1", pid);
	json_t *st = json_array_get(json_object_get(v, "steps"), 0);
	cr_assert(json_is_null(json_object_get(st, "state")));
	cr_assert_eq(int_of(json_object_get(st, "event"), "seq"), 1);
	json_decref(v);
	v = get(&w, 400, "/api/entities/%s/state?from_snapshot=1", pid);
	tt_assert_error(v, "no_restore", "from_snapshot without a type");
	json_decref(v);
	tt_web_stop(&w);
}

Test(web, a_token_is_required_once_given, .timeout = TT_TIMEOUT)
{
	const tt_store_t *s = tt_stores();
	tt_web_t w;
	tt_web_start(&w, "--store", s->uri, "--token", "s3cret", NULL);
	json_t *v = get(&w, 401, "/api/info");
	tt_assert_error(v, "unauthorized", "no token");
	json_decref(v);
	v = get(&w, 401, "/api/info?token=guess");
	tt_assert_error(v, "unauthorized", "a wrong token");
	json_decref(v);
	v = get(&w, 401, "/api/nothing");
	tt_assert_error(v, "unauthorized", "no token, unknown route");
	json_decref(v);
	v = get(&w, 200, "/api/info?token=s3cret");
	json_decref(v);
	tt_http_t r;
	tt_http_get(&r, w.port, "/api/info", "Authorization: Bearer s3cret\r\n");
	cr_assert_eq(r.status, 200, "%s", r.body);
	free(r.body);
	tt_http_get(&r, w.port, "/", NULL);
	cr_assert_eq(r.status, 401, "the page too: %s", r.body);
	free(r.body);
	tt_http_get(&r, w.port, "/?token=s3cret", NULL);
	cr_assert_eq(r.status, 200);
	cr_assert_not_null(strstr(r.body, "<title>Skald history browser</title>"));
	free(r.body);
	tt_web_stop(&w);
}

Test(web, listening_beyond_loopback_needs_a_token, .timeout = TT_TIMEOUT)
{
	const tt_store_t *s = tt_stores();
	tt_result_t r;
	tt_skald(&r, NULL, "web", "--store", s->uri, "--listen", "0.0.0.0:0", NULL);
	tt_assert_code(&r, 1, "0.0.0.0 without --token");
	cr_assert_not_null(strstr(r.err, "not a loopback address"), "%s", r.err);
	cr_assert_not_null(strstr(r.err, "--token"), "%s", r.err);
	tt_free(&r);
	tt_skald(&r, NULL, "web", "--store", s->uri, "--listen", "localhost:80", NULL);
	tt_assert_code(&r, 1, "a name");
	cr_assert_not_null(strstr(r.err, "not an IP address"), "%s", r.err);
	tt_free(&r);
	tt_skald(&r, NULL, "web", "--store", s->uri, "--listen", "127.0.0.1", NULL);
	tt_assert_code(&r, 1, "no port");
	cr_assert_not_null(strstr(r.err, "HOST:PORT"), "%s", r.err);
	tt_free(&r);
}

Test(web, the_stream_follows_new_events, .timeout = TT_TIMEOUT)
{
	for (const tt_store_t *s = tt_stores(); s->name; s++) {
		const char *pid = tt_pid("live");
		tt_web_t w;
		tt_web_start(&w, "--store", s->uri, "--interval", "50", NULL);
		char target[512];
		snprintf(target, sizeof target, "/api/stream?from=0&prefix=%s&count=3", pid);
		int fd = tt_http_open(w.port, target, NULL);
		/* The stream has started: what is written now, it must follow. */
		tt_http_head(fd);
		tt_result_t r;
		tt_skald(&r,
		         "{\"type\":\"a\",\"data\":{\"n\":1}}\n{\"type\":\"b\",\"data\":{\"n\":2}}"
		         "\n",
		         "append", pid, "--expect", "0", "--store", s->uri, NULL);
		tt_assert_code(&r, 0, s->name);
		tt_free(&r);
		tt_skald(&r, "{\"type\":\"c\",\"data\":{\"n\":3}}\n", "append", pid, "--expect",
		         "2", "--store", s->uri, NULL);
		tt_assert_code(&r, 0, s->name);
		tt_free(&r);
		tt_http_t h;
		tt_http_finish(&h, fd);
		json_t *lines = tt_json_lines(h.body);
		cr_assert_eq(json_array_size(lines), 3, "%s: %s", s->name, h.body);
		for (size_t i = 0; i < 3; i++) {
			json_t *ev = json_array_get(lines, i);
			cr_assert_str_eq(str_of(ev, "persistence_id"), pid);
			cr_assert_eq(int_of(ev, "seq"), (json_int_t)i + 1);
		}
		json_decref(lines);
		free(h.body);
		tt_web_stop(&w);
	}
}

/* ------------------------------------------------------------------------ */
/* The page, in a browser                                                    */

/* The text of the element with id="id" in html (a static copy), entities
 * of the board decoded; NULL if there is none. */
static const char *element_text(const char *html, const char *id)
{
	static char out[4096];
	char attr[64];
	snprintf(attr, sizeof attr, "id=\"%s\"", id);
	const char *p = strstr(html, attr);
	if (p == NULL || (p = strchr(p, '>')) == NULL)
		return NULL;
	p++;
	const char *end = strchr(p, '<');
	if (end == NULL)
		return NULL;
	snprintf(out, sizeof out, "%.*s", (int)(end - p), p);
	return out;
}

Test(web, chromium_steps_a_game_to_its_last_move, .timeout = TT_TIMEOUT)
{
	tt_result_t r;
	const tt_store_t *s = tt_stores();
	tt_db_t db;
	tt_db_new(&db, s);
	char *game[] = {(char *)tt_build("examples/tictactoe"),
	                "demo",
	                "--nodes",
	                "1",
	                "--store",
	                db.uri,
	                "--games",
	                "2",
	                "--players",
	                "4",
	                NULL};
	tt_runv(&r, NULL, game);
	tt_assert_code(&r, 0, "the tic-tac-toe example");
	tt_free(&r);
	/* The board after its last move, as replay shows it. */
	tt_skald(&r, NULL, "replay", "game-g1", "--entity", entity(), "--json", "--store", db.uri,
	         NULL);
	tt_assert_code(&r, 0, "replay game-g1");
	json_t *lines = tt_json_lines(r.out);
	tt_free(&r);
	size_t n = json_array_size(lines);
	cr_assert_gt(n, 5);
	json_t *last = json_array_get(lines, n - 1);
	char want[256];
	snprintf(want, sizeof want, "%s", str_of(last, "printed"));
	json_int_t last_seq = int_of(json_object_get(last, "event"), "seq");
	json_decref(lines);

	tt_web_t w;
	tt_web_start(&w, "--store", db.uri, "--entity", entity(), NULL);
	char url[256];
	snprintf(url, sizeof url, "http://127.0.0.1:%d/#pid=game-g1&seq=last", w.port);
	tt_chromium_dom(&r, url, 20000);
	char seq_attr[64];
	snprintf(seq_attr, sizeof seq_attr, "data-seq=\"%lld\"", (long long)last_seq);
	cr_assert_not_null(strstr(r.out, "data-pid=\"game-g1\""), "%.3000s", r.out);
	cr_assert_not_null(strstr(r.out, seq_attr), "the page is not at seq %lld: %.3000s",
	                   (long long)last_seq, r.out);
	const char *board = element_text(r.out, "state-printed");
	cr_assert_not_null(board, "no board in the page: %.3000s", r.out);
	cr_assert_str_eq(board, want, "the page shows\n%s\nreplay shows\n%s", board, want);
	/* And the events table lists every event up to it. */
	char row[64];
	snprintf(row, sizeof row, "<tr data-seq=\"%lld\"", (long long)last_seq);
	cr_assert_not_null(strstr(r.out, row), "no row of seq %lld", (long long)last_seq);
	tt_free(&r);
	tt_web_stop(&w);
	tt_db_drop(&db);
}
