/*
 * tests/entity/acc.c - "acc", the entity the suite drives.
 *
 * It applies "acc.added" events {"v": N} (and "acc.legacy" ones once
 * upcast to version 2), fails on "acc.poison", and records in its state and
 * in process-wide counters what the framework made it do, so that tests can
 * check order and counts. Commands are cmd_t (helpers.h); replies carry a
 * copy of the state.
 */
#include "helpers.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

atomic_long g_apply_calls;
atomic_long g_recovered_calls;
atomic_long g_restore_calls;
atomic_int g_restore_version;
atomic_long g_acked[MAX_ENTITIES];
atomic_long g_acked_total;
atomic_int g_gate;
atomic_int g_gate_hits;
atomic_int g_snapshot_mode;
atomic_int g_restore_fail;
atomic_int g_trace_on;

/* ------------------------------------------------------------------------ */
/* Trace                                                                     */

#define TRACE_MAX 4096
static pthread_mutex_t trace_lock = PTHREAD_MUTEX_INITIALIZER;
static int trace_kind[TRACE_MAX];
static uint64_t trace_seq[TRACE_MAX];
static size_t trace_len;

void trace_add(int kind, uint64_t seq)
{
	if (!atomic_load(&g_trace_on))
		return;
	pthread_mutex_lock(&trace_lock);
	if (trace_len < TRACE_MAX) {
		trace_kind[trace_len] = kind;
		trace_seq[trace_len] = seq;
		trace_len++;
	}
	pthread_mutex_unlock(&trace_lock);
}

size_t trace_get(int *kinds, uint64_t *seqs, size_t max)
{
	pthread_mutex_lock(&trace_lock);
	size_t n = trace_len < max ? trace_len : max;
	memcpy(kinds, trace_kind, n * sizeof *kinds);
	memcpy(seqs, trace_seq, n * sizeof *seqs);
	pthread_mutex_unlock(&trace_lock);
	return n;
}

/* ------------------------------------------------------------------------ */
/* Event handler                                                             */

static int acc_init(void *state, const char *id)
{
	acc_t *s = state;
	const char *dash = strrchr(id, '-');
	s->idx = dash != NULL ? atoi(dash + 1) % MAX_ENTITIES : 0;
	return 0;
}

static void gate_wait(uint64_t seq)
{
	/* Only the first event: a recovery from the start is held, while
	 * another incarnation's live writes (later seqs) pass. */
	if (seq != 1 || !atomic_load(&g_gate))
		return;
	atomic_fetch_add(&g_gate_hits, 1);
	/* Blocks this scheduler thread on purpose, bounded, so that the test
	 * can act while a recovery is certainly under way. */
	uint64_t end = now_ms() + WAIT_MS;
	while (atomic_load(&g_gate)) {
		if (now_ms() > end) {
			CHECK(!"the gate was never opened");
			return;
		}
		sleep_ms(1);
	}
}

static void apply_added(acc_t *s, long v)
{
	if (v != s->d.last_v + 1)
		s->d.bad_order++;
	s->d.last_v = v;
	s->d.sum += v;
	s->d.count++;
}

static int acc_apply(void *state, const skald_event_t *ev)
{
	acc_t *s = state;
	atomic_fetch_add(&g_apply_calls, 1);
	trace_add(TR_APPLY, ev->seq);
	gate_wait(ev->seq);
	if (strcmp(ev->type, "acc.poison") == 0)
		return TEST_ERR;
	if (ev->seq != s->d.last_seq + 1)
		s->d.seq_gaps++;
	s->d.last_seq = ev->seq;
	if (s->restored)
		s->applied_after_restore++;
	if (ev->version == 1)
		s->d.v1_events++;
	else if (ev->version == 2)
		s->d.v2_events++;
	json_t *v = json_object_get(ev->data, "v");
	if (strcmp(ev->type, "acc.added") == 0) {
		apply_added(s, json_is_integer(v) ? (long)json_integer_value(v) : -1);
	} else if (strcmp(ev->type, "acc.legacy") == 0) {
		/* Written at version 1 as {"amount": N}; only the upcast form
		 * (version 2, {"v": N}) may reach apply. */
		if (ev->version != 2 || !json_is_integer(v) || json_object_get(ev->data, "amount"))
			s->d.bad_legacy++;
		else
			apply_added(s, (long)json_integer_value(v));
	}
	return 0;
}

