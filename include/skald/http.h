/*
 * skald/http.h - the HTTP/1.1 server module (libskald-http).
 *
 * One small server on libuv for the game API, /metrics and the history
 * browser. It knows nothing of actors: an application registers routes, and
 * its handlers hand requests to actors and answer when the actors reply.
 * Requests are parsed by libhttp-parser. Link with `-lskald-http
 * -lhttp_parser` (see docs/HTTP.md); programs that do not serve HTTP never
 * link it.
 *
 * Threads. The server runs on one libuv loop: either a loop the caller gives
 * (skald_http_start) or a loop on a thread of its own (skald_http_start_thread).
 * Every handler is called on that loop's thread. A handler answers through its
 * response handle (skald_http_res_t), either at once or later from ANY thread:
 * answers made off the loop thread are queued under a lock and picked up by
 * the loop through a uv_async_t.
 *
 * Lifetimes. A response handle belongs to the application from the moment
 * the handler is called until its final answer (skald_http_respond*,
 * skald_http_stream_end, skald_http_abort), each of which consumes it. Every
 * handle must get exactly one final answer; using it afterwards is a
 * use-after-free, like using freed memory. The handle stays valid when the
 * client disconnects, when the request timeout has answered for it, and even
 * after the server is closed and freed: the answer is then dropped, and the
 * handle freed. A handle that is never answered is leaked (its client is not
 * left hanging: see request_timeout_ms).
 *
 * Requests are answered in the order they arrived on their connection:
 * pipelined requests are read and dispatched one at a time, the next once the
 * previous response has been handed to the socket.
 *
 * Errors: functions return 0 or a negative code from skald/error.h; libuv's
 * codes (UV_EADDRINUSE, ...) pass through from bind and listen.
 */
#ifndef SKALD_HTTP_H
#define SKALD_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <uv.h>

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct skald_http_server_s skald_http_server_t;
typedef struct skald_http_res_s skald_http_res_t;

/* ------------------------------------------------------------------------ */
/* Configuration                                                             */

/*
 * Limits and addresses. Fill with skald_http_config_init, then change
 * fields. A zero limit means the default, never "unlimited".
 */
typedef struct skald_http_config_s {
	/* IPv4 or IPv6 address to bind. Default "127.0.0.1". Borrowed during
	 * skald_http_server_new only. */
	const char *host;
	/* TCP port; 0 lets the kernel choose (read it with skald_http_port). */
	int port;
	/* Request line plus headers, in bytes. Larger: 431 and close.
	 * Default 16 KiB. */
	size_t max_header_bytes;
	/* Request body, in bytes (Content-Length or the sum of chunks).
	 * Larger: 413 and close, before the body is read when its length is
	 * announced. Default 1 MiB. */
	size_t max_body_bytes;
	/* Open connections at once. One more is answered 503 and closed.
	 * Default 1024. */
	unsigned max_connections;
	/* From the first byte of a request to the end of its headers. Past it:
	 * 408 and close (slow-header clients). Default 10 s. */
	unsigned header_timeout_ms;
	/* From the end of the headers to the end of the body. Past it: 408 and
	 * close. Default 30 s. */
	unsigned body_timeout_ms;
	/* A connection that waits for a request (a new one, or the next on a
	 * kept-alive connection) is closed silently after this. Default 30 s. */
	unsigned idle_timeout_ms;
	/* From the call of the handler to the start of its answer (a response,
	 * or the head of a stream). Past it the server answers 503 with
	 * {"error": ..., "code": "timeout"} and the connection carries on; the
	 * handle stays the application's, and its late answer is dropped.
	 * Default 30 s. A started stream has no time limit. */
	unsigned request_timeout_ms;
	/* Bytes a stream may have queued towards a slow client before
	 * skald_http_stream_send refuses more (SKALD_ETOOMANY). Default 1 MiB. */
	size_t max_stream_queue_bytes;
} skald_http_config_t;

/* Fills cfg with the defaults above. */
void skald_http_config_init(skald_http_config_t *cfg);

/* ------------------------------------------------------------------------ */
/* Requests                                                                  */

/* A name and a value, both NUL-terminated. */
typedef struct skald_http_pair_s {
	const char *name;
	const char *value;
} skald_http_pair_t;

