/*
 * tools/append.c - `skald append PID --expect N`: appends the events read
 * from stdin to a persistence id, as one atomic write.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "tools/commands.h"
#include "tools/common.h"

const char cmd_append_usage[] =
        "usage: skald append PID --expect N [--store URI] [--json] < events.jsonl\n"
        "\n"
        "Reads events from stdin, one JSON object per line,\n"
        "  {\"type\": \"game.moved\", \"version\": 1, \"data\": {\"player\": \"p1\", \"cell\": "
        "4}}\n"
        "(version may be left out: 1), and appends them to persistence id PID as\n"
        "one atomic write, numbered from N+1, if and only if the highest seq of\n"
        "PID is N at that moment. Prints the new highest seq. The envelope keys\n"
        "of `skald events --json` (persistence_id, seq, timestamp, writer,\n"
        "offset) are accepted and ignored, so that the events of one id can be\n"
        "piped into another; the new events are stamped now. Blank lines are\n"
        "skipped. A line that is not such an object stops everything before\n"
        "anything is written (exit 1, naming the line). When the highest seq is\n"
        "not N nothing is written (exit 3, giving the highest).\n"
        "\n"
        "  --expect N   the highest seq PID must have now; 0 for a new id (required)\n"
        "  --store URI  the journal (default: the environment variable SKALD_JOURNAL)\n"
        "  --json       print {\"persistence_id\",\"highest_seq\"} instead of the number\n";

typedef struct {
	tool_t t;
	uint64_t expect;
	skald_event_t *ev;
	json_t **lines; /* the parsed lines, which own the events' strings and data */
	size_t n, cap;
	skald_write_t w;
} append_t;

/* Reads and checks every line of stdin before anything is written, so that
 * a mistake on line 7 does not leave lines 1 to 6 stored. */
static int read_stdin(append_t *c)
{
	char *buf = NULL;
	size_t bufcap = 0, lineno = 0;
	ssize_t len;
	int rc = 0;
	while (rc == 0 && (len = getline(&buf, &bufcap, stdin)) >= 0) {
		lineno++;
		while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
			buf[--len] = '\0';
		if (strspn(buf, " \t") == (size_t)len)
			continue;
		json_error_t err;
		json_t *line = json_loadb(buf, (size_t)len, JSON_REJECT_DUPLICATES, &err);
		if (line == NULL) {
			rc = tool_fail(&c->t, TOOL_EUSAGE,
			               "stdin line %zu: not JSON: %s (column %d)", lineno, err.text,
			               err.column);
			break;
		}
		if (c->n == c->cap) {
			size_t cap = c->cap ? 2 * c->cap : 64;
			skald_event_t *ev = realloc(c->ev, cap * sizeof *ev);
			json_t **lines = ev != NULL ? realloc(c->lines, cap * sizeof *lines) : NULL;
			if (ev != NULL)
				c->ev = ev;
			if (lines == NULL) {
				json_decref(line);
				rc = tool_fail(&c->t, TOOL_ESTORE,
				               "out of memory at stdin line %zu", lineno);
				break;
			}
			c->lines = lines;
			c->cap = cap;
		}
		c->lines[c->n] = line;
		rc = tool_event_of_line(&c->t, TOOL_LINE_EVENT, lineno, line, &c->ev[c->n]);
		c->n++;
	}
	free(buf);
	if (rc == 0 && ferror(stdin))
		rc = tool_fail(&c->t, TOOL_ESTORE, "reading stdin failed");
	if (rc == 0 && c->n == 0)
		rc = tool_fail(&c->t, TOOL_EUSAGE,
		               "stdin holds no events: nothing appended (one JSON object per line, "
		               "e.g. {\"type\":\"game.moved\",\"version\":1,\"data\":{...}})");
	return rc;
}

static void on_conflict_highest(skald_journal_t *j, int status, uint64_t seq, void *arg)
{
	append_t *c = arg;
	if (status < 0) {
		tool_fail(&c->t, TOOL_ECONFLICT,
		          "the highest seq of \"%s\" is not %" PRIu64 ": nothing appended",
		          c->t.pid, c->expect);
		return;
	}
	tool_fail(&c->t, TOOL_ECONFLICT,
	          "the highest seq of \"%s\" is %" PRIu64 ", not %" PRIu64
	          " (--expect): nothing appended",
	          c->t.pid, seq, c->expect);
}

static void on_appended(skald_journal_t *j, int status, skald_write_t *w, size_t nw, void *arg)
{
	append_t *c = arg;
	int st = w[0].status;
	if (st == SKALD_ECONFLICT) {
		/* Another look tells the user what the history holds now. */
		if (skald_journal_highest(j, c->t.pid, on_conflict_highest, c) < 0)
			on_conflict_highest(j, SKALD_ECLOSED, 0, c);
		return;
	}
	if (st < 0 || status < 0) {
		char what[256];
		snprintf(what, sizeof what, "appending to \"%s\"", c->t.pid);
		tool_fail_rc(&c->t, st < 0 ? st : status, what);
		return;
	}
	tool_close_journal(&c->t);
	uint64_t highest = w[0].events[w[0].nevents - 1].seq;
	if (c->t.json) {
		json_t *o = json_pack("{s:s, s:I}", "persistence_id", c->t.pid, "highest_seq",
		                      (json_int_t)highest);
		tool_print_json(o);
		json_decref(o);
	} else {
		printf("%" PRIu64 "\n", highest);
	}
}

int cmd_append(int argc, char **argv)
{
	append_t c = {.t = {.cmd = "append", .usage = cmd_append_usage}};
	int given = 0;
	const tool_opt_t opts[] = {{"--expect", TOOL_OPT_U64, &c.expect, &given}};
	if (tool_args(&c.t, argc, argv, opts, 1, &c.t.pid, 1, "PID") != 0)
		return TOOL_EUSAGE;
	if (!given) {
		tool_fail(&c.t, TOOL_EUSAGE,
		          "--expect N is required: the highest seq \"%s\" has now (0 for a new id; "
		          "`skald highest %s` shows it)",
		          c.t.pid, c.t.pid);
		return TOOL_EUSAGE;
	}
	if (read_stdin(&c) == 0 && tool_open(&c.t) == 0) {
		c.w = (skald_write_t){c.t.pid, c.expect, c.ev, c.n, 0};
		int rc = skald_journal_append(c.t.j, &c.w, 1, on_appended, &c);
		if (rc < 0)
			tool_fail_rc(&c.t, rc, "appending");
	}
	int code = tool_close(&c.t);
	for (size_t i = 0; i < c.n; i++)
		json_decref(c.lines[i]);
	free(c.lines);
	free(c.ev);
	return code;
}
