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
 * Every operation takes effect when the front starts it (at once when the
 * handle is idle), under the database's mutex, which makes operations
 * linearizable across handles; the front defers completions to the loop.
 * Streamed reads fix their range when they start, release the handle's turn
 * and take one batch per loop iteration from this store's idle handle.
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
/* Handles and streams                                                       */

/* A streamed operation, from its start to its finish. */
typedef struct mstream_s {
	struct mstream_s *next;
	skald_op_t *op;
	skald_op_kind_t kind; /* op's: op is the front's again once finished */
	union {
		struct {
			stream_t *s; /* NULL: unknown id, nothing to read */
			uint64_t next, to, left;
		} read;
		struct {
			uint64_t next, end, left; /* offsets */
		} all;
		struct {
			skald_persistence_id_t *ids; /* strings owned by the db */
			size_t n, pos;
		} list;
	} u;
} mstream_t;

typedef struct mem_s {
	skald_journal_t *j;
	db_t *db;
	size_t batch;
	skald_event_t *evbuf; /* one batch of decoded events */
	uv_idle_t idle;       /* steps the streams, one batch each per pass */
	int closing;
	void (*close_done)(skald_journal_t *j);
	mstream_t *head, *tail;
	size_t nstreams;
} mem_t;

static void on_idle(uv_idle_t *idle);

