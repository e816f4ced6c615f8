/*
 * tools/replay.c - `skald replay PID --entity LIB.so:TYPE [--to N | --at
 * TIME] [--from-snapshot] [--verify]`: folds a history into state with the
 * application's own event handler, and shows the state after every event.
 * The fold itself (loading the type, snapshots, the moment) is tools/fold.c.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "tools/commands.h"
#include "tools/common.h"
#include "tools/fold.h"

const char cmd_replay_usage[] =
        "usage: skald replay PID --entity LIB.so:TYPE [--to N | --at TIME] [--from-snapshot]\n"
        "                    [--verify] [--store URI] [--json]\n"
        "\n"
        "Loads the entity type TYPE (a `const skald_entity_type_t`) from the\n"
        "shared object LIB.so, then folds the events of persistence id PID as\n"
        "the entity's recovery does (init, then apply for each event; without\n"
        "snapshots unless --from-snapshot) and shows the state after each event:\n"
        "with the type's print callback if it has one, else as its snapshot JSON,\n"
        "else only the event. Exits with 4 when PID never had events, and with 1\n"
        "when apply refuses an event (naming its seq).\n"
        "\n"
        "  --entity LIB.so:TYPE  e.g. build/examples/tictactoe_game.so:tictactoe_game\n"
        "                        (required)\n"
        "  --to N       stop after seq N: the state as it was then\n"
        "  --at TIME    the state as of TIME (ISO 8601 / RFC 3339, e.g.\n"
        "               2026-12-03T14:02:00Z, 2026-12-03T15:02:00.250+01:00): folds\n"
        "               the events written at or before TIME, stopping at the first\n"
        "               one written later\n"
        "  --from-snapshot  start from the latest snapshot at or before the target\n"
        "               (--to, --at, or the end), restored with the type's restore\n"
        "               callback, and fold only the events after it\n"
        "  --verify     fold twice, side by side, and compare the two states after\n"
        "               every event (as snapshot JSON, or byte for byte when the type\n"
        "               has no snapshot callback): a difference means apply depends\n"
        "               on something besides the state and the event (a clock, a\n"
        "               random number, a global); exit 1 naming the first seq\n"
        "  --store URI  the journal (default: the environment variable SKALD_JOURNAL)\n"
        "  --json       JSON lines: {\"event\": ENVELOPE, \"state\": SNAPSHOT or null,\n"
        "               \"printed\": what print wrote (when the type has print)}\n";

typedef struct {
	tool_t t;
	const char *entity; /* LIB.so:TYPE */
	uint64_t to;
	const char *at; /* --at, as given */
	int from_snapshot;
	int verify;
	const skald_entity_type_t *type;
	tool_fold_t f;
} replay_t;

/* ------------------------------------------------------------------------ */
/* Showing a state                                                           */

static void show_text(const replay_t *c, const skald_event_t *ev, const json_t *snap)
{
	char ts[TOOL_TIME_LEN];
	if (ev != NULL) {
		char *data = tool_dumps(ev->data);
		printf("seq %" PRIu64 "  %s v%d  %s  %s\n", ev->seq, ev->type, ev->version,
		       tool_time(ev->timestamp, ts), data != NULL ? data : "?");
		free(data);
	} else {
		printf("snapshot at seq %" PRIu64 "  v%d  %s  (restored)\n", c->f.snap_seq,
		       c->f.snap_version, tool_time(c->f.snap_timestamp, ts));
	}
	if (c->type->print != NULL) {
		c->type->print(c->f.state[0], stdout);
	} else if (snap != NULL) {
		char *s = json_dumps(snap, JSON_INDENT(2) | JSON_SORT_KEYS);
		printf("%s\n", s != NULL ? s : "?");
		free(s);
	}
	printf("\n");
}

