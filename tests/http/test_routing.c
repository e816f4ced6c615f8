/*
 * tests/http/test_routing.c - routes, parameters, queries, bodies, HEAD,
 * keep-alive, pipelining and assets.
 */
#include <string.h>

#include <criterion/criterion.h>

#include "fixture.h"

TestSuite(routing, .init = NULL, .fini = NULL);

/* The body of r parsed as JSON; fails the test if it is not. */
static json_t *body_json(const resp_t *r)
{
	json_error_t err;
	json_t *j = json_loadb(r->body ? r->body : "", r->body_len, 0, &err);
	cr_assert_not_null(j, "not JSON (%s): %s", err.text, r->body ? r->body : "");
	return j;
}

static const char *str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	cr_assert_not_null(s, "no string %s", key);
	return s;
}

/* Sends req on a new connection, expects status and a JSON body, which it
 * returns (the caller owns it). */
static json_t *request_json(const char *req, int status)
{
	resp_t r;
	cr_assert(cl_request(fx_port, req, &r), "no answer to %s", req);
	cr_assert_eq(r.status, status, "status %d for %s", r.status, req);
	cr_assert_str_eq(resp_header(&r, "content-type"), "application/json");
	json_t *j = body_json(&r);
	resp_free(&r);
	return j;
}

/* Sends req, expects status and a JSON body whose key is want. */
static void expect_field(const char *req, int status, const char *key, const char *want)
{
	json_t *j = request_json(req, status);
	cr_assert_str_eq(str(j, key), want, "%s of %s", key, req);
	json_decref(j);
}

Test(routing, route_parameter_is_decoded)
{
	fx_start(NULL);
	expect_field("GET /games/a%20b HTTP/1.1\r\nHost: x\r\n\r\n", 200, "id", "a b");
	fx_stop();
}

Test(routing, literal_segment_beats_parameter)
{
	fx_start(NULL);
	expect_field("GET /games/new HTTP/1.1\r\n\r\n", 200, "literal", "new");
	fx_stop();
}

Test(routing, rest_parameter_takes_the_rest_of_the_path)
{
	fx_start(NULL);
	expect_field("GET /files/css/site.css HTTP/1.1\r\n\r\n", 200, "path", "css/site.css");
	fx_stop();
}

Test(routing, unknown_path_is_404_json)
{
	fx_start(NULL);
	json_t *j = request_json("GET /nope HTTP/1.1\r\n\r\n", 404);
	cr_assert_str_eq(str(j, "code"), "not_found");
	cr_assert_not_null(strstr(str(j, "error"), "/nope"));
	json_decref(j);
	fx_stop();
}

Test(routing, wrong_method_is_405_with_allow)
{
	fx_start(NULL);
	resp_t r;
	cr_assert(cl_request(fx_port, "DELETE /games/1 HTTP/1.1\r\n\r\n", &r));
	cr_assert_eq(r.status, 405);
	const char *allow = resp_header(&r, "allow");
	cr_assert_not_null(allow);
	cr_assert_not_null(strstr(allow, "GET"), "Allow: %s", allow);
	cr_assert_not_null(strstr(allow, "HEAD"), "Allow: %s", allow);
	resp_free(&r);
	fx_stop();
}

Test(routing, query_parameters_are_decoded)
{
	fx_start(NULL);
	json_t *j = request_json("GET /q?a=1&b=hello+world&c=%41%42&d&e=%zz HTTP/1.1\r\n\r\n", 200);
	cr_assert_str_eq(str(j, "a"), "1");
	cr_assert_str_eq(str(j, "b"), "hello world");
	cr_assert_str_eq(str(j, "c"), "AB");
	cr_assert_str_eq(str(j, "d"), "");
	cr_assert_str_eq(str(j, "e"), "%zz");
	json_decref(j);
	fx_stop();
}

Test(routing, content_length_body_reaches_the_handler)
{
	fx_start(NULL);
	json_t *j = request_json("POST /games/7/moves HTTP/1.1\r\nContent-Length: 17\r\n\r\n"
	                         "{\"row\":1,\"col\":2}",
	                         200);
	cr_assert_str_eq(str(j, "id"), "7");
	cr_assert_eq(json_integer_value(json_object_get(json_object_get(j, "move"), "col")), 2);
	json_decref(j);
	fx_stop();
}

Test(routing, chunked_request_body_is_joined)
{
	fx_start(NULL);
	resp_t r;
	cr_assert(cl_request(fx_port,
	                     "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
	                     "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
	                     &r));
	cr_assert_eq(r.status, 200);
	cr_assert_eq(r.body_len, 11);
	cr_assert_str_eq(r.body, "hello world");
	resp_free(&r);
	fx_stop();
}

Test(routing, malformed_json_body_is_400)
{
	fx_start(NULL);
	resp_t r;
	cr_assert(cl_request(fx_port,
	                     "POST /games/7/moves HTTP/1.1\r\nContent-Length: 4\r\n\r\n{row", &r));
	cr_assert_eq(r.status, 400);
	json_t *j = body_json(&r);
	cr_assert_str_eq(str(j, "code"), "bad_json");
	json_decref(j);
	resp_free(&r);
	fx_stop();
}

Test(routing, response_headers_are_checked)
{
	fx_start(NULL);
	resp_t r;
	cr_assert(cl_request(fx_port, "GET /headers HTTP/1.1\r\nX-In: yes\r\n\r\n", &r));
	json_t *j = body_json(&r);
	cr_assert_eq(json_integer_value(json_object_get(j, "refused")), SKALD_EINVAL);
	cr_assert_eq(json_integer_value(json_object_get(j, "split")), SKALD_EINVAL);
	cr_assert_eq(json_integer_value(json_object_get(j, "ok")), 0);
	cr_assert_str_eq(resp_header(&r, "x-test"), "yes");
	cr_assert_null(resp_header(&r, "injected"));
	json_decref(j);
	resp_free(&r);
	fx_stop();
}