static void stream_push(mem_t *m, mstream_t *ms)
{
	ms->next = NULL;
	if (m->tail)
		m->tail->next = ms;
	else
		m->head = ms;
	m->tail = ms;
	if (m->nstreams++ == 0)
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

/* Delivers m->evbuf[0..n) unless rc is already an error, then releases
 * what the envelopes hold (the front may have swapped data: upcasting). */
static int deliver(mem_t *m, skald_op_t *op, size_t n, int rc)
{
	if (rc == 0)
		rc = skald_op_events(op, m->evbuf, n);
	decref_events(m->evbuf, n);
	return rc;
}

/* One loop iteration of a read: returns 1 when the op is finished. */
static int step_read(mem_t *m, mstream_t *ms)
{
	stream_t *s = ms->u.read.s;
	size_t n = 0;
	int rc = 0;
	if (s) {
		pthread_mutex_lock(&m->db->lock);
		uint64_t next = ms->u.read.next;
		if (next <= s->deleted_to)
			next = s->deleted_to + 1;
		while (next <= ms->u.read.to && n < m->batch && n < ms->u.read.left) {
			rc = decode_event(s, next, &m->evbuf[n]);
			if (rc != 0)
				break;
			n++;
			next++;
		}
		pthread_mutex_unlock(&m->db->lock);
		ms->u.read.next = next;
		ms->u.read.left -= n;
	}
	rc = deliver(m, ms->op, n, rc);
	if (rc != 0 || s == NULL || ms->u.read.next > ms->u.read.to || ms->u.read.left == 0) {
		skald_op_finish(ms->op, rc);
		return 1;
	}
	return 0;
}

static int step_read_all(mem_t *m, mstream_t *ms)
{
	size_t n = 0, scanned = 0;
	int rc = 0;
	db_t *db = m->db;
	pthread_mutex_lock(&db->lock);
	uint64_t next = ms->u.all.next;
	while (next <= ms->u.all.end && n < m->batch && n < ms->u.all.left && scanned < MAX_SCAN) {
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
	ms->u.all.next = next;
	ms->u.all.left -= n;
	rc = deliver(m, ms->op, n, rc);
	if (rc != 0 || ms->u.all.next > ms->u.all.end || ms->u.all.left == 0) {
		skald_op_finish(ms->op, rc);
		return 1;
	}
	return 0;
}

static int step_list(mem_t *m, mstream_t *ms)
{
	size_t n = ms->u.list.n - ms->u.list.pos;
	if (n > m->batch)
		n = m->batch;
	int rc = skald_op_ids(ms->op, ms->u.list.ids + ms->u.list.pos, n);
	ms->u.list.pos += n;
	if (rc != 0 || ms->u.list.pos == ms->u.list.n) {
		skald_op_finish(ms->op, rc);
		return 1;
	}
	return 0;
}

static void mstream_free(mstream_t *ms)
{
	if (ms->kind == SKALD_OP_LIST_IDS)
		free(ms->u.list.ids);
	free(ms);
}

static void on_idle_closed(uv_handle_t *h)
{
	mem_t *m = h->data;
	m->close_done(m->j);
}

static void on_idle(uv_idle_t *idle)
{
	mem_t *m = idle->data;
	/* One batch of each stream that was running before this iteration:
	 * streams started from a callback wait for the next one, so the
	 * loop's other work is never starved. */
	size_t n = m->nstreams;
	while (n-- > 0) {
		mstream_t *ms = m->head;
		m->head = ms->next;
		if (m->head == NULL)
			m->tail = NULL;
		m->nstreams--;
		int done = ms->kind == SKALD_OP_READ       ? step_read(m, ms)
		           : ms->kind == SKALD_OP_READ_ALL ? step_read_all(m, ms)
		                                           : step_list(m, ms);
		if (done)
			mstream_free(ms);
		else
			stream_push(m, ms);
	}
	if (m->nstreams == 0) {
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
	/* Even with no stream running, close completes from the loop, never
	 * from inside this call; a running stream ends at its next batch,
	 * which the front cancels. */
	uv_idle_start(&m->idle, on_idle);
}

static void mem_fini(void *state)
{
	mem_t *m = state;
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

/* The stored form of data, or NULL with the reason in why (a phrase after
 * "data ...") when it cannot be stored (then the write is rejected): the
 * rules of every store (skald__data_check), then the copy, which checks
 * UTF-8. */
static json_t *freeze(const json_t *data, char *why, size_t whylen)
{
	if (skald__data_check(data, why, whylen) != 0)
		return NULL;
	json_t *copy = copy_valid(data, 1);
	if (copy == NULL)
		snprintf(why, whylen, "holds invalid UTF-8");
	return copy;
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

static void mem_append(mem_t *m, skald_op_t *op)
{
	size_t total = 0;
	for (size_t w = 0; w < op->nwrites; w++)
		total += op->writes[w]->nevents;
	json_t **frozen = calloc(total, sizeof *frozen);
	if (frozen == NULL) {
		skald_op_finish(op, SKALD_ENOMEM);
		return;
	}
	/* Copy outside the lock: it is the costly part, and a rejection needs
	 * no shared state. */
	size_t base = 0;
	for (size_t w = 0; w < op->nwrites; w++) {
		skald_write_t *wr = op->writes[w];
		wr->status = 0;
		for (size_t i = 0; i < wr->nevents && wr->status == 0; i++) {
			char why[160];
			frozen[base + i] = freeze(wr->events[i].data, why, sizeof why);
			if (frozen[base + i] == NULL) {
				skald_journal_set_errmsg(
				        m->j,
				        "append to \"%s\" rejected: event seq %llu (%s): data %s",
				        wr->persistence_id, (unsigned long long)wr->events[i].seq,
				        wr->events[i].type, why);
				wr->status = SKALD_EREJECTED;
			}
		}
		base += wr->nevents;
	}
	pthread_mutex_lock(&m->db->lock);
	base = 0;
	for (size_t w = 0; w < op->nwrites; w++) {
		skald_write_t *wr = op->writes[w];
		if (wr->status == 0)
			wr->status = apply_write(m, wr, frozen + base);
		base += wr->nevents;
	}
	pthread_mutex_unlock(&m->db->lock);
	for (size_t i = 0; i < total; i++)
		json_decref(frozen[i]);
	free(frozen);
	skald_op_finish(op, 0);
}

/* Starts a streamed op: its range is fixed now, so later operations of the
 * handle may run while it streams, one batch per loop iteration. */
static void stream_start(mem_t *m, skald_op_t *op)
{
	mstream_t *ms = calloc(1, sizeof *ms);
	if (ms == NULL) {
		skald_op_finish(op, SKALD_ENOMEM);
		return;
	}
	ms->op = op;
	ms->kind = op->kind;
	db_t *db = m->db;
	pthread_mutex_lock(&db->lock);
	if (op->kind == SKALD_OP_READ) {
		stream_t *s =
		        stream_find(db, op->persistence_id, skald__hash_str(op->persistence_id));
		/* `to` is clamped to the highest: events appended while the
		 * read streams are not part of it. */
		if (s && s->highest > 0 && op->max > 0 && op->from <= op->to &&
		    op->from <= s->highest) {
			ms->u.read.s = s;
			ms->u.read.next = op->from;
			ms->u.read.to = op->to < s->highest ? op->to : s->highest;
			ms->u.read.left = op->max;
		}
	} else {
		/* Offsets are assigned under the lock at commit, so the log has
		 * no gaps and its end now is a safe bound for this read. */
		ms->u.all.end = op->max == 0 ? 0 : db->loglen;
		ms->u.all.next = op->from < SKALD_SEQ_MAX ? op->from + 1 : SKALD_SEQ_MAX;
		ms->u.all.left = op->max;
	}
	pthread_mutex_unlock(&db->lock);
	stream_push(m, ms);
	skald_op_release(op);
}

static void mem_highest(mem_t *m, skald_op_t *op)
{
	pthread_mutex_lock(&m->db->lock);
	stream_t *s = stream_find(m->db, op->persistence_id, skald__hash_str(op->persistence_id));
	op->seq = s ? s->highest : 0;
	pthread_mutex_unlock(&m->db->lock);
	skald_op_finish(op, 0);
}

static void mem_delete_to(mem_t *m, skald_op_t *op)
{
	pthread_mutex_lock(&m->db->lock);
	stream_t *s = stream_find(m->db, op->persistence_id, skald__hash_str(op->persistence_id));
	if (s) {
		uint64_t to = op->to > s->highest ? s->highest : op->to;
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
	skald_op_finish(op, 0);
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

static void mem_snapshot_save(mem_t *m, skald_op_t *op)
{
	skald_snapshot_t *snap = op->snapshot;
	char why[160];
	json_t *frozen = freeze(snap->data, why, sizeof why);
	if (frozen == NULL) {
		skald_journal_set_errmsg(m->j, "snapshot of \"%s\" at seq %llu rejected: data %s",
		                         snap->persistence_id, (unsigned long long)snap->seq, why);
		skald_op_finish(op, SKALD_EREJECTED);
		return;
	}
	int status = 0;
	pthread_mutex_lock(&m->db->lock);
	stream_t *s = stream_get(m->db, snap->persistence_id);
	if (s == NULL ||
	    reserve((void **)&s->snaps, &s->snapcap, s->nsnaps + 1, sizeof *s->snaps) != 0) {
		status = SKALD_ENOMEM;
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
	skald_op_finish(op, status);
}

static void mem_snapshot_load(mem_t *m, skald_op_t *op)
{
	int status = 0;
	pthread_mutex_lock(&m->db->lock);
	stream_t *s = stream_find(m->db, op->persistence_id, skald__hash_str(op->persistence_id));
	if (s && s->nsnaps > 0) {
		/* The latest at or below the bound is the one before the first
		 * above it. */
		size_t i = op->to == SKALD_SEQ_MAX ? s->nsnaps : snap_lower(s, op->to + 1);
		if (i > 0) {
			const snaprec_t *r = &s->snaps[i - 1];
			json_t *data = json_incref(r->data);
			if (data == NULL)
				status = SKALD_EDECODE;
			else
				op->loaded = (skald_snapshot_t){op->persistence_id, r->seq,
				                                r->version, data, r->timestamp};
		}
	}
	pthread_mutex_unlock(&m->db->lock);
	skald_op_finish(op, status);
}

/* Removes the snapshots with lo_seq <= seq <= hi_seq. */
static void mem_snapshot_delete(mem_t *m, skald_op_t *op, uint64_t lo_seq, uint64_t hi_seq)
{
	pthread_mutex_lock(&m->db->lock);
	stream_t *s = stream_find(m->db, op->persistence_id, skald__hash_str(op->persistence_id));
	if (s) {
		size_t lo = snap_lower(s, lo_seq);
		size_t hi = hi_seq == SKALD_SEQ_MAX ? s->nsnaps : snap_lower(s, hi_seq + 1);
		if (lo < hi) {
			for (size_t i = lo; i < hi; i++)
				json_decref(s->snaps[i].data);
			memmove(&s->snaps[lo], &s->snaps[hi], (s->nsnaps - hi) * sizeof *s->snaps);
			s->nsnaps -= hi - lo;
		}
	}
	pthread_mutex_unlock(&m->db->lock);
	skald_op_finish(op, 0);
}

static int cmp_ids(const void *a, const void *b)
{
	const skald_persistence_id_t *x = a, *y = b;
	return strcmp(x->persistence_id, y->persistence_id);
}

static void mem_list_ids(mem_t *m, skald_op_t *op)
{
	const char *prefix = op->persistence_id, *after = op->after_id;
	size_t plen = prefix ? strlen(prefix) : 0;
	mstream_t *ms = calloc(1, sizeof *ms);
	int rc = ms ? 0 : SKALD_ENOMEM;
	size_t n = 0, cap = 0;
	skald_persistence_id_t *ids = NULL;
	pthread_mutex_lock(&m->db->lock);
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
		free(ms);
		skald_op_finish(op, rc);
		return;
	}
	qsort(ids, n, sizeof *ids, cmp_ids);
	ms->op = op;
	ms->kind = op->kind;
	ms->u.list.ids = ids;
	ms->u.list.n = (uint64_t)n < op->max ? n : (size_t)op->max;
	stream_push(m, ms);
	skald_op_release(op);
}

static void mem_start(void *state, skald_op_t *op)
{
	mem_t *m = state;
	switch (op->kind) {
	case SKALD_OP_APPEND:
		mem_append(m, op);
		return;
	case SKALD_OP_READ:
	case SKALD_OP_READ_ALL:
		stream_start(m, op);
		return;
	case SKALD_OP_LIST_IDS:
		mem_list_ids(m, op);
		return;
	case SKALD_OP_HIGHEST:
		mem_highest(m, op);
		return;
	case SKALD_OP_DELETE_TO:
		mem_delete_to(m, op);
		return;
	case SKALD_OP_SNAPSHOT_SAVE:
		mem_snapshot_save(m, op);
		return;
	case SKALD_OP_SNAPSHOT_LOAD:
		mem_snapshot_load(m, op);
		return;
	case SKALD_OP_SNAPSHOT_DELETE:
		mem_snapshot_delete(m, op, op->to, op->to);
		return;
	case SKALD_OP_SNAPSHOT_DELETE_TO:
		mem_snapshot_delete(m, op, 0, op->to);
		return;
	}
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
        .start = mem_start,
};

int skald__store_memory_register(void)
{
	return skald__registry_add(&memory_store);
}
