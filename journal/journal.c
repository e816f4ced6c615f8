/*
 * journal/journal.c - the journal front: handles, argument checks, defaults,
 * and the life of every operation (skald_op_t, store.h): the front allocates
 * it, queues it, starts it on the store one at a time per handle, delivers
 * its batches (upcasting them, so that every store gets that for free) and
 * runs its callback from the handle's idle handle, so that "exactly once, on
 * the handle's loop, never before the call returns" lives here alone.
 */
#include <stdalign.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "journal/journal_int.h"

struct skald_journal_s {
	const skald_store_t *store;
	uv_loop_t *loop;
	void *state; /* store's private state, in the same allocation */
	/* Runs finished operations' callbacks, starts queued operations, and
	 * drives the close; started only when there is something to do. */
	uv_idle_t idle;
	bool idle_on;
	skald_op_t *active;                  /* started; neither finished nor released */
	skald_op_t *queue_head, *queue_tail; /* issued, not started, in order */
	size_t nqueued;
	int starting;                      /* inside the store's start */
	skald_op_t *done_head, *done_tail; /* finished, callback not run yet */
	int closing;
	bool store_closing, store_closed;
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
	/* Last, because it cannot fail and a failed open must leave no loop
	 * handle behind. */
	uv_idle_init(loop, &j->idle);
	j->idle.data = j;
	*out = j;
	return 0;
}

static void on_idle(uv_idle_t *h);

static void kick(skald_journal_t *j)
{
	if (!j->idle_on) {
		j->idle_on = true;
		uv_idle_start(&j->idle, on_idle);
	}
}

static void on_idle_closed(uv_handle_t *h)
{
	skald_journal_t *j = h->data;
	j->store->fini(j->state);
	if (j->close_cb)
		j->close_cb(j, j->close_arg);
	free(j->bad_pid);
	free(j);
}

