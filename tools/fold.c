/*
 * tools/fold.c - entity types from shared objects, folds and snapshot
 * listings (see fold.h).
 *
 * The entity type comes from a shared object, loaded with dlopen(). What it
 * calls of libskald (skald_reply, skald_tell... from command handlers that
 * a fold never runs, but that the loader still resolves) is found in this
 * executable, which is linked with the whole library and exports it.
 */
#include <dlfcn.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tools/fold.h"

/* ------------------------------------------------------------------------ */
/* Entity types                                                              */

int tool_entity_load(tool_t *t, const char *opt, const char *spec, const skald_entity_type_t **out)
{
	const char *colon = strrchr(spec, ':');
	if (colon == NULL || colon == spec || colon[1] == '\0')
		return tool_fail(t, TOOL_EUSAGE,
		                 "%s takes LIB.so:TYPE, e.g. "
		                 "build/examples/tictactoe_game.so:tictactoe_game, not \"%s\"",
		                 opt, spec);
	const char *sym = colon + 1;
	char path[4096];
	struct stat st;
	/* dlopen() looks for a name without a slash in the library path, never
	 * in the current directory, which is where a user's file usually is. */
	int len = (int)(colon - spec);
	snprintf(path, sizeof path, "%.*s", len, spec);
	if (strchr(path, '/') == NULL && stat(path, &st) == 0)
		snprintf(path, sizeof path, "./%.*s", len, spec);
	void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (lib == NULL)
		return tool_fail(t, TOOL_EUSAGE, "%s: cannot load %s: %s", opt, path, dlerror());
	dlerror();
	const skald_entity_type_t *type = dlsym(lib, sym);
	const char *err = dlerror();
	if (type == NULL || err != NULL)
		return tool_fail(t, TOOL_EUSAGE,
		                 "%s: %s has no symbol \"%s\" (the entity type: a `const "
		                 "skald_entity_type_t %s` that is not static)",
		                 opt, path, sym, sym);
	if (type->apply == NULL || type->state_size == 0)
		return tool_fail(t, TOOL_EUSAGE,
		                 "%s: %s in %s is not a skald_entity_type_t (it has no apply "
		                 "callback or no state_size)",
		                 opt, sym, path);
	/* The library stays loaded until the process exits: the type and
	 * everything it points to live in it. */
	*out = type;
	return 0;
}

const char *tool_entity_id(const skald_entity_type_t *type, const char *pid)
{
	size_t n = type->name != NULL ? strlen(type->name) : 0;
	if (n > 0 && strncmp(pid, type->name, n) == 0 && pid[n] == '-')
		return pid + n + 1;
	return pid;
}

json_t *tool_state_json(const skald_entity_type_t *type, const void *state, int *rc)
{
	json_t *out = NULL;
	*rc = 0;
	if (type->snapshot == NULL)
		return NULL;
	*rc = type->snapshot(state, &out);
	if (*rc == 0 && out == NULL)
		*rc = SKALD_ENOMEM;
	if (*rc < 0) {
		json_decref(out);
		return NULL;
	}
	return out;
}

