/*
 * tests/stores/rules.c - conformance, the storage rules every store keeps
 * the same (docs/EVENT-DATA.md), so that a history moves between stores
 * unchanged: U+0000 refused, the largest data accepted and the first size
 * refused, the deepest nesting, data that is not an object, unicode in
 * persistence ids.
 */
#include <stdlib.h>
#include <string.h>

#include "tests/stores/harness.h"

/* Asserts that doc is refused as an event and as a snapshot, with a reason
 * that contains needle, and that nothing is stored. Consumes doc. */
static void refused_everywhere(tctx_t *t, const char *name, json_t *doc, const char *needle)
{
	for (int snap = 0; snap <= 1; snap++) {
		char sfx[96], pid[256];
		snprintf(sfx, sizeof sfx, "%s-%s", name, snap ? "snapshot" : "event");
		pid_of(t, sfx, pid, sizeof pid);
		int status = keep_doc(t, pid, doc, snap);
		const char *why = skald_journal_errmsg(t->j);
		cr_assert_eq(status, SKALD_EREJECTED, "%s: %s, expected SKALD_EREJECTED", sfx,
		             skald_err_name(status));
		cr_assert(strstr(why, needle) != NULL, "%s: the reason \"%s\" does not say \"%s\"",
		          sfx, why, needle);
		json_t *back = kept_doc(t, pid, snap);
		cr_assert_null(back, "%s: refused, yet stored", sfx);
		if (!snap)
			cr_assert_eq(highest(t, pid), 0,
			             "%s: a refused event moved the highest seq", sfx);
	}
	json_decref(doc);
}

/* Deletes what pid holds: the test database is shared by every test of the
 * run, and a server that scans a collection (FerretDB) slows down for
 * every test after large documents. */
static void forget(tctx_t *t, const char *pid)
{
	cr_assert_eq(delete_to(t, pid, INF), 0);
	call_t c = {0};
	RUN(t, &c, skald_journal_snapshot_delete_to(t->j, pid, INF, on_done, &c));
	cr_assert_eq(c.status, 0);
}

/* Asserts that doc is kept as an event and as a snapshot and comes back
 * equal, then deletes it. Consumes doc. */
static void kept_everywhere(tctx_t *t, const char *name, json_t *doc)
{
	for (int snap = 0; snap <= 1; snap++) {
		char sfx[96], pid[256];
		snprintf(sfx, sizeof sfx, "%s-%s", name, snap ? "snapshot" : "event");
		pid_of(t, sfx, pid, sizeof pid);
		int status = keep_doc(t, pid, doc, snap);
		cr_assert_eq(status, 0, "%s: %s: %s", sfx, skald_err_name(status),
		             skald_journal_errmsg(t->j));
		json_t *back = kept_doc(t, pid, snap);
		cr_assert_not_null(back, "%s: accepted, then missing", sfx);
		cr_assert(json_equal(doc, back), "%s: changed in the store", sfx);
		json_decref(back);
		forget(t, pid);
	}
	json_decref(doc);
}

Test(rules, u0000_in_a_string_or_a_key_is_refused_by_every_store, TEST_OPT)
{
	tctx_t t;
	t_open(&t, "rules_nul");
	json_t *in_string = json_object();
	json_object_set_new(in_string, "s", json_stringn("a\0b", 3));
	refused_everywhere(&t, "string", in_string, "U+0000");
	json_t *in_key = json_object();
	json_object_setn_new(in_key, "k\0y", 3, json_true());
	refused_everywhere(&t, "key", in_key, "U+0000");
	json_t *deep = json_pack("{s{s[is]}}", "a", "b", 1, "x");
	json_array_append_new(json_object_get(json_object_get(deep, "a"), "b"),
	                      json_stringn("\0", 1));
	refused_everywhere(&t, "nested", deep, "U+0000");
	/* The six characters \u0000 as text are an ordinary string. */
	kept_everywhere(&t, "escaped", json_pack("{ss}", "s", "\\u0000"));
	t_close(&t);
}

/* {"s":"aaa..."} whose compact JSON text is exactly len bytes. */
static json_t *doc_of_size(size_t len)
{
	size_t pad = len - strlen("{\"s\":\"\"}");
	char *s = malloc(pad + 1);
	memset(s, 'a', pad);
	s[pad] = '\0';
	json_t *doc = json_object();
	json_object_set_new(doc, "s", json_stringn(s, pad));
	free(s);
	char *text = json_dumps(doc, JSON_COMPACT);
	cr_assert_eq(strlen(text), len);
	free(text);
	return doc;
}

Test(rules, data_of_skald_data_max_bytes_is_kept_and_one_byte_more_is_refused, TEST_OPT)
{
	tctx_t t;
	t_open(&t, "rules_size");
	kept_everywhere(&t, "largest", doc_of_size(SKALD_DATA_MAX_BYTES));
	refused_everywhere(&t, "too_large", doc_of_size(SKALD_DATA_MAX_BYTES + 1),
	                   "SKALD_DATA_MAX_BYTES");
	t_close(&t);
}