/*
 * A parsed request. Read-only; every pointer in it stays valid until the
 * final answer of its response handle, and may be read from any thread that
 * holds the handle.
 */
typedef struct skald_http_request_s {
	/* "GET", "POST", ... */
	const char *method;
	/* The request target as received, e.g. "/games/7?verbose=1". */
	const char *target;
	/* The path of the target, not decoded, without the query: "/games/7". */
	const char *path;
	/* The query parameters in order, names and values percent-decoded and
	 * '+' read as a space. A name without '=' has the value "". */
	const skald_http_pair_t *query;
	size_t query_count;
	/* The route's parameters (":id", "*rest"), percent-decoded. */
	const skald_http_pair_t *params;
	size_t param_count;
	/* The headers in order, as received. */
	const skald_http_pair_t *headers;
	size_t header_count;
	/* The body, de-chunked, followed by a NUL that body_len does not count
	 * (so that a text body is a C string). Never NULL. */
	const char *body;
	size_t body_len;
	/* The HTTP version, e.g. 1 and 1. */
	unsigned short http_major, http_minor;
} skald_http_request_t;

/* The value of the first header named name (ASCII case-insensitive), or NULL.
 * Borrowed from req. */
const char *skald_http_header(const skald_http_request_t *req, const char *name);

/* The value of the first query parameter named name (exact), or NULL. */
const char *skald_http_query(const skald_http_request_t *req, const char *name);

/* The value of the route parameter named name (without ':' or '*'), or NULL. */
const char *skald_http_param(const skald_http_request_t *req, const char *name);

/* The request that res answers. Valid until res's final answer. */
const skald_http_request_t *skald_http_request(const skald_http_res_t *res);

/*
 * The body of res's request parsed as JSON. Returns a new reference (the
 * caller owns it), or NULL after answering res with 400
 * {"error": "...", "code": "bad_json"} (malformed or empty body): res is then
 * consumed and the caller must not answer it again.
 */
json_t *skald_http_body_json(skald_http_res_t *res);

/* ------------------------------------------------------------------------ */
/* Handlers and routes                                                       */

/*
 * A route's handler. Called on the server's loop thread with the request and
 * its response handle, which the handler owns from now on (see the top of
 * this file). arg is the pointer given to skald_http_route.
 */
typedef void (*skald_http_handler_fn)(const skald_http_request_t *req, skald_http_res_t *res,
                                      void *arg);

/*
 * Creates a server (not yet listening). cfg is read during the call only;
 * NULL means the defaults. On success *out owns a server that is freed with
 * skald_http_server_free. Errors: SKALD_EINVAL (host is not an IP address),
 * SKALD_ENOMEM.
 */
int skald_http_server_new(skald_http_server_t **out, const skald_http_config_t *cfg);

/*
 * Registers a handler for method and pattern, before the server starts.
 * method is an HTTP method ("GET", "POST", ...) or "*" for any. pattern is a
 * path of '/'-separated segments: a literal ("games"), a parameter (":id",
 * which matches one non-empty segment), or, as the last segment only, a rest
 * parameter ("*path", which matches the rest of the path, possibly empty).
 *
 * Lookup: of all routes whose pattern matches the path, the most specific
 * wins, compared segment by segment from the left: a literal beats a
 * parameter, which beats a rest parameter; between equally specific patterns
 * the first registered wins. A matching pattern with no route for the method
 * is answered 405 with an Allow header; no matching pattern, 404. A HEAD
 * request without a HEAD route is handled by the GET route, and the server
 * sends the head of its answer without the body.
 *
 * The strings are copied. Errors: SKALD_EINVAL (malformed method or pattern,
 * NULL handler), SKALD_EBUSY (the server has started), SKALD_ENOMEM.
 */
int skald_http_route(skald_http_server_t *srv, const char *method, const char *pattern,
                     skald_http_handler_fn handler, void *arg);

/*
 * Serves GET and HEAD of path (a literal pattern) from memory: data and len
 * with content_type, an ETag and `Cache-Control: no-cache`; a matching
 * If-None-Match gets 304. data is borrowed and must outlive the server (make
 * it static const, e.g. an embedded page); the strings are copied. Errors as
 * skald_http_route.
 */
