/*
 * http/server.c - the server: configuration, routes, the listener, the
 * hub's async, closing, and the variant that runs on a thread of its own.
 */
#include <stdlib.h>
#include <string.h>

#include "http/internal.h"

void skald_http_config_init(skald_http_config_t *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->host = "127.0.0.1";
	cfg->max_header_bytes = 16 * 1024;
	cfg->max_body_bytes = 1024 * 1024;
	cfg->max_connections = 1024;
	cfg->header_timeout_ms = 10000;
	cfg->body_timeout_ms = 30000;
	cfg->idle_timeout_ms = 30000;
	cfg->request_timeout_ms = 30000;
	cfg->max_stream_queue_bytes = 1024 * 1024;
}

int skald_http_server_new(skald_http_server_t **out, const skald_http_config_t *cfg)
{
	skald_http_config_t def;
	skald_http_config_init(&def);
	skald_http_server_t *srv = calloc(1, sizeof *srv);
	skald__http_hub_t *hub = calloc(1, sizeof *hub);
	if (srv == NULL || hub == NULL) {
		free(srv);
		free(hub);
		return SKALD_ENOMEM;
	}
	srv->cfg = cfg != NULL ? *cfg : def;
	/* Zero limits take the defaults (see http.h: never "unlimited"). */
#define DEFAULT(field)                                                                             \
	if (srv->cfg.field == 0)                                                                   \
		srv->cfg.field = def.field;
	DEFAULT(max_header_bytes)
	DEFAULT(max_body_bytes)
	DEFAULT(max_connections)
	DEFAULT(header_timeout_ms)
	DEFAULT(body_timeout_ms)
	DEFAULT(idle_timeout_ms)
	DEFAULT(request_timeout_ms)
	DEFAULT(max_stream_queue_bytes)
#undef DEFAULT
	const char *host = srv->cfg.host != NULL ? srv->cfg.host : def.host;
	int rc = strlen(host) < sizeof srv->host ? 0 : SKALD_EINVAL;
	if (rc == 0 && srv->cfg.port >= 0 && srv->cfg.port <= 65535 &&
	    uv_ip4_addr(host, srv->cfg.port, (struct sockaddr_in *)&srv->addr) != 0 &&
	    uv_ip6_addr(host, srv->cfg.port, (struct sockaddr_in6 *)&srv->addr) != 0)
		rc = SKALD_EINVAL;
	if (srv->cfg.port < 0 || srv->cfg.port > 65535)
		rc = SKALD_EINVAL;
	if (rc != 0) {
		free(srv);
		free(hub);
		return rc;
	}
	strcpy(srv->host, host);
	srv->cfg.host = srv->host;
	uv_mutex_init(&hub->lock);
	hub->refs = 1; /* the server's */
	hub->max_stream_queue = srv->cfg.max_stream_queue_bytes;
	srv->hub = hub;
	*out = srv;
	return 0;
}

int skald_http_route(skald_http_server_t *srv, const char *method, const char *pattern,
                     skald_http_handler_fn handler, void *arg)
{
	if (srv->started)
		return SKALD_EBUSY;
	return skald__http_route_add(&srv->routes, method, pattern, handler, arg);
}

int skald_http_port(const skald_http_server_t *srv)
{
	return srv->port;
}

/* ------------------------------------------------------------------------ */
/* Listening                                                                 */

static void on_connection(uv_stream_t *listener, int status)
{
	skald_http_server_t *srv = listener->data;
	if (status == 0 && !srv->closing)
		skald__http_conn_accept(srv);
}

static void on_async(uv_async_t *a)
{
	skald__http_hub_t *hub = a->data;
	skald__http_hub_drain(hub);
	uv_mutex_lock(&hub->lock);
	bool stop = hub->stop_requested;
	uv_mutex_unlock(&hub->lock);
	if (stop && hub->srv != NULL && !hub->srv->closing)
		skald_http_close(hub->srv, NULL, NULL);
}

static void on_listener_closed(uv_handle_t *h)
{
	skald_http_server_t *srv = h->data;
	free(h);
	if (srv != NULL)
		skald__http_server_handle_closed(srv);
}

