/*
 * tests/tool/tt.c - fixtures of the `skald` tool suite (see tt.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <libpq-fe.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "skald/journal.h"
#include "tests/tool/tt.h"

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *tag(void)
{
	static char t[32];
	if (t[0] == '\0') {
		uint32_t r = 0;
		if (uv_random(NULL, NULL, &r, sizeof r, 0, NULL) != 0)
			r = (uint32_t)time(NULL) ^ (uint32_t)clock();
		snprintf(t, sizeof t, "%d_%08x", (int)getpid(), r);
	}
	return t;
}

const char *tt_pid(const char *prefix)
{
	static char ring[8][128];
	static int next, counter;
	char *buf = ring[next++ % 8];
	snprintf(buf, sizeof ring[0], "%s-%s_%d", prefix, tag(), ++counter);
	return buf;
}

const char *tt_build(const char *rel)
{
	static char ring[4][PATH_MAX + 64];
	static int next;
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	cr_assert_gt(n, 0, "readlink /proc/self/exe: %s", strerror(errno));
	exe[n] = '\0';
	/* The suite is BUILD/tests/tool: the tool is BUILD/skald. */
	char *build = dirname(dirname(exe));
	char *buf = ring[next++ % 4];
	snprintf(buf, sizeof ring[0], "%s/%s", build, rel);
	return buf;
}

/* ------------------------------------------------------------------------ */
/* Running programs                                                          */

void tt_free(tt_result_t *r)
{
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}

typedef struct buf_s {
	char *p;
	size_t len, cap;
} buf_t;

static void buf_add(buf_t *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->p = realloc(b->p, b->cap);
		cr_assert_not_null(b->p);
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

/* Feeds input to in (closed when done; -1: none) and reads out and err to
 * their ends, or until the deadline. Returns 0, or -1 on timeout. */
static int pump(int in, const char *input, int out, int err, buf_t *o, buf_t *e, int64_t deadline)
{
	size_t left = input != NULL ? strlen(input) : 0;
	if (in >= 0 && left == 0) {
		close(in);
		in = -1;
	}
	while (out >= 0 || err >= 0) {
		struct pollfd fds[3];
		int n = 0;
		int io = -1, oo = -1, eo = -1;
		if (in >= 0)
			fds[io = n++] = (struct pollfd){in, POLLOUT, 0};
		if (out >= 0)
			fds[oo = n++] = (struct pollfd){out, POLLIN, 0};
		if (err >= 0)
			fds[eo = n++] = (struct pollfd){err, POLLIN, 0};
		int64_t wait = deadline - now_ms();
		if (wait <= 0)
			return -1;
		if (poll(fds, (nfds_t)n, (int)(wait > 1000 ? 1000 : wait)) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (io >= 0 && fds[io].revents) {
			ssize_t w = write(in, input, left);
			if (w > 0) {
				input += w;
				left -= (size_t)w;
			}
			/* A program that exits before reading all of its input
			 * (a usage error) closes the pipe: that is its business. */
			if (left == 0 || (w < 0 && errno != EAGAIN && errno != EINTR)) {
				close(in);
				in = -1;
			}
		}
		char chunk[8192];
		if (oo >= 0 && fds[oo].revents) {
			ssize_t r = read(out, chunk, sizeof chunk);
			if (r > 0)
				buf_add(o, chunk, (size_t)r);
			else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
				close(out);
				out = -1;
			}
		}
		if (eo >= 0 && fds[eo].revents) {
			ssize_t r = read(err, chunk, sizeof chunk);
			if (r > 0)
				buf_add(e, chunk, (size_t)r);
			else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
				close(err);
				err = -1;
			}
		}
	}
	if (in >= 0)
		close(in);
	return 0;
}

