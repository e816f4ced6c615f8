/*
 * http/conn.c - one client connection: reading, parsing with libhttp-parser,
 * dispatching to handlers, writing, timeouts and the limits.
 *
 * A connection parses one request at a time. When the parser completes a
 * message it is paused (http_parser_pause), so that bytes of pipelined
 * requests after it stay in the read buffer until the response has been
 * handed to the socket; then parsing resumes. Answers therefore leave in
 * the order the requests came, and the buffered input is bounded by the
 * read buffer (reading stops while it is full).
 *
 * One timer per connection serves every phase: idle (waiting for a request),
 * head (first byte to end of headers), body, wait (the handler has not
 * started its answer), linger (after an answer that closes the connection).
 * The timer is armed when the phase changes, never on a read, so that a
 * client trickling bytes cannot keep a phase alive.
 */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/internal.h"

#define RBUF_SIZE 16384
/* After a response that closes the connection, how long unread request bytes
 * are read and thrown away, so that closing does not reset the connection
 * and destroy the response before the client read it. */
#define LINGER_MS 2000

enum { C_IDLE, C_HEAD, C_BODY, C_WAIT, C_LINGER };
enum { H_URL, H_FIELD, H_VALUE };

struct skald__http_conn_s {
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_shutdown_t shutdown;
	skald_http_server_t *srv;
	skald__http_conn_t *prev, *next;
	http_parser parser;
	skald__http_ex_t *ex; /* being parsed, or dispatched and not yet answered */
	int state;
	int hstate;      /* which part of the head the parser is in */
	bool ready;      /* the parser completed a message */
	bool dispatched; /* ex went to its handler */
	bool responding; /* ex's answer has started */
	bool closing, processing, again, reading, write_blocked;
	int err_status; /* an answer the parse callbacks decided on */
	const char *err_code, *err_msg;
	size_t head_bytes;
	int open_handles;
	size_t roff, rlen;
	char rbuf[RBUF_SIZE];
};

typedef struct {
	uv_write_t req;
	skald__http_conn_t *c;
	skald__http_ex_t *ex;
	skald__http_out_t *out;
	size_t bytes;
	uv_buf_t bufs[];
} wreq_t;

static void conn_process(skald__http_conn_t *c);
static void conn_shutdown(skald__http_conn_t *c);
static void on_timer(uv_timer_t *t);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void update_reading(skald__http_conn_t *c);

static void set_state(skald__http_conn_t *c, int state)
{
	const skald_http_config_t *cfg = &c->srv->cfg;
	unsigned ms = state == C_IDLE   ? cfg->idle_timeout_ms
	              : state == C_HEAD ? cfg->header_timeout_ms
	              : state == C_BODY ? cfg->body_timeout_ms
	              : state == C_WAIT ? cfg->request_timeout_ms
	                                : cfg->idle_timeout_ms; /* until the shutdown is written */
	c->state = state;
	uv_timer_start(&c->timer, on_timer, ms, 0);
}

/* ------------------------------------------------------------------------ */
/* Closing                                                                   */

static void on_handle_closed(uv_handle_t *h)
{
	skald__http_conn_t *c = h->data;
	if (--c->open_handles > 0)
		return;
	skald_http_server_t *srv = c->srv;
	free(c);
	skald__http_server_handle_closed(srv);
}

/* Lets go of c's exchange: its answer, if any is still to come, is dropped. */
static void drop_exchange(skald__http_conn_t *c)
{
	skald__http_ex_t *ex = c->ex;
	if (ex == NULL)
		return;
	c->ex = NULL;
	c->dispatched = c->responding = false;
	uv_mutex_lock(&ex->hub->lock);
	ex->detached = true;
	uv_mutex_unlock(&ex->hub->lock);
	ex->conn = NULL;
	skald__http_ex_unref(ex);
}

void skald__http_conn_close(skald__http_conn_t *c)
{
	if (c->closing)
		return;
	c->closing = true;
	drop_exchange(c);
	skald_http_server_t *srv = c->srv;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	srv->nconns--;
	uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
	uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	skald__http_conn_t *c = req->data;
	if (status < 0 || c->closing) {
		skald__http_conn_close(c);
		return;
	}
	/* Everything is written: give the client a moment to read it. */
	uv_timer_start(&c->timer, on_timer, LINGER_MS, 0);
}

