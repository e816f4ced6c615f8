/*
 * tools/replay.c - `skald replay PID --entity LIB.so:TYPE [--to N]
 * [--verify]`: folds a history into state with the application's own event
 * handler, and shows the state after every event.
 *
 * The entity type comes from a shared object, loaded with dlopen(). What it
 * calls of libskald (skald_reply, skald_tell... from command handlers that
 * replay never runs, but that the loader still resolves) is found in this
 * executable, which is linked with the whole library and exports it.
 */
#include <dlfcn.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "skald/entity.h"
#include "tools/commands.h"
#include "tools/common.h"

const char cmd_replay_usage[] =
        "usage: skald replay PID --entity LIB.so:TYPE [--to N] [--verify] [--store URI] [--json]\n"
        "\n"
        "Loads the entity type TYPE (a `const skald_entity_type_t`) from the\n"
        "shared object LIB.so, then folds the events of persistence id PID as\n"
        "the entity's recovery does (init, then apply for each event, without\n"
        "snapshots) and shows the state after each event: with the type's print\n"
        "callback if it has one, else as its snapshot JSON, else only the event.\n"
        "Exits with 4 when PID never had events, and with 1 when apply refuses\n"
        "an event (naming its seq).\n"
        "\n"
        "  --entity LIB.so:TYPE  e.g. build/examples/tictactoe_game.so:tictactoe_game\n"
        "                        (required)\n"
        "  --to N       stop after seq N: the state as it was then\n"
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
	int verify;
	const skald_entity_type_t *type;
	const char *id; /* the entity's id, given to init */
	void *state[2]; /* the fold, and the second one with --verify */
	int inited[2];  /* init ran on state[i]: fini is due */
	uint64_t n;     /* events folded */
	uint64_t last;  /* seq of the last one */
	int stopped;    /* a failure was reported: the read's end is no news */
} replay_t;

/* ------------------------------------------------------------------------ */
/* The entity type                                                           */

static int load_type(replay_t *c)
{
	const char *colon = strrchr(c->entity, ':');
	if (colon == NULL || colon == c->entity || colon[1] == '\0')
		return tool_fail(&c->t, TOOL_EUSAGE,
		                 "--entity takes LIB.so:TYPE, e.g. "
		                 "build/examples/tictactoe_game.so:tictactoe_game, not \"%s\"",
		                 c->entity);
	const char *sym = colon + 1;
	char path[4096];
	struct stat st;
	/* dlopen() looks for a name without a slash in the library path, never
	 * in the current directory, which is where a user's file usually is. */
	int len = (int)(colon - c->entity);
	snprintf(path, sizeof path, "%.*s", len, c->entity);
	if (strchr(path, '/') == NULL && stat(path, &st) == 0)
		snprintf(path, sizeof path, "./%.*s", len, c->entity);
	void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (lib == NULL)
		return tool_fail(&c->t, TOOL_EUSAGE, "--entity: cannot load %s: %s", path,
		                 dlerror());
	dlerror();
	const skald_entity_type_t *type = dlsym(lib, sym);
	const char *err = dlerror();
	if (type == NULL || err != NULL)
		return tool_fail(&c->t, TOOL_EUSAGE,
		                 "--entity: %s has no symbol \"%s\" (the entity type: a `const "
		                 "skald_entity_type_t %s` that is not static)",
		                 path, sym, sym);
	if (type->apply == NULL || type->state_size == 0)
		return tool_fail(&c->t, TOOL_EUSAGE,
		                 "--entity: %s in %s is not a skald_entity_type_t (it has no apply "
		                 "callback or no state_size)",
		                 sym, path);
	/* The library stays loaded until the process exits: the type and
	 * everything it points to live in it. */
	c->type = type;
	return 0;
}

/* The entity's id: persistence ids are "NAME-ID". */
static const char *entity_id(const skald_entity_type_t *type, const char *pid)
{
	size_t n = type->name != NULL ? strlen(type->name) : 0;
	if (n > 0 && strncmp(pid, type->name, n) == 0 && pid[n] == '-')
		return pid + n + 1;
	return pid;
}

