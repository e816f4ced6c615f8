/*
 * tests/tool/tt.h - fixtures of the `skald` tool suite: the tool is run as
 * a user runs it (fork and exec of the built binary, stdin fed, stdout,
 * stderr and the exit status captured), against real servers.
 *
 * The servers: SKALD_TEST_PG, a postgres:// URI whose user may create
 * databases (scripts/pg.sh start prints one), and SKALD_TEST_MONGO,
 * mongodb://HOST:PORT (scripts/ferretdb.sh uri), are both required: without
 * either every test fails with a message saying how to get it, because the
 * tool must behave the same on every store and every test runs on both.
 *
 * Tests share the database of SKALD_TEST_PG (and a database of their own on
 * the MongoDB server) and stay apart by using persistence ids that no other
 * test or run uses (tt_pid). Tests that need a whole journal to themselves
 * (an import's destination, the tic-tac-toe example's fixed ids) make a
 * database of their own with tt_db_new.
 */
#ifndef SKALD_TESTS_TOOL_TT_H
#define SKALD_TESTS_TOOL_TT_H

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define TT_TIMEOUT 300

/* A store the suite runs against. */
typedef struct tt_store_s {
	const char *name; /* "postgres", "mongodb" */
	char uri[600];    /* a migrated journal */
	char server[600]; /* where tt_db_new makes databases */
} tt_store_t;

/* The stores of this run, ending with one whose name is NULL: PostgreSQL,
 * then MongoDB. Asserts that SKALD_TEST_PG and SKALD_TEST_MONGO are set;
 * migrates each journal. */
const tt_store_t *tt_stores(void);

/* A database of the test's own on s's server, migrated, in uri. */
typedef struct tt_db_s {
	const tt_store_t *store;
	char name[96];
	char uri[700];
} tt_db_t;
void tt_db_new(tt_db_t *db, const tt_store_t *s);
/* As tt_db_new, without the schema: `skald migrate` has work to do. */
void tt_db_new_empty(tt_db_t *db, const tt_store_t *s);
void tt_db_drop(tt_db_t *db);

/* A persistence id nobody else uses: "PREFIX-PID_RANDOM". Returns a static
 * buffer of a small ring, so several stay valid at once. */
const char *tt_pid(const char *prefix);

/* A path in the build directory the suite was built into, e.g.
 * tt_build("skald"), tt_build("examples/tictactoe_game.so"). Static ring. */
const char *tt_build(const char *rel);

/* The outcome of one run of a program. out and err are NUL-terminated. */
typedef struct tt_result_s {
	int code; /* exit status */
	char *out, *err;
} tt_result_t;
void tt_free(tt_result_t *r);

/* Runs argv (argv[0] a path) with input on stdin (NULL: none), waits for
 * it (asserts it ends within TT_TIMEOUT seconds, and by exiting, not by a
 * signal). */
void tt_runv(tt_result_t *r, const char *input, char *const argv[]);

/* Adds the strings of ap, up to NULL, to argv[n..] (room for max
 * pointers, the NULL that ends argv included). Returns the new n. */
int tt_argv_add(char **argv, int n, int max, va_list ap);

/* Runs build/skald with the arguments that follow, up to NULL. */
void tt_skald(tt_result_t *r, const char *input, ...);

/* A program running in the background, stdin from /dev/null. */
typedef struct tt_proc_s {
	pid_t pid;
	int out, err;
} tt_proc_t;
void tt_spawn(tt_proc_t *p, char *const argv[]);
/* Reads p's stdout into buf (len bytes, NUL-terminated) until a whole line
 * has arrived; asserts one does within timeout_ms. Returns the bytes read:
 * tt_finish no longer sees them. */
size_t tt_read_line(tt_proc_t *p, char *buf, size_t len, int timeout_ms);
/* Waits up to timeout_ms for p to end on its own and collects its output. */
void tt_finish(tt_proc_t *p, tt_result_t *r, int timeout_ms);

/* The lines of text as JSON values: asserts that each parses. Returns an
 * array (owned). */
json_t *tt_json_lines(const char *text);

/* Saves a snapshot of pid at seq with data (JSON text), version and
 * timestamp (ms since the epoch) into the journal at uri, through the
 * journal API: the tool itself never writes snapshots. */
void tt_snapshot_save(const char *uri, const char *pid, uint64_t seq, int version, const char *data,
                      int64_t timestamp);

/* `skald web` running in the background. */
typedef struct tt_web_s {
	tt_proc_t proc;
	int port;
} tt_web_t;

/* Starts build/skald web with the arguments that follow (up to NULL),
 * adding --listen 127.0.0.1:0, and reads the port from the line it prints. */
void tt_web_start(tt_web_t *w, ...);

/* Stops it with SIGTERM and asserts that it exits with 0. */
void tt_web_stop(tt_web_t *w);

/* An HTTP answer: status, and the body (NUL-terminated; owned). */
typedef struct tt_http_s {
	int status;
	char *body;
} tt_http_t;

/* GET target (e.g. "/api/ids?limit=2") from the server on port, over
 * HTTP/1.0 (the body ends when the server closes), with the extra header
 * lines in headers (each ending in CRLF; NULL: none). */
void tt_http_get(tt_http_t *r, int port, const char *target, const char *headers);

/* The parts of tt_http_get, for a stream: tt_http_open sends the request
 * and returns the socket, tt_http_head reads the head of the answer (and
 * asserts it is HTTP), tt_http_finish reads the rest to the end and closes
 * the socket (status 0 when tt_http_head took the head). */
int tt_http_open(int port, const char *target, const char *headers);
void tt_http_head(int fd);
void tt_http_finish(tt_http_t *r, int fd);

/* As tt_http_get, and asserts status and a JSON body, which it returns
 * (owned). */
json_t *tt_http_json(int port, const char *target, int status);

/* Loads url in headless Chromium (Debian's `chromium`) and puts the DOM
 * as the page's script left it into r->out (tt_free it). The page's
 * requests and timers run first, for budget_ms of the page's virtual time
 * (which stands still while a request waits for its answer); asserts that
 * Chromium is installed and exits 0. */
void tt_chromium_dom(tt_result_t *r, const char *url, int budget_ms);

/* Asserts that the JSON error v has the code want (and a message). */
void tt_assert_error(json_t *v, const char *want, const char *ctx);

/* A game of tic-tac-toe as `skald append` takes it: X (alice) wins on the
 * middle row in 9 events (the winning move and game.finished in one write,
 * as the game entity writes them), and the board after each event as the
 * type's print shows it. */
extern const char tt_game[];
extern const char *const tt_boards[9];

/* Asserts r exited with code, showing its stderr when it did not. */
#define tt_assert_code(r, want, ctx)                                                               \
	cr_assert_eq((r)->code, (want), "%s: exit %d, want %d; stderr: %s; stdout: %.400s", (ctx), \
	             (r)->code, (want), (r)->err, (r)->out)

#endif /* SKALD_TESTS_TOOL_TT_H */
