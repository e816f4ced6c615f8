/*
 * stores/postgres/conn.c - the connection engine: resolving, connecting and
 * setting up without blocking the loop, one statement at a time on the
 * connection, for the one operation the front has handed over.
 */
#include <stdlib.h>

#include "base/log.h"
#include "stores/postgres/engine.h"

static void on_poll(uv_poll_t *h, int status, int events);

static void poll_update(pg_t *pg, int events);

static void conn_lost(pg_t *pg, const char *what);

static void start_connect(pg_t *pg);

/* ------------------------------------------------------------------------ */
/* Connection                                                                */

static void handle_closed(uv_handle_t *h)
{
	pg_t *pg = h->data;
	if (h->type == UV_POLL)
		free(h);
	if (--pg->open_handles == 0 && pg->close_started) {
		void (*done)(skald_journal_t *) = pg->close_done;
		done(pg->j); /* frees pg: nothing after this */
	}
}

static void poller_drop(pg_t *pg)
{
	if (pg->poller == NULL)
		return;
	/* Stopped before libpq closes the socket: epoll must never watch a
	 * closed descriptor. */
	uv_poll_stop(&pg->poller->h);
	uv_close((uv_handle_t *)&pg->poller->h, handle_closed);
	pg->poller = NULL;
	pg->fd = -1;
	pg->pevents = 0;
}

static void disconnect(pg_t *pg)
{
	poller_drop(pg);
	if (pg->conn) {
		PQfinish(pg->conn);
		pg->conn = NULL;
	}
	if (pg->res) {
		PQclear(pg->res);
		pg->res = NULL;
	}
	pg->cs = C_DOWN;
	pg->busy = false;
	pg->flushing = false;
	if (pg->handles_init)
		uv_timer_stop(&pg->connect_timer);
}

/* Fails the op in hand, if it is not finished yet, with status and message
 * msg. */
static void fail_queued(pg_t *pg, int status, const char *msg)
{
	op_t *op = pg->op;
	if (op != NULL && !op->finished) {
		if (op->kind == SKALD_OP_APPEND && op->u.append.ws) {
			for (size_t i = 0; i < op->u.append.n; i++) {
				if (op->u.append.ws[i].state != W_DONE) {
					op->u.append.writes[i]->status = status;
					op->u.append.ws[i].state = W_DONE;
				}
			}
		}
		skald__pg_op_finish(op, status, "%s", msg);
	}
}

static void connect_failed(pg_t *pg, int status, const char *msg)
{
	SKALD_LOG(SKALD_LOG_WARN, "postgres journal: %s", msg);
	disconnect(pg);
	fail_queued(pg, status, msg);
	skald__pg_kick(pg);
}

/* Watches the connection's socket for events (UV_READABLE/UV_WRITABLE),
 * following libpq to a new socket when it changed one. */
static void poll_update(pg_t *pg, int events)
{
	int fd = PQsocket(pg->conn);
	if (fd < 0)
		return;
	if (pg->poller && pg->fd != fd)
		poller_drop(pg);
	if (pg->poller == NULL) {
		poller_t *p = malloc(sizeof *p);
		if (p == NULL || uv_poll_init(pg->loop, &p->h, fd) != 0) {
			free(p);
			connect_failed(pg, SKALD_ENOMEM, "out of memory watching the connection");
			return;
		}
		p->pg = pg;
		p->h.data = pg;
		pg->poller = p;
		pg->fd = fd;
		pg->pevents = 0;
		pg->open_handles++;
	}
	if (events != pg->pevents) {
		uv_poll_start(&pg->poller->h, events, on_poll);
		pg->pevents = events;
	}
}

static void ready_poll(pg_t *pg)
{
	poll_update(pg, UV_READABLE | (pg->flushing ? UV_WRITABLE : 0));
}

/* Sends one simple query (setup) or prepared statement. Returns 0, or fails
 * the connection and returns -1. */
static int flush_out(pg_t *pg)
{
	int r = PQflush(pg->conn);
	if (r < 0) {
		conn_lost(pg, "sending a query");
		return -1;
	}
	pg->flushing = r == 1;
	ready_poll(pg);
	if (!pg->flushing)
		skald__pg_kick(pg); /* see skald__pg_on_kick */
	return 0;
}

static int send_simple(pg_t *pg, const char *sql)
{
	if (!PQsendQuery(pg->conn, sql)) {
		conn_lost(pg, "sending a query");
		return -1;
	}
	pg->busy = true;
	return flush_out(pg);
}

