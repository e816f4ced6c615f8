/*
 * stores/memory/memory.c - the in-process journal store.
 *
 * URI: memory://NAME[?batch=N]
 *   NAME     handles opened with the same NAME in one process share the same
 *            data, across loops and threads, for the life of the process.
 *            An empty NAME (memory://) is a private database, dropped when
 *            its handle closes.
 *   batch=N  events (or ids) per streamed batch, 1..65536, default 1000.
 *
 * Every operation takes effect when it is called, under the database's
 * mutex, which makes operations linearizable across handles; only the
 * completion is deferred, to an idle handle on the caller's loop, so that no
 * callback runs before the call returns and every callback runs on its own
 * handle's loop. Streamed reads take one batch per loop iteration.
 *
 * Events are stored as private, frozen jansson trees: append copies the
 * caller's data (the copy is what tells a rejected event from a storable
 * one: jansson refuses invalid UTF-8, NaN and infinities, as a real backend
 * would), and no code ever modifies a stored tree. Readers get a new
 * reference to it, with no copy and no parsing; jansson's reference counts
 * are atomic, so readers on several threads may hold one tree at once. The
 * journal front copies a tree before an upcaster rewrites it (upcast.c).
 */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal/journal_int.h"
#include "base/hash.h"

/* Log entries a read_all looks at per loop iteration, so that a long run of
 * deleted events does not hold the database lock for long. */
#define MAX_SCAN 4096

/* ------------------------------------------------------------------------ */
/* The shared data                                                           */

typedef struct stored_s {
	json_t *data;     /* frozen; NULL once deleted */
	const char *type; /* interned in the database */
	int version;
	int64_t timestamp;
	uint64_t writer;
	uint64_t offset;
} stored_t;

typedef struct snaprec_s {
	uint64_t seq;
	int64_t timestamp;
	int version;
	json_t *data; /* frozen */
} snaprec_t;

/* One persistence id. Never freed while its database lives, so handles may
 * keep pointers to it (and to its id) across loop iterations. */
typedef struct stream_s {
	char *id;
	uint64_t hash;
	uint64_t highest;
	uint64_t deleted_to;
	stored_t *events; /* events[seq - 1], seq 1..highest */
	size_t cap;
	snaprec_t *snaps; /* ascending seq */
	size_t nsnaps, snapcap;
} stream_t;

/* The global order: log[offset - 1]. */
typedef struct logent_s {
	stream_t *s;
	uint64_t seq;
} logent_t;

typedef struct db_s {
	struct db_s *next;
	char *name; /* NULL: private to one handle */
	size_t refs;
	pthread_mutex_t lock; /* guards everything below */
	stream_t **slots;     /* open addressing, power-of-two size */
	size_t nslots, nstreams;
	char **types; /* interned type names, open addressing */
	size_t ntypeslots, ntypes;
	logent_t *log;
	size_t loglen, logcap;
} db_t;

static pthread_mutex_t dbs_lock = PTHREAD_MUTEX_INITIALIZER;
static db_t *dbs; /* named databases; guarded by dbs_lock */

static stream_t *stream_find(db_t *db, const char *id, uint64_t h)
{
	if (db->nslots == 0)
		return NULL;
	size_t mask = db->nslots - 1;
	for (size_t i = h & mask;; i = (i + 1) & mask) {
		stream_t *s = db->slots[i];
		if (s == NULL)
			return NULL;
		if (s->hash == h && strcmp(s->id, id) == 0)
			return s;
	}
}

static int slots_grow(db_t *db)
{
	size_t n = db->nslots ? db->nslots * 2 : 64;
	stream_t **slots = calloc(n, sizeof *slots);
	if (slots == NULL)
		return SKALD_ENOMEM;
	for (size_t i = 0; i < db->nslots; i++) {
		stream_t *s = db->slots[i];
		if (s == NULL)
			continue;
		size_t k = s->hash & (n - 1);
		while (slots[k])
			k = (k + 1) & (n - 1);
		slots[k] = s;
	}
	free(db->slots);
	db->slots = slots;
	db->nslots = n;
	return 0;
}

static stream_t *stream_get(db_t *db, const char *id)
{
	uint64_t h = skald__hash_str(id);
	stream_t *s = stream_find(db, id, h);
	if (s)
		return s;
	/* Keep the load under one half so probes stay short. */
	if ((db->nstreams + 1) * 2 > db->nslots && slots_grow(db) != 0)
		return NULL;
	s = calloc(1, sizeof *s);
	if (s == NULL || (s->id = strdup(id)) == NULL) {
		free(s);
		return NULL;
	}
	s->hash = h;
	size_t mask = db->nslots - 1;
	size_t k = h & mask;
	while (db->slots[k])
		k = (k + 1) & mask;
	db->slots[k] = s;
	db->nstreams++;
	return s;
}

