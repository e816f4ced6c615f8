/*
 * tools/common.h - what the subcommands of `skald` share: arguments, the
 * journal on a loop of the command's own, exit codes, and the JSON and text
 * forms of envelopes.
 *
 * A subcommand runs on the main thread: it parses its arguments, opens the
 * journal on its own uv loop (tool_open), issues its asynchronous calls,
 * runs the loop until they complete (tool_run), and closes (tool_close).
 * Failures are reported once, with tool_fail, which prints the message and
 * remembers the exit code; the first failure wins.
 *
 * Exit codes, the same for every subcommand:
 *   0  success
 *   1  usage: a wrong flag or value, a malformed input line, an unknown URI
 *      scheme, a store that lives inside one process (memory://), an entity
 *      library that cannot be loaded, a history an entity refuses or folds
 *      two ways
 *   2  the store is unreachable or failed (the backend's own message), or
 *      reading stdin / writing stdout failed
 *   3  conflict: a history is not at the sequence number the command
 *      expected; the message gives the actual highest seq
 *   4  not found: a persistence id that never had events, where one is
 *      required
 */
#ifndef SKALD_TOOLS_COMMON_H
#define SKALD_TOOLS_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>
#include <uv.h>

#include "skald/journal.h"

#if defined(__GNUC__)
#define TOOL_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define TOOL_PRINTF(f, a)
#endif

enum {
	TOOL_OK = 0,
	TOOL_EUSAGE = 1,
	TOOL_ESTORE = 2,
	TOOL_ECONFLICT = 3,
	TOOL_ENOTFOUND = 4,
	TOOL_EPENDING = 5, /* skald migrate --status: migrations are pending */
};

/* One run of a subcommand. Embed it first in the command's own state, so
 * that callbacks can reach both from one pointer. */
typedef struct tool_s {
	const char *cmd; /* "events": every message starts "skald events: " */
	const char *usage;
	const char *uri;                /* --store, else SKALD_JOURNAL at tool_open */
	int json;                       /* --json: JSON lines instead of a table */
	const char *pid;                /* the persistence id the command is about, if any */
	uint64_t highest;               /* pid's highest seq, once tool_require_pid found it */
	void (*next)(struct tool_s *t); /* tool_require_pid's continuation */
	uv_loop_t loop;
	skald_journal_t *j; /* NULL until tool_open succeeds */
	int loop_ready;
	int closing;   /* skald_journal_close was called */
	int exit_code; /* of the first failure; TOOL_OK so far */
} tool_t;

/* ------------------------------------------------------------------------ */
/* Arguments                                                                 */

typedef enum { TOOL_OPT_FLAG, TOOL_OPT_STRING, TOOL_OPT_U64, TOOL_OPT_LIST } tool_opt_kind_t;

/* The values of an option that may be given several times. */
#define TOOL_LIST_MAX 16
typedef struct tool_list_s {
	const char *v[TOOL_LIST_MAX]; /* borrowed from argv */
	size_t n;
} tool_list_t;

/*
 * One option of a subcommand: "--name" for a flag, "--name VALUE" or
 * "--name=VALUE" otherwise. out points to an int (a flag: set to 1), a
 * const char * (the value, borrowed from argv), a uint64_t (a decimal
 * number) or a tool_list_t (each occurrence adds its value, at most
 * TOOL_LIST_MAX). given, if not NULL, is set to 1 when the option appears.
 */
typedef struct tool_opt_s {
	const char *name;
	tool_opt_kind_t kind;
	void *out;
	int *given;
} tool_opt_t;

/*
 * Parses argv[1..argc) (argv[0] is the subcommand's name) into t and opts.
 * --store URI and --json are accepted by every subcommand. Arguments that do
 * not start with "--" are positional: exactly npos of them are stored into
 * pos[0..npos), and pos_name names them in messages ("PID"). Returns 0, or
 * TOOL_EUSAGE after printing a message that names the mistake.
 */
int tool_args(tool_t *t, int argc, char **argv, const tool_opt_t *opts, size_t nopts,
              const char **pos, size_t npos, const char *pos_name);

/* ------------------------------------------------------------------------ */
/* The journal                                                               */

/*
 * Opens the journal named by t->uri (or SKALD_JOURNAL) on t's own loop.
 * Refuses a store whose data does not outlive its process (memory://): a
 * fresh `skald` process would always see it empty. Returns 0, or the exit
 * code after printing why (no URI, a malformed one or an unknown scheme:
 * TOOL_EUSAGE; anything else the store says: TOOL_ESTORE).
 */
int tool_open(tool_t *t);

/*
 * Asks for the highest seq of t->pid; when it is above 0, stores it in
 * t->highest and calls next(t) on the loop. A persistence id that never had
 * events fails with TOOL_ENOTFOUND, a store failure with its code.
 */
void tool_require_pid(tool_t *t, void (*next)(tool_t *t));

/* Runs t's loop until nothing is left to do. */
void tool_run(tool_t *t);