/* Closes c gracefully after what is queued: no more requests are read. */
static void conn_shutdown(skald__http_conn_t *c)
{
	if (c->closing || c->state == C_LINGER)
		return;
	drop_exchange(c);
	set_state(c, C_LINGER);
	c->roff = c->rlen = 0;
	c->shutdown.data = c;
	if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_shutdown) != 0)
		skald__http_conn_close(c);
	else
		update_reading(c);
}

/* Answers an error of the server's own and closes the connection. */
static void conn_fail(skald__http_conn_t *c, int status, const char *code, const char *msg)
{
	/* The connection closes after this answer, so a body is harmless even
	 * to a HEAD request, and it says what went wrong. */
	drop_exchange(c);
	skald__http_out_t *out = skald__http_format_error(status, code, msg, false, true);
	if (out == NULL) {
		skald__http_conn_close(c);
		return;
	}
	skald__http_conn_write(c, NULL, out);
	conn_shutdown(c);
}

/* ------------------------------------------------------------------------ */
/* Writing                                                                   */

static void on_write(uv_write_t *req, int status)
{
	wreq_t *w = (wreq_t *)req;
	skald__http_conn_t *c = w->c;
	if (w->ex != NULL) {
		uv_mutex_lock(&w->ex->hub->lock);
		w->ex->queued_bytes -= w->bytes;
		uv_mutex_unlock(&w->ex->hub->lock);
		skald__http_ex_unref(w->ex);
	}
	skald__http_out_free_list(w->out);
	free(w);
	if (status < 0) {
		skald__http_conn_close(c);
	} else if (c->write_blocked && !c->closing) {
		c->write_blocked = false;
		conn_process(c);
	}
}

void skald__http_conn_write(skald__http_conn_t *c, skald__http_ex_t *ex, skald__http_out_t *out)
{
	unsigned n = 0;
	size_t bytes = 0;
	for (skald__http_out_t *o = out; o != NULL; o = o->next) {
		n++;
		bytes += o->len;
	}
	wreq_t *w = c->closing || n == 0 ? NULL : malloc(sizeof *w + n * sizeof(uv_buf_t));
	if (w == NULL) {
		skald__http_out_free_list(out);
		if (n > 0)
			skald__http_conn_close(c);
		return;
	}
	w->c = c;
	w->ex = ex;
	w->out = out;
	w->bytes = bytes;
	unsigned i = 0;
	for (skald__http_out_t *o = out; o != NULL; o = o->next)
		w->bufs[i++] = uv_buf_init((char *)o->ptr, (unsigned)o->len);
	if (ex != NULL) {
		uv_mutex_lock(&ex->hub->lock);
		ex->refs++;
		uv_mutex_unlock(&ex->hub->lock);
	}
	int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, w->bufs, n, on_write);
	if (rc != 0)
		on_write(&w->req, rc);
}

void skald__http_conn_started(skald__http_conn_t *c)
{
	if (c->responding || c->state != C_WAIT)
		return;
	c->responding = true;
	uv_timer_stop(&c->timer);
}

void skald__http_conn_finish(skald__http_conn_t *c)
{
	skald__http_ex_t *ex = c->ex;
	uv_mutex_lock(&ex->hub->lock);
	bool keep = ex->keep_alive && !ex->close_after;
	uv_mutex_unlock(&ex->hub->lock);
	c->ex = NULL;
	c->dispatched = c->responding = false;
	ex->conn = NULL;
	skald__http_ex_unref(ex);
	if (!keep || c->srv->closing) {
		conn_shutdown(c);
		return;
	}
	set_state(c, C_IDLE);
	conn_process(c);
}

/* ------------------------------------------------------------------------ */
/* Timeouts                                                                  */

/* The handler did not start its answer in time: answer 503 for it. */
static void request_timed_out(skald__http_conn_t *c)
{
	skald__http_ex_t *ex = c->ex;
	uv_mutex_lock(&ex->hub->lock);
	bool started = ex->started;
	if (!started)
		ex->detached = true;
	uv_mutex_unlock(&ex->hub->lock);
	if (started)
		return; /* the answer is on its way through the hub */
	skald__http_out_t *out =
	        skald__http_format_error(503, "timeout", "the request was not answered in time",
	                                 ex->head_only, !ex->keep_alive);
	if (out == NULL) {
		skald__http_conn_close(c);
		return;
	}
	skald__http_conn_write(c, NULL, out);
	skald__http_conn_finish(c);
}

