/*
 * tests/tool/test_unreadable.c - events that are stored must be read back:
 * numbers that jsonb keeps in another form, rows written by older builds,
 * and what the tool says about an event that cannot be read at all.
 */
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/tool/tt.h"

/* Runs sql on the PostgreSQL journal uri with $1 = pid. */
static void pg_exec(const char *uri, const char *sql, const char *pid)
{
	char conninfo[700];
	snprintf(conninfo, sizeof conninfo, "%s", uri);
	conninfo[strcspn(conninfo, "?")] = '\0'; /* the store's options are not libpq's */
	PGconn *c = PQconnectdb(conninfo);
	cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
	const char *params[1] = {pid};
	PGresult *res = PQexecParams(c, sql, 1, NULL, params, NULL, NULL, 0);
	cr_assert_eq(PQresultStatus(res), PGRES_COMMAND_OK, "%s: %s", sql, PQerrorMessage(c));
	cr_assert_str_eq(PQcmdTuples(res), "1", "%s changed %s rows", sql, PQcmdTuples(res));
	PQclear(res);
	PQfinish(c);
}

/* The data of the events `skald events PID --json` prints (owned array). */
static json_t *data_of(const char *uri, const char *pid, const char *ctx)
{
	tt_result_t r;
	tt_skald(&r, NULL, "events", pid, "--json", "--store", uri, NULL);
	tt_assert_code(&r, 0, ctx);
	json_t *lines = tt_json_lines(r.out);
	json_t *data = json_array();
	size_t i;
	json_t *e;
	json_array_foreach(lines, i, e)
	{
		json_array_append(data, json_object_get(e, "data"));
	}
	json_decref(lines);
	tt_free(&r);
	return data;
}

static void append_three(const char *uri, const char *pid)
{
	tt_result_t r;
	tt_skald(&r,
	         "{\"type\":\"u.x\",\"data\":{\"n\":1}}\n"
	         "{\"type\":\"u.x\",\"data\":{\"n\":2}}\n"
	         "{\"type\":\"u.x\",\"data\":{\"n\":3}}\n",
	         "append", pid, "--expect", "0", "--store", uri, NULL);
	tt_assert_code(&r, 0, pid);
	tt_free(&r);
}

/* The first bug report, on every store: reals of any size come back as
 * reals of the same value, integers as integers. */
Test(unreadable, large_and_small_reals_read_back_equal, .timeout = TT_TIMEOUT)
{
	static const char doc[] = "{\"f\":1.5e300,\"g\":1e19,\"h\":1e17,\"i\":-2.5e-300,"
	                          "\"j\":1.7976931348623157e308,\"k\":5e-324,\"l\":100.0,"
	                          "\"m\":[1e22,{\"z\":-1e19}],\"n\":9223372036854775807,"
	                          "\"o\":-9223372036854775808}";
	char input[512];
	snprintf(input, sizeof input, "{\"type\":\"r.x\",\"version\":1,\"data\":%s}\n", doc);
	json_t *want = json_loads(doc, 0, NULL);
	cr_assert_not_null(want);
	for (const tt_store_t *s = tt_stores(); s->name; s++) {
		const char *pid = tt_pid("big");
		tt_result_t r;
		tt_skald(&r, input, "append", pid, "--expect", "0", "--store", s->uri, NULL);
		tt_assert_code(&r, 0, s->name);
		tt_free(&r);
		json_t *got = data_of(s->uri, pid, s->name);
		cr_assert_eq(json_array_size(got), 1, "%s", s->name);
		char *text = json_dumps(json_array_get(got, 0), JSON_SORT_KEYS);
		cr_assert(json_equal(json_array_get(got, 0), want), "%s: wrote %s, read %s",
		          s->name, doc, text);
		free(text);
		json_decref(got);
	}
	json_decref(want);
}

/* Builds before the fix wrote a real such as 1.5e300 in exponent form, and
 * jsonb kept it as a 301-digit integer: such rows read back as reals. */
Test(unreadable, rows_of_older_builds_with_huge_integers_read_back_as_reals, .timeout = TT_TIMEOUT)
{
	const tt_store_t *s = tt_stores(); /* PostgreSQL */
	const char *pid = tt_pid("legacy");
	append_three(s->uri, pid);
	pg_exec(s->uri,
	        "UPDATE skald.events SET data = '{\"f\": 1.5e300, \"g\": -1e19, \"n\": 7}'::jsonb "
	        "WHERE persistence_id = $1 AND seq = 2",
	        pid);
	json_t *got = data_of(s->uri, pid, "events");
	cr_assert_eq(json_array_size(got), 3);
	json_t *d = json_array_get(got, 1);
	cr_assert(json_is_real(json_object_get(d, "f")));
	cr_assert_float_eq(json_real_value(json_object_get(d, "f")), 1.5e300, 1e285);
	cr_assert(json_is_real(json_object_get(d, "g")));
	cr_assert_float_eq(json_real_value(json_object_get(d, "g")), -1e19, 1e4);
	cr_assert(json_is_integer(json_object_get(d, "n")));
	json_decref(got);
}

