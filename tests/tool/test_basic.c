/*
 * tests/tool/test_basic.c - the reading and writing subcommands (ids,
 * events, highest, append, delete) and the exit codes every subcommand
 * shares, on every store of the run.
 */
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include "tests/tool/tt.h"

/* n events "t.counted" {"n": i} as JSON lines. Static buffer. */
static const char *counted(int from, int n)
{
	static char buf[8192];
	size_t len = 0;
	for (int i = from; i < from + n; i++)
		len += (size_t)snprintf(
		        buf + len, sizeof buf - len,
		        "{\"type\":\"t.counted\",\"version\":%d,\"data\":{\"n\":%d}}\n",
		        i % 2 ? 1 : 2, i);
	return buf;
}

static void append_ok(const tt_store_t *s, const char *pid, const char *expect, const char *input,
                      const char *want_highest)
{
	tt_result_t r;
	tt_skald(&r, input, "append", pid, "--expect", expect, "--store", s->uri, NULL);
	tt_assert_code(&r, 0, s->name);
	char want[64];
	snprintf(want, sizeof want, "%s\n", want_highest);
	cr_assert_str_eq(r.out, want, "%s: append printed %s", s->name, r.out);
	tt_free(&r);
}

Test(append, prints_the_new_highest_and_events_shows_the_envelopes, .timeout = TT_TIMEOUT)
{
	for (const tt_store_t *s = tt_stores(); s->name; s++) {
		const char *pid = tt_pid("basic");
		append_ok(s, pid, "0", counted(1, 3), "3");

		tt_result_t r;
		tt_skald(&r, NULL, "events", pid, "--json", "--store", s->uri, NULL);
		tt_assert_code(&r, 0, s->name);
		json_t *lines = tt_json_lines(r.out);
		cr_assert_eq(json_array_size(lines), 3, "%s: %s", s->name, r.out);
		regex_t rfc3339;
		cr_assert_eq(regcomp(&rfc3339,
		                     "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-"
		                     "9]{3}Z$",
		                     REG_EXTENDED | REG_NOSUB),
		             0);
		for (size_t i = 0; i < 3; i++) {
			json_t *e = json_array_get(lines, i);
			static const char *const keys[] = {"persistence_id", "seq",   "type",
			                                   "version",        "data",  "timestamp",
			                                   "writer",         "offset"};
			cr_assert_eq(json_object_size(e), 8, "%s: keys of %s", s->name, r.out);
			for (size_t k = 0; k < 8; k++)
				cr_assert_not_null(json_object_get(e, keys[k]), "%s: no %s",
				                   s->name, keys[k]);
			cr_assert_str_eq(json_string_value(json_object_get(e, "persistence_id")),
			                 pid);
			cr_assert_eq(json_integer_value(json_object_get(e, "seq")),
			             (json_int_t)i + 1);
			cr_assert_str_eq(json_string_value(json_object_get(e, "type")),
			                 "t.counted");
			cr_assert_eq(json_integer_value(json_object_get(e, "version")),
			             (i + 1) % 2 ? 1 : 2);
			cr_assert_eq(json_integer_value(
			                     json_object_get(json_object_get(e, "data"), "n")),
			             (json_int_t)i + 1);
			const char *ts = json_string_value(json_object_get(e, "timestamp"));
			cr_assert(ts && regexec(&rfc3339, ts, 0, NULL, 0) == 0, "%s: timestamp %s",
			          s->name, ts);
			cr_assert(json_integer_value(json_object_get(e, "offset")) > 0);
			cr_assert_eq(strlen(json_string_value(json_object_get(e, "writer"))), 16);
		}
		regfree(&rfc3339);
		json_decref(lines);
		tt_free(&r);

		/* The table has a header and one row per event. */
		tt_skald(&r, NULL, "events", pid, "--store", s->uri, NULL);
		tt_assert_code(&r, 0, s->name);
		cr_assert(strncmp(r.out, "SEQ", 3) == 0, "%s: %s", s->name, r.out);
		cr_assert_not_null(strstr(r.out, "\n3 "), "%s: %s", s->name, r.out);
		cr_assert_not_null(strstr(r.out, "{\"n\":3}"), "%s: %s", s->name, r.out);
		tt_free(&r);
	}
}