/* The database's copy of a type name: thousands of events share a handful of
 * names, and readers may keep the pointer while the database lives. */
static const char *type_intern(db_t *db, const char *type)
{
	uint64_t h = skald__hash_str(type);
	if (db->ntypeslots) {
		size_t mask = db->ntypeslots - 1;
		for (size_t i = h & mask; db->types[i]; i = (i + 1) & mask)
			if (strcmp(db->types[i], type) == 0)
				return db->types[i];
	}
	if ((db->ntypes + 1) * 2 > db->ntypeslots) {
		size_t n = db->ntypeslots ? db->ntypeslots * 2 : 16;
		char **t = calloc(n, sizeof *t);
		if (t == NULL)
			return NULL;
		for (size_t i = 0; i < db->ntypeslots; i++) {
			if (db->types[i] == NULL)
				continue;
			size_t k = skald__hash_str(db->types[i]) & (n - 1);
			while (t[k])
				k = (k + 1) & (n - 1);
			t[k] = db->types[i];
		}
		free(db->types);
		db->types = t;
		db->ntypeslots = n;
	}
	char *copy = strdup(type);
	if (copy == NULL)
		return NULL;
	size_t k = h & (db->ntypeslots - 1);
	while (db->types[k])
		k = (k + 1) & (db->ntypeslots - 1);
	db->types[k] = copy;
	db->ntypes++;
	return copy;
}

/* Grows *arr (of elem-sized items, capacity *cap) to hold need items. */
static int reserve(void **arr, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap : 16;
	while (n < need)
		n *= 2;
	void *p = realloc(*arr, n * elem);
	if (p == NULL)
		return SKALD_ENOMEM;
	*arr = p;
	*cap = n;
	return 0;
}

static db_t *db_new(const char *name)
{
	db_t *db = calloc(1, sizeof *db);
	if (db == NULL)
		return NULL;
	if (name && (db->name = strdup(name)) == NULL) {
		free(db);
		return NULL;
	}
	pthread_mutex_init(&db->lock, NULL);
	return db;
}

static void db_free(db_t *db)
{
	for (size_t i = 0; i < db->nslots; i++) {
		stream_t *s = db->slots[i];
		if (s == NULL)
			continue;
		for (uint64_t k = 0; k < s->highest; k++)
			json_decref(s->events[k].data);
		for (size_t k = 0; k < s->nsnaps; k++)
			json_decref(s->snaps[k].data);
		free(s->events);
		free(s->snaps);
		free(s->id);
		free(s);
	}
	for (size_t i = 0; i < db->ntypeslots; i++)
		free(db->types[i]);
	free(db->types);
	free(db->slots);
	free(db->log);
	pthread_mutex_destroy(&db->lock);
	free(db->name);
	free(db);
}

static db_t *db_attach(const char *name)
{
	if (*name == '\0') {
		db_t *db = db_new(NULL);
		if (db)
			db->refs = 1;
		return db;
	}
	pthread_mutex_lock(&dbs_lock);
	db_t *db = dbs;
	while (db && strcmp(db->name, name) != 0)
		db = db->next;
	if (db == NULL && (db = db_new(name)) != NULL) {
		db->next = dbs;
		dbs = db;
	}
	if (db)
		db->refs++;
	pthread_mutex_unlock(&dbs_lock);
	return db;
}

static void db_detach(db_t *db)
{
	if (db->name == NULL) {
		db_free(db);
		return;
	}
	/* A named database outlives its handles, like a server would: a test
	 * or an application may close every handle and open it again. */
	pthread_mutex_lock(&dbs_lock);
	db->refs--;
	pthread_mutex_unlock(&dbs_lock);
}

/* ------------------------------------------------------------------------ */
/* Handles and deferred completions                                          */

enum op_kind {
	OP_DONE,
	OP_APPEND,
	OP_SEQ,
	OP_SNAPSHOT,
	OP_READ,
	OP_READ_ALL,
	OP_LIST,
};

