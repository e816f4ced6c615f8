/*
 * tests/http/fixture.c - the routes of the suite (see fixture.h).
 */
#include "fixture.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>

skald_http_server_t *fx_srv;
int fx_port;
atomic_int fx_saw_closed;
atomic_int fx_last_rc;
atomic_int fx_stream_eclosed;
atomic_int fx_handled;
skald_http_res_t *fx_never;

#define MAX_THREADS 16
static pthread_t threads[MAX_THREADS];
static atomic_int nthreads;

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* Runs fn(res) on a new thread, as an actor replying later would. */
static void later(void *(*fn)(void *), skald_http_res_t *res)
{
	int i = atomic_fetch_add(&nthreads, 1);
	cr_assert_lt(i, MAX_THREADS);
	cr_assert_eq(pthread_create(&threads[i], NULL, fn, res), 0);
}

static void hello(const skald_http_request_t *req, skald_http_res_t *res, void *arg)
{
	skald_http_respond(res, 200, "text/plain", "hello", 5);
}

static void game(const skald_http_request_t *req, skald_http_res_t *res, void *arg)
{
	skald_http_respond_json(res, 200, json_pack("{s:s}", "id", skald_http_param(req, "id")));
}

static void game_new(const skald_http_request_t *req, skald_http_res_t *res, void *arg)
{
	skald_http_respond_json(res, 200, json_pack("{s:s}", "literal", "new"));
}

static void move(const skald_http_request_t *req, skald_http_res_t *res, void *arg)
{
	json_t *body = skald_http_body_json(res);
	if (body == NULL)
		return; /* answered 400 */
	/* steals body */
	skald_http_respond_json(
	        res, 200, json_pack("{s:s, s:o}", "id", skald_http_param(req, "id"), "move", body));
}

static void files(const skald_http_request_t *req, skald_http_res_t *res, void *arg)
{
	skald_http_respond_json(res, 200,
	                        json_pack("{s:s}", "path", skald_http_param(req, "path")));
}

static void query(const skald_http_request_t *req, skald_http_res_t *res, void *arg)
{
	json_t *o = json_object();
	for (size_t i = 0; i < req->query_count; i++)
		json_object_set_new(o, req->query[i].name, json_string(req->query[i].value));
	skald_http_respond_json(res, 200, o);
}

static void echo(const skald_http_request_t *req, skald_http_res_t *res, void *arg)
{
	skald_http_respond(res, 200, "application/octet-stream", req->body, req->body_len);
}

static void headers(const skald_http_request_t *req, skald_http_res_t *res, void *arg)
{
	/* The server's own framing headers are refused, others pass. */
	int refused = skald_http_res_header(res, "Content-Length", "1");
	int split = skald_http_res_header(res, "X-Split", "a\r\nInjected: yes");
	int ok = skald_http_res_header(res, "X-Test", skald_http_header(req, "x-in"));
	skald_http_respond_json(
	        res, 200,
	        json_pack("{s:i, s:i, s:i}", "refused", refused, "split", split, "ok", ok));
}

static void *answer_later(void *arg)
{
	sleep_ms(50);
	atomic_store(&fx_last_rc, skald_http_respond(arg, 200, "text/plain", "later", 5));
	return NULL;
}

static void slow(const skald_http_request_t *req, skald_http_res_t *res, void *arg)
{
	later(answer_later, res);
}

static void *answer_when_gone(void *arg)
{
	skald_http_res_t *res = arg;
	/* Wait (bounded) until the server has seen the client go. */
	for (int i = 0; i < 1000 && !skald_http_res_closed(res); i++)
		sleep_ms(10);
	atomic_store(&fx_saw_closed, skald_http_res_closed(res));
	/* The request is still readable after the client went. */
	const char *id = skald_http_param(skald_http_request(res), "id");
	atomic_store(&fx_last_rc, skald_http_respond(res, 200, "text/plain", id, strlen(id)));
	return NULL;
}

static void gone(const skald_http_request_t *req, skald_http_res_t *res, void *arg)
{
	later(answer_when_gone, res);
	atomic_fetch_add(&fx_handled, 1);
}

static void never(const skald_http_request_t *req, skald_http_res_t *res, void *arg)
{
	fx_never = res;
	atomic_fetch_add(&fx_handled, 1);
}