Test(events, from_to_and_max_select_a_range, .timeout = TT_TIMEOUT)
{
	for (const tt_store_t *s = tt_stores(); s->name; s++) {
		const char *pid = tt_pid("range");
		append_ok(s, pid, "0", counted(1, 6), "6");
		tt_result_t r;
		tt_skald(&r, NULL, "events", pid, "--from", "2", "--to=5", "--max", "2", "--json",
		         "--store", s->uri, NULL);
		tt_assert_code(&r, 0, s->name);
		json_t *lines = tt_json_lines(r.out);
		cr_assert_eq(json_array_size(lines), 2, "%s: %s", s->name, r.out);
		cr_assert_eq(json_integer_value(json_object_get(json_array_get(lines, 0), "seq")),
		             2);
		cr_assert_eq(json_integer_value(json_object_get(json_array_get(lines, 1), "seq")),
		             3);
		json_decref(lines);
		tt_free(&r);
	}
}

Test(highest, prints_the_number_and_json, .timeout = TT_TIMEOUT)
{
	for (const tt_store_t *s = tt_stores(); s->name; s++) {
		const char *pid = tt_pid("highest");
		append_ok(s, pid, "0", counted(1, 2), "2");
		append_ok(s, pid, "2", counted(3, 2), "4");
		tt_result_t r;
		tt_skald(&r, NULL, "highest", pid, "--store", s->uri, NULL);
		tt_assert_code(&r, 0, s->name);
		cr_assert_str_eq(r.out, "4\n");
		tt_free(&r);
		tt_skald(&r, NULL, "highest", pid, "--json", "--store", s->uri, NULL);
		tt_assert_code(&r, 0, s->name);
		char want[256];
		snprintf(want, sizeof want, "{\"persistence_id\":\"%s\",\"highest_seq\":4}\n", pid);
		cr_assert_str_eq(r.out, want);
		tt_free(&r);
	}
}

Test(highest, reads_the_journal_from_the_environment, .timeout = TT_TIMEOUT)
{
	const tt_store_t *s = tt_stores();
	const char *pid = tt_pid("env");
	append_ok(s, pid, "0", counted(1, 1), "1");
	setenv("SKALD_JOURNAL", s->uri, 1);
	tt_result_t r;
	tt_skald(&r, NULL, "highest", pid, NULL);
	tt_assert_code(&r, 0, "SKALD_JOURNAL");
	cr_assert_str_eq(r.out, "1\n");
	tt_free(&r);
	unsetenv("SKALD_JOURNAL");
	tt_skald(&r, NULL, "highest", pid, NULL);
	tt_assert_code(&r, 1, "no journal");
	cr_assert_not_null(strstr(r.err, "--store"), "%s", r.err);
	cr_assert_not_null(strstr(r.err, "SKALD_JOURNAL"), "%s", r.err);
	tt_free(&r);
}

Test(ids, lists_ids_with_a_prefix_and_their_highest, .timeout = TT_TIMEOUT)
{
	for (const tt_store_t *s = tt_stores(); s->name; s++) {
		char prefix[128];
		snprintf(prefix, sizeof prefix, "%s", tt_pid("ids"));
		char a[160], b[160];
		snprintf(a, sizeof a, "%s-a", prefix);
		snprintf(b, sizeof b, "%s-b", prefix);
		append_ok(s, b, "0", counted(1, 2), "2");
		append_ok(s, a, "0", counted(1, 3), "3");
		tt_result_t r;
		tt_skald(&r, NULL, "ids", "--prefix", prefix, "--json", "--store", s->uri, NULL);
		tt_assert_code(&r, 0, s->name);
		char want[512];
		snprintf(want, sizeof want,
		         "{\"persistence_id\":\"%s\",\"highest_seq\":3}\n"
		         "{\"persistence_id\":\"%s\",\"highest_seq\":2}\n",
		         a, b);
		cr_assert_str_eq(r.out, want, "%s", s->name);
		tt_free(&r);

		tt_skald(&r, NULL, "ids", "--prefix", prefix, "--store", s->uri, NULL);
		tt_assert_code(&r, 0, s->name);
		cr_assert(strncmp(r.out, "PERSISTENCE_ID", 14) == 0, "%s", r.out);
		cr_assert_not_null(strstr(r.out, a), "%s", r.out);
		tt_free(&r);
	}
}

