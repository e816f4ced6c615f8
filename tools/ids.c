/*
 * tools/ids.c - `skald ids [--prefix P]`: the persistence ids of a journal,
 * with their highest sequence numbers.
 */
#include <inttypes.h>

#include "tools/commands.h"
#include "tools/common.h"

const char cmd_ids_usage[] =
        "usage: skald ids [--prefix P] [--store URI] [--json]\n"
        "\n"
        "Lists every persistence id that ever had events, in byte order, with\n"
        "its highest sequence number (which survives deletion of the events).\n"
        "\n"
        "  --prefix P   only the ids that start with P (e.g. --prefix game-)\n"
        "  --store URI  the journal (default: the environment variable SKALD_JOURNAL)\n"
        "  --json       JSON lines: {\"persistence_id\":...,\"highest_seq\":N}\n";

#define ID_WIDTH 32

typedef struct {
	tool_t t;
	const char *prefix;
	uint64_t n;
} ids_t;

static int on_ids(skald_journal_t *j, const skald_persistence_id_t *ids, size_t n, void *arg)
{
	ids_t *c = arg;
	for (size_t i = 0; i < n; i++, c->n++) {
		if (c->t.json) {
			json_t *o = json_pack("{s:s, s:I}", "persistence_id", ids[i].persistence_id,
			                      "highest_seq", (json_int_t)ids[i].highest_seq);
			tool_print_json(o);
			json_decref(o);
			continue;
		}
		if (c->n == 0) {
			tool_cell("PERSISTENCE_ID", ID_WIDTH);
			printf("HIGHEST_SEQ\n");
		}
		tool_cell(ids[i].persistence_id, ID_WIDTH);
		printf("%" PRIu64 "\n", ids[i].highest_seq);
	}
	return 0;
}

static void on_done(skald_journal_t *j, int status, void *arg)
{
	ids_t *c = arg;
	tool_close_journal(&c->t);
	if (status < 0) {
		tool_fail_rc(&c->t, status, "listing persistence ids");
		return;
	}
	/* An empty table would look like a failure to print anything. */
	if (c->n == 0 && !c->t.json)
		fprintf(stderr, "skald ids: no persistence ids%s%s%s\n",
		        c->prefix ? " starting with \"" : "", c->prefix ? c->prefix : "",
		        c->prefix ? "\"" : "");
}

int cmd_ids(int argc, char **argv)
{
	ids_t c = {.t = {.cmd = "ids", .usage = cmd_ids_usage}};
	const tool_opt_t opts[] = {{"--prefix", TOOL_OPT_STRING, &c.prefix, NULL}};
	if (tool_args(&c.t, argc, argv, opts, 1, NULL, 0, NULL) != 0)
		return TOOL_EUSAGE;
	if (tool_open(&c.t) == 0) {
		int rc = skald_journal_list_ids(c.t.j, c.prefix, NULL, SKALD_SEQ_MAX, on_ids,
		                                on_done, &c);
		if (rc < 0)
			tool_fail_rc(&c.t, rc, "listing persistence ids");
	}
	return tool_close(&c.t);
}