static pid_t start(char *const argv[], int *in, int *out, int *err)
{
	int pi[2] = {-1, -1}, po[2], pe[2];
	signal(SIGPIPE, SIG_IGN);
	if (in != NULL)
		cr_assert_eq(pipe2(pi, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(po, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(pe, O_CLOEXEC), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);
		dup2(in != NULL ? pi[0] : devnull, 0);
		dup2(po[1], 1);
		dup2(pe[1], 2);
		/* The tool's own exit statuses are what is tested: give it the
		 * default disposition of SIGPIPE a shell would. */
		signal(SIGPIPE, SIG_DFL);
		execv(argv[0], argv);
		dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	if (in != NULL) {
		close(pi[0]);
		fcntl(pi[1], F_SETFL, O_NONBLOCK);
		*in = pi[1];
	}
	close(po[1]);
	close(pe[1]);
	*out = po[0];
	*err = pe[0];
	return pid;
}

static void collect(pid_t pid, int in, const char *input, int out, int err, tt_result_t *r,
                    int timeout_ms, const char *what)
{
	buf_t o = {0}, e = {0};
	buf_add(&o, "", 0);
	buf_add(&e, "", 0);
	int rc = pump(in, input, out, err, &o, &e, now_ms() + timeout_ms);
	if (rc < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		cr_assert_fail("%s did not finish within %d ms; stdout: %.2000s; stderr: %.2000s",
		               what, timeout_ms, o.p, e.p);
	}
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	cr_assert(WIFEXITED(st), "%s was killed by signal %d; stderr: %.2000s", what,
	          WIFSIGNALED(st) ? WTERMSIG(st) : 0, e.p);
	r->code = WEXITSTATUS(st);
	r->out = o.p;
	r->err = e.p;
}

void tt_runv(tt_result_t *r, const char *input, char *const argv[])
{
	int in = -1, out, err;
	pid_t pid = start(argv, &in, &out, &err);
	char what[512];
	snprintf(what, sizeof what, "%s %s %s", argv[0], argv[1] ? argv[1] : "",
	         argv[1] && argv[2] ? argv[2] : "");
	collect(pid, in, input, out, err, r, TT_TIMEOUT * 1000 / 2, what);
}

int tt_argv_add(char **argv, int n, int max, va_list ap)
{
	const char *a;
	while ((a = va_arg(ap, const char *)) != NULL) {
		cr_assert_lt(n, max - 1, "too many arguments");
		argv[n++] = (char *)a;
	}
	argv[n] = NULL;
	return n;
}

void tt_skald(tt_result_t *r, const char *input, ...)
{
	char *argv[64];
	int n = 0;
	argv[n++] = (char *)tt_build("skald");
	va_list ap;
	va_start(ap, input);
	tt_argv_add(argv, n, 64, ap);
	va_end(ap);
	tt_runv(r, input, argv);
}

void tt_spawn(tt_proc_t *p, char *const argv[])
{
	p->pid = start(argv, NULL, &p->out, &p->err);
}

size_t tt_read_line(tt_proc_t *p, char *buf, size_t len, int timeout_ms)
{
	size_t got = 0;
	int64_t deadline = now_ms() + timeout_ms;
	buf[0] = '\0';
	while (memchr(buf, '\n', got) == NULL) {
		int64_t wait = deadline - now_ms();
		cr_assert_gt(wait, 0,
		             "no line from the background program within %d ms (got \"%s\")",
		             timeout_ms, buf);
		struct pollfd fd = {p->out, POLLIN, 0};
		if (poll(&fd, 1, (int)wait) <= 0)
			continue;
		ssize_t r = read(p->out, buf + got, len - 1 - got);
		cr_assert_gt(r, 0, "the background program closed its stdout (got \"%s\")", buf);
		got += (size_t)r;
		buf[got] = '\0';
	}
	return got;
}

void tt_finish(tt_proc_t *p, tt_result_t *r, int timeout_ms)
{
	collect(p->pid, -1, NULL, p->out, p->err, r, timeout_ms, "the background program");
}

json_t *tt_json_lines(const char *text)
{
	json_t *a = json_array();
	const char *p = text;
	int lineno = 0;
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		lineno++;
		if (len > 0) {
			json_error_t err;
			json_t *v = json_loadb(p, len, 0, &err);
			cr_assert_not_null(v, "line %d is not JSON (%s): %.*s", lineno, err.text,
			                   (int)len, p);
			json_array_append_new(a, v);
		}
		p += len + (nl ? 1 : 0);
	}
	return a;
}

/* ------------------------------------------------------------------------ */
/* Stores                                                                    */

static void migrate(const char *uri, const char *name)
{
	tt_result_t r;
	tt_skald(&r, NULL, "migrate", "--store", uri, NULL);
	cr_assert_eq(r.code, 0, "skald migrate on %s exited %d: %s", name, r.code, r.err);
	tt_free(&r);
}

/* uri with its path (the database, and any query) replaced by "/db". */
static void with_db(char *out, size_t len, const char *uri, const char *db)
{
	const char *host = strstr(uri, "://");
	host = host ? host + 3 : uri;
	size_t head = strcspn(host, "/?") + (size_t)(host - uri);
	snprintf(out, len, "%.*s/%s", (int)head, uri, db);
}

const tt_store_t *tt_stores(void)
{
	static tt_store_t stores[3];
	if (stores[0].name != NULL)
		return stores;
	/* `make test` builds the suites only; the programs they run come
	 * from `make all`. */
	static const char *const needed[] = {"skald", "examples/tictactoe_game.so",
	                                     "examples/tictactoe"};
	for (size_t i = 0; i < sizeof needed / sizeof needed[0]; i++)
		cr_assert_eq(access(tt_build(needed[i]), R_OK), 0,
		             "%s is missing: `make all` (with the same SANITIZE) builds it",
		             tt_build(needed[i]));
	const char *pg = getenv("SKALD_TEST_PG");
	const char *mongo = getenv("SKALD_TEST_MONGO");
	/* Both, always: the tool must behave the same on every store, and a
	 * run that quietly left one out would pass without its point. */
	cr_assert(
	        pg != NULL && *pg && mongo != NULL && *mongo,
	        "SKALD_TEST_PG and SKALD_TEST_MONGO must both be set: the tool suite runs "
	        "every test on PostgreSQL (a server whose user may create databases: "
	        "`scripts/pg.sh start tool`, then SKALD_TEST_PG=$(scripts/pg.sh uri tool)) and on "
	        "MongoDB (`scripts/ferretdb.sh start`, then "
	        "SKALD_TEST_MONGO=$(scripts/ferretdb.sh uri))");
	int n = 0;
	stores[n].name = "postgres";
	snprintf(stores[n].uri, sizeof stores[n].uri, "%s", pg);
	snprintf(stores[n].server, sizeof stores[n].server, "%s", pg);
	n++;
	stores[n].name = "mongodb";
	with_db(stores[n].uri, sizeof stores[n].uri, mongo, "skald_tool");
	snprintf(stores[n].server, sizeof stores[n].server, "%s", mongo);
	n++;
	for (int i = 0; i < n; i++)
		migrate(stores[i].uri, stores[i].name);
	return stores;
}

static PGconn *pg_connect(const char *uri)
{
	PGconn *c = PQconnectdb(uri);
	cr_assert_eq(PQstatus(c), CONNECTION_OK, "cannot connect to SKALD_TEST_PG: %s",
	             PQerrorMessage(c));
	return c;
}

static void pg_exec(const char *uri, const char *sql)
{
	PGconn *c = pg_connect(uri);
	PGresult *res = PQexec(c, sql);
	cr_assert_eq(PQresultStatus(res), PGRES_COMMAND_OK, "%s: %s", sql,
	             PQresultErrorMessage(res));
	PQclear(res);
	PQfinish(c);
}

void tt_db_new_empty(tt_db_t *db, const tt_store_t *s)
{
	static int counter;
	memset(db, 0, sizeof *db);
	db->store = s;
	snprintf(db->name, sizeof db->name, "skald_tool_%s_%d", tag(), ++counter);
	with_db(db->uri, sizeof db->uri, s->server, db->name);
	if (strcmp(s->name, "postgres") == 0) {
		char sql[256];
		snprintf(sql, sizeof sql, "CREATE DATABASE %s", db->name);
		pg_exec(s->server, sql);
	}
	/* MongoDB makes a database when something is first written to it. */
}

void tt_db_new(tt_db_t *db, const tt_store_t *s)
{
	tt_db_new_empty(db, s);
	migrate(db->uri, s->name);
}

void tt_db_drop(tt_db_t *db)
{
	if (strcmp(db->store->name, "postgres") == 0) {
		char sql[256];
		snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", db->name);
		pg_exec(db->store->server, sql);
	}
	/* A MongoDB test database is left behind: the test server is
	 * throwaway, and dropping one needs a driver call the tool does not
	 * have. */
}

/* ------------------------------------------------------------------------ */
/* Snapshots                                                                 */

typedef struct {
	skald_journal_t *j;
	int status, done;
} snap_call_t;

static void on_snap_saved(skald_journal_t *j, int status, void *arg)
{
	snap_call_t *c = arg;
	c->status = status;
	c->done = 1;
	skald_journal_close(j, NULL, NULL);
}

void tt_snapshot_save(const char *uri, const char *pid, uint64_t seq, int version, const char *data,
                      int64_t timestamp)
{
	uv_loop_t loop;
	cr_assert_eq(uv_loop_init(&loop), 0);
	skald_journal_t *j;
	cr_assert_eq(skald_journal_open(&loop, uri, &j), 0, "%s", skald_journal_open_errmsg());
	json_error_t err;
	json_t *d = json_loads(data, 0, &err);
	cr_assert_not_null(d, "snapshot data: %s", err.text);
	skald_snapshot_t snap = {.persistence_id = pid,
	                         .seq = seq,
	                         .version = version,
	                         .data = d,
	                         .timestamp = timestamp};
	snap_call_t c = {.j = j};
	cr_assert_eq(skald_journal_snapshot_save(j, &snap, on_snap_saved, &c), 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	cr_assert(c.done);
	cr_assert_eq(c.status, 0, "saving a snapshot: %s", skald_strerror(c.status));
	json_decref(d);
	cr_assert_eq(uv_loop_close(&loop), 0);
}

/* ------------------------------------------------------------------------ */
/* skald web                                                                 */

void tt_web_start(tt_web_t *w, ...)
{
	char *argv[64];
	int n = 0;
	argv[n++] = (char *)tt_build("skald");
	argv[n++] = "web";
	va_list ap;
	va_start(ap, w);
	n = tt_argv_add(argv, n, 61, ap);
	va_end(ap);
	argv[n++] = "--listen";
	argv[n++] = "127.0.0.1:0";
	argv[n] = NULL;
	tt_spawn(&w->proc, argv);
	char line[1024];
	tt_read_line(&w->proc, line, sizeof line, 60000);
	const char *p = strstr(line, "http://127.0.0.1:");
	cr_assert_not_null(p, "skald web printed \"%s\"", line);
	w->port = atoi(p + strlen("http://127.0.0.1:"));
	cr_assert_gt(w->port, 0, "%s", line);
}

void tt_web_stop(tt_web_t *w)
{
	kill(w->proc.pid, SIGTERM);
	tt_result_t r;
	tt_finish(&w->proc, &r, 60000);
	tt_assert_code(&r, 0, "skald web after SIGTERM");
	tt_free(&r);
}

int tt_http_open(int port, const char *target, const char *headers)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0, "connect: %s",
	             strerror(errno));
	char req[4096];
	int len = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n%s\r\n", target,
	                   headers ? headers : "");
	cr_assert_eq(write(fd, req, (size_t)len), len);
	return fd;
}