Test(append, a_stale_expect_is_a_conflict_that_names_the_highest, .timeout = TT_TIMEOUT)
{
	for (const tt_store_t *s = tt_stores(); s->name; s++) {
		const char *pid = tt_pid("conflict");
		append_ok(s, pid, "0", counted(1, 3), "3");
		tt_result_t r;
		tt_skald(&r, counted(4, 2), "append", pid, "--expect", "1", "--store", s->uri,
		         NULL);
		tt_assert_code(&r, 3, s->name);
		cr_assert_not_null(strstr(r.err, "is 3"), "%s: %s", s->name, r.err);
		cr_assert_str_eq(r.out, "");
		tt_free(&r);
		tt_skald(&r, NULL, "highest", pid, "--store", s->uri, NULL);
		cr_assert_str_eq(r.out, "3\n", "%s: the conflict wrote something", s->name);
		tt_free(&r);
	}
}

Test(append, a_malformed_line_names_its_number_and_appends_nothing, .timeout = TT_TIMEOUT)
{
	static const struct {
		const char *input, *says;
	} cases[] = {
	        {"{\"type\":\"a\",\"data\":{}}\n{\"type\":\"a\",\"data\":{}\n", "line 2"},
	        {"{\"type\":\"a\",\"data\":{}}\n\n{\"type\":\"a\",\"data\":[]}\n", "line 3"},
	        {"{\"type\":\"a\",\"data\":{}}\n{\"type\":\"\",\"data\":{}}\n", "line 2"},
	        {"{\"type\":\"a\",\"data\":{},\"colour\":1}\n", "colour"},
	        {"{\"type\":\"a\",\"version\":0,\"data\":{}}\n", "version"},
	        {"", "no events"},
	};
	for (const tt_store_t *s = tt_stores(); s->name; s++) {
		for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
			const char *pid = tt_pid("malformed");
			tt_result_t r;
			tt_skald(&r, cases[i].input, "append", pid, "--expect", "0", "--store",
			         s->uri, NULL);
			tt_assert_code(&r, 1, cases[i].says);
			cr_assert_not_null(strstr(r.err, cases[i].says), "%s: case %zu: %s",
			                   s->name, i, r.err);
			tt_free(&r);
			tt_skald(&r, NULL, "highest", pid, "--store", s->uri, NULL);
			tt_assert_code(&r, 4, "nothing may have been appended");
			tt_free(&r);
		}
	}
}

Test(append, takes_the_envelopes_of_events_json, .timeout = TT_TIMEOUT)
{
	for (const tt_store_t *s = tt_stores(); s->name; s++) {
		const char *from = tt_pid("pipe"), *to = tt_pid("pipe");
		append_ok(s, from, "0", counted(1, 3), "3");
		tt_result_t r, w;
		tt_skald(&r, NULL, "events", from, "--json", "--store", s->uri, NULL);
		tt_assert_code(&r, 0, s->name);
		tt_skald(&w, r.out, "append", to, "--expect", "0", "--store", s->uri, NULL);
		tt_assert_code(&w, 0, s->name);
		cr_assert_str_eq(w.out, "3\n");
		tt_free(&r);
		tt_free(&w);
		tt_skald(&r, NULL, "events", to, "--to", "3", "--from", "3", "--json", "--store",
		         s->uri, NULL);
		json_t *lines = tt_json_lines(r.out);
		json_t *e = json_array_get(lines, 0);
		cr_assert_eq(json_integer_value(json_object_get(json_object_get(e, "data"), "n")),
		             3);
		cr_assert_str_eq(json_string_value(json_object_get(e, "persistence_id")), to);
		json_decref(lines);
		tt_free(&r);
	}
}