static void acc_fini(void *state)
{
	acc_t *s = state;
	free(s->inflight);
	s->inflight = NULL;
}

static void acc_recovered(skald_actor_t *self, void *state)
{
	acc_t *s = state;
	s->recovered++;
	s->count_at_recovered = s->d.count;
	atomic_fetch_add(&g_recovered_calls, 1);
}

static int acc_snapshot(const void *state, json_t **out)
{
	const acc_t *s = state;
	int mode = atomic_load(&g_snapshot_mode);
	if (mode == SNAP_FAIL)
		return TEST_ERR;
	*out = json_pack("{sIsIsIsIsIsIsIsI}", "count", (json_int_t)s->d.count, "sum",
	                 (json_int_t)s->d.sum, "last_v", (json_int_t)s->d.last_v, "bad_order",
	                 (json_int_t)s->d.bad_order, "last_seq", (json_int_t)s->d.last_seq,
	                 "seq_gaps", (json_int_t)s->d.seq_gaps, "v1", (json_int_t)s->d.v1_events,
	                 "v2", (json_int_t)s->d.v2_events);
	if (*out == NULL)
		return SKALD_ENOMEM;
	if (mode == SNAP_BADUTF8)
		json_object_set_new(*out, "bad", json_stringn_nocheck("\xff\xfe", 2));
	return 0;
}

static long get_long(const json_t *o, const char *key)
{
	return (long)json_integer_value(json_object_get(o, key));
}

