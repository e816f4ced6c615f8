/*
 * tests/tool/ttt.c - the tic-tac-toe cluster as separate processes (ttt.h).
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "skald/journal.h"
#include "ttt.h"

/* The nodes this test process started and has not reaped, for
 * tn_cleanup. */
static pid_t running[16];

static void forget(pid_t pid)
{
	for (size_t i = 0; i < sizeof running / sizeof running[0]; i++)
		if (running[i] == pid)
			running[i] = 0;
}

void tn_cleanup(void)
{
	for (size_t i = 0; i < sizeof running / sizeof running[0]; i++) {
		if (running[i] > 0) {
			kill(running[i], SIGKILL);
			waitpid(running[i], NULL, 0);
			running[i] = 0;
		}
	}
}

void tn_start(tn_node_t *n, const char *name, const tn_node_t *seed, const char *store, ...)
{
	memset(n, 0, sizeof *n);
	snprintf(n->name, sizeof n->name, "%s", name);
	char *argv[64];
	int k = 0;
	argv[k++] = (char *)tt_build("examples/tictactoe");
	argv[k++] = "node";
	argv[k++] = "--name";
	argv[k++] = n->name;
	argv[k++] = "--listen";
	argv[k++] = "tcp://127.0.0.1:0";
	argv[k++] = "--http";
	argv[k++] = "127.0.0.1:0";
	argv[k++] = "--secret";
	argv[k++] = TN_SECRET;
	argv[k++] = "--store";
	argv[k++] = (char *)store;
	argv[k++] = "--threads";
	argv[k++] = "2";
	if (seed != NULL) {
		argv[k++] = "--seeds";
		argv[k++] = (char *)seed->addr;
	}
	va_list ap;
	va_start(ap, store);
	k = tt_argv_add(argv, k, 64, ap);
	va_end(ap);
	argv[k] = NULL;
	tt_spawn(&n->proc, argv);
	for (size_t i = 0; i < sizeof running / sizeof running[0]; i++) {
		if (running[i] == 0) {
			running[i] = n->proc.pid;
			break;
		}
	}
	char line[1024];
	tt_read_line(&n->proc, line, sizeof line, 60000);
	const char *c = strstr(line, "cluster tcp://"), *h = strstr(line, "http://127.0.0.1:");
	cr_assert(c != NULL && h != NULL, "node %s printed \"%s\"", name, line);
	snprintf(n->addr, sizeof n->addr, "%.*s", (int)strcspn(c + 8, ", \n"), c + 8);
	n->port = atoi(h + strlen("http://127.0.0.1:"));
	cr_assert_gt(n->port, 0, "%s", line);
	n->alive = true;
}

static void disconnect(tn_node_t *n)
{
	if (n->connected)
		cl_close(&n->cl);
	n->connected = false;
}

void tn_kill(tn_node_t *n)
{
	disconnect(n);
	cr_assert_eq(kill(n->proc.pid, SIGKILL), 0);
	int st = 0;
	while (waitpid(n->proc.pid, &st, 0) < 0 && errno == EINTR)
		;
	forget(n->proc.pid);
	cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "node %s was not killed", n->name);
	close(n->proc.out);
	close(n->proc.err);
	n->alive = false;
}

void tn_stop(tn_node_t *n)
{
	disconnect(n);
	kill(n->proc.pid, SIGTERM);
	tt_result_t r;
	tt_finish(&n->proc, &r, 60000);
	forget(n->proc.pid);
	tt_assert_code(&r, 0, "a node after SIGTERM");
	cr_assert_not_null(strstr(r.out, "left the cluster"), "%s", r.out);
	tt_free(&r);
	n->alive = false;
}

void tn_kill(tn_node_t *n);