/* Starts closing the journal, unless that was done already; operations in
 * flight complete (streamed reads with SKALD_ECANCELED). Call on the loop.
 * A command calls it when its work is done: the store's connection keeps
 * the loop running until then. tool_fail calls it too. */
void tool_close_journal(tool_t *t);

/* Runs the loop until the command closed the journal (or closes it if the
 * command never started anything), closes the loop, flushes stdout, and
 * returns the exit code: t->exit_code, or TOOL_ESTORE when stdout could
 * not be written. */
int tool_close(tool_t *t);

/* The exit code for a Skald error code (negative): SKALD_ECONFLICT 3,
 * SKALD_ENOTFOUND 4, mistakes of the caller (SKALD_EINVAL, SKALD_EURI,
 * SKALD_ESCHEME, SKALD_EREJECTED) 1, anything else 2. 0 for 0. */
int tool_exit_code(int rc);

/* Prints "skald CMD: MESSAGE" to stderr, records code as the exit code
 * unless one was recorded before, closes the journal (a failure ends the
 * command), and returns code. */
int tool_fail(tool_t *t, int code, const char *fmt, ...) TOOL_PRINTF(3, 4);

/* tool_fail for a failed journal call: "WHAT: MESSAGE (NAME)", where MESSAGE
 * is the handle's error message (the backend's own text) or else
 * skald_strerror(rc). The code is tool_exit_code(rc). */
int tool_fail_rc(tool_t *t, int rc, const char *what);

/* ------------------------------------------------------------------------ */
/* Envelopes                                                                 */

/* Room for an RFC 3339 UTC time with milliseconds, with its NUL. */
#define TOOL_TIME_LEN 80

/* The milliseconds since 1970 of 0000-01-01T00:00:00.000Z and of
 * 9999-12-31T23:59:59.999Z: the times tool_time writes and tool_parse_time
 * reads back. */
#define TOOL_TIME_MIN_MS (-62167219200000LL)
#define TOOL_TIME_MAX_MS 253402300799999LL

/* Formats ms since the epoch as RFC 3339 in UTC with milliseconds,
 * "2024-05-01T12:00:00.123Z". Returns buf. */
char *tool_time(int64_t ms, char buf[TOOL_TIME_LEN]);

/* Parses an RFC 3339 time ("2024-05-01T12:00:00Z", fractions of a second
 * and a numeric offset allowed) into ms since the epoch. Returns 0 or -1. */
int tool_parse_time(const char *s, int64_t *ms);

/* Room for a writer as 16 hex digits, with its NUL. */
#define TOOL_WRITER_LEN 17

/* A writer (the incarnation that wrote an event) as 16 hex digits. It
 * uses all 64 bits, which neither jansson's integers nor JavaScript's
 * numbers hold exactly, so it travels in JSON as a string. */
char *tool_writer(uint64_t writer, char buf[TOOL_WRITER_LEN]);

/* Parses a writer: a string of 1 to 16 hex digits, or a JSON integer >= 0.
 * NULL is 0. Returns 0 or -1. */
int tool_parse_writer(const json_t *v, uint64_t *out);

/* A new JSON object (an owned reference; NULL on ENOMEM) for ev, with the
 * keys persistence_id, seq, type, version, data, timestamp, writer, offset,
 * in that order. ev->data is borrowed (the object takes its own
 * reference). */
json_t *tool_event_json(const skald_event_t *ev);

/* What an input line of stdin is: an event to append (`skald append`: its
 * type, version and data count, the other keys of an envelope are accepted
 * and ignored), or a whole envelope to import (`skald import`:
 * persistence_id and seq required, timestamp and writer kept). */
typedef enum { TOOL_LINE_EVENT, TOOL_LINE_ENVELOPE } tool_line_t;

/*
 * Checks line, the parsed line lineno of stdin, as kind says, and fills ev
 * from it (ev borrows line's strings and data; the fields kind does not take
 * are zero). Returns 0, or TOOL_EUSAGE after reporting with tool_fail what
 * is wrong with the line. line is borrowed.
 */
int tool_event_of_line(tool_t *t, tool_line_t kind, size_t lineno, json_t *line, skald_event_t *ev);

/* Writes v compactly on one line of stdout. v is borrowed. */
void tool_print_json(const json_t *v);

/* v in compact JSON, malloc'd (free it); NULL on ENOMEM. v is borrowed. */
char *tool_dumps(const json_t *v);

/* Parses a decimal number with no sign: 0, TOOL_U64_TOO_LARGE for digits
 * beyond 2^64 - 1, or -1 for anything else. */
#define TOOL_U64_TOO_LARGE (-2)
int tool_parse_u64(const char *s, uint64_t *out);

/* Writes s to stdout, padded with spaces to width columns (a longer s is
 * written whole, followed by one space, so columns stay apart). */
void tool_cell(const char *s, int width);

#endif /* SKALD_TOOLS_COMMON_H */