static int new_state(replay_t *c, int i)
{
	c->state[i] = calloc(1, c->type->state_size);
	if (c->state[i] == NULL)
		return tool_fail(&c->t, TOOL_ESTORE, "out of memory for a state of %zu bytes",
		                 c->type->state_size);
	if (c->type->init != NULL) {
		int rc = c->type->init(c->state[i], c->id);
		if (rc < 0)
			return tool_fail(&c->t, TOOL_EUSAGE,
			                 "init of entity \"%s\" failed: %s (%s)", c->id,
			                 skald_strerror(rc), skald_err_name(rc));
	}
	c->inited[i] = 1;
	return 0;
}

/* The state as JSON through the type's snapshot callback (an owned
 * reference), or NULL when the type has none. *rc gets its failure. */
static json_t *snapshot_of(const replay_t *c, const void *state, int *rc)
{
	json_t *out = NULL;
	*rc = 0;
	if (c->type->snapshot == NULL)
		return NULL;
	*rc = c->type->snapshot(state, &out);
	if (*rc == 0 && out == NULL)
		*rc = SKALD_ENOMEM;
	if (*rc < 0) {
		json_decref(out);
		return NULL;
	}
	return out;
}

/* ------------------------------------------------------------------------ */
/* Showing a state                                                           */

