/*
 * tests/http/client.c - the raw-socket client (see client.h).
 */
#include "client.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <criterion/criterion.h>

static int on_status(http_parser *p, const char *at, size_t len)
{
	return 0;
}

static int add_head(resp_t *r, const char *at, size_t len, bool lower)
{
	cr_assert_lt(r->head_len + len + 3, sizeof r->head, "response head too large");
	for (size_t i = 0; i < len; i++)
		r->head[r->head_len++] = lower ? (char)tolower((unsigned char)at[i]) : at[i];
	r->head[r->head_len] = '\0';
	return 0;
}

static int on_field(http_parser *p, const char *at, size_t len)
{
	client_t *c = p->data;
	if (c->cur->in_value) {
		add_head(c->cur, "\n", 1, false);
		c->cur->in_value = false;
	}
	return add_head(c->cur, at, len, true);
}

static int on_value(http_parser *p, const char *at, size_t len)
{
	client_t *c = p->data;
	if (!c->cur->in_value) {
		add_head(c->cur, ": ", 2, false);
		c->cur->in_value = true;
	}
	return add_head(c->cur, at, len, false);
}

static int on_headers_complete(http_parser *p)
{
	client_t *c = p->data;
	if (c->cur->in_value)
		add_head(c->cur, "\n", 1, false);
	c->cur->status = p->status_code;
	/* 1 tells the parser that a HEAD answer has no body. */
	return c->head ? 1 : 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
	resp_t *r = ((client_t *)p->data)->cur;
	r->body = realloc(r->body, r->body_len + len + 1);
	memcpy(r->body + r->body_len, at, len);
	r->body_len += len;
	r->body[r->body_len] = '\0';
	return 0;
}

static int on_chunk_header(http_parser *p)
{
	((client_t *)p->data)->cur->chunks++;
	return 0;
}

static int on_message_complete(http_parser *p)
{
	((client_t *)p->data)->cur->done = true;
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings settings = {
        .on_status = on_status,
        .on_header_field = on_field,
        .on_header_value = on_value,
        .on_headers_complete = on_headers_complete,
        .on_body = on_body,
        .on_chunk_header = on_chunk_header,
        .on_message_complete = on_message_complete,
};

bool cl_connect_try(client_t *c, int port)
{
	memset(c, 0, sizeof *c);
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(c->fd, 0, "socket: %s", strerror(errno));
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		close(c->fd);
		c->fd = -1;
		return false;
	}
	struct timeval tv = {.tv_sec = 10};
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	http_parser_init(&c->parser, HTTP_RESPONSE);
	c->parser.data = c;
	return true;
}

void cl_connect(client_t *c, int port)
{
	cr_assert(cl_connect_try(c, port), "connect to port %d: %s", port, strerror(errno));
}

bool cl_send_try(client_t *c, const char *s, size_t len)
{
	if (len == 0)
		len = strlen(s);
	while (len > 0) {
		ssize_t n = send(c->fd, s, len, MSG_NOSIGNAL);
		if (n <= 0)
			return false;
		s += n;
		len -= (size_t)n;
	}
	return true;
}

void cl_send(client_t *c, const char *s, size_t len)
{
	cr_assert(cl_send_try(c, s, len), "send: %s", strerror(errno));
}

/* Parses what is buffered and reads more until r is complete, or until
 * until(r, arg) holds (may be NULL). */
static bool pump(client_t *c, resp_t *r, bool (*until)(const resp_t *r, void *arg), void *arg)
{
	for (;;) {
		if (c->off < c->len) {
			size_t n = http_parser_execute(&c->parser, &settings, c->buf + c->off,
			                               c->len - c->off);
			c->off += n;
			enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
			if (e == HPE_PAUSED)
				http_parser_pause(&c->parser, 0);
			else
				cr_assert_eq(e, HPE_OK, "client parser: %s", http_errno_name(e));
		}
		if ((until != NULL && r->status != 0 && until(r, arg)) || r->done)
			return true;
		c->off = c->len = 0;
		ssize_t n = recv(c->fd, c->buf, sizeof c->buf, 0);
		if (n <= 0)
			return false;
		c->len = (size_t)n;
	}
}

bool cl_read(client_t *c, resp_t *r, bool head)
{
	memset(r, 0, sizeof *r);
	c->cur = r;
	c->head = head;
	return pump(c, r, NULL, NULL);
}

bool cl_read_until(client_t *c, resp_t *r, bool (*until)(const resp_t *r, void *arg), void *arg)
{
	if (c->cur != r) {
		memset(r, 0, sizeof *r);
		c->cur = r;
		c->head = false;
	}
	return pump(c, r, until, arg);
}

bool cl_wait_closed(client_t *c)
{
	char tmp[4096];
	for (;;) {
		ssize_t n = recv(c->fd, tmp, sizeof tmp, 0);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return true;
		if (n < 0)
			return false; /* the 10 s limit */
	}
}

void cl_close(client_t *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

void resp_free(resp_t *r)
{
	free(r->body);
	r->body = NULL;
}

const char *resp_header(const resp_t *r, const char *name)
{
	static char value[1024];
	size_t nlen = strlen(name);
	for (const char *p = r->head; *p;
	     p = strchr(p, '\n') ? strchr(p, '\n') + 1 : p + strlen(p)) {
		if (strncmp(p, name, nlen) == 0 && p[nlen] == ':') {
			const char *v = p + nlen + 2;
			size_t vlen = strcspn(v, "\n");
			if (vlen >= sizeof value)
				vlen = sizeof value - 1;
			memcpy(value, v, vlen);
			value[vlen] = '\0';
			return value;
		}
	}
	return NULL;
}

bool cl_request(int port, const char *req, resp_t *r)
{
	client_t c;
	cl_connect(&c, port);
	cl_send(&c, req, 0);
	bool ok = cl_read(&c, r, strncmp(req, "HEAD ", 5) == 0);
	cl_close(&c);
	return ok;
}
