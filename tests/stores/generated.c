/*
 * tests/stores/generated.c - conformance, generated documents (jsongen.c) round-trip as events
 * and as snapshots.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/stores/harness.h"
#include "tests/stores/jsongen.h"

/* ------------------------------------------------------------------------ */
/* Generated documents round-trip                                            */

/* Every document a store accepts comes back equal as a JSON value (numbers
 * keep their kind and value, strings their bytes); a document it cannot keep
 * is refused at the write with SKALD_EREJECTED and a reason, and nothing is
 * stored. SKALD_TEST_SEED=N repeats a run. */

#define GENERATED_DOCS 250

static uint64_t test_seed(void)
{
	const char *e = getenv("SKALD_TEST_SEED");
	if (e && *e)
		return strtoull(e, NULL, 0);
	return (uint64_t)rand32() << 32 | rand32();
}

/* The start of v's JSON text, for a failure message. */
static char *excerpt(const json_t *v)
{
	char *text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	if (text && strlen(text) > 400)
		strcpy(text + 396, "...");
	return text;
}

static void generated_documents_round_trip(const char *name, int as_snapshot)
{
	tctx_t t;
	char pid[256];
	t_open(&t, name);
	uint64_t seed = test_seed();
	jsongen_t g;
	jsongen_init(&g, seed);
	unsigned refused = 0;
	for (unsigned i = 0; i < GENERATED_DOCS; i++) {
		char suffix[32];
		snprintf(suffix, sizeof suffix, "doc-%u", i);
		pid_of(&t, suffix, pid, sizeof pid);
		json_t *doc = jsongen_doc(&g, i);
		int status = keep_doc(&t, pid, doc, as_snapshot);
		json_t *back = kept_doc(&t, pid, as_snapshot);
		char *wrote = excerpt(doc);
		if (g.too_deep) {
			cr_assert_eq(status, SKALD_EREJECTED,
			             "seed %llu document %u: data deeper than SKALD_DATA_MAX_DEPTH "
			             "was not refused (%d)",
			             (unsigned long long)seed, i, status);
		}
		if (g.has_nul) {
			cr_assert_eq(
			        status, SKALD_EREJECTED,
			        "seed %llu document %u: a string holding U+0000 was not refused "
			        "(%d)",
			        (unsigned long long)seed, i, status);
		}
		if (status == SKALD_EREJECTED) {
			refused++;
			const char *why = skald_journal_errmsg(t.j);
			cr_assert(
			        g.has_nul || g.too_deep,
			        "seed %llu document %u: refused a document every store must keep: "
			        "%s; the document: %s",
			        (unsigned long long)seed, i, why, wrote);
			cr_assert(why && *why, "seed %llu document %u: refused without a reason",
			          (unsigned long long)seed, i);
			cr_assert_null(back, "seed %llu document %u: refused, yet stored",
			               (unsigned long long)seed, i);
		} else {
			cr_assert_eq(status, 0, "seed %llu document %u: the write failed (%d): %s",
			             (unsigned long long)seed, i, status,
			             skald_journal_errmsg(t.j));
			cr_assert_not_null(back, "seed %llu document %u: accepted, then missing",
			                   (unsigned long long)seed, i);
			char *read = excerpt(back);
			cr_assert(json_equal(doc, back),
			          "seed %llu document %u changed in the store:\nwrote %s\nread  %s",
			          (unsigned long long)seed, i, wrote, read);
			free(read);
		}
		free(wrote);
		json_decref(back);
		json_decref(doc);
	}
	cr_log_info("%s: %u documents, %u refused (seed %llu)", name, GENERATED_DOCS, refused,
	            (unsigned long long)seed);
	t_close(&t);
}

Test(journal, generated_documents_round_trip_as_events, TEST_OPT)
{
	generated_documents_round_trip("generated_events", 0);
}

Test(snapshots, generated_documents_round_trip, TEST_OPT)
{
	generated_documents_round_trip("generated_snapshots", 1);
}
