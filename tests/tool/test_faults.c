/*
 * tests/tool/test_faults.c - the tool when its store fails in the middle of
 * a command (through faulty://, stores/faulty/faulty.c): exit status 2, the
 * backend's message, what was done before the failure said; and histories
 * moved from one store to another and back keep their bytes.
 */
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/tool/tt.h"

/* s's journal through faulty:// with options, in buf. */
static const char *faulty(char *buf, size_t len, const tt_store_t *s, const char *options)
{
	snprintf(buf, len, "faulty://?inner=%s&%s", s->uri, options);
	return buf;
}

/* Appends n events (data {"i": first..}) to pid after seq expect. */
static void append_n(const char *uri, const char *pid, int expect, int first, int n)
{
	char input[4096], exp[16];
	size_t len = 0;
	for (int i = first; i < first + n; i++)
		len += (size_t)snprintf(input + len, sizeof input - len,
		                        "{\"type\":\"faults.step\",\"data\":{\"i\":%d}}\n", i);
	snprintf(exp, sizeof exp, "%d", expect);
	tt_result_t r;
	tt_skald(&r, input, "append", pid, "--expect", exp, "--store", uri, NULL);
	tt_assert_code(&r, 0, pid);
	tt_free(&r);
}

static size_t count_lines(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

Test(faults, a_read_cut_in_the_middle_exits_2_after_what_it_printed, .timeout = TT_TIMEOUT)
{
	for (const tt_store_t *s = tt_stores(); s->name; s++) {
		const char *pid = tt_pid("cutread");
		append_n(s->uri, pid, 0, 1, 10);
		char uri[1400];
		faulty(uri, sizeof uri, s, "ops=read,read_all,list_ids&drop_after=1&drop_keep=4");
		tt_result_t r;
		tt_skald(&r, NULL, "events", pid, "--json", "--store", uri, NULL);
		tt_assert_code(&r, 2, s->name);
		cr_assert_eq(count_lines(r.out), 4, "%s: printed\n%s", s->name, r.out);
		cr_assert_not_null(strstr(r.err, "faulty: connection lost"), "%s: %s", s->name,
		                   r.err);
		tt_free(&r);
		tt_skald(&r, NULL, "export", "--pid", pid, "--store", uri, NULL);
		tt_assert_code(&r, 2, s->name);
		cr_assert_eq(count_lines(r.out), 4, "%s: exported\n%s", s->name, r.out);
		tt_free(&r);
		tt_skald(&r, NULL, "ids", "--prefix", pid, "--store", uri, NULL);
		tt_assert_code(&r, 2, s->name);
		tt_free(&r);
	}
}

Test(faults, a_write_that_fails_exits_2_and_says_what_was_imported, .timeout = TT_TIMEOUT)
{
	for (const tt_store_t *s = tt_stores(); s->name; s++) {
		const char *pid = tt_pid("failwrite");
		char uri[1400];
		/* An append answered "failed" although it was stored. */
		faulty(uri, sizeof uri, s, "ops=append&lie_every=1");
		tt_result_t r;
		tt_skald(&r, "{\"type\":\"t\",\"data\":{}}\n", "append", pid, "--expect", "0",
		         "--store", uri, NULL);
		tt_assert_code(&r, 2, s->name);
		cr_assert_not_null(strstr(r.err, "answer was lost"), "%s: %s", s->name, r.err);
		tt_free(&r);
		tt_skald(&r, NULL, "highest", pid, "--store", s->uri, NULL);
		cr_assert_str_eq(r.out, "1\n", "%s: the append answered failed is not there",
		                 s->name);
		tt_free(&r);

		/* An import whose writes fail: nothing imported, and --force on
		 * a store that works brings everything. */
		const char *src = tt_pid("failimport");
		append_n(s->uri, src, 0, 1, 5);
		tt_result_t exp;
		tt_skald(&exp, NULL, "export", "--pid", src, "--store", s->uri, NULL);
		tt_assert_code(&exp, 0, s->name);
		tt_db_t db;
		tt_db_new(&db, s);
		snprintf(uri, sizeof uri, "faulty://?inner=%s&ops=append&fail_every=1", db.uri);
		tt_skald(&r, exp.out, "import", "--store", uri, NULL);
		tt_assert_code(&r, 2, s->name);
		cr_assert_not_null(strstr(r.err, "0 events were imported before"), "%s: %s",
		                   s->name, r.err);
		tt_free(&r);
		tt_skald(&r, exp.out, "import", "--force", "--store", db.uri, NULL);
		tt_assert_code(&r, 0, s->name);
		cr_assert_not_null(strstr(r.out, "imported 5 events"), "%s: %s", s->name, r.out);
		tt_free(&r);
		tt_free(&exp);
		tt_db_drop(&db);
	}
}

/* Lines first..last (from 1) of text, into buf. */
static void lines_of(const char *text, int first, int last, char *buf, size_t len)
{
	size_t n = 0;
	int line = 1;
	for (const char *p = text; *p; p++) {
		if (line >= first && line <= last) {
			cr_assert_lt(n + 1, len);
			buf[n++] = *p;
		}
		if (*p == '\n')
			line++;
	}
	buf[n] = '\0';
	cr_assert_eq(line - 1 >= last, 1, "only %d lines", line - 1);
}

Test(faults, import_force_refuses_input_that_leaves_a_gap, .timeout = TT_TIMEOUT)
{
	for (const tt_store_t *s = tt_stores(); s->name; s++) {
		const char *pid = tt_pid("gap");
		append_n(s->uri, pid, 0, 1, 6);
		tt_result_t all, r;
		tt_skald(&all, NULL, "export", "--pid", pid, "--store", s->uri, NULL);
		tt_assert_code(&all, 0, s->name);
		/* Seq 1..2, and seq 5..6. */
		char head[4096], tail[4096];
		lines_of(all.out, 1, 2, head, sizeof head);
		lines_of(all.out, 5, 6, tail, sizeof tail);
		tt_db_t db;
		tt_db_new(&db, s);
		tt_skald(&r, head, "import", "--store", db.uri, NULL);
		tt_assert_code(&r, 0, s->name);
		tt_free(&r);
		/* The destination ends at 2, the input starts at 5. */
		tt_skald(&r, tail, "import", "--force", "--store", db.uri, NULL);
		tt_assert_code(&r, 3, s->name);
		cr_assert_not_null(strstr(r.err, "leave a gap"), "%s: %s", s->name, r.err);
		cr_assert_not_null(strstr(r.err, "nothing imported"), "%s: %s", s->name, r.err);
		tt_free(&r);
		tt_skald(&r, NULL, "highest", pid, "--store", db.uri, NULL);
		cr_assert_str_eq(r.out, "2\n", "%s: something was imported", s->name);
		tt_free(&r);
		tt_free(&all);
		tt_db_drop(&db);
	}
}

/* text without the "offset" member that ends every envelope (each store
 * gives its own). Owned. */
static char *strip_offsets(const char *text)
{
	regex_t re;
	cr_assert_eq(regcomp(&re, ",\"offset\":[0-9]+}$", REG_EXTENDED | REG_NEWLINE), 0);
	size_t len = strlen(text);
	char *out = malloc(len + 1), *o = out;
	const char *p = text;
	regmatch_t m;
	while (regexec(&re, p, 1, &m, p == text ? 0 : REG_NOTBOL) == 0) {
		memcpy(o, p, (size_t)m.rm_so);
		o += m.rm_so;
		*o++ = '}';
		p += m.rm_eo;
	}
	strcpy(o, p);
	regfree(&re);
	return out;
}

/* The input of the round trip: data at the edges of what the stores keep
 * alike (docs/EVENT-DATA.md), under unicode ids. */
static const char *const edge_data[] = {
        "{\"s\":\"caf\\u00e9 \\\"q\\\" \\\\ \\n\\t \\u2028 \\ud83c\\udfb2 e\\u0301\"}",
        "{\"big\":9223372036854775807,\"small\":-9223372036854775808,\"r\":1.5e300,"
        "\"t\":1e17,\"u\":5e-324,\"x\":0.1,\"m\":-2.5}",
        "{\"$x\":1,\"a.b\":2,\"\":3,\"_id\":4,\"nested\":[[1,[2]],[]]}",
        "{\"escaped\":\"\\\\u0000 is six characters\",\"empty\":{},\"n\":null,\"b\":[true,"
        "false]}",
};

Test(faults, export_import_from_postgresql_to_mongodb_and_back_keeps_the_bytes,
     .timeout = TT_TIMEOUT)
{
	const tt_store_t *pg = &tt_stores()[0], *mongo = &tt_stores()[1];
	char prefix[128], pid[256], deep[4096];
	snprintf(prefix, sizeof prefix, "%s-\xc3\xa9\xe6\x97\xa5-", tt_pid("across"));
	/* Deeper than BSON keeps (MongoDB stores it as text). */
	size_t n = 0;
	for (int i = 0; i < 120; i++)
		n += (size_t)snprintf(deep + n, sizeof deep - n, "{\"d\":");
	n += (size_t)snprintf(deep + n, sizeof deep - n, "1");
	for (int i = 0; i < 120; i++)
		n += (size_t)snprintf(deep + n, sizeof deep - n, "}");
	for (size_t k = 0; k <= sizeof edge_data / sizeof edge_data[0]; k++) {
		char input[8192];
		const char *data = k < sizeof edge_data / sizeof edge_data[0] ? edge_data[k] : deep;
		snprintf(input, sizeof input, "{\"type\":\"edge\",\"version\":2,\"data\":%s}\n",
		         data);
		snprintf(pid, sizeof pid, "%s%zu", prefix, k);
		tt_result_t r;
		tt_skald(&r, input, "append", pid, "--expect", "0", "--store", pg->uri, NULL);
		tt_assert_code(&r, 0, data);
		tt_free(&r);
	}
	tt_result_t a, b, c, r;
	tt_skald(&a, NULL, "export", "--prefix", prefix, "--store", pg->uri, NULL);
	tt_assert_code(&a, 0, "export from PostgreSQL");
	cr_assert_eq(count_lines(a.out), sizeof edge_data / sizeof edge_data[0] + 1);
	tt_db_t m, p;
	tt_db_new(&m, mongo);
	tt_skald(&r, a.out, "import", "--store", m.uri, NULL);
	tt_assert_code(&r, 0, "import into MongoDB");
	tt_free(&r);
	tt_skald(&b, NULL, "export", "--store", m.uri, NULL);
	tt_assert_code(&b, 0, "export from MongoDB");
	tt_db_new(&p, pg);
	tt_skald(&r, b.out, "import", "--store", p.uri, NULL);
	tt_assert_code(&r, 0, "import into PostgreSQL");
	tt_free(&r);
	tt_skald(&c, NULL, "export", "--store", p.uri, NULL);
	tt_assert_code(&c, 0, "export from PostgreSQL again");
	char *sa = strip_offsets(a.out), *sb = strip_offsets(b.out), *sc = strip_offsets(c.out);
	cr_assert_str_eq(sb, sa, "PostgreSQL -> MongoDB changed the bytes");
	cr_assert_str_eq(sc, sa, "PostgreSQL -> MongoDB -> PostgreSQL changed the bytes");
	free(sa);
	free(sb);
	free(sc);
	tt_free(&a);
	tt_free(&b);
	tt_free(&c);
	tt_db_drop(&m);
	tt_db_drop(&p);
}
