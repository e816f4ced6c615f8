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
 *     reads complete with that error without reaching the inner store. The
 *     completion is deferred by a harmless inner operation (a highest read),
 *     so that it runs on the loop, after the call returned and after the
 *     operations issued before it, as the store contract demands. A read
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
/* Appends                                                                   */

typedef struct append_op_s {
	skald_append_fn cb;
	void *arg;
	skald_write_t *writes;
	size_t n;
	int fail;
} append_op_t;

static void appended(skald_journal_t *j, int status, skald_write_t *writes, size_t n, void *arg)
{
	append_op_t *op = arg;
	for (size_t w = 0; w < n; w++) {
		if (status != 0 || writes[w].status != 0)
			continue;
		for (size_t i = 0; i < writes[w].nevents; i++) {
			atomic_fetch_add(&probe_events_committed, 1);
			trace_add(TR_COMMIT, writes[w].events[i].seq);
		}
	}
	skald_append_fn cb = op->cb;
	void *cb_arg = op->arg;
	free(op);
	cb(j, status, writes, n, cb_arg);
}

static void failed_append(skald_journal_t *j, int status, uint64_t seq, void *arg)
{
	append_op_t *op = arg;
	for (size_t w = 0; w < op->n; w++)
		op->writes[w].status = op->fail;
	skald_journal_set_errmsg(j, "probe: append failed on purpose");
	skald_append_fn cb = op->cb;
	void *cb_arg = op->arg;
	skald_write_t *writes = op->writes;
	size_t n = op->n;
	int fail = op->fail;
	free(op);
	cb(j, fail, writes, n, cb_arg);
}

