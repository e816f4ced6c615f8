/*
 * tools/fold.h - entity types loaded from shared objects, and folding a
 * history into state with them: what `skald replay` and `skald web` share.
 *
 * A fold runs init (or restores the latest suitable snapshot), then apply
 * for each event, exactly as an entity's recovery does, and calls the
 * caller back with the state after each step. It stops at a seq (to) or at
 * a moment (at: before the first event written later than it). Everything
 * runs on the journal's loop; several folds may run at once on one handle.
 */
#ifndef SKALD_TOOLS_FOLD_H
#define SKALD_TOOLS_FOLD_H

#include "skald/entity.h"
#include "tools/common.h"

/*
 * Loads the entity type named by spec, "LIB.so:TYPE" (a `const
 * skald_entity_type_t TYPE` that is not static, in the shared object
 * LIB.so), into *out. The library stays loaded until the process exits.
 * Returns 0, or TOOL_EUSAGE after reporting with tool_fail what is wrong.
 * opt names the option in messages ("--entity").
 */
int tool_entity_load(tool_t *t, const char *opt, const char *spec, const skald_entity_type_t **out);

/* The entity's id for init: persistence ids are "NAME-ID", where NAME is
 * the type's name; any other id is given whole. Borrowed from pid. */
const char *tool_entity_id(const skald_entity_type_t *type, const char *pid);

/* The state as JSON through the type's snapshot callback (an owned
 * reference), or NULL when the type has none or it failed (*rc < 0). */
json_t *tool_state_json(const skald_entity_type_t *type, const void *state, int *rc);

/* What the type's print callback writes for state, as a malloc'd string
 * (free it), or NULL when the type has no print (or on ENOMEM). */
char *tool_state_printed(const skald_entity_type_t *type, const void *state);

typedef struct tool_fold_s tool_fold_t;

/* Called with the state after each step: once with ev NULL when the start
 * state is ready (after init, or after restoring a snapshot), then after
 * each event applied. Return 0 to go on, or a negative code to stop the
 * fold: done then gets that code. */
typedef int (*tool_fold_step_fn)(tool_fold_t *f, const skald_event_t *ev);

/* The fold is over: status 0 (to or at reached, or the history's end), a
 * store failure (skald_journal_errmsg has its text), SKALD_EREJECTED for a
 * failure of the entity type's own code (init, restore, apply: f->why says
 * which and where), or the code a step returned. */
typedef void (*tool_fold_done_fn)(tool_fold_t *f, int status);

struct tool_fold_s {
	/* Set by the caller before tool_fold_start; borrowed until done. */
	skald_journal_t *j;
	const skald_entity_type_t *type; /* NULL: the events only, no state */
	const char *pid;
	uint64_t to;       /* the last seq to fold; SKALD_SEQ_MAX: to the end */
	int use_at;        /* stop before the first event later than at */
	int64_t at;        /* ms since the epoch */
	int from_snapshot; /* start from the latest snapshot at or before the target */
	int nstates;       /* 1, or 2 to fold twice side by side (replay --verify) */
	tool_fold_step_fn step;
	tool_fold_done_fn done;
	void *arg;

	/* Results, readable in step and done. */
	uint64_t highest; /* the persistence id's highest seq, read first */
	void *state[2];
	int inited[2];
	int restored; /* started from the snapshot below */
	uint64_t snap_seq;
	int snap_version;
	int64_t snap_timestamp;
	uint64_t first;         /* seq of the first event folded, 0 if none */
	uint64_t n;             /* events folded */
	uint64_t last;          /* seq of the last one, or the snapshot's */
	int cut;                /* an event later than at was found: */
	uint64_t next_seq;      /*   its seq */
	int64_t next_timestamp; /*   and its timestamp */
	char why[1024];         /* the entity type's failure (SKALD_EREJECTED) */

	/* Private. */
	json_t *snap_data;
	uint64_t walk_max;
	int64_t check_timestamp;
	int check_found;
	int stopped;
};

/*
 * Starts folding f->pid. Returns 0 (done will run exactly once, on the
 * loop, never before the call returns) or a negative code with nothing
 * started (f->why says why for SKALD_EINVAL: from_snapshot with a type that
 * cannot restore). Release with tool_fold_fini after done.
 */
int tool_fold_start(tool_fold_t *f);

/* Runs the type's fini on the states and frees them. */
void tool_fold_fini(tool_fold_t *f);

/* ------------------------------------------------------------------------ */
/* Listing snapshots                                                         */

typedef struct tool_snaps_s tool_snaps_t;

/*
 * Lists the snapshots of a persistence id, newest first, with the journal's
 * snapshot_load and a decreasing max_seq (one round trip each). each gets
 * every snapshot (borrowed for the call) and returns 0 to go on or a
 * negative code to stop; done gets 0, a store failure, or that code.
 */
struct tool_snaps_s {
	skald_journal_t *j;
	const char *pid;  /* borrowed until done */
	uint64_t max_seq; /* the newest to list; SKALD_SEQ_MAX: all */
	uint64_t limit;   /* at most this many */
	int (*each)(tool_snaps_t *w, const skald_snapshot_t *s);
	void (*done)(tool_snaps_t *w, int status);
	void *arg;
	uint64_t n; /* listed so far */
	int more;   /* the limit stopped the listing before its end */
};

/* Starts the listing. Returns 0, or a negative code with nothing started. */
int tool_snaps_start(tool_snaps_t *w);

/* The size of a snapshot's data as compact JSON, in bytes. */
size_t tool_json_size(const json_t *data);

#endif /* SKALD_TOOLS_FOLD_H */
