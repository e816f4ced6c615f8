/*
 * tools/export.c - `skald export [--pid PID [--from N] | [--prefix P]
 * [--after OFFSET]]`: writes
 * histories as JSON lines, for `skald import` into another store.
 */
#include <string.h>

#include "tools/commands.h"
#include "tools/common.h"

const char cmd_export_usage[] =
        "usage: skald export [--pid PID [--from N] | [--prefix P] [--after OFFSET]]\n"
        "                    [--store URI] > histories.jsonl\n"
        "\n"
        "Writes events to stdout as JSON lines, one envelope per line:\n"
        "{\"persistence_id\", \"seq\", \"type\", \"version\", \"data\", \"timestamp\"\n"
        "(RFC 3339, UTC, milliseconds), \"writer\" (16 hex digits), \"offset\"}.\n"
        "Without --pid, every event of the journal in the global order (the\n"
        "order `skald tail` follows), so the events of each persistence id come\n"
        "in sequence order. Deleted events are not exported: a history whose\n"
        "first events were deleted cannot be imported into an empty store.\n"
        "The output is always JSON lines (--json changes nothing). Exits with 4\n"
        "when PID never had events.\n"
        "\n"
        "  --pid PID       only this persistence id\n"
        "  --from N        with --pid: from sequence number N (default 1)\n"
        "  --prefix P      only the persistence ids that start with P\n"
        "  --after OFFSET  without --pid: only the events after this place in the\n"
        "                  global order (an envelope's \"offset\"; default 0)\n"
        "  --store URI     the journal (default: the environment variable SKALD_JOURNAL)\n"
        "\n"
        "An event that is stored but cannot be read back as JSON (written by\n"
        "another program) stops the export with its persistence id and seq, and\n"
        "the command to carry on past it.\n";

typedef struct {
	tool_t t;
	const char *prefix;
	size_t prefix_len;
	uint64_t from, after;
} export_t;

static int on_events(skald_journal_t *j, const skald_event_t *ev, size_t n, void *arg)
{
	export_t *c = arg;
	for (size_t i = 0; i < n; i++) {
		if (c->prefix != NULL &&
		    strncmp(ev[i].persistence_id, c->prefix, c->prefix_len) != 0)
			continue;
		json_t *o = tool_event_json(&ev[i]);
		if (o == NULL)
			return SKALD_ENOMEM;
		tool_print_json(o);
		json_decref(o);
	}
	return 0;
}

static void on_done(skald_journal_t *j, int status, void *arg)
{
	export_t *c = arg;
	tool_close_journal(&c->t);
	if (status < 0)
		tool_fail_rc(&c->t, status, "reading the journal");
}

static void export_one(tool_t *t)
{
	export_t *c = (export_t *)t;
	int rc = skald_journal_read(t->j, t->pid, c->from, SKALD_SEQ_MAX, SKALD_SEQ_MAX, on_events,
	                            on_done, t);
	if (rc < 0)
		tool_fail_rc(t, rc, "reading events");
}

int cmd_export(int argc, char **argv)
{
	export_t c = {.t = {.cmd = "export", .usage = cmd_export_usage}, .from = 1};
	const tool_opt_t opts[] = {
	        {"--pid", TOOL_OPT_STRING, &c.t.pid, NULL},
	        {"--prefix", TOOL_OPT_STRING, &c.prefix, NULL},
	        {"--from", TOOL_OPT_U64, &c.from, NULL},
	        {"--after", TOOL_OPT_U64, &c.after, NULL},
	};
	if (tool_args(&c.t, argc, argv, opts, 4, NULL, 0, NULL) != 0)
		return TOOL_EUSAGE;
	if (c.t.pid == NULL && c.from != 1) {
		tool_fail(&c.t, TOOL_EUSAGE,
		          "--from N needs --pid PID (without --pid, --after OFFSET says where to "
		          "start)");
		return TOOL_EUSAGE;
	}
	if (c.t.pid != NULL && c.after != 0) {
		tool_fail(&c.t, TOOL_EUSAGE,
		          "--after OFFSET reads the global order and excludes --pid: with --pid, "
		          "--from N says where to start");
		return TOOL_EUSAGE;
	}
	if (c.t.pid != NULL && c.prefix != NULL) {
		tool_fail(&c.t, TOOL_EUSAGE, "--pid and --prefix exclude each other: give one");
		return TOOL_EUSAGE;
	}
	if (c.t.pid != NULL && c.t.pid[0] == '\0') {
		tool_fail(&c.t, TOOL_EUSAGE, "--pid needs a persistence id, not \"\"");
		return TOOL_EUSAGE;
	}
	c.prefix_len = c.prefix != NULL ? strlen(c.prefix) : 0;
	if (tool_open(&c.t) == 0) {
		if (c.t.pid != NULL) {
			tool_require_pid(&c.t, export_one);
		} else {
			int rc = skald_journal_read_all(c.t.j, c.after, SKALD_SEQ_MAX, on_events,
			                                on_done, &c);
			if (rc < 0)
				tool_fail_rc(&c.t, rc, "reading the journal");
		}
	}
	return tool_close(&c.t);
}
