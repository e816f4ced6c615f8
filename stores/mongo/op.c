/*
 * stores/mongo/op.c - start: an operation's working state, messages,
 * hand-over to the worker.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stores/mongo/engine.h"

/* ------------------------------------------------------------------------ */
/* Handles, operations and the worker                                        */

void skald__mg_push(op_t **head, op_t **tail, op_t *op)
{
	op->next = NULL;
	if (*tail)
		(*tail)->next = op;
	else
		*head = op;
	*tail = op;
}

void skald__mg_free_batch(op_t *op)
{
	for (size_t i = 0; i < op->nev; i++) {
		json_decref(op->ev[i].data);
		free((char *)op->ev[i].persistence_id);
		free((char *)op->ev[i].type);
	}
	op->nev = 0;
	for (size_t i = 0; i < op->nids; i++)
		free((char *)op->ids[i].persistence_id);
	op->nids = 0;
}

/* Frees op; its mongoc resources must already be released (worker). */
void skald__mg_op_free(op_t *op)
{
	skald__mg_free_batch(op);
	free(op->ev);
	free(op->ids);
	free(op->bad_pid);
	if (op->kind == SKALD_OP_SNAPSHOT_LOAD)
		json_decref(op->u.snap.snap.data);
	free(op);
}

/* Sets the message the handle gets with op's completion (truncated). */
void skald__mg_set_msg(op_t *op, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(op->errmsg, sizeof op->errmsg, fmt, ap);
	va_end(ap);
}

void skald__mg_fail(op_t *op, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(op->errmsg, sizeof op->errmsg, fmt, ap);
	va_end(ap);
	op->status = code;
	op->finished = 1;
}

int64_t skald__mg_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void skald__mg_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* Hands op to the worker. Loop thread. */
void skald__mg_to_worker(mg_t *m, op_t *op)
{
	pthread_mutex_lock(&m->lock);
	skald__mg_push(&m->todo_head, &m->todo_tail, op);
	pthread_cond_signal(&m->cond);
	pthread_mutex_unlock(&m->lock);
}

void skald__mg_start(void *state, skald_op_t *sop)
{
	mg_t *m = state;
	op_t *op = calloc(1, sizeof *op);
	if (op == NULL) {
		skald_op_finish(sop, SKALD_ENOMEM);
		return;
	}
	op->sop = sop;
	op->kind = sop->kind;
	op->pid = sop->persistence_id;
	switch (sop->kind) {
	case SKALD_OP_APPEND:
		op->u.append.writes = sop->writes;
		op->u.append.n = sop->nwrites;
		break;
	case SKALD_OP_READ:
		op->u.read.from = sop->from;
		op->u.read.to = sop->to > INT64_LIMIT ? INT64_LIMIT : sop->to;
		op->u.read.left = sop->max;
		break;
	case SKALD_OP_READ_ALL:
		op->u.all.after = sop->from;
		op->u.all.left = sop->max;
		break;
	case SKALD_OP_LIST_IDS:
		op->pid = NULL;
		op->u.list.prefix =
		        sop->persistence_id && *sop->persistence_id ? sop->persistence_id : NULL;
		op->u.list.after = sop->after_id;
		op->u.list.left = sop->max;
		break;
	case SKALD_OP_DELETE_TO:
		op->u.del.to = sop->to;
		break;
	case SKALD_OP_SNAPSHOT_SAVE:
		op->u.save.snap = sop->snapshot;
		break;
	case SKALD_OP_HIGHEST:
		break;
	case SKALD_OP_SNAPSHOT_LOAD:
	case SKALD_OP_SNAPSHOT_DELETE:
	case SKALD_OP_SNAPSHOT_DELETE_TO:
		op->u.snap.seq = sop->to;
		break;
	}
	m->inflight++;
	skald__mg_to_worker(m, op);
}

/* Adds an event to op's batch; takes data, copies the strings. */
int skald__mg_batch_add(op_t *op, const char *pid, uint64_t seq, const char *type, int version,
                        json_t *data, int64_t ts, uint64_t writer, uint64_t offset)
{
	if (op->nev == op->evcap) {
		size_t n = op->evcap ? op->evcap * 2 : 64;
		skald_event_t *ev = realloc(op->ev, n * sizeof *ev);
		if (ev == NULL) {
			json_decref(data);
			return SKALD_ENOMEM;
		}
		op->ev = ev;
		op->evcap = n;
	}
	char *p = strdup(pid), *t = strdup(type);
	if (p == NULL || t == NULL) {
		free(p);
		free(t);
		json_decref(data);
		return SKALD_ENOMEM;
	}
	op->ev[op->nev++] = (skald_event_t){p, seq, t, version, data, ts, writer, offset};
	return 0;
}