static int show_json(const replay_t *c, const skald_event_t *ev, json_t *snap)
{
	json_t *o = json_object();
	json_t *e;
	if (ev != NULL) {
		e = tool_event_json(ev);
	} else {
		char ts[TOOL_TIME_LEN];
		e = json_pack("{s:s, s:I, s:i, s:s}", "persistence_id", c->t.pid, "seq",
		              (json_int_t)c->f.snap_seq, "version", c->f.snap_version, "timestamp",
		              tool_time(c->f.snap_timestamp, ts));
	}
	if (o == NULL || e == NULL) {
		json_decref(o);
		json_decref(e);
		return SKALD_ENOMEM;
	}
	json_object_set_new(o, ev != NULL ? "event" : "snapshot", e);   /* steals e */
	json_object_set(o, "state", snap != NULL ? snap : json_null()); /* borrows snap */
	char *text = tool_state_printed(c->type, c->f.state[0]);
	if (text != NULL)
		json_object_set_new(o, "printed", json_string(text)); /* steals */
	free(text);
	tool_print_json(o);
	json_decref(o);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Folding                                                                   */

/* Compares the two folds after ev. Returns 0 when they agree. */
static int compare(replay_t *c, const skald_event_t *ev, const json_t *snap0)
{
	int rc;
	if (c->type->snapshot != NULL) {
		json_t *snap1 = tool_state_json(c->type, c->f.state[1], &rc);
		int same = snap0 != NULL && snap1 != NULL && json_equal(snap0, snap1);
		if (!same) {
			char *a = json_dumps(snap0, JSON_COMPACT | JSON_SORT_KEYS);
			char *b = json_dumps(snap1, JSON_COMPACT | JSON_SORT_KEYS);
			tool_fail(&c->t, TOOL_EUSAGE,
			          "--verify: the two folds differ after seq %" PRIu64
			          " (%s): apply is not deterministic (it depends on something "
			          "besides "
			          "the state and the event: a clock, a random number, a global?)\n"
			          "  first fold:  %s\n  second fold: %s",
			          ev->seq, ev->type, a != NULL ? a : "(no snapshot)",
			          b != NULL ? b : "(no snapshot)");
			free(a);
			free(b);
		}
		json_decref(snap1);
		return same ? 0 : -1;
	}
	if (memcmp(c->f.state[0], c->f.state[1], c->type->state_size) != 0) {
		size_t at = 0;
		const unsigned char *a = c->f.state[0], *b = c->f.state[1];
		while (a[at] == b[at])
			at++;
		tool_fail(
		        &c->t, TOOL_EUSAGE,
		        "--verify: the two folds differ after seq %" PRIu64
		        " (%s), from byte %zu of %zu of the state: apply is not deterministic (it "
		        "depends on something besides the state and the event: a clock, a random "
		        "number, a global, an address?). The type has no snapshot callback, so "
		        "the raw bytes were compared: a pointer in the state differs too",
		        ev->seq, ev->type, at, c->type->state_size);
		return -1;
	}
	return 0;
}

/* Shows the state after ev (NULL: the restored snapshot). Returns 0, or a
 * negative code that stops the fold after the failure was reported. */
static int step(tool_fold_t *f, const skald_event_t *ev)
{
	replay_t *c = f->arg;
	/* Without a snapshot the start state is init's: nothing to show. */
	if (ev == NULL && !f->restored)
		return 0;
	uint64_t expected = f->restored ? f->snap_seq + 1 : 1;
	if (ev != NULL && f->n == 1 && ev->seq > expected)
		fprintf(stderr,
		        "skald replay: events %" PRIu64 "..%" PRIu64
		        " of \"%s\" were deleted: the fold starts "
		        "from %s state at seq %" PRIu64 ", which is not the state the entity "
		        "had there\n",
		        expected, ev->seq - 1, c->t.pid, f->restored ? "the snapshot's" : "init's",
		        ev->seq);
	int rc;
	json_t *snap = tool_state_json(c->type, f->state[0], &rc);
	if (rc < 0) {
		tool_fail(&c->t, TOOL_EUSAGE,
		          "seq %" PRIu64 ": the type's snapshot callback failed: %s (%s)",
		          ev != NULL ? ev->seq : f->snap_seq, skald_strerror(rc),
		          skald_err_name(rc));
		return SKALD_ECANCELED;
	}
	if (c->t.json)
		rc = show_json(c, ev, snap);
	else
		show_text(c, ev, snap);
	if (rc == 0 && ev != NULL && c->verify && compare(c, ev, snap) != 0)
		rc = SKALD_ECANCELED;
	json_decref(snap);
	return rc;
}

/* How far the fold went, with --at. */
static void report_at(replay_t *c)
{
	const tool_fold_t *f = &c->f;
	char ts[TOOL_TIME_LEN];
	if (f->n == 0 && !f->restored) {
		if (f->cut)
			fprintf(stderr,
			        "skald replay: \"%s\" had no events yet at %s: its first, seq "
			        "%" PRIu64 ", was written at %s\n",
			        c->t.pid, c->at, f->next_seq, tool_time(f->next_timestamp, ts));
		else
			fprintf(stderr,
			        "skald replay: no events of \"%s\" (deleted events are gone)\n",
			        c->t.pid);
		return;
	}
	if (c->t.json)
		return;
	if (f->cut)
		printf("as of %s: stopped after seq %" PRIu64 "; the next event, seq %" PRIu64
		       ", was written at %s\n",
		       c->at, f->last, f->next_seq, tool_time(f->next_timestamp, ts));
	else
		printf("as of %s: the whole history, up to seq %" PRIu64 "\n", c->at, f->last);
}

static void done(tool_fold_t *f, int status)
{
	replay_t *c = f->arg;
	tool_close_journal(&c->t);
	if (c->t.exit_code != TOOL_OK)
		return;
	if (status == SKALD_EREJECTED && f->why[0] != '\0') {
		tool_fail(&c->t, TOOL_EUSAGE, "%s", f->why);
		return;
	}
	if (status < 0) {
		char what[256];
		snprintf(what, sizeof what, "reading the events of \"%s\"", c->t.pid);
		tool_fail_rc(&c->t, status, what);
		return;
	}
	if (f->highest == 0) {
		tool_fail(&c->t, TOOL_ENOTFOUND,
		          "no events were ever stored for persistence id \"%s\" (`skald ids` lists "
		          "the ones there are)",
		          c->t.pid);
		return;
	}
	if (c->at != NULL) {
		report_at(c);
	} else if (f->n == 0 && !f->restored) {
		fprintf(stderr,
		        "skald replay: no events of \"%s\" up to seq %" PRIu64
		        " (its highest seq is "
		        "%" PRIu64 "; deleted events are gone)\n",
		        c->t.pid, c->to < f->highest ? c->to : f->highest, f->highest);
		return;
	} else if (!c->t.json && f->last < f->highest) {
		printf("stopped after seq %" PRIu64 " (--to); the history goes on to seq %" PRIu64
		       "\n",
		       f->last, f->highest);
	}
	if (c->verify && !c->t.json)
		printf("verified: %" PRIu64
		       " events folded twice to the same state after every one "
		       "(compared as %s)\n",
		       f->n, c->type->snapshot != NULL ? "snapshot JSON" : "raw state bytes");
}

int cmd_replay(int argc, char **argv)
{
	replay_t c = {.t = {.cmd = "replay", .usage = cmd_replay_usage}, .to = SKALD_SEQ_MAX};
	int to_given = 0;
	const tool_opt_t opts[] = {
	        {"--entity", TOOL_OPT_STRING, &c.entity, NULL},
	        {"--to", TOOL_OPT_U64, &c.to, &to_given},
	        {"--at", TOOL_OPT_STRING, &c.at, NULL},
	        {"--from-snapshot", TOOL_OPT_FLAG, &c.from_snapshot, NULL},
	        {"--verify", TOOL_OPT_FLAG, &c.verify, NULL},
	};
	if (tool_args(&c.t, argc, argv, opts, sizeof opts / sizeof opts[0], &c.t.pid, 1, "PID") !=
	    0)
		return TOOL_EUSAGE;
	if (c.entity == NULL) {
		tool_fail(&c.t, TOOL_EUSAGE,
		          "--entity LIB.so:TYPE is required, e.g. --entity "
		          "build/examples/tictactoe_game.so:tictactoe_game");
		return TOOL_EUSAGE;
	}
	c.f = (tool_fold_t){.to = c.to,
	                    .from_snapshot = c.from_snapshot,
	                    .nstates = c.verify ? 2 : 1,
	                    .step = step,
	                    .done = done,
	                    .arg = &c,
	                    .pid = c.t.pid};
	if (c.at != NULL) {
		if (to_given)
			return tool_fail(&c.t, TOOL_EUSAGE,
			                 "--to and --at both say where to stop: give one of them");
		if (tool_parse_time(c.at, &c.f.at) < 0)
			return tool_fail(&c.t, TOOL_EUSAGE,
			                 "--at takes an ISO 8601 time with a zone, e.g. "
			                 "2026-12-03T14:02:00Z or 2026-12-03T15:02:00.5+01:00, not "
			                 "\"%s\"",
			                 c.at);
		c.f.use_at = 1;
	}
	if (tool_entity_load(&c.t, "--entity", c.entity, &c.type) != 0)
		return TOOL_EUSAGE;
	c.f.type = c.type;
	if (tool_open(&c.t) == 0) {
		c.f.j = c.t.j;
		int rc = tool_fold_start(&c.f);
		if (rc == SKALD_EINVAL && c.f.why[0] != '\0')
			tool_fail(&c.t, TOOL_EUSAGE, "--from-snapshot: %s", c.f.why);
		else if (rc < 0)
			tool_fail_rc(&c.t, rc, "reading the events");
	}
	int code = tool_close(&c.t);
	tool_fold_fini(&c.f);
	return code;
}
