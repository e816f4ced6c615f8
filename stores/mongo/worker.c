/*
 * stores/mongo/worker.c - the worker thread, and the loop side that delivers
 * what it made of each operation.
 */
#include "stores/mongo/engine.h"

/* ------------------------------------------------------------------------ */
/* Worker thread                                                             */

/* Releases what a stream holds between steps. Worker thread. */
static void release(wctx_t *w, op_t *op)
{
	if (op->cursor) {
		mongoc_cursor_destroy(op->cursor);
		op->cursor = NULL;
	}
	if (op->doc) {
		bson_destroy(op->doc);
		op->doc = NULL;
	}
	if (op->mdoc) {
		bson_destroy(op->mdoc);
		op->mdoc = NULL;
	}
}

static void run_op(mg_t *m, op_t *op)
{
	wctx_t w = {m, m->be, op->client};
	if (w.client == NULL)
		w.client = mongoc_client_pool_pop(m->be->pool);
	if (op->stop) {
		release(&w, op);
		op->finished = 1;
		goto out;
	}
	if (!op->started && !atomic_load(&m->be->schema_ok)) {
		int rc = skald__mongo_schema_check(w.client, m->be->db, op->errmsg,
		                                   sizeof op->errmsg);
		if (rc != 0) {
			op->status = rc;
			op->finished = 1;
			if (op->kind == SKALD_OP_APPEND)
				for (size_t i = 0; i < op->u.append.n; i++)
					op->u.append.writes[i]->status = rc;
			goto out;
		}
		atomic_store(&m->be->schema_ok, 1);
	}
	switch (op->kind) {
	case SKALD_OP_APPEND:
		skald__mg_run_append(&w, op);
		break;
	case SKALD_OP_READ:
		skald__mg_step_read(&w, op);
		break;
	case SKALD_OP_HIGHEST:
		skald__mg_step_highest(&w, op);
		break;
	case SKALD_OP_DELETE_TO:
		skald__mg_step_delete_to(&w, op);
		break;
	case SKALD_OP_SNAPSHOT_SAVE:
		skald__mg_step_snap_save(&w, op);
		break;
	case SKALD_OP_SNAPSHOT_LOAD:
		skald__mg_step_snap_load(&w, op);
		break;
	case SKALD_OP_SNAPSHOT_DELETE:
		skald__mg_step_snap_delete(&w, op, 0);
		break;
	case SKALD_OP_SNAPSHOT_DELETE_TO:
		skald__mg_step_snap_delete(&w, op, 1);
		break;
	case SKALD_OP_READ_ALL:
		skald__mg_step_read_all(&w, op);
		break;
	case SKALD_OP_LIST_IDS:
		skald__mg_step_list(&w, op);
		break;
	}
	if (op->finished)
		release(&w, op);
out:
	/* A stream reading a cursor keeps its client (a cursor belongs to
	 * one); every other operation gives it back. */
	if (op->cursor) {
		op->client = w.client;
	} else {
		mongoc_client_pool_push(m->be->pool, w.client);
		op->client = NULL;
	}
}

void *skald__mg_worker_main(void *arg)
{
	mg_t *m = arg;
	for (;;) {
		pthread_mutex_lock(&m->lock);
		while (m->todo_head == NULL && !m->stop)
			pthread_cond_wait(&m->cond, &m->lock);
		op_t *op = m->todo_head;
		if (op == NULL) {
			m->exited = 1;
			pthread_mutex_unlock(&m->lock);
			if (m->async_ready)
				uv_async_send(&m->async);
			return NULL;
		}
		m->todo_head = op->next;
		if (m->todo_head == NULL)
			m->todo_tail = NULL;
		pthread_mutex_unlock(&m->lock);

		run_op(m, op);

		pthread_mutex_lock(&m->lock);
		skald__mg_push(&m->done_head, &m->done_tail, op);
		pthread_mutex_unlock(&m->lock);
		uv_async_send(&m->async);
	}
}

/* ------------------------------------------------------------------------ */
/* Loop side: completions                                                    */

static void on_async_closed(uv_handle_t *h)
{
	mg_t *m = h->data;
	m->close_done(m->j);
}

void skald__mg_request_stop(mg_t *m)
{
	pthread_mutex_lock(&m->lock);
	m->stop = 1;
	pthread_cond_signal(&m->cond);
	pthread_mutex_unlock(&m->lock);
}

void skald__mg_complete(mg_t *m, op_t *op)
{
	skald__mg_op_free(op);
	if (--m->inflight == 0 && m->closing)
		skald__mg_request_stop(m);
}

/* Hands what the worker made of op to the front. Loop thread. */
void skald__mg_deliver(mg_t *m, op_t *op)
{
	skald_journal_t *j = m->j;
	skald_op_t *sop = op->sop;
	if (op->errmsg[0])
		skald_journal_set_errmsg(j, "%s", op->errmsg);
	if (op->bad_pid)
		skald_journal_set_bad_event(j, op->bad_pid, op->bad_seq, op->bad_offset);
	switch (op->kind) {
	case SKALD_OP_READ:
	case SKALD_OP_READ_ALL:
	case SKALD_OP_LIST_IDS:
		break;
	case SKALD_OP_HIGHEST:
		sop->seq = op->u.highest.seq;
		/* fall through */
	default:
		if (op->kind == SKALD_OP_SNAPSHOT_LOAD && op->u.snap.found) {
			/* The front releases the data after the callback. */
			sop->loaded = op->u.snap.snap;
			sop->loaded.persistence_id = sop->persistence_id;
			op->u.snap.snap.data = NULL;
		}
		skald_op_finish(sop, op->status);
		skald__mg_complete(m, op);
		return;
	}
	/* A stream has taken effect once its first step ran: later operations
	 * of the handle go to the worker beside its next steps. */
	if (!op->released) {
		op->released = 1;
		skald_op_release(sop);
	}
	int rc = 0;
	if (op->nev > 0)
		rc = skald_op_events(sop, op->ev, op->nev);
	else if (op->nids > 0)
		rc = skald_op_ids(sop, op->ids, op->nids);
	skald__mg_free_batch(op);
	op->errmsg[0] = '\0';
	if (!op->finished && rc == 0 && !m->closing) {
		skald__mg_to_worker(m, op); /* the next batch */
		return;
	}
	if (!op->finished) {
		/* Stopped by the reader, or cut short by close: the worker
		 * releases the stream, then the op finishes. */
		op->status = rc != 0 ? rc : SKALD_ECANCELED;
		op->stop = 1;
		skald__mg_to_worker(m, op);
		return;
	}
	if (op->status == 0)
		op->status = rc;
	skald_op_finish(sop, op->status);
	skald__mg_complete(m, op);
}

void skald__mg_on_async(uv_async_t *a)
{
	mg_t *m = a->data;
	pthread_mutex_lock(&m->lock);
	op_t *op = m->done_head;
	m->done_head = m->done_tail = NULL;
	int exited = m->exited;
	pthread_mutex_unlock(&m->lock);
	while (op) {
		op_t *next = op->next;
		skald__mg_deliver(m, op);
		op = next;
	}
	if (exited && !m->joined) {
		pthread_join(m->thread, NULL);
		m->joined = 1;
		uv_close((uv_handle_t *)&m->async, on_async_closed);
	}
}