static void *stream_lines(void *arg)
{
	skald_http_res_t *res = arg;
	for (int i = 0; i < 5; i++) {
		sleep_ms(5);
		skald_http_stream_send_json(res, json_pack("{s:i}", "n", i));
	}
	atomic_store(&fx_last_rc, skald_http_stream_end(res));
	return NULL;
}

static void stream(const skald_http_request_t *req, skald_http_res_t *res, void *arg)
{
	skald_http_stream_start(res, 200, "application/jsonl");
	later(stream_lines, res);
}

static void *stream_until_gone(void *arg)
{
	skald_http_res_t *res = arg;
	for (int i = 0; i < 1000; i++) {
		int rc = skald_http_stream_send(res, "tick\n", 5);
		if (rc == SKALD_ECLOSED) {
			atomic_store(&fx_stream_eclosed, 1);
			break;
		}
		sleep_ms(10);
	}
	skald_http_stream_end(res);
	return NULL;
}

static void live(const skald_http_request_t *req, skald_http_res_t *res, void *arg)
{
	skald_http_stream_start(res, 200, "text/plain");
	later(stream_until_gone, res);
	atomic_fetch_add(&fx_handled, 1);
}

static const char page[] = "<!doctype html><title>skald</title><p>hello</p>";

void fx_routes(skald_http_server_t *srv)
{
	cr_assert_eq(skald_http_route(srv, "GET", "/hello", hello, NULL), 0);
	cr_assert_eq(skald_http_route(srv, "GET", "/games/:id", game, NULL), 0);
	cr_assert_eq(skald_http_route(srv, "GET", "/games/new", game_new, NULL), 0);
	cr_assert_eq(skald_http_route(srv, "POST", "/games/:id/moves", move, NULL), 0);
	cr_assert_eq(skald_http_route(srv, "GET", "/files/*path", files, NULL), 0);
	cr_assert_eq(skald_http_route(srv, "GET", "/q", query, NULL), 0);
	cr_assert_eq(skald_http_route(srv, "POST", "/echo", echo, NULL), 0);
	cr_assert_eq(skald_http_route(srv, "GET", "/headers", headers, NULL), 0);
	cr_assert_eq(skald_http_route(srv, "GET", "/later", slow, NULL), 0);
	cr_assert_eq(skald_http_route(srv, "GET", "/gone/:id", gone, NULL), 0);
	cr_assert_eq(skald_http_route(srv, "GET", "/never", never, NULL), 0);
	cr_assert_eq(skald_http_route(srv, "GET", "/stream", stream, NULL), 0);
	cr_assert_eq(skald_http_route(srv, "GET", "/live", live, NULL), 0);
	cr_assert_eq(
	        skald_http_route_asset(srv, "/", "text/html; charset=utf-8", page, sizeof page - 1),
	        0);
}

void fx_wait_handled(int n)
{
	for (int i = 0; i < 1000 && atomic_load(&fx_handled) < n; i++)
		sleep_ms(10);
	cr_assert_geq(atomic_load(&fx_handled), n, "the handler was not called");
}

void fx_expect_serving(void)
{
	resp_t r;
	cr_assert(cl_request(fx_port, "GET /hello HTTP/1.1\r\n\r\n", &r),
	          "the server is not serving");
	cr_assert_eq(r.status, 200);
	resp_free(&r);
}

void fx_config(skald_http_config_t *cfg)
{
	skald_http_config_init(cfg);
}

void fx_start(const skald_http_config_t *cfg)
{
	cr_assert_eq(skald_http_server_new(&fx_srv, cfg), 0);
	fx_routes(fx_srv);
	cr_assert_eq(skald_http_start_thread(fx_srv), 0);
	fx_port = skald_http_port(fx_srv);
	cr_assert_gt(fx_port, 0);
}

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>

void fx_no_leaks(void)
{
	/* The report itself goes to stderr. */
	cr_assert_eq(__lsan_do_recoverable_leak_check(), 0,
	             "memory leaked (LeakSanitizer's report is on stderr)");
}
#else
void fx_no_leaks(void)
{
}
#endif

void fx_stop(void)
{
	int n = atomic_load(&nthreads);
	for (int i = 0; i < n; i++)
		pthread_join(threads[i], NULL);
	atomic_store(&nthreads, 0);
	skald_http_stop(fx_srv);
	skald_http_server_free(fx_srv);
	fx_srv = NULL;
	fx_no_leaks();
}