Test(delete, removes_events_and_keeps_the_highest, .timeout = TT_TIMEOUT)
{
	for (const tt_store_t *s = tt_stores(); s->name; s++) {
		const char *pid = tt_pid("delete");
		append_ok(s, pid, "0", counted(1, 5), "5");
		tt_result_t r;
		tt_skald(&r, NULL, "delete", pid, "--to", "3", "--json", "--store", s->uri, NULL);
		tt_assert_code(&r, 0, s->name);
		char want[256];
		snprintf(want, sizeof want,
		         "{\"persistence_id\":\"%s\",\"deleted_to\":3,\"highest_seq\":5}\n", pid);
		cr_assert_str_eq(r.out, want);
		tt_free(&r);

		tt_skald(&r, NULL, "events", pid, "--json", "--store", s->uri, NULL);
		json_t *lines = tt_json_lines(r.out);
		cr_assert_eq(json_array_size(lines), 2, "%s: %s", s->name, r.out);
		cr_assert_eq(json_integer_value(json_object_get(json_array_get(lines, 0), "seq")),
		             4);
		json_decref(lines);
		tt_free(&r);

		tt_skald(&r, NULL, "highest", pid, "--store", s->uri, NULL);
		cr_assert_str_eq(r.out, "5\n");
		tt_free(&r);

		/* The next write still follows the highest. */
		append_ok(s, pid, "5", counted(6, 1), "6");

		tt_skald(&r, NULL, "delete", pid, "--store", s->uri, NULL);
		tt_assert_code(&r, 1, "delete without --to");
		cr_assert_not_null(strstr(r.err, "--to"), "%s", r.err);
		tt_free(&r);
	}
}

Test(exit_codes, an_unknown_persistence_id_is_4, .timeout = TT_TIMEOUT)
{
	for (const tt_store_t *s = tt_stores(); s->name; s++) {
		const char *pid = tt_pid("nobody");
		const char *so = tt_build("examples/tictactoe_game.so:tictactoe_game");
		tt_result_t r;
		tt_skald(&r, NULL, "events", pid, "--store", s->uri, NULL);
		tt_assert_code(&r, 4, "events");
		cr_assert_not_null(strstr(r.err, pid), "%s", r.err);
		tt_free(&r);
		tt_skald(&r, NULL, "highest", pid, "--store", s->uri, NULL);
		tt_assert_code(&r, 4, "highest");
		tt_free(&r);
		tt_skald(&r, NULL, "replay", pid, "--entity", so, "--store", s->uri, NULL);
		tt_assert_code(&r, 4, "replay");
		tt_free(&r);
		tt_skald(&r, NULL, "delete", pid, "--to", "1", "--store", s->uri, NULL);
		tt_assert_code(&r, 4, "delete");
		tt_free(&r);
		tt_skald(&r, NULL, "export", "--pid", pid, "--store", s->uri, NULL);
		tt_assert_code(&r, 4, "export");
		tt_free(&r);
	}
}

Test(exit_codes, an_unknown_scheme_is_1_and_lists_the_known_ones, .timeout = TT_TIMEOUT)
{
	tt_result_t r;
	tt_skald(&r, NULL, "ids", "--store", "nosuchstore://x/y", NULL);
	tt_assert_code(&r, 1, "unknown scheme");
	cr_assert_not_null(strstr(r.err, "nosuchstore"), "%s", r.err);
	cr_assert_not_null(strstr(r.err, "postgres"), "%s", r.err);
	cr_assert_not_null(strstr(r.err, "mongodb"), "%s", r.err);
	tt_free(&r);
}

Test(exit_codes, a_memory_store_is_refused_with_the_reason, .timeout = TT_TIMEOUT)
{
	static const char *const cmds[][3] = {
	        {"ids", NULL, NULL},
	        {"events", "x-1", NULL},
	        {"tail", "--count", "1"},
	};
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
		tt_result_t r;
		tt_skald(&r, NULL, cmds[i][0], "--store", "memory://shared", cmds[i][1], cmds[i][2],
		         NULL);
		tt_assert_code(&r, 1, cmds[i][0]);
		cr_assert_not_null(strstr(r.err, "inside the process"), "%s", r.err);
		tt_free(&r);
	}
}

/* A loopback port nobody listens on: bound, read back, closed. */
static int closed_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof a;
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

