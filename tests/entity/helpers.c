/*
 * tests/entity/helpers.c - fixtures of the entity suite (see helpers.h).
 */
#define SKALD_TEST_DEFINE
#include "helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

uint32_t T_CMD, T_REPLY;

static const skald_msgtype_t cmd_msgtype = {.name = "entity-test.cmd", .free = free};
static const skald_msgtype_t reply_msgtype = {.name = "entity-test.reply", .free = free};

static char uri_buf[256];
static char probe_uri_buf[300];
static atomic_int id_counter;
static uint32_t run_random;

/* The first failed CHECK, kept for the report; later ones are only counted. */
static down_rec_t downs[64];
static atomic_int ndowns;

/* Draws a new memory store per call, so that a test never sees another's
 * data even if several ran in one process. */
static atomic_int store_counter;

static uint32_t rand32(void)
{
	uint32_t r = 0;
	if (uv_random(NULL, NULL, &r, sizeof r, 0, NULL) != 0)
		r = (uint32_t)time(NULL) ^ (uint32_t)clock() ^ (uint32_t)getpid();
	return r;
}

void entity_fixture(void)
{
	cr_assert_eq(skald_type_register(&cmd_msgtype, &T_CMD), 0);
	cr_assert_eq(skald_type_register(&reply_msgtype, &T_REPLY), 0);
	probe_register();
	checks_reset();
	atomic_store(&ndowns, 0);
	atomic_store(&g_apply_calls, 0);
	atomic_store(&g_recovered_calls, 0);
	atomic_store(&g_restore_calls, 0);
	atomic_store(&g_restore_version, 0);
	atomic_store(&g_acked_total, 0);
	for (int i = 0; i < MAX_ENTITIES; i++)
		atomic_store(&g_acked[i], 0);
	atomic_store(&g_gate, 0);
	atomic_store(&g_gate_hits, 0);
	atomic_store(&g_snapshot_mode, SNAP_OK);
	atomic_store(&g_restore_fail, 0);
	atomic_store(&g_trace_on, 0);
	atomic_store(&probe_fail_append, 0);
	atomic_store(&probe_fail_snapshot, 0);
	atomic_store(&probe_fail_snapshot_load, 0);
	atomic_store(&probe_fail_read, 0);
	atomic_store(&probe_events_committed, 0);
	atomic_store(&probe_snapshots_forwarded, 0);
	atomic_store(&probe_snapshots_failed, 0);
	run_random = rand32();
	const char *env = getenv("SKALD_TEST_STORE");
	if (env != NULL && env[0] != '\0')
		snprintf(uri_buf, sizeof uri_buf, "%s", env);
	else
		snprintf(uri_buf, sizeof uri_buf, "memory://entity-%d-%d", (int)getpid(),
		         atomic_fetch_add(&store_counter, 1) + 1);
	snprintf(probe_uri_buf, sizeof probe_uri_buf, "entprobe:%s", uri_buf);
}

const char *store_uri(void)
{
	return uri_buf;
}

const char *probe_store_uri(void)
{
	return probe_uri_buf;
}

void unique_id(char *buf, size_t len, const char *tag)
{
	snprintf(buf, len, "%s-%d-%08x-%d", tag, (int)getpid(), run_random,
	         atomic_fetch_add(&id_counter, 1) + 1);
}

skald_system_t *sys_start(const char *uri, unsigned threads)
{
	skald_config_t cfg = {.threads = threads, .name = "entity-test", .journal = uri};
	skald_system_t *sys = NULL;
	int rc = skald_system_new(&cfg, &sys);
	cr_assert_eq(rc, 0, "skald_system_new: %s", skald_strerror(rc));
	cr_assert_not_null(sys);
	return sys;
}

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>

void assert_no_leaks(void)
{
	/* The report itself goes to stderr. */
	int leaked = __lsan_do_recoverable_leak_check();
	cr_assert_eq(leaked, 0, "memory leaked (LeakSanitizer's report is on stderr)");
}
#else
void assert_no_leaks(void)
{
}
#endif

/* ------------------------------------------------------------------------ */
/* The test's own loop                                                       */

static void on_guard(uv_timer_t *t)
{
	((jloop_t *)t->data)->expired = 1;
}

void jl_open(jloop_t *l, const char *uri)
{
	memset(l, 0, sizeof *l);
	cr_assert_eq(uv_loop_init(&l->loop), 0);
	uv_timer_init(&l->loop, &l->guard);
	l->guard.data = l;
	/* A lost callback must show as a loop that runs dry, not as a wait
	 * that the guard keeps alive. */
	uv_unref((uv_handle_t *)&l->guard);
	int rc = skald_journal_open(&l->loop, uri, &l->j);
	cr_assert_eq(rc, 0, "open %s: %s: %s", uri, skald_strerror(rc),
	             skald_journal_open_errmsg());
}