static void show_text(const replay_t *c, const skald_event_t *ev, const json_t *snap)
{
	char ts[TOOL_TIME_LEN];
	char *data = tool_dumps(ev->data);
	printf("seq %" PRIu64 "  %s v%d  %s  %s\n", ev->seq, ev->type, ev->version,
	       tool_time(ev->timestamp, ts), data != NULL ? data : "?");
	free(data);
	if (c->type->print != NULL) {
		c->type->print(c->state[0], stdout);
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
	json_t *e = tool_event_json(ev);
	if (o == NULL || e == NULL) {
		json_decref(o);
		json_decref(e);
		return SKALD_ENOMEM;
	}
	json_object_set_new(o, "event", e);                             /* steals e */
	json_object_set(o, "state", snap != NULL ? snap : json_null()); /* borrows snap */
	if (c->type->print != NULL) {
		/* print writes to a FILE: catch it in memory to make it a string. */
		char *text = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&text, &len);
		if (f != NULL) {
			c->type->print(c->state[0], f);
			fclose(f);
			json_object_set_new(o, "printed", json_stringn(text, len));
		}
		free(text);
	}
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
		json_t *snap1 = snapshot_of(c, c->state[1], &rc);
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
	if (memcmp(c->state[0], c->state[1], c->type->state_size) != 0) {
		size_t at = 0;
		const unsigned char *a = c->state[0], *b = c->state[1];
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

/* Applies ev to the fold(s) and shows the state. Returns 0, or a negative
 * code that stops the read after the failure was reported. */
static int fold(replay_t *c, const skald_event_t *ev)
{
	if (c->n == 0 && ev->seq > 1)
		fprintf(stderr,
		        "skald replay: events 1..%" PRIu64
		        " of \"%s\" were deleted: the fold starts "
		        "from init's state at seq %" PRIu64 ", which is not the state the entity "
		        "had there\n",
		        ev->seq - 1, c->t.pid, ev->seq);
	int rc0 = c->type->apply(c->state[0], ev);
	int rc1 = c->verify ? c->type->apply(c->state[1], ev) : rc0;
	c->n++;
	c->last = ev->seq;
	if (rc0 < 0 || rc1 < 0) {
		if (rc0 != rc1)
			tool_fail(&c->t, TOOL_EUSAGE,
			          "--verify: the two folds differ at seq %" PRIu64
			          " (%s): apply returned %s once and %s once: apply is not "
			          "deterministic",
			          ev->seq, ev->type, skald_err_name(rc0), skald_err_name(rc1));
		else
			tool_fail(&c->t, TOOL_EUSAGE,
			          "seq %" PRIu64
			          " (%s): the entity's apply refused the event: %s (%s)",
			          ev->seq, ev->type, skald_strerror(rc0), skald_err_name(rc0));
		return SKALD_ECANCELED;
	}
	int rc;
	json_t *snap = snapshot_of(c, c->state[0], &rc);
	if (rc < 0) {
		tool_fail(&c->t, TOOL_EUSAGE,
		          "seq %" PRIu64 ": the type's snapshot callback failed: %s (%s)", ev->seq,
		          skald_strerror(rc), skald_err_name(rc));
		return SKALD_ECANCELED;
	}
	if (c->t.json)
		rc = show_json(c, ev, snap);
	else
		show_text(c, ev, snap);
	if (rc == 0 && c->verify && compare(c, ev, snap) != 0)
		rc = SKALD_ECANCELED;
	json_decref(snap);
	return rc;
}

static int on_events(skald_journal_t *j, const skald_event_t *ev, size_t n, void *arg)
{
	replay_t *c = arg;
	for (size_t i = 0; i < n; i++) {
		int rc = fold(c, &ev[i]);
		if (rc < 0) {
			c->stopped = 1;
			return rc;
		}
	}
	return 0;
}

static void on_done(skald_journal_t *j, int status, void *arg)
{
	replay_t *c = arg;
	tool_close_journal(&c->t);
	if (c->stopped)
		return;
	if (status < 0) {
		char what[256];
		snprintf(what, sizeof what, "reading the events of \"%s\"", c->t.pid);
		tool_fail_rc(&c->t, status, what);
		return;
	}
	if (c->n == 0) {
		fprintf(stderr,
		        "skald replay: no events of \"%s\" up to seq %" PRIu64
		        " (its highest seq is "
		        "%" PRIu64 "; deleted events are gone)\n",
		        c->t.pid, c->to < c->t.highest ? c->to : c->t.highest, c->t.highest);
		return;
	}
	if (c->t.json)
		return;
	if (c->last < c->t.highest)
		printf("stopped after seq %" PRIu64 " (--to); the history goes on to seq %" PRIu64
		       "\n",
		       c->last, c->t.highest);
	if (c->verify)
		printf("verified: %" PRIu64
		       " events folded twice to the same state after every one "
		       "(compared as %s)\n",
		       c->n, c->type->snapshot != NULL ? "snapshot JSON" : "raw state bytes");
}

static void start_fold(tool_t *t)
{
	replay_t *c = (replay_t *)t;
	if (new_state(c, 0) != 0 || (c->verify && new_state(c, 1) != 0))
		return;
	int rc = skald_journal_read(t->j, t->pid, 1, c->to, SKALD_SEQ_MAX, on_events, on_done, c);
	if (rc < 0)
		tool_fail_rc(t, rc, "reading events");
}

int cmd_replay(int argc, char **argv)
{
	replay_t c = {.t = {.cmd = "replay", .usage = cmd_replay_usage}, .to = SKALD_SEQ_MAX};
	const tool_opt_t opts[] = {
	        {"--entity", TOOL_OPT_STRING, &c.entity, NULL},
	        {"--to", TOOL_OPT_U64, &c.to, NULL},
	        {"--verify", TOOL_OPT_FLAG, &c.verify, NULL},
	};
	if (tool_args(&c.t, argc, argv, opts, 3, &c.t.pid, 1, "PID") != 0)
		return TOOL_EUSAGE;
	if (c.entity == NULL) {
		tool_fail(&c.t, TOOL_EUSAGE,
		          "--entity LIB.so:TYPE is required, e.g. --entity "
		          "build/examples/tictactoe_game.so:tictactoe_game");
		return TOOL_EUSAGE;
	}
	if (load_type(&c) != 0)
		return TOOL_EUSAGE;
	c.id = entity_id(c.type, c.t.pid);
	if (tool_open(&c.t) == 0)
		tool_require_pid(&c.t, start_fold);
	int code = tool_close(&c.t);
	for (int i = 0; i < 2; i++) {
		if (c.inited[i] && c.type->fini != NULL)
			c.type->fini(c.state[i]);
		free(c.state[i]);
	}
	return code;
}
