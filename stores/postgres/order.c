/*
 * stores/postgres/order.c - read_all: the gap-free global order (README.md).
 */
#include "base/log.h"
#include "stores/postgres/engine.h"

void skald__pg_read_all_send(pg_t *pg, op_t *op)
{
	char after[24], lim[24];
	skald__pg_bound_text(after, sizeof after, op->a);
	uint64_t n = op->left < pg->uri.batch ? op->left : pg->uri.batch;
	skald__pg_bound_text(lim, sizeof lim, n);
	const char *v[2] = {after, lim};
	skald__pg_send_prepared(pg, "skald_read_all", 2, v, NULL, NULL);
}

static void on_wait_timer(uv_timer_t *t)
{
	pg_t *pg = t->data;
	op_t *op = pg->op;
	if (op && op->waiting) {
		op->waiting = false;
		op->started = false; /* sent again by skald__pg_pump, on whatever connection */
	}
	skald__pg_pump(pg);
}

void skald__pg_read_all_result(pg_t *pg, op_t *op, PGresult *res)
{
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		char m[400];
		skald__pg_result_message(pg, res, m, sizeof m);
		skald__pg_op_finish(op, skald__pg_status_of(res),
		                    "reading the global order failed: %s", m);
		return;
	}
	int rows = PQntuples(res);
	if (rows < 1) {
		skald__pg_op_finish(op, SKALD_EBACKEND,
		                    "reading the global order: no snapshot row");
		return;
	}
	uint64_t xmin = skald__pg_u64_of(res, 0, 0);
	if (op->first_page) {
		op->all.target = skald__pg_u64_of(res, 0, 1);
		op->all.deadline = uv_now(pg->loop) + pg->uri.wait_ms;
		op->all.delay = 1;
		op->first_page = false;
	}
	size_t n = 0;
	for (int r = 0; r < rows; r++) {
		if (PQgetisnull(res, r, 2))
			continue;
		pg->evbuf[n++] = (skald_event_t){
		        .persistence_id = PQgetvalue(res, r, 2),
		        .seq = skald__pg_u64_of(res, r, 3),
		        .type = PQgetvalue(res, r, 4),
		        .version = (int)skald__pg_i64_of(res, r, 5),
		        .data = skald__pg_decode(pg, res, r, 6),
		        .timestamp = skald__pg_i64_of(res, r, 7),
		        .writer = (uint64_t)skald__pg_i64_of(res, r, 8),
		        .offset = skald__pg_u64_of(res, r, 9),
		};
	}
	uint64_t asked = op->left < pg->uri.batch ? op->left : pg->uri.batch;
	if (n > 0)
		op->a = pg->evbuf[n - 1].offset;
	op->left -= n;
	int rc = skald__pg_deliver(pg, op, n);
	if (op->finished)
		return;
	if (rc != 0) {
		skald__pg_op_finish(op, rc, NULL);
	} else if (op->left == 0) {
		skald__pg_op_finish(op, 0, NULL);
	} else if (n == asked) {
		skald__pg_read_all_send(pg, op);
	} else if (xmin >= op->all.target || uv_now(pg->loop) >= op->all.deadline) {
		/* Everything committed before the call is in (or the wait is
		 * over: what was returned is still never followed by a lower
		 * offset). */
		if (xmin < op->all.target)
			SKALD_LOG(SKALD_LOG_INFO,
			          "postgres journal: read_all stopped waiting for a transaction "
			          "that stays open (xid %llu)",
			          (unsigned long long)xmin);
		skald__pg_op_finish(op, 0, NULL);
	} else {
		/* Transactions that were running when read_all started are
		 * still running: their events would come before the next ones. */
		op->waiting = true;
		uv_timer_start(&pg->wait_timer, on_wait_timer, op->all.delay, 0);
		op->all.delay = op->all.delay * 2 > 50 ? 50 : op->all.delay * 2;
	}
}
