/*
 * stores/postgres/ops.c - start: taking an operation in hand; the
 * single-shot operations (highest, delete_to, snapshots); the dispatch of
 * every operation's statement and result.
 */
#include <stdlib.h>
#include <string.h>

#include "stores/postgres/engine.h"

/* ------------------------------------------------------------------------ */
/* Start                                                                     */

/* Sets up the op in hand for its statements, or finishes it when it needs
 * none. */
static void prepare(pg_t *pg, op_t *op)
{
	skald_op_t *sop = op->sop;
	switch (op->kind) {
	case SKALD_OP_APPEND:
		op->u.append.writes = sop->writes;
		op->u.append.n = sop->nwrites;
		return;
	case SKALD_OP_READ:
		op->a = sop->from;
		op->b = sop->to > INT64_MAXU ? INT64_MAXU : sop->to;
		op->left = sop->max;
		op->first_page = true;
		if (sop->max == 0 || sop->from > sop->to || sop->from > INT64_MAXU ||
		    !skald__pg_utf8_valid((const unsigned char *)op->pid))
			skald__pg_op_finish(op, 0, NULL);
		return;
	case SKALD_OP_READ_ALL:
		op->a = sop->from;
		op->left = sop->max;
		op->first_page = true;
		if (sop->max == 0 || sop->from >= INT64_MAXU)
			skald__pg_op_finish(op, 0, NULL);
		return;
	case SKALD_OP_LIST_IDS:
		op->left = sop->max;
		if (skald__pg_list_prepare(op) != 0)
			skald__pg_op_finish(op, SKALD_ENOMEM, "out of memory listing ids");
		return;
	default:
		break;
	}
	/* The single-shot operations, on one persistence id. */
	op->a = sop->to;
	/* An id that is not UTF-8 was never stored: reads and deletions find
	 * nothing (the server would refuse the string). */
	if (!skald__pg_utf8_valid((const unsigned char *)op->pid)) {
		if (op->kind == SKALD_OP_SNAPSHOT_SAVE)
			skald__pg_op_finish(op, SKALD_EREJECTED,
			                    "snapshot rejected: the persistence id is not UTF-8");
		else
			skald__pg_op_finish(op, 0, NULL);
		return;
	}
	if (op->kind != SKALD_OP_SNAPSHOT_SAVE)
		return;
	skald_snapshot_t *snap = sop->snapshot;
	op->u.snap.snap = snap;
	size_t len;
	const char *why = NULL;
	op->u.snap.text = skald__pg_encode(snap->data, &len, &why);
	if (op->u.snap.text == NULL)
		skald__pg_op_finish(op, SKALD_EREJECTED,
		                    "snapshot of \"%s\" at seq %llu rejected: it %s",
		                    snap->persistence_id, (unsigned long long)snap->seq, why);
	else if (snap->seq > INT64_MAXU)
		skald__pg_op_finish(
		        op, SKALD_EREJECTED,
		        "snapshot of \"%s\" rejected: seq above 2^63-1 cannot be stored",
		        snap->persistence_id);
}

void skald__pg_start(void *state, skald_op_t *sop)
{
	pg_t *pg = state;
	op_t *op = &pg->slot;
	*op = (op_t){.sop = sop, .kind = sop->kind, .pid = sop->persistence_id};
	pg->op = op;
	prepare(pg, op);
	/* Runs from the loop, never inside this call. */
	skald__pg_kick(pg);
}

static void snapshot_loaded(pg_t *pg, op_t *op, PGresult *res)
{
	if (PQntuples(res) == 0) {
		skald__pg_op_finish(op, 0, NULL);
		return;
	}
	json_t *data = skald__pg_decode(pg, res, 0, 2);
	if (data == NULL) {
		skald__pg_op_finish(
		        op, SKALD_EDECODE,
		        "snapshot of \"%s\" at seq %llu: stored data cannot be read as JSON (%s at "
		        "character %d)",
		        op->pid, (unsigned long long)skald__pg_u64_of(res, 0, 0),
		        pg->decode_err.text, pg->decode_err.position);
		pg->decode_failed = false;
		return;
	}
	op->u.snap.data = data;
	op->u.snap.seq = skald__pg_u64_of(res, 0, 0);
	op->u.snap.version = (int)skald__pg_i64_of(res, 0, 1);
	op->u.snap.timestamp = skald__pg_i64_of(res, 0, 3);
	skald__pg_op_finish(op, 0, NULL);
}

