/*
 * http/internal.h - what the files of the HTTP module share.
 *
 * Three kinds of objects, and who may touch them:
 *
 * - The server and its connections (struct conn): the loop thread only.
 * - The hub: what the loop shares with answering threads (the uv_async_t, the
 *   list of exchanges with queued output, the lock). It is reference counted
 *   (the server holds one reference, the open async one, every live exchange
 *   one), so that a handle answered after the server is gone still finds a
 *   lock to take and learns that its answer is to be dropped.
 * - The exchange (struct skald_http_res_s): one request and its response
 *   handle. The request part is written by the loop before the handler is
 *   called and is read-only afterwards. The answer is built by the one
 *   thread that holds the handle; the fields marked "hub lock" are shared.
 *   Its reference count (under the hub lock) has one reference for the
 *   connection (until the response ended or the connection closed), one for
 *   the application (until the final answer), one while it sits on the hub's
 *   pending list, and one per write in flight.
 */
#ifndef SKALD_HTTP_INTERNAL_H
#define SKALD_HTTP_INTERNAL_H

#include <http_parser.h>
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "skald/http.h"

/* A growable byte buffer. */
typedef struct skald__http_buf_s {
	char *p;
	size_t len, cap;
} skald__http_buf_t;

int skald__http_buf_add(skald__http_buf_t *b, const void *data, size_t len);
int skald__http_buf_printf(skald__http_buf_t *b, const char *fmt, ...)
#if defined(__GNUC__)
        __attribute__((format(printf, 2, 3)))
#endif
        ;
void skald__http_buf_free(skald__http_buf_t *b);

/* One piece of output, in the order it is to be written. */
typedef struct skald__http_out_s {
	struct skald__http_out_s *next;
	const char *ptr; /* data, or owned */
	size_t len;
	void *owned; /* a taken buffer, freed with the piece */
	char data[];
} skald__http_out_t;

/* A piece holding a copy of data (may be NULL with len 0 to fill later). */
skald__http_out_t *skald__http_out_new(const void *data, size_t len);
/* A piece that takes buf (freed with free) instead of copying it. */
skald__http_out_t *skald__http_out_take(void *buf, size_t len);
void skald__http_out_free_list(skald__http_out_t *o);

typedef struct skald__http_hub_s {
	uv_mutex_t lock;
	int refs;                                        /* hub lock */
	bool async_open;                                 /* hub lock: uv_async_send is allowed */
	bool stop_requested;                             /* hub lock: skald_http_stop was called */
	uv_async_t async;                                /* wakes the loop; closed by the loop */
	uv_thread_t loop_thread;                         /* set before the first handler runs */
	struct skald_http_res_s *pending, *pending_tail; /* hub lock */
	size_t max_stream_queue;                         /* constant */
	bool draining;                                   /* loop only */
	skald_http_server_t *srv; /* loop only; NULL once the server closed */
} skald__http_hub_t;

void skald__http_hub_unref(skald__http_hub_t *hub);
/* Writes every exchange's queued output to its connection. Loop thread. */
void skald__http_hub_drain(skald__http_hub_t *hub);

struct skald__http_conn_s;

struct skald_http_res_s {
	skald_http_request_t req; /* the public view, filled by the loop */
	skald__http_hub_t *hub;
	struct skald__http_conn_s *conn; /* loop only; NULL once detached */

	/* Request storage, loop-written before the handler runs. */
	skald__http_buf_t head; /* target, then names and values, NUL-ended */
	size_t *hdr_off;        /* 2 offsets per header into head */
	size_t hdr_count, hdr_cap;
	bool in_value; /* the parser's last header callback was a value */
	skald__http_buf_t body;
	skald_http_pair_t *pairs; /* headers, then query, then params */
	char *decoded;            /* storage of the decoded query and params */
	bool head_only;           /* a HEAD request: the body is never sent */
	bool keep_alive;          /* as decided at dispatch; loop-read */

	/* The answer, built by the thread holding the handle. */
	skald__http_buf_t extra; /* "Name: value\r\n" from skald_http_res_header */
	int phase;               /* 0 fresh, 1 streaming, 2 answered */
	bool chunked;            /* the stream is chunk-encoded */

