/*
 * tests/http/fixture.h - the server every test of the suite talks to: one
 * set of routes, started on a thread of its own on port 0.
 */
#ifndef TESTS_HTTP_FIXTURE_H
#define TESTS_HTTP_FIXTURE_H

#include <stdatomic.h>

#include "client.h"
#include "skald/http.h"

/* The server of the running test and its port. */
extern skald_http_server_t *fx_srv;
extern int fx_port;

/* What handlers that answer on other threads observed, for the tests. */
extern atomic_int fx_saw_closed;     /* skald_http_res_closed became true */
extern atomic_int fx_last_rc;        /* the last answer's return code */
extern atomic_int fx_stream_eclosed; /* a stream send returned SKALD_ECLOSED */
extern atomic_int fx_handled;        /* handlers called */

/* Waits (10 s at most) until n handlers have been called. */
void fx_wait_handled(int n);

/* Fills cfg with the defaults; the test changes what it tests. */
void fx_config(skald_http_config_t *cfg);
/* Registers every route of the suite on srv. */
void fx_routes(skald_http_server_t *srv);
/* Creates the server with cfg (NULL: defaults), registers the routes and
 * starts it on its own thread. */
void fx_start(const skald_http_config_t *cfg);
/* Waits for the handlers' threads, stops and frees the server, checks
 * that nothing leaked (under ASan). */
void fx_stop(void);
/* Fails the test unless GET /hello on a new connection is answered 200. */
void fx_expect_serving(void);
/* Fails the test if memory leaked (under ASan; nothing otherwise). */
void fx_no_leaks(void);

/* The handle kept by GET /never, answered by the test. */
extern skald_http_res_t *fx_never;

#endif
