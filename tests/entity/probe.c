/*
 * tests/entity/probe.c - "entprobe:", a store that wraps the store under
 * test to observe and break it.
 *
 * URI: entprobe:INNER_URI (e.g. entprobe:memory://x). Every operation is
 * passed to the store registered for INNER_URI's scheme, with the same
 * handle, so errors and messages are the inner store's. On top of that:
 *   - when an append completes, each stored event is counted and traced
 *     (TR_COMMIT) before the journal front hears of it;
 *   - probe_fail_append, probe_fail_snapshot, probe_fail_snapshot_load and
 *     probe_fail_read make appends, snapshot saves, snapshot loads or event
 *     reads finish with that error without reaching the inner store (the
 *     front runs the callback on the loop, after the call returned). A read
 *     failed with SKALD_EDECODE names its first event as the one that
 *     cannot be decoded, as a store does.
 */
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

atomic_int probe_fail_append;
atomic_int probe_fail_snapshot;
atomic_int probe_fail_snapshot_load;
atomic_int probe_fail_read;
atomic_long probe_events_committed;
atomic_long probe_snapshots_forwarded;
atomic_long probe_snapshots_failed;

#define PREFIX "entprobe:"

#define PROBE_CAPS                                                                                 \
	(SKALD_CAP_ATOMIC_WRITES | SKALD_CAP_BATCHED_WRITES | SKALD_CAP_SNAPSHOTS |                \
	 SKALD_CAP_QUERIES)

typedef struct probe_s {
	const skald_store_t *inner;
	void *istate;
} probe_t;

static int probe_open(void *state, skald_journal_t *j, uv_loop_t *loop, const char *uri)
{
	probe_t *p = state;
	const char *iuri = uri + strlen(PREFIX);
	const char *colon = strchr(iuri, ':');
	char scheme[32];
	size_t n = colon ? (size_t)(colon - iuri) : 0;
	if (strncmp(uri, PREFIX, strlen(PREFIX)) != 0 || n == 0 || n >= sizeof scheme) {
		skald_journal_set_errmsg(j, "probe URI must be entprobe:SCHEME://...");
		return SKALD_EURI;
	}
	memcpy(scheme, iuri, n);
	scheme[n] = '\0';
	const skald_store_t *inner = skald_store_lookup(scheme);
	if (inner == NULL || inner == skald_store_lookup("entprobe")) {
		skald_journal_set_errmsg(j, "probe: no store for scheme \"%s\"", scheme);
		return SKALD_ESCHEME;
	}
	if ((inner->caps & PROBE_CAPS) != PROBE_CAPS) {
		skald_journal_set_errmsg(j,
		                         "probe: the %s store lacks a capability the probe "
		                         "advertises",
		                         scheme);
		return SKALD_EUNSUPPORTED;
	}
	p->istate = calloc(1, inner->state_size ? inner->state_size : 1);
	if (p->istate == NULL)
		return SKALD_ENOMEM;
	p->inner = inner;
	return inner->open(p->istate, j, loop, iuri);
}

static void probe_close(void *state, void (*done)(skald_journal_t *j))
{
	probe_t *p = state;
	/* done() runs the front's fini on this state, which finishes the
	 * inner one: nothing of ours is touched after it. */
	p->inner->close(p->istate, done);
}

static void probe_fini(void *state)
{
	probe_t *p = state;
	if (p->inner != NULL)
		p->inner->fini(p->istate);
	free(p->istate);
	p->istate = NULL;
	p->inner = NULL;
}

/* ------------------------------------------------------------------------ */
/* Operations                                                                */

/* Runs when the inner store finishes an append, before the front hears. */
static int appended(skald_op_t *op, int status, void *arg)
{
	for (size_t w = 0; w < op->nwrites && status == 0; w++) {
		const skald_write_t *wr = op->writes[w];
		if (wr->status != 0)
			continue;
		for (size_t i = 0; i < wr->nevents; i++) {
			atomic_fetch_add(&probe_events_committed, 1);
			trace_add(TR_COMMIT, wr->events[i].seq);
		}
	}
	return status;
}

/* Finishes op with fail, as the inner store would report a failure. */
static void fail_op(skald_op_t *op, int fail, const char *what)
{
	skald_journal_t *j = skald_op_journal(op);
	skald_journal_set_errmsg(j, "probe: %s failed on purpose", what);
	/* As a store does when it meets an event it cannot decode. */
	if (op->kind == SKALD_OP_READ && fail == SKALD_EDECODE)
		skald_journal_set_bad_event(j, op->persistence_id, op->from, 0);
	skald_op_finish(op, fail);
}

static void probe_start(void *state, skald_op_t *op)
{
	probe_t *p = state;
	int fail;
	switch (op->kind) {
	case SKALD_OP_APPEND:
		if ((fail = atomic_load(&probe_fail_append)) != 0) {
			fail_op(op, fail, "append");
			return;
		}
		op->on_finish = appended;
		break;
	case SKALD_OP_SNAPSHOT_SAVE:
		if ((fail = atomic_load(&probe_fail_snapshot)) != 0) {
			atomic_fetch_add(&probe_snapshots_failed, 1);
			fail_op(op, fail, "snapshot save");
			return;
		}
		atomic_fetch_add(&probe_snapshots_forwarded, 1);
		break;
	case SKALD_OP_SNAPSHOT_LOAD:
		if ((fail = atomic_load(&probe_fail_snapshot_load)) != 0) {
			fail_op(op, fail, "snapshot load");
			return;
		}
		break;
	case SKALD_OP_READ:
		if ((fail = atomic_load(&probe_fail_read)) != 0) {
			fail_op(op, fail, "read");
			return;
		}
		break;
	default:
		break;
	}
	p->inner->start(p->istate, op);
}

static const skald_store_t probe_store = {
        .abi = SKALD_STORE_ABI,
        .schemes = {"entprobe"},
        .state_size = sizeof(probe_t),
        .caps = PROBE_CAPS,
        .open = probe_open,
        .close = probe_close,
        .fini = probe_fini,
        .start = probe_start,
};

void probe_register(void)
{
	int rc = skald_store_register(&probe_store);
	cr_assert_eq(rc, 0, "register the probe store: %s", skald_strerror(rc));
}
