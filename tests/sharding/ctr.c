/*
 * tests/sharding/ctr.c - the ctr entity and its messages, and its
 * histories read back from the journal (ctr.h).
 */
#include <stdlib.h>
#include <string.h>

#include "tests/sharding/ctr.h"

uint32_t t_add, t_get, t_val, t_seen, t_quit, t_local;
atomic_long g_ctr_inits, g_ctr_recovered;

static int u64_encode(const void *payload, void **out, size_t *len)
{
	uint8_t *b = malloc(8);
	if (b == NULL)
		return SKALD_ENOMEM;
	uint64_t v = V(payload);
	for (int i = 7; i >= 0; i--, v >>= 8)
		b[i] = (uint8_t)v;
	*out = b;
	*len = 8;
	return 0;
}

static int u64_decode(const void *data, size_t len, void **payload)
{
	if (len != 8)
		return SKALD_EDECODE;
	const uint8_t *b = data;
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | b[i];
	*payload = U(v);
	return 0;
}

#define INT_TYPE(var, str)                                                                         \
	static const skald_msgtype_t var = {.name = str, .encode = u64_encode, .decode = u64_decode}
INT_TYPE(add_def, "shtest.add");
INT_TYPE(get_def, "shtest.get");
INT_TYPE(val_def, "shtest.val");
INT_TYPE(seen_def, "shtest.seen");
INT_TYPE(quit_def, "shtest.quit");
static const skald_msgtype_t local_def = {.name = "shtest.local"};

int ctr_register(void)
{
	int rc = 0;
	if ((rc = skald_type_register(&add_def, &t_add)) < 0 ||
	    (rc = skald_type_register(&get_def, &t_get)) < 0 ||
	    (rc = skald_type_register(&val_def, &t_val)) < 0 ||
	    (rc = skald_type_register(&seen_def, &t_seen)) < 0 ||
	    (rc = skald_type_register(&quit_def, &t_quit)) < 0)
		return rc;
	return skald_type_register(&local_def, &t_local);
}

typedef struct ctr_s {
	uint64_t total;
	uint64_t last_n;
	long forks;
	skald_msg_t req; /* the ask waiting for its write */
} ctr_t;

static int ctr_init(void *state, const char *id)
{
	atomic_fetch_add(&g_ctr_inits, 1);
	return 0;
}

static int ctr_apply(void *state, const skald_event_t *ev)
{
	ctr_t *c = state;
	if (strcmp(ev->type, "ctr.added") == 0) {
		uint64_t k = (uint64_t)json_integer_value(json_object_get(ev->data, "k"));
		uint64_t total = (uint64_t)json_integer_value(json_object_get(ev->data, "total"));
		if (total != c->total + k)
			c->forks++;
		c->total = total;
	} else if (strcmp(ev->type, "ctr.seen") == 0) {
		c->last_n = (uint64_t)json_integer_value(json_object_get(ev->data, "n"));
	}
	return 0;
}

static void ctr_recovered(skald_actor_t *self, void *state)
{
	atomic_fetch_add(&g_ctr_recovered, 1);
}

static void added(skald_actor_t *self, void *state, int status, void *arg)
{
	ctr_t *c = state;
	if (status == 0 && c->req.ask_id != 0)
		skald_reply(self, &c->req, t_val, U(c->total));
}

static int ctr_command(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	ctr_t *c = state;
	if (msg->type == t_add) {
		uint64_t k = V(msg->payload);
		c->req = *msg;
		json_t *d = json_pack("{sIsI}", "k", (json_int_t)k, "total",
		                      (json_int_t)(c->total + k));
		int rc = skald_persist(self, "ctr.added", 1, d, added, NULL);
		if (rc < 0)
			json_decref(d);
		return rc;
	}
	if (msg->type == t_seen) {
		json_t *d = json_pack("{sI}", "n", (json_int_t)V(msg->payload));
		int rc = skald_persist(self, "ctr.seen", 1, d, NULL, NULL);
		if (rc < 0)
			json_decref(d);
		return rc;
	}
	if (msg->type == t_get || msg->type == t_local)
		return skald_reply(self, msg, t_val, U(c->total));
	if (msg->type == t_quit)
		skald_stop_self(self);
	return 0;
}

const skald_entity_type_t ctr_type = {
        .name = "ctr",
        .state_size = sizeof(ctr_t),
        .init = ctr_init,
        .command = ctr_command,
        .apply = ctr_apply,
        .recovered = ctr_recovered,
};

