/*
 * tools/skald.c - the `skald` command-line tool: picks a subcommand from the
 * table below and runs it. Each subcommand lives in its own file (see
 * tools/commands.h); adding one is a new file, a declaration and one line
 * here.
 */
#include <stdio.h>
#include <string.h>

#include "tools/commands.h"

static const tool_cmd_t commands[] = {
        {"migrate", "apply the journal store's schema migrations, or list them", cmd_migrate_usage,
         cmd_migrate},
        {"ids", "list persistence ids with their highest seq", cmd_ids_usage, cmd_ids},
        {"events", "print the events of a persistence id", cmd_events_usage, cmd_events},
        {"highest", "print the highest seq of a persistence id", cmd_highest_usage, cmd_highest},
        {"append", "append events (JSON lines on stdin) as one atomic write", cmd_append_usage,
         cmd_append},
        {"delete", "delete the events of a persistence id up to a seq", cmd_delete_usage,
         cmd_delete},
        {"replay", "fold a history with an entity type from a .so, state after each event",
         cmd_replay_usage, cmd_replay},
        {"snapshots", "list the snapshots of a persistence id", cmd_snapshots_usage, cmd_snapshots},
        {"export", "write histories as JSON lines", cmd_export_usage, cmd_export},
        {"import", "append histories written by export", cmd_import_usage, cmd_import},
        {"tail", "follow the global stream of events, live", cmd_tail_usage, cmd_tail},
        {"web", "serve the history browser: a web page and a JSON API, read-only", cmd_web_usage,
         cmd_web},
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f)
{
	fprintf(f, "usage: skald COMMAND [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\n`skald help COMMAND` or `skald COMMAND --help` describes one.\n"
	           "A journal is named by a URI (--store URI, or the environment variable\n"
	           "SKALD_JOURNAL): postgres://USER:PASSWORD@HOST:PORT/DB or\n"
	           "mongodb://HOST:PORT/DB. --json prints JSON lines instead of a table.\n"
	           "\nexit status: 0 done, 1 usage (a flag, a value, an input line, a URI\n"
	           "scheme), 2 store unreachable or failed, 3 conflict (not at the expected\n"
	           "seq), 4 not found (a persistence id that never had events).\n");
}

static const tool_cmd_t *find(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 1;
	}
	const char *name = argv[1];
	if (strcmp(name, "help") == 0 || strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
		if (argc > 2 && strcmp(name, "help") == 0) {
			const tool_cmd_t *c = find(argv[2]);
			if (c != NULL) {
				fputs(c->usage, stdout);
				return 0;
			}
			fprintf(stderr, "skald: no command \"%s\"\n\n", argv[2]);
			usage(stderr);
			return 1;
		}
		usage(stdout);
		return 0;
	}
	const tool_cmd_t *c = find(name);
	if (c == NULL) {
		fprintf(stderr, "skald: unknown command \"%s\"\n\n", name);
		usage(stderr);
		return 1;
	}
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs(c->usage, stdout);
			return 0;
		}
	}
	return c->run(argc - 1, argv + 1);
}
