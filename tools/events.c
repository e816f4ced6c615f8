/*
 * tools/events.c - `skald events PID [--from N] [--to N] [--max N]`: the
 * envelopes of one persistence id.
 */
#include <inttypes.h>
#include <stdlib.h>

#include "tools/commands.h"
#include "tools/common.h"

const char cmd_events_usage[] =
        "usage: skald events PID [--from N] [--to N] [--max N] [--store URI] [--json]\n"
        "\n"
        "Prints the events of persistence id PID in sequence order: a table, or\n"
        "with --json one envelope per line, {\"persistence_id\", \"seq\", \"type\",\n"
        "\"version\", \"data\", \"timestamp\" (RFC 3339, UTC), \"writer\", \"offset\"}.\n"
        "Deleted events are not shown. Exits with 4 when PID never had events.\n"
        "\n"
        "  --from N     the first sequence number (default 1)\n"
        "  --to N       the last sequence number (default: the highest)\n"
        "  --max N      at most N events\n"
        "  --store URI  the journal (default: the environment variable SKALD_JOURNAL)\n"
        "  --json       JSON lines instead of a table\n";

typedef struct {
	tool_t t;
	uint64_t from, to, max;
	uint64_t n;
} events_t;

static void print_row(const skald_event_t *ev)
{
	char buf[TOOL_TIME_LEN], seq[24], version[16];
	snprintf(seq, sizeof seq, "%" PRIu64, ev->seq);
	snprintf(version, sizeof version, "%d", ev->version);
	tool_cell(seq, 6);
	tool_cell(tool_time(ev->timestamp, buf), 25);
	tool_cell(ev->type, 20);
	tool_cell(version, 4);
	char *data = tool_dumps(ev->data);
	printf("%s\n", data != NULL ? data : "?");
	free(data);
}

static int on_events(skald_journal_t *j, const skald_event_t *ev, size_t n, void *arg)
{
	events_t *c = arg;
	for (size_t i = 0; i < n; i++, c->n++) {
		if (c->t.json) {
			json_t *o = tool_event_json(&ev[i]);
			if (o == NULL)
				return SKALD_ENOMEM;
			tool_print_json(o);
			json_decref(o);
			continue;
		}
		if (c->n == 0) {
			tool_cell("SEQ", 6);
			tool_cell("TIMESTAMP", 25);
			tool_cell("TYPE", 20);
			tool_cell("VER", 4);
			printf("DATA\n");
		}
		print_row(&ev[i]);
	}
	return 0;
}

static void on_done(skald_journal_t *j, int status, void *arg)
{
	events_t *c = arg;
	tool_close_journal(&c->t);
	char what[256];
	snprintf(what, sizeof what, "reading the events of \"%s\"", c->t.pid);
	if (status < 0) {
		tool_fail_rc(&c->t, status, what);
		return;
	}
	if (c->n == 0 && !c->t.json)
		fprintf(stderr,
		        "skald events: no events of \"%s\" in that range (its highest seq is "
		        "%" PRIu64 "; deleted events are not shown)\n",
		        c->t.pid, c->t.highest);
}

static void read_events(tool_t *t)
{
	events_t *c = (events_t *)t;
	int rc = skald_journal_read(t->j, t->pid, c->from, c->to, c->max, on_events, on_done, c);
	if (rc < 0)
		tool_fail_rc(t, rc, "reading events");
}

int cmd_events(int argc, char **argv)
{
	events_t c = {.t = {.cmd = "events", .usage = cmd_events_usage},
	              .from = 1,
	              .to = SKALD_SEQ_MAX,
	              .max = SKALD_SEQ_MAX};
	const tool_opt_t opts[] = {
	        {"--from", TOOL_OPT_U64, &c.from, NULL},
	        {"--to", TOOL_OPT_U64, &c.to, NULL},
	        {"--max", TOOL_OPT_U64, &c.max, NULL},
	};
	if (tool_args(&c.t, argc, argv, opts, 3, &c.t.pid, 1, "PID") != 0)
		return TOOL_EUSAGE;
	if (tool_open(&c.t) == 0)
		tool_require_pid(&c.t, read_events);
	return tool_close(&c.t);
}