typedef struct op_s {
	struct op_s *next;
	enum op_kind kind;
	int status;
	void *arg;
	skald_done_fn done; /* OP_DONE and the streams */
	union {
		struct {
			skald_append_fn cb;
			skald_write_t *writes;
			size_t n;
		} append;
		struct {
			skald_seq_fn cb;
			uint64_t seq;
		} seq;
		struct {
			skald_snapshot_fn cb;
			int found;
			skald_snapshot_t snap; /* data owned */
		} snap;
		struct {
			skald_events_fn cb;
			stream_t *s; /* NULL: unknown id, nothing to read */
			uint64_t next, to, left;
		} read;
		struct {
			skald_events_fn cb;
			uint64_t next, end, left; /* offsets */
		} all;
		struct {
			skald_ids_fn cb;
			skald_persistence_id_t *ids; /* strings owned by the db */
			size_t n, pos;
		} list;
	} u;
} op_t;

typedef struct mem_s {
	skald_journal_t *j;
	db_t *db;
	size_t batch;
	skald_event_t *evbuf; /* one batch of decoded events */
	uv_idle_t idle;
	int closing;
	void (*close_done)(skald_journal_t *j);
	op_t *head, *tail;
	size_t nops;
} mem_t;

static void on_idle(uv_idle_t *idle);

static op_t *op_new(enum op_kind kind, void *arg)
{
	op_t *op = calloc(1, sizeof *op);
	if (op) {
		op->kind = kind;
		op->arg = arg;
	}
	return op;
}

/* Queues op for completion on the handle's loop. */
static void defer(mem_t *m, op_t *op)
{
	op->next = NULL;
	if (m->tail)
		m->tail->next = op;
	else
		m->head = op;
	m->tail = op;
	if (m->nops++ == 0)
		uv_idle_start(&m->idle, on_idle);
}

static void decref_events(skald_event_t *ev, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		json_decref(ev[i].data);
		ev[i].data = NULL;
	}
}

/* Decodes a stored event into *out. Caller holds the db lock. */
static int decode_event(const stream_t *s, uint64_t seq, skald_event_t *out)
{
	const stored_t *st = &s->events[seq - 1];
	json_t *data = json_incref(st->data);
	if (data == NULL)
		return SKALD_EDECODE;
	*out = (skald_event_t){
	        .persistence_id = s->id,
	        .seq = seq,
	        .type = st->type,
	        .version = st->version,
	        .data = data,
	        .timestamp = st->timestamp,
	        .writer = st->writer,
	        .offset = st->offset,
	};
	return 0;
}

/* One loop iteration of a read: returns 1 when the op is finished. */
static int step_read(mem_t *m, op_t *op)
{
	stream_t *s = op->u.read.s;
	size_t n = 0;
	int rc = 0;
	if (s) {
		pthread_mutex_lock(&m->db->lock);
		uint64_t next = op->u.read.next;
		if (next <= s->deleted_to)
			next = s->deleted_to + 1;
		while (next <= op->u.read.to && n < m->batch && n < op->u.read.left) {
			rc = decode_event(s, next, &m->evbuf[n]);
			if (rc != 0)
				break;
			n++;
			next++;
		}
		pthread_mutex_unlock(&m->db->lock);
		op->u.read.next = next;
		op->u.read.left -= n;
	}
	if (rc == 0 && n > 0)
		rc = op->u.read.cb(m->j, m->evbuf, n, op->arg);
	/* The front may have swapped data (upcasting): release what the
	 * envelopes hold now. */
	decref_events(m->evbuf, n);
	if (rc != 0 || s == NULL || op->u.read.next > op->u.read.to || op->u.read.left == 0) {
		op->done(m->j, rc, op->arg);
		return 1;
	}
	return 0;
}

static int step_read_all(mem_t *m, op_t *op)
{
	size_t n = 0, scanned = 0;
	int rc = 0;
	db_t *db = m->db;
	pthread_mutex_lock(&db->lock);
	uint64_t next = op->u.all.next;
	while (next <= op->u.all.end && n < m->batch && n < op->u.all.left && scanned < MAX_SCAN) {
		const logent_t *le = &db->log[next - 1];
		next++;
		scanned++;
		if (le->seq <= le->s->deleted_to)
			continue;
		rc = decode_event(le->s, le->seq, &m->evbuf[n]);
		if (rc != 0)
			break;
		n++;
	}
	pthread_mutex_unlock(&db->lock);
	op->u.all.next = next;
	op->u.all.left -= n;
	if (rc == 0 && n > 0)
		rc = op->u.all.cb(m->j, m->evbuf, n, op->arg);
	decref_events(m->evbuf, n);
	if (rc != 0 || op->u.all.next > op->u.all.end || op->u.all.left == 0) {
		op->done(m->j, rc, op->arg);
		return 1;
	}
	return 0;
}

