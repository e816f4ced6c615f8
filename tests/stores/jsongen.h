/*
 * tests/stores/jsongen.h - random JSON documents for round-trip tests.
 *
 * Documents are drawn from a seeded generator, so a failure names its seed
 * and the run can be repeated. They lean towards what journals get wrong:
 * numbers at the edges of int64 and double (exponents, negative zero, the
 * smallest subnormal, integral reals past 2^63), long decimals, escapes,
 * characters outside the BMP, empty and odd keys ("", "$x", "a.b", "_id"),
 * deep and wide nesting, long strings.
 */
#ifndef SKALD_TESTS_JSONGEN_H
#define SKALD_TESTS_JSONGEN_H

#include <jansson.h>
#include <stdint.h>

typedef struct jsongen_s {
	uint64_t state; /* splitmix64 */
	/* Set by jsongen_doc: the document holds a NUL character, which
	 * every store must refuse (SKALD_EREJECTED with a reason). */
	int has_nul;
	/* Set by jsongen_doc: the document nests deeper than
	 * SKALD_DATA_MAX_DEPTH, which every store must refuse. */
	int too_deep;
} jsongen_t;

void jsongen_init(jsongen_t *g, uint64_t seed);
uint64_t jsongen_next(jsongen_t *g);

/* A new JSON object (owned by the caller). Document i of a run: some
 * indices get the rare shapes (deep, wide, long), so that every run of a
 * few hundred documents holds each of them. */
json_t *jsongen_doc(jsongen_t *g, unsigned i);

#endif /* SKALD_TESTS_JSONGEN_H */