Test(rules, data_whose_binary_form_outgrows_its_text_is_kept, TEST_OPT)
{
	/* 1.5 million small numbers: 3 MB of JSON, but several times that in
	 * an encoding with a type, a name and 8 bytes per number (BSON). */
	tctx_t t;
	t_open(&t, "rules_numbers");
	json_t *a = json_array();
	for (int i = 0; i < 1500000; i++)
		json_array_append_new(a, json_integer(i % 10));
	json_t *doc = json_object();
	json_object_set_new(doc, "a", a);
	kept_everywhere(&t, "numbers", doc);
	t_close(&t);
}

/* Objects nested so that the innermost value sits at level `levels` (the
 * data object is level 1). */
static json_t *nested(int levels)
{
	json_t *v = json_integer(1);
	for (int i = 1; i < levels; i++) {
		json_t *o = json_object();
		json_object_set_new(o, "a", v);
		v = o;
	}
	return v;
}

Test(rules, nesting_of_skald_data_max_depth_is_kept_and_one_level_more_is_refused, TEST_OPT)
{
	tctx_t t;
	t_open(&t, "rules_depth");
	kept_everywhere(&t, "deepest", nested(SKALD_DATA_MAX_DEPTH));
	refused_everywhere(&t, "too_deep", nested(SKALD_DATA_MAX_DEPTH + 1),
	                   "SKALD_DATA_MAX_DEPTH");
	t_close(&t);
}

Test(rules, data_that_is_not_an_object_is_refused, TEST_OPT)
{
	tctx_t t;
	t_open(&t, "rules_nonobject");
	refused_everywhere(&t, "array", json_pack("[i]", 1), "not a JSON object");
	refused_everywhere(&t, "string", json_string("x"), "not a JSON object");
	refused_everywhere(&t, "integer", json_integer(1), "not a JSON object");
	refused_everywhere(&t, "real", json_real(1.5), "not a JSON object");
	refused_everywhere(&t, "true", json_true(), "not a JSON object");
	refused_everywhere(&t, "null", json_null(), "not a JSON object");
	kept_everywhere(&t, "empty", json_object());
	t_close(&t);
}

Test(rules, unicode_persistence_ids_are_kept_listed_and_sorted_by_bytes, TEST_OPT)
{
	/* In strcmp order of their UTF-8 bytes; not the order of any
	 * collation. */
	static const char *const sfx[] = {
	        "A",
	        "Z",
	        "a",
	        "e\xcc\x81",
	        "z",
	        "\xc3\xa9",
	        "\xe2\x80\xa8",
	        "\xe6\x97\xa5\xe6\x9c\xac",
	        "\xf0\x9f\x8e\xb2",
	};
	enum { N = sizeof sfx / sizeof sfx[0] };
	tctx_t t;
	t_open(&t, "rules_ids");
	char prefix[256];
	/* The prefix itself holds non-ASCII text. */
	static const char uprefix[] = {(char)0xc3, (char)0xbc, 'n', (char)0xc3,
	                               (char)0xaf, 'c',        '-', 0};
	pid_of(&t, uprefix, prefix, sizeof prefix);
	char pid[N][320];
	for (int i = 0; i < N; i++) {
		snprintf(pid[i], sizeof pid[i], "%s%s", prefix, sfx[i]);
		cr_assert_eq(append_n(&t, pid[i], 0, (size_t)i + 1), 0, "append to %s: %s", pid[i],
		             skald_journal_errmsg(t.j));
		skald_snapshot_t s = {pid[i], 1, 1, json_pack("{si}", "i", i), 0};
		call_t c = {0};
		RUN(&t, &c, skald_journal_snapshot_save(t.j, &s, on_done, &c));
		cr_assert_eq(c.status, 0);
		json_decref(s.data);
	}
	for (int i = 0; i < N; i++) {
		cr_assert_eq(highest(&t, pid[i]), (uint64_t)i + 1, "%s", pid[i]);
		call_t c = {0};
		read_range(&t, pid[i], 1, INF, INF, &c);
		expect_seqs(&c, pid[i], 1, (uint64_t)i + 1);
		call_free(&c);
		json_t *snap = kept_doc(&t, pid[i], 1);
		cr_assert_eq(json_integer_value(json_object_get(snap, "i")), i);
		json_decref(snap);
	}
	call_t c = {0};
	RUN(&t, &c, skald_journal_list_ids(t.j, prefix, NULL, INF, on_ids, on_done, &c));
	cr_assert_eq(c.status, 0);
	cr_assert_eq(c.nids, N, "listed %zu ids under the prefix, expected %d", c.nids, N);
	for (int i = 0; i < N; i++) {
		cr_assert_str_eq(c.ids[i], pid[i], "id %d", i);
		cr_assert_eq(c.highs[i], (uint64_t)i + 1);
	}
	call_free(&c);
	t_close(&t);
}
