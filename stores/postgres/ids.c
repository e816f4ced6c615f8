/*
 * stores/postgres/ids.c - list_ids: persistence ids by prefix, in pages.
 */
#include <stdlib.h>
#include <string.h>

#include "stores/postgres/engine.h"

/* The smallest string above every string that starts with prefix, in byte
 * order: prefix with its last code point incremented (skipping surrogates),
 * after dropping trailing U+10FFFF. NULL when there is none (or no memory). */
static char *prefix_upper(const char *prefix)
{
	size_t len = strlen(prefix);
	char *s = malloc(len + 5);
	if (s == NULL)
		return NULL;
	memcpy(s, prefix, len + 1);
	while (len > 0) {
		size_t start = len - 1;
		while (start > 0 && ((unsigned char)s[start] & 0xc0) == 0x80)
			start--;
		const unsigned char *p = (const unsigned char *)s + start;
		unsigned cp;
		if (p[0] < 0x80)
			cp = p[0];
		else if ((p[0] & 0xe0) == 0xc0)
			cp = (p[0] & 0x1fu) << 6 | (p[1] & 0x3fu);
		else if ((p[0] & 0xf0) == 0xe0)
			cp = (p[0] & 0x0fu) << 12 | (p[1] & 0x3fu) << 6 | (p[2] & 0x3fu);
		else
			cp = (p[0] & 0x07u) << 18 | (p[1] & 0x3fu) << 12 | (p[2] & 0x3fu) << 6 |
			     (p[3] & 0x3fu);
		if (cp >= 0x10ffff) {
			len = start;
			continue;
		}
		cp = cp + 1 == 0xd800 ? 0xe000 : cp + 1;
		char *o = s + start;
		if (cp < 0x80) {
			*o++ = (char)cp;
		} else if (cp < 0x800) {
			*o++ = (char)(0xc0 | cp >> 6);
			*o++ = (char)(0x80 | (cp & 0x3f));
		} else if (cp < 0x10000) {
			*o++ = (char)(0xe0 | cp >> 12);
			*o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
			*o++ = (char)(0x80 | (cp & 0x3f));
		} else {
			*o++ = (char)(0xf0 | cp >> 18);
			*o++ = (char)(0x80 | ((cp >> 12) & 0x3f));
			*o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
			*o++ = (char)(0x80 | (cp & 0x3f));
		}
		*o = '\0';
		return s;
	}
	free(s);
	return NULL;
}

void skald__pg_list_send(pg_t *pg, op_t *op)
{
	char lim[24];
	uint64_t n = op->left < pg->uri.batch ? op->left : pg->uri.batch;
	skald__pg_bound_text(lim, sizeof lim, n);
	const char *v[4] = {op->u.list.after, op->u.list.prefix, lim, op->u.list.upper};
	skald__pg_send_prepared(pg, op->u.list.upper ? "skald_list_ids_below" : "skald_list_ids",
	                        op->u.list.upper ? 4 : 3, v, NULL, NULL);
}

void skald__pg_list_result(pg_t *pg, op_t *op, PGresult *res)
{
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		char m[400];
		skald__pg_result_message(pg, res, m, sizeof m);
		skald__pg_op_finish(op, skald__pg_status_of(res),
		                    "listing persistence ids failed: %s", m);
		return;
	}
	size_t n = (size_t)PQntuples(res);
	uint64_t asked = op->left < pg->uri.batch ? op->left : pg->uri.batch;
	for (size_t i = 0; i < n; i++)
		pg->idbuf[i] = (skald_persistence_id_t){PQgetvalue(res, (int)i, 0),
		                                        skald__pg_u64_of(res, (int)i, 1)};
	op->left -= n;
	int rc = 0;
	if (n > 0) {
		char *after = strdup(pg->idbuf[n - 1].persistence_id);
		if (after == NULL) {
			skald__pg_op_finish(op, SKALD_ENOMEM, NULL);
			return;
		}
		free(op->u.list.after);
		op->u.list.after = after;
		rc = skald_op_ids(op->sop, pg->idbuf, n);
	}
	if (rc != 0)
		skald__pg_op_finish(op, rc, NULL);
	else if (n < asked || op->left == 0)
		skald__pg_op_finish(op, 0, NULL);
	else
		skald__pg_list_send(pg, op);
}

int skald__pg_list_prepare(op_t *op)
{
	const char *prefix = op->sop->persistence_id ? op->sop->persistence_id : "";
	const char *after = op->sop->after_id ? op->sop->after_id : "";
	op->u.list.prefix = strdup(prefix);
	op->u.list.after = strdup(after);
	if (*prefix)
		op->u.list.upper = prefix_upper(prefix);
	if (!op->u.list.prefix || !op->u.list.after)
		return SKALD_ENOMEM;
	/* Strings the server cannot hold match no stored id. */
	if (op->left == 0 || !skald__pg_utf8_valid((const unsigned char *)prefix) ||
	    !skald__pg_utf8_valid((const unsigned char *)after))
		skald__pg_op_finish(op, 0, NULL);
	return 0;
}
