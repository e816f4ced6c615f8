/*
 * bench/tictactoe.c - moves through the tic-tac-toe cluster's HTTP API.
 *
 * Three `tictactoe node` processes (build/examples/tictactoe) on a
 * PostgreSQL database of the run's own, and keep-alive client connections
 * of this program spread over the three nodes, each playing its own games
 * move after move (both seats, a random free cell, the next move once the
 * answer is in). A move is an HTTP request, a hop to the node that owns the
 * game when it is another, one game.moved event written to PostgreSQL, and
 * the answer. Then, as the baseline, the same number of libpq connections
 * each INSERT one row per "move" in its own transaction: what the database
 * alone does with one write per move.
 *
 *   tictactoe-moves nodes=3 conns=C games=G moves=N time=Ts rate=R moves/s p50=Xus p99=Yus
 *   tictactoe-pg-raw conns=C writes=N time=Ts rate=R writes/s p50=Xus p99=Yus
 *
 * Usage: tictactoe --store postgres://... [--conns C] [--games G] [--node-threads T]
 *        (or SKALD_BENCH_PG for --store; defaults: 8 connections, 100 games
 *        each, 1 scheduler thread per node: three nodes share the machine)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <http_parser.h>
#include <jansson.h>
#include <libgen.h>
#include <libpq-fe.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "skald/store.h"

#define NODES 3

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static pid_t nodes[NODES];
static const char *node_threads = "1";

static void fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("tictactoe bench: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	for (int i = 0; i < NODES; i++)
		if (nodes[i] > 0)
			kill(nodes[i], SIGKILL);
	exit(1);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void report(const char *figure, const char *what, int conns, const char *extra, double *lat,
                   long n, double secs)
{
	qsort(lat, (size_t)n, sizeof *lat, cmp_double);
	printf("%s %sconns=%d %s%s=%ld time=%.2fs rate=%.0f %s/s p50=%.0fus p99=%.0fus\n", figure,
	       strcmp(figure, "tictactoe-moves") == 0 ? "nodes=3 " : "", conns, extra, what, n,
	       secs, (double)n / secs, what, lat[(n - 1) / 2] * 1e6, lat[(n - 1) * 99 / 100] * 1e6);
	fflush(stdout);
}

/* ------------------------------------------------------------------------ */
/* The database and the nodes                                                */

/* uri with its database replaced by db, into out. */
static void uri_with_db(char *out, size_t len, const char *uri, const char *db)
{
	const char *host = strstr(uri, "://");
	const char *slash = host != NULL ? strchr(host + 3, '/') : NULL;
	size_t keep = slash != NULL ? (size_t)(slash - uri) : strlen(uri);
	snprintf(out, len, "%.*s/%s", (int)keep, uri, db);
}

static void exec_sql(const char *uri, const char *statement)
{
	PGconn *c = PQconnectdb(uri);
	if (PQstatus(c) != CONNECTION_OK)
		fail("cannot connect to %s: %s", uri, PQerrorMessage(c));
	PGresult *r = PQexec(c, statement);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		fail("%s: %s", statement, PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
}

/* Starts node i of the cluster (the first one forms it) and reads its HTTP
 * port and cluster address from the line it prints once up. */
static int start_node(const char *exe, int i, const char *store, const char *seed, char *addr,
                      size_t alen)
{
	int out[2];
	if (pipe(out) != 0)
		fail("pipe: %s", strerror(errno));
	char name[8];
	snprintf(name, sizeof name, "%c", 'a' + i);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(out[1], 1);
		close(out[0]);
		char *argv[] = {(char *)exe,
		                "node",
		                "--name",
		                name,
		                "--listen",
		                "tcp://127.0.0.1:0",
		                "--http",
		                "127.0.0.1:0",
		                "--secret",
		                "tictactoe-bench",
		                "--store",
		                (char *)store,
		                "--threads",
		                (char *)node_threads,
		                seed != NULL ? "--seeds" : NULL,
		                (char *)seed,
		                NULL};
		execv(exe, argv);
		_exit(127);
	}
	close(out[1]);
	nodes[i] = pid;
	char line[1024];
	size_t got = 0;
	while (got < sizeof line - 1 && memchr(line, '\n', got) == NULL) {
		ssize_t r = read(out[0], line + got, sizeof line - 1 - got);
		if (r <= 0)
			fail("node %s exited before it was up (see its stderr above)", name);
		got += (size_t)r;
	}
	line[got] = '\0';
	close(out[0]);
	const char *c = strstr(line, "cluster tcp://"), *h = strstr(line, "http://127.0.0.1:");
	if (c == NULL || h == NULL)
		fail("node %s printed \"%s\"", name, line);
	snprintf(addr, alen, "%.*s", (int)strcspn(c + 8, ", \n"), c + 8);
	return atoi(h + strlen("http://127.0.0.1:"));
}

