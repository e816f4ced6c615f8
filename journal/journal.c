/*
 * journal/journal.c - the journal front: handles, argument checks, defaults,
 * and thin wrappers over the store table. Upcasting happens here so that
 * every store gets it for free.
 */
#include <stdalign.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "journal/journal_int.h"

struct skald_journal_s {
	const skald_store_t *store;
	uv_loop_t *loop;
	void *state; /* store's private state, in the same allocation */
	int closing;
	skald_journal_close_fn close_cb;
	void *close_arg;
	char errmsg[512];
	/* The stored event the latest failed read could not decode. */
	char *bad_pid; /* owned; NULL: none */
	uint64_t bad_seq, bad_offset;
};

/* The message of the latest failed open on this thread: the handle it would
 * belong to no longer exists when open returns. */
static _Thread_local char open_errmsg[512];

int64_t skald__now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void skald_journal_set_errmsg(skald_journal_t *j, const char *fmt, ...)
{
	if (j == NULL || fmt == NULL)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(j->errmsg, sizeof j->errmsg, fmt, ap);
	va_end(ap);
}

static void forget_bad_event(skald_journal_t *j)
{
	free(j->bad_pid);
	j->bad_pid = NULL;
}

void skald_journal_set_bad_event(skald_journal_t *j, const char *persistence_id, uint64_t seq,
                                 uint64_t offset)
{
	if (j == NULL || persistence_id == NULL)
		return;
	free(j->bad_pid);
	/* Out of memory, the caller learns no more than the message says. */
	j->bad_pid = strdup(persistence_id);
	j->bad_seq = seq;
	j->bad_offset = offset;
}

int skald_journal_bad_event(const skald_journal_t *j, const char **persistence_id, uint64_t *seq,
                            uint64_t *offset)
{
	if (j == NULL || j->bad_pid == NULL)
		return SKALD_ENOTFOUND;
	if (persistence_id)
		*persistence_id = j->bad_pid;
	if (seq)
		*seq = j->bad_seq;
	if (offset)
		*offset = j->bad_offset;
	return 0;
}

const char *skald_journal_errmsg(const skald_journal_t *j)
{
	return j ? j->errmsg : "";
}

const char *skald_journal_open_errmsg(void)
{
	return open_errmsg;
}

void skald__journal_open_failed(const char *msg)
{
	snprintf(open_errmsg, sizeof open_errmsg, "%s", msg);
}

uv_loop_t *skald_journal_loop(const skald_journal_t *j)
{
	return j ? j->loop : NULL;
}

unsigned skald_journal_caps(const skald_journal_t *j)
{
	return j ? j->store->caps : 0;
}

const char *skald_journal_scheme(const skald_journal_t *j)
{
	return j ? j->store->schemes[0] : "";
}

/* ------------------------------------------------------------------------ */
/* Opening and closing                                                       */

int skald__journal_uri(const char *uri, const char *dflt, const char **out, char *err,
                       size_t errlen)
{
	if (uri == NULL) {
		const char *env = getenv("SKALD_JOURNAL");
		uri = env != NULL && env[0] != '\0' ? env : dflt;
	}
	if (uri == NULL || uri[0] == '\0') {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen,
			         "no journal URI: pass one (--store URI to the skald tool) or set "
			         "SKALD_JOURNAL, e.g. SKALD_JOURNAL=memory://dev or "
			         "SKALD_JOURNAL=postgres://USER:PASSWORD@HOST:PORT/DB");
		return SKALD_EURI;
	}
	*out = uri;
	return 0;
}

int skald_journal_open(uv_loop_t *loop, const char *uri, skald_journal_t **out)
{
	open_errmsg[0] = '\0';
	if (out)
		*out = NULL;
	if (loop == NULL || out == NULL) {
		snprintf(open_errmsg, sizeof open_errmsg,
		         "skald_journal_open: loop and out must not be NULL");
		return SKALD_EINVAL;
	}
	const skald_store_t *store;
	int rc = skald__journal_uri(uri, NULL, &uri, open_errmsg, sizeof open_errmsg);
	if (rc == 0)
		rc = skald__registry_find(uri, &store, open_errmsg, sizeof open_errmsg);
	if (rc != 0)
		return rc;

	/* One allocation for the handle and the store's state; the state starts
	 * at the next boundary suitable for any type. */
	size_t align = alignof(max_align_t);
	size_t head = (sizeof(skald_journal_t) + align - 1) / align * align;
	skald_journal_t *j = calloc(1, head + store->state_size);
	if (j == NULL) {
		snprintf(open_errmsg, sizeof open_errmsg, "out of memory opening the journal");
		return SKALD_ENOMEM;
	}
	j->store = store;
	j->loop = loop;
	j->state = (char *)j + head;
	rc = store->open(j->state, j, loop, uri);
	if (rc != 0) {
		if (j->errmsg[0])
			snprintf(open_errmsg, sizeof open_errmsg, "%s", j->errmsg);
		else
			snprintf(open_errmsg, sizeof open_errmsg,
			         "the %s store could not open the journal (error %d)",
			         store->schemes[0], rc);
		store->fini(j->state);
		free(j);
		return rc;
	}
	*out = j;
	return 0;
}