static int step_list(mem_t *m, op_t *op)
{
	size_t n = op->u.list.n - op->u.list.pos;
	if (n > m->batch)
		n = m->batch;
	int rc = 0;
	if (n > 0)
		rc = op->u.list.cb(m->j, op->u.list.ids + op->u.list.pos, n, op->arg);
	op->u.list.pos += n;
	if (rc != 0 || op->u.list.pos == op->u.list.n) {
		op->done(m->j, rc, op->arg);
		return 1;
	}
	return 0;
}

static void op_free(op_t *op)
{
	if (op->kind == OP_SNAPSHOT)
		json_decref(op->u.snap.snap.data);
	if (op->kind == OP_LIST)
		free(op->u.list.ids);
	free(op);
}

/* Runs one step of op; returns 1 when it has completed. */
static int run_op(mem_t *m, op_t *op)
{
	switch (op->kind) {
	case OP_DONE:
		op->done(m->j, op->status, op->arg);
		return 1;
	case OP_APPEND:
		op->u.append.cb(m->j, op->status, op->u.append.writes, op->u.append.n, op->arg);
		return 1;
	case OP_SEQ:
		op->u.seq.cb(m->j, op->status, op->u.seq.seq, op->arg);
		return 1;
	case OP_SNAPSHOT:
		op->u.snap.cb(m->j, op->status, op->u.snap.found ? &op->u.snap.snap : NULL,
		              op->arg);
		return 1;
	default:
		break;
	}
	/* A stream cut short by close ends with SKALD_ECANCELED and no further
	 * batch: the owner of the handle has said it wants to stop. */
	if (m->closing) {
		op->done(m->j, SKALD_ECANCELED, op->arg);
		return 1;
	}
	if (op->kind == OP_READ)
		return step_read(m, op);
	if (op->kind == OP_READ_ALL)
		return step_read_all(m, op);
	return step_list(m, op);
}

static void on_idle_closed(uv_handle_t *h)
{
	mem_t *m = h->data;
	m->close_done(m->j);
}

static void on_idle(uv_idle_t *idle)
{
	mem_t *m = idle->data;
	/* Only the ops queued before this iteration run now: callbacks that
	 * start new operations, and streams that go on, wait for the next one,
	 * so the loop's other work is never starved. */
	size_t n = m->nops;
	while (n-- > 0) {
		op_t *op = m->head;
		m->head = op->next;
		if (m->head == NULL)
			m->tail = NULL;
		m->nops--;
		if (run_op(m, op))
			op_free(op);
		else
			defer(m, op);
	}
	if (m->nops == 0) {
		uv_idle_stop(&m->idle);
		if (m->closing && !uv_is_closing((uv_handle_t *)&m->idle))
			uv_close((uv_handle_t *)&m->idle, on_idle_closed);
	}
}

/* ------------------------------------------------------------------------ */
/* The store table                                                           */

static int parse_options(mem_t *m, skald_journal_t *j, const char *q)
{
	while (*q) {
		const char *end = strchr(q, '&');
		size_t len = end ? (size_t)(end - q) : strlen(q);
		if (len > 6 && strncmp(q, "batch=", 6) == 0) {
			char err[128];
			if (skald__uri_batch("memory", q + 6, len - 6, &m->batch, err,
			                     sizeof err) != 0) {
				skald_journal_set_errmsg(j, "%s", err);
				return SKALD_EURI;
			}
		} else {
			skald_journal_set_errmsg(j,
			                         "memory journal URI: unknown option \"%.*s\"; the "
			                         "only option is batch=N (1..%d)",
			                         (int)(len > 64 ? 64 : len), q, SKALD__BATCH_MAX);
			return SKALD_EURI;
		}
		q += len;
		if (*q == '&')
			q++;
	}
	return 0;
}

static int mem_open(void *state, skald_journal_t *j, uv_loop_t *loop, const char *uri)
{
	mem_t *m = state;
	m->j = j;
	m->batch = SKALD__BATCH_DEFAULT;
	const char *rest = uri + strlen("memory:");
	if (strncmp(rest, "//", 2) != 0) {
		skald_journal_set_errmsg(j, "memory journal URI must look like memory://NAME "
		                            "(or memory:// for a private one)");
		return SKALD_EURI;
	}
	rest += 2;
	const char *q = strchr(rest, '?');
	size_t namelen = q ? (size_t)(q - rest) : strlen(rest);
	char *name = strndup(rest, namelen);
	if (name == NULL)
		return SKALD_ENOMEM;
	int rc = q ? parse_options(m, j, q + 1) : 0;
	if (rc == 0) {
		m->evbuf = calloc(m->batch, sizeof *m->evbuf);
		if (m->evbuf == NULL)
			rc = SKALD_ENOMEM;
	}
	if (rc == 0 && (m->db = db_attach(name)) == NULL)
		rc = SKALD_ENOMEM;
	free(name);
	if (rc != 0)
		return rc;
	/* Last, because it cannot fail and a failed open must leave no loop
	 * handle behind (fini cannot close one). */
	uv_idle_init(loop, &m->idle);
	m->idle.data = m;
	return 0;
}