static int acc_restore(void *state, const json_t *snap, int version)
{
	acc_t *s = state;
	atomic_fetch_add(&g_restore_calls, 1);
	atomic_store(&g_restore_version, version);
	if (!json_is_object(snap) || atomic_load(&g_restore_fail))
		return TEST_ERR;
	s->d.count = get_long(snap, "count");
	s->d.sum = get_long(snap, "sum");
	s->d.last_v = get_long(snap, "last_v");
	s->d.bad_order = get_long(snap, "bad_order");
	s->d.last_seq = (uint64_t)get_long(snap, "last_seq");
	s->d.seq_gaps = get_long(snap, "seq_gaps");
	s->d.v1_events = get_long(snap, "v1");
	s->d.v2_events = get_long(snap, "v2");
	s->restored = 1;
	s->restored_count = s->d.count;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Command handler                                                           */

/* What a persist callback needs: the request to answer (its sender and ask
 * id outlive the handler), and what was persisted. */
typedef struct pending_s {
	skald_msg_t req;
	int reply;
	int loop;
	int rc2;
	long last_v; /* v of the last event persisted */
} pending_t;

static reply_t *reply_new(skald_actor_t *self, const acc_t *s)
{
	reply_t *r = calloc(1, sizeof *r);
	if (r == NULL)
		return NULL;
	r->st = *s;
	r->seq = skald_entity_seq(self);
	r->ref = skald_self(self);
	const char *pid = skald_entity_pid(self), *id = skald_entity_id(self);
	snprintf(r->pid, sizeof r->pid, "%s", pid ? pid : "");
	snprintf(r->eid, sizeof r->eid, "%s", id ? id : "");
	return r;
}

static int reply_rc(skald_actor_t *self, const skald_msg_t *req, const acc_t *s, int rc, int rc2,
                    int status)
{
	reply_t *r = reply_new(self, s);
	if (r == NULL)
		return SKALD_ENOMEM;
	r->rc = rc;
	r->rc2 = rc2;
	r->status = status;
	int err = skald_reply(self, req, T_REPLY, r);
	if (err < 0)
		free(r);
	return err;
}

static int persist_range(skald_actor_t *self, acc_t *s, pending_t *p, long first, long n);

static void acc_persisted(skald_actor_t *self, void *state, int status, void *arg)
{
	acc_t *s = state;
	pending_t *p = arg;
	if (s->inflight == p)
		s->inflight = NULL;
	trace_add(TR_CB, skald_entity_seq(self));
	s->last_status = status;
	if (status == 0) {
		s->cb_ok++;
		/* The events are applied before the callback runs. */
		CHECK(s->d.last_v == p->last_v);
		CHECK(skald_entity_seq(self) == s->d.last_seq);
	} else {
		s->cb_failed++;
	}
	if (p->loop) {
		if (status != 0) {
			free(p);
			return;
		}
		atomic_store(&g_acked[s->idx], p->last_v);
		atomic_fetch_add(&g_acked_total, 1);
		long next = p->last_v + 1;
		int rc = persist_range(self, s, p, next, 1);
		CHECK(rc == 0);
		if (rc < 0)
			free(p);
		return;
	}
	if (p->reply)
		CHECK(reply_rc(self, &p->req, s, 0, p->rc2, status) == 0);
	free(p);
}

/* Persists events v = first .. first + n - 1 in one atomic write. */
static int persist_range(skald_actor_t *self, acc_t *s, pending_t *p, long first, long n)
{
	skald_new_event_t ev[64];
	if (n < 1 || n > 64)
		return SKALD_EINVAL;
	for (long i = 0; i < n; i++) {
		ev[i] = (skald_new_event_t){"acc.added", 1,
		                            json_pack("{sI}", "v", (json_int_t)(first + i))};
		if (ev[i].data == NULL)
			return SKALD_ENOMEM;
	}
	p->last_v = first + n - 1;
	int rc = skald_persist_all(self, ev, (size_t)n, acc_persisted, p);
	if (rc < 0)
		for (long i = 0; i < n; i++)
			json_decref(ev[i].data); /* still ours on error */
	else
		s->inflight = p;
	return rc;
}

static pending_t *pending_new(const skald_msg_t *msg)
{
	pending_t *p = calloc(1, sizeof *p);
	if (p != NULL) {
		p->req = *msg;
		p->req.payload = NULL;
		p->reply = 1;
	}
	return p;
}

/* A batch of n events whose middle one is made bad by `spoil`. Returns what
 * skald_persist_all returned; on 0 the callback answers. */
static int persist_spoiled(skald_actor_t *self, acc_t *s, const skald_msg_t *msg, long first,
                           long n, int badutf8)
{
	skald_new_event_t ev[16];
	if (n < 1 || n > 16)
		return SKALD_EINVAL;
	for (long i = 0; i < n; i++)
		ev[i] = (skald_new_event_t){"acc.added", 1,
		                            json_pack("{sI}", "v", (json_int_t)(first + i))};
	long bad = n / 2;
	if (badutf8) {
		json_object_set_new(ev[bad].data, "bad", json_stringn_nocheck("\xff\xfe", 2));
	} else {
		json_decref(ev[bad].data);
		ev[bad].data = json_string("not an object");
	}
	pending_t *p = pending_new(msg);
	if (p == NULL)
		return SKALD_ENOMEM;
	p->last_v = first + n - 1;
	int rc = skald_persist_all(self, ev, (size_t)n, acc_persisted, p);
	if (rc < 0) {
		/* On error the caller still owns every event's data. */
		for (long i = 0; i < n; i++) {
			CHECK(ev[i].data->refcount == 1);
			json_decref(ev[i].data);
		}
		free(p);
	} else {
		s->inflight = p;
	}
	return rc;
}

/* Malformed persists that must all be SKALD_EINVAL. */
static int bad_args(skald_actor_t *self)
{
	json_t *data = json_pack("{sI}", "v", (json_int_t)1);
	skald_new_event_t ok = {"acc.added", 1, data};
	skald_new_event_t notype = {NULL, 1, data};
	skald_new_event_t emptytype = {"", 1, data};
	skald_new_event_t nodata = {"acc.added", 1, NULL};
	int rc = 0, r;
	if ((r = skald_persist_all(self, &ok, 0, NULL, NULL)) != SKALD_EINVAL)
		rc = r ? r : -1;
	else if ((r = skald_persist_all(self, NULL, 1, NULL, NULL)) != SKALD_EINVAL)
		rc = r ? r : -2;
	else if ((r = skald_persist_all(self, &notype, 1, NULL, NULL)) != SKALD_EINVAL)
		rc = r ? r : -3;
	else if ((r = skald_persist_all(self, &emptytype, 1, NULL, NULL)) != SKALD_EINVAL)
		rc = r ? r : -4;
	else if ((r = skald_persist_all(self, &nodata, 1, NULL, NULL)) != SKALD_EINVAL)
		rc = r ? r : -5;
	json_t *array = json_array();
	if (rc == 0 && (r = skald_persist(self, "acc.added", 1, array, NULL, NULL)) != SKALD_EINVAL)
		rc = r ? r : -6;
	else if (rc == 0 && (data->refcount != 1 || array->refcount != 1))
		rc = -7;
	json_decref(array);
	json_decref(data);
	return rc;
}

static int acc_command(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	acc_t *s = state;
	s->cmds++;
	if (!s->recovered)
		s->cmds_before_recovered++;
	if (msg->type != T_CMD)
		return 0;
	const cmd_t *c = msg->payload;
	switch (c->op) {
	case C_ADD:
	case C_BATCH: {
		pending_t *p = pending_new(msg);
		if (p == NULL)
			return SKALD_ENOMEM;
		/* A plain tell has nobody to answer. */
		p->reply = msg->ask_id != 0;
		int rc = persist_range(self, s, p, c->v, c->op == C_ADD ? 1 : c->n);
		if (rc < 0) {
			free(p);
			return reply_rc(self, msg, s, rc, 0, 0);
		}
		return 0;
	}
	case C_GET:
		return reply_rc(self, msg, s, 0, 0, 0);
	case C_BATCH_NONOBJ:
	case C_BATCH_BADUTF8: {
		int rc = persist_spoiled(self, s, msg, c->v, c->n, c->op == C_BATCH_BADUTF8);
		return rc < 0 ? reply_rc(self, msg, s, rc, 0, 0) : 0;
	}
	case C_DOUBLE: {
		pending_t *p = pending_new(msg);
		if (p == NULL)
			return SKALD_ENOMEM;
		int rc = persist_range(self, s, p, c->v, 1);
		if (rc < 0) {
			free(p);
			return reply_rc(self, msg, s, rc, 0, 0);
		}
		/* Its own record, so that a library that wrongly accepted the
		 * second call would show as a wrong code, not as a crash. */
		pending_t *p2 = calloc(1, sizeof *p2);
		if (p2 == NULL)
			return SKALD_ENOMEM;
		p2->last_v = c->v + 1;
		json_t *second = json_pack("{sI}", "v", (json_int_t)(c->v + 1));
		p->rc2 = skald_persist(self, "acc.added", 1, second, acc_persisted, p2);
		if (p->rc2 < 0) {
			CHECK(second->refcount == 1);
			json_decref(second);
			free(p2);
		}
		return 0;
	}
	case C_SNAPSHOT:
		return reply_rc(self, msg, s, skald_entity_snapshot(self), 0, 0);
	case C_LOOP: {
		pending_t *p = calloc(1, sizeof *p);
		if (p == NULL)
			return SKALD_ENOMEM;
		p->loop = 1;
		int rc = persist_range(self, s, p, c->v, 1);
		if (rc < 0)
			free(p);
		CHECK(rc == 0);
		return 0;
	}
	case C_BADARGS:
		return reply_rc(self, msg, s, bad_args(self), 0, 0);
	default:
		return reply_rc(self, msg, s, SKALD_EINVAL, 0, 0);
	}
}

const skald_entity_type_t acc_type = {
        .name = "acc",
        .state_size = sizeof(acc_t),
        .init = acc_init,
        .command = acc_command,
        .apply = acc_apply,
        .recovered = acc_recovered,
        .fini = acc_fini,
        .snapshot = acc_snapshot,
        .restore = acc_restore,
};

const skald_entity_type_t acc_every5_type = {
        .name = "acc",
        .state_size = sizeof(acc_t),
        .init = acc_init,
        .command = acc_command,
        .apply = acc_apply,
        .recovered = acc_recovered,
        .fini = acc_fini,
        .snapshot = acc_snapshot,
        .restore = acc_restore,
        .snapshot_every = 5,
        .snapshot_version = 3,
};

const skald_entity_type_t acc_nosnap_type = {
        .name = "acc",
        .state_size = sizeof(acc_t),
        .init = acc_init,
        .command = acc_command,
        .apply = acc_apply,
        .recovered = acc_recovered,
        .fini = acc_fini,
};