/* ------------------------------------------------------------------------ */
/* A keep-alive client                                                       */

typedef struct {
	int fd;
	http_parser parser;
	int status;
	bool done;
	char body[4096];
	size_t blen;
} conn_t;

static int on_body(http_parser *p, const char *at, size_t len)
{
	conn_t *c = p->data;
	if (c->blen + len < sizeof c->body) {
		memcpy(c->body + c->blen, at, len);
		c->blen += len;
	}
	return 0;
}

static int on_complete(http_parser *p)
{
	conn_t *c = p->data;
	c->status = p->status_code;
	c->done = true;
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings settings = {.on_body = on_body,
                                              .on_message_complete = on_complete};

static void conn_open(conn_t *c, int port)
{
	memset(c, 0, sizeof *c);
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0)
		fail("connect to port %d: %s", port, strerror(errno));
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	http_parser_init(&c->parser, HTTP_RESPONSE);
	c->parser.data = c;
}

/* One request; returns the status, the JSON body (owned) in *out. */
static int call(conn_t *c, const char *method, const char *path, const char *body, json_t **out)
{
	char req[1024];
	int len = snprintf(req, sizeof req,
	                   "%s %s HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
	                   "Content-Length: %zu\r\n\r\n%s",
	                   method, path, strlen(body), body);
	for (int off = 0; off < len;) {
		ssize_t w = send(c->fd, req + off, (size_t)(len - off), MSG_NOSIGNAL);
		if (w <= 0)
			fail("send: %s", strerror(errno));
		off += (int)w;
	}
	c->done = false;
	c->blen = 0;
	http_parser_pause(&c->parser, 0);
	char buf[8192];
	while (!c->done) {
		ssize_t r = recv(c->fd, buf, sizeof buf, 0);
		if (r <= 0)
			fail("recv: %s",
			     r < 0 ? strerror(errno) : "the node closed the connection");
		size_t used = http_parser_execute(&c->parser, &settings, buf, (size_t)r);
		enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
		if ((used != (size_t)r && e != HPE_PAUSED) || (e != HPE_OK && e != HPE_PAUSED))
			fail("a response that does not parse: %s", http_errno_name(e));
	}
	c->body[c->blen] = '\0';
	*out = json_loads(c->body, 0, NULL);
	return c->status;
}

static const char *str_of(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s != NULL ? s : "";
}

/* ------------------------------------------------------------------------ */
/* Moves through the API                                                     */

typedef struct {
	int port, games;
	char (*ids)[3][32]; /* per game: id, x, o */
	double *lat;        /* one per move */
	long moves;
	unsigned seed;
} player_t;