void jl_run_until(jloop_t *l, const int *flag)
{
	l->expired = 0;
	uv_timer_start(&l->guard, on_guard, WAIT_MS, 0);
	while (!*flag && !l->expired) {
		if (uv_run(&l->loop, UV_RUN_ONCE) == 0 && !*flag)
			break;
	}
	uv_timer_stop(&l->guard);
	cr_assert(*flag, "journal operation: %s", l->expired ? "timed out" : "the loop ran dry");
}

static void on_closed(skald_journal_t *j, void *arg)
{
	*(int *)arg = 1;
}

void jl_close(jloop_t *l)
{
	int closed = 0;
	cr_assert_eq(skald_journal_close(l->j, on_closed, &closed), 0);
	jl_run_until(l, &closed);
	l->j = NULL;
	uv_close((uv_handle_t *)&l->guard, NULL);
	uv_run(&l->loop, UV_RUN_DEFAULT);
	cr_assert_eq(uv_loop_close(&l->loop), 0, "handles left on the test's loop");
}

typedef struct read_ctx_s {
	rec_t *v;
	size_t n, cap;
	int done, status;
} read_ctx_t;

static int on_events(skald_journal_t *j, const skald_event_t *ev, size_t n, void *arg)
{
	read_ctx_t *r = arg;
	for (size_t i = 0; i < n; i++) {
		if (r->n == r->cap) {
			size_t cap = r->cap ? r->cap * 2 : 256;
			rec_t *v = realloc(r->v, cap * sizeof *v);
			if (v == NULL)
				return SKALD_ENOMEM;
			r->v = v;
			r->cap = cap;
		}
		rec_t *o = &r->v[r->n++];
		memset(o, 0, sizeof *o);
		o->seq = ev[i].seq;
		snprintf(o->type, sizeof o->type, "%s", ev[i].type);
		o->version = ev[i].version;
		json_t *v = json_object_get(ev[i].data, "v");
		o->v = json_is_integer(v) ? (long)json_integer_value(v) : -1;
		o->writer = ev[i].writer;
	}
	return 0;
}

static void on_read_done(skald_journal_t *j, int status, void *arg)
{
	read_ctx_t *r = arg;
	r->status = status;
	r->done = 1;
}

size_t jl_read(jloop_t *l, const char *pid, rec_t **out)
{
	read_ctx_t r = {0};
	int rc = skald_journal_read(l->j, pid, 1, SKALD_SEQ_MAX, SKALD_SEQ_MAX, on_events,
	                            on_read_done, &r);
	cr_assert_eq(rc, 0, "read %s: %s", pid, skald_strerror(rc));
	jl_run_until(l, &r.done);
	cr_assert_eq(r.status, 0, "read %s: %s (%s)", pid, skald_strerror(r.status),
	             skald_journal_errmsg(l->j));
	*out = r.v;
	return r.n;
}

typedef struct seq_ctx_s {
	uint64_t seq;
	int done, status;
} seq_ctx_t;

static void on_highest(skald_journal_t *j, int status, uint64_t seq, void *arg)
{
	seq_ctx_t *s = arg;
	s->seq = seq;
	s->status = status;
	s->done = 1;
}

uint64_t jl_highest(jloop_t *l, const char *pid)
{
	seq_ctx_t s = {0};
	cr_assert_eq(skald_journal_highest(l->j, pid, on_highest, &s), 0);
	jl_run_until(l, &s.done);
	cr_assert_eq(s.status, 0, "highest %s: %s", pid, skald_strerror(s.status));
	return s.seq;
}

typedef struct append_ctx_s {
	int done, status;
} append_ctx_t;

static void on_appended(skald_journal_t *j, int status, skald_write_t *w, size_t n, void *arg)
{
	append_ctx_t *a = arg;
	a->status = status;
	a->done = 1;
}

void jl_append(jloop_t *l, const char *pid, uint64_t expected_seq, size_t n, const char *type,
               int version, const char *field, long first)
{
	skald_event_t *ev = calloc(n, sizeof *ev);
	cr_assert_not_null(ev);
	for (size_t i = 0; i < n; i++) {
		ev[i].type = type;
		ev[i].version = version;
		ev[i].data = json_pack("{sI}", field, (json_int_t)(first + (long)i));
		cr_assert_not_null(ev[i].data);
	}
	skald_write_t w = {
	        .persistence_id = pid, .expected_seq = expected_seq, .events = ev, .nevents = n};
	append_ctx_t a = {0};
	int rc = skald_journal_append(l->j, &w, 1, on_appended, &a);
	cr_assert_eq(rc, 0, "append to %s: %s (%s)", pid, skald_strerror(rc),
	             skald_journal_errmsg(l->j));
	jl_run_until(l, &a.done);
	/* The journal borrows the data and never steals it. */
	for (size_t i = 0; i < n; i++)
		json_decref(ev[i].data);
	free(ev);
	cr_assert_eq(a.status, 0, "append to %s: %s (%s)", pid, skald_strerror(a.status),
	             skald_journal_errmsg(l->j));
}

