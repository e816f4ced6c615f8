/*
 * stores/postgres/engine.h - the PostgreSQL store's handle, its operations,
 * and what the store's files share. Never installed.
 *
 * Files (README.md explains the design):
 *   store.c       open, close, the store table and its registration
 *   conn.c        the connection engine and the operation in hand
 *   statements.c  the prepared statements; messages, encodings, parameters
 *   append.c      append
 *   read.c        read (one persistence id)
 *   order.c       read_all (the global order)
 *   ids.c         list_ids
 *   ops.c         start; highest, delete_to, snapshots; the dispatch of
 *                 every operation's statement and result
 */
#ifndef SKALD_STORES_POSTGRES_ENGINE_H
#define SKALD_STORES_POSTGRES_ENGINE_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "skald/store.h"
#include "stores/postgres/pg.h"

/* The largest value of a bigint parameter. */
#define INT64_MAXU ((uint64_t)INT64_MAX)

enum conn_state {
	C_DOWN,       /* no connection */
	C_RESOLVING,  /* uv_getaddrinfo in flight */
	C_CONNECTING, /* PQconnectPoll */
	C_SETUP,      /* schema check, then prepares */
	C_READY,
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

/* The store's working state for the operation in hand (the front starts one
 * at a time): what its statements need between them. */
typedef struct op_s {
	skald_op_t *sop; /* the front's object: arguments, results */
	skald_op_kind_t kind;
	bool started;
	bool finished; /* status is final; complete when at the head */
	bool waiting;  /* read_all: waiting on the timer */
	int status;
	char *msg;       /* message for skald_journal_set_errmsg, or NULL */
	const char *pid; /* sop's */
	uint64_t a, b;   /* per kind: (from, to), (after, -), seq bounds */
	uint64_t left;   /* streamed reads: events still wanted */
	bool first_page;
	bool prefetched; /* a page query is in flight for a later batch */
	int stop_rc;     /* streamed: on_events asked to stop */
	bool stopping;
	union {
		struct {
			skald_write_t **writes;
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
		struct {
			skald_snapshot_t *snap; /* save: the caller's */
			char *text;
			json_t *data; /* load: what was found, owned */
			uint64_t seq;
			int version;
			int64_t timestamp;
		} snap;
		struct {
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
	op_t *op; /* the operation in hand, or NULL; in slot */
	op_t slot;
	skald_event_t *evbuf;
	json_error_t decode_err; /* why the first failed decode of a batch failed */
	bool decode_failed;      /* decode_err is set; reset with each batch */
	skald_persistence_id_t *idbuf;
	bool closing, close_started;
	void (*close_done)(skald_journal_t *j);
};

/* Sets op's final status and message (printf-style; NULL: none). */
void skald__pg_op_finish(op_t *op, int status, const char *fmt, ...);

/* The message of the connection, scrubbed, on one line. */
void skald__pg_conn_message(pg_t *pg, char *buf, size_t len);

const char *skald__pg_sqlstate_of(const PGresult *res);

/* "MESSAGE (SQLSTATE XXXXX)" of a failed result. */
void skald__pg_result_message(pg_t *pg, const PGresult *res, char *buf, size_t len);

/* The Skald code for a failed statement: a missing table, schema or function
 * means the schema is not there (or not complete). */
int skald__pg_status_of(const PGresult *res);

uint64_t skald__pg_u64_of(const PGresult *res, int row, int col);

int64_t skald__pg_i64_of(const PGresult *res, int row, int col);

/* A uint64 bound for a bigint parameter: the store never holds more. */
void skald__pg_bound_text(char *buf, size_t len, uint64_t v);

int skald__pg_utf8_valid(const unsigned char *s);

/* Encodes data for the journal: compact JSON of an object that jsonb can
 * hold. NULL when it cannot be stored; *why says why. */
char *skald__pg_encode(const json_t *data, size_t *len, const char **why);

/* The header of a one-dimensional array of n elements of type oid
 * (PostgreSQL's array_send format). */
void skald__pg_arr_start(skald__pg_buf_t *b, uint32_t oid, size_t n);

void skald__pg_arr_int8(skald__pg_buf_t *b, uint64_t v);

void skald__pg_arr_int4(skald__pg_buf_t *b, uint32_t v);

void skald__pg_arr_text(skald__pg_buf_t *b, const char *s, size_t len);

extern const char skald__pg_schema_check_sql[];

extern const char skald__pg_prepare_sql[];

int skald__pg_send_prepared(pg_t *pg, const char *name, int n, const char *const *values,
                            const int *lengths, const int *formats);

/* The operation in hand                                                    */

/* Releases what op holds, once it is finished. */
void skald__pg_op_clear(op_t *op);

void skald__pg_pump(pg_t *pg);

void skald__pg_on_kick(uv_idle_t *h);

void skald__pg_kick(pg_t *pg);

/* Encodes every event, rejects what cannot be stored, and numbers the
 * rounds. Returns 0 or SKALD_ENOMEM. */
int skald__pg_append_prepare(op_t *op);

/* Sends the next statement of the append, or finishes it. */
void skald__pg_append_next(pg_t *pg, op_t *op);

void skald__pg_append_result(pg_t *pg, op_t *op, PGresult *res);

/* Decodes JSON text of a result field into an owned object; NULL with
 * pg->decode_err set when it is not JSON. */
json_t *skald__pg_decode(pg_t *pg, const PGresult *res, int row, int col);

/* Hands events[0..n) to on_events and releases their data. A decode
 * failure stops the read. Returns on_events' code, or the failure's. */
int skald__pg_deliver(pg_t *pg, op_t *op, size_t n);

void skald__pg_read_send(pg_t *pg, op_t *op);

void skald__pg_read_result(pg_t *pg, op_t *op, PGresult *res);

void skald__pg_read_all_send(pg_t *pg, op_t *op);

void skald__pg_read_all_result(pg_t *pg, op_t *op, PGresult *res);

void skald__pg_list_send(pg_t *pg, op_t *op);

void skald__pg_list_result(pg_t *pg, op_t *op, PGresult *res);

/* Prepares a list_ids op: its bounds as the statements want them. Returns 0
 * or SKALD_ENOMEM. */
int skald__pg_list_prepare(op_t *op);

/* The store's start member (store.h): takes op in hand and runs it. */
void skald__pg_start(void *state, skald_op_t *sop);

/* Sends the op's query, or finishes it when it needs none. */
void skald__pg_start_op(pg_t *pg, op_t *op);

/* The result of op's query arrived. */
void skald__pg_op_result(pg_t *pg, op_t *op, PGresult *res);

#endif /* SKALD_STORES_POSTGRES_ENGINE_H */
