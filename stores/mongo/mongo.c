/*
 * stores/mongo/mongo.c - the MongoDB journal store: open, close, the store
 * table and its registration, migrations for tools (README.md explains
 * the design).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal/journal_int.h"
#include "stores/mongo/engine.h"

static pthread_once_t mongoc_once = PTHREAD_ONCE_INIT;

/* libmongoc ends a client's server sessions with "endSessions", which
 * FerretDB does not implement: it would log a warning at every pool's end.
 * Its debug chatter (every failed heartbeat) is dropped too; warnings and
 * errors go to libmongoc's own handler. */
static void log_filter(mongoc_log_level_t level, const char *domain, const char *message, void *arg)
{
	if (level > MONGOC_LOG_LEVEL_WARNING ||
	    (level == MONGOC_LOG_LEVEL_WARNING && strstr(message, "endSessions") != NULL))
		return;
	mongoc_log_default_handler(level, domain, message, arg);
}

static void init_mongoc(void)
{
	mongoc_init();
	mongoc_log_set_handler(log_filter, NULL);
}

/* ------------------------------------------------------------------------ */
/* The store table                                                           */

static int mg_open(void *state, skald_journal_t *j, uv_loop_t *loop, const char *uri)
{
	mg_t *m = state;
	char err[400];
	mongoc_uri_t *u;
	char *key;
	pthread_once(&mongoc_once, init_mongoc);
	m->j = j;
	m->loop = loop;
	int rc = skald__mg_make_uri(uri, &m->opt, &u, &key, err, sizeof err);
	if (rc != 0) {
		skald_journal_set_errmsg(j, "%s", err);
		return rc;
	}
	m->be = skald__mg_backend_attach(key, u, mongoc_uri_get_database(u));
	free(key);
	if (m->be == NULL) {
		mongoc_uri_destroy(u);
		skald_journal_set_errmsg(j, "out of memory opening the MongoDB journal");
		return SKALD_ENOMEM;
	}
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->cond, NULL);
	m->sync_ready = 1;
	if (pthread_create(&m->thread, NULL, skald__mg_worker_main, m) != 0) {
		skald_journal_set_errmsg(j, "cannot start the MongoDB journal's worker thread");
		return SKALD_ENOMEM;
	}
	m->thread_started = 1;
	/* Last: a failed open must leave no loop handle behind. */
	rc = uv_async_init(loop, &m->async, skald__mg_on_async);
	if (rc != 0) {
		skald__mg_request_stop(m);
		pthread_join(m->thread, NULL);
		m->thread_started = 0;
		skald_journal_set_errmsg(j, "cannot create the MongoDB journal's wakeup handle: %s",
		                         uv_strerror(rc));
		return rc;
	}
	m->async.data = m;
	m->async_ready = 1;
	return 0;
}

static void mg_close(void *state, void (*done)(skald_journal_t *j))
{
	mg_t *m = state;
	m->closing = 1;
	m->close_done = done;
	/* Operations in flight finish first; the last one stops the worker
	 * (complete), whose exit closes the async handle, whose close calls
	 * done: never from inside this call. */
	if (m->inflight == 0)
		skald__mg_request_stop(m);
}

static void mg_fini(void *state)
{
	mg_t *m = state;
	if (m->thread_started && !m->joined) {
		skald__mg_request_stop(m);
		pthread_join(m->thread, NULL);
	}
	while (m->done_head) {
		op_t *op = m->done_head;
		m->done_head = op->next;
		skald__mg_op_free(op);
	}
	if (m->sync_ready) {
		pthread_mutex_destroy(&m->lock);
		pthread_cond_destroy(&m->cond);
	}
	if (m->be)
		skald__mg_backend_detach(m->be);
	memset(m, 0, sizeof *m);
}

static int mg_append(void *state, skald_write_t *writes, size_t nwrites, skald_append_fn cb,
                     void *arg)
{
	mg_t *m = state;
	op_t *op = skald__mg_op_new(m, OP_APPEND, NULL, arg);
	if (op == NULL)
		return m->closing ? SKALD_ECLOSED : SKALD_ENOMEM;
	op->u.append.cb = cb;
	op->u.append.writes = writes;
	op->u.append.n = nwrites;
	return skald__mg_submit(m, op);
}

static int mg_read(void *state, const char *pid, uint64_t from, uint64_t to, uint64_t max,
                   skald_events_fn on_events, skald_done_fn done, void *arg)
{
	mg_t *m = state;
	op_t *op = skald__mg_op_new(m, OP_READ, pid, arg);
	if (op == NULL)
		return m->closing ? SKALD_ECLOSED : SKALD_ENOMEM;
	op->done = done;
	op->u.read.cb = on_events;
	op->u.read.from = from;
	op->u.read.to = to > INT64_LIMIT ? INT64_LIMIT : to;
	op->u.read.left = max;
	return skald__mg_submit(m, op);
}

static int mg_highest(void *state, const char *pid, skald_seq_fn cb, void *arg)
{
	mg_t *m = state;
	op_t *op = skald__mg_op_new(m, OP_HIGHEST, pid, arg);
	if (op == NULL)
		return m->closing ? SKALD_ECLOSED : SKALD_ENOMEM;
	op->u.highest.cb = cb;
	return skald__mg_submit(m, op);
}

static int mg_delete_to(void *state, const char *pid, uint64_t to, skald_done_fn cb, void *arg)
{
	mg_t *m = state;
	op_t *op = skald__mg_op_new(m, OP_DELETE_TO, pid, arg);
	if (op == NULL)
		return m->closing ? SKALD_ECLOSED : SKALD_ENOMEM;
	op->done = cb;
	op->u.del.to = to;
	return skald__mg_submit(m, op);
}

