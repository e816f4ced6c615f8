/*
 * stores/postgres/read.c - streamed reads of one persistence id, in pages.
 */
#include <stdlib.h>
#include <string.h>

#include "stores/postgres/engine.h"

/* ------------------------------------------------------------------------ */
/* Streamed reads                                                            */

/* Decodes JSON text of a result field into an owned object; NULL with
 * pg->decode_err set when it is not JSON. */
json_t *skald__pg_decode(pg_t *pg, const PGresult *res, int row, int col)
{
	/* jansson clears the error of every call: keep the first failure's. */
	json_error_t err;
	json_t *v = skald__pg_json_parse(PQgetvalue(res, row, col),
	                                 (size_t)PQgetlength(res, row, col), &err);
	if (v == NULL && !pg->decode_failed) {
		pg->decode_err = err;
		pg->decode_failed = true;
	}
	return v;
}

/* Hands events[0..n) to the reader and releases their data. A decode
 * failure stops the read. Returns the reader's code, or the failure's. */
int skald__pg_deliver(pg_t *pg, op_t *op, size_t n)
{
	skald_event_t *ev = pg->evbuf;
	/* The events before one that cannot be decoded are delivered: a
	 * reader gets everything up to it. */
	size_t good = 0;
	while (good < n && ev[good].data != NULL)
		good++;
	int rc = 0;
	if (good > 0)
		rc = skald_op_events(op->sop, ev, good);
	if (rc == 0 && good < n) {
		const skald_event_t *bad = &ev[good];
		skald_journal_set_bad_event(pg->j, bad->persistence_id, bad->seq, bad->offset);
		skald__pg_op_finish(
		        op, SKALD_EDECODE,
		        "event \"%s\" seq %llu: stored data cannot be read as JSON (%s at "
		        "character %d)",
		        bad->persistence_id, (unsigned long long)bad->seq, pg->decode_err.text,
		        pg->decode_err.position);
		rc = SKALD_EDECODE;
	}
	for (size_t i = 0; i < n; i++) {
		json_decref(ev[i].data);
		ev[i].data = NULL;
	}
	pg->decode_failed = false;
	return rc;
}

void skald__pg_read_send(pg_t *pg, op_t *op)
{
	char from[24], to[24], lim[24];
	skald__pg_bound_text(from, sizeof from, op->a);
	skald__pg_bound_text(to, sizeof to, op->b);
	uint64_t n = op->left < pg->uri.batch ? op->left : pg->uri.batch;
	skald__pg_bound_text(lim, sizeof lim, n);
	const char *v[4] = {op->pid, from, to, lim};
	skald__pg_send_prepared(pg, "skald_read", 4, v, NULL, NULL);
}

void skald__pg_read_result(pg_t *pg, op_t *op, PGresult *res)
{
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		char m[400];
		skald__pg_result_message(pg, res, m, sizeof m);
		skald__pg_op_finish(op, skald__pg_status_of(res), "reading \"%s\" failed: %s",
		                    op->pid, m);
		return;
	}
	if (op->stopping) {
		/* A page asked for ahead that nobody wants any more. */
		skald__pg_op_finish(op, op->stop_rc, NULL);
		return;
	}
	size_t n = (size_t)PQntuples(res);
	uint64_t asked = op->left < pg->uri.batch ? op->left : pg->uri.batch;
	if (op->first_page && n > 0) {
		uint64_t hi = skald__pg_u64_of(res, 0, 7);
		if (hi < op->b)
			op->b = hi;
		op->first_page = false;
	}
	uint64_t last = n ? skald__pg_u64_of(res, (int)n - 1, 0) : 0;
	bool more = n == asked && op->left > n && last < op->b;
	op->left -= n;
	if (more) {
		/* Ask for the next page before the caller decodes this one. */
		op->a = last + 1;
		op->prefetched = true;
		skald__pg_read_send(pg, op);
		if (op->finished)
			return; /* the connection broke */
	}
	for (size_t i = 0; i < n; i++) {
		int r = (int)i;
		pg->evbuf[i] = (skald_event_t){
		        .persistence_id = op->pid,
		        .seq = skald__pg_u64_of(res, r, 0),
		        .type = PQgetvalue(res, r, 1),
		        .version = (int)skald__pg_i64_of(res, r, 2),
		        .data = skald__pg_decode(pg, res, r, 3),
		        .timestamp = skald__pg_i64_of(res, r, 4),
		        .writer = (uint64_t)skald__pg_i64_of(res, r, 5),
		        .offset = skald__pg_u64_of(res, r, 6),
		};
	}
	int rc = skald__pg_deliver(pg, op, n);
	if (op->finished)
		return;
	if (rc != 0) {
		if (more) {
			op->stopping = true;
			op->stop_rc = rc;
		} else {
			skald__pg_op_finish(op, rc, NULL);
		}
	} else if (!more) {
		skald__pg_op_finish(op, 0, NULL);
	}
}