typedef struct snap_ctx_s {
	int done, status, found;
	uint64_t seq;
	json_t *data;
} snap_ctx_t;

static void on_snapshot(skald_journal_t *j, int status, const skald_snapshot_t *snap, void *arg)
{
	snap_ctx_t *s = arg;
	s->status = status;
	if (snap != NULL) {
		s->found = 1;
		s->seq = snap->seq;
		s->data = json_incref(snap->data);
	}
	s->done = 1;
}

int jl_snapshot_load(jloop_t *l, const char *pid, uint64_t max_seq, uint64_t *seq, json_t **data)
{
	snap_ctx_t s = {0};
	cr_assert_eq(skald_journal_snapshot_load(l->j, pid, max_seq, on_snapshot, &s), 0);
	jl_run_until(l, &s.done);
	cr_assert_eq(s.status, 0, "snapshot load %s: %s", pid, skald_strerror(s.status));
	*seq = s.seq;
	*data = s.data;
	return s.found;
}

void jl_await_snapshot(jloop_t *l, const char *pid, uint64_t seq)
{
	uint64_t end = now_ms() + WAIT_MS, got = 0;
	for (;;) {
		json_t *data = NULL;
		int found = jl_snapshot_load(l, pid, SKALD_SEQ_MAX, &got, &data);
		json_decref(data);
		if (found && got == seq)
			return;
		cr_assert(now_ms() < end, "no snapshot at seq %llu of %s (latest: %llu)",
		          (unsigned long long)seq, pid, found ? (unsigned long long)got : 0ull);
		sleep_ms(2);
	}
}

typedef struct done_ctx_s {
	int done, status;
} done_ctx_t;

static void on_done(skald_journal_t *j, int status, void *arg)
{
	done_ctx_t *d = arg;
	d->status = status;
	d->done = 1;
}

size_t jl_check_loop_history(jloop_t *l, const char *pid, long acked)
{
	rec_t *ev;
	size_t n = jl_read(l, pid, &ev);
	cr_assert(n == (size_t)acked || n == (size_t)acked + 1,
	          "%s: %ld events acknowledged, %zu in the journal", pid, acked, n);
	for (size_t k = 0; k < n; k++) {
		cr_assert_eq(ev[k].seq, k + 1, "%s: event %zu has seq %llu", pid, k,
		             (unsigned long long)ev[k].seq);
		cr_assert_eq(ev[k].v, (long)k + 1, "%s: seq %zu holds %ld", pid, k + 1, ev[k].v);
	}
	free(ev);
	return n;
}

void jl_delete_to(jloop_t *l, const char *pid, uint64_t to)
{
	done_ctx_t d = {0};
	cr_assert_eq(skald_journal_delete_to(l->j, pid, to, on_done, &d), 0);
	jl_run_until(l, &d.done);
	cr_assert_eq(d.status, 0, "delete_to %s: %s", pid, skald_strerror(d.status));
}

/* ------------------------------------------------------------------------ */
/* Asking entities                                                           */

reply_t *ask_cmd_within(skald_system_t *sys, skald_ref_t to, const cmd_t *cmd, unsigned ms)
{
	cmd_t *c = malloc(sizeof *c);
	cr_assert_not_null(c);
	*c = *cmd;
	uint32_t type = 0;
	void *reply = NULL;
	int rc = skald_system_ask(sys, to, T_CMD, c, ms, &type, &reply);
	cr_assert_eq(rc, 0, "ask (op %d): %s", cmd->op, skald_strerror(rc));
	cr_assert_eq(type, T_REPLY, "reply of type %u", type);
	cr_assert_not_null(reply);
	return reply;
}

reply_t *ask_cmd(skald_system_t *sys, skald_ref_t to, const cmd_t *cmd)
{
	return ask_cmd_within(sys, to, cmd, WAIT_MS);
}

reply_t *ask_op(skald_system_t *sys, skald_ref_t to, int op, long v, long n)
{
	cmd_t c = {.op = op, .v = v, .n = n};
	return ask_cmd(sys, to, &c);
}

void tell_op(skald_system_t *sys, skald_ref_t to, int op, long v, long n)
{
	cmd_t *c = calloc(1, sizeof *c);
	cr_assert_not_null(c);
	c->op = op;
	c->v = v;
	c->n = n;
	int rc = skald_system_tell(sys, to, T_CMD, c);
	cr_assert_eq(rc, 0, "tell: %s", skald_strerror(rc));
}

