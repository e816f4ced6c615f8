/*
 * examples/tictactoe/serve.h - the HTTP API and the web page of a node.
 *
 * Routes (docs/TICTACTOE.md has the whole API):
 *
 *   POST /players                {"name"}               201 {"player_id"}
 *   POST /matchmaking            header player_id       200 JSON lines
 *   POST /games                  {"x", "o"}             201 {"game_id"}
 *   POST /games/{id}/moves       {"player_id", "row", "col"}   200 state
 *   GET  /games/{id}                                    200 state
 *   GET  /games/{id}/stream                             200 JSON lines
 *   GET  /cluster                                       200 {"self", "members"}
 *   GET  /metrics                                       Prometheus text
 *   GET  /, /app.js, /style.css                         the web page
 *
 * The server (libskald-http) runs on a thread of its own. Its handlers
 * check the request, then hand it to a gateway actor of the node (one per
 * scheduler thread), which calls api.h and answers from its own thread.
 * Streams are actors of their own (streams.c). Bad input is answered 4xx
 * before anything is sent anywhere, so it writes nothing.
 */
#ifndef TTT_SERVE_H
#define TTT_SERVE_H

#include "node.h"

/* Largest request body. */
#define TTT_MAX_BODY (64 * 1024)

typedef struct ttt_serve_s ttt_serve_t;

/*
 * Serves node's API on hostport ("127.0.0.1:8080"; port 0: any) with at
 * most max_connections connections (0: 1024) and a heartbeat line every
 * heartbeat_ms (0: 5000) on matchmaking streams. On failure why (len
 * bytes) says what went wrong. Not from a scheduler thread.
 */
int ttt_serve_start(ttt_node_t *node, const char *hostport, unsigned max_connections,
                    unsigned heartbeat_ms, ttt_serve_t **out, char *why, size_t len);

/* The port it listens on. */
int ttt_serve_port(const ttt_serve_t *s);

/* Stops serving: the listener and every connection close; answers still
 * on their way are dropped. Safe with NULL. */
void ttt_serve_stop(ttt_serve_t *s);

/* Frees s, once the node's system has stopped (its gateways and streams
 * may use s until then). Safe with NULL. */
void ttt_serve_free(ttt_serve_t *s);

#endif /* TTT_SERVE_H */