static int request(tn_node_t *n, const char *method, const char *path, const char *headers,
                   const char *body, json_t **out, char *owner, bool kill_after_send)
{
	if (out != NULL)
		*out = NULL;
	if (owner != NULL)
		owner[0] = '\0';
	if (!n->alive)
		return 0;
	if (!n->connected && !(n->connected = cl_connect_try(&n->cl, n->port)))
		return 0;
	size_t blen = body != NULL ? strlen(body) : 0;
	char *req = malloc(blen + 1024);
	cr_assert_not_null(req);
	int len = snprintf(req, 1024,
	                   "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%sContent-Length: %zu\r\n\r\n",
	                   method, path, headers != NULL ? headers : "", blen);
	memcpy(req + len, body != NULL ? body : "", blen);
	resp_t r;
	bool ok = cl_send_try(&n->cl, req, (size_t)len + blen);
	if (kill_after_send) {
		/* The request is on its way, or even handled: the node dies
		 * before its answer is read. */
		tn_kill(n);
		ok = false;
	}
	ok = ok && cl_read(&n->cl, &r, false);
	free(req);
	if (!ok) {
		disconnect(n);
		return 0;
	}
	const char *o = resp_header(&r, "skald-owner");
	if (owner != NULL && o != NULL)
		snprintf(owner, 32, "%s", o);
	if (out != NULL && r.body_len > 0)
		*out = json_loadb(r.body, r.body_len, 0, NULL);
	const char *conn = resp_header(&r, "connection");
	if (conn != NULL && strcmp(conn, "close") == 0)
		disconnect(n);
	int status = r.status;
	resp_free(&r);
	return status;
}

int tn_request(tn_node_t *n, const char *method, const char *path, const char *headers,
               const char *body, json_t **out, char *owner)
{
	return request(n, method, path, headers, body, out, owner, false);
}

int tn_request_and_kill(tn_node_t *n, const char *method, const char *path, const char *body)
{
	return request(n, method, path, NULL, body, NULL, NULL, true);
}

json_t *tn_call(tn_node_t *n, int want, const char *method, const char *path, const char *fmt, ...)
{
	char *text = NULL;
	if (fmt != NULL) {
		va_list ap;
		va_start(ap, fmt);
		json_t *b = json_vpack_ex(NULL, 0, fmt, ap);
		va_end(ap);
		cr_assert_not_null(b, "bad body for %s %s", method, path);
		text = json_dumps(b, JSON_COMPACT);
		json_decref(b);
	}
	json_t *out = NULL;
	int status = tn_request(n, method, path, NULL, text, &out, NULL);
	char *shown = out != NULL ? json_dumps(out, JSON_COMPACT) : NULL;
	cr_assert_eq(status, want, "%s %s on node %s: %d %s", method, path, n->name, status,
	             shown != NULL ? shown : "");
	free(shown);
	free(text);
	return out;
}

void tn_await_up(tn_node_t *nodes, int k, int up)
{
	for (int tries = 0;; tries++) {
		bool all = true;
		for (int i = 0; i < k && all; i++) {
			if (!nodes[i].alive)
				continue;
			json_t *c = NULL;
			int status = tn_request(&nodes[i], "GET", "/cluster", NULL, NULL, &c, NULL);
			int n = 0;
			size_t j;
			json_t *m;
			json_array_foreach(json_object_get(c, "members"), j, m)
			{
				n += strcmp(tn_str(m, "status"), "up") == 0;
			}
			all = status == 200 && n == up;
			json_decref(c);
		}
		if (all)
			return;
		cr_assert_lt(tries, 600, "the nodes do not agree on %d members up", up);
		usleep(50 * 1000);
	}
}

const char *tn_str(const json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));
	return s != NULL ? s : "";
}

/* ------------------------------------------------------------------------ */
/* Histories                                                                 */

typedef struct {
	json_t *events;
	int status;
	bool done;
} read_t;

static int on_events(skald_journal_t *j, const skald_event_t *events, size_t n, void *arg)
{
	read_t *r = arg;
	for (size_t i = 0; i < n; i++)
		json_array_append_new(r->events,
		                      json_pack("{s:I, s:s, s:O}", "seq", (json_int_t)events[i].seq,
		                                "type", events[i].type, "data", events[i].data));
	return 0;
}

static void on_done(skald_journal_t *j, int status, void *arg)
{
	read_t *r = arg;
	r->status = status;
	r->done = true;
}

json_t *tn_events(const char *uri, const char *pid)
{
	uv_loop_t loop;
	cr_assert_eq(uv_loop_init(&loop), 0);
	skald_journal_t *j;
	cr_assert_eq(skald_journal_open(&loop, uri, &j), 0, "%s", skald_journal_open_errmsg());
	read_t r = {.events = json_array()};
	cr_assert_eq(
	        skald_journal_read(j, pid, 1, SKALD_SEQ_MAX, SKALD_SEQ_MAX, on_events, on_done, &r),
	        0);
	while (!r.done)
		uv_run(&loop, UV_RUN_ONCE);
	cr_assert_eq(r.status, 0, "reading %s: %s", pid, skald_strerror(r.status));
	skald_journal_close(j, NULL, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	cr_assert_eq(uv_loop_close(&loop), 0);
	return r.events;
}