char *tool_state_printed(const skald_entity_type_t *type, const void *state)
{
	if (type->print == NULL)
		return NULL;
	/* print writes to a FILE: catch it in memory to make it a string. */
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (f == NULL)
		return NULL;
	type->print(state, f);
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

size_t tool_json_size(const json_t *data)
{
	return json_dumpb(data, NULL, 0, JSON_COMPACT);
}

/* ------------------------------------------------------------------------ */
/* Folding                                                                   */

static void finish(tool_fold_t *f, int status)
{
	json_decref(f->snap_data);
	f->snap_data = NULL;
	f->done(f, status);
}

/* init on every state. Returns 0, or SKALD_EREJECTED with f->why set. */
static int new_states(tool_fold_t *f)
{
	if (f->type == NULL)
		return 0;
	for (int i = 0; i < f->nstates; i++) {
		f->state[i] = calloc(1, f->type->state_size);
		if (f->state[i] == NULL)
			return SKALD_ENOMEM;
		if (f->type->init != NULL) {
			const char *id = tool_entity_id(f->type, f->pid);
			int rc = f->type->init(f->state[i], id);
			if (rc < 0) {
				snprintf(f->why, sizeof f->why,
				         "init of entity \"%s\" failed: %s (%s)", id,
				         skald_strerror(rc), skald_err_name(rc));
				return SKALD_EREJECTED;
			}
		}
		f->inited[i] = 1;
	}
	return 0;
}

static int on_events(skald_journal_t *j, const skald_event_t *ev, size_t n, void *arg)
{
	tool_fold_t *f = arg;
	for (size_t i = 0; i < n; i++) {
		if (f->use_at && ev[i].timestamp > f->at) {
			f->cut = 1;
			f->next_seq = ev[i].seq;
			f->next_timestamp = ev[i].timestamp;
			return SKALD_ECANCELED;
		}
		if (f->type != NULL) {
			int rc[2] = {0, 0};
			for (int s = 0; s < f->nstates; s++)
				rc[s] = f->type->apply(f->state[s], &ev[i]);
			if (f->nstates == 2 && rc[0] != rc[1]) {
				snprintf(f->why, sizeof f->why,
				         "--verify: the two folds differ at seq %" PRIu64
				         " (%s): apply returned %s once and %s once: apply is not "
				         "deterministic",
				         ev[i].seq, ev[i].type, skald_err_name(rc[0]),
				         skald_err_name(rc[1]));
				f->stopped = 1;
				return SKALD_EREJECTED;
			}
			if (rc[0] < 0) {
				snprintf(f->why, sizeof f->why,
				         "seq %" PRIu64
				         " (%s): the entity's apply refused the event: %s (%s)",
				         ev[i].seq, ev[i].type, skald_strerror(rc[0]),
				         skald_err_name(rc[0]));
				f->stopped = 1;
				return SKALD_EREJECTED;
			}
		}
		if (f->first == 0)
			f->first = ev[i].seq;
		f->n++;
		f->last = ev[i].seq;
		int rc = f->step(f, &ev[i]);
		if (rc < 0) {
			f->stopped = 1;
			return rc;
		}
	}
	return 0;
}

static void on_read_done(skald_journal_t *j, int status, void *arg)
{
	tool_fold_t *f = arg;
	/* Reaching the moment is the end of the fold, not a failure. */
	if (f->cut && status == SKALD_ECANCELED)
		status = 0;
	finish(f, status);
}

/* The start state is ready: show it, then fold the events from seq from. */
static void fold_from(tool_fold_t *f, uint64_t from)
{
	int rc = f->step(f, NULL);
	if (rc < 0) {
		finish(f, rc);
		return;
	}
	if (from > f->to) {
		finish(f, 0);
		return;
	}
	rc = skald_journal_read(f->j, f->pid, from, f->to, SKALD_SEQ_MAX, on_events, on_read_done,
	                        f);
	if (rc < 0)
		finish(f, rc);
}

static void restore_snapshot(tool_fold_t *f)
{
	int rc = new_states(f);
	if (rc < 0) {
		finish(f, rc);
		return;
	}
	for (int i = 0; i < f->nstates; i++) {
		rc = f->type->restore(f->state[i], f->snap_data, f->snap_version);
		if (rc < 0) {
			snprintf(f->why, sizeof f->why,
			         "the entity's restore refused the snapshot at seq %" PRIu64
			         " (version %d): %s (%s)",
			         f->snap_seq, f->snap_version, skald_strerror(rc),
			         skald_err_name(rc));
			finish(f, SKALD_EREJECTED);
			return;
		}
	}
	f->restored = 1;
	f->last = f->snap_seq;
	fold_from(f, f->snap_seq + 1);
}

static void fold_from_start(tool_fold_t *f)
{
	int rc = new_states(f);
	if (rc < 0) {
		finish(f, rc);
		return;
	}
	fold_from(f, 1);
}

static void load_snapshot(tool_fold_t *f);

static int on_check_event(skald_journal_t *j, const skald_event_t *ev, size_t n, void *arg)
{
	tool_fold_t *f = arg;
	f->check_found = 1;
	f->check_timestamp = ev[0].timestamp;
	return 0;
}

/* With --at, a snapshot counts when the event it was taken after is not
 * later than the moment (or, when that event was deleted, when the
 * snapshot itself is not). */
static void on_check_done(skald_journal_t *j, int status, void *arg)
{
	tool_fold_t *f = arg;
	if (status < 0) {
		finish(f, status);
		return;
	}
	int64_t when = f->check_found ? f->check_timestamp : f->snap_timestamp;
	if (when <= f->at) {
		restore_snapshot(f);
		return;
	}
	json_decref(f->snap_data);
	f->snap_data = NULL;
	if (f->snap_seq <= 1) {
		fold_from_start(f);
		return;
	}
	f->walk_max = f->snap_seq - 1;
	load_snapshot(f);
}

static void on_snapshot(skald_journal_t *j, int status, const skald_snapshot_t *snap, void *arg)
{
	tool_fold_t *f = arg;
	if (status < 0) {
		finish(f, status);
		return;
	}
	if (snap == NULL) {
		fold_from_start(f);
		return;
	}
	f->snap_seq = snap->seq;
	f->snap_version = snap->version;
	f->snap_timestamp = snap->timestamp;
	f->snap_data = json_incref(snap->data);
	if (!f->use_at) {
		restore_snapshot(f);
		return;
	}
	f->check_found = 0;
	int rc = skald_journal_read(f->j, f->pid, snap->seq, snap->seq, 1, on_check_event,
	                            on_check_done, f);
	if (rc < 0)
		finish(f, rc);
}

static void load_snapshot(tool_fold_t *f)
{
	int rc = skald_journal_snapshot_load(f->j, f->pid, f->walk_max, on_snapshot, f);
	if (rc < 0)
		finish(f, rc);
}

/* Defers the start of a fold to the loop, so that done never runs before
 * tool_fold_start returned, whatever path the fold takes. */
static void on_start_highest(skald_journal_t *j, int status, uint64_t seq, void *arg)
{
	tool_fold_t *f = arg;
	if (status < 0) {
		finish(f, status);
		return;
	}
	f->highest = seq;
	if (f->from_snapshot) {
		f->walk_max = f->to;
		load_snapshot(f);
	} else {
		fold_from_start(f);
	}
}

int tool_fold_start(tool_fold_t *f)
{
	if (f->nstates < 1 || f->nstates > 2)
		f->nstates = 1;
	if (f->from_snapshot && (f->type == NULL || f->type->restore == NULL)) {
		snprintf(
		        f->why, sizeof f->why,
		        "starting from a snapshot needs an entity type with a restore callback%s%s",
		        f->type != NULL ? "; this one has none: " : "",
		        f->type != NULL && f->type->name ? f->type->name : "");
		return SKALD_EINVAL;
	}
	return skald_journal_highest(f->j, f->pid, on_start_highest, f);
}

void tool_fold_fini(tool_fold_t *f)
{
	for (int i = 0; i < 2; i++) {
		if (f->inited[i] && f->type->fini != NULL)
			f->type->fini(f->state[i]);
		f->inited[i] = 0;
		free(f->state[i]);
		f->state[i] = NULL;
	}
	json_decref(f->snap_data);
	f->snap_data = NULL;
}

/* ------------------------------------------------------------------------ */
/* Listing snapshots                                                         */

static void snaps_next(tool_snaps_t *w, uint64_t max_seq);

static void on_snap_listed(skald_journal_t *j, int status, const skald_snapshot_t *snap, void *arg)
{
	tool_snaps_t *w = arg;
	if (status < 0 || snap == NULL) {
		w->done(w, status);
		return;
	}
	int rc = w->each(w, snap);
	w->n++;
	if (rc < 0) {
		w->done(w, rc);
		return;
	}
	if (snap->seq <= 1) {
		w->done(w, 0);
		return;
	}
	if (w->n >= w->limit) {
		w->more = 1;
		w->done(w, 0);
		return;
	}
	snaps_next(w, snap->seq - 1);
}

static void snaps_next(tool_snaps_t *w, uint64_t max_seq)
{
	int rc = skald_journal_snapshot_load(w->j, w->pid, max_seq, on_snap_listed, w);
	if (rc < 0)
		w->done(w, rc);
}

int tool_snaps_start(tool_snaps_t *w)
{
	if (w->limit == 0)
		w->limit = SKALD_SEQ_MAX;
	return skald_journal_snapshot_load(w->j, w->pid, w->max_seq, on_snap_listed, w);
}
