/*
 * tests/http/test_limits.c - sizes, timeouts, connections and malformed
 * input: each answered with its status and the connection closed.
 */
#include <string.h>
#include <sys/socket.h>

#include <criterion/criterion.h>

#include "fixture.h"

/* Sends req on a new connection; expects status, then the close. */
static void expect_refusal(const char *req, size_t len, int status)
{
	client_t c;
	cl_connect(&c, fx_port);
	if (req != NULL)
		cl_send(&c, req, len);
	resp_t r;
	cr_assert(cl_read(&c, &r, false), "no answer");
	cr_assert_eq(r.status, status, "status %d, body %s", r.status, r.body ? r.body : "");
	cr_assert_str_eq(resp_header(&r, "connection"), "close");
	cr_assert(cl_wait_closed(&c));
	resp_free(&r);
	cl_close(&c);
}

Test(limits, announced_body_over_the_limit_is_413)
{
	skald_http_config_t cfg;
	fx_config(&cfg);
	cfg.max_body_bytes = 1024;
	fx_start(&cfg);
	expect_refusal("POST /echo HTTP/1.1\r\nContent-Length: 5000\r\n\r\n", 0, 413);
	fx_stop();
}

Test(limits, chunked_body_over_the_limit_is_413)
{
	skald_http_config_t cfg;
	fx_config(&cfg);
	cfg.max_body_bytes = 16;
	fx_start(&cfg);
	expect_refusal("POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
	               "10\r\n0123456789abcdef\r\n1\r\nx\r\n0\r\n\r\n",
	               0, 413);
	fx_stop();
}

Test(limits, body_at_the_limit_passes)
{
	skald_http_config_t cfg;
	fx_config(&cfg);
	cfg.max_body_bytes = 16;
	fx_start(&cfg);
	resp_t r;
	cr_assert(cl_request(
	        fx_port, "POST /echo HTTP/1.1\r\nContent-Length: 16\r\n\r\n0123456789abcdef", &r));
	cr_assert_eq(r.status, 200);
	cr_assert_eq(r.body_len, 16);
	resp_free(&r);
	fx_stop();
}

Test(limits, huge_headers_are_431)
{
	skald_http_config_t cfg;
	fx_config(&cfg);
	cfg.max_header_bytes = 1024;
	fx_start(&cfg);
	char req[8192];
	char big[4000];
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	snprintf(req, sizeof req, "GET /hello HTTP/1.1\r\nX-Big: %s\r\n\r\n", big);
	expect_refusal(req, 0, 431);
	fx_stop();
}

Test(limits, many_small_headers_are_431)
{
	skald_http_config_t cfg;
	fx_config(&cfg);
	cfg.max_header_bytes = 1024;
	fx_start(&cfg);
	char req[16384] = "GET /hello HTTP/1.1\r\n";
	for (int i = 0; i < 500; i++)
		strcat(req, "a: b\r\n");
	strcat(req, "\r\n");
	expect_refusal(req, 0, 431);
	fx_stop();
}

Test(limits, slow_headers_time_out_with_408)
{
	skald_http_config_t cfg;
	fx_config(&cfg);
	cfg.header_timeout_ms = 100;
	fx_start(&cfg);
	/* Headers that never finish. */
	expect_refusal("GET /hello HTTP/1.1\r\nHost: x", 0, 408);
	fx_stop();
}

Test(limits, slow_body_times_out_with_408)
{
	skald_http_config_t cfg;
	fx_config(&cfg);
	cfg.body_timeout_ms = 100;
	fx_start(&cfg);
	expect_refusal("POST /echo HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc", 0, 408);
	fx_stop();
}

Test(limits, idle_connection_is_closed)
{
	skald_http_config_t cfg;
	fx_config(&cfg);
	cfg.idle_timeout_ms = 100;
	fx_start(&cfg);
	client_t c;
	cl_connect(&c, fx_port);
	cr_assert(cl_wait_closed(&c));
	cl_close(&c);
	fx_stop();
}

Test(limits, connection_over_the_limit_gets_503)
{
	skald_http_config_t cfg;
	fx_config(&cfg);
	cfg.max_connections = 2;
	fx_start(&cfg);
	client_t a, b;
	cl_connect(&a, fx_port);
	cl_connect(&b, fx_port);
	/* Both are accepted once they are answered. */
	resp_t r;
	cl_send(&a, "GET /hello HTTP/1.1\r\n\r\n", 0);
	cr_assert(cl_read(&a, &r, false));
	resp_free(&r);
	cl_send(&b, "GET /hello HTTP/1.1\r\n\r\n", 0);
	cr_assert(cl_read(&b, &r, false));
	resp_free(&r);
	expect_refusal(NULL, 0, 503);
	/* The first two still work. */
	cl_send(&a, "GET /hello HTTP/1.1\r\n\r\n", 0);
	cr_assert(cl_read(&a, &r, false));
	cr_assert_eq(r.status, 200);
	resp_free(&r);
	cl_close(&a);
	cl_close(&b);
	fx_stop();
}

Test(limits, garbage_is_400)
{
	fx_start(NULL);
	expect_refusal("\x01\x02 nonsense\r\n\r\n", 0, 400);
	fx_stop();
}

Test(limits, bad_content_length_is_400)
{
	fx_start(NULL);
	expect_refusal("POST /echo HTTP/1.1\r\nContent-Length: abc\r\n\r\n", 0, 400);
	fx_stop();
}

Test(limits, content_length_and_chunked_together_is_400)
{
	fx_start(NULL);
	expect_refusal(
	        "POST /echo HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
	        "3\r\nabc\r\n0\r\n\r\n",
	        0, 400);
	fx_stop();
}

Test(limits, target_that_is_not_a_path_is_400)
{
	fx_start(NULL);
	expect_refusal("GET * HTTP/1.1\r\n\r\n", 0, 400);
	fx_stop();
}

Test(limits, nul_in_the_request_is_400)
{
	fx_start(NULL);
	static const char req[] = "GET /hel\0lo HTTP/1.1\r\n\r\n";
	expect_refusal(req, sizeof req - 1, 400);
	fx_stop();
}

Test(limits, mangled_requests_never_crash_the_server)
{
	fx_start(NULL);
	static const char valid[] =
	        "POST /games/7/moves?x=1 HTTP/1.1\r\nHost: x\r\n"
	        "Transfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n";
	unsigned seed = 12345;
	for (int i = 0; i < 200; i++) {
		char req[sizeof valid];
		memcpy(req, valid, sizeof valid);
		/* A few bytes replaced by random ones, anywhere. */
		for (int k = 0; k < 1 + i % 4; k++)
			req[rand_r(&seed) % (sizeof valid - 1)] = (char)(rand_r(&seed) & 0xff);
		client_t c;
		cl_connect(&c, fx_port);
		cl_send(&c, req, sizeof valid - 1);
		/* Whatever the answer (or none, for a request the mangling left
		 * unfinished), the server must stay up; the idle end of this
		 * connection is the client's close. */
		shutdown(c.fd, SHUT_WR);
		cl_wait_closed(&c);
		cl_close(&c);
	}
	fx_expect_serving();
	fx_stop();
}
