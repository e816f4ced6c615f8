/*
 * journal/writer.c - per-thread journal handle and write batching (see
 * writer.h).
 */
#include <stddef.h>
#include <stdlib.h>

#include "base/log.h"
#include "base/metrics_int.h"
#include "journal/journal_int.h"
#include "journal/writer.h"

/* Writes per journal call: bounds the size of one transaction. */
#define MAX_BATCH 4096

struct skald__writer_s {
	skald_journal_t *j;
	uv_idle_t flush; /* runs the flush on the next loop pass */
	skald__pwrite_t *head, *tail;
	size_t queued;
	/* The batch in flight: one operation, reused, whose writes point at
	 * the queued records' own writes (nothing is copied). */
	skald_op_t op;
	skald_write_t **ptrs;
	size_t ptrcap;
	bool inflight;
	bool closing;
	uint64_t sent_ns; /* uv_hrtime() of the batch in flight, for its metric */
	int closes;       /* handles still closing */
};

static void flush(skald__writer_t *w);
static void flush_cb(uv_idle_t *h);

/* The queued record whose write wr is. */
static skald__pwrite_t *record_of(skald_write_t *wr)
{
	return (skald__pwrite_t *)((char *)wr - offsetof(skald__pwrite_t, w));
}

static void append_cb(skald_op_t *op, int status)
{
	skald__writer_t *w = op->front.arg;
	skald_metric_observe(skald__m.journal_write, (double)(uv_hrtime() - w->sent_ns) / 1e9);
	for (size_t i = 0; i < op->nwrites; i++) {
		/* done frees the record, and the write with it. */
		skald__pwrite_t *pw = record_of(op->writes[i]);
		pw->done(pw, pw->w.status);
	}
	w->inflight = false;
	flush(w);
}

static void flush(skald__writer_t *w)
{
	if (w->inflight || w->queued == 0)
		return;
	size_t n = w->queued < MAX_BATCH ? w->queued : MAX_BATCH;
	if (n > w->ptrcap) {
		size_t cap = w->ptrcap ? w->ptrcap : 64;
		while (cap < n)
			cap *= 2;
		skald_write_t **p = realloc(w->ptrs, cap * sizeof *p);
		if (p == NULL) {
			/* Try again on the next pass rather than fail the writes. */
			uv_idle_start(&w->flush, flush_cb);
			return;
		}
		w->ptrs = p;
		w->ptrcap = cap;
	}
	for (size_t i = 0; i < n; i++) {
		skald__pwrite_t *pw = w->head;
		w->head = pw->next;
		pw->next = NULL;
		w->ptrs[i] = &pw->w;
	}
	if (w->head == NULL)
		w->tail = NULL;
	w->queued -= n;
	w->op.writes = w->ptrs;
	w->op.nwrites = n;
	skald_metric_observe(skald__m.journal_batch, (double)n);
	w->sent_ns = uv_hrtime();
	int rc = skald__journal_append_op(w->j, &w->op, append_cb, w);
	if (rc < 0) {
		char d[600];
		SKALD_LOG(SKALD_LOG_ERROR, "journal append refused: %s%s", skald_strerror(rc),
		          skald__log_paren(skald_journal_errmsg(w->j), d, sizeof d));
		for (size_t i = 0; i < n; i++) {
			skald__pwrite_t *pw = record_of(w->ptrs[i]);
			pw->done(pw, rc);
		}
		return;
	}
	w->inflight = true;
}

static void flush_cb(uv_idle_t *h)
{
	skald__writer_t *w = h->data;
	uv_idle_stop(h);
	flush(w);
}

void skald__writer_submit(skald__writer_t *w, skald__pwrite_t *pw)
{
	pw->next = NULL;
	if (w->tail == NULL)
		w->head = pw;
	else
		w->tail->next = pw;
	w->tail = pw;
	w->queued++;
	if (w->closing) {
		/* Only during shutdown: nobody is left to wait for it. */
		w->head = w->tail = NULL;
		w->queued = 0;
		pw->done(pw, SKALD_ECLOSED);
		return;
	}
	if (!w->inflight)
		uv_idle_start(&w->flush, flush_cb);
}

skald_journal_t *skald__writer_journal(skald__writer_t *w)
{
	return w->j;
}

static void writer_free_if_closed(skald__writer_t *w)
{
	if (--w->closes == 0) {
		free(w->ptrs);
		free(w);
	}
}

static void idle_closed(uv_handle_t *h)
{
	writer_free_if_closed(h->data);
}

static void journal_closed(skald_journal_t *j, void *arg)
{
	writer_free_if_closed(arg);
}

/* Phase 2 of the graceful stop: every entity is gone, so queued writes have
 * no one to confirm; in-flight ones complete inside the close. */
static void writer_fini(void *ctx)
{
	skald__writer_t *w = ctx;
	w->closing = true;
	skald__pwrite_t *pw;
	while ((pw = w->head) != NULL) {
		w->head = pw->next;
		pw->done(pw, SKALD_ECLOSED);
	}
	w->tail = NULL;
	w->queued = 0;
	w->closes = 2;
	uv_idle_stop(&w->flush);
	uv_close((uv_handle_t *)&w->flush, idle_closed);
	if (skald_journal_close(w->j, journal_closed, w) < 0)
		writer_free_if_closed(w);
}

skald__writer_t *skald__writer_get(skald_actor_t *self, int *err)
{
	skald__writer_t *w = skald__layer_ctx(self, SKALD__LAYER_JOURNAL);
	if (w != NULL)
		return w;
	w = calloc(1, sizeof *w);
	if (w == NULL) {
		*err = SKALD_ENOMEM;
		return NULL;
	}
	uv_loop_t *loop = skald__actor_loop(self);
	const char *uri;
	char msg[256] = "";
	int rc = skald__journal_uri(skald__system_journal(skald_actor_system(self)),
	                            SKALD__JOURNAL_DEFAULT, &uri, msg, sizeof msg);
	if (rc == 0)
		rc = skald_journal_open(loop, uri, &w->j);
	if (rc < 0) {
		SKALD_LOG(SKALD_LOG_ERROR, "cannot open the journal: %s",
		          msg[0] ? msg : skald_journal_open_errmsg());
		free(w);
		*err = rc;
		return NULL;
	}
	uv_idle_init(loop, &w->flush);
	w->flush.data = w;
	skald__layer_set(self, SKALD__LAYER_JOURNAL, w, writer_fini);
	return w;
}