Test(routing, head_sends_the_head_without_the_body)
{
	fx_start(NULL);
	client_t c;
	cl_connect(&c, fx_port);
	resp_t r;
	cl_send(&c, "HEAD /hello HTTP/1.1\r\n\r\n", 0);
	cr_assert(cl_read(&c, &r, true));
	cr_assert_eq(r.status, 200);
	cr_assert_str_eq(resp_header(&r, "content-length"), "5");
	resp_free(&r);
	/* Had a body been sent, this response would read as garbage. */
	cl_send(&c, "GET /hello HTTP/1.1\r\n\r\n", 0);
	cr_assert(cl_read(&c, &r, false));
	cr_assert_eq(r.status, 200);
	cr_assert_str_eq(r.body, "hello");
	resp_free(&r);
	cl_close(&c);
	fx_stop();
}

Test(routing, keep_alive_serves_several_requests)
{
	fx_start(NULL);
	client_t c;
	cl_connect(&c, fx_port);
	for (int i = 0; i < 10; i++) {
		char req[128];
		snprintf(req, sizeof req, "GET /games/%d HTTP/1.1\r\nHost: x\r\n\r\n", i);
		cl_send(&c, req, 0);
		resp_t r;
		cr_assert(cl_read(&c, &r, false), "response %d", i);
		cr_assert_eq(r.status, 200);
		cr_assert_null(resp_header(&r, "connection"));
		char want[32];
		snprintf(want, sizeof want, "{\"id\":\"%d\"}", i);
		cr_assert_str_eq(r.body, want);
		resp_free(&r);
	}
	cl_close(&c);
	fx_stop();
}

Test(routing, pipelined_requests_are_answered_in_order)
{
	fx_start(NULL);
	client_t c;
	cl_connect(&c, fx_port);
	/* The second is answered later from another thread: the third must
	 * still come after it. */
	cl_send(&c,
	        "GET /games/1 HTTP/1.1\r\n\r\nGET /later HTTP/1.1\r\n\r\n"
	        "GET /games/3 HTTP/1.1\r\n\r\n",
	        0);
	const char *want[] = {"{\"id\":\"1\"}", "later", "{\"id\":\"3\"}"};
	for (int i = 0; i < 3; i++) {
		resp_t r;
		cr_assert(cl_read(&c, &r, false));
		cr_assert_str_eq(r.body, want[i]);
		resp_free(&r);
	}
	cl_close(&c);
	fx_stop();
}

Test(routing, http10_request_gets_its_answer_then_close)
{
	fx_start(NULL);
	client_t c;
	cl_connect(&c, fx_port);
	cl_send(&c, "GET /hello HTTP/1.0\r\n\r\n", 0);
	resp_t r;
	cr_assert(cl_read(&c, &r, false));
	cr_assert_eq(r.status, 200);
	cr_assert_str_eq(resp_header(&r, "connection"), "close");
	cr_assert(cl_wait_closed(&c));
	resp_free(&r);
	cl_close(&c);
	fx_stop();
}

Test(routing, expect_100_continue_gets_an_interim_answer)
{
	fx_start(NULL);
	client_t c;
	cl_connect(&c, fx_port);
	cl_send(&c, "POST /echo HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n", 0);
	resp_t r;
	cr_assert(cl_read(&c, &r, false));
	cr_assert_eq(r.status, 100);
	resp_free(&r);
	cl_send(&c, "abc", 0);
	cr_assert(cl_read(&c, &r, false));
	cr_assert_eq(r.status, 200);
	cr_assert_str_eq(r.body, "abc");
	resp_free(&r);
	cl_close(&c);
	fx_stop();
}

Test(routing, asset_is_served_with_etag_and_304)
{
	fx_start(NULL);
	resp_t r;
	cr_assert(cl_request(fx_port, "GET / HTTP/1.1\r\n\r\n", &r));
	cr_assert_eq(r.status, 200);
	cr_assert_str_eq(resp_header(&r, "content-type"), "text/html; charset=utf-8");
	cr_assert_not_null(strstr(r.body, "<title>skald</title>"));
	char etag[64];
	snprintf(etag, sizeof etag, "%s", resp_header(&r, "etag"));
	resp_free(&r);
	char req[256];
	snprintf(req, sizeof req, "GET / HTTP/1.1\r\nIf-None-Match: %s\r\n\r\n", etag);
	cr_assert(cl_request(fx_port, req, &r));
	cr_assert_eq(r.status, 304);
	cr_assert_eq(r.body_len, 0);
	resp_free(&r);
	fx_stop();
}

/* The path is copied within the buffer that holds the request's head: at
 * every size of the head, growing that buffer must not lose it. */
Test(routing, path_survives_a_head_of_any_size)
{
	fx_start(NULL);
	char req[4096], pad[2048];
	for (size_t n = 0; n < 1200; n += 7) {
		memset(pad, 'a', n);
		pad[n] = '\0';
		snprintf(req, sizeof req,
		         "GET /games/g%zu HTTP/1.1\r\nHost: x\r\nX-Pad: %s\r\n\r\n", n, pad);
		char want[32];
		snprintf(want, sizeof want, "g%zu", n);
		expect_field(req, 200, "id", want);
	}
	fx_stop();
}
