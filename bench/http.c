/*
 * bench/http.c - the HTTP module: requests per second and latency of a
 * trivial JSON handler over keep-alive connections.
 *
 * Prints one line per figure on stdout:
 *   http-json conns=<c> n=<requests> time=<s>s rate=<r> req/s p50=<us>us p99=<us>us
 *   http-json-thread ...   (the same, answered from another thread)
 *   http-json-pipelined ... (each connection keeps <depth> requests in flight)
 *
 * Usage: http [scale]   (scale > 0 multiplies every n; default 1)
 *
 * The server runs on its own thread (skald_http_start_thread); each client
 * connection is a thread of this program with a blocking socket, which
 * sends a request, reads the whole answer (parsed with libhttp-parser) and
 * records the time between the two. "thread" hands every request to a
 * worker thread that answers it, the path of a handler that asks an actor.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "skald/http.h"

#define CONNS          4
#define PIPELINE_DEPTH 16

static double scale = 1.0;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "http: %s: %s\n", what, err ? strerror(err) : "failed");
	exit(1);
}

/* ------------------------------------------------------------------------ */
/* Handlers                                                                  */

static const char reply[] = "{\"ok\":true,\"board\":\"X.O......\"}";

static void json_now(const skald_http_request_t *req, skald_http_res_t *res, void *arg)
{
	skald_http_respond(res, 200, "application/json", reply, sizeof reply - 1);
}

/* A worker thread with a locked queue of handles, as an actor would be. */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	skald_http_res_t *q[4096];
	size_t head, tail;
	int stop;
} worker = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, {0}, 0, 0, 0};

static void json_later(const skald_http_request_t *req, skald_http_res_t *res, void *arg)
{
	pthread_mutex_lock(&worker.lock);
	if (worker.tail - worker.head == sizeof worker.q / sizeof worker.q[0]) {
		pthread_mutex_unlock(&worker.lock);
		skald_http_respond_error(res, 503, "busy", "the worker's queue is full");
		return;
	}
	worker.q[worker.tail++ % (sizeof worker.q / sizeof worker.q[0])] = res;
	pthread_cond_signal(&worker.cond);
	pthread_mutex_unlock(&worker.lock);
}

static void *worker_main(void *arg)
{
	pthread_mutex_lock(&worker.lock);
	for (;;) {
		while (worker.head == worker.tail && !worker.stop)
			pthread_cond_wait(&worker.cond, &worker.lock);
		if (worker.head == worker.tail)
			break;
		skald_http_res_t *res =
		        worker.q[worker.head++ % (sizeof worker.q / sizeof worker.q[0])];
		pthread_mutex_unlock(&worker.lock);
		skald_http_respond(res, 200, "application/json", reply, sizeof reply - 1);
		pthread_mutex_lock(&worker.lock);
	}
	pthread_mutex_unlock(&worker.lock);
	return NULL;
}

/* ------------------------------------------------------------------------ */
/* Clients                                                                   */

typedef struct {
	int port;
	const char *path;
	long n;      /* requests to send */
	int depth;   /* requests in flight */
	double *lat; /* n latencies, seconds */
	int done;    /* responses completed by the parser */
} client_t;

static int on_complete(http_parser *p)
{
	((client_t *)p->data)->done++;
	return 0;
}

static const http_parser_settings settings = {.on_message_complete = on_complete};

static void *client_main(void *arg)
{
	client_t *c = arg;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)c->port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
		die("connect", errno);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	char req[128];
	int rlen = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: bench\r\n\r\n", c->path);
	http_parser parser;
	http_parser_init(&parser, HTTP_RESPONSE);
	parser.data = c;
	double *sent = malloc((size_t)c->n * sizeof *sent);
	char buf[65536];
	long nsent = 0;
	while (c->done < c->n) {
		/* Keep depth requests in flight, in one write. */
		char out[128 * PIPELINE_DEPTH];
		size_t olen = 0;
		double t = now_s();
		while (nsent < c->n && nsent - c->done < c->depth) {
			memcpy(out + olen, req, (size_t)rlen);
			olen += (size_t)rlen;
			sent[nsent++] = t;
		}
		for (size_t off = 0; off < olen;) {
			ssize_t w = send(fd, out + off, olen - off, MSG_NOSIGNAL);
			if (w <= 0)
				die("send", errno);
			off += (size_t)w;
		}
		ssize_t r = recv(fd, buf, sizeof buf, 0);
		if (r <= 0)
			die("recv", r < 0 ? errno : 0);
		int before = c->done;
		size_t used = http_parser_execute(&parser, &settings, buf, (size_t)r);
		if (used != (size_t)r || HTTP_PARSER_ERRNO(&parser) != HPE_OK)
			die("response", 0);
		double t2 = now_s();
		for (int i = before; i < c->done; i++)
			c->lat[i] = t2 - sent[i];
	}
	free(sent);
	close(fd);
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void figure(const char *name, int port, const char *path, int depth)
{
	long per = (long)(25000 * scale);
	if (per < 100)
		per = 100;
	client_t c[CONNS];
	pthread_t t[CONNS];
	double *lat = malloc((size_t)(per * CONNS) * sizeof *lat);
	double t0 = now_s();
	for (int i = 0; i < CONNS; i++) {
		c[i] = (client_t){port, path, per, depth, lat + i * per, 0};
		if (pthread_create(&t[i], NULL, client_main, &c[i]) != 0)
			die("pthread_create", errno);
	}
	for (int i = 0; i < CONNS; i++)
		pthread_join(t[i], NULL);
	double secs = now_s() - t0;
	long n = per * CONNS;
	qsort(lat, (size_t)n, sizeof *lat, cmp_double);
	printf("%s conns=%d n=%ld time=%.2fs rate=%.0f req/s p50=%.0fus p99=%.0fus\n", name, CONNS,
	       n, secs, (double)n / secs, lat[n / 2] * 1e6, lat[n * 99 / 100] * 1e6);
	fflush(stdout);
	free(lat);
}

int main(int argc, char **argv)
{
	if (argc > 1) {
		scale = atof(argv[1]);
		if (scale <= 0) {
			fprintf(stderr, "usage: http [scale]   (scale > 0)\n");
			return 2;
		}
	}
	skald_http_server_t *srv;
	int rc = skald_http_server_new(&srv, NULL);
	if (rc == 0)
		rc = skald_http_route(srv, "GET", "/json", json_now, NULL);
	if (rc == 0)
		rc = skald_http_route(srv, "GET", "/json-thread", json_later, NULL);
	if (rc == 0)
		rc = skald_http_start_thread(srv);
	if (rc != 0) {
		fprintf(stderr, "http: server: error %d\n", rc);
		return 1;
	}
	pthread_t w;
	pthread_create(&w, NULL, worker_main, NULL);
	int port = skald_http_port(srv);
	figure("http-json", port, "/json", 1);
	figure("http-json-thread", port, "/json-thread", 1);
	figure("http-json-pipelined", port, "/json", PIPELINE_DEPTH);
	pthread_mutex_lock(&worker.lock);
	worker.stop = 1;
	pthread_cond_signal(&worker.cond);
	pthread_mutex_unlock(&worker.lock);
	pthread_join(w, NULL);
	skald_http_stop(srv);
	skald_http_server_free(srv);
	return 0;
}