static void on_store_closed(skald_journal_t *j)
{
	j->store->fini(j->state);
	if (j->close_cb)
		j->close_cb(j, j->close_arg);
	free(j->bad_pid);
	free(j);
}

int skald_journal_close(skald_journal_t *j, skald_journal_close_fn cb, void *arg)
{
	if (j == NULL)
		return SKALD_EINVAL;
	if (j->closing)
		return SKALD_ECLOSED;
	j->closing = 1;
	j->close_cb = cb;
	j->close_arg = arg;
	j->store->close(j->state, on_store_closed);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Argument checks shared by the operations                                  */

static int check_handle(skald_journal_t *j)
{
	if (j == NULL)
		return SKALD_EINVAL;
	if (j->closing) {
		skald_journal_set_errmsg(j, "the journal handle is closing");
		return SKALD_ECLOSED;
	}
	return 0;
}

static int check_pid(skald_journal_t *j, const char *op, const char *pid)
{
	if (pid == NULL || *pid == '\0') {
		skald_journal_set_errmsg(j, "%s: the persistence id must be a non-empty string",
		                         op);
		return SKALD_EINVAL;
	}
	return 0;
}

static int missing(skald_journal_t *j, const char *op, const char *what)
{
	skald_journal_set_errmsg(j, "%s: %s must not be NULL", op, what);
	return SKALD_EINVAL;
}

static int unsupported(skald_journal_t *j, const char *op)
{
	skald_journal_set_errmsg(j, "%s: the %s store does not support it", op,
	                         j->store->schemes[0]);
	return SKALD_EUNSUPPORTED;
}

/* ------------------------------------------------------------------------ */
/* Append                                                                    */

typedef struct append_req_s {
	skald_append_fn cb;
	void *arg;
} append_req_t;

static void append_done(skald_journal_t *j, int status, skald_write_t *writes, size_t n, void *arg)
{
	append_req_t req = *(append_req_t *)arg;
	free(arg);
	/* Normalise what the store reported so that callers may rely on both
	 * the overall status and every write's own. */
	if (status < 0) {
		for (size_t i = 0; i < n; i++)
			writes[i].status = status;
	} else {
		for (size_t i = 0; i < n && status == 0; i++)
			status = writes[i].status;
	}
	req.cb(j, status, writes, n, req.arg);
}

static int check_write(skald_journal_t *j, const skald_write_t *w, size_t wi)
{
	if (w->persistence_id == NULL || *w->persistence_id == '\0') {
		skald_journal_set_errmsg(j, "append: write %zu has no persistence id", wi);
		return SKALD_EINVAL;
	}
	if (w->events == NULL || w->nevents == 0) {
		skald_journal_set_errmsg(j, "append: write %zu (\"%s\") has no events", wi,
		                         w->persistence_id);
		return SKALD_EINVAL;
	}
	/* SKALD_SEQ_MAX means "no bound" in reads, so no event may carry it. */
	if (w->expected_seq >= SKALD_SEQ_MAX - 1 ||
	    w->nevents > SKALD_SEQ_MAX - 1 - w->expected_seq) {
		skald_journal_set_errmsg(j, "append: write %zu: sequence numbers overflow", wi);
		return SKALD_EINVAL;
	}
	if (w->nevents > 1 && !(j->store->caps & SKALD_CAP_ATOMIC_WRITES)) {
		skald_journal_set_errmsg(j,
		                         "append: write %zu has %zu events but the %s store "
		                         "cannot store several events atomically",
		                         wi, w->nevents, j->store->schemes[0]);
		return SKALD_EUNSUPPORTED;
	}
	for (size_t i = 0; i < w->nevents; i++) {
		const skald_event_t *e = &w->events[i];
		uint64_t want = w->expected_seq + 1 + i;
		if (e->seq != 0 && e->seq != want) {
			skald_journal_set_errmsg(
			        j,
			        "append: write %zu (\"%s\"), event %zu has seq "
			        "%llu but follows expected_seq %llu: it must be "
			        "%llu (or 0 to number it)",
			        wi, w->persistence_id, i, (unsigned long long)e->seq,
			        (unsigned long long)w->expected_seq, (unsigned long long)want);
			return SKALD_EINVAL;
		}
		if (e->type == NULL || *e->type == '\0') {
			skald_journal_set_errmsg(j, "append: write %zu, event %zu has no type name",
			                         wi, i);
			return SKALD_EINVAL;
		}
		if (e->data == NULL) {
			skald_journal_set_errmsg(j, "append: write %zu, event %zu has no data", wi,
			                         i);
			return SKALD_EINVAL;
		}
		if (e->version < 0) {
			skald_journal_set_errmsg(j, "append: write %zu, event %zu has version %d",
			                         wi, i, e->version);
			return SKALD_EINVAL;
		}
	}
	return 0;
}

int skald_journal_append(skald_journal_t *j, skald_write_t *writes, size_t nwrites,
                         skald_append_fn cb, void *arg)
{
	int rc = check_handle(j);
	if (rc != 0)
		return rc;
	if (writes == NULL || nwrites == 0) {
		skald_journal_set_errmsg(j, "append: no writes given");
		return SKALD_EINVAL;
	}
	if (cb == NULL)
		return missing(j, "append", "the callback");
	/* Check everything before changing anything, so that a refused call
	 * leaves the caller's writes as they were. */
	for (size_t w = 0; w < nwrites; w++) {
		rc = check_write(j, &writes[w], w);
		if (rc != 0)
			return rc;
	}
	append_req_t *req = malloc(sizeof *req);
	if (req == NULL)
		return SKALD_ENOMEM;
	req->cb = cb;
	req->arg = arg;
	int64_t now = skald__now_ms();
	for (size_t w = 0; w < nwrites; w++) {
		skald_write_t *wr = &writes[w];
		wr->status = 0;
		for (size_t i = 0; i < wr->nevents; i++) {
			skald_event_t *e = &wr->events[i];
			e->persistence_id = wr->persistence_id;
			e->seq = wr->expected_seq + 1 + i;
			if (e->version == 0)
				e->version = 1;
			if (e->timestamp == 0)
				e->timestamp = now;
			e->offset = 0;
		}
	}
	rc = j->store->append(j->state, writes, nwrites, append_done, req);
	if (rc != 0)
		free(req);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Streamed reads                                                            */

typedef struct read_req_s {
	skald_events_fn on_events;
	skald_done_fn done;
	void *arg;
} read_req_t;

static int read_batch(skald_journal_t *j, const skald_event_t *events, size_t n, void *arg)
{
	read_req_t *req = arg;
	if (skald__upcasters_active()) {
		/* The store contract lets the front rewrite the envelopes it
		 * delivers (their data is the store's own reference), so the
		 * const is the user-facing promise, not the store's array. */
		skald_event_t *ev = (skald_event_t *)events;
		for (size_t i = 0; i < n; i++) {
			int rc = skald__upcast(&ev[i]);
			if (rc != 0) {
				skald_journal_set_errmsg(
				        j,
				        "upcasting %s version %d (\"%s\" seq %llu) "
				        "failed with %d",
				        ev[i].type, ev[i].version, ev[i].persistence_id,
				        (unsigned long long)ev[i].seq, rc);
				return rc;
			}
		}
	}
	return req->on_events(j, events, n, req->arg);
}

static void read_done(skald_journal_t *j, int status, void *arg)
{
	read_req_t req = *(read_req_t *)arg;
	free(arg);
	req.done(j, status, req.arg);
}

static read_req_t *read_req(skald_events_fn on_events, skald_done_fn done, void *arg)
{
	read_req_t *req = malloc(sizeof *req);
	if (req) {
		req->on_events = on_events;
		req->done = done;
		req->arg = arg;
	}
	return req;
}

int skald_journal_read(skald_journal_t *j, const char *persistence_id, uint64_t from, uint64_t to,
                       uint64_t max, skald_events_fn on_events, skald_done_fn done, void *arg)
{
	int rc = check_handle(j);
	if (rc == 0)
		rc = check_pid(j, "read", persistence_id);
	if (rc != 0)
		return rc;
	if (on_events == NULL || done == NULL)
		return missing(j, "read", "the callbacks");
	read_req_t *req = read_req(on_events, done, arg);
	if (req == NULL)
		return SKALD_ENOMEM;
	forget_bad_event(j);
	rc = j->store->read(j->state, persistence_id, from ? from : 1, to, max, read_batch,
	                    read_done, req);
	if (rc != 0)
		free(req);
	return rc;
}

int skald_journal_read_all(skald_journal_t *j, uint64_t after, uint64_t max,
                           skald_events_fn on_events, skald_done_fn done, void *arg)
{
	int rc = check_handle(j);
	if (rc != 0)
		return rc;
	if (on_events == NULL || done == NULL)
		return missing(j, "read_all", "the callbacks");
	if (!(j->store->caps & SKALD_CAP_QUERIES))
		return unsupported(j, "read_all");
	read_req_t *req = read_req(on_events, done, arg);
	if (req == NULL)
		return SKALD_ENOMEM;
	forget_bad_event(j);
	rc = j->store->read_all(j->state, after, max, read_batch, read_done, req);
	if (rc != 0)
		free(req);
	return rc;
}

int skald_journal_list_ids(skald_journal_t *j, const char *prefix, const char *after, uint64_t max,
                           skald_ids_fn on_ids, skald_done_fn done, void *arg)
{
	int rc = check_handle(j);
	if (rc != 0)
		return rc;
	if (on_ids == NULL || done == NULL)
		return missing(j, "list_ids", "the callbacks");
	if (!(j->store->caps & SKALD_CAP_QUERIES))
		return unsupported(j, "list_ids");
	return j->store->list_ids(j->state, prefix, after, max, on_ids, done, arg);
}

/* ------------------------------------------------------------------------ */
/* Single-shot operations: checked, then handed to the store as they are     */

int skald_journal_highest(skald_journal_t *j, const char *persistence_id, skald_seq_fn cb,
                          void *arg)
{
	int rc = check_handle(j);
	if (rc == 0)
		rc = check_pid(j, "highest", persistence_id);
	if (rc != 0)
		return rc;
	if (cb == NULL)
		return missing(j, "highest", "the callback");
	return j->store->highest(j->state, persistence_id, cb, arg);
}

int skald_journal_delete_to(skald_journal_t *j, const char *persistence_id, uint64_t to,
                            skald_done_fn cb, void *arg)
{
	int rc = check_handle(j);
	if (rc == 0)
		rc = check_pid(j, "delete_to", persistence_id);
	if (rc != 0)
		return rc;
	if (cb == NULL)
		return missing(j, "delete_to", "the callback");
	return j->store->delete_to(j->state, persistence_id, to, cb, arg);
}

int skald_journal_snapshot_save(skald_journal_t *j, skald_snapshot_t *snap, skald_done_fn cb,
                                void *arg)
{
	int rc = check_handle(j);
	if (rc != 0)
		return rc;
	if (snap == NULL || cb == NULL)
		return missing(j, "snapshot_save", "the snapshot and the callback");
	rc = check_pid(j, "snapshot_save", snap->persistence_id);
	if (rc != 0)
		return rc;
	if (snap->seq == 0 || snap->data == NULL) {
		skald_journal_set_errmsg(j, "snapshot_save: a snapshot needs a seq >= 1 and data");
		return SKALD_EINVAL;
	}
	if (!(j->store->caps & SKALD_CAP_SNAPSHOTS))
		return unsupported(j, "snapshot_save");
	if (snap->timestamp == 0)
		snap->timestamp = skald__now_ms();
	return j->store->snapshot_save(j->state, snap, cb, arg);
}

int skald_journal_snapshot_load(skald_journal_t *j, const char *persistence_id, uint64_t max_seq,
                                skald_snapshot_fn cb, void *arg)
{
	int rc = check_handle(j);
	if (rc == 0)
		rc = check_pid(j, "snapshot_load", persistence_id);
	if (rc != 0)
		return rc;
	if (cb == NULL)
		return missing(j, "snapshot_load", "the callback");
	if (!(j->store->caps & SKALD_CAP_SNAPSHOTS))
		return unsupported(j, "snapshot_load");
	return j->store->snapshot_load(j->state, persistence_id, max_seq, cb, arg);
}

int skald_journal_snapshot_delete(skald_journal_t *j, const char *persistence_id, uint64_t seq,
                                  skald_done_fn cb, void *arg)
{
	int rc = check_handle(j);
	if (rc == 0)
		rc = check_pid(j, "snapshot_delete", persistence_id);
	if (rc != 0)
		return rc;
	if (cb == NULL)
		return missing(j, "snapshot_delete", "the callback");
	if (!(j->store->caps & SKALD_CAP_SNAPSHOTS))
		return unsupported(j, "snapshot_delete");
	return j->store->snapshot_delete(j->state, persistence_id, seq, cb, arg);
}

int skald_journal_snapshot_delete_to(skald_journal_t *j, const char *persistence_id,
                                     uint64_t max_seq, skald_done_fn cb, void *arg)
{
	int rc = check_handle(j);
	if (rc == 0)
		rc = check_pid(j, "snapshot_delete_to", persistence_id);
	if (rc != 0)
		return rc;
	if (cb == NULL)
		return missing(j, "snapshot_delete_to", "the callback");
	if (!(j->store->caps & SKALD_CAP_SNAPSHOTS))
		return unsupported(j, "snapshot_delete_to");
	return j->store->snapshot_delete_to(j->state, persistence_id, max_seq, cb, arg);
}