static int probe_append(void *state, skald_write_t *writes, size_t nwrites, skald_append_fn cb,
                        void *arg)
{
	probe_t *p = state;
	append_op_t *op = calloc(1, sizeof *op);
	if (op == NULL)
		return SKALD_ENOMEM;
	*op = (append_op_t){cb, arg, writes, nwrites, atomic_load(&probe_fail_append)};
	int rc;
	if (op->fail != 0)
		rc = p->inner->highest(p->istate, writes[0].persistence_id, failed_append, op);
	else
		rc = p->inner->append(p->istate, writes, nwrites, appended, op);
	if (rc != 0)
		free(op);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Snapshots                                                                 */

typedef struct snap_op_s {
	skald_done_fn cb;
	void *arg;
	int fail;
} snap_op_t;

static void failed_snapshot(skald_journal_t *j, int status, uint64_t seq, void *arg)
{
	snap_op_t *op = arg;
	skald_done_fn cb = op->cb;
	void *cb_arg = op->arg;
	int fail = op->fail;
	free(op);
	skald_journal_set_errmsg(j, "probe: snapshot save failed on purpose");
	cb(j, fail, cb_arg);
}

static int probe_snapshot_save(void *state, skald_snapshot_t *snap, skald_done_fn cb, void *arg)
{
	probe_t *p = state;
	int fail = atomic_load(&probe_fail_snapshot);
	if (fail == 0) {
		atomic_fetch_add(&probe_snapshots_forwarded, 1);
		return p->inner->snapshot_save(p->istate, snap, cb, arg);
	}
	snap_op_t *op = malloc(sizeof *op);
	if (op == NULL)
		return SKALD_ENOMEM;
	atomic_fetch_add(&probe_snapshots_failed, 1);
	*op = (snap_op_t){cb, arg, fail};
	int rc = p->inner->highest(p->istate, snap->persistence_id, failed_snapshot, op);
	if (rc != 0)
		free(op);
	return rc;
}

typedef struct load_op_s {
	skald_snapshot_fn cb;
	void *arg;
	int fail;
} load_op_t;

static void failed_load(skald_journal_t *j, int status, uint64_t seq, void *arg)
{
	load_op_t *op = arg;
	skald_snapshot_fn cb = op->cb;
	void *cb_arg = op->arg;
	int fail = op->fail;
	free(op);
	skald_journal_set_errmsg(j, "probe: snapshot load failed on purpose");
	cb(j, fail, NULL, cb_arg);
}

static int probe_snapshot_load(void *state, const char *pid, uint64_t max_seq, skald_snapshot_fn cb,
                               void *arg)
{
	probe_t *p = state;
	int fail = atomic_load(&probe_fail_snapshot_load);
	if (fail == 0)
		return p->inner->snapshot_load(p->istate, pid, max_seq, cb, arg);
	load_op_t *op = malloc(sizeof *op);
	if (op == NULL)
		return SKALD_ENOMEM;
	*op = (load_op_t){cb, arg, fail};
	int rc = p->inner->highest(p->istate, pid, failed_load, op);
	if (rc != 0)
		free(op);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Reads                                                                     */

typedef struct read_op_s {
	skald_done_fn done;
	void *arg;
	int fail;
	char *pid;
	uint64_t from;
} read_op_t;

static void failed_read(skald_journal_t *j, int status, uint64_t seq, void *arg)
{
	read_op_t *op = arg;
	skald_journal_set_errmsg(j, "probe: read failed on purpose");
	/* As a store does when it meets an event it cannot decode. */
	if (op->fail == SKALD_EDECODE)
		skald_journal_set_bad_event(j, op->pid, op->from, 0);
	skald_done_fn done = op->done;
	void *done_arg = op->arg;
	int fail = op->fail;
	free(op->pid);
	free(op);
	done(j, fail, done_arg);
}

static int probe_read(void *state, const char *pid, uint64_t from, uint64_t to, uint64_t max,
                      skald_events_fn on_events, skald_done_fn done, void *arg)
{
	probe_t *p = state;
	int fail = atomic_load(&probe_fail_read);
	if (fail == 0)
		return p->inner->read(p->istate, pid, from, to, max, on_events, done, arg);
	read_op_t *op = malloc(sizeof *op);
	if (op == NULL)
		return SKALD_ENOMEM;
	*op = (read_op_t){done, arg, fail, strdup(pid), from};
	int rc = op->pid ? p->inner->highest(p->istate, pid, failed_read, op) : SKALD_ENOMEM;
	if (rc != 0) {
		free(op->pid);
		free(op);
	}
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Pass-through                                                              */

static int probe_highest(void *state, const char *pid, skald_seq_fn cb, void *arg)
{
	probe_t *p = state;
	return p->inner->highest(p->istate, pid, cb, arg);
}

static int probe_delete_to(void *state, const char *pid, uint64_t to, skald_done_fn cb, void *arg)
{
	probe_t *p = state;
	return p->inner->delete_to(p->istate, pid, to, cb, arg);
}

static int probe_snapshot_delete(void *state, const char *pid, uint64_t seq, skald_done_fn cb,
                                 void *arg)
{
	probe_t *p = state;
	return p->inner->snapshot_delete(p->istate, pid, seq, cb, arg);
}

static int probe_snapshot_delete_to(void *state, const char *pid, uint64_t max_seq,
                                    skald_done_fn cb, void *arg)
{
	probe_t *p = state;
	return p->inner->snapshot_delete_to(p->istate, pid, max_seq, cb, arg);
}

static int probe_read_all(void *state, uint64_t after, uint64_t max, skald_events_fn on_events,
                          skald_done_fn done, void *arg)
{
	probe_t *p = state;
	return p->inner->read_all(p->istate, after, max, on_events, done, arg);
}

static int probe_list_ids(void *state, const char *prefix, const char *after, uint64_t max,
                          skald_ids_fn on_ids, skald_done_fn done, void *arg)
{
	probe_t *p = state;
	return p->inner->list_ids(p->istate, prefix, after, max, on_ids, done, arg);
}

static const skald_store_t probe_store = {
        .abi = SKALD_STORE_ABI,
        .schemes = {"entprobe"},
        .state_size = sizeof(probe_t),
        .caps = PROBE_CAPS,
        .open = probe_open,
        .close = probe_close,
        .fini = probe_fini,
        .append = probe_append,
        .read = probe_read,
        .highest = probe_highest,
        .delete_to = probe_delete_to,
        .snapshot_save = probe_snapshot_save,
        .snapshot_load = probe_snapshot_load,
        .snapshot_delete = probe_snapshot_delete,
        .snapshot_delete_to = probe_snapshot_delete_to,
        .read_all = probe_read_all,
        .list_ids = probe_list_ids,
};

void probe_register(void)
{
	int rc = skald_store_register(&probe_store);
	cr_assert_eq(rc, 0, "register the probe store: %s", skald_strerror(rc));
}
