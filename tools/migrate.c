/*
 * tools/migrate.c - `skald migrate [--status] [--store URI]`: applies the
 * pending schema migrations of a journal store, or lists them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skald/store.h"
#include "tools/commands.h"
#include "tools/common.h"

const char cmd_migrate_usage[] =
        "usage: skald migrate [--status] [--store URI]\n"
        "\n"
        "Brings the journal's schema to the version this build needs: applies\n"
        "every pending migration, in order, each in its own transaction, and\n"
        "prints one line per migration applied. Safe to run again, and from\n"
        "several hosts at once.\n"
        "\n"
        "  --status     change nothing: list every migration as applied or pending;\n"
        "               exit 5 when some are pending, 0 when none is\n"
        "  --store URI  the journal, e.g. postgres://USER:PASSWORD@HOST:PORT/DB\n"
        "               (default: the environment variable SKALD_JOURNAL)\n";

int cmd_migrate(int argc, char **argv)
{
	const char *uri = NULL;
	int status_only = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--status") == 0) {
			status_only = 1;
		} else if (strcmp(argv[i], "--store") == 0) {
			if (i + 1 >= argc) {
				fprintf(stderr, "skald migrate: --store needs a URI, e.g. --store "
				                "postgres://USER:PASSWORD@HOST:PORT/DB\n");
				return 1;
			}
			uri = argv[++i];
		} else if (strncmp(argv[i], "--store=", 8) == 0) {
			uri = argv[i] + 8;
		} else {
			fprintf(stderr, "skald migrate: unknown argument \"%s\"\n\n%s", argv[i],
			        cmd_migrate_usage);
			return 1;
		}
	}
	if (uri == NULL && (getenv("SKALD_JOURNAL") == NULL || !*getenv("SKALD_JOURNAL"))) {
		fprintf(stderr,
		        "skald migrate: no journal: pass --store URI or set "
		        "SKALD_JOURNAL\n\n%s",
		        cmd_migrate_usage);
		return 1;
	}
	char err[512];
	int rc = skald_store_migrate(uri, status_only, stdout, err, sizeof err);
	if (status_only && rc == SKALD_ESCHEMA) {
		fprintf(stderr, "skald migrate: %s\n", err);
		return TOOL_EPENDING;
	}
	if (rc < 0) {
		fprintf(stderr, "skald migrate: %s\n", err[0] ? err : skald_strerror(rc));
		/* The exit codes of every subcommand (tools/commands.h): a mistake
		 * in the URI is the user's, anything else the store's. */
		return rc == SKALD_EURI || rc == SKALD_ESCHEME ? 1 : 2;
	}
	return 0;
}