static void on_timer(uv_timer_t *t)
{
	skald__http_conn_t *c = t->data;
	switch (c->state) {
	case C_HEAD:
		conn_fail(c, 408, "timeout", "the request's headers did not arrive in time");
		break;
	case C_BODY:
		conn_fail(c, 408, "timeout", "the request's body did not arrive in time");
		break;
	case C_WAIT:
		if (!c->responding && c->ex != NULL)
			request_timed_out(c);
		break;
	default: /* idle, or lingering after the last answer */
		skald__http_conn_close(c);
		break;
	}
}

/* ------------------------------------------------------------------------ */
/* Parsing                                                                   */

static int parse_error(skald__http_conn_t *c, int status, const char *code, const char *msg)
{
	c->err_status = status;
	c->err_code = code;
	c->err_msg = msg;
	return -1;
}

static int on_message_begin(http_parser *p)
{
	skald__http_conn_t *c = p->data;
	skald__http_ex_t *ex = skald__http_ex_new(c->srv->hub);
	if (ex == NULL)
		return parse_error(c, 503, "no_memory", "out of memory");
	ex->conn = c;
	c->ex = ex;
	c->hstate = H_URL;
	c->head_bytes = 0;
	set_state(c, C_HEAD);
	return 0;
}

static int head_add(skald__http_conn_t *c, const char *at, size_t len)
{
	c->head_bytes += len;
	if (c->head_bytes > c->srv->cfg.max_header_bytes)
		return parse_error(c, 431, "headers_too_large",
		                   "the request line and headers are too large");
	if (skald__http_buf_add(&c->ex->head, at, len) != 0)
		return parse_error(c, 503, "no_memory", "out of memory");
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
	return head_add(p->data, at, len);
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
	skald__http_conn_t *c = p->data;
	skald__http_ex_t *ex = c->ex;
	if (c->hstate != H_FIELD) {
		/* A new header: end the previous string, note where this one
		 * starts. The NUL counts towards the limit like a byte of
		 * the request, which bounds the number of headers too. */
		if (head_add(c, "", 1) != 0)
			return -1;
		if (ex->hdr_count == ex->hdr_cap) {
			size_t cap = ex->hdr_cap ? 2 * ex->hdr_cap : 16;
			size_t *off = realloc(ex->hdr_off, 2 * cap * sizeof *off);
			if (off == NULL)
				return parse_error(c, 503, "no_memory", "out of memory");
			ex->hdr_off = off;
			ex->hdr_cap = cap;
		}
		ex->hdr_off[2 * ex->hdr_count] = ex->head.len;
		ex->hdr_off[2 * ex->hdr_count + 1] = SIZE_MAX;
		ex->hdr_count++;
		c->hstate = H_FIELD;
	}
	return head_add(c, at, len);
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
	skald__http_conn_t *c = p->data;
	skald__http_ex_t *ex = c->ex;
	if (c->hstate != H_VALUE) {
		if (head_add(c, "", 1) != 0)
			return -1;
		ex->hdr_off[2 * ex->hdr_count - 1] = ex->head.len;
		c->hstate = H_VALUE;
	}
	return head_add(c, at, len);
}

