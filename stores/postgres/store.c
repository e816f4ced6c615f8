/*
 * stores/postgres/store.c - the PostgreSQL journal store.
 *
 * URI: postgres://USER:PASSWORD@HOST:PORT/DATABASE[?OPTIONS] (or
 * postgresql://), libpq's syntax. Store options, taken out before libpq sees
 * the URI:
 *   batch=N             events (or ids) per streamed batch and per page
 *                       fetched, 1..65536, default 1000
 *   read_all_wait_ms=N  how long read_all waits for transactions that were
 *                       running when it started (default 10000; see below)
 * Every other option goes to libpq (sslmode, connect_timeout,
 * application_name...). The schema (migrations/postgres/) must be applied
 * with `skald migrate --store URI`; on an older schema every operation fails
 * with SKALD_ESCHEMA and a message that says so.
 *
 * Threading: none of its own. libpq runs in non-blocking mode on the handle's
 * loop: a uv_poll_t watches PQsocket(), queries are sent with
 * PQsendQueryPrepared and read with PQconsumeInput/PQgetResult, and the
 * connection is made with PQconnectStartParams/PQconnectPoll after the host
 * name was resolved with uv_getaddrinfo (libpq's own resolution would block
 * the loop). A journal thread would cost a thread and two hand-overs per
 * operation for nothing: the loop is where the callbacks must run anyway, and
 * the work on this side is small next to the server's.
 *
 * One connection per handle, one query on it at a time: operations run in
 * the order they were issued, which is the contract ("a highest issued after
 * an append sees it"). A streamed read asks for its next page before it hands
 * the current one to the caller, so that the server fetches while the caller
 * decodes and applies.
 *
 * Appends: the writes of one call go in one statement (one transaction, one
 * round trip) built from arrays (unnest), whatever the number of persistence
 * ids. For each write the statement compares the highest stored seq with
 * expected_seq and inserts the events of the writes that match; it answers
 * with the transaction id and the writes that did not match (a conflict).
 * The primary key (persistence_id, seq) does the rest under concurrency,
 * with other handles and other processes:
 *   - the statement fails as a whole (unique_violation) when a concurrent
 *     writer got one of its sequence numbers first; the store then sends
 *     the same writes with ON CONFLICT DO NOTHING (twice the cost of a
 *     plain insert, so only then), which reports per write:
 *   - all events inserted: stored;
 *   - none (or the highest differed): SKALD_ECONFLICT, nothing stored;
 *   - some but not all: the other writer took part of the range; the
 *     statement raises (skald.append_race), its transaction rolls back, and
 *     the store sends it again, which now sees a plain conflict.
 * An insert that meets a row of a transaction still in progress waits for
 * it to end, so the outcome never depends on timing, and no write's conflict
 * fails another write of the batch. Writes of one persistence id that
 * follow each other in one call go in successive statements ("rounds"), so
 * that each is checked against the one before it, exactly as if applied one
 * by one. Rejections (data that is not an object, not encodable, or holds a
 * \u0000 that jsonb refuses) are decided before sending.
 *
 * Global order: global_offset = (transaction id << 20) | (index of the event
 * in its statement), a single uint64 that ascends in (xid, index) order.
 * read_all returns only events whose transaction is below the oldest one
 * still running (pg_snapshot_xmin of its own snapshot): every transaction
 * below that has ended, so no event with a lower offset can commit later,
 * and a reader that resumes after the last offset it saw never skips one.
 * read_all also waits (up to read_all_wait_ms) until the transactions that
 * were running when it started have ended, so that it returns every event
 * committed before it was called. The cost: a transaction that stays open
 * for long anywhere in the cluster holds readers of the global order back.
 * Transaction ids are 64-bit (epoch and xid); 43 bits of them fit, which is
 * 8.8e12 transactions.
 *
 * Failures: a lost connection fails the operation in flight with
 * SKALD_EBACKEND and libpq's message (for an append: it is unknown whether it
 * was stored, so the actor must stop); the next operation reconnects. A
 * connection that cannot be made fails the operations waiting for it.
 */
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "journal/journal_int.h"
#include "stores/postgres/pg.h"

/* Events per statement: their index must fit below the transaction id. */
#define MAX_STMT_EVENTS ((1u << SKALD__PG_ORD_BITS) - 1)
/* Bytes of event data per statement: bounds the memory of one round trip
 * (a single larger write is still sent alone). */
#define MAX_STMT_BYTES ((size_t)64 << 20)
/* A single event larger than this cannot be stored (jsonb's limit is near). */
#define MAX_EVENT_BYTES ((size_t)255 << 20)
/* Retries of a statement that met a concurrent writer or a deadlock. */
#define MAX_RETRIES 10
#define INT64_MAXU  ((uint64_t)INT64_MAX)

/* PostgreSQL's type OIDs (pg_type.dat), for binary array parameters. */
#define OID_INT8 20
#define OID_INT4 23
#define OID_TEXT 25

/* ------------------------------------------------------------------------ */
/* Statements, prepared on every new connection                              */

static const char schema_check_sql[] =
        "SELECT coalesce(max(version), 0) FROM skald.schema_migrations";

/*
 * The append statement, in two forms with the same parameters: one write per
 * element of $1..$3 (persistence id, expected_seq, number of events), one
 * event per element of $4..$10 (its write's index from 1, seq, type,
 * version, data, timestamp, writer). In both, w checks each write's highest
 * seq once, before anything is inserted, and an event's offset is its
 * transaction id shifted left 20 bits, or'ed with its index.
 *
 * skald_append, the common case, inserts with a plain INSERT: a sequence
 * number that a concurrent writer took fails the whole statement
 * (unique_violation), so when it succeeds every write that passed the check
 * was stored entirely, and the answer needs only the transaction id (first
 * row, index 0) and the writes that failed the check, with the highest
 * found. Counting what was inserted would cost as much again.
 *
 * skald_append_safe, sent only after such a failure, inserts with ON
 * CONFLICT DO NOTHING (which probes every unique index before inserting)
 * and answers every write with how many of its events went in; a write with
 * some but not all makes the statement raise, and so roll back.
 */
#define APPEND_W                                                                                   \
	"WITH w AS ("                                                                              \
	" SELECT t.i, t.pid, t.expected, t.n,"                                                     \
	"  coalesce((SELECT max(e.seq) FROM skald.events e WHERE e.persistence_id = t.pid), 0)"    \
	"   AS highest"                                                                            \
	" FROM unnest($1, $2, $3) WITH ORDINALITY AS t(pid, expected, n, i)"                       \
	"), ins AS ("                                                                              \
	" INSERT INTO skald.events AS e"                                                           \
	"  (persistence_id, seq, type, version, data, timestamp, writer, global_offset)"           \
	" SELECT w.pid, ev.seq, ev.type, ev.version, ev.data::jsonb, ev.ts, ev.writer,"            \
	"  (pg_current_xact_id()::text::int8 << 20) | (ev.ord - 1)"                                \
	" FROM unnest($4, $5, $6, $7, $8, $9, $10)"                                                \
	"  WITH ORDINALITY AS ev(wi, seq, type, version, data, ts, writer, ord)"                   \
	" JOIN w ON w.i = ev.wi"                                                                   \
	" WHERE w.highest = w.expected"
#define APPEND_PARAMS                                                                              \
	"(text[], int8[], int4[], int4[], int8[], text[], int4[], text[], int8[], int8[])"

