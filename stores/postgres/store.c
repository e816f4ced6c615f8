/*
 * stores/postgres/store.c - the PostgreSQL journal store: open, close and the
 * store table (see README.md for the design).
 */
#include <stdlib.h>

#include "journal/journal_int.h"
#include "stores/postgres/engine.h"

/* ------------------------------------------------------------------------ */
/* Open and close                                                            */

static int pg_open(void *state, skald_journal_t *j, uv_loop_t *loop, const char *uri)
{
	pg_t *pg = state;
	pg->j = j;
	pg->loop = loop;
	pg->fd = -1;
	char err[400];
	int rc = skald__pg_uri_parse(uri, &pg->uri, err, sizeof err);
	if (rc != 0) {
		skald_journal_set_errmsg(j, "%s", rc == SKALD_ENOMEM ? "out of memory" : err);
		return rc;
	}
	pg->evbuf = calloc(pg->uri.batch, sizeof *pg->evbuf);
	pg->idbuf = calloc(pg->uri.batch, sizeof *pg->idbuf);
	if (pg->evbuf == NULL || pg->idbuf == NULL)
		return SKALD_ENOMEM;
	/* Last, because they cannot fail and a failed open must leave no
	 * loop handle behind. The connection starts with the first
	 * operation. */
	uv_idle_init(loop, &pg->kick);
	uv_timer_init(loop, &pg->connect_timer);
	uv_timer_init(loop, &pg->wait_timer);
	pg->kick.data = pg->connect_timer.data = pg->wait_timer.data = pg;
	pg->open_handles = 3;
	pg->handles_init = true;
	return 0;
}

static void pg_close(void *state, void (*done)(skald_journal_t *j))
{
	pg_t *pg = state;
	pg->closing = true;
	pg->close_done = done;
	/* The front closes once no operation runs: the connection closes.
	 * Never completes inside this call. */
	uv_idle_start(&pg->kick, skald__pg_on_kick);
}

static void pg_fini(void *state)
{
	pg_t *pg = state;
	if (pg->conn)
		PQfinish(pg->conn);
	pg->conn = NULL;
	skald__pg_uri_free(&pg->uri);
	free(pg->evbuf);
	free(pg->idbuf);
	pg->evbuf = NULL;
	pg->idbuf = NULL;
}

static const skald_store_t postgres_store = {
        .abi = SKALD_STORE_ABI,
        .schemes = {"postgres", "postgresql"},
        .state_size = sizeof(pg_t),
        .caps = SKALD_CAP_ATOMIC_WRITES | SKALD_CAP_BATCHED_WRITES | SKALD_CAP_SHARED |
                SKALD_CAP_DURABLE | SKALD_CAP_SNAPSHOTS | SKALD_CAP_QUERIES,
        .open = pg_open,
        .close = pg_close,
        .fini = pg_fini,
        .start = skald__pg_start,
        .migrate = skald__pg_migrate,
};

/* A constructor: see the declaration. A failure shows up as an unknown
 * scheme, with the list of the schemes that did register. */
__attribute__((constructor)) void skald__store_postgres_register(void)
{
	(void)skald_store_register(&postgres_store);
}
