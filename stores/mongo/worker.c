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
			if (op->kind == OP_APPEND)
				for (size_t i = 0; i < op->u.append.n; i++)
					op->u.append.writes[i].status = rc;
			goto out;
		}
		atomic_store(&m->be->schema_ok, 1);
	}
	switch (op->kind) {
	case OP_APPEND:
		skald__mg_run_append(&w, op);
		break;
	case OP_READ:
		skald__mg_step_read(&w, op);
		break;
	case OP_HIGHEST:
		skald__mg_step_highest(&w, op);
		break;
	case OP_DELETE_TO:
		skald__mg_step_delete_to(&w, op);
		break;
	case OP_SNAP_SAVE:
		skald__mg_step_snap_save(&w, op);
		break;
	case OP_SNAP_LOAD:
		skald__mg_step_snap_load(&w, op);
		break;
	case OP_SNAP_DELETE:
		skald__mg_step_snap_delete(&w, op, 0);
		break;
	case OP_SNAP_DELETE_TO:
		skald__mg_step_snap_delete(&w, op, 1);
		break;
	case OP_READ_ALL:
		skald__mg_step_read_all(&w, op);
		break;
	case OP_LIST:
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

/* Delivers what the worker made of op. Loop thread. */
void skald__mg_deliver(mg_t *m, op_t *op)
{
	skald_journal_t *j = m->j;
	if (op->errmsg[0])
		skald_journal_set_errmsg(j, "%s", op->errmsg);
	if (op->bad_pid)
		skald_journal_set_bad_event(j, op->bad_pid, op->bad_seq, op->bad_offset);
	switch (op->kind) {
	case OP_APPEND:
		op->u.append.cb(j, op->status, op->u.append.writes, op->u.append.n, op->arg);
		skald__mg_complete(m, op);
		return;
	case OP_HIGHEST:
		op->u.highest.cb(j, op->status, op->u.highest.seq, op->arg);
		skald__mg_complete(m, op);
		return;
	case OP_SNAP_LOAD:
		op->u.snap.cb(j, op->status, op->u.snap.found ? &op->u.snap.snap : NULL, op->arg);
		skald__mg_complete(m, op);
		return;
	case OP_DELETE_TO:
	case OP_SNAP_SAVE:
	case OP_SNAP_DELETE:
	case OP_SNAP_DELETE_TO:
		op->done(j, op->status, op->arg);
		skald__mg_complete(m, op);
		return;
	case OP_READ:
	case OP_READ_ALL:
	case OP_LIST:
		break;
	}
	int rc = 0;
	if (op->nev > 0) {
		skald_events_fn cb = op->kind == OP_READ ? op->u.read.cb : op->u.all.cb;
		rc = cb(j, op->ev, op->nev, op->arg);
	} else if (op->nids > 0) {
		rc = op->u.list.cb(j, op->ids, op->nids, op->arg);
	}
	skald__mg_free_batch(op);
	op->errmsg[0] = '\0';
	if (!op->finished && rc == 0 && !m->closing) {
		skald__mg_to_worker(m, op); /* the next batch */
		return;
	}
	if (!op->finished) {
		/* Stopped by the reader, or cut short by close: the worker
		 * releases the stream, then done runs. */
		op->status = rc != 0 ? rc : SKALD_ECANCELED;
		op->stop = 1;
		skald__mg_to_worker(m, op);
		return;
	}
	if (op->status == 0)
		op->status = rc;
	op->done(j, op->status, op->arg);
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