static const char prepare_sql[] =
        "PREPARE skald_append" APPEND_PARAMS " AS " APPEND_W ")"
        " SELECT 0, 0, pg_current_xact_id()::text"
        " UNION ALL"
        " SELECT w.i, w.highest, NULL FROM w WHERE w.highest <> w.expected;"

        "PREPARE skald_append_safe" APPEND_PARAMS " AS " APPEND_W " ON CONFLICT DO NOTHING"
        " RETURNING e.persistence_id"
        "), got AS ("
        " SELECT persistence_id, count(*) AS cnt FROM ins GROUP BY persistence_id"
        ")"
        " SELECT w.i, w.highest, pg_current_xact_id_if_assigned()::text, coalesce(got.cnt, 0),"
        "  CASE WHEN got.cnt > 0 AND got.cnt < w.n THEN skald.append_race(w.pid) END"
        " FROM w LEFT JOIN got ON got.persistence_id = w.pid;"

        "PREPARE skald_read(text, int8, int8, int8) AS "
        "SELECT seq, type, version, data, timestamp, writer, global_offset,"
        " (SELECT max(seq) FROM skald.events WHERE persistence_id = $1)"
        " FROM skald.events"
        " WHERE persistence_id = $1 AND seq >= $2 AND seq <= $3 AND NOT deleted"
        " ORDER BY seq LIMIT $4;"

        "PREPARE skald_read_all(int8, int8) AS "
        "SELECT s.xmin, s.xmax, e.persistence_id, e.seq, e.type, e.version, e.data,"
        " e.timestamp, e.writer, e.global_offset"
        " FROM (SELECT pg_snapshot_xmin(c)::text::int8 AS xmin,"
        "  pg_snapshot_xmax(c)::text::int8 AS xmax FROM pg_current_snapshot() AS c) AS s"
        " LEFT JOIN LATERAL (SELECT * FROM skald.events"
        "  WHERE global_offset > $1 AND global_offset < (s.xmin << 20) AND NOT deleted"
        "  ORDER BY global_offset LIMIT $2) AS e ON true;"

        "PREPARE skald_highest(text) AS "
        "SELECT coalesce(max(seq), 0) FROM skald.events WHERE persistence_id = $1;"

        /* The highest row stays, marked deleted and emptied, so that the
         * highest seq survives. */
        "PREPARE skald_delete_to(text, int8) AS "
        "WITH h AS (SELECT max(seq) AS hi FROM skald.events WHERE persistence_id = $1),"
        " d AS (DELETE FROM skald.events e USING h"
        "  WHERE e.persistence_id = $1 AND e.seq <= $2 AND e.seq < h.hi)"
        " UPDATE skald.events e SET deleted = true, data = '{}'"
        " FROM h WHERE e.persistence_id = $1 AND e.seq = h.hi AND h.hi <= $2"
        " AND NOT e.deleted;"

        "PREPARE skald_list_ids(text, text, int8) AS "
        "SELECT persistence_id, max(seq) FROM skald.events"
        " WHERE persistence_id > $1 AND persistence_id >= $2"
        " GROUP BY persistence_id ORDER BY persistence_id LIMIT $3;"

        "PREPARE skald_list_ids_below(text, text, int8, text) AS "
        "SELECT persistence_id, max(seq) FROM skald.events"
        " WHERE persistence_id > $1 AND persistence_id >= $2 AND persistence_id < $4"
        " GROUP BY persistence_id ORDER BY persistence_id LIMIT $3;"

        "PREPARE skald_snapshot_save(text, int8, int4, text, int8) AS "
        "INSERT INTO skald.snapshots (persistence_id, seq, version, data, timestamp)"
        " VALUES ($1, $2, $3, $4::jsonb, $5)"
        " ON CONFLICT (persistence_id, seq) DO UPDATE SET version = EXCLUDED.version,"
        " data = EXCLUDED.data, timestamp = EXCLUDED.timestamp;"

        "PREPARE skald_snapshot_load(text, int8) AS "
        "SELECT seq, version, data, timestamp FROM skald.snapshots"
        " WHERE persistence_id = $1 AND seq <= $2 ORDER BY seq DESC LIMIT 1;"

        "PREPARE skald_snapshot_delete(text, int8) AS "
        "DELETE FROM skald.snapshots WHERE persistence_id = $1 AND seq = $2;"

        "PREPARE skald_snapshot_delete_to(text, int8) AS "
        "DELETE FROM skald.snapshots WHERE persistence_id = $1 AND seq <= $2;";

/* ------------------------------------------------------------------------ */
/* State                                                                     */

enum conn_state {
	C_DOWN,       /* no connection */
	C_RESOLVING,  /* uv_getaddrinfo in flight */
	C_CONNECTING, /* PQconnectPoll */
	C_SETUP,      /* schema check, then prepares */
	C_READY,
};

enum op_kind {
	OP_APPEND,
	OP_READ,
	OP_READ_ALL,
	OP_HIGHEST,
	OP_DELETE_TO,
	OP_SNAP_SAVE,
	OP_SNAP_LOAD,
	OP_SNAP_DELETE,
	OP_SNAP_DELETE_TO,
	OP_LIST,
};

typedef struct pg_s pg_t;

/* Per-write state of an append. */
enum { W_PENDING, W_SENT, W_DONE };
typedef struct wstate_s {
	size_t first; /* index of its first event in the op's texts */
	size_t bytes; /* encoded size of its events */
	size_t round; /* writes of the same id before it in the call */
	size_t ord;   /* index of its first event in the current statement */
	int state;
	bool solo; /* send alone (a statement with it failed on its data) */
} wstate_t;

typedef struct op_s {
	struct op_s *next;
	enum op_kind kind;
	bool started;
	bool finished; /* status is final; complete when at the head */
	bool waiting;  /* read_all: waiting on the timer */
	int status;
	char *msg; /* message for skald_journal_set_errmsg, or NULL */
	void *arg;
	char *pid;     /* owned copy */
	uint64_t a, b; /* per kind: (from, to), (after, -), seq bounds */
	uint64_t left; /* streamed reads: events still wanted */
	bool first_page;
	bool prefetched; /* a page query is in flight for a later batch */
	int stop_rc;     /* streamed: on_events asked to stop */
	bool stopping;
	skald_done_fn done;
	union {
		struct {
			skald_append_fn cb;
			skald_write_t *writes;
			size_t n;
			wstate_t *ws;
			char **texts; /* encoded data of every event */
			size_t *lens;
			size_t total; /* events in the call */
			size_t round, max_round;
			size_t *chunk; /* write indexes of the statement in flight */
			size_t nchunk;
			int retries;
			bool safe;           /* the statement in flight is skald_append_safe */
			size_t first_failed; /* write whose message op->msg is */
		} append;
		skald_events_fn on_events;
		skald_seq_fn on_seq;
		struct {
			skald_snapshot_fn cb;
			skald_snapshot_t *snap; /* save: the caller's */
			char *text;
			json_t *data; /* load: what was found, owned */
			uint64_t seq;
			int version;
			int64_t timestamp;
		} snap;
		struct {
			skald_ids_fn cb;
			char *prefix; /* lower bound */
			char *upper;  /* NULL: no upper bound */
			char *after;
		} list;
	} u;
	struct {
		uint64_t target; /* xmax when it started */
		uint64_t deadline;
		uint64_t delay;
	} all;
} op_t;

typedef struct poller_s {
	uv_poll_t h;
	pg_t *pg;
} poller_t;

typedef struct resolver_s {
	uv_getaddrinfo_t req;
	pg_t *pg;
} resolver_t;

struct pg_s {
	skald_journal_t *j;
	uv_loop_t *loop;
	skald__pg_uri_t uri;
	PGconn *conn;
	enum conn_state cs;
	poller_t *poller;
	int fd;
	int pevents;
	bool busy;      /* a query is in flight */
	int setup_step; /* C_SETUP: 0 schema check, 1 prepares */
	bool flushing;  /* libpq has output to send */
	bool handles_init;
	PGresult *res; /* result of the query in flight so far */
	uv_idle_t kick;
	uv_timer_t connect_timer;
	uv_timer_t wait_timer;
	resolver_t *resolver;
	int open_handles;
	op_t *head, *tail;
	skald_event_t *evbuf;
	json_error_t decode_err; /* why the first failed decode of a batch failed */
	bool decode_failed;      /* decode_err is set; reset with each batch */
	skald_persistence_id_t *idbuf;
	bool closing, close_started;
	void (*close_done)(skald_journal_t *j);
};

static void pump(pg_t *pg);
static void kick(pg_t *pg);
static void start_connect(pg_t *pg);
static void conn_lost(pg_t *pg, const char *what);
static void poll_update(pg_t *pg, int events);
static void op_result(pg_t *pg, op_t *op, PGresult *res);

