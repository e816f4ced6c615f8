/*
 * tests/mongo/mt.c - synchronous helpers for the MongoDB store's tests.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "skald/store.h"
#include "tests/mongo/mt.h"

/* Longest any one operation may take before a helper gives up: generous,
 * since a loaded machine slows the test server a lot. */
#define OP_LIMIT_MS 60000

int64_t mt_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *mt_server(void)
{
	const char *s = getenv("SKALD_TEST_MONGO");
	return s && *s ? s : NULL;
}

void mt_uri(char *buf, size_t len, const char *server, const char *name, const char *opts)
{
	uint32_t r = 0;
	if (uv_random(NULL, NULL, &r, sizeof r, 0, NULL) != 0)
		r = (uint32_t)time(NULL);
	snprintf(buf, len, "%s/mt_%s_%d_%08x%s%s", server, name, (int)getpid(), r,
	         opts && *opts ? "?" : "", opts ? opts : "");
}

int mt_migrate(const char *uri, char *err, size_t errlen)
{
	return skald_store_migrate(uri, 0, NULL, err, errlen);
}

int mt_open(mt_t *t, const char *uri)
{
	memset(t, 0, sizeof *t);
	if (uv_loop_init(&t->loop) != 0)
		return -1;
	int rc = skald_journal_open(&t->loop, uri, &t->j);
	if (rc != 0)
		uv_loop_close(&t->loop);
	return rc;
}

static void closed(skald_journal_t *j, void *arg)
{
	*(int *)arg = 1;
}

int mt_close(mt_t *t)
{
	int done = 0;
	if (t->j && skald_journal_close(t->j, closed, &done) == 0)
		uv_run(&t->loop, UV_RUN_DEFAULT);
	t->j = NULL;
	return uv_loop_close(&t->loop);
}

typedef struct call_s {
	int done;
	int status;
	uint64_t seq;
	mt_evs_t *out;
} call_t;

static void on_limit(uv_timer_t *timer)
{
	*(int *)timer->data = 1;
}

/* Runs the loop until c completes (or OP_LIMIT_MS pass: then -1). */
static int wait_for(mt_t *t, call_t *c)
{
	uv_timer_t limit;
	int expired = 0;
	uv_timer_init(&t->loop, &limit);
	limit.data = &expired;
	uv_timer_start(&limit, on_limit, OP_LIMIT_MS, 0);
	while (!c->done && !expired)
		uv_run(&t->loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&limit, NULL);
	uv_run(&t->loop, UV_RUN_NOWAIT);
	return c->done ? c->status : -1;
}

static void on_append(skald_journal_t *j, int status, skald_write_t *w, size_t n, void *arg)
{
	call_t *c = arg;
	c->status = status;
	c->done = 1;
}

int mt_append_writes(mt_t *t, skald_write_t *writes, size_t n)
{
	call_t c = {0};
	int rc = skald_journal_append(t->j, writes, n, on_append, &c);
	return rc != 0 ? rc : wait_for(t, &c);
}

int mt_append(mt_t *t, const char *pid, uint64_t expected, size_t n, int64_t tag)
{
	skald_event_t *ev = calloc(n, sizeof *ev);
	for (size_t i = 0; i < n; i++) {
		ev[i].type = "mt.counted";
		ev[i].data = json_pack("{sI}", "n", (json_int_t)(tag + (int64_t)i));
	}
	skald_write_t w = {pid, expected, ev, n, 0};
	int rc = mt_append_writes(t, &w, 1);
	for (size_t i = 0; i < n; i++)
		json_decref(ev[i].data);
	free(ev);
	return rc;
}

static void on_seq(skald_journal_t *j, int status, uint64_t seq, void *arg)
{
	call_t *c = arg;
	c->status = status;
	c->seq = seq;
	c->done = 1;
}

int mt_highest(mt_t *t, const char *pid, uint64_t *seq)
{
	call_t c = {0};
	int rc = skald_journal_highest(t->j, pid, on_seq, &c);
	rc = rc != 0 ? rc : wait_for(t, &c);
	*seq = c.seq;
	return rc;
}

static int on_events(skald_journal_t *j, const skald_event_t *ev, size_t n, void *arg)
{
	call_t *c = arg;
	mt_evs_t *o = c->out;
	for (size_t i = 0; i < n; i++) {
		if (o->n == o->cap) {
			o->cap = o->cap ? o->cap * 2 : 256;
			o->ev = realloc(o->ev, o->cap * sizeof *o->ev);
		}
		o->ev[o->n++] = (mt_ev_t){strdup(ev[i].persistence_id), ev[i].seq, ev[i].offset,
		                          json_integer_value(json_object_get(ev[i].data, "n"))};
	}
	return 0;
}

static void on_done(skald_journal_t *j, int status, void *arg)
{
	call_t *c = arg;
	c->status = status;
	c->done = 1;
}

int mt_read(mt_t *t, const char *pid, uint64_t from, uint64_t to, mt_evs_t *out)
{
	call_t c = {.out = out};
	int rc = skald_journal_read(t->j, pid, from, to, SKALD_SEQ_MAX, on_events, on_done, &c);
	return rc != 0 ? rc : wait_for(t, &c);
}

int mt_read_all(mt_t *t, uint64_t after, uint64_t max, mt_evs_t *out)
{
	call_t c = {.out = out};
	int rc = skald_journal_read_all(t->j, after, max, on_events, on_done, &c);
	return rc != 0 ? rc : wait_for(t, &c);
}

void mt_evs_free(mt_evs_t *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->ev[i].pid);
	free(e->ev);
	memset(e, 0, sizeof *e);
}
