/*
 * stores/postgres/append.c - append: the writes of one call in as few statements
 * as their persistence ids allow, conflicts and races decided per write.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "stores/postgres/engine.h"

/* Events per statement: their index must fit below the transaction id. */
#define MAX_STMT_EVENTS ((1u << SKALD__PG_ORD_BITS) - 1)
/* Bytes of event data per statement: bounds the memory of one round trip
 * (a single larger write is still sent alone). */
#define MAX_STMT_BYTES ((size_t)64 << 20)
/* Retries of a statement that met a concurrent writer or a deadlock. */
#define MAX_RETRIES 10

/* PostgreSQL's type OIDs (pg_type.dat), for binary array parameters. */
#define OID_INT8 20
#define OID_INT4 23
#define OID_TEXT 25

static void write_failed(op_t *op, size_t i, int status, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

/* ------------------------------------------------------------------------ */
/* Append                                                                    */

static int cmp_pid_index(const void *a, const void *b, void *ctx)
{
	skald_write_t *const *w = ctx;
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	int c = strcmp(w[x]->persistence_id, w[y]->persistence_id);
	return c ? c : (x > y) - (x < y);
}

/* Sets write i's failure; the message kept is the first failing write's,
 * which is the one whose status the front reports. */

static void write_failed(op_t *op, size_t i, int status, const char *fmt, ...)
{
	op->u.append.writes[i]->status = status;
	op->u.append.ws[i].state = W_DONE;
	if (i < op->u.append.first_failed) {
		char buf[512];
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(buf, sizeof buf, fmt, ap);
		va_end(ap);
		free(op->msg);
		op->msg = strdup(buf);
		op->u.append.first_failed = i;
	}
}

/* Encodes every event, rejects what cannot be stored, and numbers the
 * rounds. Returns 0 or SKALD_ENOMEM. */
int skald__pg_append_prepare(op_t *op)
{
	skald_write_t *const *w = op->u.append.writes;
	size_t n = op->u.append.n, total = 0;
	for (size_t i = 0; i < n; i++)
		total += w[i]->nevents;
	op->u.append.ws = calloc(n, sizeof *op->u.append.ws);
	op->u.append.total = total;
	op->u.append.texts = calloc(total, sizeof *op->u.append.texts);
	op->u.append.lens = calloc(total, sizeof *op->u.append.lens);
	op->u.append.chunk = calloc(n, sizeof *op->u.append.chunk);
	size_t *order = malloc(n * sizeof *order);
	if (!op->u.append.ws || !op->u.append.texts || !op->u.append.lens || !op->u.append.chunk ||
	    !order) {
		free(order);
		return SKALD_ENOMEM;
	}
	op->u.append.first_failed = SIZE_MAX;
	size_t base = 0;
	for (size_t i = 0; i < n; i++) {
		skald_write_t *wr = w[i];
		wstate_t *s = &op->u.append.ws[i];
		s->first = base;
		base += wr->nevents;
		wr->status = 0;
		if (!skald__pg_utf8_valid((const unsigned char *)wr->persistence_id)) {
			write_failed(op, i, SKALD_EREJECTED,
			             "append rejected: the persistence id is not valid UTF-8");
			continue;
		}
		if (wr->expected_seq + wr->nevents > INT64_MAXU) {
			write_failed(op, i, SKALD_EREJECTED,
			             "append to \"%s\" rejected: seq above 2^63-1 cannot be stored",
			             wr->persistence_id);
			continue;
		}
		for (size_t k = 0; k < wr->nevents && s->state == W_PENDING; k++) {
			const skald_event_t *e = &wr->events[k];
			const char *why = NULL;
			if (!skald__pg_utf8_valid((const unsigned char *)e->type))
				why = "has a type name that is not valid UTF-8";
			else
				op->u.append.texts[s->first + k] = skald__pg_encode(
				        e->data, &op->u.append.lens[s->first + k], &why);
			if (why) {
				write_failed(op, i, SKALD_EREJECTED,
				             "append to \"%s\" rejected: event seq %llu (%s) %s",
				             wr->persistence_id, (unsigned long long)e->seq,
				             e->type, why);
				break;
			}
			s->bytes += op->u.append.lens[s->first + k];
		}
	}
	/* Rounds: the k-th write of a persistence id in this call goes in
	 * round k, after the one before it has committed. */
	size_t m = 0;
	for (size_t i = 0; i < n; i++)
		if (op->u.append.ws[i].state == W_PENDING)
			order[m++] = i;
	qsort_r(order, m, sizeof *order, cmp_pid_index, (void *)w);
	for (size_t i = 0; i < m; i++) {
		size_t r = 0;
		if (i > 0 &&
		    strcmp(w[order[i]]->persistence_id, w[order[i - 1]]->persistence_id) == 0)
			r = op->u.append.ws[order[i - 1]].round + 1;
		op->u.append.ws[order[i]].round = r;
		if (r > op->u.append.max_round)
			op->u.append.max_round = r;
	}
	free(order);
	return 0;
}

/* Sends the next statement of the append, or finishes it. */
void skald__pg_append_next(pg_t *pg, op_t *op)
{
	size_t n = op->u.append.n;
	skald_write_t *const *w = op->u.append.writes;
	wstate_t *ws = op->u.append.ws;
	size_t nchunk = 0, nev = 0, bytes = 0;
	for (;;) {
		for (size_t i = 0; i < n; i++) {
			if (ws[i].state != W_PENDING || ws[i].round != op->u.append.round)
				continue;
			/* A write that failed on its data in company goes alone. */
			if (nchunk > 0 && (ws[i].solo || ws[op->u.append.chunk[0]].solo))
				break;
			if (nchunk > 0 && (nev + w[i]->nevents > MAX_STMT_EVENTS ||
			                   bytes + ws[i].bytes > MAX_STMT_BYTES))
				break;
			if (w[i]->nevents > MAX_STMT_EVENTS) {
				write_failed(
				        op, i, SKALD_EREJECTED,
				        "append to \"%s\" rejected: more than %u events in one "
				        "write",
				        w[i]->persistence_id, MAX_STMT_EVENTS);
				continue;
			}
			op->u.append.chunk[nchunk++] = i;
			nev += w[i]->nevents;
			bytes += ws[i].bytes;
		}
		if (nchunk > 0)
			break;
		if (op->u.append.round >= op->u.append.max_round) {
			skald__pg_op_finish(op, 0, NULL);
			return;
		}
		op->u.append.round++;
	}
	op->u.append.nchunk = nchunk;

	skald__pg_buf_t b[10] = {{0}};
	skald__pg_arr_start(&b[0], OID_TEXT, nchunk);
	skald__pg_arr_start(&b[1], OID_INT8, nchunk);
	skald__pg_arr_start(&b[2], OID_INT4, nchunk);
	skald__pg_arr_start(&b[3], OID_INT4, nev);
	skald__pg_arr_start(&b[4], OID_INT8, nev);
	skald__pg_arr_start(&b[5], OID_TEXT, nev);
	skald__pg_arr_start(&b[6], OID_INT4, nev);
	skald__pg_arr_start(&b[7], OID_TEXT, nev);
	skald__pg_arr_start(&b[8], OID_INT8, nev);
	skald__pg_arr_start(&b[9], OID_INT8, nev);
	size_t ord = 0;
	for (size_t c = 0; c < nchunk; c++) {
		size_t i = op->u.append.chunk[c];
		skald_write_t *wr = w[i];
		ws[i].state = W_SENT;
		ws[i].ord = ord;
		skald__pg_arr_text(&b[0], wr->persistence_id, strlen(wr->persistence_id));
		skald__pg_arr_int8(&b[1], wr->expected_seq);
		skald__pg_arr_int4(&b[2], (uint32_t)wr->nevents);
		for (size_t k = 0; k < wr->nevents; k++) {
			const skald_event_t *e = &wr->events[k];
			skald__pg_arr_int4(&b[3], (uint32_t)(c + 1));
			skald__pg_arr_int8(&b[4], e->seq);
			skald__pg_arr_text(&b[5], e->type, strlen(e->type));
			skald__pg_arr_int4(&b[6], (uint32_t)e->version);
			skald__pg_arr_text(&b[7], op->u.append.texts[ws[i].first + k],
			                   op->u.append.lens[ws[i].first + k]);
			skald__pg_arr_int8(&b[8], (uint64_t)e->timestamp);
			skald__pg_arr_int8(&b[9], e->writer);
		}
		ord += wr->nevents;
	}
	const char *values[10];
	int lengths[10], formats[10];
	int oom = 0;
	for (int k = 0; k < 10; k++) {
		oom |= b[k].failed;
		values[k] = b[k].p;
		lengths[k] = (int)b[k].len;
		formats[k] = 1;
	}
	if (oom) {
		for (size_t c = 0; c < nchunk; c++)
			write_failed(op, op->u.append.chunk[c], SKALD_ENOMEM,
			             "out of memory building an append");
		for (int k = 0; k < 10; k++)
			free(b[k].p);
		skald__pg_append_next(pg, op);
		return;
	}
	skald__pg_send_prepared(pg, op->u.append.safe ? "skald_append_safe" : "skald_append", 10,
	                        values, lengths, formats);
	for (int k = 0; k < 10; k++)
		free(b[k].p);
}

/* Write i is stored, by transaction xid. */
static void set_offsets(op_t *op, size_t i, uint64_t xid)
{
	skald_write_t *w = op->u.append.writes[i];
	for (size_t k = 0; k < w->nevents; k++)
		w->events[k].offset = xid << SKALD__PG_ORD_BITS | (op->u.append.ws[i].ord + k);
	w->status = 0;
	op->u.append.ws[i].state = W_DONE;
}

void skald__pg_append_result(pg_t *pg, op_t *op, PGresult *res)
{
	skald_write_t *const *w = op->u.append.writes;
	wstate_t *ws = op->u.append.ws;
	size_t nchunk = op->u.append.nchunk;
	size_t *chunk = op->u.append.chunk;
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		const char *st = skald__pg_sqlstate_of(res);
		char m[400];
		skald__pg_result_message(pg, res, m, sizeof m);
		/* Back to pending: sent again, alone or with the others. A
		 * unique violation of the plain statement means a concurrent
		 * writer: the safe one tells which writes it hit. */
		bool unique = strcmp(st, "23505") == 0 && !op->u.append.safe;
		if ((unique || strcmp(st, "40001") == 0 || strcmp(st, "40P01") == 0) &&
		    ++op->u.append.retries <= MAX_RETRIES) {
			if (unique)
				op->u.append.safe = true;
			SKALD_LOG(SKALD_LOG_DEBUG, "postgres journal: append retried: %s", m);
			for (size_t c = 0; c < nchunk; c++)
				ws[chunk[c]].state = W_PENDING;
		} else if ((st[0] == '2' && st[1] == '2') || (st[0] == '5' && st[1] == '4')) {
			/* Data the server refused (class 22, or a limit of class
			 * 54): whose, only sending them one by one can tell. */
			for (size_t c = 0; c < nchunk; c++) {
				size_t i = chunk[c];
				if (nchunk > 1) {
					ws[i].state = W_PENDING;
					ws[i].solo = true;
				} else {
					write_failed(op, i, SKALD_EREJECTED,
					             "append to \"%s\" rejected by PostgreSQL: %s",
					             w[i]->persistence_id, m);
				}
			}
		} else {
			int status = skald__pg_status_of(res);
			for (size_t i = 0; i < op->u.append.n; i++)
				if (ws[i].state != W_DONE)
					write_failed(op, i, status, "append to \"%s\" failed: %s",
					             w[i]->persistence_id, m);
		}
		skald__pg_append_next(pg, op);
		return;
	}
	op->u.append.retries = 0;
	bool safe = op->u.append.safe;
	op->u.append.safe = false;
	int rows = PQntuples(res);
	uint64_t xid = 0;
	/* Plain: the transaction id, then the writes that failed the check;
	 * every other write of the statement was stored. Safe: every write,
	 * with the number of its events inserted. */
	for (int r = 0; r < rows; r++) {
		size_t c = (size_t)skald__pg_i64_of(res, r, 0);
		if (c == 0) {
			xid = skald__pg_u64_of(res, r, 2);
			continue;
		}
		if (--c >= nchunk)
			continue;
		size_t i = chunk[c];
		uint64_t highest = skald__pg_u64_of(res, r, 1);
		if (safe && skald__pg_u64_of(res, r, 3) == w[i]->nevents &&
		    !PQgetisnull(res, r, 2)) {
			set_offsets(op, i, skald__pg_u64_of(res, r, 2));
		} else if (highest != w[i]->expected_seq) {
			write_failed(op, i, SKALD_ECONFLICT,
			             "append to \"%s\": expected highest seq %llu, but it is %llu "
			             "(another writer appended first)",
			             w[i]->persistence_id, (unsigned long long)w[i]->expected_seq,
			             (unsigned long long)highest);
		} else {
			write_failed(op, i, SKALD_ECONFLICT,
			             "append to \"%s\": another writer appended after seq %llu at "
			             "the same time",
			             w[i]->persistence_id, (unsigned long long)w[i]->expected_seq);
		}
	}
	if (!safe) {
		for (size_t c = 0; c < nchunk; c++)
			if (ws[chunk[c]].state == W_SENT && xid != 0)
				set_offsets(op, chunk[c], xid);
	}
	for (size_t c = 0; c < nchunk; c++)
		if (ws[chunk[c]].state == W_SENT)
			write_failed(op, chunk[c], SKALD_EBACKEND,
			             "append to \"%s\": the server's answer did not mention it",
			             w[chunk[c]]->persistence_id);
	skald__pg_append_next(pg, op);
}