/* ------------------------------------------------------------------------ */
/* Small helpers                                                             */

/* Sets op's final status and message (printf-style; NULL: none). */
static void op_finish(op_t *op, int status, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void op_finish(op_t *op, int status, const char *fmt, ...)
{
	op->finished = true;
	op->status = status;
	if (fmt != NULL && op->msg == NULL) {
		char buf[512];
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(buf, sizeof buf, fmt, ap);
		va_end(ap);
		op->msg = strdup(buf);
	}
}

/* The message of the connection, scrubbed, on one line. */
static void conn_message(pg_t *pg, char *buf, size_t len)
{
	const char *m = pg->conn ? PQerrorMessage(pg->conn) : "";
	skald__pg_scrub(buf, len, *m ? m : "no further detail from libpq", pg->uri.password);
}

static const char *sqlstate_of(const PGresult *res)
{
	const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	return s ? s : "";
}

/* "MESSAGE (SQLSTATE XXXXX)" of a failed result. */
static void result_message(pg_t *pg, const PGresult *res, char *buf, size_t len)
{
	const char *m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	char tmp[320];
	skald__pg_scrub(tmp, sizeof tmp, m ? m : PQresultErrorMessage(res), pg->uri.password);
	snprintf(buf, len, "%s (SQLSTATE %s)", tmp, sqlstate_of(res));
}

/* The Skald code for a failed statement: a missing table, schema or function
 * means the schema is not there (or not complete). */
static int status_of(const PGresult *res)
{
	const char *s = sqlstate_of(res);
	if (strcmp(s, "42P01") == 0 || strcmp(s, "3F000") == 0 || strcmp(s, "42883") == 0)
		return SKALD_ESCHEMA;
	return SKALD_EBACKEND;
}

static uint64_t u64_of(const PGresult *res, int row, int col)
{
	return strtoull(PQgetvalue(res, row, col), NULL, 10);
}

static int64_t i64_of(const PGresult *res, int row, int col)
{
	return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

/* A uint64 bound for a bigint parameter: the store never holds more. */
static void bound_text(char *buf, size_t len, uint64_t v)
{
	snprintf(buf, len, "%llu", (unsigned long long)(v > INT64_MAXU ? INT64_MAXU : v));
}

static int utf8_valid(const unsigned char *s)
{
	while (*s) {
		unsigned c = *s;
		size_t n;
		unsigned cp;
		if (c < 0x80) {
			s++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			n = 1;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			n = 2;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			n = 3;
			cp = c & 0x07;
		} else {
			return 0;
		}
		for (size_t i = 1; i <= n; i++) {
			if ((s[i] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i] & 0x3f);
		}
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		s += n + 1;
	}
	return 1;
}

/* Whether JSON text holds a \u0000 escape, which jsonb cannot store. */
static int has_nul_escape(const char *t, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++) {
		if (t[i] != '\\')
			continue;
		if (t[i + 1] == 'u' && i + 5 < len && memcmp(t + i + 2, "0000", 4) == 0)
			return 1;
		i++; /* skip the escaped character */
	}
	return 0;
}

/* Encodes data for the journal: compact JSON of an object that jsonb can
 * hold. NULL when it cannot be stored; *why says why. */
static char *encode(const json_t *data, size_t *len, const char **why)
{
	if (!json_is_object(data)) {
		*why = "has data that is not a JSON object";
		return NULL;
	}
	if (skald__pg_json_too_deep(data)) {
		*why = "has data nested deeper than 2048 levels (SKALD_DATA_MAX_DEPTH)";
		return NULL;
	}
	char *text = skald__pg_json_text(data, len);
	if (text == NULL) {
		*why = "cannot be encoded as JSON (invalid UTF-8?)";
		return NULL;
	}
	if (has_nul_escape(text, *len)) {
		*why = "holds a \\u0000 character, which PostgreSQL's jsonb cannot store";
		free(text);
		return NULL;
	}
	if (*len > MAX_EVENT_BYTES) {
		*why = "is larger than 255 MiB";
		free(text);
		return NULL;
	}
	return text;
}

/* ------------------------------------------------------------------------ */
/* Binary array parameters                                                   */

static void buf_u32(skald__pg_buf_t *b, uint32_t v)
{
	unsigned char x[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
	                      (unsigned char)(v >> 8), (unsigned char)v};
	skald__pg_buf_put(b, x, 4);
}

static void buf_u64(skald__pg_buf_t *b, uint64_t v)
{
	buf_u32(b, (uint32_t)(v >> 32));
	buf_u32(b, (uint32_t)v);
}

/* The header of a one-dimensional array of n elements of type oid
 * (PostgreSQL's array_send format). */
static void arr_start(skald__pg_buf_t *b, uint32_t oid, size_t n)
{
	b->len = 0;
	buf_u32(b, 1); /* dimensions */
	buf_u32(b, 0); /* no NULLs */
	buf_u32(b, oid);
	buf_u32(b, (uint32_t)n);
	buf_u32(b, 1); /* lower bound */
}

static void arr_int8(skald__pg_buf_t *b, uint64_t v)
{
	buf_u32(b, 8);
	buf_u64(b, v);
}

static void arr_int4(skald__pg_buf_t *b, uint32_t v)
{
	buf_u32(b, 4);
	buf_u32(b, v);
}

static void arr_text(skald__pg_buf_t *b, const char *s, size_t len)
{
	buf_u32(b, (uint32_t)len);
	skald__pg_buf_put(b, s, len);
}

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

/* Fails every op that has not started with status and message msg. An op in
 * flight is failed by its own caller. */
static void fail_queued(pg_t *pg, int status, const char *msg)
{
	for (op_t *op = pg->head; op; op = op->next) {
		if (op->finished)
			continue;
		if (op->kind == OP_APPEND && op->u.append.ws) {
			for (size_t i = 0; i < op->u.append.n; i++) {
				if (op->u.append.ws[i].state != W_DONE) {
					op->u.append.writes[i].status = status;
					op->u.append.ws[i].state = W_DONE;
				}
			}
		}
		op_finish(op, status, "%s", msg);
	}
}

static void connect_failed(pg_t *pg, int status, const char *msg)
{
	SKALD_LOG(SKALD_LOG_WARN, "postgres journal: %s", msg);
	disconnect(pg);
	fail_queued(pg, status, msg);
	kick(pg);
}

static void on_poll(uv_poll_t *h, int status, int events);

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
		kick(pg); /* see on_kick */
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

static int send_prepared(pg_t *pg, const char *name, int n, const char *const *values,
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
		conn_message(pg, m, sizeof m);
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
		kick(pg);
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
		send_simple(pg, schema_check_sql);
		break;
	default: {
		char m[400], msg[512];
		conn_message(pg, m, sizeof m);
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
		int st = status_of(res);
		char m[400];
		result_message(pg, res, m, sizeof m);
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
		int have = PQntuples(res) == 1 ? (int)i64_of(res, 0, 0) : 0;
		if (have < need) {
			snprintf(msg, sizeof msg,
			         "the Skald journal schema is at version %d but this build needs "
			         "version %d: run `skald migrate --store URI`",
			         have, need);
			connect_failed(pg, SKALD_ESCHEMA, msg);
			return;
		}
		pg->setup_step = 1;
		send_simple(pg, prepare_sql);
		return;
	}
	pg->cs = C_READY;
	uv_timer_stop(&pg->connect_timer);
	kick(pg);
}

/* The connection broke while in use: the op in flight fails (it is unknown
 * whether an append in it was stored), and the next op reconnects. */
static void conn_lost(pg_t *pg, const char *what)
{
	char m[400], msg[512];
	conn_message(pg, m, sizeof m);
	snprintf(msg, sizeof msg, "connection to PostgreSQL lost while %s: %s", what, m);
	if (pg->cs != C_READY) {
		connect_failed(pg, SKALD_EBACKEND, msg);
		return;
	}
	disconnect(pg);
	/* The op at the head has sent (or tried to send) a query unless it
	 * waits between two of them: it fails. */
	op_t *op = pg->head;
	if (op && op->started && !op->finished && !op->waiting) {
		if (op->kind == OP_APPEND && op->u.append.ws) {
			for (size_t i = 0; i < op->u.append.n; i++) {
				if (op->u.append.ws[i].state != W_DONE) {
					op->u.append.writes[i].status = SKALD_EBACKEND;
					op->u.append.ws[i].state = W_DONE;
					if (i < op->u.append.first_failed) {
						op->u.append.first_failed = i;
						free(op->msg);
						op->msg = NULL;
					}
				}
			}
		}
		op_finish(op, SKALD_EBACKEND, "%s", msg);
	} else {
		SKALD_LOG(SKALD_LOG_INFO, "postgres journal: %s", msg);
	}
	kick(pg);
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
		} else if (pg->head && !pg->head->finished) {
			op_result(pg, pg->head, res);
		}
		PQclear(res);
		if (pg->conn == NULL)
			return;
		kick(pg);
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
/* The queue                                                                 */

static void op_free(op_t *op)
{
	if (op->kind == OP_APPEND) {
		/* Not through writes: the caller may free them in its
		 * callback, which has run. */
		if (op->u.append.texts)
			for (size_t i = 0; i < op->u.append.total; i++)
				free(op->u.append.texts[i]);
		free(op->u.append.texts);
		free(op->u.append.lens);
		free(op->u.append.ws);
		free(op->u.append.chunk);
	} else if (op->kind == OP_SNAP_SAVE) {
		free(op->u.snap.text);
	} else if (op->kind == OP_SNAP_LOAD) {
		json_decref(op->u.snap.data);
	} else if (op->kind == OP_LIST) {
		free(op->u.list.prefix);
		free(op->u.list.upper);
		free(op->u.list.after);
	}
	free(op->pid);
	free(op->msg);
	free(op);
}

/* Runs the completion of a finished op (already unlinked). */
static void op_complete(pg_t *pg, op_t *op)
{
	skald_journal_t *j = pg->j;
	if (op->msg && op->status != 0)
		skald_journal_set_errmsg(j, "%s", op->msg);
	switch (op->kind) {
	case OP_APPEND:
		/* Once prepared, every write carries its own status (some may
		 * have been stored before a failure): the call succeeded. */
		if (op->msg)
			skald_journal_set_errmsg(j, "%s", op->msg);
		op->u.append.cb(j, op->u.append.ws ? 0 : op->status, op->u.append.writes,
		                op->u.append.n, op->arg);
		break;
	case OP_HIGHEST:
		op->u.on_seq(j, op->status, op->status == 0 ? op->a : 0, op->arg);
		break;
	case OP_SNAP_LOAD:
		if (op->u.snap.data) {
			skald_snapshot_t snap = {op->pid, op->u.snap.seq, op->u.snap.version,
			                         op->u.snap.data, op->u.snap.timestamp};
			op->u.snap.cb(j, 0, &snap, op->arg);
		} else {
			op->u.snap.cb(j, op->status, NULL, op->arg);
		}
		break;
	default:
		op->done(j, op->status, op->arg);
		break;
	}
	op_free(op);
}

static void start_op(pg_t *pg, op_t *op);

static void pump(pg_t *pg)
{
	while (pg->head) {
		op_t *op = pg->head;
		if (op->finished) {
			if (pg->busy)
				return; /* a prefetched page still to drain */
			pg->head = op->next;
			if (pg->head == NULL)
				pg->tail = NULL;
			op_complete(pg, op);
			continue;
		}
		if (op->waiting || pg->busy)
			return;
		if (pg->cs != C_READY) {
			if (pg->cs == C_DOWN)
				start_connect(pg);
			return;
		}
		start_op(pg, op);
		if (pg->busy || op->waiting)
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

static void on_kick(uv_idle_t *h)
{
	pg_t *pg = h->data;
	uv_idle_stop(h);
	/* libpq may have read a whole answer into its buffer while it was
	 * sending (it reads when the socket will not take more): then the
	 * socket never turns readable for it, so look here. */
	if (pg->conn && pg->busy && pg->cs >= C_SETUP && !PQisBusy(pg->conn))
		read_input(pg);
	pump(pg);
}

static void kick(pg_t *pg)
{
	if (!pg->close_started)
		uv_idle_start(&pg->kick, on_kick);
}

static op_t *op_new(pg_t *pg, enum op_kind kind, void *arg)
{
	if (pg->closing)
		return NULL;
	op_t *op = calloc(1, sizeof *op);
	if (op) {
		op->kind = kind;
		op->arg = arg;
	}
	return op;
}

static void enqueue(pg_t *pg, op_t *op)
{
	if (pg->tail)
		pg->tail->next = op;
	else
		pg->head = op;
	pg->tail = op;
	kick(pg);
}

/* ------------------------------------------------------------------------ */
/* Append                                                                    */

static int cmp_pid_index(const void *a, const void *b, void *ctx)
{
	const skald_write_t *w = ctx;
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	int c = strcmp(w[x].persistence_id, w[y].persistence_id);
	return c ? c : (x > y) - (x < y);
}

/* Sets write i's failure; the message kept is the first failing write's,
 * which is the one whose status the front reports. */
static void write_failed(op_t *op, size_t i, int status, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static void write_failed(op_t *op, size_t i, int status, const char *fmt, ...)
{
	op->u.append.writes[i].status = status;
	op->u.append.ws[i].state = W_DONE;
	if (i < op->u.append.first_failed) {
		char buf[512];
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(buf, sizeof buf, fmt, ap);
		va_end(ap);
		free(op->msg);
		op->msg = strdup(buf);
		op->u.append.first_failed = i;
	}
}

/* Encodes every event, rejects what cannot be stored, and numbers the
 * rounds. Returns 0 or SKALD_ENOMEM. */
static int append_prepare(op_t *op)
{
	skald_write_t *w = op->u.append.writes;
	size_t n = op->u.append.n, total = 0;
	for (size_t i = 0; i < n; i++)
		total += w[i].nevents;
	op->u.append.ws = calloc(n, sizeof *op->u.append.ws);
	op->u.append.total = total;
	op->u.append.texts = calloc(total, sizeof *op->u.append.texts);
	op->u.append.lens = calloc(total, sizeof *op->u.append.lens);
	op->u.append.chunk = calloc(n, sizeof *op->u.append.chunk);
	size_t *order = malloc(n * sizeof *order);
	if (!op->u.append.ws || !op->u.append.texts || !op->u.append.lens || !op->u.append.chunk ||
	    !order) {
		free(order);
		return SKALD_ENOMEM;
	}
	op->u.append.first_failed = SIZE_MAX;
	size_t base = 0;
	for (size_t i = 0; i < n; i++) {
		skald_write_t *wr = &w[i];
		wstate_t *s = &op->u.append.ws[i];
		s->first = base;
		base += wr->nevents;
		wr->status = 0;
		if (!utf8_valid((const unsigned char *)wr->persistence_id)) {
			write_failed(op, i, SKALD_EREJECTED,
			             "append rejected: the persistence id is not valid UTF-8");
			continue;
		}
		if (wr->expected_seq + wr->nevents > INT64_MAXU) {
			write_failed(op, i, SKALD_EREJECTED,
			             "append to \"%s\" rejected: seq above 2^63-1 cannot be stored",
			             wr->persistence_id);
			continue;
		}
		for (size_t k = 0; k < wr->nevents && s->state == W_PENDING; k++) {
			const skald_event_t *e = &wr->events[k];
			const char *why = NULL;
			if (!utf8_valid((const unsigned char *)e->type))
				why = "has a type name that is not valid UTF-8";
			else
				op->u.append.texts[s->first + k] =
				        encode(e->data, &op->u.append.lens[s->first + k], &why);
			if (why) {
				write_failed(op, i, SKALD_EREJECTED,
				             "append to \"%s\" rejected: event seq %llu (%s) %s",
				             wr->persistence_id, (unsigned long long)e->seq,
				             e->type, why);
				break;
			}
			s->bytes += op->u.append.lens[s->first + k];
		}
	}
	/* Rounds: the k-th write of a persistence id in this call goes in
	 * round k, after the one before it has committed. */
	size_t m = 0;
	for (size_t i = 0; i < n; i++)
		if (op->u.append.ws[i].state == W_PENDING)
			order[m++] = i;
	qsort_r(order, m, sizeof *order, cmp_pid_index, w);
	for (size_t i = 0; i < m; i++) {
		size_t r = 0;
		if (i > 0 &&
		    strcmp(w[order[i]].persistence_id, w[order[i - 1]].persistence_id) == 0)
			r = op->u.append.ws[order[i - 1]].round + 1;
		op->u.append.ws[order[i]].round = r;
		if (r > op->u.append.max_round)
			op->u.append.max_round = r;
	}
	free(order);
	return 0;
}

/* Sends the next statement of the append, or finishes it. */
static void append_next(pg_t *pg, op_t *op)
{
	size_t n = op->u.append.n;
	skald_write_t *w = op->u.append.writes;
	wstate_t *ws = op->u.append.ws;
	size_t nchunk = 0, nev = 0, bytes = 0;
	for (;;) {
		for (size_t i = 0; i < n; i++) {
			if (ws[i].state != W_PENDING || ws[i].round != op->u.append.round)
				continue;
			/* A write that failed on its data in company goes alone. */
			if (nchunk > 0 && (ws[i].solo || ws[op->u.append.chunk[0]].solo))
				break;
			if (nchunk > 0 && (nev + w[i].nevents > MAX_STMT_EVENTS ||
			                   bytes + ws[i].bytes > MAX_STMT_BYTES))
				break;
			if (w[i].nevents > MAX_STMT_EVENTS) {
				write_failed(
				        op, i, SKALD_EREJECTED,
				        "append to \"%s\" rejected: more than %u events in one "
				        "write",
				        w[i].persistence_id, MAX_STMT_EVENTS);
				continue;
			}
			op->u.append.chunk[nchunk++] = i;
			nev += w[i].nevents;
			bytes += ws[i].bytes;
		}
		if (nchunk > 0)
			break;
		if (op->u.append.round >= op->u.append.max_round) {
			op_finish(op, 0, NULL);
			return;
		}
		op->u.append.round++;
	}
	op->u.append.nchunk = nchunk;

	skald__pg_buf_t b[10] = {{0}};
	arr_start(&b[0], OID_TEXT, nchunk);
	arr_start(&b[1], OID_INT8, nchunk);
	arr_start(&b[2], OID_INT4, nchunk);
	arr_start(&b[3], OID_INT4, nev);
	arr_start(&b[4], OID_INT8, nev);
	arr_start(&b[5], OID_TEXT, nev);
	arr_start(&b[6], OID_INT4, nev);
	arr_start(&b[7], OID_TEXT, nev);
	arr_start(&b[8], OID_INT8, nev);
	arr_start(&b[9], OID_INT8, nev);
	size_t ord = 0;
	for (size_t c = 0; c < nchunk; c++) {
		size_t i = op->u.append.chunk[c];
		skald_write_t *wr = &w[i];
		ws[i].state = W_SENT;
		ws[i].ord = ord;
		arr_text(&b[0], wr->persistence_id, strlen(wr->persistence_id));
		arr_int8(&b[1], wr->expected_seq);
		arr_int4(&b[2], (uint32_t)wr->nevents);
		for (size_t k = 0; k < wr->nevents; k++) {
			const skald_event_t *e = &wr->events[k];
			arr_int4(&b[3], (uint32_t)(c + 1));
			arr_int8(&b[4], e->seq);
			arr_text(&b[5], e->type, strlen(e->type));
			arr_int4(&b[6], (uint32_t)e->version);
			arr_text(&b[7], op->u.append.texts[ws[i].first + k],
			         op->u.append.lens[ws[i].first + k]);
			arr_int8(&b[8], (uint64_t)e->timestamp);
			arr_int8(&b[9], e->writer);
		}
		ord += wr->nevents;
	}
	const char *values[10];
	int lengths[10], formats[10];
	int oom = 0;
	for (int k = 0; k < 10; k++) {
		oom |= b[k].failed;
		values[k] = b[k].p;
		lengths[k] = (int)b[k].len;
		formats[k] = 1;
	}
	if (oom) {
		for (size_t c = 0; c < nchunk; c++)
			write_failed(op, op->u.append.chunk[c], SKALD_ENOMEM,
			             "out of memory building an append");
		for (int k = 0; k < 10; k++)
			free(b[k].p);
		append_next(pg, op);
		return;
	}
	send_prepared(pg, op->u.append.safe ? "skald_append_safe" : "skald_append", 10, values,
	              lengths, formats);
	for (int k = 0; k < 10; k++)
		free(b[k].p);
}

/* Write i is stored, by transaction xid. */
static void set_offsets(op_t *op, size_t i, uint64_t xid)
{
	skald_write_t *w = &op->u.append.writes[i];
	for (size_t k = 0; k < w->nevents; k++)
		w->events[k].offset = xid << SKALD__PG_ORD_BITS | (op->u.append.ws[i].ord + k);
	w->status = 0;
	op->u.append.ws[i].state = W_DONE;
}

static void append_result(pg_t *pg, op_t *op, PGresult *res)
{
	skald_write_t *w = op->u.append.writes;
	wstate_t *ws = op->u.append.ws;
	size_t nchunk = op->u.append.nchunk;
	size_t *chunk = op->u.append.chunk;
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		const char *st = sqlstate_of(res);
		char m[400];
		result_message(pg, res, m, sizeof m);
		/* Back to pending: sent again, alone or with the others. A
		 * unique violation of the plain statement means a concurrent
		 * writer: the safe one tells which writes it hit. */
		bool unique = strcmp(st, "23505") == 0 && !op->u.append.safe;
		if ((unique || strcmp(st, "40001") == 0 || strcmp(st, "40P01") == 0) &&
		    ++op->u.append.retries <= MAX_RETRIES) {
			if (unique)
				op->u.append.safe = true;
			SKALD_LOG(SKALD_LOG_DEBUG, "postgres journal: append retried: %s", m);
			for (size_t c = 0; c < nchunk; c++)
				ws[chunk[c]].state = W_PENDING;
		} else if ((st[0] == '2' && st[1] == '2') || (st[0] == '5' && st[1] == '4')) {
			/* Data the server refused (class 22, or a limit of class
			 * 54): whose, only sending them one by one can tell. */
			for (size_t c = 0; c < nchunk; c++) {
				size_t i = chunk[c];
				if (nchunk > 1) {
					ws[i].state = W_PENDING;
					ws[i].solo = true;
				} else {
					write_failed(op, i, SKALD_EREJECTED,
					             "append to \"%s\" rejected by PostgreSQL: %s",
					             w[i].persistence_id, m);
				}
			}
		} else {
			int status = status_of(res);
			for (size_t i = 0; i < op->u.append.n; i++)
				if (ws[i].state != W_DONE)
					write_failed(op, i, status, "append to \"%s\" failed: %s",
					             w[i].persistence_id, m);
		}
		append_next(pg, op);
		return;
	}
	op->u.append.retries = 0;
	bool safe = op->u.append.safe;
	op->u.append.safe = false;
	int rows = PQntuples(res);
	uint64_t xid = 0;
	/* Plain: the transaction id, then the writes that failed the check;
	 * every other write of the statement was stored. Safe: every write,
	 * with the number of its events inserted. */
	for (int r = 0; r < rows; r++) {
		size_t c = (size_t)i64_of(res, r, 0);
		if (c == 0) {
			xid = u64_of(res, r, 2);
			continue;
		}
		if (--c >= nchunk)
			continue;
		size_t i = chunk[c];
		uint64_t highest = u64_of(res, r, 1);
		if (safe && u64_of(res, r, 3) == w[i].nevents && !PQgetisnull(res, r, 2)) {
			set_offsets(op, i, u64_of(res, r, 2));
		} else if (highest != w[i].expected_seq) {
			write_failed(op, i, SKALD_ECONFLICT,
			             "append to \"%s\": expected highest seq %llu, but it is %llu "
			             "(another writer appended first)",
			             w[i].persistence_id, (unsigned long long)w[i].expected_seq,
			             (unsigned long long)highest);
		} else {
			write_failed(op, i, SKALD_ECONFLICT,
			             "append to \"%s\": another writer appended after seq %llu at "
			             "the same time",
			             w[i].persistence_id, (unsigned long long)w[i].expected_seq);
		}
	}
	if (!safe) {
		for (size_t c = 0; c < nchunk; c++)
			if (ws[chunk[c]].state == W_SENT && xid != 0)
				set_offsets(op, chunk[c], xid);
	}
	for (size_t c = 0; c < nchunk; c++)
		if (ws[chunk[c]].state == W_SENT)
			write_failed(op, chunk[c], SKALD_EBACKEND,
			             "append to \"%s\": the server's answer did not mention it",
			             w[chunk[c]].persistence_id);
	append_next(pg, op);
}

static int pg_append(void *state, skald_write_t *writes, size_t nwrites, skald_append_fn cb,
                     void *arg)
{
	pg_t *pg = state;
	op_t *op = op_new(pg, OP_APPEND, arg);
	if (op == NULL)
		return pg->closing ? SKALD_ECLOSED : SKALD_ENOMEM;
	op->u.append.cb = cb;
	op->u.append.writes = writes;
	op->u.append.n = nwrites;
	enqueue(pg, op);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Streamed reads                                                            */

/* Decodes JSON text of a result field into an owned object; NULL with
 * pg->decode_err set when it is not JSON. */
static json_t *decode(pg_t *pg, const PGresult *res, int row, int col)
{
	/* jansson clears the error of every call: keep the first failure's. */
	json_error_t err;
	json_t *v = skald__pg_json_parse(PQgetvalue(res, row, col),
	                                 (size_t)PQgetlength(res, row, col), &err);
	if (v == NULL && !pg->decode_failed) {
		pg->decode_err = err;
		pg->decode_failed = true;
	}
	return v;
}

/* Hands events[0..n) to on_events and releases their data. A decode
 * failure stops the read. Returns on_events' code, or the failure's. */
static int deliver(pg_t *pg, op_t *op, size_t n)
{
	skald_event_t *ev = pg->evbuf;
	/* The events before one that cannot be decoded are delivered: a
	 * reader gets everything up to it. */
	size_t good = 0;
	while (good < n && ev[good].data != NULL)
		good++;
	int rc = 0;
	if (good > 0)
		rc = op->u.on_events(pg->j, ev, good, op->arg);
	if (rc == 0 && good < n) {
		const skald_event_t *bad = &ev[good];
		skald_journal_set_bad_event(pg->j, bad->persistence_id, bad->seq, bad->offset);
		op_finish(op, SKALD_EDECODE,
		          "event \"%s\" seq %llu: stored data cannot be read as JSON (%s at "
		          "character %d)",
		          bad->persistence_id, (unsigned long long)bad->seq, pg->decode_err.text,
		          pg->decode_err.position);
		rc = SKALD_EDECODE;
	}
	for (size_t i = 0; i < n; i++) {
		json_decref(ev[i].data);
		ev[i].data = NULL;
	}
	pg->decode_failed = false;
	return rc;
}

static void read_send(pg_t *pg, op_t *op)
{
	char from[24], to[24], lim[24];
	bound_text(from, sizeof from, op->a);
	bound_text(to, sizeof to, op->b);
	uint64_t n = op->left < pg->uri.batch ? op->left : pg->uri.batch;
	bound_text(lim, sizeof lim, n);
	const char *v[4] = {op->pid, from, to, lim};
	send_prepared(pg, "skald_read", 4, v, NULL, NULL);
}

static void read_result(pg_t *pg, op_t *op, PGresult *res)
{
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		char m[400];
		result_message(pg, res, m, sizeof m);
		op_finish(op, status_of(res), "reading \"%s\" failed: %s", op->pid, m);
		return;
	}
	if (op->stopping || (pg->closing && op->prefetched)) {
		/* A page asked for ahead that nobody wants any more. */
		op_finish(op, op->stopping ? op->stop_rc : SKALD_ECANCELED, NULL);
		return;
	}
	size_t n = (size_t)PQntuples(res);
	uint64_t asked = op->left < pg->uri.batch ? op->left : pg->uri.batch;
	if (op->first_page && n > 0) {
		uint64_t hi = u64_of(res, 0, 7);
		if (hi < op->b)
			op->b = hi;
		op->first_page = false;
	}
	uint64_t last = n ? u64_of(res, (int)n - 1, 0) : 0;
	bool more = n == asked && op->left > n && last < op->b;
	op->left -= n;
	if (more) {
		/* Ask for the next page before the caller decodes this one. */
		op->a = last + 1;
		op->prefetched = true;
		read_send(pg, op);
		if (op->finished)
			return; /* the connection broke */
	}
	for (size_t i = 0; i < n; i++) {
		int r = (int)i;
		pg->evbuf[i] = (skald_event_t){
		        .persistence_id = op->pid,
		        .seq = u64_of(res, r, 0),
		        .type = PQgetvalue(res, r, 1),
		        .version = (int)i64_of(res, r, 2),
		        .data = decode(pg, res, r, 3),
		        .timestamp = i64_of(res, r, 4),
		        .writer = (uint64_t)i64_of(res, r, 5),
		        .offset = u64_of(res, r, 6),
		};
	}
	int rc = deliver(pg, op, n);
	if (op->finished)
		return;
	if (rc != 0) {
		if (more) {
			op->stopping = true;
			op->stop_rc = rc;
		} else {
			op_finish(op, rc, NULL);
		}
	} else if (!more) {
		op_finish(op, 0, NULL);
	}
}

static int pg_read(void *state, const char *pid, uint64_t from, uint64_t to, uint64_t max,
                   skald_events_fn on_events, skald_done_fn done, void *arg)
{
	pg_t *pg = state;
	op_t *op = op_new(pg, OP_READ, arg);
	if (op == NULL || (op->pid = strdup(pid)) == NULL) {
		free(op);
		return pg->closing ? SKALD_ECLOSED : SKALD_ENOMEM;
	}
	op->u.on_events = on_events;
	op->done = done;
	op->a = from;
	op->b = to > INT64_MAXU ? INT64_MAXU : to;
	op->left = max;
	op->first_page = true;
	if (max == 0 || from > to || from > INT64_MAXU || !utf8_valid((const unsigned char *)pid))
		op_finish(op, 0, NULL);
	enqueue(pg, op);
	return 0;
}

static void read_all_send(pg_t *pg, op_t *op)
{
	char after[24], lim[24];
	bound_text(after, sizeof after, op->a);
	uint64_t n = op->left < pg->uri.batch ? op->left : pg->uri.batch;
	bound_text(lim, sizeof lim, n);
	const char *v[2] = {after, lim};
	send_prepared(pg, "skald_read_all", 2, v, NULL, NULL);
}

static void on_wait_timer(uv_timer_t *t)
{
	pg_t *pg = t->data;
	op_t *op = pg->head;
	if (op && op->waiting) {
		op->waiting = false;
		op->started = false; /* sent again by pump, on whatever connection */
	}
	pump(pg);
}

static void read_all_result(pg_t *pg, op_t *op, PGresult *res)
{
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		char m[400];
		result_message(pg, res, m, sizeof m);
		op_finish(op, status_of(res), "reading the global order failed: %s", m);
		return;
	}
	int rows = PQntuples(res);
	if (rows < 1) {
		op_finish(op, SKALD_EBACKEND, "reading the global order: no snapshot row");
		return;
	}
	uint64_t xmin = u64_of(res, 0, 0);
	if (op->first_page) {
		op->all.target = u64_of(res, 0, 1);
		op->all.deadline = uv_now(pg->loop) + pg->uri.wait_ms;
		op->all.delay = 1;
		op->first_page = false;
	}
	size_t n = 0;
	for (int r = 0; r < rows; r++) {
		if (PQgetisnull(res, r, 2))
			continue;
		pg->evbuf[n++] = (skald_event_t){
		        .persistence_id = PQgetvalue(res, r, 2),
		        .seq = u64_of(res, r, 3),
		        .type = PQgetvalue(res, r, 4),
		        .version = (int)i64_of(res, r, 5),
		        .data = decode(pg, res, r, 6),
		        .timestamp = i64_of(res, r, 7),
		        .writer = (uint64_t)i64_of(res, r, 8),
		        .offset = u64_of(res, r, 9),
		};
	}
	uint64_t asked = op->left < pg->uri.batch ? op->left : pg->uri.batch;
	if (n > 0)
		op->a = pg->evbuf[n - 1].offset;
	op->left -= n;
	int rc = deliver(pg, op, n);
	if (op->finished)
		return;
	if (rc != 0) {
		op_finish(op, rc, NULL);
	} else if (op->left == 0) {
		op_finish(op, 0, NULL);
	} else if (pg->closing) {
		op_finish(op, SKALD_ECANCELED, NULL);
	} else if (n == asked) {
		read_all_send(pg, op);
	} else if (xmin >= op->all.target || uv_now(pg->loop) >= op->all.deadline) {
		/* Everything committed before the call is in (or the wait is
		 * over: what was returned is still never followed by a lower
		 * offset). */
		if (xmin < op->all.target)
			SKALD_LOG(SKALD_LOG_INFO,
			          "postgres journal: read_all stopped waiting for a transaction "
			          "that stays open (xid %llu)",
			          (unsigned long long)xmin);
		op_finish(op, 0, NULL);
	} else {
		/* Transactions that were running when read_all started are
		 * still running: their events would come before the next ones. */
		op->waiting = true;
		uv_timer_start(&pg->wait_timer, on_wait_timer, op->all.delay, 0);
		op->all.delay = op->all.delay * 2 > 50 ? 50 : op->all.delay * 2;
	}
}

static int pg_read_all(void *state, uint64_t after, uint64_t max, skald_events_fn on_events,
                       skald_done_fn done, void *arg)
{
	pg_t *pg = state;
	op_t *op = op_new(pg, OP_READ_ALL, arg);
	if (op == NULL)
		return pg->closing ? SKALD_ECLOSED : SKALD_ENOMEM;
	op->u.on_events = on_events;
	op->done = done;
	op->a = after;
	op->left = max;
	op->first_page = true;
	if (max == 0 || after >= INT64_MAXU)
		op_finish(op, 0, NULL);
	enqueue(pg, op);
	return 0;
}

/* The smallest string above every string that starts with prefix, in byte
 * order: prefix with its last code point incremented (skipping surrogates),
 * after dropping trailing U+10FFFF. NULL when there is none (or no memory). */
static char *prefix_upper(const char *prefix)
{
	size_t len = strlen(prefix);
	char *s = malloc(len + 5);
	if (s == NULL)
		return NULL;
	memcpy(s, prefix, len + 1);
	while (len > 0) {
		size_t start = len - 1;
		while (start > 0 && ((unsigned char)s[start] & 0xc0) == 0x80)
			start--;
		const unsigned char *p = (const unsigned char *)s + start;
		unsigned cp;
		if (p[0] < 0x80)
			cp = p[0];
		else if ((p[0] & 0xe0) == 0xc0)
			cp = (p[0] & 0x1fu) << 6 | (p[1] & 0x3fu);
		else if ((p[0] & 0xf0) == 0xe0)
			cp = (p[0] & 0x0fu) << 12 | (p[1] & 0x3fu) << 6 | (p[2] & 0x3fu);
		else
			cp = (p[0] & 0x07u) << 18 | (p[1] & 0x3fu) << 12 | (p[2] & 0x3fu) << 6 |
			     (p[3] & 0x3fu);
		if (cp >= 0x10ffff) {
			len = start;
			continue;
		}
		cp = cp + 1 == 0xd800 ? 0xe000 : cp + 1;
		char *o = s + start;
		if (cp < 0x80) {
			*o++ = (char)cp;
		} else if (cp < 0x800) {
			*o++ = (char)(0xc0 | cp >> 6);
			*o++ = (char)(0x80 | (cp & 0x3f));
		} else if (cp < 0x10000) {
			*o++ = (char)(0xe0 | cp >> 12);
			*o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
			*o++ = (char)(0x80 | (cp & 0x3f));
		} else {
			*o++ = (char)(0xf0 | cp >> 18);
			*o++ = (char)(0x80 | ((cp >> 12) & 0x3f));
			*o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
			*o++ = (char)(0x80 | (cp & 0x3f));
		}
		*o = '\0';
		return s;
	}
	free(s);
	return NULL;
}

static void list_send(pg_t *pg, op_t *op)
{
	char lim[24];
	uint64_t n = op->left < pg->uri.batch ? op->left : pg->uri.batch;
	bound_text(lim, sizeof lim, n);
	const char *v[4] = {op->u.list.after, op->u.list.prefix, lim, op->u.list.upper};
	send_prepared(pg, op->u.list.upper ? "skald_list_ids_below" : "skald_list_ids",
	              op->u.list.upper ? 4 : 3, v, NULL, NULL);
}

static void list_result(pg_t *pg, op_t *op, PGresult *res)
{
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		char m[400];
		result_message(pg, res, m, sizeof m);
		op_finish(op, status_of(res), "listing persistence ids failed: %s", m);
		return;
	}
	size_t n = (size_t)PQntuples(res);
	uint64_t asked = op->left < pg->uri.batch ? op->left : pg->uri.batch;
	for (size_t i = 0; i < n; i++)
		pg->idbuf[i] = (skald_persistence_id_t){PQgetvalue(res, (int)i, 0),
		                                        u64_of(res, (int)i, 1)};
	op->left -= n;
	int rc = 0;
	if (n > 0) {
		char *after = strdup(pg->idbuf[n - 1].persistence_id);
		if (after == NULL) {
			op_finish(op, SKALD_ENOMEM, NULL);
			return;
		}
		free(op->u.list.after);
		op->u.list.after = after;
		rc = op->u.list.cb(pg->j, pg->idbuf, n, op->arg);
	}
	if (rc != 0)
		op_finish(op, rc, NULL);
	else if (n < asked || op->left == 0)
		op_finish(op, 0, NULL);
	else if (pg->closing)
		op_finish(op, SKALD_ECANCELED, NULL);
	else
		list_send(pg, op);
}

static int pg_list_ids(void *state, const char *prefix, const char *after, uint64_t max,
                       skald_ids_fn on_ids, skald_done_fn done, void *arg)
{
	pg_t *pg = state;
	op_t *op = op_new(pg, OP_LIST, arg);
	if (op == NULL)
		return pg->closing ? SKALD_ECLOSED : SKALD_ENOMEM;
	op->u.list.cb = on_ids;
	op->done = done;
	op->left = max;
	if (prefix == NULL)
		prefix = "";
	op->u.list.prefix = strdup(prefix);
	op->u.list.after = strdup(after ? after : "");
	if (*prefix)
		op->u.list.upper = prefix_upper(prefix);
	if (!op->u.list.prefix || !op->u.list.after) {
		op_free(op);
		return SKALD_ENOMEM;
	}
	/* Strings the server cannot hold match no stored id. */
	if (max == 0 || !utf8_valid((const unsigned char *)prefix) ||
	    !utf8_valid((const unsigned char *)op->u.list.after))
		op_finish(op, 0, NULL);
	enqueue(pg, op);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Single-shot operations                                                    */

static int simple_op(pg_t *pg, enum op_kind kind, const char *pid, uint64_t seq, skald_done_fn done,
                     void *arg, op_t **out)
{
	op_t *op = op_new(pg, kind, arg);
	if (op == NULL || (op->pid = strdup(pid)) == NULL) {
		free(op);
		return pg->closing ? SKALD_ECLOSED : SKALD_ENOMEM;
	}
	op->done = done;
	op->a = seq;
	/* An id that is not UTF-8 was never stored: reads and deletions find
	 * nothing (the server would refuse the string). */
	if (!utf8_valid((const unsigned char *)pid))
		op_finish(op, kind == OP_SNAP_SAVE ? SKALD_EREJECTED : 0,
		          kind == OP_SNAP_SAVE
		                  ? "snapshot rejected: the persistence id is not UTF-8"
		                  : NULL);
	*out = op;
	return 0;
}

static int pg_highest(void *state, const char *pid, skald_seq_fn cb, void *arg)
{
	op_t *op;
	int rc = simple_op(state, OP_HIGHEST, pid, 0, NULL, arg, &op);
	if (rc == 0) {
		op->u.on_seq = cb;
		enqueue(state, op);
	}
	return rc;
}

static int pg_delete_to(void *state, const char *pid, uint64_t to, skald_done_fn cb, void *arg)
{
	op_t *op;
	int rc = simple_op(state, OP_DELETE_TO, pid, to, cb, arg, &op);
	if (rc == 0)
		enqueue(state, op);
	return rc;
}

static int pg_snapshot_save(void *state, skald_snapshot_t *snap, skald_done_fn cb, void *arg)
{
	pg_t *pg = state;
	op_t *op;
	int rc = simple_op(pg, OP_SNAP_SAVE, snap->persistence_id, snap->seq, cb, arg, &op);
	if (rc != 0)
		return rc;
	op->u.snap.snap = snap;
	size_t len;
	const char *why = NULL;
	if (!op->finished) {
		op->u.snap.text = encode(snap->data, &len, &why);
		if (op->u.snap.text == NULL)
			op_finish(op, SKALD_EREJECTED,
			          "snapshot of \"%s\" at seq %llu rejected: it %s",
			          snap->persistence_id, (unsigned long long)snap->seq, why);
		else if (snap->seq > INT64_MAXU)
			op_finish(op, SKALD_EREJECTED,
			          "snapshot of \"%s\" rejected: seq above 2^63-1 cannot be stored",
			          snap->persistence_id);
	}
	enqueue(pg, op);
	return 0;
}

static int pg_snapshot_load(void *state, const char *pid, uint64_t max_seq, skald_snapshot_fn cb,
                            void *arg)
{
	op_t *op;
	int rc = simple_op(state, OP_SNAP_LOAD, pid, max_seq, NULL, arg, &op);
	if (rc == 0) {
		op->u.snap.cb = cb;
		enqueue(state, op);
	}
	return rc;
}

static int pg_snapshot_delete(void *state, const char *pid, uint64_t seq, skald_done_fn cb,
                              void *arg)
{
	op_t *op;
	int rc = simple_op(state, OP_SNAP_DELETE, pid, seq, cb, arg, &op);
	if (rc == 0)
		enqueue(state, op);
	return rc;
}

static int pg_snapshot_delete_to(void *state, const char *pid, uint64_t max_seq, skald_done_fn cb,
                                 void *arg)
{
	op_t *op;
	int rc = simple_op(state, OP_SNAP_DELETE_TO, pid, max_seq, cb, arg, &op);
	if (rc == 0)
		enqueue(state, op);
	return rc;
}

static void snapshot_loaded(pg_t *pg, op_t *op, PGresult *res)
{
	if (PQntuples(res) == 0) {
		op_finish(op, 0, NULL);
		return;
	}
	json_t *data = decode(pg, res, 0, 2);
	if (data == NULL) {
		op_finish(
		        op, SKALD_EDECODE,
		        "snapshot of \"%s\" at seq %llu: stored data cannot be read as JSON (%s at "
		        "character %d)",
		        op->pid, (unsigned long long)u64_of(res, 0, 0), pg->decode_err.text,
		        pg->decode_err.position);
		pg->decode_failed = false;
		return;
	}
	op->u.snap.data = data;
	op->u.snap.seq = u64_of(res, 0, 0);
	op->u.snap.version = (int)i64_of(res, 0, 1);
	op->u.snap.timestamp = i64_of(res, 0, 3);
	op_finish(op, 0, NULL);
}

/* Sends the op's query, or finishes it when it needs none. */
static void start_op(pg_t *pg, op_t *op)
{
	char n1[24], n2[24], n3[16];
	op->started = true;
	switch (op->kind) {
	case OP_APPEND:
		if (op->u.append.ws == NULL && append_prepare(op) != 0) {
			for (size_t i = 0; i < op->u.append.n; i++)
				op->u.append.writes[i].status = SKALD_ENOMEM;
			op_finish(op, SKALD_ENOMEM, "out of memory preparing an append");
			return;
		}
		append_next(pg, op);
		return;
	case OP_READ:
		read_send(pg, op);
		return;
	case OP_READ_ALL:
		read_all_send(pg, op);
		return;
	case OP_LIST:
		list_send(pg, op);
		return;
	case OP_HIGHEST: {
		const char *v[1] = {op->pid};
		send_prepared(pg, "skald_highest", 1, v, NULL, NULL);
		return;
	}
	case OP_DELETE_TO:
	case OP_SNAP_LOAD:
	case OP_SNAP_DELETE:
	case OP_SNAP_DELETE_TO: {
		static const char *const names[] = {
		        [OP_DELETE_TO] = "skald_delete_to",
		        [OP_SNAP_LOAD] = "skald_snapshot_load",
		        [OP_SNAP_DELETE] = "skald_snapshot_delete",
		        [OP_SNAP_DELETE_TO] = "skald_snapshot_delete_to",
		};
		bound_text(n1, sizeof n1, op->a);
		const char *v[2] = {op->pid, n1};
		send_prepared(pg, names[op->kind], 2, v, NULL, NULL);
		return;
	}
	case OP_SNAP_SAVE: {
		skald_snapshot_t *s = op->u.snap.snap;
		bound_text(n1, sizeof n1, s->seq);
		snprintf(n3, sizeof n3, "%d", s->version);
		snprintf(n2, sizeof n2, "%lld", (long long)s->timestamp);
		const char *v[5] = {op->pid, n1, n3, op->u.snap.text, n2};
		send_prepared(pg, "skald_snapshot_save", 5, v, NULL, NULL);
		return;
	}
	}
}

/* The result of op's query arrived. */
static void op_result(pg_t *pg, op_t *op, PGresult *res)
{
	ExecStatusType st = PQresultStatus(res);
	bool ok = st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK;
	switch (op->kind) {
	case OP_APPEND:
		append_result(pg, op, res);
		return;
	case OP_READ:
		read_result(pg, op, res);
		return;
	case OP_READ_ALL:
		read_all_result(pg, op, res);
		return;
	case OP_LIST:
		list_result(pg, op, res);
		return;
	default:
		break;
	}
	if (!ok) {
		char m[400];
		result_message(pg, res, m, sizeof m);
		op_finish(op, status_of(res), "\"%s\": %s", op->pid, m);
		return;
	}
	if (op->kind == OP_HIGHEST) {
		op->a = PQntuples(res) ? u64_of(res, 0, 0) : 0;
		op_finish(op, 0, NULL);
	} else if (op->kind == OP_SNAP_LOAD) {
		snapshot_loaded(pg, op, res);
	} else {
		op_finish(op, 0, NULL);
	}
}

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
	/* Queued operations still run; then the connection closes. Never
	 * completes inside this call. */
	uv_idle_start(&pg->kick, on_kick);
}

static void pg_fini(void *state)
{
	pg_t *pg = state;
	while (pg->head) {
		op_t *op = pg->head;
		pg->head = op->next;
		op_free(op);
	}
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
        .append = pg_append,
        .read = pg_read,
        .highest = pg_highest,
        .delete_to = pg_delete_to,
        .snapshot_save = pg_snapshot_save,
        .snapshot_load = pg_snapshot_load,
        .snapshot_delete = pg_snapshot_delete,
        .snapshot_delete_to = pg_snapshot_delete_to,
        .read_all = pg_read_all,
        .list_ids = pg_list_ids,
        .migrate = skald__pg_migrate,
};

/* A constructor: see the declaration. A failure shows up as an unknown
 * scheme, with the list of the schemes that did register. */
__attribute__((constructor)) void skald__store_postgres_register(void)
{
	(void)skald_store_register(&postgres_store);
}
