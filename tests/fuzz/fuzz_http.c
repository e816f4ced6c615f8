/*
 * tests/fuzz/fuzz_http.c - libFuzzer target for the HTTP front (http/):
 * request lines, headers, chunked and sized bodies, pipelined requests,
 * routes with parameters and queries, as a hostile client reaches them.
 *
 * One server runs on its own thread for the whole session, with routes of
 * every kind: a fixed answer, parameters and queries echoed, a JSON body
 * parsed and echoed, a stream, and a catch-all. Each input is written to it
 * over a fresh loopback connection; the client reads until the server
 * closes or a short time passes. A crash, a sanitizer report, or a server
 * that stops accepting fails the run.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "skald/http.h"
#include "tests/fuzz/loopback.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int port;

static void hello(const skald_http_request_t *req, skald_http_res_t *res, void *arg)
{
	skald_http_respond(res, 200, "text/plain", "hello\n", 6);
}

/* Every parameter, query pair and header, back as JSON. */
static void echo_parts(const skald_http_request_t *req, skald_http_res_t *res, void *arg)
{
	json_t *o = json_object(), *q = json_object(), *p = json_object();
	for (size_t i = 0; i < req->query_count; i++)
		json_object_set_new(q, req->query[i].name, json_string(req->query[i].value));
	for (size_t i = 0; i < req->param_count; i++)
		json_object_set_new(p, req->params[i].name, json_string(req->params[i].value));
	json_object_set_new(o, "query", q);
	json_object_set_new(o, "params", p);
	json_object_set_new(o, "path", json_string(req->path));
	const char *h = skald_http_header(req, "x-fuzz");
	json_object_set_new(o, "x-fuzz", h ? json_string(h) : json_null());
	const char *v = skald_http_query(req, "v");
	json_object_set_new(o, "v", v ? json_string(v) : json_null());
	skald_http_respond_json(res, 200, o);
}

/* A JSON body parsed and sent back; 400 when it is not JSON. */
static void echo_body(const skald_http_request_t *req, skald_http_res_t *res, void *arg)
{
	json_error_t err;
	json_t *body = json_loadb(req->body, req->body_len, 0, &err);
	if (body == NULL) {
		skald_http_respond_error(res, 400, "bad_json", "%s", err.text);
		return;
	}
	skald_http_respond_json(res, 200, body);
}

static void stream(const skald_http_request_t *req, skald_http_res_t *res, void *arg)
{
	if (skald_http_stream_start(res, 200, "application/x-ndjson") == 0)
		for (int i = 0; i < 3; i++)
			skald_http_stream_send_json(res, json_pack("{si}", "i", i));
	skald_http_stream_end(res);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	skald_http_config_t cfg;
	skald_http_config_init(&cfg);
	cfg.max_header_bytes = 4096;
	cfg.max_body_bytes = 65536;
	cfg.header_timeout_ms = 500;
	cfg.body_timeout_ms = 500;
	cfg.idle_timeout_ms = 500;
	skald_http_server_t *srv;
	if (skald_http_server_new(&srv, &cfg) != 0 ||
	    skald_http_route(srv, "GET", "/hello", hello, NULL) != 0 ||
	    skald_http_route(srv, "GET", "/items/:id", echo_parts, NULL) != 0 ||
	    skald_http_route(srv, "GET", "/files/*rest", echo_parts, NULL) != 0 ||
	    skald_http_route(srv, "POST", "/echo", echo_body, NULL) != 0 ||
	    skald_http_route(srv, "GET", "/stream", stream, NULL) != 0 ||
	    skald_http_start_thread(srv) != 0)
		abort();
	port = skald_http_port(srv);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_loopback_send(port, data, size);
	return 0;
}
