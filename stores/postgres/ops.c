/*
 * stores/postgres/ops.c - the single-shot operations (highest, delete_to,
 * snapshots), and the dispatch of every operation's statement and result.
 */
#include <stdlib.h>
#include <string.h>

#include "stores/postgres/engine.h"

/* ------------------------------------------------------------------------ */
/* Single-shot operations                                                    */

static int simple_op(pg_t *pg, enum op_kind kind, const char *pid, uint64_t seq, skald_done_fn done,
                     void *arg, op_t **out)
{
	op_t *op = skald__pg_op_new(pg, kind, arg);
	if (op == NULL || (op->pid = strdup(pid)) == NULL) {
		free(op);
		return pg->closing ? SKALD_ECLOSED : SKALD_ENOMEM;
	}
	op->done = done;
	op->a = seq;
	/* An id that is not UTF-8 was never stored: reads and deletions find
	 * nothing (the server would refuse the string). */
	if (!skald__pg_utf8_valid((const unsigned char *)pid))
		skald__pg_op_finish(op, kind == OP_SNAP_SAVE ? SKALD_EREJECTED : 0,
		                    kind == OP_SNAP_SAVE
		                            ? "snapshot rejected: the persistence id is not UTF-8"
		                            : NULL);
	*out = op;
	return 0;
}

int skald__pg_highest(void *state, const char *pid, skald_seq_fn cb, void *arg)
{
	op_t *op;
	int rc = simple_op(state, OP_HIGHEST, pid, 0, NULL, arg, &op);
	if (rc == 0) {
		op->u.on_seq = cb;
		skald__pg_enqueue(state, op);
	}
	return rc;
}

int skald__pg_delete_to(void *state, const char *pid, uint64_t to, skald_done_fn cb, void *arg)
{
	op_t *op;
	int rc = simple_op(state, OP_DELETE_TO, pid, to, cb, arg, &op);
	if (rc == 0)
		skald__pg_enqueue(state, op);
	return rc;
}

int skald__pg_snapshot_save(void *state, skald_snapshot_t *snap, skald_done_fn cb, void *arg)
{
	pg_t *pg = state;
	op_t *op;
	int rc = simple_op(pg, OP_SNAP_SAVE, snap->persistence_id, snap->seq, cb, arg, &op);
	if (rc != 0)
		return rc;
	op->u.snap.snap = snap;
	size_t len;
	const char *why = NULL;
	if (!op->finished) {
		op->u.snap.text = skald__pg_encode(snap->data, &len, &why);
		if (op->u.snap.text == NULL)
			skald__pg_op_finish(op, SKALD_EREJECTED,
			                    "snapshot of \"%s\" at seq %llu rejected: it %s",
			                    snap->persistence_id, (unsigned long long)snap->seq,
			                    why);
		else if (snap->seq > INT64_MAXU)
			skald__pg_op_finish(
			        op, SKALD_EREJECTED,
			        "snapshot of \"%s\" rejected: seq above 2^63-1 cannot be stored",
			        snap->persistence_id);
	}
	skald__pg_enqueue(pg, op);
	return 0;
}

int skald__pg_snapshot_load(void *state, const char *pid, uint64_t max_seq, skald_snapshot_fn cb,
                            void *arg)
{
	op_t *op;
	int rc = simple_op(state, OP_SNAP_LOAD, pid, max_seq, NULL, arg, &op);
	if (rc == 0) {
		op->u.snap.cb = cb;
		skald__pg_enqueue(state, op);
	}
	return rc;
}

int skald__pg_snapshot_delete(void *state, const char *pid, uint64_t seq, skald_done_fn cb,
                              void *arg)
{
	op_t *op;
	int rc = simple_op(state, OP_SNAP_DELETE, pid, seq, cb, arg, &op);
	if (rc == 0)
		skald__pg_enqueue(state, op);
	return rc;
}

int skald__pg_snapshot_delete_to(void *state, const char *pid, uint64_t max_seq, skald_done_fn cb,
                                 void *arg)
{
	op_t *op;
	int rc = simple_op(state, OP_SNAP_DELETE_TO, pid, max_seq, cb, arg, &op);
	if (rc == 0)
		skald__pg_enqueue(state, op);
	return rc;
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
	case OP_APPEND:
		if (op->u.append.ws == NULL && skald__pg_append_prepare(op) != 0) {
			for (size_t i = 0; i < op->u.append.n; i++)
				op->u.append.writes[i].status = SKALD_ENOMEM;
			skald__pg_op_finish(op, SKALD_ENOMEM, "out of memory preparing an append");
			return;
		}
		skald__pg_append_next(pg, op);
		return;
	case OP_READ:
		skald__pg_read_send(pg, op);
		return;
	case OP_READ_ALL:
		skald__pg_read_all_send(pg, op);
		return;
	case OP_LIST:
		skald__pg_list_send(pg, op);
		return;
	case OP_HIGHEST: {
		const char *v[1] = {op->pid};
		skald__pg_send_prepared(pg, "skald_highest", 1, v, NULL, NULL);
		return;
	}
	case OP_DELETE_TO:
	case OP_SNAP_LOAD:
	case OP_SNAP_DELETE:
	case OP_SNAP_DELETE_TO: {
		static const char *const names[] = {
		        [OP_DELETE_TO] = "skald_delete_to",
		        [OP_SNAP_LOAD] = "skald_snapshot_load",
		        [OP_SNAP_DELETE] = "skald_snapshot_delete",
		        [OP_SNAP_DELETE_TO] = "skald_snapshot_delete_to",
		};
		skald__pg_bound_text(n1, sizeof n1, op->a);
		const char *v[2] = {op->pid, n1};
		skald__pg_send_prepared(pg, names[op->kind], 2, v, NULL, NULL);
		return;
	}
	case OP_SNAP_SAVE: {
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
	case OP_APPEND:
		skald__pg_append_result(pg, op, res);
		return;
	case OP_READ:
		skald__pg_read_result(pg, op, res);
		return;
	case OP_READ_ALL:
		skald__pg_read_all_result(pg, op, res);
		return;
	case OP_LIST:
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
	if (op->kind == OP_HIGHEST) {
		op->a = PQntuples(res) ? skald__pg_u64_of(res, 0, 0) : 0;
		skald__pg_op_finish(op, 0, NULL);
	} else if (op->kind == OP_SNAP_LOAD) {
		snapshot_loaded(pg, op, res);
	} else {
		skald__pg_op_finish(op, 0, NULL);
	}
}