static void make_games(player_t *p)
{
	conn_t c;
	conn_open(&c, p->port);
	for (int g = 0; g < p->games; g++) {
		json_t *out;
		for (int side = 1; side <= 2; side++) {
			if (call(&c, "POST", "/players", "{\"name\":\"bench\"}", &out) != 201)
				fail("POST /players: %s", c.body);
			snprintf(p->ids[g][side], 32, "%s", str_of(out, "player_id"));
			json_decref(out);
		}
		char body[128];
		snprintf(body, sizeof body, "{\"x\":\"%s\",\"o\":\"%s\"}", p->ids[g][1],
		         p->ids[g][2]);
		if (call(&c, "POST", "/games", body, &out) != 201)
			fail("POST /games: %s", c.body);
		snprintf(p->ids[g][0], 32, "%s", str_of(out, "game_id"));
		json_decref(out);
	}
	close(c.fd);
}

static void *play(void *arg)
{
	player_t *p = arg;
	conn_t c;
	conn_open(&c, p->port);
	for (int g = 0; g < p->games; g++) {
		char board[10] = ".........", path[96];
		snprintf(path, sizeof path, "/games/%s/moves", p->ids[g][0]);
		for (int turn = 0;; turn++) {
			int free_cells[9], n = 0;
			for (int i = 0; i < 9; i++)
				if (board[i] == '.')
					free_cells[n++] = i;
			int cell = free_cells[rand_r(&p->seed) % (unsigned)n];
			char body[128];
			snprintf(body, sizeof body, "{\"player_id\":\"%s\",\"row\":%d,\"col\":%d}",
			         p->ids[g][1 + turn % 2], cell / 3, cell % 3);
			json_t *st;
			double t0 = now_s();
			int status = call(&c, "POST", path, body, &st);
			p->lat[p->moves++] = now_s() - t0;
			if (status != 200)
				fail("a move answered %d: %s", status, c.body);
			snprintf(board, sizeof board, "%s", str_of(st, "board"));
			bool over = !json_is_null(json_object_get(st, "result"));
			json_decref(st);
			if (over)
				break;
		}
	}
	close(c.fd);
	return NULL;
}

/* ------------------------------------------------------------------------ */
/* The baseline: one INSERT per move, straight to PostgreSQL                 */

typedef struct {
	const char *uri;
	long n;
	double *lat;
	int id;
} raw_t;

static void *raw_writer(void *arg)
{
	raw_t *w = arg;
	PGconn *c = PQconnectdb(w->uri);
	if (PQstatus(c) != CONNECTION_OK)
		fail("baseline: %s", PQerrorMessage(c));
	for (long i = 0; i < w->n; i++) {
		char game[32], n[24], cell[8];
		snprintf(game, sizeof game, "raw-%d-%ld", w->id, i / 9);
		snprintf(n, sizeof n, "%ld", i);
		snprintf(cell, sizeof cell, "%ld", i % 9);
		const char *values[] = {game, n, cell};
		double t0 = now_s();
		PGresult *r = PQexecParams(c,
		                           "INSERT INTO bench_moves (game, n, data) VALUES "
		                           "($1, $2, jsonb_build_object('cell', $3::int))",
		                           3, NULL, values, NULL, NULL, 0);
		w->lat[i] = now_s() - t0;
		if (PQresultStatus(r) != PGRES_COMMAND_OK)
			fail("baseline insert: %s", PQerrorMessage(c));
		PQclear(r);
	}
	PQfinish(c);
	return NULL;
}