/* An event in the journal that no build can read (here: nesting deeper
 * than jansson reads, put there by hand): the tool names it, prints what
 * comes before it, and says how to carry on past it. */
Test(unreadable, an_unreadable_event_is_named_with_the_way_past_it, .timeout = TT_TIMEOUT)
{
	/* A database of its own: the other tests read the whole journal. */
	tt_db_t db;
	tt_db_new(&db, tt_stores()); /* PostgreSQL */
	const tt_db_t *s = &db;
	const char *pid = tt_pid("unreadable");
	append_three(s->uri, pid);
	pg_exec(s->uri,
	        "UPDATE skald.events SET data = (repeat('[', 2100) || '1' || repeat(']', "
	        "2100))::jsonb "
	        "WHERE persistence_id = $1 AND seq = 2",
	        pid);
	char want[256];

	tt_result_t r;
	tt_skald(&r, NULL, "events", pid, "--json", "--store", s->uri, NULL);
	tt_assert_code(&r, 2, "events");
	snprintf(want, sizeof want, "event \"%s\" seq 2", pid);
	cr_assert(strstr(r.err, want), "stderr does not name the event: %s", r.err);
	cr_assert(strstr(r.err, "SKALD_EDECODE"), "%s", r.err);
	snprintf(want, sizeof want, "skald events '%s' --from 3", pid);
	cr_assert(strstr(r.err, want), "stderr does not say how to go on: %s", r.err);
	json_t *before = tt_json_lines(r.out);
	cr_assert_eq(json_array_size(before), 1, "the event before it: %s", r.out);
	json_decref(before);
	tt_free(&r);

	tt_skald(&r, NULL, "events", pid, "--from", "3", "--json", "--store", s->uri, NULL);
	tt_assert_code(&r, 0, "events --from 3");
	tt_free(&r);

	tt_skald(&r, NULL, "export", "--pid", pid, "--store", s->uri, NULL);
	tt_assert_code(&r, 2, "export --pid");
	snprintf(want, sizeof want, "skald export --pid '%s' --from 3", pid);
	cr_assert(strstr(r.err, want), "%s", r.err);
	tt_free(&r);

	/* The global order: the hint gives the event's offset. */
	tt_skald(&r, NULL, "export", "--prefix", pid, "--store", s->uri, NULL);
	tt_assert_code(&r, 2, "export --prefix");
	const char *after = strstr(r.err, "skald export --after ");
	cr_assert_not_null(after, "%s", r.err);
	char offset[32];
	snprintf(offset, sizeof offset, "%" PRIu64,
	         (uint64_t)strtoull(after + strlen("skald export --after "), NULL, 10));
	json_t *first = tt_json_lines(r.out);
	cr_assert_eq(json_array_size(first), 1, "%s", r.out);
	json_decref(first);
	tt_free(&r);
	tt_skald(&r, NULL, "export", "--prefix", pid, "--after", offset, "--store", s->uri, NULL);
	tt_assert_code(&r, 0, "export --after");
	json_t *rest = tt_json_lines(r.out);
	cr_assert_eq(json_array_size(rest), 1, "%s", r.out);
	cr_assert_eq(json_integer_value(json_object_get(json_array_get(rest, 0), "seq")), 3);
	json_decref(rest);
	tt_free(&r);
	tt_db_drop(&db);
}

Test(unreadable, export_refuses_from_without_pid_and_after_with_pid, .timeout = TT_TIMEOUT)
{
	const tt_store_t *s = tt_stores();
	tt_result_t r;
	tt_skald(&r, NULL, "export", "--from", "3", "--store", s->uri, NULL);
	tt_assert_code(&r, 1, "export --from");
	cr_assert(strstr(r.err, "--from N needs --pid PID"), "%s", r.err);
	tt_free(&r);
	tt_skald(&r, NULL, "export", "--pid", "x", "--after", "3", "--store", s->uri, NULL);
	tt_assert_code(&r, 1, "export --pid --after");
	cr_assert(strstr(r.err, "--after OFFSET reads the global order"), "%s", r.err);
	tt_free(&r);
}