/* Sends the op's query, or finishes it when it needs none. */
void skald__pg_start_op(pg_t *pg, op_t *op)
{
	char n1[24], n2[24], n3[16];
	op->started = true;
	switch (op->kind) {
	case SKALD_OP_APPEND:
		if (op->u.append.ws == NULL && skald__pg_append_prepare(op) != 0) {
			for (size_t i = 0; i < op->u.append.n; i++)
				op->u.append.writes[i]->status = SKALD_ENOMEM;
			skald__pg_op_finish(op, SKALD_ENOMEM, "out of memory preparing an append");
			return;
		}
		skald__pg_append_next(pg, op);
		return;
	case SKALD_OP_READ:
		skald__pg_read_send(pg, op);
		return;
	case SKALD_OP_READ_ALL:
		skald__pg_read_all_send(pg, op);
		return;
	case SKALD_OP_LIST_IDS:
		skald__pg_list_send(pg, op);
		return;
	case SKALD_OP_HIGHEST: {
		const char *v[1] = {op->pid};
		skald__pg_send_prepared(pg, "skald_highest", 1, v, NULL, NULL);
		return;
	}
	case SKALD_OP_DELETE_TO:
	case SKALD_OP_SNAPSHOT_LOAD:
	case SKALD_OP_SNAPSHOT_DELETE:
	case SKALD_OP_SNAPSHOT_DELETE_TO: {
		static const char *const names[SKALD_OP_LIST_IDS + 1] = {
		        [SKALD_OP_DELETE_TO] = "skald_delete_to",
		        [SKALD_OP_SNAPSHOT_LOAD] = "skald_snapshot_load",
		        [SKALD_OP_SNAPSHOT_DELETE] = "skald_snapshot_delete",
		        [SKALD_OP_SNAPSHOT_DELETE_TO] = "skald_snapshot_delete_to",
		};
		skald__pg_bound_text(n1, sizeof n1, op->a);
		const char *v[2] = {op->pid, n1};
		skald__pg_send_prepared(pg, names[op->kind], 2, v, NULL, NULL);
		return;
	}
	case SKALD_OP_SNAPSHOT_SAVE: {
		skald_snapshot_t *s = op->u.snap.snap;
		skald__pg_bound_text(n1, sizeof n1, s->seq);
		snprintf(n3, sizeof n3, "%d", s->version);
		snprintf(n2, sizeof n2, "%lld", (long long)s->timestamp);
		const char *v[5] = {op->pid, n1, n3, op->u.snap.text, n2};
		skald__pg_send_prepared(pg, "skald_snapshot_save", 5, v, NULL, NULL);
		return;
	}
	}
}

/* The result of op's query arrived. */
void skald__pg_op_result(pg_t *pg, op_t *op, PGresult *res)
{
	ExecStatusType st = PQresultStatus(res);
	bool ok = st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK;
	switch (op->kind) {
	case SKALD_OP_APPEND:
		skald__pg_append_result(pg, op, res);
		return;
	case SKALD_OP_READ:
		skald__pg_read_result(pg, op, res);
		return;
	case SKALD_OP_READ_ALL:
		skald__pg_read_all_result(pg, op, res);
		return;
	case SKALD_OP_LIST_IDS:
		skald__pg_list_result(pg, op, res);
		return;
	default:
		break;
	}
	if (!ok) {
		char m[400];
		skald__pg_result_message(pg, res, m, sizeof m);
		skald__pg_op_finish(op, skald__pg_status_of(res), "\"%s\": %s", op->pid, m);
		return;
	}
	if (op->kind == SKALD_OP_HIGHEST) {
		op->a = PQntuples(res) ? skald__pg_u64_of(res, 0, 0) : 0;
		skald__pg_op_finish(op, 0, NULL);
	} else if (op->kind == SKALD_OP_SNAPSHOT_LOAD) {
		snapshot_loaded(pg, op, res);
	} else {
		skald__pg_op_finish(op, 0, NULL);
	}
}
