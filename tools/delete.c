/*
 * tools/delete.c - `skald delete PID --to N`: deletes the events of a
 * persistence id up to a sequence number.
 */
#include <inttypes.h>

#include "tools/commands.h"
#include "tools/common.h"

const char cmd_delete_usage[] =
        "usage: skald delete PID --to N [--store URI] [--json]\n"
        "\n"
        "Deletes the events of persistence id PID with seq <= N (N above the\n"
        "highest deletes them all). The highest sequence number is kept: the\n"
        "next event of PID still follows it, and `skald highest` still shows\n"
        "it. Snapshots are not touched. Exits with 4 when PID never had events.\n"
        "\n"
        "  --to N       the last sequence number to delete (required)\n"
        "  --store URI  the journal (default: the environment variable SKALD_JOURNAL)\n"
        "  --json       one JSON object: {\"persistence_id\",\"deleted_to\",\"highest_seq\"}\n";

typedef struct {
	tool_t t;
	uint64_t to;
} delete_t;

static void on_deleted(skald_journal_t *j, int status, void *arg)
{
	delete_t *c = arg;
	tool_close_journal(&c->t);
	if (status < 0) {
		char what[256];
		snprintf(what, sizeof what, "deleting the events of \"%s\"", c->t.pid);
		tool_fail_rc(&c->t, status, what);
		return;
	}
	uint64_t to = c->to < c->t.highest ? c->to : c->t.highest;
	if (c->t.json) {
		json_t *o = json_pack("{s:s, s:I, s:I}", "persistence_id", c->t.pid, "deleted_to",
		                      (json_int_t)to, "highest_seq", (json_int_t)c->t.highest);
		tool_print_json(o);
		json_decref(o);
	} else {
		printf("deleted the events of %s with seq <= %" PRIu64
		       "; its highest seq stays %" PRIu64 "\n",
		       c->t.pid, to, c->t.highest);
	}
}

static void delete_events(tool_t *t)
{
	delete_t *c = (delete_t *)t;
	int rc = skald_journal_delete_to(t->j, t->pid, c->to, on_deleted, c);
	if (rc < 0)
		tool_fail_rc(t, rc, "deleting events");
}

int cmd_delete(int argc, char **argv)
{
	delete_t c = {.t = {.cmd = "delete", .usage = cmd_delete_usage}};
	int given = 0;
	const tool_opt_t opts[] = {{"--to", TOOL_OPT_U64, &c.to, &given}};
	if (tool_args(&c.t, argc, argv, opts, 1, &c.t.pid, 1, "PID") != 0)
		return TOOL_EUSAGE;
	if (!given) {
		tool_fail(&c.t, TOOL_EUSAGE,
		          "--to N is required: the last sequence number to delete (`skald highest "
		          "%s` shows the highest)",
		          c.t.pid);
		return TOOL_EUSAGE;
	}
	if (tool_open(&c.t) == 0)
		tool_require_pid(&c.t, delete_events);
	return tool_close(&c.t);
}