int skald__pg_send_prepared(pg_t *pg, const char *name, int n, const char *const *values,
                            const int *lengths, const int *formats)
{
	if (!PQsendQueryPrepared(pg->conn, name, n, values, lengths, formats, 0)) {
		conn_lost(pg, "sending a query");
		return -1;
	}
	pg->busy = true;
	return flush_out(pg);
}

static void on_connect_timeout(uv_timer_t *t)
{
	pg_t *pg = t->data;
	char msg[256];
	snprintf(msg, sizeof msg, "could not connect to PostgreSQL within %llu ms",
	         (unsigned long long)pg->uri.connect_ms);
	connect_failed(pg, SKALD_EBACKEND, msg);
}

static void quiet_notices(void *arg, const char *message)
{
	SKALD_LOG(SKALD_LOG_DEBUG, "postgres journal: %s", message);
}

static void start_pq(pg_t *pg, const char *hostaddr)
{
	size_t n = pg->uri.n;
	const char **kw = calloc(n + 2, sizeof *kw);
	const char **val = calloc(n + 2, sizeof *val);
	if (kw == NULL || val == NULL) {
		free(kw);
		free(val);
		connect_failed(pg, SKALD_ENOMEM, "out of memory connecting");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		kw[i] = pg->uri.keywords[i];
		val[i] = pg->uri.values[i];
	}
	if (hostaddr) {
		kw[n] = "hostaddr";
		val[n] = hostaddr;
	}
	pg->conn = PQconnectStartParams(kw, val, 0);
	free(kw);
	free(val);
	if (pg->conn == NULL) {
		connect_failed(pg, SKALD_ENOMEM, "out of memory connecting");
		return;
	}
	if (PQstatus(pg->conn) == CONNECTION_BAD) {
		char m[400], msg[512];
		skald__pg_conn_message(pg, m, sizeof m);
		snprintf(msg, sizeof msg, "cannot connect to PostgreSQL: %s", m);
		connect_failed(pg, SKALD_EBACKEND, msg);
		return;
	}
	PQsetnonblocking(pg->conn, 1);
	PQsetNoticeProcessor(pg->conn, quiet_notices, NULL);
	pg->cs = C_CONNECTING;
	/* libpq: before the first PQconnectPoll, wait as if it returned
	 * PGRES_POLLING_WRITING. */
	poll_update(pg, UV_WRITABLE);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *ai)
{
	resolver_t *r = (resolver_t *)req;
	pg_t *pg = r->pg;
	free(r);
	pg->resolver = NULL;
	if (pg->cs != C_RESOLVING) {
		/* Given up meanwhile (timeout). */
		uv_freeaddrinfo(ai);
		skald__pg_kick(pg);
		return;
	}
	if (status < 0 || ai == NULL) {
		char msg[400];
		snprintf(msg, sizeof msg,
		         "cannot connect to PostgreSQL: cannot resolve host \"%s\": %s",
		         pg->uri.host, uv_strerror(status));
		uv_freeaddrinfo(ai);
		connect_failed(pg, SKALD_EBACKEND, msg);
		return;
	}
	char addr[64] = "";
	if (ai->ai_family == AF_INET6)
		uv_ip6_name((struct sockaddr_in6 *)ai->ai_addr, addr, sizeof addr);
	else
		uv_ip4_name((struct sockaddr_in *)ai->ai_addr, addr, sizeof addr);
	uv_freeaddrinfo(ai);
	start_pq(pg, addr);
}

static void start_connect(pg_t *pg)
{
	/* A resolution given up by the timeout must end first: it kicks. */
	if (pg->cs != C_DOWN || pg->resolver != NULL)
		return;
	uv_timer_start(&pg->connect_timer, on_connect_timeout, pg->uri.connect_ms, 0);
	if (pg->uri.host == NULL) {
		start_pq(pg, NULL);
		return;
	}
	resolver_t *r = malloc(sizeof *r);
	if (r == NULL) {
		connect_failed(pg, SKALD_ENOMEM, "out of memory connecting");
		return;
	}
	r->pg = pg;
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	int rc = uv_getaddrinfo(pg->loop, &r->req, on_resolved, pg->uri.host, NULL, &hints);
	if (rc != 0) {
		free(r);
		char msg[400];
		snprintf(msg, sizeof msg,
		         "cannot connect to PostgreSQL: cannot resolve host \"%s\": %s",
		         pg->uri.host, uv_strerror(rc));
		connect_failed(pg, SKALD_EBACKEND, msg);
		return;
	}
	pg->resolver = r;
	pg->cs = C_RESOLVING;
}

