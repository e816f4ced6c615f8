/*
 * tests/http/test_loop.c - the server on a loop the test owns: handlers that
 * answer later on that loop, closing with a callback, a loop that closes
 * clean.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "fixture.h"

typedef struct {
	uv_loop_t loop;
	uv_async_t done; /* the client thread has finished */
	skald_http_server_t *srv;
	int port;
	int closed; /* close callbacks */
	int timers; /* answers given from a timer */
	bool client_ok;
} ctx_t;

typedef struct {
	uv_timer_t timer;
	skald_http_res_t *res;
	ctx_t *ctx;
} pending_t;

static void on_timer_closed(uv_handle_t *h)
{
	free(h->data);
}

static void on_timer(uv_timer_t *t)
{
	pending_t *p = t->data;
	p->ctx->timers++;
	/* On the loop thread, outside any handler. */
	cr_assert_eq(skald_http_respond(p->res, 200, "text/plain", "timer", 5), 0);
	t->data = p;
	uv_close((uv_handle_t *)t, on_timer_closed);
}

static void by_timer(const skald_http_request_t *req, skald_http_res_t *res, void *arg)
{
	ctx_t *ctx = arg;
	pending_t *p = malloc(sizeof *p);
	p->res = res;
	p->ctx = ctx;
	uv_timer_init(&ctx->loop, &p->timer);
	p->timer.data = p;
	uv_timer_start(&p->timer, on_timer, 10, 0);
}

static void *client(void *arg)
{
	ctx_t *ctx = arg;
	client_t c;
	cl_connect(&c, ctx->port);
	bool ok = true;
	for (int i = 0; i < 3 && ok; i++) {
		cl_send(&c, "GET /timer HTTP/1.1\r\n\r\n", 0);
		resp_t r;
		ok = cl_read(&c, &r, false) && r.status == 200 && strcmp(r.body, "timer") == 0;
		resp_free(&r);
	}
	cl_close(&c);
	ctx->client_ok = ok;
	uv_async_send(&ctx->done);
	return NULL;
}

static void on_server_closed(skald_http_server_t *srv, void *arg)
{
	((ctx_t *)arg)->closed++;
}

static void on_done(uv_async_t *a)
{
	ctx_t *ctx = a->data;
	skald_http_close(ctx->srv, on_server_closed, ctx);
	uv_close((uv_handle_t *)a, NULL);
}

Test(loop, serves_on_the_callers_loop_and_closes_clean)
{
	ctx_t ctx;
	memset(&ctx, 0, sizeof ctx);
	cr_assert_eq(uv_loop_init(&ctx.loop), 0);
	cr_assert_eq(uv_async_init(&ctx.loop, &ctx.done, on_done), 0);
	ctx.done.data = &ctx;
	cr_assert_eq(skald_http_server_new(&ctx.srv, NULL), 0);
	cr_assert_eq(skald_http_route(ctx.srv, "GET", "/timer", by_timer, &ctx), 0);
	cr_assert_eq(skald_http_start(ctx.srv, &ctx.loop), 0);
	cr_assert_eq(skald_http_route(ctx.srv, "GET", "/late", by_timer, &ctx), SKALD_EBUSY);
	ctx.port = skald_http_port(ctx.srv);
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, client, &ctx), 0);
	uv_run(&ctx.loop, UV_RUN_DEFAULT);
	pthread_join(t, NULL);
	cr_assert(ctx.client_ok);
	cr_assert_eq(ctx.timers, 3);
	cr_assert_eq(ctx.closed, 1);
	cr_assert_eq(uv_loop_close(&ctx.loop), 0);
	skald_http_server_free(ctx.srv);
	fx_no_leaks();
}

Test(loop, port_in_use_is_reported)
{
	skald_http_server_t *a, *b;
	cr_assert_eq(skald_http_server_new(&a, NULL), 0);
	cr_assert_eq(skald_http_start_thread(a), 0);
	skald_http_config_t cfg;
	skald_http_config_init(&cfg);
	cfg.port = skald_http_port(a);
	cr_assert_eq(skald_http_server_new(&b, &cfg), 0);
	cr_assert_eq(skald_http_start_thread(b), UV_EADDRINUSE);
	skald_http_server_free(b);
	skald_http_stop(a);
	skald_http_server_free(a);
	fx_no_leaks();
}

Test(loop, bad_host_and_routes_are_refused)
{
	skald_http_server_t *s;
	skald_http_config_t cfg;
	skald_http_config_init(&cfg);
	cfg.host = "localhost"; /* a name, not an address */
	cr_assert_eq(skald_http_server_new(&s, &cfg), SKALD_EINVAL);
	cr_assert_eq(skald_http_server_new(&s, NULL), 0);
	cr_assert_eq(skald_http_route(s, "GET", "games", by_timer, NULL), SKALD_EINVAL);
	cr_assert_eq(skald_http_route(s, "get", "/games", by_timer, NULL), SKALD_EINVAL);
	cr_assert_eq(skald_http_route(s, "GET", "/a/*rest/b", by_timer, NULL), SKALD_EINVAL);
	cr_assert_eq(skald_http_route(s, "GET", "/a/:", by_timer, NULL), SKALD_EINVAL);
	cr_assert_eq(skald_http_route(s, "GET", "/a", NULL, NULL), SKALD_EINVAL);
	skald_http_server_free(s);
	fx_no_leaks();
}
