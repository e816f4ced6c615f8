/*
 * tools/highest.c - `skald highest PID`: the highest sequence number ever
 * stored for a persistence id.
 */
#include <inttypes.h>

#include "tools/commands.h"
#include "tools/common.h"

const char cmd_highest_usage[] =
        "usage: skald highest PID [--store URI] [--json]\n"
        "\n"
        "Prints the highest sequence number ever stored for persistence id PID.\n"
        "It survives the deletion of the events: the next event of PID will be\n"
        "that number plus one. Exits with 4 when PID never had events.\n"
        "\n"
        "  --store URI  the journal (default: the environment variable SKALD_JOURNAL)\n"
        "  --json       one JSON object: {\"persistence_id\":...,\"highest_seq\":N}\n";

static void print_highest(tool_t *t)
{
	if (t->json) {
		json_t *o = json_pack("{s:s, s:I}", "persistence_id", t->pid, "highest_seq",
		                      (json_int_t)t->highest);
		tool_print_json(o);
		json_decref(o);
	} else {
		printf("%" PRIu64 "\n", t->highest);
	}
	tool_close_journal(t);
}

int cmd_highest(int argc, char **argv)
{
	tool_t t = {.cmd = "highest", .usage = cmd_highest_usage};
	if (tool_args(&t, argc, argv, NULL, 0, &t.pid, 1, "PID") != 0)
		return TOOL_EUSAGE;
	if (tool_open(&t) == 0)
		tool_require_pid(&t, print_highest);
	return tool_close(&t);
}
