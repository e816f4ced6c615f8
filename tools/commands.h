/*
 * tools/commands.h - the subcommands of the `skald` command-line tool.
 *
 * A subcommand is one function in a file of its own under tools/, declared
 * here and listed once in the table of tools/skald.c. It receives argv
 * starting at its own name (argv[0] is "migrate"), prints its results to
 * stdout and its errors to stderr, and returns the process's exit status,
 * the same for every subcommand (tools/common.h has the details):
 *   0 done
 *   1 used wrongly: a flag, a value, an input line, a URI scheme (a message
 *     names the mistake)
 *   2 the store is unreachable or failed (the message has its own text)
 *   3 conflict: a history is not at the expected seq (the message gives it)
 *   4 not found: a persistence id that never had events
 *   5 `skald migrate --status`: migrations are pending (the list says which)
 * "--help" among its arguments prints its usage to stdout and returns 0.
 */
#ifndef SKALD_TOOLS_COMMANDS_H
#define SKALD_TOOLS_COMMANDS_H

/* One entry of the table: name, one-line summary, usage text, entry point. */
typedef struct tool_cmd_s {
	const char *name;
	const char *summary;
	const char *usage;
	int (*run)(int argc, char **argv);
} tool_cmd_t;

/* tools/migrate.c: skald migrate [--status] [--store URI] */
extern const char cmd_migrate_usage[];
int cmd_migrate(int argc, char **argv);

/* tools/ids.c: skald ids [--prefix P] */
extern const char cmd_ids_usage[];
int cmd_ids(int argc, char **argv);

/* tools/events.c: skald events PID [--from N] [--to N] [--max N] */
extern const char cmd_events_usage[];
int cmd_events(int argc, char **argv);

/* tools/highest.c: skald highest PID */
extern const char cmd_highest_usage[];
int cmd_highest(int argc, char **argv);

/* tools/append.c: skald append PID --expect N < events.jsonl */
extern const char cmd_append_usage[];
int cmd_append(int argc, char **argv);

/* tools/delete.c: skald delete PID --to N */
extern const char cmd_delete_usage[];
int cmd_delete(int argc, char **argv);

/* tools/replay.c: skald replay PID --entity LIB.so:TYPE [--to N | --at TIME]
 * [--from-snapshot] [--verify] */
extern const char cmd_replay_usage[];
int cmd_replay(int argc, char **argv);

/* tools/export.c: skald export [--pid PID | --prefix P] */
extern const char cmd_export_usage[];
int cmd_export(int argc, char **argv);

/* tools/import.c: skald import [--force] < histories.jsonl */
extern const char cmd_import_usage[];
int cmd_import(int argc, char **argv);

/* tools/tail.c: skald tail [--from OFFSET] [--count N] */
extern const char cmd_tail_usage[];
int cmd_tail(int argc, char **argv);

/* tools/snapshots.c: skald snapshots PID [--max N] */
extern const char cmd_snapshots_usage[];
int cmd_snapshots(int argc, char **argv);

/* tools/web.c: skald web [--entity LIB.so:TYPE]... [--listen HOST:PORT] [--token T] */
extern const char cmd_web_usage[];
int cmd_web(int argc, char **argv);

#endif /* SKALD_TOOLS_COMMANDS_H */
