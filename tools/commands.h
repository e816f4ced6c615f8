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
 * "--help" among its arguments prints its usage to stdout and returns 0.
 */
#ifndef SKALD_TOOLS_COMMANDS_H
#define SKALD_TOOLS_COMMANDS_H

/* One entry of the table: name, one-line summary, usage text, entry point. */
typedef struct skald_tool_cmd_s {
	const char *name;
	const char *summary;
	const char *usage;
	int (*run)(int argc, char **argv);
} skald_tool_cmd_t;

/* tools/migrate.c: skald migrate [--status] [--store URI] */
extern const char cmd_migrate_usage[];
int cmd_migrate(int argc, char **argv);

#endif /* SKALD_TOOLS_COMMANDS_H */