	/* Shared, under hub->lock. */
	int refs;
	bool detached;    /* output is dropped: client gone, timed out, closed */
	bool started;     /* the head is queued */
	bool ended;       /* the end is queued */
	bool aborted;     /* the connection is to be cut */
	bool close_after; /* the connection closes after this response */
	bool on_pending;
	struct skald_http_res_s *pending_next;
	skald__http_out_t *outq, *outq_tail;
	size_t queued_bytes;
};

typedef skald_http_res_t skald__http_ex_t;

/* Creates an exchange with one reference (the connection's). */
skald__http_ex_t *skald__http_ex_new(skald__http_hub_t *hub);
/* Drops one reference, under the hub lock; frees at zero. */
void skald__http_ex_unref(skald__http_ex_t *ex);
/* Locks, drops a reference, unlocks: returns true if it was the last. */
bool skald__http_ex_unref_locked(skald__http_ex_t *ex);

/* Builds the bytes of a whole response (head, and body unless head_only).
 * ctype may be NULL; extra is "Name: value\r\n" lines or NULL. Returns NULL
 * when out of memory. */
skald__http_out_t *skald__http_format(int status, const char *ctype, const char *extra,
                                      size_t extra_len, const void *body, size_t len,
                                      bool head_only, bool close);

/* A whole error response {"error", "code"} built on the loop, for the
 * answers the server gives by itself. */
skald__http_out_t *skald__http_format_error(int status, const char *code, const char *msg,
                                            bool head_only, bool close);

/* ------------------------------------------------------------------------ */
/* Routes                                                                    */

typedef struct skald__http_route_s skald__http_route_t;

typedef struct skald__http_match_s {
	const skald__http_route_t *route; /* NULL: no route */
	int status;                       /* 404 or 405 when route is NULL */
	char allow[128];                  /* for 405 */
} skald__http_match_t;

void skald__http_routes_free(skald__http_route_t *routes);
int skald__http_route_add(skald__http_route_t **routes, const char *method, const char *pattern,
                          skald_http_handler_fn handler, void *arg);
void skald__http_route_find(const skald__http_route_t *routes, const char *method, const char *path,
                            skald__http_match_t *m);
skald_http_handler_fn skald__http_route_handler(const skald__http_route_t *r, void **arg);
/* Fills ex->req's query and params (percent-decoded) for route r (may be
 * NULL). Returns 0 or SKALD_ENOMEM. */
int skald__http_decode(skald__http_ex_t *ex, const skald__http_route_t *r);

/* ------------------------------------------------------------------------ */
/* The server and connections (loop thread)                                  */

typedef struct skald__http_conn_s skald__http_conn_t;

struct skald_http_server_s {
	skald_http_config_t cfg;
	char host[64];
	struct sockaddr_storage addr;
	uv_loop_t *loop;
	uv_tcp_t *listener; /* its own allocation, freed by its close callback */
	skald__http_hub_t *hub;
	skald__http_route_t *routes;
	skald__http_conn_t *conns; /* every open connection */
	unsigned nconns;
	int port;
	bool started, closing;
	int open_handles; /* listener, async and connections being closed */
	void (*close_cb)(skald_http_server_t *srv, void *arg);
	void *close_arg;
	/* skald_http_start_thread */
	bool threaded;
	uv_thread_t thread;
	uv_loop_t own_loop;
	uv_sem_t ready;
	int start_err;
};

/* Accepts a connection from the listener. */
void skald__http_conn_accept(skald_http_server_t *srv);
/* Closes a connection at once; its exchange is detached. */
void skald__http_conn_close(skald__http_conn_t *c);
/* Writes output of exchange ex (may be NULL) to c; takes the list. */
void skald__http_conn_write(skald__http_conn_t *c, skald__http_ex_t *ex, skald__http_out_t *out);
/* The response of c's exchange has started (stop the request timer). */
void skald__http_conn_started(skald__http_conn_t *c);
/* The response of c's exchange is all queued: next request, or close. */
void skald__http_conn_finish(skald__http_conn_t *c);
/* One handle of the server finished closing. */
void skald__http_server_handle_closed(skald_http_server_t *srv);

#endif /* SKALD_HTTP_INTERNAL_H */