int main(int argc, char **argv)
{
	const char *server = getenv("SKALD_BENCH_PG");
	int conns = 8, games = 100;
	static const struct option opts[] = {{"store", required_argument, NULL, 's'},
	                                     {"conns", required_argument, NULL, 'c'},
	                                     {"games", required_argument, NULL, 'g'},
	                                     {"node-threads", required_argument, NULL, 't'},
	                                     {NULL, 0, NULL, 0}};
	for (int o; (o = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
		if (o == 's')
			server = optarg;
		else if (o == 'c')
			conns = atoi(optarg);
		else if (o == 'g')
			games = atoi(optarg);
		else if (o == 't')
			node_threads = optarg;
		else
			fail("usage: tictactoe --store postgres://... [--conns C] [--games G] "
			     "[--node-threads T]");
	}
	if (server == NULL || strncmp(server, "postgres", 8) != 0)
		fail("no PostgreSQL server: give --store postgres://... or SKALD_BENCH_PG");
	if (conns < 1 || conns > 256 || games < 1)
		fail("--conns takes 1 to 256, --games at least 1");

	/* A database of this run's own, migrated. */
	char db[64], uri[512], err[512];
	snprintf(db, sizeof db, "ttt_bench_%d", (int)getpid());
	char statement[128];
	snprintf(statement, sizeof statement, "CREATE DATABASE %s", db);
	exec_sql(server, statement);
	uri_with_db(uri, sizeof uri, server, db);
	if (skald_store_migrate(uri, 0, NULL, err, sizeof err) < 0)
		fail("migrating %s: %s", db, err);

	char exe[PATH_MAX], self[PATH_MAX];
	ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
	if (k <= 0)
		fail("cannot find this program's path");
	self[k] = '\0';
	snprintf(exe, sizeof exe, "%s/../examples/tictactoe", dirname(self));
	int ports[NODES];
	char seed[64] = "", addr[64];
	for (int i = 0; i < NODES; i++) {
		ports[i] = start_node(exe, i, uri, i > 0 ? seed : NULL, addr, sizeof addr);
		if (i == 0)
			snprintf(seed, sizeof seed, "%s", addr);
	}
	/* Every node sees the others up before the clock starts: a game made
	 * on one node may live on another. */
	sleep(1);

	player_t *p = calloc((size_t)conns, sizeof *p);
	pthread_t *t = calloc((size_t)conns, sizeof *t);
	double *lat = calloc((size_t)conns * (size_t)games * 9, sizeof *lat);
	for (int i = 0; i < conns; i++) {
		p[i] = (player_t){.port = ports[i % NODES],
		                  .games = games,
		                  .ids = calloc((size_t)games, sizeof *p[i].ids),
		                  .lat = lat + (size_t)i * (size_t)games * 9,
		                  .seed = 1u + (unsigned)i};
		make_games(&p[i]);
	}
	double t0 = now_s();
	for (int i = 0; i < conns; i++)
		pthread_create(&t[i], NULL, play, &p[i]);
	long moves = 0;
	for (int i = 0; i < conns; i++) {
		pthread_join(t[i], NULL);
		/* Compact: each player's latencies after the previous ones. */
		memmove(lat + moves, p[i].lat, (size_t)p[i].moves * sizeof *lat);
		moves += p[i].moves;
		free(p[i].ids);
	}
	double secs = now_s() - t0;
	char extra[64];
	snprintf(extra, sizeof extra, "games=%d ", conns * games);
	report("tictactoe-moves", "moves", conns, extra, lat, moves, secs);
	for (int i = 0; i < NODES; i++)
		kill(nodes[i], SIGTERM);
	for (int i = 0; i < NODES; i++) {
		waitpid(nodes[i], NULL, 0);
		nodes[i] = 0;
	}

	/* The baseline: as many writes, from as many connections. */
	exec_sql(uri, "CREATE TABLE bench_moves (game text, n bigint, data jsonb, "
	              "PRIMARY KEY (game, n))");
	raw_t *w = calloc((size_t)conns, sizeof *w);
	long per = moves / conns;
	t0 = now_s();
	for (int i = 0; i < conns; i++) {
		w[i] = (raw_t){uri, per, lat + (size_t)i * (size_t)per, i};
		pthread_create(&t[i], NULL, raw_writer, &w[i]);
	}
	for (int i = 0; i < conns; i++)
		pthread_join(t[i], NULL);
	secs = now_s() - t0;
	report("tictactoe-pg-raw", "writes", conns, "", lat, per * conns, secs);

	snprintf(statement, sizeof statement, "DROP DATABASE %s WITH (FORCE)", db);
	exec_sql(server, statement);
	free(w);
	free(p);
	free(t);
	free(lat);
	return 0;
}