int skald_http_route_asset(skald_http_server_t *srv, const char *path, const char *content_type,
                           const void *data, size_t len);

/*
 * Embeds the file at path (as the compiler is run: relative to its working
 * directory) in the program as read-only bytes from sym to sym_end, followed
 * by a NUL that the length leaves out: a page for skald_http_route_asset
 * that ships inside the binary. At file scope:
 *
 *     __asm__(SKALD_HTTP_EMBED(page_html, "web/index.html"));
 *
 * and where it is used:
 *
 *     extern const char page_html[], page_html_end[];
 *     skald_http_route_asset(srv, "/", "text/html; charset=utf-8", page_html,
 *                            (size_t)(page_html_end - page_html));
 *
 * The assembler's .incbin reads the file; dependency files (-MMD) do not
 * see it, so make the object depend on the file. GNU as (gcc, clang; ELF).
 */
#define SKALD_HTTP_EMBED(sym, path)                                                                \
	".pushsection .rodata\n"                                                                   \
	".global " #sym "\n"                                                                       \
	".global " #sym "_end\n"                                                                   \
	".balign 16\n" #sym ":\n"                                                                  \
	".incbin \"" path "\"\n" #sym "_end:\n"                                                    \
	".byte 0\n"                                                                                \
	".popsection\n"

/*
 * Renders a body on each request: writes a malloc'ed buffer into *out (the
 * server frees it) and its length into *len, and returns 0, or a negative
 * code (the request is then answered 500). Called on the server's loop
 * thread; arg is the pointer given to skald_http_route_metrics.
 */
typedef int (*skald_http_render_fn)(void *arg, char **out, size_t *len);

/*
 * Serves GET and HEAD of path (a literal pattern, usually "/metrics") with
 * whatever render(arg) produces, as Prometheus' text exposition format
 * (Content-Type "text/plain; version=0.0.4; charset=utf-8") and
 * `Cache-Control: no-store`. This module does not know where the text comes
 * from: with libskald, skald_metrics_scrape (skald/metrics.h) is such a
 * callback, so that neither library depends on the other. arg is borrowed
 * and must outlive the server. Errors as skald_http_route (SKALD_EINVAL also
 * for a NULL render).
 */
int skald_http_route_metrics(skald_http_server_t *srv, const char *path,
                             skald_http_render_fn render, void *arg);

/* ------------------------------------------------------------------------ */
/* Running                                                                   */

/*
 * Binds, listens and serves on loop. Call on the thread that runs loop (or
 * before it runs), once. Returns when listening: skald_http_port is then
 * valid. Errors: libuv's (UV_EADDRINUSE, UV_EACCES, ...), SKALD_EBUSY
 * (already started). On failure the server can only be freed.
 */
int skald_http_start(skald_http_server_t *srv, uv_loop_t *loop);

/*
 * Closes the listener and every connection, on the loop thread; cb (may be
 * NULL) runs on that thread once every handle of the server is closed, after
 * which skald_http_server_free may be called (not before). Unanswered handles
 * stay valid (their answers are dropped). Only for skald_http_start.
 */
void skald_http_close(skald_http_server_t *srv, void (*cb)(skald_http_server_t *srv, void *arg),
                      void *arg);

/*
 * Starts a thread with a loop of its own and serves there; returns once
 * listening or failed. Errors as skald_http_start, plus UV_E* from creating
 * the thread.
 */
int skald_http_start_thread(skald_http_server_t *srv);

/*
 * Stops a server started by skald_http_start_thread: closes everything,
 * waits for its thread to finish. Call from any thread except the server's
 * own (a handler must not call it). Afterwards skald_http_server_free.
 */
void skald_http_stop(skald_http_server_t *srv);

/* The port the server listens on (the kernel's choice for port 0), or 0
 * before it started. */
int skald_http_port(const skald_http_server_t *srv);

/*
 * Frees the server: never started, or after skald_http_close's callback, or
 * after skald_http_stop. Unanswered handles stay valid; what they share
 * with the server is freed with the last of them.
 */
void skald_http_server_free(skald_http_server_t *srv);

/* ------------------------------------------------------------------------ */
/* Answering (any thread)                                                    */

