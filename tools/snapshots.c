/*
 * tools/snapshots.c - `skald snapshots PID [--max N]`: the snapshots of one
 * persistence id, newest first.
 *
 * The journal loads one snapshot at a time (the latest with seq <= a
 * bound): the listing asks again below each one it got (tools/fold.c).
 */
#include <inttypes.h>

#include "tools/commands.h"
#include "tools/common.h"
#include "tools/fold.h"

const char cmd_snapshots_usage[] =
        "usage: skald snapshots PID [--max N] [--store URI] [--json]\n"
        "\n"
        "Lists the snapshots of persistence id PID, newest first: the seq of the\n"
        "event each was taken after, the state's schema version, when it was\n"
        "saved, and the size of its data as compact JSON. Exits with 4 when PID\n"
        "never had events. `skald replay PID --from-snapshot` starts from them.\n"
        "\n"
        "  --max N      at most N snapshots (the newest)\n"
        "  --store URI  the journal (default: the environment variable SKALD_JOURNAL)\n"
        "  --json       JSON lines: {\"persistence_id\", \"seq\", \"version\",\n"
        "               \"timestamp\", \"size\"}\n";

typedef struct {
	tool_t t;
	uint64_t max;
	tool_snaps_t w;
} snapshots_t;

static int each(tool_snaps_t *w, const skald_snapshot_t *s)
{
	snapshots_t *c = w->arg;
	char ts[TOOL_TIME_LEN], seq[24], version[16], size[24];
	tool_time(s->timestamp, ts);
	if (c->t.json) {
		json_t *o = json_pack("{s:s, s:I, s:i, s:s, s:I}", "persistence_id", c->t.pid,
		                      "seq", (json_int_t)s->seq, "version", s->version, "timestamp",
		                      ts, "size", (json_int_t)tool_json_size(s->data));
		if (o == NULL)
			return SKALD_ENOMEM;
		tool_print_json(o);
		json_decref(o);
		return 0;
	}
	if (w->n == 0) {
		tool_cell("SEQ", 8);
		tool_cell("VERSION", 8);
		tool_cell("TIMESTAMP", 26);
		printf("SIZE\n");
	}
	snprintf(seq, sizeof seq, "%" PRIu64, s->seq);
	snprintf(version, sizeof version, "%d", s->version);
	snprintf(size, sizeof size, "%zu", tool_json_size(s->data));
	tool_cell(seq, 8);
	tool_cell(version, 8);
	tool_cell(ts, 26);
	printf("%s\n", size);
	return 0;
}

static void done(tool_snaps_t *w, int status)
{
	snapshots_t *c = w->arg;
	tool_close_journal(&c->t);
	if (status < 0) {
		char what[256];
		snprintf(what, sizeof what, "reading the snapshots of \"%s\"", c->t.pid);
		tool_fail_rc(&c->t, status, what);
		return;
	}
	if (w->n == 0 && !c->t.json)
		fprintf(stderr, "skald snapshots: \"%s\" has no snapshots\n", c->t.pid);
}

static void start(tool_t *t)
{
	snapshots_t *c = (snapshots_t *)t;
	c->w = (tool_snaps_t){.j = t->j,
	                      .pid = t->pid,
	                      .max_seq = SKALD_SEQ_MAX,
	                      .limit = c->max,
	                      .each = each,
	                      .done = done,
	                      .arg = c};
	int rc = tool_snaps_start(&c->w);
	if (rc < 0)
		tool_fail_rc(t, rc, "reading snapshots");
}

int cmd_snapshots(int argc, char **argv)
{
	snapshots_t c = {.t = {.cmd = "snapshots", .usage = cmd_snapshots_usage}};
	const tool_opt_t opts[] = {{"--max", TOOL_OPT_U64, &c.max, NULL}};
	if (tool_args(&c.t, argc, argv, opts, 1, &c.t.pid, 1, "PID") != 0)
		return TOOL_EUSAGE;
	if (tool_open(&c.t) == 0)
		tool_require_pid(&c.t, start);
	return tool_close(&c.t);
}