static int on_headers_complete(http_parser *p)
{
	skald__http_conn_t *c = p->data;
	skald__http_ex_t *ex = c->ex;
	skald_http_request_t *req = &ex->req;
	/* End the last string, then add the path (the target up to its query)
	 * as a string of its own. The head does not grow after this, so
	 * pointers into it stay valid. */
	if (head_add(c, "", 1) != 0)
		return -1;
	size_t path_off = ex->head.len;
	size_t plen = strcspn(ex->head.p, "?#");
	/* The path is copied out of the head first: appending the head to
	 * itself would read from the old block when the append grows it. */
	char *path = strndup(ex->head.p, plen);
	int bad = path == NULL || skald__http_buf_add(&ex->head, path, plen) != 0 ||
	          skald__http_buf_add(&ex->head, "", 1) != 0;
	free(path);
	if (bad)
		return parse_error(c, 503, "no_memory", "out of memory");
	ex->pairs = calloc(ex->hdr_count + 1, sizeof *ex->pairs);
	if (ex->pairs == NULL)
		return parse_error(c, 503, "no_memory", "out of memory");
	for (size_t i = 0; i < ex->hdr_count; i++) {
		size_t v = ex->hdr_off[2 * i + 1];
		ex->pairs[i].name = ex->head.p + ex->hdr_off[2 * i];
		ex->pairs[i].value = v == SIZE_MAX ? "" : ex->head.p + v;
	}
	req->target = ex->head.p;
	req->path = ex->head.p + path_off;
	req->headers = ex->pairs;
	req->header_count = ex->hdr_count;
	req->method = http_method_str((enum http_method)p->method);
	req->http_major = p->http_major;
	req->http_minor = p->http_minor;
	if (req->path[0] != '/')
		return parse_error(c, 400, "bad_request", "the request target is not a path");

	size_t max = c->srv->cfg.max_body_bytes;
	if (!(p->flags & F_CHUNKED) && p->content_length != ULLONG_MAX && p->content_length > max)
		return parse_error(c, 413, "body_too_large", "the request body is too large");
	const char *expect = skald_http_header(req, "Expect");
	if (expect != NULL && strcasecmp(expect, "100-continue") == 0 &&
	    (p->http_major > 1 || (p->http_major == 1 && p->http_minor >= 1))) {
		static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
		skald__http_conn_write(c, NULL, skald__http_out_new(cont, sizeof cont - 1));
	}
	set_state(c, C_BODY);
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
	skald__http_conn_t *c = p->data;
	skald__http_ex_t *ex = c->ex;
	if (len > c->srv->cfg.max_body_bytes - ex->body.len)
		return parse_error(c, 413, "body_too_large", "the request body is too large");
	if (skald__http_buf_add(&ex->body, at, len) != 0)
		return parse_error(c, 503, "no_memory", "out of memory");
	return 0;
}

static int on_message_complete(http_parser *p)
{
	skald__http_conn_t *c = p->data;
	c->ready = true;
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings settings = {
        .on_message_begin = on_message_begin,
        .on_url = on_url,
        .on_header_field = on_header_field,
        .on_header_value = on_header_value,
        .on_headers_complete = on_headers_complete,
        .on_body = on_body,
        .on_message_complete = on_message_complete,
};

/* ------------------------------------------------------------------------ */
/* Dispatching                                                               */

static void dispatch(skald__http_conn_t *c)
{
	skald__http_ex_t *ex = c->ex;
	skald_http_server_t *srv = c->srv;
	skald_http_request_t *req = &ex->req;
	if (skald__http_buf_add(&ex->body, "", 0) != 0) {
		conn_fail(c, 503, "no_memory", "out of memory");
		return;
	}
	req->body = ex->body.p;
	req->body_len = ex->body.len;
	ex->head_only = c->parser.method == HTTP_HEAD;
	/* After an upgrade request the bytes that follow are another protocol,
	 * which this server does not speak: answer, then close. */
	ex->keep_alive = http_should_keep_alive(&c->parser) && !c->parser.upgrade && !srv->closing;
	skald__http_match_t m;
	skald__http_route_find(srv->routes, req->method, req->path, &m);
	if (skald__http_decode(ex, m.route) != 0) {
		conn_fail(c, 503, "no_memory", "out of memory");
		return;
	}
	c->dispatched = true;
	set_state(c, C_WAIT);
	uv_mutex_lock(&ex->hub->lock);
	ex->refs++; /* the application's, until its final answer */
	uv_mutex_unlock(&ex->hub->lock);
	if (m.route != NULL) {
		void *arg;
		skald_http_handler_fn fn = skald__http_route_handler(m.route, &arg);
		fn(req, ex, arg);
	} else if (m.status == 405) {
		skald_http_res_header(ex, "Allow", m.allow);
		skald_http_respond_error(ex, 405, "method_not_allowed", "%s is not allowed on %s",
		                         req->method, req->path);
	} else {
		skald_http_respond_error(ex, 404, "not_found", "no route for %s %s", req->method,
		                         req->path);
	}
}

static void update_reading(skald__http_conn_t *c)
{
	bool want = !c->closing && (c->state == C_LINGER || c->rlen < RBUF_SIZE);
	if (want && !c->reading)
		c->reading = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0;
	else if (!want && c->reading) {
		uv_read_stop((uv_stream_t *)&c->tcp);
		c->reading = false;
	}
}

/* The largest output a connection may have waiting in the socket's queue
 * before it stops reading further pipelined requests. */
static size_t write_limit(const skald__http_conn_t *c)
{
	return c->srv->cfg.max_stream_queue_bytes;
}

static void conn_process(skald__http_conn_t *c)
{
	/* A handler that answers at once finishes its exchange from inside
	 * dispatch, which calls here again: the outer call goes on instead. */
	if (c->processing) {
		c->again = true;
		return;
	}
	c->processing = true;
	do {
		c->again = false;
		while (!c->closing && c->state != C_LINGER && !c->dispatched && c->roff < c->rlen) {
			if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) >
			    write_limit(c)) {
				c->write_blocked = true;
				break;
			}
			size_t n = c->rlen - c->roff;
			size_t used =
			        http_parser_execute(&c->parser, &settings, c->rbuf + c->roff, n);
			c->roff += used;
			enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
			if (c->err_status != 0) {
				conn_fail(c, c->err_status, c->err_code, c->err_msg);
				break;
			}
			if (e == HPE_PAUSED) {
				http_parser_pause(&c->parser, 0);
			} else if (e == HPE_HEADER_OVERFLOW) {
				conn_fail(c, 431, "headers_too_large",
				          "the request line and headers are too large");
				break;
			} else if (e != HPE_OK || (used < n && !c->ready)) {
				conn_fail(c, 400, "bad_request", http_errno_description(e));
				break;
			}
			if (c->ready) {
				c->ready = false;
				dispatch(c);
			}
		}
		if (c->roff == c->rlen)
			c->roff = c->rlen = 0;
	} while (c->again && !c->closing);
	c->processing = false;
	update_reading(c);
}