/* Reads from fd into b until want is in it (NULL: until the end). */
static void read_until(int fd, buf_t *b, const char *want)
{
	int64_t deadline = now_ms() + TT_TIMEOUT * 1000 / 2;
	while (want == NULL || strstr(b->p, want) == NULL) {
		struct pollfd pfd = {fd, POLLIN, 0};
		int64_t wait = deadline - now_ms();
		cr_assert_gt(wait, 0, "no complete answer; got %.2000s", b->p);
		if (poll(&pfd, 1, (int)wait) <= 0)
			continue;
		char chunk[8192];
		ssize_t n = read(fd, chunk, sizeof chunk);
		if (n == 0) {
			cr_assert_null(want, "the answer ended before \"%s\": %.2000s", want, b->p);
			break;
		}
		cr_assert_gt(n, 0, "reading the answer: %s", strerror(errno));
		buf_add(b, chunk, (size_t)n);
	}
}

void tt_http_head(int fd)
{
	buf_t b = {0};
	buf_add(&b, "", 0);
	/* Byte by byte would be exact; the head of a stream comes alone,
	 * before any event line, so reading up to its end takes only it. */
	read_until(fd, &b, "\r\n\r\n");
	cr_assert(strncmp(b.p, "HTTP/1.", 7) == 0, "not HTTP: %.200s", b.p);
	free(b.p);
}

