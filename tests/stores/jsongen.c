/*
 * tests/stores/jsongen.c - random JSON documents for round-trip tests.
 */
#include "jsongen.h"

#include "skald/journal.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void jsongen_init(jsongen_t *g, uint64_t seed)
{
	g->state = seed;
	g->has_nul = 0;
	g->too_deep = 0;
}

uint64_t jsongen_next(jsongen_t *g)
{
	uint64_t z = (g->state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static unsigned below(jsongen_t *g, unsigned n)
{
	return (unsigned)(jsongen_next(g) % n);
}

/* ------------------------------------------------------------------------ */
/* Numbers                                                                   */

static json_int_t gen_integer(jsongen_t *g)
{
	static const json_int_t edges[] = {
	        0,
	        1,
	        -1,
	        INT64_MAX,
	        INT64_MIN,
	        INT64_MAX - 1,
	        INT64_MIN + 1,
	        (json_int_t)1 << 53,
	        ((json_int_t)1 << 53) + 1,
	        -(((json_int_t)1 << 53) + 1),
	        (json_int_t)1 << 31,
	        -((json_int_t)1 << 31) - 1,
	        (json_int_t)4294967296LL,
	        999999999999999999LL,
	        1000000000000000000LL,
	};
	switch (below(g, 3)) {
	case 0:
		return edges[below(g, sizeof edges / sizeof edges[0])];
	case 1:
		return (json_int_t)jsongen_next(g);
	default:
		return (json_int_t)below(g, 2001) - 1000;
	}
}

static double gen_real(jsongen_t *g)
{
	static const double edges[] = {
	        0.0,
	        -0.0,
	        0.1,
	        -0.1,
	        1.0 / 3.0,
	        1.5,
	        100.0,
	        1e15,
	        1e16,
	        1e17,
	        1e19,
	        -1e19,
	        9223372036854775808.0, /* 2^63: one past int64 */
	        18446744073709551616.0,
	        1e21,
	        1e22,
	        1e23,
	        1.5e300,
	        -1.5e300,
	        DBL_MAX,
	        -DBL_MAX,
	        DBL_MIN,
	        -DBL_MIN,
	        4.9406564584124654e-324, /* the smallest subnormal */
	        -4.9406564584124654e-324,
	        2.2250738585072009e-308, /* the largest subnormal */
	        1e-5,
	        1e-7,
	        123456789.123456789,
	        0.30000000000000004,
	        5e-324 * 3,
	};
	for (;;) {
		double d;
		switch (below(g, 4)) {
		case 0:
			return edges[below(g, sizeof edges / sizeof edges[0])];
		case 1: {
			/* Any bit pattern that is a finite number. */
			uint64_t bits = jsongen_next(g);
			memcpy(&d, &bits, sizeof d);
			break;
		}
		case 2:
			/* A decimal with up to 17 digits and an exponent. */
			d = (double)(jsongen_next(g) % 100000000000000000ull) *
			    pow(10.0, (double)((int)below(g, 601) - 320));
			if (below(g, 2))
				d = -d;
			break;
		default:
			/* An integral real, which a store may turn into an
			 * integer if it is careless. */
			d = (double)(int64_t)(jsongen_next(g) >> below(g, 64));
			break;
		}
		if (isfinite(d))
			return d;
	}
}

/* ------------------------------------------------------------------------ */
/* Text                                                                      */

/* Appends code point c as UTF-8. */
static size_t put_utf8(char *p, uint32_t c)
{
	if (c < 0x80) {
		p[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		p[0] = (char)(0xc0 | (c >> 6));
		p[1] = (char)(0x80 | (c & 0x3f));
		return 2;
	}
	if (c < 0x10000) {
		p[0] = (char)(0xe0 | (c >> 12));
		p[1] = (char)(0x80 | ((c >> 6) & 0x3f));
		p[2] = (char)(0x80 | (c & 0x3f));
		return 3;
	}
	p[0] = (char)(0xf0 | (c >> 18));
	p[1] = (char)(0x80 | ((c >> 12) & 0x3f));
	p[2] = (char)(0x80 | ((c >> 6) & 0x3f));
	p[3] = (char)(0x80 | (c & 0x3f));
	return 4;
}

static uint32_t gen_char(jsongen_t *g, int allow_nul)
{
	static const uint32_t odd[] = {
	        '"',    '\\',   '/',    '\b',   '\f',    '\n',    '\r',    '\t',
	        0x01,   0x1f,   0x7f,   0xe9,   0x7ff,   0x800,   0x65e5,  0x2028,
	        0x2029, 0xfeff, 0xfffd, 0xffff, 0x10000, 0x1f3b2, 0x1f600, 0x10ffff,
	        '$',    '.',    '\'',   '<',    '&',     0x0301,  0xd7ff,  0xe000,
	};
	switch (below(g, 8)) {
	case 0:
	case 1:
		return odd[below(g, sizeof odd / sizeof odd[0])];
	case 2:
		/* Any scalar value outside the surrogates. */
		for (;;) {
			uint32_t c = below(g, 0x110000);
			if ((c < 0xd800 || c > 0xdfff) && (c != 0 || allow_nul))
				return c;
		}
	case 3:
		if (allow_nul && below(g, 8) == 0)
			return 0;
		return 0x20 + below(g, 0x5f);
	default:
		return 'a' + below(g, 26);
	}
}

static json_t *gen_string_of(jsongen_t *g, size_t n, int allow_nul)
{
	char *buf = malloc(n * 4 + 1);
	size_t len = 0;
	for (size_t i = 0; i < n; i++) {
		uint32_t c = gen_char(g, allow_nul);
		if (c == 0)
			g->has_nul = 1;
		len += put_utf8(buf + len, c);
	}
	json_t *s = json_stringn(buf, len);
	free(buf);
	return s;
}

static size_t gen_length(jsongen_t *g)
{
	switch (below(g, 10)) {
	case 0:
		return 0;
	case 1:
		return 100 + below(g, 2000);
	default:
		return 1 + below(g, 24);
	}
}

static char *gen_key(jsongen_t *g)
{
	static const char *odd[] = {"",  "$x", "$",  "a.b", ".",    "_id", "__proto__", "d",
	                            "j", " ",  "\\", "\"",  "ключ", "🎲",   "a\nb"};
	if (below(g, 4) == 0)
		return strdup(odd[below(g, sizeof odd / sizeof odd[0])]);
	/* Never a NUL: jansson's object keys are C strings. */
	json_t *s = gen_string_of(g, 1 + below(g, 12), 0);
	char *key = strdup(json_string_value(s));
	json_decref(s);
	return key;
}

/* ------------------------------------------------------------------------ */
/* Values                                                                    */

static json_t *gen_value(jsongen_t *g, int depth, int max_depth, int allow_nul);

static json_t *gen_object(jsongen_t *g, size_t n, int depth, int max_depth, int allow_nul)
{
	json_t *o = json_object();
	for (size_t i = 0; i < n; i++) {
		char *key = gen_key(g);
		json_object_set_new(o, key, gen_value(g, depth + 1, max_depth, allow_nul));
		free(key);
	}
	return o;
}

static json_t *gen_array(jsongen_t *g, size_t n, int depth, int max_depth, int allow_nul)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, gen_value(g, depth + 1, max_depth, allow_nul));
	return a;
}

static json_t *gen_value(jsongen_t *g, int depth, int max_depth, int allow_nul)
{
	unsigned pick = below(g, depth < max_depth ? 9 : 6);
	switch (pick) {
	case 0:
		return json_integer(gen_integer(g));
	case 1:
	case 2:
		return json_real(gen_real(g));
	case 3:
		return gen_string_of(g, gen_length(g), allow_nul);
	case 4:
		return below(g, 2) ? json_true() : json_false();
	case 5:
		return json_null();
	case 6:
	case 7:
		return gen_object(g, below(g, 6), depth, max_depth, allow_nul);
	default:
		return gen_array(g, below(g, 6), depth, max_depth, allow_nul);
	}
}

/* A chain of `depth` nested containers, alternating objects and arrays,
 * with a leaf value at the bottom. */
static json_t *gen_deep(jsongen_t *g, int depth)
{
	json_t *v = json_real(gen_real(g));
	for (int i = 0; i < depth; i++) {
		json_t *c;
		if (i % 2) {
			c = json_array();
			json_array_append_new(c, v);
		} else {
			c = json_object();
			json_object_set_new(c, "k", v);
		}
		v = c;
	}
	return v;
}

json_t *jsongen_doc(jsongen_t *g, unsigned i)
{
	g->has_nul = 0;
	g->too_deep = 0;
	json_t *doc;
	int depth;
	switch (i % 50) {
	case 7:
		/* Deep, but within what every store keeps. */
		doc = json_object();
		json_object_set_new(doc, "deep", gen_deep(g, 20 + (int)below(g, 100)));
		return doc;
	case 17:
	case 42:
		/* Levels around SKALD_DATA_MAX_DEPTH: the object, `depth`
		 * containers, and the number at the bottom. */
		depth = SKALD_DATA_MAX_DEPTH - 3 + (int)below(g, 5);
		g->too_deep = 1 + depth + 1 > SKALD_DATA_MAX_DEPTH;
		doc = json_object();
		json_object_set_new(doc, "deeper", gen_deep(g, depth));
		return doc;
	case 27:
		/* Wide. */
		doc = gen_object(g, 500 + below(g, 500), 0, 2, 0);
		json_object_set_new(doc, "wide", gen_array(g, 1000 + below(g, 1000), 1, 1, 0));
		return doc;
	case 37:
		/* Long strings. */
		doc = json_object();
		json_object_set_new(doc, "long", gen_string_of(g, 20000 + below(g, 20000), 0));
		json_object_set_new(doc, "", gen_string_of(g, 2000, 0));
		return doc;
	case 47:
		/* Text with NUL characters, which every store refuses. */
		doc = gen_object(g, 1 + below(g, 4), 0, 3, 1);
		json_object_set_new(doc, "nul", json_stringn("a\0b", 3));
		g->has_nul = 1;
		return doc;
	default:
		return gen_object(g, below(g, 8), 0, 4 + (int)below(g, 6), 0);
	}
}