/* ------------------------------------------------------------------------ */
/* Reading and accepting                                                     */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	skald__http_conn_t *c = h->data;
	if (c->state == C_LINGER) {
		*buf = uv_buf_init(c->rbuf, RBUF_SIZE);
		return;
	}
	if (c->roff > 0) {
		memmove(c->rbuf, c->rbuf + c->roff, c->rlen - c->roff);
		c->rlen -= c->roff;
		c->roff = 0;
	}
	*buf = uv_buf_init(c->rbuf + c->rlen, (unsigned)(RBUF_SIZE - c->rlen));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	skald__http_conn_t *c = s->data;
	if (nread == UV_ENOBUFS) {
		update_reading(c);
		return;
	}
	if (nread < 0) {
		/* End of input or an error: the client is gone, and so is any
		 * answer still to come. */
		skald__http_conn_close(c);
		return;
	}
	if (c->state == C_LINGER || c->closing)
		return;
	c->rlen += (size_t)nread;
	conn_process(c);
}

void skald__http_conn_accept(skald_http_server_t *srv)
{
	skald__http_conn_t *c = calloc(1, sizeof *c);
	if (c == NULL)
		return;
	c->srv = srv;
	uv_tcp_init(srv->loop, &c->tcp);
	uv_timer_init(srv->loop, &c->timer);
	c->tcp.data = c->timer.data = c;
	c->open_handles = 2;
	srv->open_handles++;
	c->next = srv->conns;
	if (srv->conns != NULL)
		srv->conns->prev = c;
	srv->conns = c;
	srv->nconns++;
	if (uv_accept((uv_stream_t *)srv->listener, (uv_stream_t *)&c->tcp) != 0) {
		skald__http_conn_close(c);
		return;
	}
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	uv_tcp_nodelay(&c->tcp, 1);
	if (srv->nconns > srv->cfg.max_connections) {
		/* Refused connections linger too, but a flood of them must not
		 * pile up: past twice the limit they are cut at once. */
		if (srv->nconns > 2 * srv->cfg.max_connections)
			skald__http_conn_close(c);
		else
			conn_fail(c, 503, "too_many_connections",
			          "the server has too many connections");
		return;
	}
	set_state(c, C_IDLE);
	update_reading(c);
}