static void mem_close(void *state, void (*done)(skald_journal_t *j))
{
	mem_t *m = state;
	m->closing = 1;
	m->close_done = done;
	/* Even with nothing queued, close completes from the loop, never from
	 * inside this call. */
	uv_idle_start(&m->idle, on_idle);
}

static void mem_fini(void *state)
{
	mem_t *m = state;
	while (m->head) {
		op_t *op = m->head;
		m->head = op->next;
		op_free(op);
	}
	if (m->db)
		db_detach(m->db);
	free(m->evbuf);
	m->db = NULL;
	m->evbuf = NULL;
}

/* A private copy of v, or NULL if v cannot be stored as JSON text: a string
 * or key that is not valid UTF-8 (possible through jansson's _nocheck
 * functions), or nesting deeper than SKALD_DATA_MAX_DEPTH (depth counts from
 * 1 for the data object). Constructors of jansson
 * validate as they build, so copying is also the check. */
static json_t *copy_valid(const json_t *v, int depth)
{
	if (depth > SKALD_DATA_MAX_DEPTH)
		return NULL;
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		json_t *o = json_object();
		if (o == NULL)
			return NULL;
		for (void *it = json_object_iter((json_t *)v); it != NULL;
		     it = json_object_iter_next((json_t *)v, it)) {
			json_t *c = copy_valid(json_object_iter_value(it), depth + 1);
			if (c == NULL ||
			    json_object_setn_new(o, json_object_iter_key(it),
			                         json_object_iter_key_len(it), c) != 0) {
				json_decref(o);
				return NULL;
			}
		}
		return o;
	}
	case JSON_ARRAY: {
		json_t *a = json_array();
		if (a == NULL)
			return NULL;
		for (size_t i = 0; i < json_array_size(v); i++) {
			json_t *c = copy_valid(json_array_get(v, i), depth + 1);
			if (c == NULL || json_array_append_new(a, c) != 0) {
				json_decref(a);
				return NULL;
			}
		}
		return a;
	}
	case JSON_STRING:
		return json_stringn(json_string_value(v), json_string_length(v));
	case JSON_INTEGER:
		return json_integer(json_integer_value(v));
	case JSON_REAL:
		return json_real(json_real_value(v));
	case JSON_TRUE:
	case JSON_FALSE:
	case JSON_NULL:
		/* Singletons in jansson: never freed, safe to share. */
		return (json_t *)v;
	}
	return NULL;
}

/* The stored form of data, which must be a JSON object. Returns NULL if it
 * cannot be stored (then the write is rejected). */
static json_t *freeze(const json_t *data)
{
	if (!json_is_object(data))
		return NULL;
	return copy_valid(data, 1);
}

/* Applies one frozen write. Caller holds the db lock. On success the trees
 * move into the database (set to NULL in frozen). */
static int apply_write(mem_t *m, skald_write_t *w, json_t **frozen)
{
	db_t *db = m->db;
	stream_t *s = stream_find(db, w->persistence_id, skald__hash_str(w->persistence_id));
	uint64_t highest = s ? s->highest : 0;
	if (highest != w->expected_seq) {
		skald_journal_set_errmsg(m->j,
		                         "append to \"%s\": expected highest seq %llu, but it is "
		                         "%llu (another writer appended first)",
		                         w->persistence_id, (unsigned long long)w->expected_seq,
		                         (unsigned long long)highest);
		return SKALD_ECONFLICT;
	}
	if (s == NULL && (s = stream_get(db, w->persistence_id)) == NULL)
		return SKALD_ENOMEM;
	size_t n = w->nevents;
	/* Reserve everything before the first change, so that running out of
	 * memory stores nothing. */
	if (reserve((void **)&s->events, &s->cap, highest + n, sizeof *s->events) ||
	    reserve((void **)&db->log, &db->logcap, db->loglen + n, sizeof *db->log))
		return SKALD_ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (type_intern(db, w->events[i].type) == NULL)
			return SKALD_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		skald_event_t *e = &w->events[i];
		uint64_t offset = ++db->loglen;
		s->events[highest + i] = (stored_t){
		        .data = frozen[i],
		        .type = type_intern(db, e->type),
		        .version = e->version,
		        .timestamp = e->timestamp,
		        .writer = e->writer,
		        .offset = offset,
		};
		db->log[offset - 1] = (logent_t){s, highest + 1 + i};
		frozen[i] = NULL;
		e->offset = offset;
	}
	s->highest = highest + n;
	return 0;
}

