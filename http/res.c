/*
 * http/res.c - answering: building responses on the answering thread, the
 * locked hand-over to the loop, and the loop's side of it (the drain).
 *
 * An answer is formatted to bytes by the thread that gives it, so that the
 * loop only moves buffers. The hand-over appends the bytes to the exchange's
 * queue under the hub lock and puts the exchange on the hub's pending list;
 * the loop takes the list in its async callback. An answer given on the loop
 * thread itself is drained at once, without the async round trip.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "http/internal.h"

/* ------------------------------------------------------------------------ */
/* Buffers                                                                   */

int skald__http_buf_add(skald__http_buf_t *b, const void *data, size_t len)
{
	if (b->cap - b->len < len + 1) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap - b->len < len + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (p == NULL)
			return SKALD_ENOMEM;
		b->p = p;
		b->cap = cap;
	}
	if (len > 0)
		memcpy(b->p + b->len, data, len);
	b->len += len;
	b->p[b->len] = '\0';
	return 0;
}

int skald__http_buf_printf(skald__http_buf_t *b, const char *fmt, ...)
{
	char small[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof small, fmt, ap);
	va_end(ap);
	if (n < 0)
		return SKALD_EINVAL;
	if ((size_t)n < sizeof small)
		return skald__http_buf_add(b, small, (size_t)n);
	char *big = malloc((size_t)n + 1);
	if (big == NULL)
		return SKALD_ENOMEM;
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	int rc = skald__http_buf_add(b, big, (size_t)n);
	free(big);
	return rc;
}