static void continue_connect(pg_t *pg)
{
	switch (PQconnectPoll(pg->conn)) {
	case PGRES_POLLING_READING:
		poll_update(pg, UV_READABLE);
		break;
	case PGRES_POLLING_WRITING:
		poll_update(pg, UV_WRITABLE);
		break;
	case PGRES_POLLING_OK:
		pg->cs = C_SETUP;
		pg->setup_step = 0;
		send_simple(pg, skald__pg_schema_check_sql);
		break;
	default: {
		char m[400], msg[512];
		skald__pg_conn_message(pg, m, sizeof m);
		/* libpq does not always say where it tried. */
		const char *host = PQhost(pg->conn), *port = PQport(pg->conn);
		snprintf(msg, sizeof msg, "cannot connect to PostgreSQL at %s:%s: %s",
		         host && *host ? host : "(default)", port && *port ? port : "5432", m);
		connect_failed(pg, SKALD_EBACKEND, msg);
		break;
	}
	}
}

/* The result of a setup query arrived (res may be an error). */
static void setup_result(pg_t *pg, PGresult *res)
{
	char msg[512];
	int need = skald__pg_migrations[skald__pg_nmigrations - 1].version;
	if (PQresultStatus(res) != PGRES_TUPLES_OK && PQresultStatus(res) != PGRES_COMMAND_OK) {
		int st = skald__pg_status_of(res);
		char m[400];
		skald__pg_result_message(pg, res, m, sizeof m);
		if (st == SKALD_ESCHEMA)
			snprintf(
			        msg, sizeof msg,
			        "the database has no Skald journal schema (%s): run `skald migrate "
			        "--store URI` to create it",
			        m);
		else
			snprintf(msg, sizeof msg, "PostgreSQL refused the journal's setup: %s", m);
		connect_failed(pg, st, msg);
		return;
	}
	if (pg->setup_step == 0) {
		int have = PQntuples(res) == 1 ? (int)skald__pg_i64_of(res, 0, 0) : 0;
		if (have < need) {
			snprintf(msg, sizeof msg,
			         "the Skald journal schema is at version %d but this build needs "
			         "version %d: run `skald migrate --store URI`",
			         have, need);
			connect_failed(pg, SKALD_ESCHEMA, msg);
			return;
		}
		pg->setup_step = 1;
		send_simple(pg, skald__pg_prepare_sql);
		return;
	}
	pg->cs = C_READY;
	uv_timer_stop(&pg->connect_timer);
	skald__pg_kick(pg);
}

/* The connection broke while in use: the op in flight fails (it is unknown
 * whether an append in it was stored), and the next op reconnects. */
static void conn_lost(pg_t *pg, const char *what)
{
	char m[400], msg[512];
	skald__pg_conn_message(pg, m, sizeof m);
	snprintf(msg, sizeof msg, "connection to PostgreSQL lost while %s: %s", what, m);
	if (pg->cs != C_READY) {
		connect_failed(pg, SKALD_EBACKEND, msg);
		return;
	}
	disconnect(pg);
	/* The op at the head has sent (or tried to send) a query unless it
	 * waits between two of them: it fails. */
	op_t *op = pg->op;
	if (op && op->started && !op->finished && !op->waiting) {
		if (op->kind == SKALD_OP_APPEND && op->u.append.ws) {
			for (size_t i = 0; i < op->u.append.n; i++) {
				if (op->u.append.ws[i].state != W_DONE) {
					op->u.append.writes[i]->status = SKALD_EBACKEND;
					op->u.append.ws[i].state = W_DONE;
					if (i < op->u.append.first_failed) {
						op->u.append.first_failed = i;
						free(op->msg);
						op->msg = NULL;
					}
				}
			}
		}
		skald__pg_op_finish(op, SKALD_EBACKEND, "%s", msg);
	} else {
		SKALD_LOG(SKALD_LOG_INFO, "postgres journal: %s", msg);
	}
	skald__pg_kick(pg);
}

/* Reads what the server sent; completes the query in flight when its last
 * result is in. */
static void read_input(pg_t *pg)
{
	if (!PQconsumeInput(pg->conn)) {
		conn_lost(pg, pg->busy ? "waiting for a result" : "idle");
		return;
	}
	while (pg->busy && !PQisBusy(pg->conn)) {
		PGresult *r = PQgetResult(pg->conn);
		if (r != NULL) {
			/* Keep the first error, else the last result. */
			if (pg->res == NULL || PQresultStatus(pg->res) == PGRES_COMMAND_OK ||
			    PQresultStatus(pg->res) == PGRES_TUPLES_OK) {
				PQclear(pg->res);
				pg->res = r;
			} else {
				PQclear(r);
			}
			continue;
		}
		/* The query is complete. */
		PGresult *res = pg->res;
		pg->res = NULL;
		pg->busy = false;
		if (PQstatus(pg->conn) == CONNECTION_BAD) {
			PQclear(res);
			conn_lost(pg, "waiting for a result");
			return;
		}
		if (pg->cs == C_SETUP) {
			setup_result(pg, res);
		} else if (pg->op && !pg->op->finished) {
			skald__pg_op_result(pg, pg->op, res);
		}
		PQclear(res);
		if (pg->conn == NULL)
			return;
		skald__pg_kick(pg);
	}
	if (!pg->busy && PQstatus(pg->conn) == CONNECTION_BAD)
		conn_lost(pg, "idle");
}