reply_t *await_count(skald_system_t *sys, skald_ref_t to, long count)
{
	uint64_t end = now_ms() + WAIT_MS;
	for (;;) {
		reply_t *r = ask_op(sys, to, C_GET, 0, 0);
		if (r->st.d.count >= count || now_ms() > end)
			return r;
		free(r);
		sleep_ms(2);
	}
}

/* ------------------------------------------------------------------------ */
/* The observer                                                              */

static int observer_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	if (msg->type == SKALD_TYPE_DOWN) {
		const skald_down_t *d = msg->payload;
		int i = atomic_load(&ndowns);
		if (i < (int)(sizeof downs / sizeof downs[0])) {
			downs[i] = (down_rec_t){d->ref, d->reason};
			/* Publish after the record, so that readers see it whole. */
			atomic_store(&ndowns, i + 1);
		}
		return 0;
	}
	if (msg->type != T_CMD)
		return 0;
	const cmd_t *c = msg->payload;
	reply_t *r = calloc(1, sizeof *r);
	if (r == NULL)
		return SKALD_ENOMEM;
	switch (c->op) {
	case O_SPAWN: {
		/* Same thread as the observer: the entity's first turn cannot run
		 * before this handler returns, so the watch below reaches it
		 * before anything it does. */
		skald_spawn_opts_t pin = {.flags = SKALD_SPAWN_PIN, .thread = 0};
		r->rc = skald_entity_spawn(skald_actor_system(self), c->type, c->id, &pin, &r->ref);
		if (r->rc == 0)
			r->rc = skald_watch(self, r->ref);
		break;
	}
	case O_WATCH:
		r->rc = skald_watch(self, c->ref);
		break;
	case O_PERSIST: {
		/* Every entity-only call must refuse a plain actor, and leave the
		 * data with the caller. */
		json_t *data = json_object();
		int rc = skald_persist(self, "acc.added", 1, data, NULL, NULL);
		if (rc != SKALD_EINVAL) {
			r->rc = rc == 0 ? -1 : rc;
		} else {
			skald_new_event_t ev[2] = {{"acc.added", 1, data}, {"acc.added", 1, data}};
			rc = skald_persist_all(self, ev, 2, NULL, NULL);
			if (rc != SKALD_EINVAL)
				r->rc = rc == 0 ? -2 : rc;
			else if ((rc = skald_entity_snapshot(self)) != SKALD_EINVAL)
				r->rc = rc == 0 ? -3 : rc;
			else if (skald_entity_pid(self) != NULL || skald_entity_id(self) != NULL)
				r->rc = -4;
			else if (skald_entity_seq(self) != 0)
				r->rc = -5;
			else if (data->refcount != 1)
				r->rc = -6;
			else if (skald_persist(NULL, "acc.added", 1, data, NULL, NULL) !=
			         SKALD_EINVAL)
				r->rc = -7;
		}
		/* Still ours: under ASan a library that had released it would
		 * show here as a use after free. */
		json_decref(data);
		break;
	}
	default:
		r->rc = SKALD_EINVAL;
	}
	return skald_reply(self, msg, T_REPLY, r);
}

static const skald_behavior_t observer_behavior = {
        .receive = observer_receive,
};

skald_ref_t observer_start(skald_system_t *sys)
{
	skald_spawn_opts_t pin = {.flags = SKALD_SPAWN_PIN, .thread = 0};
	skald_ref_t ref;
	int rc = skald_spawn(sys, &observer_behavior, NULL, &pin, &ref);
	cr_assert_eq(rc, 0, "spawn observer: %s", skald_strerror(rc));
	return ref;
}

skald_ref_t spawn_watched(skald_system_t *sys, skald_ref_t observer,
                          const skald_entity_type_t *type, const char *id)
{
	cmd_t c = {.op = O_SPAWN, .type = type};
	snprintf(c.id, sizeof c.id, "%s", id);
	reply_t *r = ask_cmd(sys, observer, &c);
	int rc = r->rc;
	skald_ref_t ref = r->ref;
	free(r);
	cr_assert_eq(rc, 0, "spawn entity %s: %s", id, skald_strerror(rc));
	return ref;
}

/* The nth (from 0) down notice of ref: 1 and its reason, or 0. */
static int find_down(skald_ref_t ref, int nth, int *reason)
{
	int n = atomic_load(&ndowns);
	for (int i = 0; i < n; i++) {
		if (skald_ref_eq(downs[i].ref, ref) && nth-- == 0) {
			if (reason != NULL)
				*reason = downs[i].reason;
			return 1;
		}
	}
	return 0;
}

int has_down(skald_ref_t ref)
{
	return find_down(ref, 0, NULL);
}

int await_down(skald_ref_t ref)
{
	return await_down_nth(ref, 0);
}

int await_down_nth(skald_ref_t ref, int nth)
{
	int reason = 0;
	AWAIT(find_down(ref, nth, &reason), WAIT_MS);
	return reason;
}