void skald__http_buf_free(skald__http_buf_t *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

skald__http_out_t *skald__http_out_new(const void *data, size_t len)
{
	skald__http_out_t *o = malloc(sizeof *o + len);
	if (o == NULL)
		return NULL;
	o->next = NULL;
	o->ptr = o->data;
	o->len = len;
	o->owned = NULL;
	if (data != NULL && len > 0)
		memcpy(o->data, data, len);
	return o;
}

skald__http_out_t *skald__http_out_take(void *buf, size_t len)
{
	skald__http_out_t *o = malloc(sizeof *o);
	if (o == NULL)
		return NULL;
	o->next = NULL;
	o->ptr = buf;
	o->len = len;
	o->owned = buf;
	return o;
}

void skald__http_out_free_list(skald__http_out_t *o)
{
	while (o != NULL) {
		skald__http_out_t *next = o->next;
		free(o->owned);
		free(o);
		o = next;
	}
}

/* ------------------------------------------------------------------------ */
/* Exchanges and the hub                                                     */

skald__http_ex_t *skald__http_ex_new(skald__http_hub_t *hub)
{
	skald__http_ex_t *ex = calloc(1, sizeof *ex);
	if (ex == NULL)
		return NULL;
	ex->hub = hub;
	ex->refs = 1;
	uv_mutex_lock(&hub->lock);
	hub->refs++;
	uv_mutex_unlock(&hub->lock);
	return ex;
}

static void ex_free(skald__http_ex_t *ex)
{
	skald__http_hub_t *hub = ex->hub;
	skald__http_buf_free(&ex->head);
	skald__http_buf_free(&ex->body);
	skald__http_buf_free(&ex->extra);
	free(ex->hdr_off);
	free(ex->pairs);
	free(ex->decoded);
	skald__http_out_free_list(ex->outq);
	free(ex);
	skald__http_hub_unref(hub);
}

bool skald__http_ex_unref_locked(skald__http_ex_t *ex)
{
	uv_mutex_lock(&ex->hub->lock);
	bool last = --ex->refs == 0;
	uv_mutex_unlock(&ex->hub->lock);
	return last;
}

void skald__http_ex_unref(skald__http_ex_t *ex)
{
	if (skald__http_ex_unref_locked(ex))
		ex_free(ex);
}

void skald__http_hub_unref(skald__http_hub_t *hub)
{
	uv_mutex_lock(&hub->lock);
	bool last = --hub->refs == 0;
	uv_mutex_unlock(&hub->lock);
	if (last) {
		uv_mutex_destroy(&hub->lock);
		free(hub);
	}
}

void skald__http_hub_drain(skald__http_hub_t *hub)
{
	/* A handler that answers at once runs inside a drain (the drain
	 * finished a response, the connection went on to its next pipelined
	 * request); the outer drain picks up what it queued. */
	if (hub->draining)
		return;
	hub->draining = true;
	for (;;) {
		uv_mutex_lock(&hub->lock);
		skald__http_ex_t *ex = hub->pending;
		hub->pending = hub->pending_tail = NULL;
		uv_mutex_unlock(&hub->lock);
		if (ex == NULL)
			break;
		while (ex != NULL) {
			skald__http_ex_t *next = ex->pending_next;
			uv_mutex_lock(&hub->lock);
			skald__http_out_t *out = ex->outq;
			ex->outq = ex->outq_tail = NULL;
			ex->on_pending = false;
			ex->pending_next = NULL;
			bool started = ex->started, ended = ex->ended, aborted = ex->aborted;
			uv_mutex_unlock(&hub->lock);
			skald__http_conn_t *c = ex->conn;
			if (c == NULL) {
				skald__http_out_free_list(out);
			} else {
				if (out != NULL)
					skald__http_conn_write(c, ex, out);
				if (started)
					skald__http_conn_started(c);
				if (aborted)
					skald__http_conn_close(c);
				else if (ended)
					skald__http_conn_finish(c);
			}
			skald__http_ex_unref(ex);
			ex = next;
		}
	}
	hub->draining = false;
}

enum { Q_START = 1, Q_END = 2, Q_ABORT = 4, Q_FINAL = 8, Q_LIMIT = 16, Q_CLOSE = 32 };

/*
 * Hands out (may be NULL) to the loop with flags. Q_FINAL gives up the
 * application's reference. Returns 0, SKALD_ECLOSED (dropped: the exchange
 * is detached) or SKALD_ETOOMANY (Q_LIMIT and the stream queue is full;
 * nothing queued, the reference kept).
 */
static int enqueue(skald__http_ex_t *ex, skald__http_out_t *out, unsigned flags)
{
	skald__http_hub_t *hub = ex->hub;
	size_t n = 0;
	for (skald__http_out_t *o = out; o != NULL; o = o->next)
		n += o->len;
	uv_mutex_lock(&hub->lock);
	if (ex->detached) {
		bool last = (flags & Q_FINAL) && --ex->refs == 0;
		uv_mutex_unlock(&hub->lock);
		skald__http_out_free_list(out);
		if (last)
			ex_free(ex);
		return SKALD_ECLOSED;
	}
	if ((flags & Q_LIMIT) && ex->queued_bytes + n > hub->max_stream_queue) {
		uv_mutex_unlock(&hub->lock);
		skald__http_out_free_list(out);
		return SKALD_ETOOMANY;
	}
	if (out != NULL) {
		if (ex->outq_tail != NULL)
			ex->outq_tail->next = out;
		else
			ex->outq = out;
		while (out->next != NULL)
			out = out->next;
		ex->outq_tail = out;
		ex->queued_bytes += n;
	}
	ex->started |= (flags & (Q_START | Q_END)) != 0;
	ex->ended |= (flags & Q_END) != 0;
	ex->aborted |= (flags & Q_ABORT) != 0;
	ex->close_after |= (flags & Q_CLOSE) != 0;
	if (!ex->on_pending) {
		ex->on_pending = true;
		ex->refs++;
		if (hub->pending_tail != NULL)
			hub->pending_tail->pending_next = ex;
		else
			hub->pending = ex;
		hub->pending_tail = ex;
	}
	/* The pending list's reference keeps ex alive: this cannot be the last. */
	if (flags & Q_FINAL)
		ex->refs--;
	uv_thread_t self = uv_thread_self();
	bool on_loop = uv_thread_equal(&self, &hub->loop_thread);
	/* Sent under the lock: the loop closes the async under it too, so the
	 * handle is never signalled after its close. */
	if (!on_loop && hub->async_open)
		uv_async_send(&hub->async);
	uv_mutex_unlock(&hub->lock);
	if (on_loop)
		skald__http_hub_drain(hub);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Formatting                                                                */

const char *skald_http_status_text(int status)
{
	switch (status) {
#define XX(num, name, string)                                                                      \
	case num:                                                                                  \
		return #string;
		HTTP_STATUS_MAP(XX)
#undef XX
	default:
		return "Unknown";
	}
}

static bool status_has_body(int status)
{
	return status >= 200 && status != 204 && status != 304;
}

static bool valid_status(int status)
{
	/* 1xx are the server's own (100 Continue); a handler cannot send one
	 * as its final answer. */
	return status >= 200 && status <= 599;
}

static bool valid_value(const char *s)
{
	return s == NULL || strpbrk(s, "\r\n") == NULL;
}

/* The head up to and including the framing headers, without the blank line. */
static int format_head(skald__http_buf_t *b, int status, const char *ctype, const char *extra,
                       size_t extra_len, bool close)
{
	char date[64];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	int rc = skald__http_buf_printf(b, "HTTP/1.1 %d %s\r\nDate: %s\r\n", status,
	                                skald_http_status_text(status), date);
	if (rc == 0 && ctype != NULL)
		rc = skald__http_buf_printf(b, "Content-Type: %s\r\n", ctype);
	if (rc == 0 && extra_len > 0)
		rc = skald__http_buf_add(b, extra, extra_len);
	if (rc == 0 && close)
		rc = skald__http_buf_printf(b, "Connection: close\r\n");
	return rc;
}

skald__http_out_t *skald__http_format(int status, const char *ctype, const char *extra,
                                      size_t extra_len, const void *body, size_t len,
                                      bool head_only, bool close)
{
	skald__http_buf_t b = {0};
	int rc = format_head(&b, status, ctype, extra, extra_len, close);
	if (!status_has_body(status))
		len = 0;
	else if (rc == 0)
		rc = skald__http_buf_printf(&b, "Content-Length: %zu\r\n", len);
	if (rc == 0)
		rc = skald__http_buf_add(&b, "\r\n", 2);
	skald__http_out_t *o = NULL;
	if (rc == 0) {
		size_t body_len = head_only ? 0 : len;
		o = skald__http_out_new(NULL, b.len + body_len);
		if (o != NULL) {
			memcpy(o->data, b.p, b.len);
			if (body_len > 0)
				memcpy(o->data + b.len, body, body_len);
		}
	}
	skald__http_buf_free(&b);
	return o;
}

skald__http_out_t *skald__http_format_error(int status, const char *code, const char *msg,
                                            bool head_only, bool close)
{
	json_t *j = json_pack("{s:s, s:s}", "error", msg, "code", code);
	char *s = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (s == NULL)
		return NULL;
	skald__http_out_t *o = skald__http_format(status, "application/json", NULL, 0, s, strlen(s),
	                                          head_only, close);
	free(s);
	return o;
}

/* ------------------------------------------------------------------------ */
/* Requests                                                                  */

static const char *pair_find(const skald_http_pair_t *p, size_t n, const char *name, bool nocase)
{
	for (size_t i = 0; i < n; i++) {
		if (nocase ? strcasecmp(p[i].name, name) == 0 : strcmp(p[i].name, name) == 0)
			return p[i].value;
	}
	return NULL;
}

const char *skald_http_header(const skald_http_request_t *req, const char *name)
{
	return pair_find(req->headers, req->header_count, name, true);
}

const char *skald_http_query(const skald_http_request_t *req, const char *name)
{
	return pair_find(req->query, req->query_count, name, false);
}

const char *skald_http_param(const skald_http_request_t *req, const char *name)
{
	return pair_find(req->params, req->param_count, name, false);
}

const skald_http_request_t *skald_http_request(const skald_http_res_t *res)
{
	return &res->req;
}

json_t *skald_http_body_json(skald_http_res_t *res)
{
	json_error_t err;
	json_t *j = json_loadb(res->req.body, res->req.body_len, 0, &err);
	if (j == NULL)
		skald_http_respond_error(res, 400, "bad_json", "the body is not JSON: %s (line %d)",
		                         err.text, err.line);
	return j;
}

/* ------------------------------------------------------------------------ */
/* Answers                                                                   */

static bool is_token_char(unsigned char c)
{
	return c > 32 && c < 127 && strchr("()<>@,;:\\\"/[]?={}", c) == NULL;
}

int skald_http_res_header(skald_http_res_t *res, const char *name, const char *value)
{
	static const char *const reserved[] = {"content-length", "transfer-encoding", "connection",
	                                       "date"};
	if (res->phase != 0 || name == NULL || value == NULL || *name == '\0' ||
	    !valid_value(value))
		return SKALD_EINVAL;
	for (const char *p = name; *p; p++) {
		if (!is_token_char((unsigned char)*p))
			return SKALD_EINVAL;
	}
	for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++) {
		if (strcasecmp(name, reserved[i]) == 0)
			return SKALD_EINVAL;
	}
	size_t before = res->extra.len;
	int rc = skald__http_buf_printf(&res->extra, "%s: %s\r\n", name, value);
	if (rc != 0)
		res->extra.len = before;
	return rc;
}

/* The final answer when formatting failed: cut the connection. */
static int answer_failed(skald_http_res_t *res, int err)
{
	res->phase = 2;
	enqueue(res, NULL, Q_ABORT | Q_FINAL);
	return err;
}

static int respond(skald_http_res_t *res, int status, const char *ctype, const void *body,
                   size_t len, void *taken)
{
	int err = 0;
	if (!valid_status(status) || !valid_value(ctype)) {
		status = 500;
		ctype = NULL;
		len = 0;
		err = SKALD_EINVAL;
	}
	bool close = !res->keep_alive;
	skald__http_out_t *out;
	if (taken != NULL && len > 0 && status_has_body(status) && !res->head_only) {
		/* The head alone, then the taken body as a piece of its own. */
		out = skald__http_format(status, ctype, res->extra.p, res->extra.len, NULL, len,
		                         true, close);
		skald__http_out_t *b = out != NULL ? skald__http_out_take(taken, len) : NULL;
		if (b == NULL) {
			free(taken);
			skald__http_out_free_list(out);
			return answer_failed(res, SKALD_ENOMEM);
		}
		out->next = b;
	} else {
		out = skald__http_format(status, ctype, res->extra.p, res->extra.len, body, len,
		                         res->head_only, close);
		free(taken);
		if (out == NULL)
			return answer_failed(res, SKALD_ENOMEM);
	}
	res->phase = 2;
	enqueue(res, out, Q_END | Q_FINAL);
	return err;
}

int skald_http_respond(skald_http_res_t *res, int status, const char *content_type,
                       const void *body, size_t len)
{
	return respond(res, status, content_type, body, len, NULL);
}

int skald_http_respond_take(skald_http_res_t *res, int status, const char *content_type, void *body,
                            size_t len)
{
	if (body == NULL)
		len = 0;
	return respond(res, status, content_type, body, len, body);
}

int skald_http_respond_json(skald_http_res_t *res, int status, json_t *body)
{
	char *s = body != NULL ? json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	json_decref(body); /* stolen */
	if (s == NULL) {
		respond(res, 500, NULL, NULL, 0, NULL);
		return SKALD_EENCODE;
	}
	return respond(res, status, "application/json", s, strlen(s), s);
}

int skald_http_respond_error(skald_http_res_t *res, int status, const char *code, const char *fmt,
                             ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	/* steals the new object */
	return skald_http_respond_json(res, status,
	                               json_pack("{s:s, s:s}", "error", msg, "code", code));
}

void skald_http_abort(skald_http_res_t *res)
{
	res->phase = 2;
	enqueue(res, NULL, Q_ABORT | Q_FINAL);
}

int skald_http_stream_start(skald_http_res_t *res, int status, const char *content_type)
{
	if (res->phase != 0 || !valid_status(status) || !status_has_body(status) ||
	    !valid_value(content_type))
		return SKALD_EINVAL;
	/* HTTP/1.0 has no chunks: the body ends when the connection does. */
	bool chunked =
	        res->req.http_major > 1 || (res->req.http_major == 1 && res->req.http_minor >= 1);
	bool close = !res->keep_alive || !chunked;
	skald__http_buf_t b = {0};
	int rc = format_head(&b, status, content_type, res->extra.p, res->extra.len, close);
	if (rc == 0 && chunked)
		rc = skald__http_buf_printf(&b, "Transfer-Encoding: chunked\r\n");
	if (rc == 0)
		rc = skald__http_buf_add(&b, "\r\n", 2);
	skald__http_out_t *out = rc == 0 ? skald__http_out_new(b.p, b.len) : NULL;
	skald__http_buf_free(&b);
	if (out == NULL)
		return SKALD_ENOMEM;
	res->phase = 1;
	res->chunked = chunked;
	return enqueue(res, out, Q_START | (close ? Q_CLOSE : 0));
}

int skald_http_stream_send(skald_http_res_t *res, const void *data, size_t len)
{
	if (res->phase != 1)
		return SKALD_EINVAL;
	if (len == 0)
		return 0;
	if (res->head_only)
		return skald_http_res_closed(res) ? SKALD_ECLOSED : 0;
	skald__http_out_t *out;
	if (res->chunked) {
		char size[24];
		int n = snprintf(size, sizeof size, "%zx\r\n", len);
		out = skald__http_out_new(NULL, (size_t)n + len + 2);
		if (out != NULL) {
			memcpy(out->data, size, (size_t)n);
			memcpy(out->data + n, data, len);
			memcpy(out->data + n + len, "\r\n", 2);
		}
	} else {
		out = skald__http_out_new(data, len);
	}
	if (out == NULL)
		return SKALD_ENOMEM;
	return enqueue(res, out, Q_LIMIT);
}

int skald_http_stream_send_json(skald_http_res_t *res, json_t *line)
{
	char *s = line != NULL ? json_dumps(line, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	json_decref(line); /* stolen */
	if (s == NULL)
		return SKALD_EENCODE;
	size_t n = strlen(s);
	char *l = realloc(s, n + 2);
	if (l == NULL) {
		free(s);
		return SKALD_ENOMEM;
	}
	l[n] = '\n';
	l[n + 1] = '\0';
	int rc = skald_http_stream_send(res, l, n + 1);
	free(l);
	return rc;
}

int skald_http_stream_end(skald_http_res_t *res)
{
	if (res->phase == 0)
		return skald_http_respond_error(res, 500, "internal",
		                                "the handler ended a stream it never started");
	if (res->phase != 1)
		return SKALD_EINVAL;
	res->phase = 2;
	skald__http_out_t *out = NULL;
	if (res->chunked && !res->head_only) {
		out = skald__http_out_new("0\r\n\r\n", 5);
		if (out == NULL)
			return answer_failed(res, SKALD_ENOMEM);
	}
	enqueue(res, out, Q_END | Q_FINAL);
	return 0;
}

bool skald_http_res_closed(const skald_http_res_t *res)
{
	uv_mutex_lock(&res->hub->lock);
	bool closed = res->detached;
	uv_mutex_unlock(&res->hub->lock);
	return closed;
}