static void on_store_closed(skald_journal_t *j)
{
	j->store_closed = true;
	kick(j);
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
	/* The store closes from the loop, once the operations issued before
	 * this call have started. */
	kick(j);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Operations: queue, start, finish, deliver                                 */

/* op->front.flags */
enum {
	OP_OWNED = 1,    /* the issuer's (the writer's batch op): never freed here */
	OP_INTERNAL = 2, /* completes through front.cb.internal */
};

static void start_op(skald_journal_t *j, skald_op_t *op)
{
	j->active = op;
	j->starting++;
	j->store->start(j->state, op);
	j->starting--;
}

static void complete(skald_journal_t *j, skald_op_t *op);

/* Starts op now if the handle has nothing running or waiting (so that a
 * store that works in start, the memory store, takes effect within the
 * call, as before the queue existed), else queues it behind the others. */
static void submit(skald_journal_t *j, skald_op_t *op)
{
	op->front.j = j;
	op->front.next = NULL;
	op->front.status = 0;
	op->seq = 0;
	op->loaded = (skald_snapshot_t){0};
	op->store_data = NULL;
	op->on_finish = NULL;
	op->on_finish_arg = NULL;
	if (j->active == NULL && j->queue_head == NULL) {
		start_op(j, op);
		return;
	}
	if (j->queue_tail)
		j->queue_tail->front.next = op;
	else
		j->queue_head = op;
	j->queue_tail = op;
	j->nqueued++;
	if (j->active == NULL)
		kick(j);
}

void skald_op_finish(skald_op_t *op, int status)
{
	if (op->on_finish) {
		skald_op_hook_fn hook = op->on_finish;
		op->on_finish = NULL;
		status = hook(op, status, op->on_finish_arg);
	}
	skald_journal_t *j = op->front.j;
	op->front.status = status;
	op->front.next = NULL;
	if (j->active == op)
		j->active = NULL;
	if (j->starting == 0 && j->done_head == NULL) {
		/* From the store's own loop callback: the call that issued op
		 * has returned, and no earlier op waits for its callback, so
		 * it runs now rather than one loop iteration later; then the
		 * next op starts, as a store with its own queue would do. */
		complete(j, op);
		if (j->active == NULL && j->queue_head != NULL) {
			skald_op_t *next = j->queue_head;
			j->queue_head = next->front.next;
			if (j->queue_head == NULL)
				j->queue_tail = NULL;
			j->nqueued--;
			start_op(j, next);
		}
		if (j->closing || (j->active == NULL && j->queue_head != NULL))
			kick(j);
		return;
	}
	if (j->done_tail)
		j->done_tail->front.next = op;
	else
		j->done_head = op;
	j->done_tail = op;
	kick(j);
}

void skald_op_release(skald_op_t *op)
{
	skald_journal_t *j = op->front.j;
	if (j->active == op) {
		j->active = NULL;
		if (j->queue_head)
			kick(j);
	}
}

skald_journal_t *skald_op_journal(const skald_op_t *op)
{
	return op->front.j;
}

int skald_op_events(skald_op_t *op, skald_event_t *ev, size_t n)
{
	skald_journal_t *j = op->front.j;
	/* A stream cut short by close ends with SKALD_ECANCELED and no further
	 * batch: the owner of the handle has said it wants to stop. */
	if (j->closing)
		return SKALD_ECANCELED;
	if (n == 0)
		return 0;
	if (skald__upcasters_active()) {
		/* The store lets the front rewrite the envelopes it delivers
		 * (their data is the store's own reference). */
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
	return op->front.stream.events(j, ev, n, op->front.arg);
}

int skald_op_ids(skald_op_t *op, const skald_persistence_id_t *ids, size_t n)
{
	skald_journal_t *j = op->front.j;
	if (j->closing)
		return SKALD_ECANCELED;
	if (n == 0)
		return 0;
	return op->front.stream.ids(j, ids, n, op->front.arg);
}

/* Runs op's callback, then frees op unless its issuer owns it. */
static void complete(skald_journal_t *j, skald_op_t *op)
{
	int status = op->front.status;
	void *arg = op->front.arg;
	switch (op->kind) {
	case SKALD_OP_APPEND:
		/* Normalise what the store reported so that callers may rely on
		 * both the overall status and every write's own. */
		if (status < 0) {
			for (size_t i = 0; i < op->nwrites; i++)
				op->writes[i]->status = status;
		} else {
			for (size_t i = 0; i < op->nwrites && status == 0; i++)
				status = op->writes[i]->status;
		}
		if (op->front.flags & OP_INTERNAL)
			op->front.cb.internal(op, status);
		else
			op->front.cb.append(j, status, op->front.user_writes, op->nwrites, arg);
		break;
	case SKALD_OP_HIGHEST:
		op->front.cb.seq(j, status, status == 0 ? op->seq : 0, arg);
		break;
	case SKALD_OP_SNAPSHOT_LOAD:
		op->front.cb.snapshot(j, status, op->loaded.data ? &op->loaded : NULL, arg);
		json_decref(op->loaded.data);
		break;
	default:
		op->front.cb.done(j, status, arg);
		break;
	}
	if (!(op->front.flags & OP_OWNED))
		free(op);
}

static void on_idle(uv_idle_t *h)
{
	skald_journal_t *j = h->data;
	/* Only what was issued or finished before this pass runs now:
	 * callbacks that issue new operations wait for the next pass, so the
	 * loop's other work is never starved. */
	size_t budget = j->nqueued;
	while (j->active == NULL && j->queue_head != NULL && budget-- > 0) {
		skald_op_t *op = j->queue_head;
		j->queue_head = op->front.next;
		if (j->queue_head == NULL)
			j->queue_tail = NULL;
		j->nqueued--;
		start_op(j, op);
	}
	skald_op_t *op = j->done_head;
	j->done_head = j->done_tail = NULL;
	while (op != NULL) {
		skald_op_t *next = op->front.next;
		complete(j, op);
		op = next;
	}
	if (j->done_head != NULL || (j->active == NULL && j->queue_head != NULL))
		return; /* more on the next pass */
	if (j->closing && j->active == NULL && j->queue_head == NULL && !j->store_closing) {
		j->store_closing = true;
		j->store->close(j->state, on_store_closed);
	}
	j->idle_on = false;
	uv_idle_stop(&j->idle);
	if (j->store_closed)
		uv_close((uv_handle_t *)&j->idle, on_idle_closed);
}

/* A new op of kind with room for the strings copied into it (NULL: none)
 * and for n write pointers. */
static skald_op_t *op_new(skald_op_kind_t kind, const char *s1, const char *s2, size_t n, void *arg)
{
	size_t l1 = s1 ? strlen(s1) + 1 : 0, l2 = s2 ? strlen(s2) + 1 : 0;
	skald_op_t *op = malloc(sizeof *op + n * sizeof(skald_write_t *) + l1 + l2);
	if (op == NULL)
		return NULL;
	*op = (skald_op_t){.kind = kind};
	op->front.arg = arg;
	char *p = (char *)(op + 1);
	if (n > 0) {
		op->writes = (skald_write_t **)(op + 1);
		p += n * sizeof(skald_write_t *);
	}
	if (s1) {
		op->persistence_id = memcpy(p, s1, l1);
		p += l1;
	}
	if (s2)
		op->after_id = memcpy(p, s2, l2);
	return op;
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

/* Checks the writes of op, all before changing any, so that a refused call
 * leaves them as they were; then numbers their events and submits op. */
static int append_submit(skald_journal_t *j, skald_op_t *op)
{
	for (size_t w = 0; w < op->nwrites; w++) {
		int rc = check_write(j, op->writes[w], w);
		if (rc != 0)
			return rc;
	}
	int64_t now = skald__now_ms();
	for (size_t w = 0; w < op->nwrites; w++) {
		skald_write_t *wr = op->writes[w];
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
	submit(j, op);
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
	skald_op_t *op = op_new(SKALD_OP_APPEND, NULL, NULL, nwrites, arg);
	if (op == NULL)
		return SKALD_ENOMEM;
	op->nwrites = nwrites;
	for (size_t w = 0; w < nwrites; w++)
		op->writes[w] = &writes[w];
	op->front.user_writes = writes;
	op->front.cb.append = cb;
	rc = append_submit(j, op);
	if (rc != 0)
		free(op);
	return rc;
}

int skald__journal_append_op(skald_journal_t *j, skald_op_t *op,
                             void (*done)(skald_op_t *op, int status), void *arg)
{
	int rc = check_handle(j);
	if (rc != 0)
		return rc;
	op->kind = SKALD_OP_APPEND;
	op->front.flags = OP_OWNED | OP_INTERNAL;
	op->front.cb.internal = done;
	op->front.arg = arg;
	return append_submit(j, op);
}

/* ------------------------------------------------------------------------ */
/* Streamed reads                                                            */

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
	skald_op_t *op = op_new(SKALD_OP_READ, persistence_id, NULL, 0, arg);
	if (op == NULL)
		return SKALD_ENOMEM;
	op->from = from ? from : 1;
	op->to = to;
	op->max = max;
	op->front.stream.events = on_events;
	op->front.cb.done = done;
	forget_bad_event(j);
	submit(j, op);
	return 0;
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
	skald_op_t *op = op_new(SKALD_OP_READ_ALL, NULL, NULL, 0, arg);
	if (op == NULL)
		return SKALD_ENOMEM;
	op->from = after;
	op->max = max;
	op->front.stream.events = on_events;
	op->front.cb.done = done;
	forget_bad_event(j);
	submit(j, op);
	return 0;
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
	skald_op_t *op = op_new(SKALD_OP_LIST_IDS, prefix, after, 0, arg);
	if (op == NULL)
		return SKALD_ENOMEM;
	op->max = max;
	op->front.stream.ids = on_ids;
	op->front.cb.done = done;
	submit(j, op);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Single-shot operations                                                    */

/* The checks every single-shot operation on one persistence id makes. */
static int check_single(skald_journal_t *j, const char *name, const char *pid, bool has_cb,
                        unsigned cap)
{
	int rc = check_handle(j);
	if (rc == 0)
		rc = check_pid(j, name, pid);
	if (rc != 0)
		return rc;
	if (!has_cb)
		return missing(j, name, "the callback");
	if ((j->store->caps & cap) != cap)
		return unsupported(j, name);
	return 0;
}

/* Submits a single-shot op of kind on pid with the seq bound to and the
 * callback cb. */
static int single(skald_journal_t *j, skald_op_kind_t kind, const char *pid, uint64_t to,
                  union skald__op_cb_u cb, void *arg)
{
	skald_op_t *op = op_new(kind, pid, NULL, 0, arg);
	if (op == NULL)
		return SKALD_ENOMEM;
	op->to = to;
	op->front.cb = cb;
	submit(j, op);
	return 0;
}

int skald_journal_highest(skald_journal_t *j, const char *persistence_id, skald_seq_fn cb,
                          void *arg)
{
	int rc = check_single(j, "highest", persistence_id, cb != NULL, 0);
	return rc != 0 ? rc
	               : single(j, SKALD_OP_HIGHEST, persistence_id, 0,
	                        (union skald__op_cb_u){.seq = cb}, arg);
}

int skald_journal_delete_to(skald_journal_t *j, const char *persistence_id, uint64_t to,
                            skald_done_fn cb, void *arg)
{
	int rc = check_single(j, "delete_to", persistence_id, cb != NULL, 0);
	return rc != 0 ? rc
	               : single(j, SKALD_OP_DELETE_TO, persistence_id, to,
	                        (union skald__op_cb_u){.done = cb}, arg);
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
	skald_op_t *op = op_new(SKALD_OP_SNAPSHOT_SAVE, snap->persistence_id, NULL, 0, arg);
	if (op == NULL)
		return SKALD_ENOMEM;
	op->snapshot = snap;
	op->to = snap->seq;
	op->front.cb.done = cb;
	submit(j, op);
	return 0;
}

int skald_journal_snapshot_load(skald_journal_t *j, const char *persistence_id, uint64_t max_seq,
                                skald_snapshot_fn cb, void *arg)
{
	int rc = check_single(j, "snapshot_load", persistence_id, cb != NULL, SKALD_CAP_SNAPSHOTS);
	return rc != 0 ? rc
	               : single(j, SKALD_OP_SNAPSHOT_LOAD, persistence_id, max_seq,
	                        (union skald__op_cb_u){.snapshot = cb}, arg);
}

int skald_journal_snapshot_delete(skald_journal_t *j, const char *persistence_id, uint64_t seq,
                                  skald_done_fn cb, void *arg)
{
	int rc =
	        check_single(j, "snapshot_delete", persistence_id, cb != NULL, SKALD_CAP_SNAPSHOTS);
	return rc != 0 ? rc
	               : single(j, SKALD_OP_SNAPSHOT_DELETE, persistence_id, seq,
	                        (union skald__op_cb_u){.done = cb}, arg);
}

int skald_journal_snapshot_delete_to(skald_journal_t *j, const char *persistence_id,
                                     uint64_t max_seq, skald_done_fn cb, void *arg)
{
	int rc = check_single(j, "snapshot_delete_to", persistence_id, cb != NULL,
	                      SKALD_CAP_SNAPSHOTS);
	return rc != 0 ? rc
	               : single(j, SKALD_OP_SNAPSHOT_DELETE_TO, persistence_id, max_seq,
	                        (union skald__op_cb_u){.done = cb}, arg);
}