static void on_poll(uv_poll_t *h, int status, int events)
{
	pg_t *pg = h->data;
	if (pg->poller == NULL || &pg->poller->h != h)
		return; /* a handle being replaced */
	if (pg->cs == C_CONNECTING) {
		continue_connect(pg);
		return;
	}
	if (status < 0) {
		conn_lost(pg, "polling the socket");
		return;
	}
	if ((events & UV_WRITABLE) && pg->flushing) {
		if (flush_out(pg) != 0)
			return;
	}
	if (events & UV_READABLE)
		read_input(pg);
}

/* ------------------------------------------------------------------------ */
/* The operation in hand                                                     */

void skald__pg_op_clear(op_t *op)
{
	if (op->kind == SKALD_OP_APPEND) {
		if (op->u.append.texts)
			for (size_t i = 0; i < op->u.append.total; i++)
				free(op->u.append.texts[i]);
		free(op->u.append.texts);
		free(op->u.append.lens);
		free(op->u.append.ws);
		free(op->u.append.chunk);
	} else if (op->kind == SKALD_OP_SNAPSHOT_SAVE) {
		free(op->u.snap.text);
	} else if (op->kind == SKALD_OP_SNAPSHOT_LOAD) {
		json_decref(op->u.snap.data);
	} else if (op->kind == SKALD_OP_LIST_IDS) {
		free(op->u.list.prefix);
		free(op->u.list.upper);
		free(op->u.list.after);
	}
	free(op->msg);
	*op = (op_t){0};
}

/* Hands the result of the finished op in hand to the front. */
static void op_complete(pg_t *pg, op_t *op)
{
	skald_op_t *sop = op->sop;
	int status = op->status;
	if (op->msg && (op->status != 0 || op->kind == SKALD_OP_APPEND))
		skald_journal_set_errmsg(pg->j, "%s", op->msg);
	switch (op->kind) {
	case SKALD_OP_APPEND:
		/* Once prepared, every write carries its own status (some may
		 * have been stored before a failure): the call succeeded. */
		if (op->u.append.ws)
			status = 0;
		break;
	case SKALD_OP_HIGHEST:
		sop->seq = op->a;
		break;
	case SKALD_OP_SNAPSHOT_LOAD:
		if (op->u.snap.data) {
			/* The front releases the data after the callback. */
			sop->loaded =
			        (skald_snapshot_t){op->pid, op->u.snap.seq, op->u.snap.version,
			                           op->u.snap.data, op->u.snap.timestamp};
			op->u.snap.data = NULL;
			status = 0;
		}
		break;
	default:
		break;
	}
	pg->op = NULL;
	skald__pg_op_clear(op);
	skald_op_finish(sop, status);
}

void skald__pg_pump(pg_t *pg)
{
	op_t *op = pg->op;
	if (op) {
		if (!op->finished && !op->waiting && !pg->busy) {
			if (pg->cs != C_READY) {
				if (pg->cs == C_DOWN)
					start_connect(pg);
				return;
			}
			skald__pg_start_op(pg, op);
		}
		if (!op->finished || pg->busy)
			return; /* running, or a prefetched page still to drain */
		op_complete(pg, op);
		return;
	}
	if (pg->closing && !pg->close_started && pg->resolver == NULL && !pg->busy) {
		pg->close_started = true;
		disconnect(pg);
		uv_close((uv_handle_t *)&pg->kick, handle_closed);
		uv_close((uv_handle_t *)&pg->connect_timer, handle_closed);
		uv_close((uv_handle_t *)&pg->wait_timer, handle_closed);
	}
}

void skald__pg_on_kick(uv_idle_t *h)
{
	pg_t *pg = h->data;
	uv_idle_stop(h);
	/* libpq may have read a whole answer into its buffer while it was
	 * sending (it reads when the socket will not take more): then the
	 * socket never turns readable for it, so look here. */
	if (pg->conn && pg->busy && pg->cs >= C_SETUP && !PQisBusy(pg->conn))
		read_input(pg);
	skald__pg_pump(pg);
}

void skald__pg_kick(pg_t *pg)
{
	if (!pg->close_started)
		uv_idle_start(&pg->kick, skald__pg_on_kick);
}