Test(exit_codes, an_unreachable_store_is_2_with_the_backend_message, .timeout = TT_TIMEOUT)
{
	char pg[256], mongo[256];
	snprintf(pg, sizeof pg, "postgres://skald:secret@127.0.0.1:%d/skald", closed_port());
	snprintf(mongo, sizeof mongo, "mongodb://127.0.0.1:%d/skald?serverSelectionTimeoutMS=1000",
	         closed_port());
	const char *uris[] = {pg, mongo};
	for (size_t i = 0; i < 2; i++) {
		tt_result_t r;
		tt_skald(&r, NULL, "highest", "x-1", "--store", uris[i], NULL);
		tt_assert_code(&r, 2, uris[i]);
		/* The backend's own words, and never the password. */
		cr_assert(strstr(r.err, "onnect") != NULL, "%s", r.err);
		cr_assert_null(strstr(r.err, "secret"), "%s", r.err);
		tt_free(&r);
		tt_skald(&r, "{\"type\":\"a\",\"data\":{}}\n", "append", "x-1", "--expect", "0",
		         "--store", uris[i], NULL);
		tt_assert_code(&r, 2, uris[i]);
		tt_free(&r);
	}
}

Test(exit_codes, usage_mistakes_are_1_and_name_the_flag, .timeout = TT_TIMEOUT)
{
	const char *uri = tt_stores()->uri;
	static const struct {
		const char *args[6];
		const char *says;
	} cases[] = {
	        {{"events", "x-1", "--from", "two", NULL}, "--from"},
	        {{"events", "x-1", "--to", NULL}, "--to"},
	        {{"events", "x-1", "--colour", NULL}, "--colour"},
	        {{"events", NULL}, "PID"},
	        {{"highest", "a", "b", NULL}, "\"b\""},
	        {{"append", "x-1", NULL}, "--expect"},
	        {{"append", "x-1", "--expect", "-1", NULL}, "--expect"},
	        {{"replay", "x-1", NULL}, "--entity"},
	        {{"replay", "x-1", "--entity", "nocolon", NULL}, "--entity"},
	        {{"tail", "--interval", "0", NULL}, "--interval"},
	        {{"import", "--force=yes", NULL}, "--force"},
	        {{"frobnicate", NULL}, "frobnicate"},
	        /* A number that is only too large is told so. */
	        {{"events", "x-1", "--from", "18446744073709551616", NULL}, "--from is at most"},
	        {{"append", "", "--expect", "0", NULL}, "PID is empty"},
	        {{"highest", "", NULL}, "PID is empty"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *argv[16];
		int n = 0;
		argv[n++] = (char *)tt_build("skald");
		for (const char *const *a = cases[i].args; *a; a++)
			argv[n++] = (char *)*a;
		argv[n++] = "--store";
		argv[n++] = (char *)uri;
		argv[n] = NULL;
		tt_result_t r;
		tt_runv(&r, "", argv);
		tt_assert_code(&r, 1, cases[i].says);
		cr_assert_not_null(strstr(r.err, cases[i].says), "case %zu: %s", i, r.err);
		tt_free(&r);
	}
}

Test(exit_codes, migrate_status_is_5_while_migrations_are_pending, .timeout = TT_TIMEOUT)
{
	for (const tt_store_t *s = tt_stores(); s->name; s++) {
		tt_db_t db;
		tt_db_new_empty(&db, s);
		tt_result_t r;
		tt_skald(&r, NULL, "migrate", "--status", "--store", db.uri, NULL);
		tt_assert_code(&r, 5, s->name);
		cr_assert_not_null(strstr(r.out, "pending  "), "%s", r.out);
		cr_assert_not_null(strstr(r.err, "pending: run `skald migrate`"), "%s", r.err);
		tt_free(&r);
		tt_skald(&r, NULL, "migrate", "--store", db.uri, NULL);
		tt_assert_code(&r, 0, s->name);
		tt_free(&r);
		tt_skald(&r, NULL, "migrate", "--status", "--store", db.uri, NULL);
		tt_assert_code(&r, 0, s->name);
		cr_assert_not_null(strstr(r.out, "up to date"), "%s", r.out);
		tt_free(&r);
		tt_db_drop(&db);
	}
}