/*
 * Adds a header to the answer of res (before its final answer or stream
 * start). name and value are copied. Content-Length, Transfer-Encoding,
 * Connection and Date are the server's and refused. Errors: SKALD_EINVAL
 * (a name that is not an HTTP token, a value with CR, LF or NUL, a header
 * the server sets, or the head is already sent), SKALD_ENOMEM. On error
 * nothing is added and res is still the caller's.
 */
int skald_http_res_header(skald_http_res_t *res, const char *name, const char *value);

/*
 * The final answer: status (100-599 except 1xx, 204 and 304 carry no body),
 * content_type (may be NULL for no Content-Type), and body of len bytes,
 * copied. Consumes res whatever it returns, so that an answer can never be
 * lost or given twice. Returns 0 when the answer was queued or dropped because
 * the client has gone (both are success for the caller), SKALD_EINVAL for an
 * invalid status or content type (500 is sent instead), SKALD_ENOMEM (the
 * connection is closed instead).
 */
int skald_http_respond(skald_http_res_t *res, int status, const char *content_type,
                       const void *body, size_t len);

/* As skald_http_respond, but takes body (malloc'ed, freed with free) instead
 * of copying it, whatever it returns. */
int skald_http_respond_take(skald_http_res_t *res, int status, const char *content_type, void *body,
                            size_t len);

/* Answers with the compact JSON of body (Content-Type application/json).
 * Steals body, whatever it returns. Returns as skald_http_respond, plus
 * SKALD_EENCODE (body could not be encoded: 500 is sent). */
int skald_http_respond_json(skald_http_res_t *res, int status, json_t *body);

/*
 * Answers {"error": MESSAGE, "code": code} with status, MESSAGE formatted
 * from fmt like printf. code is a short machine-readable word ("not_found",
 * "illegal_move"). Consumes res; returns as skald_http_respond.
 */
int skald_http_respond_error(skald_http_res_t *res, int status, const char *code, const char *fmt,
                             ...)
#if defined(__GNUC__)
        __attribute__((format(printf, 4, 5)))
#endif
        ;

/* Closes the connection of res without an answer (the client sees it cut)
 * and consumes res. For handlers that cannot answer at all. */
void skald_http_abort(skald_http_res_t *res);

/*
 * Starts a streamed answer: sends the head with status and content_type
 * (e.g. "application/jsonl") and `Transfer-Encoding: chunked` (to an HTTP/1.0
 * client, a body delimited by closing the connection). res stays the
 * caller's until skald_http_stream_end. Returns 0, or SKALD_ECLOSED when the
 * client has gone (call skald_http_stream_end all the same), SKALD_EINVAL
 * (invalid status or content type, or already started: nothing sent),
 * SKALD_ENOMEM.
 */
int skald_http_stream_start(skald_http_res_t *res, int status, const char *content_type);

/*
 * Sends len bytes (copied) as one chunk of a started stream; len 0 sends
 * nothing. Returns 0, SKALD_ECLOSED once the client has gone (stop
 * producing and end the stream), SKALD_ETOOMANY when more than
 * max_stream_queue_bytes wait for a slow client (nothing queued: drop or
 * retry later), SKALD_EINVAL (stream not started), SKALD_ENOMEM.
 */
int skald_http_stream_send(skald_http_res_t *res, const void *data, size_t len);

/* Sends the compact JSON of line followed by "\n" (one JSON line). Steals
 * line. Returns as skald_http_stream_send, plus SKALD_EENCODE. */
int skald_http_stream_send_json(skald_http_res_t *res, json_t *line);

/* Ends a started stream (the final chunk) and consumes res. A stream that is
 * not started is answered 500 first. Returns 0 or SKALD_ENOMEM (the
 * connection is closed instead); res is consumed either way. */
int skald_http_stream_end(skald_http_res_t *res);

/* True once the client of res has gone, or the request timeout answered for
 * it: whatever res still sends is dropped. Any thread. */
bool skald_http_res_closed(const skald_http_res_t *res);

/* The reason phrase of status ("Not Found"), or "Unknown". Borrowed. */
const char *skald_http_status_text(int status);

#ifdef __cplusplus
}
#endif
#endif /* SKALD_HTTP_H */
