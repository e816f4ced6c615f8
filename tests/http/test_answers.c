/*
 * tests/http/test_answers.c - answers from other threads, after the client
 * went away, never given (the request timeout), and streamed.
 */
#include <string.h>

#include <criterion/criterion.h>

#include "fixture.h"

Test(answers, answer_from_another_thread)
{
	fx_start(NULL);
	resp_t r;
	cr_assert(cl_request(fx_port, "GET /later HTTP/1.1\r\n\r\n", &r));
	cr_assert_eq(r.status, 200);
	cr_assert_str_eq(r.body, "later");
	resp_free(&r);
	fx_stop();
	cr_assert_eq(atomic_load(&fx_last_rc), 0);
}

Test(answers, answer_after_the_client_went_is_dropped)
{
	fx_start(NULL);
	client_t c;
	cl_connect(&c, fx_port);
	cl_send(&c, "GET /gone/42 HTTP/1.1\r\n\r\n", 0);
	fx_wait_handled(1);
	/* Close without waiting: the handler's thread sees the handle closed,
	 * reads the request and answers; nothing may crash or leak (ASan). */
	cl_close(&c);
	fx_stop();
	cr_assert_eq(atomic_load(&fx_saw_closed), 1);
	cr_assert_eq(atomic_load(&fx_last_rc), 0);
}

Test(answers, clients_that_vanish_while_answers_arrive)
{
	fx_start(NULL);
	for (int i = 0; i < 10; i++) {
		client_t c;
		cl_connect(&c, fx_port);
		cl_send(&c, "GET /later HTTP/1.1\r\n\r\nGET /hello HTTP/1.1\r\n\r\n", 0);
		cl_close(&c);
	}
	fx_expect_serving();
	fx_stop();
}

Test(answers, unanswered_request_times_out_with_503)
{
	skald_http_config_t cfg;
	fx_config(&cfg);
	cfg.request_timeout_ms = 100;
	fx_start(&cfg);
	client_t c;
	cl_connect(&c, fx_port);
	cl_send(&c, "GET /never HTTP/1.1\r\n\r\n", 0);
	resp_t r;
	cr_assert(cl_read(&c, &r, false));
	cr_assert_eq(r.status, 503);
	cr_assert_not_null(strstr(r.body, "\"code\":\"timeout\""), "%s", r.body);
	resp_free(&r);
	/* The connection carries on. */
	cl_send(&c, "GET /hello HTTP/1.1\r\n\r\n", 0);
	cr_assert(cl_read(&c, &r, false));
	cr_assert_eq(r.status, 200);
	resp_free(&r);
	/* The late answer is dropped and frees the handle. */
	cr_assert_not_null(fx_never);
	cr_assert(skald_http_res_closed(fx_never));
	cr_assert_eq(skald_http_respond(fx_never, 200, "text/plain", "late", 4), 0);
	cl_close(&c);
	fx_stop();
}

Test(answers, handle_outlives_the_server)
{
	fx_start(NULL);
	client_t c;
	cl_connect(&c, fx_port);
	cl_send(&c, "GET /never HTTP/1.1\r\n\r\n", 0);
	fx_wait_handled(1);
	fx_stop();
	cl_close(&c);
	/* The server is freed; the handle still is the test's to answer. */
	cr_assert(skald_http_res_closed(fx_never));
	cr_assert_eq(skald_http_respond_error(fx_never, 500, "late", "after %s", "the server"), 0);
	fx_never = NULL;
	fx_no_leaks();
}

Test(answers, stream_sends_json_lines_in_chunks)
{
	fx_start(NULL);
	resp_t r;
	cr_assert(cl_request(fx_port, "GET /stream HTTP/1.1\r\n\r\n", &r));
	cr_assert_eq(r.status, 200);
	cr_assert_str_eq(resp_header(&r, "transfer-encoding"), "chunked");
	cr_assert_str_eq(resp_header(&r, "content-type"), "application/jsonl");
	cr_assert_eq(r.chunks, 6, "5 chunks and the last");
	char *line = r.body;
	for (int i = 0; i < 5; i++) {
		char *nl = strchr(line, '\n');
		cr_assert_not_null(nl);
		*nl = '\0';
		json_t *j = json_loads(line, 0, NULL);
		cr_assert_not_null(j, "line %d: %s", i, line);
		cr_assert_eq(json_integer_value(json_object_get(j, "n")), i);
		json_decref(j);
		line = nl + 1;
	}
	cr_assert_str_eq(line, "");
	resp_free(&r);
	fx_stop();
	cr_assert_eq(atomic_load(&fx_last_rc), 0);
}

Test(answers, stream_learns_that_the_client_went)
{
	fx_start(NULL);
	client_t c;
	cl_connect(&c, fx_port);
	cl_send(&c, "GET /live HTTP/1.1\r\n\r\n", 0);
	fx_wait_handled(1);
	cl_close(&c);
	fx_stop();
	cr_assert_eq(atomic_load(&fx_stream_eclosed), 1);
}

Test(answers, keep_alive_continues_after_a_stream)
{
	fx_start(NULL);
	client_t c;
	cl_connect(&c, fx_port);
	cl_send(&c, "GET /stream HTTP/1.1\r\n\r\nGET /hello HTTP/1.1\r\n\r\n", 0);
	resp_t r;
	cr_assert(cl_read(&c, &r, false));
	cr_assert_eq(r.status, 200);
	cr_assert_eq(r.chunks, 6);
	resp_free(&r);
	cr_assert(cl_read(&c, &r, false));
	cr_assert_str_eq(r.body, "hello");
	resp_free(&r);
	cl_close(&c);
	fx_stop();
}
