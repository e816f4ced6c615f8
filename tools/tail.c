/*
 * tools/tail.c - `skald tail [--from OFFSET] [--count N]`: follows the
 * global stream of events, live.
 *
 * The journal has no push: tail polls skald_journal_read_all from the
 * offset of the last event it saw, which is how projections read too. The
 * global order never skips a committed event, so polling loses nothing.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "tools/commands.h"
#include "tools/common.h"

const char cmd_tail_usage[] =
        "usage: skald tail [--from OFFSET] [--count N] [--prefix P] [--interval MS]\n"
        "                  [--store URI] [--json]\n"
        "\n"
        "Follows every persistence id's events in the global order, as they are\n"
        "written, until Ctrl-C (SIGINT) or SIGTERM, which exit cleanly with 0.\n"
        "Without --from it starts at the end: only events written from now on\n"
        "are shown (finding the end reads the journal once, without printing).\n"
        "\n"
        "  --from OFFSET  start with the events at global offset OFFSET and after\n"
        "                 (0 or 1: from the beginning); the offset of each event is\n"
        "                 in the table and in --json\n"
        "  --count N      exit after N events\n"
        "  --prefix P     only the persistence ids that start with P\n"
        "  --interval MS  how often to look for new events (default 200)\n"
        "  --store URI    the journal (default: the environment variable SKALD_JOURNAL)\n"
        "  --json         JSON lines (envelopes, as `skald events --json`)\n";

typedef struct {
	tool_t t;
	uint64_t from, count, interval;
	int from_given, count_given;
	const char *prefix;
	size_t prefix_len;
	uint64_t after; /* offset of the last event seen */
	uint64_t shown;
	int catching_up; /* the first read without --from: find the end */
	int reading;     /* a read_all is in flight */
	int stopping;
	int handles_open;
	uv_timer_t timer;
	uv_signal_t sigint, sigterm;
} tail_t;

static void stop(tail_t *c)
{
	if (c->stopping)
		return;
	c->stopping = 1;
	if (c->handles_open) {
		c->handles_open = 0;
		uv_close((uv_handle_t *)&c->timer, NULL);
		uv_close((uv_handle_t *)&c->sigint, NULL);
		uv_close((uv_handle_t *)&c->sigterm, NULL);
	}
	/* A read still in flight completes first (or is cut short), and its
	 * done callback sees that we are stopping. */
	tool_close_journal(&c->t);
}

static void print_row(tail_t *c, const skald_event_t *ev)
{
	char offset[24], seq[24];
	if (c->shown == 0) {
		tool_cell("OFFSET", 20);
		tool_cell("PERSISTENCE_ID", 24);
		tool_cell("SEQ", 6);
		tool_cell("TYPE", 20);
		printf("DATA\n");
	}
	snprintf(offset, sizeof offset, "%" PRIu64, ev->offset);
	snprintf(seq, sizeof seq, "%" PRIu64, ev->seq);
	tool_cell(offset, 20);
	tool_cell(ev->persistence_id, 24);
	tool_cell(seq, 6);
	tool_cell(ev->type, 20);
	char *data = tool_dumps(ev->data);
	printf("%s\n", data != NULL ? data : "?");
	free(data);
}

static int on_events(skald_journal_t *j, const skald_event_t *ev, size_t n, void *arg)
{
	tail_t *c = arg;
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		c->after = ev[i].offset;
		if (c->catching_up || c->stopping)
			continue;
		if (c->prefix != NULL &&
		    strncmp(ev[i].persistence_id, c->prefix, c->prefix_len) != 0)
			continue;
		if (c->t.json) {
			json_t *o = tool_event_json(&ev[i]);
			if (o == NULL)
				return SKALD_ENOMEM;
			tool_print_json(o);
			json_decref(o);
		} else {
			print_row(c, &ev[i]);
		}
		c->shown++;
		if (c->count_given && c->shown >= c->count)
			rc = SKALD_ECANCELED;
	}
	/* Whoever reads our output follows it live: do not keep it in a
	 * buffer until it fills. */
	fflush(stdout);
	return rc;
}

static void on_tick(uv_timer_t *timer);

static void on_done(skald_journal_t *j, int status, void *arg)
{
	tail_t *c = arg;
	c->reading = 0;
	if (c->stopping)
		return;
	if (c->count_given && c->shown >= c->count) {
		stop(c);
		return;
	}
	if (status < 0) {
		tool_fail_rc(&c->t, status, "reading the global order");
		stop(c);
		return;
	}
	c->catching_up = 0;
	uv_timer_start(&c->timer, on_tick, c->interval, 0);
}

static void on_tick(uv_timer_t *timer)
{
	tail_t *c = timer->data;
	if (c->stopping || c->reading)
		return;
	int rc = skald_journal_read_all(c->t.j, c->after, SKALD_SEQ_MAX, on_events, on_done, c);
	if (rc < 0) {
		tool_fail_rc(&c->t, rc, "reading the global order");
		stop(c);
		return;
	}
	c->reading = 1;
}

static void on_signal(uv_signal_t *sig, int signum)
{
	stop(sig->data);
}

int cmd_tail(int argc, char **argv)
{
	tail_t c = {.t = {.cmd = "tail", .usage = cmd_tail_usage}, .interval = 200};
	const tool_opt_t opts[] = {
	        {"--from", TOOL_OPT_U64, &c.from, &c.from_given},
	        {"--count", TOOL_OPT_U64, &c.count, &c.count_given},
	        {"--prefix", TOOL_OPT_STRING, &c.prefix, NULL},
	        {"--interval", TOOL_OPT_U64, &c.interval, NULL},
	};
	if (tool_args(&c.t, argc, argv, opts, 4, NULL, 0, NULL) != 0)
		return TOOL_EUSAGE;
	if (c.interval == 0 || c.interval > 3600000) {
		tool_fail(&c.t, TOOL_EUSAGE,
		          "--interval takes milliseconds from 1 to 3600000, not %" PRIu64,
		          c.interval);
		return TOOL_EUSAGE;
	}
	if (c.count_given && c.count == 0)
		return TOOL_OK;
	c.prefix_len = c.prefix != NULL ? strlen(c.prefix) : 0;
	if (tool_open(&c.t) == 0) {
		uv_timer_init(&c.t.loop, &c.timer);
		uv_signal_init(&c.t.loop, &c.sigint);
		uv_signal_init(&c.t.loop, &c.sigterm);
		c.timer.data = c.sigint.data = c.sigterm.data = &c;
		c.handles_open = 1;
		uv_signal_start(&c.sigint, on_signal, SIGINT);
		uv_signal_start(&c.sigterm, on_signal, SIGTERM);
		c.after = c.from_given && c.from > 0 ? c.from - 1 : 0;
		c.catching_up = !c.from_given;
		on_tick(&c.timer);
		tool_run(&c.t);
	}
	return tool_close(&c.t);
}