void tt_http_finish(tt_http_t *r, int fd)
{
	buf_t b = {0};
	buf_add(&b, "", 0);
	read_until(fd, &b, NULL);
	close(fd);
	char *body = strstr(b.p, "\r\n\r\n");
	if (sscanf(b.p, "HTTP/1.%*d %d", &r->status) != 1 || body == NULL) {
		/* The head was read by tt_http_head: all of this is body. */
		r->status = 0;
		r->body = b.p;
		return;
	}
	r->body = strdup(body + 4);
	free(b.p);
}

void tt_http_get(tt_http_t *r, int port, const char *target, const char *headers)
{
	tt_http_finish(r, tt_http_open(port, target, headers));
	cr_assert_neq(r->status, 0, "GET %s: not HTTP: %.200s", target, r->body);
}

json_t *tt_http_json(int port, const char *target, int status)
{
	tt_http_t r;
	tt_http_get(&r, port, target, NULL);
	cr_assert_eq(r.status, status, "GET %s: status %d, want %d: %s", target, r.status, status,
	             r.body);
	json_error_t err;
	json_t *v = json_loads(r.body, 0, &err);
	cr_assert_not_null(v, "GET %s: not JSON (%s): %.400s", target, err.text, r.body);
	free(r.body);
	return v;
}

