/*
 * tests/http/client.h - a small blocking HTTP client over raw sockets for the
 * HTTP suite. Responses are parsed with libhttp-parser in response mode, so
 * the tests check the server against an independent reading of the bytes.
 */
#ifndef TESTS_HTTP_CLIENT_H
#define TESTS_HTTP_CLIENT_H

#include <http_parser.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct {
	int status;
	char head[8192]; /* "name: value\n" lines, names lower-cased */
	size_t head_len;
	char *body; /* malloc'ed, NUL-terminated */
	size_t body_len;
	int chunks; /* chunk headers seen (chunked bodies) */
	bool done;
	bool in_value;
} resp_t;

typedef struct {
	int fd;
	http_parser parser;
	bool head; /* the response being read answers a HEAD */
	resp_t *cur;
	char buf[65536];
	size_t off, len;
} client_t;

/* Connects to 127.0.0.1:port; every read waits 10 s at most. */
void cl_connect(client_t *c, int port);
/* As cl_connect; false (nothing to close) when nobody listens there. */
bool cl_connect_try(client_t *c, int port);
/* Sends all of s (len bytes, or strlen(s) when len is 0). */
void cl_send(client_t *c, const char *s, size_t len);
/* As cl_send; false when the connection broke. */
bool cl_send_try(client_t *c, const char *s, size_t len);
/* Reads one response. Returns false if the connection ended first (EOF,
 * reset or the 10 s limit). head: it answers a HEAD request. */
bool cl_read(client_t *c, resp_t *r, bool head);
/* Reads a streamed response a part at a time: the first call on r starts
 * it, each call reads until the response is complete (r->done) or until
 * holds (once the head is in). Returns false if the connection ended
 * first. */
bool cl_read_until(client_t *c, resp_t *r, bool (*until)(const resp_t *r, void *arg), void *arg);
/* True when the server closed the connection (EOF or reset) within 10 s,
 * after any bytes still unread. */
bool cl_wait_closed(client_t *c);
void cl_close(client_t *c);
void resp_free(resp_t *r);
/* The value of header name (lower case) in r, copied into a static buffer,
 * or NULL. */
const char *resp_header(const resp_t *r, const char *name);

/* One request on a fresh connection: sends req, reads the response. */
bool cl_request(int port, const char *req, resp_t *r);

#endif
