/*
 * tests/tool/ttt.h - the tic-tac-toe cluster as separate processes: nodes
 * of `build/examples/tictactoe node` started, killed and stopped, an HTTP
 * client that keeps a connection to each (tests/http/client.h), and a
 * game's history read back from the journal.
 */
#ifndef SKALD_TESTS_TOOL_TTT_H
#define SKALD_TESTS_TOOL_TTT_H

#include <stdbool.h>

#include <jansson.h>

#include "../http/client.h"
#include "tt.h"

#define TN_SECRET "tictactoe-tests-secret"

typedef struct tn_node_s {
	tt_proc_t proc;
	char name[8];
	char addr[64]; /* its cluster address */
	int port;      /* its HTTP port */
	bool alive;
	client_t cl; /* kept alive between requests */
	bool connected;
} tn_node_t;

/* Starts node name on store, joining through seed (NULL: it forms the
 * cluster), with the extra flags that follow (up to NULL), and waits for
 * the line it prints once it is up. */
void tn_start(tn_node_t *n, const char *name, const tn_node_t *seed, const char *store, ...);

/* Kills (SIGKILL) and reaps every node this process started and has not
 * stopped or killed: the suite's fini, so that a failed test leaves no
 * node behind. */
void tn_cleanup(void);

/* SIGKILL, and reaps it. */
void tn_kill(tn_node_t *n);

/* SIGTERM; asserts that it leaves and exits 0 within 60 s. */
void tn_stop(tn_node_t *n);

/* Waits (bounded) until GET /cluster on each live node of nodes[0..k)
 * lists `up` members up. */
void tn_await_up(tn_node_t *nodes, int k, int up);

/* One request on n's kept-alive connection (a new one if it broke).
 * Returns the status, or 0 if the node could not be reached or the
 * connection broke before the answer. *out (may be NULL) gets the JSON
 * body (owned; NULL if none); owner (may be NULL; 32 bytes) the
 * Skald-Owner header, "" without one. */
int tn_request(tn_node_t *n, const char *method, const char *path, const char *headers,
               const char *body, json_t **out, char *owner);

/* As tn_request, but n is killed (SIGKILL) once the request is sent,
 * before its answer is read: a request in flight when its node dies.
 * Returns 0 (no answer). */
int tn_request_and_kill(tn_node_t *n, const char *method, const char *path, const char *body);

/* As tn_request, with a JSON body built by json_pack (fmt and the values
 * after it) and the answer's status asserted to be want. Returns the body
 * (owned). */
json_t *tn_call(tn_node_t *n, int want, const char *method, const char *path, const char *fmt, ...);

/* The events of pid in the journal at uri, in order: an array of
 * {"seq", "type", "data"}. Owned. */
json_t *tn_events(const char *uri, const char *pid);

/* The string member key of obj, or "" (borrowed). */
const char *tn_str(const json_t *obj, const char *key);

#endif /* SKALD_TESTS_TOOL_TTT_H */