static int mg_snapshot_save(void *state, skald_snapshot_t *snap, skald_done_fn cb, void *arg)
{
	mg_t *m = state;
	op_t *op = skald__mg_op_new(m, OP_SNAP_SAVE, snap->persistence_id, arg);
	if (op == NULL)
		return m->closing ? SKALD_ECLOSED : SKALD_ENOMEM;
	op->done = cb;
	op->u.save.snap = snap;
	return skald__mg_submit(m, op);
}

static int mg_snapshot_load(void *state, const char *pid, uint64_t max_seq, skald_snapshot_fn cb,
                            void *arg)
{
	mg_t *m = state;
	op_t *op = skald__mg_op_new(m, OP_SNAP_LOAD, pid, arg);
	if (op == NULL)
		return m->closing ? SKALD_ECLOSED : SKALD_ENOMEM;
	op->u.snap.cb = cb;
	op->u.snap.seq = max_seq;
	return skald__mg_submit(m, op);
}

static int snap_delete(mg_t *m, enum op_kind kind, const char *pid, uint64_t seq, skald_done_fn cb,
                       void *arg)
{
	op_t *op = skald__mg_op_new(m, kind, pid, arg);
	if (op == NULL)
		return m->closing ? SKALD_ECLOSED : SKALD_ENOMEM;
	op->done = cb;
	op->u.snap.seq = seq;
	return skald__mg_submit(m, op);
}

static int mg_snapshot_delete(void *state, const char *pid, uint64_t seq, skald_done_fn cb,
                              void *arg)
{
	return snap_delete(state, OP_SNAP_DELETE, pid, seq, cb, arg);
}

static int mg_snapshot_delete_to(void *state, const char *pid, uint64_t max_seq, skald_done_fn cb,
                                 void *arg)
{
	return snap_delete(state, OP_SNAP_DELETE_TO, pid, max_seq, cb, arg);
}

static int mg_read_all(void *state, uint64_t after, uint64_t max, skald_events_fn on_events,
                       skald_done_fn done, void *arg)
{
	mg_t *m = state;
	op_t *op = skald__mg_op_new(m, OP_READ_ALL, NULL, arg);
	if (op == NULL)
		return m->closing ? SKALD_ECLOSED : SKALD_ENOMEM;
	op->done = done;
	op->u.all.cb = on_events;
	op->u.all.after = after;
	op->u.all.left = max;
	return skald__mg_submit(m, op);
}

static int mg_list_ids(void *state, const char *prefix, const char *after, uint64_t max,
                       skald_ids_fn on_ids, skald_done_fn done, void *arg)
{
	mg_t *m = state;
	op_t *op = skald__mg_op_new(m, OP_LIST, NULL, arg);
	if (op == NULL)
		return m->closing ? SKALD_ECLOSED : SKALD_ENOMEM;
	op->done = done;
	op->u.list.cb = on_ids;
	op->u.list.left = max;
	if ((prefix && *prefix && (op->u.list.prefix = strdup(prefix)) == NULL) ||
	    (after && (op->u.list.after = strdup(after)) == NULL)) {
		skald__mg_op_free(op);
		return SKALD_ENOMEM;
	}
	return skald__mg_submit(m, op);
}

static const skald_store_t mongo_store = {
        .abi = SKALD_STORE_ABI,
        .schemes = {"mongodb", "mongodb+srv"},
        .state_size = sizeof(mg_t),
        .caps = SKALD_CAP_ATOMIC_WRITES | SKALD_CAP_BATCHED_WRITES | SKALD_CAP_SHARED |
                SKALD_CAP_DURABLE | SKALD_CAP_SNAPSHOTS | SKALD_CAP_QUERIES,
        .open = mg_open,
        .close = mg_close,
        .fini = mg_fini,
        .append = mg_append,
        .read = mg_read,
        .highest = mg_highest,
        .delete_to = mg_delete_to,
        .snapshot_save = mg_snapshot_save,
        .snapshot_load = mg_snapshot_load,
        .snapshot_delete = mg_snapshot_delete,
        .snapshot_delete_to = mg_snapshot_delete_to,
        .read_all = mg_read_all,
        .list_ids = mg_list_ids,
        .migrate = skald__mongo_migrate,
};

/* A constructor: see the declaration. A failure shows up as an unknown
 * scheme, with the list of the schemes that did register. */
__attribute__((constructor)) void skald__store_mongo_register(void)
{
	(void)skald_store_register(&mongo_store);
}

/* ------------------------------------------------------------------------ */
/* Migrations, for tools                                                     */

int skald__mongo_migrate(const char *uri, int status_only, FILE *out, char *err, size_t errlen)
{
	uri_opts_t o;
	mongoc_uri_t *u;
	char *key;
	pthread_once(&mongoc_once, init_mongoc);
	int rc = skald__mg_make_uri(uri, &o, &u, &key, err, errlen);
	if (rc != 0)
		return rc;
	free(key);
	mongoc_client_t *client = mongoc_client_new_from_uri(u);
	if (client == NULL) {
		mongoc_uri_destroy(u);
		snprintf(err, errlen, "cannot create a MongoDB client for the journal URI");
		return SKALD_EURI;
	}
	mongoc_client_set_error_api(client, MONGOC_ERROR_API_VERSION_2);
	if (mongoc_uri_get_appname(u) == NULL)
		mongoc_client_set_appname(client, "skald-migrate");
	rc = skald__mongo_migrate_client(client, mongoc_uri_get_database(u), status_only, out, err,
	                                 errlen);
	mongoc_client_destroy(client);
	mongoc_uri_destroy(u);
	return rc;
}