int skald_http_start(skald_http_server_t *srv, uv_loop_t *loop)
{
	if (srv->started || srv->loop != NULL)
		return SKALD_EBUSY;
	uv_tcp_t *l = malloc(sizeof *l);
	if (l == NULL)
		return SKALD_ENOMEM;
	int rc = uv_tcp_init(loop, l);
	if (rc != 0) {
		free(l);
		return rc;
	}
	/* A failed listener is closed with no server to tell: the server may
	 * be freed before the loop runs its close callback. */
	l->data = NULL;
	rc = uv_tcp_bind(l, (const struct sockaddr *)&srv->addr, 0);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)l, 511, on_connection);
	struct sockaddr_storage name;
	int namelen = sizeof name;
	if (rc == 0)
		rc = uv_tcp_getsockname(l, (struct sockaddr *)&name, &namelen);
	skald__http_hub_t *hub = srv->hub;
	if (rc == 0)
		rc = uv_async_init(loop, &hub->async, on_async);
	if (rc != 0) {
		uv_close((uv_handle_t *)l, on_listener_closed);
		return rc;
	}
	srv->port = name.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&name)->sin6_port)
	                                       : ntohs(((struct sockaddr_in *)&name)->sin_port);
	l->data = srv;
	srv->listener = l;
	srv->loop = loop;
	srv->started = true;
	srv->open_handles = 2; /* the listener and the async */
	hub->async.data = hub;
	hub->srv = srv;
	hub->loop_thread = uv_thread_self();
	uv_mutex_lock(&hub->lock);
	hub->refs++; /* the async's, until its close callback */
	hub->async_open = true;
	uv_mutex_unlock(&hub->lock);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Closing                                                                   */

void skald__http_server_handle_closed(skald_http_server_t *srv)
{
	if (--srv->open_handles == 0 && srv->closing && srv->close_cb != NULL)
		srv->close_cb(srv, srv->close_arg);
}

static void on_async_closed(uv_handle_t *h)
{
	skald__http_hub_t *hub = h->data;
	skald_http_server_t *srv = hub->srv;
	hub->srv = NULL;
	skald__http_server_handle_closed(srv);
	skald__http_hub_unref(hub);
}

void skald_http_close(skald_http_server_t *srv, void (*cb)(skald_http_server_t *srv, void *arg),
                      void *arg)
{
	if (!srv->started || srv->closing)
		return;
	srv->closing = true;
	srv->close_cb = cb;
	srv->close_arg = arg;
	uv_close((uv_handle_t *)srv->listener, on_listener_closed);
	while (srv->conns != NULL)
		skald__http_conn_close(srv->conns);
	/* Every exchange is detached now: what is still pending is dropped. */
	skald__http_hub_t *hub = srv->hub;
	skald__http_hub_drain(hub);
	uv_mutex_lock(&hub->lock);
	hub->async_open = false;
	uv_mutex_unlock(&hub->lock);
	uv_close((uv_handle_t *)&hub->async, on_async_closed);
}

void skald_http_server_free(skald_http_server_t *srv)
{
	if (srv == NULL)
		return;
	if (srv->threaded)
		uv_sem_destroy(&srv->ready);
	skald__http_routes_free(srv->routes);
	skald__http_hub_unref(srv->hub);
	free(srv);
}

/* ------------------------------------------------------------------------ */
/* A thread of its own                                                       */

static void server_thread(void *arg)
{
	skald_http_server_t *srv = arg;
	uv_loop_t *loop = &srv->own_loop;
	srv->start_err = skald_http_start(srv, loop);
	if (srv->start_err != 0) {
		/* Let the failed listener's close run before the loop closes. */
		uv_run(loop, UV_RUN_DEFAULT);
		uv_loop_close(loop);
		uv_sem_post(&srv->ready);
		return;
	}
	uv_sem_post(&srv->ready);
	uv_run(loop, UV_RUN_DEFAULT);
	uv_loop_close(loop);
}

int skald_http_start_thread(skald_http_server_t *srv)
{
	if (srv->started || srv->threaded)
		return SKALD_EBUSY;
	int rc = uv_loop_init(&srv->own_loop);
	if (rc != 0)
		return rc;
	rc = uv_sem_init(&srv->ready, 0);
	if (rc != 0) {
		uv_loop_close(&srv->own_loop);
		return rc;
	}
	srv->threaded = true;
	rc = uv_thread_create(&srv->thread, server_thread, srv);
	if (rc != 0) {
		uv_loop_close(&srv->own_loop);
		return rc;
	}
	uv_sem_wait(&srv->ready);
	if (srv->start_err != 0) {
		uv_thread_join(&srv->thread);
		srv->loop = NULL;
		return srv->start_err;
	}
	return 0;
}

void skald_http_stop(skald_http_server_t *srv)
{
	if (!srv->threaded || !srv->started)
		return;
	skald__http_hub_t *hub = srv->hub;
	uv_mutex_lock(&hub->lock);
	hub->stop_requested = true;
	if (hub->async_open)
		uv_async_send(&hub->async);
	uv_mutex_unlock(&hub->lock);
	uv_thread_join(&srv->thread);
	srv->started = false;
}