static int mem_append(void *state, skald_write_t *writes, size_t nwrites, skald_append_fn cb,
                      void *arg)
{
	mem_t *m = state;
	if (m->closing)
		return SKALD_ECLOSED;
	size_t total = 0;
	for (size_t w = 0; w < nwrites; w++)
		total += writes[w].nevents;
	op_t *op = op_new(OP_APPEND, arg);
	json_t **frozen = calloc(total, sizeof *frozen);
	if (op == NULL || frozen == NULL) {
		free(op);
		free(frozen);
		return SKALD_ENOMEM;
	}
	/* Copy outside the lock: it is the costly part, and a rejection needs
	 * no shared state. */
	size_t base = 0;
	for (size_t w = 0; w < nwrites; w++) {
		skald_write_t *wr = &writes[w];
		wr->status = 0;
		for (size_t i = 0; i < wr->nevents && wr->status == 0; i++) {
			frozen[base + i] = freeze(wr->events[i].data);
			if (frozen[base + i] == NULL) {
				skald_journal_set_errmsg(
				        m->j, "append to \"%s\" rejected: event seq %llu (%s) %s",
				        wr->persistence_id, (unsigned long long)wr->events[i].seq,
				        wr->events[i].type,
				        json_is_object(wr->events[i].data)
				                ? "cannot be stored (invalid UTF-8, or nested "
				                  "deeper "
				                  "than SKALD_DATA_MAX_DEPTH)"
				                : "has data that is not a JSON object");
				wr->status = SKALD_EREJECTED;
			}
		}
		base += wr->nevents;
	}
	pthread_mutex_lock(&m->db->lock);
	base = 0;
	for (size_t w = 0; w < nwrites; w++) {
		skald_write_t *wr = &writes[w];
		if (wr->status == 0)
			wr->status = apply_write(m, wr, frozen + base);
		base += wr->nevents;
	}
	pthread_mutex_unlock(&m->db->lock);
	for (size_t i = 0; i < total; i++)
		json_decref(frozen[i]);
	free(frozen);
	op->u.append.cb = cb;
	op->u.append.writes = writes;
	op->u.append.n = nwrites;
	defer(m, op);
	return 0;
}

static int mem_read(void *state, const char *pid, uint64_t from, uint64_t to, uint64_t max,
                    skald_events_fn on_events, skald_done_fn done, void *arg)
{
	mem_t *m = state;
	if (m->closing)
		return SKALD_ECLOSED;
	op_t *op = op_new(OP_READ, arg);
	if (op == NULL)
		return SKALD_ENOMEM;
	op->done = done;
	op->u.read.cb = on_events;
	pthread_mutex_lock(&m->db->lock);
	stream_t *s = stream_find(m->db, pid, skald__hash_str(pid));
	/* The range is fixed now, with `to` clamped to the highest: events
	 * appended while the read streams are not part of it. */
	if (s && s->highest > 0 && max > 0 && from <= to && from <= s->highest) {
		op->u.read.s = s;
		op->u.read.next = from;
		op->u.read.to = to < s->highest ? to : s->highest;
		op->u.read.left = max;
	}
	pthread_mutex_unlock(&m->db->lock);
	defer(m, op);
	return 0;
}

static int mem_highest(void *state, const char *pid, skald_seq_fn cb, void *arg)
{
	mem_t *m = state;
	if (m->closing)
		return SKALD_ECLOSED;
	op_t *op = op_new(OP_SEQ, arg);
	if (op == NULL)
		return SKALD_ENOMEM;
	op->u.seq.cb = cb;
	pthread_mutex_lock(&m->db->lock);
	stream_t *s = stream_find(m->db, pid, skald__hash_str(pid));
	op->u.seq.seq = s ? s->highest : 0;
	pthread_mutex_unlock(&m->db->lock);
	defer(m, op);
	return 0;
}

static int mem_delete_to(void *state, const char *pid, uint64_t to, skald_done_fn cb, void *arg)
{
	mem_t *m = state;
	if (m->closing)
		return SKALD_ECLOSED;
	op_t *op = op_new(OP_DONE, arg);
	if (op == NULL)
		return SKALD_ENOMEM;
	op->done = cb;
	pthread_mutex_lock(&m->db->lock);
	stream_t *s = stream_find(m->db, pid, skald__hash_str(pid));
	if (s) {
		if (to > s->highest)
			to = s->highest;
		/* Mark, and free the text: the entry stays for its offset and
		 * the highest seq, which must survive deletion. */
		for (uint64_t seq = s->deleted_to + 1; seq <= to; seq++) {
			json_decref(s->events[seq - 1].data);
			s->events[seq - 1].data = NULL;
		}
		if (to > s->deleted_to)
			s->deleted_to = to;
	}
	pthread_mutex_unlock(&m->db->lock);
	defer(m, op);
	return 0;
}

