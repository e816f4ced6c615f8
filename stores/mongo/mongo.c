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
	/* Streams still running finish first (cancelled at their next batch);
	 * the last one stops the worker (complete), whose exit closes the
	 * async handle, whose close calls done: never from inside this call. */
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

static const skald_store_t mongo_store = {
        .abi = SKALD_STORE_ABI,
        .schemes = {"mongodb", "mongodb+srv"},
        .state_size = sizeof(mg_t),
        .caps = SKALD_CAP_ATOMIC_WRITES | SKALD_CAP_BATCHED_WRITES | SKALD_CAP_SHARED |
                SKALD_CAP_DURABLE | SKALD_CAP_SNAPSHOTS | SKALD_CAP_QUERIES,
        .open = mg_open,
        .close = mg_close,
        .fini = mg_fini,
        .start = skald__mg_start,
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
