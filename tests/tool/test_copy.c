/*
 * tests/tool/test_copy.c - `skald export` and `skald import`: histories
 * move between databases with their seq, type, version, data, timestamp
 * and writer; an import never overwrites a history unless told how.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/tool/tt.h"

static void append_ok(const char *uri, const char *pid, const char *expect, const char *input)
{
	tt_result_t r;
	tt_skald(&r, input, "append", pid, "--expect", expect, "--store", uri, NULL);
	tt_assert_code(&r, 0, pid);
	tt_free(&r);
}

static const char *events(int from, int n)
{
	static char buf[4096];
	size_t len = 0;
	for (int i = from; i < from + n; i++)
		len += (size_t)snprintf(
		        buf + len, sizeof buf - len,
		        "{\"type\":\"copy.step\",\"version\":%d,"
		        "\"data\":{\"i\":%d,\"s\":\"caf\\u00e9 \\\"%d\\\"\",\"f\":%d.5}}\n",
		        1 + i % 3, i, i, i);
	return buf;
}

/* The envelopes of text, without their offsets (a store's own). Owned. */
static json_t *without_offsets(const char *text)
{
	json_t *a = tt_json_lines(text);
	size_t i;
	json_t *e;
	json_array_foreach(a, i, e)
	{
		cr_assert_not_null(json_object_get(e, "offset"));
		json_object_del(e, "offset");
	}
	return a;
}

/* Exports with --prefix from uri. */
static void export_prefix(tt_result_t *r, const char *uri, const char *prefix)
{
	tt_skald(r, NULL, "export", "--prefix", prefix, "--store", uri, NULL);
	tt_assert_code(r, 0, "export");
}

Test(copy, export_then_import_into_another_database_keeps_every_field, .timeout = TT_TIMEOUT)
{
	for (const tt_store_t *s = tt_stores(); s->name; s++) {
		char prefix[128], a[160], b[160];
		snprintf(prefix, sizeof prefix, "%s", tt_pid("copy"));
		snprintf(a, sizeof a, "%s-a", prefix);
		snprintf(b, sizeof b, "%s-b", prefix);
		/* Interleaved in the global order: a, b, a. */
		append_ok(s->uri, a, "0", events(1, 3));
		append_ok(s->uri, b, "0", events(1, 2));
		append_ok(s->uri, a, "3", events(4, 2));

		tt_result_t src, imp, dst;
		export_prefix(&src, s->uri, prefix);
		json_t *want = without_offsets(src.out);
		cr_assert_eq(json_array_size(want), 7, "%s: %s", s->name, src.out);

		tt_db_t db;
		tt_db_new(&db, s);
		tt_skald(&imp, src.out, "import", "--store", db.uri, NULL);
		tt_assert_code(&imp, 0, s->name);
		cr_assert_str_eq(imp.out, "imported 7 events of 2 persistence ids\n", "%s",
		                 s->name);
		tt_free(&imp);

		/* The whole destination journal is what was imported. */
		tt_skald(&dst, NULL, "export", "--store", db.uri, NULL);
		tt_assert_code(&dst, 0, s->name);
		json_t *got = without_offsets(dst.out);
		cr_assert(json_equal(want, got), "%s: exported\n%s\nimported and exported\n%s",
		          s->name, src.out, dst.out);
		json_decref(got);
		json_decref(want);
		tt_free(&dst);
		tt_free(&src);

		tt_skald(&dst, NULL, "highest", b, "--store", db.uri, NULL);
		cr_assert_str_eq(dst.out, "2\n");
		tt_free(&dst);
		tt_db_drop(&db);
	}
}

Test(copy, import_refuses_an_existing_history_and_force_appends_only_what_is_new,
     .timeout = TT_TIMEOUT)
{
	for (const tt_store_t *s = tt_stores(); s->name; s++) {
		char prefix[128], a[160], b[160];
		snprintf(prefix, sizeof prefix, "%s", tt_pid("force"));
		snprintf(a, sizeof a, "%s-a", prefix);
		snprintf(b, sizeof b, "%s-b", prefix);
		append_ok(s->uri, a, "0", events(1, 3));
		append_ok(s->uri, b, "0", events(1, 1));
		tt_result_t src, r;
		export_prefix(&src, s->uri, prefix);
		tt_db_t db;
		tt_db_new(&db, s);
		tt_skald(&r, src.out, "import", "--store", db.uri, NULL);
		tt_assert_code(&r, 0, s->name);
		tt_free(&r);

		/* Again: refused as a whole, naming what is there. */
		tt_skald(&r, src.out, "import", "--store", db.uri, NULL);
		tt_assert_code(&r, 3, s->name);
		cr_assert_not_null(strstr(r.err, a), "%s", r.err);
		cr_assert_not_null(strstr(r.err, "up to seq 3"), "%s", r.err);
		cr_assert_not_null(strstr(r.err, "nothing imported"), "%s", r.err);
		tt_free(&r);
		tt_free(&src);

		/* The source goes on; --force brings over only the new events. */
		append_ok(s->uri, a, "3", events(4, 2));
		export_prefix(&src, s->uri, prefix);
		tt_skald(&r, src.out, "import", "--force", "--json", "--store", db.uri, NULL);
		tt_assert_code(&r, 0, s->name);
		cr_assert_str_eq(r.out, "{\"imported\":2,\"persistence_ids\":1,\"skipped\":4}\n",
		                 "%s", s->name);
		tt_free(&r);
		tt_free(&src);
		tt_skald(&r, NULL, "highest", a, "--store", db.uri, NULL);
		cr_assert_str_eq(r.out, "5\n");
		tt_free(&r);
		tt_db_drop(&db);
	}
}