/* Index of the first snapshot with seq >= seq. Caller holds the lock. */
static size_t snap_lower(const stream_t *s, uint64_t seq)
{
	size_t lo = 0, hi = s->nsnaps;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->snaps[mid].seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int mem_snapshot_save(void *state, skald_snapshot_t *snap, skald_done_fn cb, void *arg)
{
	mem_t *m = state;
	if (m->closing)
		return SKALD_ECLOSED;
	op_t *op = op_new(OP_DONE, arg);
	if (op == NULL)
		return SKALD_ENOMEM;
	op->done = cb;
	json_t *frozen = freeze(snap->data);
	if (frozen == NULL) {
		skald_journal_set_errmsg(m->j,
		                         "snapshot of \"%s\" at seq %llu rejected: data is not "
		                         "a JSON object that can be stored (invalid UTF-8, or "
		                         "nested deeper than SKALD_DATA_MAX_DEPTH)",
		                         snap->persistence_id, (unsigned long long)snap->seq);
		op->status = SKALD_EREJECTED;
		defer(m, op);
		return 0;
	}
	pthread_mutex_lock(&m->db->lock);
	stream_t *s = stream_get(m->db, snap->persistence_id);
	if (s == NULL ||
	    reserve((void **)&s->snaps, &s->snapcap, s->nsnaps + 1, sizeof *s->snaps) != 0) {
		op->status = SKALD_ENOMEM;
	} else {
		size_t i = snap_lower(s, snap->seq);
		snaprec_t rec = {snap->seq, snap->timestamp, snap->version, frozen};
		if (i < s->nsnaps && s->snaps[i].seq == snap->seq) {
			json_decref(s->snaps[i].data);
		} else {
			memmove(&s->snaps[i + 1], &s->snaps[i], (s->nsnaps - i) * sizeof *s->snaps);
			s->nsnaps++;
		}
		s->snaps[i] = rec;
		frozen = NULL;
	}
	pthread_mutex_unlock(&m->db->lock);
	json_decref(frozen);
	defer(m, op);
	return 0;
}

static int mem_snapshot_load(void *state, const char *pid, uint64_t max_seq, skald_snapshot_fn cb,
                             void *arg)
{
	mem_t *m = state;
	if (m->closing)
		return SKALD_ECLOSED;
	op_t *op = op_new(OP_SNAPSHOT, arg);
	if (op == NULL)
		return SKALD_ENOMEM;
	op->u.snap.cb = cb;
	pthread_mutex_lock(&m->db->lock);
	stream_t *s = stream_find(m->db, pid, skald__hash_str(pid));
	if (s && s->nsnaps > 0) {
		/* The latest at or below max_seq is the one before the first
		 * above it. */
		size_t i = max_seq == SKALD_SEQ_MAX ? s->nsnaps : snap_lower(s, max_seq + 1);
		if (i > 0) {
			const snaprec_t *r = &s->snaps[i - 1];
			json_t *data = json_incref(r->data);
			if (data == NULL) {
				op->status = SKALD_EDECODE;
			} else {
				op->u.snap.found = 1;
				op->u.snap.snap = (skald_snapshot_t){s->id, r->seq, r->version,
				                                     data, r->timestamp};
			}
		}
	}
	pthread_mutex_unlock(&m->db->lock);
	defer(m, op);
	return 0;
}

/* Removes the snapshots [lo, hi) of s. Caller holds the lock. */
static void snap_remove(stream_t *s, size_t lo, size_t hi)
{
	for (size_t i = lo; i < hi; i++)
		json_decref(s->snaps[i].data);
	memmove(&s->snaps[lo], &s->snaps[hi], (s->nsnaps - hi) * sizeof *s->snaps);
	s->nsnaps -= hi - lo;
}

static int snapshot_delete_range(mem_t *m, const char *pid, uint64_t lo_seq, uint64_t hi_seq,
                                 skald_done_fn cb, void *arg)
{
	if (m->closing)
		return SKALD_ECLOSED;
	op_t *op = op_new(OP_DONE, arg);
	if (op == NULL)
		return SKALD_ENOMEM;
	op->done = cb;
	pthread_mutex_lock(&m->db->lock);
	stream_t *s = stream_find(m->db, pid, skald__hash_str(pid));
	if (s) {
		size_t lo = snap_lower(s, lo_seq);
		size_t hi = hi_seq == SKALD_SEQ_MAX ? s->nsnaps : snap_lower(s, hi_seq + 1);
		if (lo < hi)
			snap_remove(s, lo, hi);
	}
	pthread_mutex_unlock(&m->db->lock);
	defer(m, op);
	return 0;
}

static int mem_snapshot_delete(void *state, const char *pid, uint64_t seq, skald_done_fn cb,
                               void *arg)
{
	return snapshot_delete_range(state, pid, seq, seq, cb, arg);
}

static int mem_snapshot_delete_to(void *state, const char *pid, uint64_t max_seq, skald_done_fn cb,
                                  void *arg)
{
	return snapshot_delete_range(state, pid, 0, max_seq, cb, arg);
}

static int mem_read_all(void *state, uint64_t after, uint64_t max, skald_events_fn on_events,
                        skald_done_fn done, void *arg)
{
	mem_t *m = state;
	if (m->closing)
		return SKALD_ECLOSED;
	op_t *op = op_new(OP_READ_ALL, arg);
	if (op == NULL)
		return SKALD_ENOMEM;
	op->done = done;
	op->u.all.cb = on_events;
	pthread_mutex_lock(&m->db->lock);
	/* Offsets are assigned under the lock at commit, so the log has no
	 * gaps and its end now is a safe bound for this read. */
	op->u.all.end = m->db->loglen;
	pthread_mutex_unlock(&m->db->lock);
	op->u.all.next = after < SKALD_SEQ_MAX ? after + 1 : SKALD_SEQ_MAX;
	op->u.all.left = max;
	if (max == 0)
		op->u.all.end = 0;
	defer(m, op);
	return 0;
}

static int cmp_ids(const void *a, const void *b)
{
	const skald_persistence_id_t *x = a, *y = b;
	return strcmp(x->persistence_id, y->persistence_id);
}

static int mem_list_ids(void *state, const char *prefix, const char *after, uint64_t max,
                        skald_ids_fn on_ids, skald_done_fn done, void *arg)
{
	mem_t *m = state;
	if (m->closing)
		return SKALD_ECLOSED;
	op_t *op = op_new(OP_LIST, arg);
	if (op == NULL)
		return SKALD_ENOMEM;
	op->done = done;
	op->u.list.cb = on_ids;
	size_t plen = prefix ? strlen(prefix) : 0;
	int rc = 0;
	pthread_mutex_lock(&m->db->lock);
	size_t n = 0, cap = 0;
	skald_persistence_id_t *ids = NULL;
	for (size_t i = 0; i < m->db->nslots && rc == 0; i++) {
		stream_t *s = m->db->slots[i];
		if (s == NULL || s->highest == 0)
			continue;
		if (plen && strncmp(s->id, prefix, plen) != 0)
			continue;
		if (after && strcmp(s->id, after) <= 0)
			continue;
		rc = reserve((void **)&ids, &cap, n + 1, sizeof *ids);
		if (rc == 0)
			ids[n++] = (skald_persistence_id_t){s->id, s->highest};
	}
	pthread_mutex_unlock(&m->db->lock);
	if (rc != 0) {
		free(ids);
		free(op);
		return rc;
	}
	qsort(ids, n, sizeof *ids, cmp_ids);
	op->u.list.ids = ids;
	op->u.list.n = (uint64_t)n < max ? n : (size_t)max;
	defer(m, op);
	return 0;
}

static const skald_store_t memory_store = {
        .abi = SKALD_STORE_ABI,
        .schemes = {"memory"},
        .state_size = sizeof(mem_t),
        .caps = SKALD_CAP_ATOMIC_WRITES | SKALD_CAP_BATCHED_WRITES | SKALD_CAP_SNAPSHOTS |
                SKALD_CAP_QUERIES,
        .open = mem_open,
        .close = mem_close,
        .fini = mem_fini,
        .append = mem_append,
        .read = mem_read,
        .highest = mem_highest,
        .delete_to = mem_delete_to,
        .snapshot_save = mem_snapshot_save,
        .snapshot_load = mem_snapshot_load,
        .snapshot_delete = mem_snapshot_delete,
        .snapshot_delete_to = mem_snapshot_delete_to,
        .read_all = mem_read_all,
        .list_ids = mem_list_ids,
};

int skald__store_memory_register(void)
{
	return skald__registry_add(&memory_store);
}