void tt_assert_error(json_t *v, const char *want, const char *ctx)
{
	const char *code = json_string_value(json_object_get(v, "code"));
	const char *msg = json_string_value(json_object_get(v, "error"));
	cr_assert(code != NULL && strcmp(code, want) == 0, "%s: code %s, want %s", ctx,
	          code ? code : "(none)", want);
	cr_assert(msg != NULL && *msg, "%s: no message", ctx);
}

/* ------------------------------------------------------------------------ */
/* A game                                                                    */

/* A game X (alice) wins on the middle row, as the game entity writes it:
 * the winning move and game.finished in one write. */
const char tt_game[] =
        "{\"type\":\"game.started\",\"version\":1,\"data\":{\"x\":\"alice\",\"o\":\"bob\"}}\n"
        "{\"type\":\"game.moved\",\"version\":1,\"data\":{\"player\":\"alice\",\"cell\":4}}\n"
        "{\"type\":\"game.moved\",\"version\":1,\"data\":{\"player\":\"bob\",\"cell\":0}}\n"
        "{\"type\":\"game.moved\",\"version\":1,\"data\":{\"player\":\"alice\",\"cell\":2}}\n"
        "{\"type\":\"game.moved\",\"version\":1,\"data\":{\"player\":\"bob\",\"cell\":6}}\n"
        "{\"type\":\"game.moved\",\"version\":1,\"data\":{\"player\":\"alice\",\"cell\":3}}\n"
        "{\"type\":\"game.moved\",\"version\":1,\"data\":{\"player\":\"bob\",\"cell\":8}}\n"
        "{\"type\":\"game.moved\",\"version\":1,\"data\":{\"player\":\"alice\",\"cell\":5}}\n"
        "{\"type\":\"game.finished\",\"version\":1,\"data\":{\"result\":\"X\",\"winner\":\"alice\"}"
        "}"
        "\n";

/* The board after each event of tt_game, as the type's print shows it. */
const char *const tt_boards[9] = {
        " . | . | . \n . | . | . \n . | . | . \n", /* started */
        " . | . | . \n . | X | . \n . | . | . \n", " O | . | . \n . | X | . \n . | . | . \n",
        " O | . | X \n . | X | . \n . | . | . \n", " O | . | X \n . | X | . \n O | . | . \n",
        " O | . | X \n X | X | . \n O | . | . \n", " O | . | X \n X | X | . \n O | . | O \n",
        " O | . | X \n X | X | X \n O | . | O \n", " O | . | X \n X | X | X \n O | . | O \n",
};

/* ------------------------------------------------------------------------ */
/* Chromium                                                                  */

void tt_chromium_dom(tt_result_t *r, const char *url, int budget_ms)
{
	char *which[] = {"/bin/sh", "-c", "command -v chromium", NULL};
	tt_runv(r, NULL, which);
	cr_assert_eq(r->code, 0,
	             "chromium is not installed: this test loads a page in headless Chromium. "
	             "Install it with `apt-get install chromium` (scripts/deps.sh does)");
	char chromium[512];
	snprintf(chromium, sizeof chromium, "%.*s", (int)strcspn(r->out, "\n"), r->out);
	tt_free(r);
	char profile[] = "/tmp/skald_chromium_XXXXXX";
	cr_assert_not_null(mkdtemp(profile));
	char profile_arg[300], budget_arg[64];
	snprintf(profile_arg, sizeof profile_arg, "--user-data-dir=%s", profile);
	snprintf(budget_arg, sizeof budget_arg, "--virtual-time-budget=%d", budget_ms);
	/* The virtual time budget lets the page's requests and script run to
	 * the end before the DOM is written out; a proxy of the environment
	 * must not come between the browser and loopback. */
	char *argv[] = {chromium,
	                "--headless",
	                "--disable-gpu",
	                "--no-sandbox",
	                "--no-proxy-server",
	                "--no-first-run",
	                profile_arg,
	                budget_arg,
	                "--dump-dom",
	                (char *)url,
	                NULL};
	tt_runv(r, NULL, argv);
	tt_assert_code(r, 0, "chromium --dump-dom");
	char rm[400];
	snprintf(rm, sizeof rm, "rm -rf '%s'", profile);
	char *rmv[] = {"/bin/sh", "-c", rm, NULL};
	tt_result_t gone;
	tt_runv(&gone, NULL, rmv);
	tt_free(&gone);
}