Test(copy, import_after_delete_is_refused_because_the_highest_survives, .timeout = TT_TIMEOUT)
{
	for (const tt_store_t *s = tt_stores(); s->name; s++) {
		const char *pid = tt_pid("deleted");
		append_ok(s->uri, pid, "0", events(1, 4));
		tt_result_t src, r;
		tt_skald(&src, NULL, "export", "--pid", pid, "--store", s->uri, NULL);
		tt_assert_code(&src, 0, s->name);
		tt_skald(&r, NULL, "delete", pid, "--to", "4", "--store", s->uri, NULL);
		tt_assert_code(&r, 0, s->name);
		tt_free(&r);
		tt_skald(&r, src.out, "import", "--store", s->uri, NULL);
		tt_assert_code(&r, 3, s->name);
		cr_assert_not_null(strstr(r.err, "up to seq 4"), "%s", r.err);
		tt_free(&r);
		/* --force skips what the highest covers: nothing to write. */
		tt_skald(&r, src.out, "import", "--force", "--store", s->uri, NULL);
		tt_assert_code(&r, 0, s->name);
		cr_assert_not_null(strstr(r.out, "imported 0 events"), "%s", r.out);
		tt_free(&r);
		tt_free(&src);
	}
}

Test(copy, a_history_whose_start_was_deleted_cannot_be_imported, .timeout = TT_TIMEOUT)
{
	for (const tt_store_t *s = tt_stores(); s->name; s++) {
		const char *pid = tt_pid("tail-only");
		append_ok(s->uri, pid, "0", events(1, 4));
		tt_result_t src, r;
		tt_skald(&r, NULL, "delete", pid, "--to", "2", "--store", s->uri, NULL);
		tt_free(&r);
		tt_skald(&src, NULL, "export", "--pid", pid, "--store", s->uri, NULL);
		tt_assert_code(&src, 0, s->name);
		tt_db_t db;
		tt_db_new(&db, s);
		tt_skald(&r, src.out, "import", "--store", db.uri, NULL);
		tt_assert_code(&r, 3, s->name);
		cr_assert_not_null(strstr(r.err, "seq 3"), "%s", r.err);
		tt_free(&r);
		tt_skald(&r, NULL, "highest", pid, "--store", db.uri, NULL);
		tt_assert_code(&r, 4, "nothing may have been imported");
		tt_free(&r);
		tt_free(&src);
		tt_db_drop(&db);
	}
}

Test(copy, a_malformed_import_line_names_its_number_and_imports_nothing, .timeout = TT_TIMEOUT)
{
	for (const tt_store_t *s = tt_stores(); s->name; s++) {
		const char *pid = tt_pid("badimport");
		char good[512], input[2048];
		snprintf(good, sizeof good,
		         "{\"persistence_id\":\"%s\",\"seq\":1,\"type\":\"t\",\"version\":1,"
		         "\"data\":{},\"timestamp\":\"2024-05-01T12:00:00.123Z\",\"writer\":"
		         "\"bdaf95d649025e0f\",\"offset\":9}\n",
		         pid);
		const struct {
			const char *second, *says;
		} cases[] = {
		        {"{\"persistence_id\":\"%s\",\"seq\":2,\"type\":\"t\",\"data\":{}",
		         "line 2"},
		        {"{\"persistence_id\":\"%s\",\"seq\":3,\"type\":\"t\",\"data\":{}}",
		         "does not follow"},
		        {"{\"persistence_id\":\"%s\",\"seq\":2,\"type\":\"t\",\"data\":{},"
		         "\"timestamp\":\"yesterday\"}",
		         "timestamp"},
		        {"{\"persistence_id\":\"%s\",\"seq\":2,\"data\":{}}", "type"},
		        /* Milliseconds beyond 9999-12-31, which an export could not
		         * write back as a time (found by fuzz_lines). */
		        {"{\"persistence_id\":\"%s\",\"seq\":2,\"type\":\"t\",\"data\":{},"
		         "\"timestamp\":1700001700000123}",
		         "timestamp"},
		};
		for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
			int n = snprintf(input, sizeof input, "%s", good);
			snprintf(input + n, sizeof input - (size_t)n, cases[i].second, pid);
			tt_result_t r;
			tt_skald(&r, input, "import", "--store", s->uri, NULL);
			tt_assert_code(&r, 1, cases[i].says);
			cr_assert_not_null(strstr(r.err, cases[i].says), "%s: case %zu: %s",
			                   s->name, i, r.err);
			tt_free(&r);
			tt_skald(&r, NULL, "highest", pid, "--store", s->uri, NULL);
			tt_assert_code(&r, 4, "nothing may have been imported");
			tt_free(&r);
		}
		/* The good line alone goes in, with its timestamp and writer. */
		tt_result_t r;
		tt_skald(&r, good, "import", "--store", s->uri, NULL);
		tt_assert_code(&r, 0, s->name);
		tt_free(&r);
		tt_skald(&r, NULL, "events", pid, "--json", "--store", s->uri, NULL);
		json_t *lines = tt_json_lines(r.out);
		json_t *e = json_array_get(lines, 0);
		cr_assert_str_eq(json_string_value(json_object_get(e, "timestamp")),
		                 "2024-05-01T12:00:00.123Z");
		cr_assert_str_eq(json_string_value(json_object_get(e, "writer")),
		                 "bdaf95d649025e0f");
		json_decref(lines);
		tt_free(&r);
	}
}
