/*
 * stores/postgres/jsonb.c - JSON text for jsonb columns, both ways.
 *
 * jsonb keeps numbers as PostgreSQL's numeric and prints them back without
 * an exponent: 1.5e300 comes back as a 301-digit integer literal, 1e17 as
 * 100000000000000000. jansson refuses an integer literal beyond int64 and
 * takes one within it as an integer, so a real written in exponent form
 * would come back as an error or as a number of another kind. Two rules
 * close the gap:
 *
 * - On the way in, every real whose text has a non-negative exponent is
 *   written out in full with a fraction (1.5e+300 becomes 15 followed by 299
 *   zeros and ".0"). numeric keeps the fraction's digit, so jsonb prints it
 *   back with its ".0" and jansson reads a real of the same value. A real
 *   with a negative exponent needs nothing: jsonb prints it as a long
 *   decimal fraction, which is a real to jansson and parses to the same
 *   double. jsonb cannot keep a negative zero (numeric has none): -0.0 comes
 *   back as 0.0, which is equal as a number.
 *
 * - On the way out, text that jansson refuses is tried once more with every
 *   integer literal beyond int64 read as a real: that is what such a literal
 *   was when a build without the first rule wrote it, and it makes those
 *   events readable again.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "skald/journal.h"
#include "stores/postgres/pg.h"

typedef skald__pg_buf_t out_t;

/* Appends n bytes of s, NUL-terminated (the text goes to jansson). */
static void put(out_t *o, const char *s, size_t n)
{
	skald__pg_buf_reserve(o, n + 1);
	skald__pg_buf_put(o, s, n);
	if (!o->failed)
		o->p[o->len] = '\0';
}

static void put_zeros(out_t *o, size_t n)
{
	static const char zeros[64] =
	        "0000000000000000000000000000000000000000000000000000000000000000";
	while (n > 0) {
		size_t k = n < sizeof zeros ? n : sizeof zeros;
		put(o, zeros, k);
		n -= k;
	}
}

/* The length of the string token at s (s[0] == '"'), quotes included. */
static size_t string_len(const char *s, size_t len)
{
	size_t i = 1;
	while (i < len && s[i] != '"')
		i += s[i] == '\\' ? 2 : 1;
	return i < len ? i + 1 : len;
}

static int is_number_char(char c)
{
	return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
}

/* Calls fn on every number token of JSON text t, copying the rest to o.
 * fn writes the token (or its replacement) to o. */
static void each_number(out_t *o, const char *t, size_t len,
                        void (*fn)(out_t *o, const char *num, size_t n))
{
	size_t i = 0, plain = 0;
	while (i < len) {
		if (t[i] == '"') {
			i += string_len(t + i, len - i);
			continue;
		}
		if (t[i] == '-' || (t[i] >= '0' && t[i] <= '9')) {
			size_t n = 1;
			while (i + n < len && is_number_char(t[i + n]))
				n++;
			put(o, t + plain, i - plain);
			fn(o, t + i, n);
			i += n;
			plain = i;
			continue;
		}
		i++;
	}
	put(o, t + plain, len - plain);
}

/* Writes number token num with a non-negative exponent in full, with a
 * fraction; any other token as it is. */
static void expand_real(out_t *o, const char *num, size_t n)
{
	const char *e = memchr(num, 'e', n);
	if (e == NULL)
		e = memchr(num, 'E', n);
	const char *x = e ? e + 1 : NULL;
	if (x && x < num + n && *x == '+')
		x++;
	if (x == NULL || x >= num + n || *x == '-') {
		put(o, num, n);
		return;
	}
	size_t exp = 0;
	for (; x < num + n; x++) {
		exp = exp * 10 + (size_t)(*x - '0');
		if (exp > 100000) { /* not a double's; leave it to the server */
			put(o, num, n);
			return;
		}
	}
	const char *m = num;
	if (*m == '-') {
		put(o, "-", 1);
		m++;
	}
	/* The mantissa's digits, and how many of them precede the point. */
	char digits[64];
	size_t nd = 0, before = 0;
	int seen_point = 0;
	for (; m < e; m++) {
		if (*m == '.') {
			seen_point = 1;
			continue;
		}
		if (nd == sizeof digits) {
			put(o, num, n);
			return;
		}
		digits[nd++] = *m;
		if (!seen_point)
			before++;
	}
	size_t point = before + exp;
	/* No leading zeros in the integer part, but at least one digit. */
	size_t skip = 0;
	while (skip + 1 < point && skip < nd && digits[skip] == '0')
		skip++;
	if (point >= nd) {
		put(o, digits + skip, nd - skip);
		put_zeros(o, point - nd);
		put(o, ".0", 2);
	} else {
		put(o, digits + skip, point - skip);
		put(o, ".", 1);
		put(o, digits + point, nd - point);
	}
}

char *skald__pg_json_text(const json_t *data, size_t *len)
{
	char *text = json_dumps(data, JSON_COMPACT);
	if (text == NULL)
		return NULL;
	/* Most events hold no exponent: keep jansson's text then. */
	if (strpbrk(text, "eE") == NULL) {
		*len = strlen(text);
		return text;
	}
	out_t o = {0};
	each_number(&o, text, strlen(text), expand_real);
	free(text);
	if (o.failed) {
		free(o.p);
		return NULL;
	}
	*len = o.len;
	return o.p;
}

/* Writes an integer token beyond int64 as a real; any other token as it is. */
static void widen_integer(out_t *o, const char *num, size_t n)
{
	put(o, num, n);
	if (memchr(num, '.', n) || memchr(num, 'e', n) || memchr(num, 'E', n))
		return;
	const char *d = num[0] == '-' ? num + 1 : num;
	size_t nd = n - (size_t)(d - num);
	const char *limit = num[0] == '-' ? "9223372036854775808" : "9223372036854775807";
	if (nd > 19 || (nd == 19 && memcmp(d, limit, 19) > 0))
		put(o, ".0", 2);
}

json_t *skald__pg_json_parse(const char *text, size_t len, json_error_t *err)
{
	json_t *v = json_loadb(text, len, JSON_ALLOW_NUL, err);
	if (v != NULL)
		return v;
	out_t o = {0};
	each_number(&o, text, len, widen_integer);
	if (!o.failed && (o.len != len || memcmp(o.p, text, len) != 0)) {
		json_error_t again;
		v = json_loadb(o.p, o.len, JSON_ALLOW_NUL, &again);
	}
	free(o.p);
	return v;
}