skald_sharding_config_t ctr_config(void)
{
	return (skald_sharding_config_t){.type = &ctr_type, .shards = 16};
}

/* ------------------------------------------------------------------------ */
/* Read back                                                                 */

/* Runs loop until *done; SKALD_ETIMEDOUT if it runs dry first (a callback
 * that never came). */
static int run_until(uv_loop_t *loop, const int *done)
{
	while (!*done)
		if (uv_run(loop, UV_RUN_ONCE) == 0 && !*done)
			return SKALD_ETIMEDOUT;
	return 0;
}

typedef struct hist_ctx_s {
	ctr_history_t *h;
	int done, status;
} hist_ctx_t;

static int on_events(skald_journal_t *j, const skald_event_t *ev, size_t n, void *arg)
{
	ctr_history_t *h = ((hist_ctx_t *)arg)->h;
	for (size_t i = 0; i < n; i++) {
		if (ev[i].seq == h->highest)
			h->dup_seqs++;
		else if (ev[i].seq != h->highest + 1)
			h->gaps++;
		h->highest = ev[i].seq;
		h->events++;
		if (strcmp(ev[i].type, "ctr.added") == 0) {
			uint64_t k = (uint64_t)json_integer_value(json_object_get(ev[i].data, "k"));
			uint64_t t =
			        (uint64_t)json_integer_value(json_object_get(ev[i].data, "total"));
			if (t != h->total + k)
				h->forks++;
			h->total = t;
		} else if (strcmp(ev[i].type, "ctr.seen") == 0) {
			uint64_t v = (uint64_t)json_integer_value(json_object_get(ev[i].data, "n"));
			if (v != h->last_n + 1 && h->disorder++ == 0) {
				h->bad_after = h->last_n;
				h->bad_n = v;
				h->bad_seq = ev[i].seq;
			}
			h->last_n = v;
		}
	}
	return 0;
}

static void on_done(skald_journal_t *j, int status, void *arg)
{
	hist_ctx_t *c = arg;
	c->status = status;
	c->done = 1;
}

int ctr_history(skald_journal_t *j, uv_loop_t *loop, const char *pid, ctr_history_t *h)
{
	memset(h, 0, sizeof *h);
	hist_ctx_t c = {h, 0, 0};
	int rc =
	        skald_journal_read(j, pid, 1, SKALD_SEQ_MAX, SKALD_SEQ_MAX, on_events, on_done, &c);
	if (rc == 0)
		rc = run_until(loop, &c.done);
	return rc < 0 ? rc : c.status;
}

typedef struct fill_ctx_s {
	int done, status;
} fill_ctx_t;

static void on_filled(skald_journal_t *j, int status, skald_write_t *w, size_t n, void *arg)
{
	fill_ctx_t *c = arg;
	c->status = status;
	for (size_t i = 0; i < n && c->status == 0; i++)
		c->status = w[i].status;
	c->done = 1;
}

int ctr_prefill(skald_journal_t *j, uv_loop_t *loop, const char *prefix, int n, int events)
{
	enum { PER_CALL = 50 };
	skald_write_t w[PER_CALL];
	char pids[PER_CALL][160];
	skald_event_t *ev = calloc((size_t)PER_CALL * (size_t)events, sizeof *ev);
	if (ev == NULL)
		return SKALD_ENOMEM;
	int rc = 0;
	for (int first = 0; first < n && rc == 0; first += PER_CALL) {
		int k = n - first < PER_CALL ? n - first : PER_CALL;
		for (int i = 0; i < k; i++) {
			snprintf(pids[i], sizeof pids[i], "%s-%d", prefix, first + i);
			skald_event_t *e = &ev[(size_t)i * (size_t)events];
			for (int s = 0; s < events; s++)
				e[s] = (skald_event_t){.type = "ctr.added",
				                       .data = json_pack("{sIsI}", "k",
				                                         (json_int_t)1, "total",
				                                         (json_int_t)(s + 1))};
			w[i] = (skald_write_t){pids[i], 0, e, (size_t)events, 0};
		}
		fill_ctx_t c = {0, 0};
		rc = skald_journal_append(j, w, (size_t)k, on_filled, &c);
		if (rc == 0)
			rc = run_until(loop, &c.done);
		if (rc == 0)
			rc = c.status;
		for (int i = 0; i < k * events; i++)
			json_decref(ev[i].data);
	}
	free(ev);
	return rc;
}
