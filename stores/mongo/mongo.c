/*
 * stores/mongo/mongo.c - the MongoDB journal store.
 *
 * URI: mongodb://[USER:PASS@]HOST[:PORT][,HOST...]/DB[?OPTIONS]
 *      (mongodb+srv:// too). DB is required. Options are libmongoc's (e.g.
 *      serverSelectionTimeoutMS, replicaSet, tls) plus Skald's own:
 *   batch=N          events (or ids) per streamed batch, 1..65536, default 1000
 *   gapTimeoutMS=N   how long a global-order reader waits for a write that is
 *                    listed in the order but not stored yet before it fences
 *                    it off (see "Global order"), default 5000
 * Unless the URI sets them, serverSelectionTimeoutMS is 5000 and
 * socketTimeoutMS 60000, so that a lost server fails writes in seconds.
 *
 * The store is written against the MongoDB wire protocol and needs nothing
 * a MongoDB server lacks without transactions: it uses single-document
 * atomicity, the uniqueness of _id, and nothing else, so that it runs on a
 * standalone MongoDB, a replica set, and FerretDB 1.x (which has neither
 * multi-document transactions nor change streams). Where FerretDB refuses a
 * form MongoDB accepts, the form both accept is used (noted where it
 * happens). The database must be migrated first (`skald migrate`, from
 * migrations/mongo/): until then every operation fails with SKALD_ESCHEMA.
 *
 * Threading
 * ---------
 * libmongoc blocks, so it never runs on the caller's loop. Each handle owns
 * one worker thread; handles on the same URI in a process share one
 * mongoc_client_pool_t (and the caches below). An operation is queued to the
 * worker, which pops a client from the pool, runs it, and queues the result
 * back; a uv_async_t wakes the handle's loop, which runs the completion.
 * Completions therefore run exactly once, on the handle's loop, and never
 * before the operation returned. One worker per handle runs the handle's
 * operations one after another, in the order they were issued, which is the
 * ordering the store contract asks for. A streamed read fetches one batch
 * per turn, hands it to the loop, and is queued again only after the loop
 * has delivered it: memory stays bounded and other operations interleave.
 *
 * Documents
 * ---------
 * skald_events: one document per atomic write,
 *   {_id: "PID@PREV", pid, prev, to, n, off, ev: [{t, v, ts, w, d|j}...],
 *    del?, void?}
 * holding the events seq prev+1 .. to (n = to - prev of them), whose global
 * offsets are off .. off+n-1. A single insert stores the whole write or
 * nothing: that is the atomic write, without a transaction.
 *
 * Uniqueness: the _id "PID@PREV" is the write's claim on the slot right after
 * seq PREV. Two writers that both expect PREV race for the same _id and
 * exactly one insert wins; the other gets a duplicate key error, which is
 * SKALD_ECONFLICT. That alone does not stop overlap: writer A expecting 4
 * ([5,6], _id @4) and writer B expecting 5 ([6,7], _id @5) have distinct
 * _ids. So a write is inserted only when its PREV is a *boundary*: 0, or the
 * `to` of a stored document. Then the documents of an id form one chain
 * 0 -> to1 -> to2 -> ...: each document starts right after a boundary, and
 * each boundary has at most one successor (the _id), so ranges never
 * overlap and no two events with the same (persistence id, seq) can ever be
 * stored. In the example, B can only have expected 5 if a document ending at
 * 5 exists; A's document would then start inside it, so 4 is not a
 * boundary and A is refused before inserting. Boundaries are permanent
 * (documents are never removed; deletion empties them), so a check made
 * before the insert cannot be invalidated by the time the insert runs: the
 * only race left is for the successor slot, which _id settles. The check is
 * nearly free: a process remembers, per id, the last boundary it saw (its own
 * writes, replays, highest reads), and an entity's next write expects
 * exactly that. Otherwise it walks the chain by _id to the highest seq
 * (expected == highest is the only case that may proceed).
 *
 * Payloads: an events document larger than INLINE_MAX keeps its events in
 * a document of skald_payloads instead, named by its "pl" field and inserted
 * before it (the events document is still the write's commit). Lookups by
 * _id then read small documents only: some servers (FerretDB 1.x with
 * SQLite) answer every lookup by scanning the whole collection, at a cost
 * that grows with the bytes stored in it.
 *
 * Highest: walk the chain by _id from a known boundary until a slot is free.
 * Each id has a document in skald_heads ({_id: PID, h}) holding a hint (a
 * boundary, refreshed every PID_HINT_EVERY writes), which also lists the ids.
 * Deletion sets `del` (events seq <= del are gone) and empties `ev` of
 * documents wholly deleted; the document stays, so the highest survives.
 *
 * Global order
 * ------------
 * Offsets are allocated by a second chain, skald_order, one "manifest" per
 * append (per round of chained writes): {_id: P, n, w: [{p, e, c}...]}
 * covers offsets P+1 .. P+n, listing the writes (pid, prev, count) in order,
 * and is inserted *before* their event documents. The manifest's _id is the
 * last offset of the previous one, so manifests chain exactly as event
 * documents do: inserting at the current end is the allocation, and a
 * concurrent writer that took the slot makes the insert fail and the writer
 * moves on to the next end. There are no gaps between manifests, ever.
 *
 * A reader (read_all) walks manifests by _id and, for each listed write,
 * fetches its event document by _id: present with the listed `off`, it is
 * delivered; present with another `off`, the listed write lost its race
 * (conflict) and is skipped; absent, the write is in flight, and the reader
 * waits. If it is still absent after gapTimeoutMS, the reader inserts a
 * "void" document at that _id (the write's own slot, with its seq range and
 * offsets): either the void or the real document wins the _id, and whichever
 * does is final. So once a reader has passed an offset, no event can ever
 * appear there: the order never skips an event that commits later, with no
 * assumption about clocks or timing (gapTimeoutMS only decides how long a
 * slow writer may take before it is fenced off; a fenced writer's insert
 * fails and it reports a failure). A void document is part of its id's
 * chain: the seqs of a write that failed this way are burnt (highest
 * includes them, replay skips them).
 *
 * Costs per append: one insert of the manifest and one insert_many of the
 * event documents (plus, for ids written for the first time, one insert_many
 * into skald_heads). Every lookup is by _id, the one access path that every
 * MongoDB-wire server serves from an index (FerretDB 1.x with SQLite pushes
 * down no other filter). Replays of long histories switch from the _id walk
 * to one range query ({pid, to >= from}, index pid_to) after WALK_LIMIT
 * documents.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "journal/journal_int.h"
#include "base/hash.h"
#include "stores/mongo/mongo_int.h"

#define DEFAULT_GAP_MS 5000
/* _id lookups a chain walk makes before it switches to a range query. */
#define WALK_LIMIT 32
/* Events ahead of a replay from which it reads by range query at once. */
#define LONG_READ 256
/* Writes of an id between two refreshes of its hint, and manifests (or
 * steps along the order chain) between two refreshes of the order's. */
#define PID_HINT_EVERY 64
#define HINT_EVERY     16
/* Writes per manifest: bounds the manifest's size, far below 16 MiB. */
#define MAX_ROUND 4096
/* Largest event document: MongoDB's 16 MiB, less room for the envelope. */
#define MAX_DOC (16 * 1024 * 1024 - 16 * 1024)
/* An events document larger than this keeps its events in a document of
 * skald_payloads (see "Payloads" at the top). */
#define INLINE_MAX (8 * 1024)
/* Entries of the boundary cache before it is cleared. */
#define MAX_CACHE (1u << 17)

#define ERR_DUPLICATE_KEY 11000
#define INT64_LIMIT       ((uint64_t)INT64_MAX)

/* ------------------------------------------------------------------------ */
/* Backends: one client pool and its caches per URI, shared in the process   */

typedef struct cache_ent_s {
	char *pid;
	uint64_t hash;
	uint64_t boundary;   /* a seq known to end a stored document */
	uint32_t since_hint; /* writes since the id's hint was refreshed */
} cache_ent_t;

typedef struct backend_s {
	struct backend_s *next;
	char *key; /* the URI handed to libmongoc */
	size_t refs;
	mongoc_uri_t *uri;
	mongoc_client_pool_t *pool;
	char *db;
	atomic_int schema_ok;
	pthread_mutex_t lock; /* guards the cache */
	cache_ent_t *slots;
	size_t nslots, nused;
	/* Serialises this process's manifest inserts, so that its handles do
	 * not race each other for the end of the order chain. */
	pthread_mutex_t order_lock;
	int order_known;
	uint64_t order_end;
	unsigned order_since_hint;
} backend_t;

static pthread_mutex_t backends_lock = PTHREAD_MUTEX_INITIALIZER;
static backend_t *backends;
static pthread_once_t mongoc_once = PTHREAD_ONCE_INIT;

/* libmongoc ends a client's server sessions with "endSessions", which
 * FerretDB does not implement: it would log a warning at every pool's end.
 * Its debug chatter (every failed heartbeat) is dropped too; warnings and
 * errors go to libmongoc's own handler. */
static void log_filter(mongoc_log_level_t level, const char *domain, const char *message, void *arg)
{
	if (level > MONGOC_LOG_LEVEL_WARNING ||
	    (level == MONGOC_LOG_LEVEL_WARNING && strstr(message, "endSessions") != NULL))
		return;
	mongoc_log_default_handler(level, domain, message, arg);
}

static void init_mongoc(void)
{
	mongoc_init();
	mongoc_log_set_handler(log_filter, NULL);
}

static void cache_clear_locked(backend_t *be)
{
	for (size_t i = 0; i < be->nslots; i++)
		free(be->slots[i].pid);
	free(be->slots);
	be->slots = NULL;
	be->nslots = be->nused = 0;
}

static cache_ent_t *cache_find_locked(backend_t *be, const char *pid, uint64_t h)
{
	if (be->nslots == 0)
		return NULL;
	size_t mask = be->nslots - 1;
	for (size_t i = h & mask;; i = (i + 1) & mask) {
		cache_ent_t *e = &be->slots[i];
		if (e->pid == NULL)
			return NULL;
		if (e->hash == h && strcmp(e->pid, pid) == 0)
			return e;
	}
}

static cache_ent_t *cache_add_locked(backend_t *be, const char *pid, uint64_t h)
{
	if (be->nused >= MAX_CACHE)
		cache_clear_locked(be);
	if ((be->nused + 1) * 2 > be->nslots) {
		size_t n = be->nslots ? be->nslots * 2 : 256;
		cache_ent_t *slots = calloc(n, sizeof *slots);
		if (slots == NULL)
			return NULL;
		for (size_t i = 0; i < be->nslots; i++) {
			if (be->slots[i].pid == NULL)
				continue;
			size_t k = be->slots[i].hash & (n - 1);
			while (slots[k].pid)
				k = (k + 1) & (n - 1);
			slots[k] = be->slots[i];
		}
		free(be->slots);
		be->slots = slots;
		be->nslots = n;
	}
	size_t mask = be->nslots - 1;
	size_t k = h & mask;
	while (be->slots[k].pid)
		k = (k + 1) & mask;
	char *copy = strdup(pid);
	if (copy == NULL)
		return NULL;
	be->slots[k] = (cache_ent_t){copy, h, 0, 0};
	be->nused++;
	return &be->slots[k];
}

/* The last boundary known for pid, in *boundary; 0 when none is known. */
static int cache_get(backend_t *be, const char *pid, uint64_t *boundary)
{
	pthread_mutex_lock(&be->lock);
	cache_ent_t *e = cache_find_locked(be, pid, skald__hash_str(pid));
	if (e)
		*boundary = e->boundary;
	pthread_mutex_unlock(&be->lock);
	return e != NULL;
}

/*
 * Records that boundary ends a stored document of pid (keeping the highest
 * known), counting a write when wrote is set. Returns the writes since the
 * hint was last refreshed, and resets that count when it reaches
 * PID_HINT_EVERY (the caller then refreshes the hint).
 */
static uint32_t cache_put(backend_t *be, const char *pid, uint64_t boundary, int wrote)
{
	uint64_t h = skald__hash_str(pid);
	uint32_t since = 0;
	pthread_mutex_lock(&be->lock);
	cache_ent_t *e = cache_find_locked(be, pid, h);
	if (e == NULL)
		e = cache_add_locked(be, pid, h);
	if (e) {
		if (boundary > e->boundary)
			e->boundary = boundary;
		if (wrote)
			since = ++e->since_hint;
		if (since >= PID_HINT_EVERY)
			e->since_hint = 0;
	}
	pthread_mutex_unlock(&be->lock);
	return since;
}

/* Forgets pid's boundary: after a conflict, another writer moved it on. */
static void cache_drop(backend_t *be, const char *pid)
{
	uint64_t h = skald__hash_str(pid);
	pthread_mutex_lock(&be->lock);
	cache_ent_t *e = cache_find_locked(be, pid, h);
	if (e)
		e->boundary = 0;
	pthread_mutex_unlock(&be->lock);
}

static void backend_free(backend_t *be)
{
	if (be->pool)
		mongoc_client_pool_destroy(be->pool);
	if (be->uri)
		mongoc_uri_destroy(be->uri);
	cache_clear_locked(be);
	pthread_mutex_destroy(&be->lock);
	pthread_mutex_destroy(&be->order_lock);
	free(be->key);
	free(be->db);
	free(be);
}

/* The backend for the mongoc URI text key (parsed as uri), created on first
 * use. Takes ownership of uri on success. */
static backend_t *backend_attach(const char *key, mongoc_uri_t *uri, const char *db)
{
	pthread_mutex_lock(&backends_lock);
	backend_t *be = backends;
	while (be && strcmp(be->key, key) != 0)
		be = be->next;
	if (be) {
		be->refs++;
		pthread_mutex_unlock(&backends_lock);
		mongoc_uri_destroy(uri);
		return be;
	}
	be = calloc(1, sizeof *be);
	if (be == NULL || (be->key = strdup(key)) == NULL || (be->db = strdup(db)) == NULL) {
		if (be) {
			free(be->key);
			free(be);
		}
		pthread_mutex_unlock(&backends_lock);
		return NULL;
	}
	pthread_mutex_init(&be->lock, NULL);
	pthread_mutex_init(&be->order_lock, NULL);
	be->uri = uri;
	/* The pool only prepares here; it connects on the first pop, on a
	 * worker thread. */
	be->pool = mongoc_client_pool_new(uri);
	if (be->pool == NULL) {
		be->uri = NULL;
		backend_free(be);
		pthread_mutex_unlock(&backends_lock);
		return NULL;
	}
	mongoc_client_pool_set_error_api(be->pool, MONGOC_ERROR_API_VERSION_2);
	if (mongoc_uri_get_appname(uri) == NULL)
		mongoc_client_pool_set_appname(be->pool, "skald");
	be->refs = 1;
	be->next = backends;
	backends = be;
	pthread_mutex_unlock(&backends_lock);
	return be;
}

/* A backend outlives its handles, as a connection pool should: a handle
 * opened again later finds its connections and caches (above all the end of
 * the order chain) still there. Backends live until the process exits. */
static void backend_detach(backend_t *be)
{
	pthread_mutex_lock(&backends_lock);
	be->refs--;
	pthread_mutex_unlock(&backends_lock);
}

/* ------------------------------------------------------------------------ */
/* URIs                                                                      */

typedef struct uri_opts_s {
	size_t batch;
	int64_t gap_ms;
} uri_opts_t;

/* Options libmongoc takes that its option_is_* functions do not report. */
static int mongoc_special_option(const char *key)
{
	static const char *const special[] = {"readpreferencetags",
	                                      "authmechanismproperties",
	                                      "authsource",
	                                      "authmechanism",
	                                      "appname",
	                                      "compressors",
	                                      "replicaset",
	                                      "readpreference",
	                                      "readconcernlevel",
	                                      "w",
	                                      "gssapiservicename"};
	for (size_t i = 0; i < sizeof special / sizeof *special; i++)
		if (strcasecmp(key, special[i]) == 0)
			return 1;
	return 0;
}

static int parse_number(const char *v, size_t len, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char buf[24];
	if (len == 0 || len >= sizeof buf)
		return -1;
	memcpy(buf, v, len);
	buf[len] = '\0';
	char *end;
	unsigned long long n = strtoull(buf, &end, 10);
	if (*end != '\0' || buf[0] == '-' || n < lo || n > hi)
		return -1;
	*out = n;
	return 0;
}

/*
 * Splits uri into the URI libmongoc gets (in *mongo_uri, malloc'ed, Skald's
 * options removed) and Skald's options. Writes a message naming the mistake
 * into err on failure (SKALD_EURI). Never quotes the part before the host,
 * where a password may be.
 */
static int split_uri(const char *uri, char **mongo_uri, uri_opts_t *o, char *err, size_t errlen)
{
	o->batch = SKALD__BATCH_DEFAULT;
	o->gap_ms = DEFAULT_GAP_MS;
	*mongo_uri = NULL;
	const char *q = strchr(uri, '?');
	size_t base = q ? (size_t)(q - uri) : strlen(uri);
	size_t cap = strlen(uri) + 1;
	char *out = malloc(cap);
	if (out == NULL)
		return SKALD_ENOMEM;
	memcpy(out, uri, base);
	size_t used = base;
	int first = 1;
	for (const char *p = q ? q + 1 : NULL; p && *p;) {
		const char *amp = strchr(p, '&');
		size_t len = amp ? (size_t)(amp - p) : strlen(p);
		const char *eq = memchr(p, '=', len);
		size_t klen = eq ? (size_t)(eq - p) : len;
		const char *v = eq ? eq + 1 : "";
		size_t vlen = eq ? len - klen - 1 : 0;
		char key[64];
		if (len == 0)
			goto next;
		if (klen == 0 || klen >= sizeof key) {
			snprintf(err, errlen, "MongoDB journal URI: malformed option \"%.*s\"",
			         (int)(len > 64 ? 64 : len), p);
			free(out);
			return SKALD_EURI;
		}
		memcpy(key, p, klen);
		key[klen] = '\0';
		if (strcmp(key, "batch") == 0) {
			if (skald__uri_batch("MongoDB", v, vlen, &o->batch, err, errlen) != 0) {
				free(out);
				return SKALD_EURI;
			}
		} else if (strcasecmp(key, "gapTimeoutMS") == 0) {
			uint64_t n;
			if (parse_number(v, vlen, 1, 3600000, &n) != 0) {
				snprintf(err, errlen,
				         "MongoDB journal URI: gapTimeoutMS must be a number of "
				         "milliseconds from 1 to 3600000");
				free(out);
				return SKALD_EURI;
			}
			o->gap_ms = (int64_t)n;
		} else if (mongoc_uri_option_is_int32(key) || mongoc_uri_option_is_int64(key) ||
		           mongoc_uri_option_is_bool(key) || mongoc_uri_option_is_utf8(key) ||
		           mongoc_special_option(key)) {
			out[used++] = first ? '?' : '&';
			memcpy(out + used, p, len);
			used += len;
			first = 0;
		} else {
			snprintf(err, errlen,
			         "MongoDB journal URI: unknown option \"%s\"; Skald's options are "
			         "batch=N and gapTimeoutMS=N, and libmongoc's are listed in its "
			         "connection string documentation",
			         key);
			free(out);
			return SKALD_EURI;
		}
	next:
		p = amp ? amp + 1 : NULL;
	}
	out[used] = '\0';
	*mongo_uri = out;
	return 0;
}

/* Parses uri for libmongoc, with Skald's defaults for the timeouts. On
 * failure writes a message into err and returns SKALD_EURI. */
static int make_uri(const char *uri, uri_opts_t *o, mongoc_uri_t **out, char **key, char *err,
                    size_t errlen)
{
	char *text;
	int rc = split_uri(uri, &text, o, err, errlen);
	if (rc != 0)
		return rc;
	bson_error_t berr;
	mongoc_uri_t *u = mongoc_uri_new_with_error(text, &berr);
	if (u == NULL) {
		/* libmongoc's messages name the part that is wrong without
		 * quoting the credentials. */
		snprintf(err, errlen,
		         "malformed MongoDB journal URI (%s); expected "
		         "mongodb://HOST[:PORT]/DATABASE[?OPTIONS]",
		         berr.message);
		free(text);
		return SKALD_EURI;
	}
	const char *db = mongoc_uri_get_database(u);
	if (db == NULL || *db == '\0') {
		snprintf(err, errlen,
		         "MongoDB journal URI names no database: write it after the host, as in "
		         "mongodb://HOST:PORT/DATABASE");
		mongoc_uri_destroy(u);
		free(text);
		return SKALD_EURI;
	}
	if (!mongoc_uri_has_option(u, MONGOC_URI_SERVERSELECTIONTIMEOUTMS))
		mongoc_uri_set_option_as_int32(u, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 5000);
	if (!mongoc_uri_has_option(u, MONGOC_URI_SOCKETTIMEOUTMS))
		mongoc_uri_set_option_as_int32(u, MONGOC_URI_SOCKETTIMEOUTMS, 60000);
	*out = u;
	*key = text;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Handles, operations and the worker                                        */

enum op_kind {
	OP_APPEND,
	OP_READ,
	OP_HIGHEST,
	OP_DELETE_TO,
	OP_SNAP_SAVE,
	OP_SNAP_LOAD,
	OP_SNAP_DELETE,
	OP_SNAP_DELETE_TO,
	OP_READ_ALL,
	OP_LIST,
};

typedef struct op_s {
	struct op_s *next;
	enum op_kind kind;
	int status;
	int started;  /* worker: the first step ran */
	int finished; /* stream: no batch after the one it carries */
	int stop;     /* stream: the loop ended it; the worker releases it */
	void *arg;
	char *pid;
	char errmsg[400]; /* set by the worker, given to the handle on the loop */
	/* The stored event a read cannot decode (bad_pid owned; NULL: none),
	 * given to the handle with errmsg. */
	char *bad_pid;
	uint64_t bad_seq, bad_offset;
	skald_done_fn done;

	/* A streamed batch, made by the worker, delivered and freed by the
	 * loop. Strings and data are owned. */
	skald_event_t *ev;
	size_t nev, evcap;
	skald_persistence_id_t *ids;
	size_t nids, idcap;

	/* Held by a stream between its steps; used only by the worker. */
	mongoc_client_t *client;
	mongoc_cursor_t *cursor;
	bson_t *doc;  /* the document being delivered */
	bson_t *mdoc; /* read_all: the manifest being walked */

	union {
		struct {
			skald_append_fn cb;
			skald_write_t *writes;
			size_t n;
		} append;
		struct {
			skald_events_fn cb;
			uint64_t from, to, left;
			uint64_t next;     /* the lowest seq still to deliver */
			uint64_t key_prev; /* walk: the slot to look up next */
			uint32_t pos;      /* index in doc's events */
			int query;         /* walking done: reading the range query */
			unsigned walked;
		} read;
		struct {
			skald_seq_fn cb;
			uint64_t seq;
		} highest;
		struct {
			uint64_t to;
		} del;
		struct {
			skald_snapshot_t *snap;
		} save;
		struct {
			skald_snapshot_fn cb;
			uint64_t seq; /* max seq for load; exact seq for delete */
			int found;
			skald_snapshot_t snap; /* persistence_id is op->pid; data owned */
		} snap;
		struct {
			skald_events_fn cb;
			uint64_t after, left;
			uint64_t next_off; /* the lowest offset still to deliver */
			uint64_t mkey;     /* _id of the manifest to walk next */
			uint32_t widx;     /* write in mdoc */
			uint32_t pos;      /* event in doc */
			int64_t deadline;  /* when a missing write is fenced off */
		} all;
		struct {
			skald_ids_fn cb;
			char *prefix, *after;
			uint64_t left;
		} list;
	} u;
} op_t;

typedef struct mg_s {
	skald_journal_t *j;
	uv_loop_t *loop;
	backend_t *be;
	uri_opts_t opt;
	uv_async_t async;
	int async_ready;
	pthread_t thread;
	int thread_started;
	pthread_mutex_t lock; /* guards the queues and the flags below */
	pthread_cond_t cond;
	int sync_ready;
	op_t *todo_head, *todo_tail; /* for the worker */
	op_t *done_head, *done_tail; /* for the loop */
	int stop;                    /* the worker exits once todo is empty */
	int exited;
	/* Loop side. */
	size_t inflight;
	int closing, joined;
	void (*close_done)(skald_journal_t *j);
} mg_t;

static void push(op_t **head, op_t **tail, op_t *op)
{
	op->next = NULL;
	if (*tail)
		(*tail)->next = op;
	else
		*head = op;
	*tail = op;
}

static void free_batch(op_t *op)
{
	for (size_t i = 0; i < op->nev; i++) {
		json_decref(op->ev[i].data);
		free((char *)op->ev[i].persistence_id);
		free((char *)op->ev[i].type);
	}
	op->nev = 0;
	for (size_t i = 0; i < op->nids; i++)
		free((char *)op->ids[i].persistence_id);
	op->nids = 0;
}

/* Frees op; its mongoc resources must already be released (worker). */
static void op_free(op_t *op)
{
	free_batch(op);
	free(op->ev);
	free(op->ids);
	free(op->pid);
	free(op->bad_pid);
	if (op->kind == OP_SNAP_LOAD)
		json_decref(op->u.snap.snap.data);
	if (op->kind == OP_LIST) {
		free(op->u.list.prefix);
		free(op->u.list.after);
	}
	free(op);
}

static void set_msg(op_t *op, const char *fmt, ...) SKALD_STORE_PRINTF(2, 3);

/* Sets the message the handle gets with op's completion (truncated). */
static void set_msg(op_t *op, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(op->errmsg, sizeof op->errmsg, fmt, ap);
	va_end(ap);
}

static void fail(op_t *op, int code, const char *fmt, ...) SKALD_STORE_PRINTF(3, 4);

static void fail(op_t *op, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(op->errmsg, sizeof op->errmsg, fmt, ap);
	va_end(ap);
	op->status = code;
	op->finished = 1;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* Hands op to the worker. Loop thread. */
static void to_worker(mg_t *m, op_t *op)
{
	pthread_mutex_lock(&m->lock);
	push(&m->todo_head, &m->todo_tail, op);
	pthread_cond_signal(&m->cond);
	pthread_mutex_unlock(&m->lock);
}

/* Accepts a new operation. Loop thread. */
static int submit(mg_t *m, op_t *op)
{
	m->inflight++;
	to_worker(m, op);
	return 0;
}

static op_t *op_new(mg_t *m, enum op_kind kind, const char *pid, void *arg)
{
	if (m->closing)
		return NULL;
	op_t *op = calloc(1, sizeof *op);
	if (op == NULL)
		return NULL;
	op->kind = kind;
	op->arg = arg;
	if (pid && (op->pid = strdup(pid)) == NULL) {
		free(op);
		return NULL;
	}
	return op;
}

/* Adds an event to op's batch; takes data, copies the strings. */
static int batch_add(op_t *op, const char *pid, uint64_t seq, const char *type, int version,
                     json_t *data, int64_t ts, uint64_t writer, uint64_t offset)
{
	if (op->nev == op->evcap) {
		size_t n = op->evcap ? op->evcap * 2 : 64;
		skald_event_t *ev = realloc(op->ev, n * sizeof *ev);
		if (ev == NULL) {
			json_decref(data);
			return SKALD_ENOMEM;
		}
		op->ev = ev;
		op->evcap = n;
	}
	char *p = strdup(pid), *t = strdup(type);
	if (p == NULL || t == NULL) {
		free(p);
		free(t);
		json_decref(data);
		return SKALD_ENOMEM;
	}
	op->ev[op->nev++] = (skald_event_t){p, seq, t, version, data, ts, writer, offset};
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Worker: small helpers over libmongoc                                      */

typedef struct wctx_s {
	mg_t *m;
	backend_t *be;
	mongoc_client_t *client;
} wctx_t;

static mongoc_collection_t *coll_of(wctx_t *w, const char *name)
{
	return mongoc_client_get_collection(w->client, w->be->db, name);
}

/* The unsigned integer field key of doc (0 when absent). */
static uint64_t doc_u64(const bson_t *doc, const char *key)
{
	bson_iter_t it;
	if (!bson_iter_init_find(&it, doc, key))
		return 0;
	switch (bson_iter_type(&it)) {
	case BSON_TYPE_INT64:
		return (uint64_t)bson_iter_int64(&it);
	case BSON_TYPE_INT32:
		return (uint64_t)(int64_t)bson_iter_int32(&it);
	case BSON_TYPE_DOUBLE:
		return (uint64_t)bson_iter_double(&it);
	default:
		return 0;
	}
}

static int doc_bool(const bson_t *doc, const char *key)
{
	bson_iter_t it;
	return bson_iter_init_find(&it, doc, key) && bson_iter_as_bool(&it);
}

static int64_t i64(uint64_t v)
{
	return v > INT64_LIMIT ? INT64_MAX : (int64_t)v;
}

/*
 * Finds one document of collection name matching filter (opts as for
 * mongoc_collection_find_with_opts; a limit of 1 is added). Returns 1 with a
 * copy in *out, 0 when there is none, -1 on error (err set).
 */
static int find_one(wctx_t *w, const char *name, const bson_t *filter, const bson_t *opts,
                    bson_t **out, bson_error_t *err)
{
	mongoc_collection_t *c = coll_of(w, name);
	bson_t o = BSON_INITIALIZER;
	if (opts)
		bson_concat(&o, opts);
	BSON_APPEND_INT64(&o, "limit", 1);
	BSON_APPEND_BOOL(&o, "singleBatch", true);
	mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c, filter, &o, NULL);
	const bson_t *doc;
	int rc = 0;
	*out = NULL;
	if (mongoc_cursor_next(cur, &doc)) {
		*out = bson_copy(doc);
		rc = 1;
	} else if (mongoc_cursor_error(cur, err)) {
		rc = -1;
	}
	mongoc_cursor_destroy(cur);
	bson_destroy(&o);
	mongoc_collection_destroy(c);
	return rc;
}

/* find_one by a string _id, with an optional projection. */
static int find_key(wctx_t *w, const char *name, const char *key, const bson_t *projection,
                    bson_t **out, bson_error_t *err)
{
	bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER;
	BSON_APPEND_UTF8(&filter, "_id", key);
	if (projection)
		BSON_APPEND_DOCUMENT(&opts, "projection", projection);
	int rc = find_one(w, name, &filter, &opts, out, err);
	bson_destroy(&filter);
	bson_destroy(&opts);
	return rc;
}

/* find_one by an integer _id (manifests). */
static int find_num(wctx_t *w, const char *name, uint64_t key, const bson_t *projection,
                    bson_t **out, bson_error_t *err)
{
	bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER;
	BSON_APPEND_INT64(&filter, "_id", i64(key));
	if (projection)
		BSON_APPEND_DOCUMENT(&opts, "projection", projection);
	int rc = find_one(w, name, &filter, &opts, out, err);
	bson_destroy(&filter);
	bson_destroy(&opts);
	return rc;
}

/* find_one of the events document in slot (pid, prev). */
static int find_slot(wctx_t *w, const char *pid, uint64_t prev, const bson_t *projection,
                     bson_t **out, bson_error_t *err)
{
	char *key = skald__mongo_event_key(pid, prev);
	if (key == NULL) {
		bson_set_error(err, 0, 0, "out of memory");
		return -1;
	}
	int rc = find_key(w, SKALD_MONGO_EVENTS, key, projection, out, err);
	free(key);
	return rc;
}

/* Raises pid's hint in skald_heads to h; a failure only costs a longer walk
 * later, so it is ignored. Creates the head if it is missing (a writer that
 * died between its head and its events leaves none). */
static void hint_update(wctx_t *w, const char *pid, uint64_t h)
{
	mongoc_collection_t *c = coll_of(w, SKALD_MONGO_HEADS);
	bson_t *sel = BCON_NEW("_id", BCON_UTF8(pid));
	bson_t *upd = BCON_NEW("$max", "{", "h", BCON_INT64(i64(h)), "}");
	bson_t *opts = BCON_NEW("upsert", BCON_BOOL(true));
	mongoc_collection_update_one(c, sel, upd, opts, NULL, NULL);
	bson_destroy(sel);
	bson_destroy(upd);
	bson_destroy(opts);
	mongoc_collection_destroy(c);
}

/*
 * The highest seq of pid: walks the chain of its events documents by _id
 * from the last boundary known (the process's cache, else the id's hint),
 * until the slot after a boundary is free. A walk that grows long asks for
 * the end with one range query instead. Returns 0 or -1 (err set).
 */
static int walk_highest(wctx_t *w, const char *pid, uint64_t *out, bson_error_t *err)
{
	uint64_t b = 0;
	if (!cache_get(w->be, pid, &b) || b == 0) {
		bson_t *proj = BCON_NEW("h", BCON_INT32(1)), *doc;
		int rc = find_key(w, SKALD_MONGO_HEADS, pid, proj, &doc, err);
		bson_destroy(proj);
		if (rc < 0)
			return -1;
		if (rc == 1) {
			uint64_t h = doc_u64(doc, "h");
			if (h > b)
				b = h;
			bson_destroy(doc);
		}
	}
	bson_t *proj = BCON_NEW("to", BCON_INT32(1));
	unsigned steps = 0;
	int rc = 0;
	for (;;) {
		bson_t *doc;
		if (steps >= WALK_LIMIT) {
			bson_t *filter = BCON_NEW("pid", BCON_UTF8(pid));
			bson_t *opts = BCON_NEW("sort", "{", "to", BCON_INT32(-1), "}",
			                        "projection", "{", "to", BCON_INT32(1), "}");
			rc = find_one(w, SKALD_MONGO_EVENTS, filter, opts, &doc, err);
			bson_destroy(filter);
			bson_destroy(opts);
			if (rc == 1) {
				uint64_t to = doc_u64(doc, "to");
				if (to > b)
					b = to;
				bson_destroy(doc);
			}
			/* Documents stored after the query extend the chain
			 * further: walk on from the new end. */
			if (rc < 0)
				break;
			steps = 0;
			rc = find_slot(w, pid, b, proj, &doc, err);
			if (rc != 1)
				break;
		} else {
			rc = find_slot(w, pid, b, proj, &doc, err);
			if (rc != 1)
				break;
		}
		uint64_t to = doc_u64(doc, "to");
		bson_destroy(doc);
		if (to <= b) {
			bson_set_error(err, 0, 0, "events document %s@%" PRIu64 " is corrupt", pid,
			               b);
			rc = -1;
			break;
		}
		b = to;
		steps++;
	}
	bson_destroy(proj);
	if (rc < 0)
		return -1;
	cache_put(w->be, pid, b, 0);
	if (steps > 8)
		hint_update(w, pid, b);
	*out = b;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Worker: append                                                            */

/* The events document of w, without its offsets ("off" is appended once the
 * manifest has placed the write). NULL with *rc set when an event cannot be
 * stored (the write is rejected) or memory ran out. */
static bson_t *encode_write(op_t *op, const skald_write_t *wr, int *rc)
{
	char *key = skald__mongo_event_key(wr->persistence_id, wr->expected_seq);
	bson_t *doc = bson_new();
	bson_t arr, el;
	*rc = 0;
	if (key == NULL || doc == NULL) {
		*rc = SKALD_ENOMEM;
		goto out;
	}
	BSON_APPEND_UTF8(doc, "_id", key);
	BSON_APPEND_UTF8(doc, "pid", wr->persistence_id);
	BSON_APPEND_INT64(doc, "prev", i64(wr->expected_seq));
	BSON_APPEND_INT64(doc, "to", i64(wr->expected_seq + wr->nevents));
	BSON_APPEND_INT64(doc, "n", (int64_t)wr->nevents);
	BSON_APPEND_ARRAY_BEGIN(doc, "ev", &arr);
	for (size_t i = 0; i < wr->nevents && *rc == 0; i++) {
		const skald_event_t *e = &wr->events[i];
		char buf[16];
		const char *k;
		size_t klen = bson_uint32_to_string((uint32_t)i, &k, buf, sizeof buf);
		bson_append_document_begin(&arr, k, (int)klen, &el);
		BSON_APPEND_UTF8(&el, "t", e->type);
		BSON_APPEND_INT32(&el, "v", e->version);
		BSON_APPEND_DATE_TIME(&el, "ts", e->timestamp);
		BSON_APPEND_INT64(&el, "w", (int64_t)e->writer);
		if (!bson_utf8_validate(e->type, strlen(e->type), false) ||
		    skald__mongo_put_data(&el, e->data) != 0) {
			set_msg(op, "append to \"%s\" rejected: event seq %" PRIu64 " (%s) %s",
			        wr->persistence_id, e->seq, e->type,
			        !json_is_object(e->data)
			                ? "has data that is not a JSON object"
			                : "cannot be stored (invalid UTF-8 in its type or data, "
			                  "or data nested deeper than SKALD_DATA_MAX_DEPTH)");
			*rc = SKALD_EREJECTED;
		}
		bson_append_document_end(&arr, &el);
	}
	bson_append_array_end(doc, &arr);
	if (*rc == 0 && doc->len > MAX_DOC) {
		set_msg(op,
		        "append to \"%s\" rejected: its %zu events take %u bytes, more than one "
		        "MongoDB document holds (an atomic write is one document of at most "
		        "16 MiB)",
		        wr->persistence_id, wr->nevents, doc->len);
		*rc = SKALD_EREJECTED;
	}
out:
	free(key);
	if (*rc != 0 && doc) {
		bson_destroy(doc);
		doc = NULL;
	}
	return doc;
}

/*
 * Moves the events of a large events document into a payload document:
 * *doc becomes the slim document, with "pl" naming the payload, returned in
 * *payload (NULL when doc is small enough to keep its events). The payload's
 * _id is the slot's key and a random suffix, so that a payload orphaned by
 * a write that lost its slot never collides with the winner's.
 */
static int split_payload(bson_t **doc, bson_t **payload)
{
	*payload = NULL;
	if ((*doc)->len <= INLINE_MAX)
		return 0;
	bson_iter_t it;
	const uint8_t *data;
	uint32_t len;
	bson_t arr;
	uint64_t r = 0;
	if (!bson_iter_init_find(&it, *doc, "_id") || uv_random(NULL, NULL, &r, sizeof r, 0, NULL))
		return SKALD_ENOMEM;
	char key[64 + 1024];
	snprintf(key, sizeof key, "%s#%016" PRIx64, bson_iter_utf8(&it, NULL), r);
	bson_t *slim = bson_new(), *pl = bson_new();
	bson_copy_to_excluding_noinit(*doc, slim, "ev", NULL);
	BSON_APPEND_UTF8(slim, "pl", key);
	BSON_APPEND_UTF8(pl, "_id", key);
	if (bson_iter_init_find(&it, *doc, "ev") && BSON_ITER_HOLDS_ARRAY(&it)) {
		bson_iter_array(&it, &len, &data);
		if (bson_init_static(&arr, data, len))
			BSON_APPEND_ARRAY(pl, "ev", &arr);
	}
	bson_destroy(*doc);
	*doc = slim;
	*payload = pl;
	return 0;
}

static void conflict(op_t *op, const skald_write_t *wr, const char *how, uint64_t highest)
{
	set_msg(op,
	        "append to \"%s\": expected highest seq %" PRIu64 ", but it is %s%" PRIu64
	        " (another writer appended first)",
	        wr->persistence_id, wr->expected_seq, how, highest);
}

/* Whether wr may be inserted: its expected seq must be a boundary (see the
 * top of this file). 0, SKALD_ECONFLICT or SKALD_EBACKEND. */
static int check_boundary(wctx_t *w, op_t *op, const skald_write_t *wr)
{
	uint64_t e = wr->expected_seq, b = 0;
	int known = cache_get(w->be, wr->persistence_id, &b) && b > 0;
	if (known && b == e)
		return 0;
	if (known && b > e) {
		/* Seq b is stored, so the highest is at least b. */
		conflict(op, wr, "at least ", b);
		return SKALD_ECONFLICT;
	}
	if (!known && e == 0)
		return 0; /* 0 is the root of every chain */
	bson_error_t err;
	uint64_t h;
	if (walk_highest(w, wr->persistence_id, &h, &err) != 0) {
		set_msg(op, "append to \"%s\": reading its highest seq failed: %s",
		        wr->persistence_id, err.message);
		return SKALD_EBACKEND;
	}
	if (h == e)
		return 0;
	conflict(op, wr, "", h);
	return SKALD_ECONFLICT;
}

/* Inserts skald_heads documents for ids written for the first time, so that
 * list_ids finds them. Existing heads are fine. */
static int insert_heads(wctx_t *w, op_t *op, skald_write_t *ws, const size_t *idx, bson_t **docs,
                        size_t cnt)
{
	bson_t **heads = calloc(cnt, sizeof *heads);
	size_t nh = 0;
	int rc = 0;
	if (heads == NULL)
		return SKALD_ENOMEM;
	for (size_t k = 0; k < cnt; k++)
		if (docs[k] && ws[idx[k]].expected_seq == 0)
			heads[nh++] = BCON_NEW("_id", BCON_UTF8(ws[idx[k]].persistence_id), "h",
			                       BCON_INT64(0));
	if (nh > 0) {
		mongoc_collection_t *c = coll_of(w, SKALD_MONGO_HEADS);
		bson_t *opts = BCON_NEW("ordered", BCON_BOOL(false));
		bson_t reply;
		bson_error_t err;
		if (!mongoc_collection_insert_many(c, (const bson_t **)heads, nh, opts, &reply,
		                                   &err)) {
			/* Duplicates (ids that exist) are the expected errors. */
			bson_iter_t it, we;
			int other = !bson_iter_init_find(&it, &reply, "writeErrors") ||
			            !bson_iter_recurse(&it, &we);
			while (!other && bson_iter_next(&we)) {
				bson_iter_t code;
				if (bson_iter_recurse(&we, &code) &&
				    bson_iter_find(&code, "code") &&
				    bson_iter_as_int64(&code) != ERR_DUPLICATE_KEY)
					other = 1;
			}
			if (other) {
				set_msg(op,
				        "append: recording new persistence ids failed (nothing was "
				        "stored): %s",
				        err.message);
				rc = SKALD_EBACKEND;
			}
		}
		bson_destroy(&reply);
		bson_destroy(opts);
		mongoc_collection_destroy(c);
	}
	for (size_t k = 0; k < nh; k++)
		bson_destroy(heads[k]);
	free(heads);
	return rc;
}

/* The current end of the order chain, as far as this process knows: its
 * cache, else the hint in skald_meta. Caller holds order_lock. */
static int order_start(wctx_t *w, bson_error_t *err)
{
	if (w->be->order_known)
		return 0;
	bson_t *doc;
	int rc = find_key(w, SKALD_MONGO_META, "order", NULL, &doc, err);
	if (rc < 0)
		return -1;
	w->be->order_end = rc == 1 ? doc_u64(doc, "end") : 0;
	if (rc == 1)
		bson_destroy(doc);
	w->be->order_known = 1;
	return 0;
}

/*
 * Inserts the manifest of the writes docs[k] != NULL (total events) at the
 * end of the order chain; returns the offset before its first event in
 * *base, or -1 (err set). Moves along the chain when another writer took the
 * slot.
 */
static int insert_manifest(wctx_t *w, skald_write_t *ws, const size_t *idx, bson_t **docs,
                           size_t cnt, uint64_t total, uint64_t *base, bson_error_t *err)
{
	backend_t *be = w->be;
	mongoc_collection_t *c = coll_of(w, SKALD_MONGO_ORDER);
	bson_t *proj = BCON_NEW("n", BCON_INT32(1));
	int rc = 0;
	pthread_mutex_lock(&be->order_lock);
	if (order_start(w, err) != 0) {
		rc = -1;
		goto out;
	}
	uint64_t p = be->order_end;
	/* A walk along the chain counts towards refreshing the hint, so that
	 * the next process to start walks less. */
	for (;;) {
		bson_t man = BSON_INITIALIZER, arr, el;
		BSON_APPEND_INT64(&man, "_id", i64(p));
		BSON_APPEND_INT64(&man, "n", i64(total));
		BSON_APPEND_DATE_TIME(&man, "at", skald__now_ms());
		BSON_APPEND_ARRAY_BEGIN(&man, "w", &arr);
		uint32_t i = 0;
		for (size_t k = 0; k < cnt; k++) {
			if (docs[k] == NULL)
				continue;
			const skald_write_t *wr = &ws[idx[k]];
			char buf[16];
			const char *key;
			size_t klen = bson_uint32_to_string(i++, &key, buf, sizeof buf);
			bson_append_document_begin(&arr, key, (int)klen, &el);
			BSON_APPEND_UTF8(&el, "p", wr->persistence_id);
			BSON_APPEND_INT64(&el, "e", i64(wr->expected_seq));
			BSON_APPEND_INT64(&el, "c", (int64_t)wr->nevents);
			bson_append_document_end(&arr, &el);
		}
		bson_append_array_end(&man, &arr);
		bool ok = mongoc_collection_insert_one(c, &man, NULL, NULL, err);
		bson_destroy(&man);
		if (ok)
			break;
		if (err->code != ERR_DUPLICATE_KEY) {
			rc = -1;
			goto out;
		}
		/* Another writer holds slot p: follow the chain to its end. A
		 * long way behind (a stale hint), ask for the last manifest. */
		for (unsigned steps = 0;; steps++, be->order_since_hint++) {
			bson_t *doc;
			if (steps == 8) {
				bson_t filter = BSON_INITIALIZER;
				bson_t *opts = BCON_NEW("sort", "{", "_id", BCON_INT32(-1), "}",
				                        "projection", "{", "n", BCON_INT32(1), "}");
				int f = find_one(w, SKALD_MONGO_ORDER, &filter, opts, &doc, err);
				bson_destroy(opts);
				if (f < 0) {
					rc = -1;
					goto out;
				}
				if (f == 1) {
					uint64_t last = doc_u64(doc, "_id") + doc_u64(doc, "n");
					bson_destroy(doc);
					if (last > p)
						p = last;
				}
				continue;
			}
			int f = find_num(w, SKALD_MONGO_ORDER, p, proj, &doc, err);
			if (f < 0) {
				rc = -1;
				goto out;
			}
			if (f == 0)
				break;
			uint64_t n = doc_u64(doc, "n");
			bson_destroy(doc);
			p += n ? n : 1;
		}
	}
	*base = p;
	be->order_end = p + total;
	if (++be->order_since_hint >= HINT_EVERY) {
		be->order_since_hint = 0;
		mongoc_collection_t *meta = coll_of(w, SKALD_MONGO_META);
		bson_t *sel = BCON_NEW("_id", BCON_UTF8("order"));
		bson_t *upd = BCON_NEW("$max", "{", "end", BCON_INT64(i64(p + total)), "}");
		bson_t *opts = BCON_NEW("upsert", BCON_BOOL(true));
		mongoc_collection_update_one(meta, sel, upd, opts, NULL, NULL);
		bson_destroy(sel);
		bson_destroy(upd);
		bson_destroy(opts);
		mongoc_collection_destroy(meta);
	}
out:
	pthread_mutex_unlock(&be->order_lock);
	bson_destroy(proj);
	mongoc_collection_destroy(c);
	return rc;
}

/* Refreshes the hints of the ids whose writes in this round reached
 * HINT_EVERY, in one bulk update. */
static void update_hints(wctx_t *w, skald_write_t *ws, const size_t *idx, const uint8_t *due,
                         size_t cnt)
{
	mongoc_bulk_operation_t *bulk = NULL;
	mongoc_collection_t *c = NULL;
	for (size_t k = 0; k < cnt; k++) {
		if (!due[k])
			continue;
		if (bulk == NULL) {
			c = coll_of(w, SKALD_MONGO_HEADS);
			bson_t *o = BCON_NEW("ordered", BCON_BOOL(false));
			bulk = mongoc_collection_create_bulk_operation_with_opts(c, o);
			bson_destroy(o);
		}
		const skald_write_t *wr = &ws[idx[k]];
		bson_t *sel = BCON_NEW("_id", BCON_UTF8(wr->persistence_id));
		bson_t *upd = BCON_NEW("$max", "{", "h",
		                       BCON_INT64(i64(wr->expected_seq + wr->nevents)), "}");
		bson_t *opts = BCON_NEW("upsert", BCON_BOOL(true));
		mongoc_bulk_operation_update_one_with_opts(bulk, sel, upd, opts, NULL);
		bson_destroy(sel);
		bson_destroy(upd);
		bson_destroy(opts);
	}
	if (bulk) {
		bson_t reply;
		mongoc_bulk_operation_execute(bulk, &reply, NULL);
		bson_destroy(&reply);
		mongoc_bulk_operation_destroy(bulk);
		mongoc_collection_destroy(c);
	}
}

/* Sets the status of every write still undecided in a round (docs[k] set)
 * to code, dropping its document. */
static void fail_round(skald_write_t *ws, const size_t *idx, bson_t **docs, size_t cnt, int code)
{
	for (size_t k = 0; k < cnt; k++) {
		if (docs[k] == NULL)
			continue;
		ws[idx[k]].status = code;
		for (size_t i = 0; i < ws[idx[k]].nevents; i++)
			ws[idx[k]].events[i].offset = 0;
		bson_destroy(docs[k]);
		docs[k] = NULL;
	}
}

/* Why a write's insert met a duplicate _id: another writer's document
 * (conflict), or a void a reader put there because the write took longer
 * than gapTimeoutMS (failure). */
static int explain_duplicate(wctx_t *w, op_t *op, const skald_write_t *wr, uint64_t off)
{
	bson_t *proj = BCON_NEW("off", BCON_INT32(1), "void", BCON_INT32(1)), *doc;
	bson_error_t err;
	int rc = find_slot(w, wr->persistence_id, wr->expected_seq, proj, &doc, &err);
	bson_destroy(proj);
	if (rc == 1 && doc_bool(doc, "void") && doc_u64(doc, "off") == off) {
		bson_destroy(doc);
		set_msg(op,
		        "append to \"%s\" failed: it took so long that a reader of the global "
		        "order "
		        "fenced it off (raise gapTimeoutMS); nothing was stored",
		        wr->persistence_id);
		return SKALD_EBACKEND;
	}
	if (rc == 1)
		bson_destroy(doc);
	set_msg(op,
	        "append to \"%s\": expected highest seq %" PRIu64
	        ", but another writer stored seq %" PRIu64 " first",
	        wr->persistence_id, wr->expected_seq, wr->expected_seq + 1);
	return SKALD_ECONFLICT;
}

/* Inserts the payload documents of a round (pls[k] may be NULL). */
static int insert_payloads(wctx_t *w, op_t *op, bson_t **pls, size_t cnt)
{
	const bson_t **docs = calloc(cnt, sizeof *docs);
	size_t n = 0;
	int rc = 0;
	if (docs == NULL)
		return SKALD_ENOMEM;
	for (size_t k = 0; k < cnt; k++)
		if (pls[k])
			docs[n++] = pls[k];
	if (n > 0) {
		mongoc_collection_t *c = coll_of(w, SKALD_MONGO_PAYLOADS);
		bson_t *opts = BCON_NEW("ordered", BCON_BOOL(false), "validate", BCON_BOOL(false));
		bson_error_t err;
		if (!mongoc_collection_insert_many(c, docs, n, opts, NULL, &err)) {
			set_msg(op,
			        "append: storing the events of large writes failed (nothing was "
			        "stored): %s",
			        err.message);
			rc = SKALD_EBACKEND;
		}
		bson_destroy(opts);
		mongoc_collection_destroy(c);
	}
	free(docs);
	return rc;
}

/* Removes the payload of a write that was not stored; a failure leaves an
 * orphan that nothing refers to, which is harmless. */
static void drop_payload(wctx_t *w, const bson_t *pl)
{
	bson_iter_t it;
	if (!bson_iter_init_find(&it, pl, "_id"))
		return;
	mongoc_collection_t *c = coll_of(w, SKALD_MONGO_PAYLOADS);
	bson_t *sel = BCON_NEW("_id", BCON_UTF8(bson_iter_utf8(&it, NULL)));
	mongoc_collection_delete_one(c, sel, NULL, NULL, NULL);
	bson_destroy(sel);
	mongoc_collection_destroy(c);
}

/* Applies the writes ws[idx[0..cnt)], no two of one id, in one manifest and
 * one insert_many. */
static void append_round(wctx_t *w, op_t *op, skald_write_t *ws, const size_t *idx, size_t cnt)
{
	bson_t **docs = calloc(cnt, sizeof *docs);
	bson_t **pls = calloc(cnt, sizeof *pls);
	uint8_t *due = calloc(cnt, 1);
	if (docs == NULL || pls == NULL || due == NULL) {
		for (size_t k = 0; k < cnt; k++)
			ws[idx[k]].status = SKALD_ENOMEM;
		goto out;
	}
	uint64_t total = 0;
	size_t live = 0;
	for (size_t k = 0; k < cnt; k++) {
		int rc;
		skald_write_t *wr = &ws[idx[k]];
		docs[k] = encode_write(op, wr, &rc);
		if (rc == 0 && (rc = check_boundary(w, op, wr)) == 0)
			rc = split_payload(&docs[k], &pls[k]);
		if (rc != 0 && docs[k]) {
			bson_destroy(docs[k]);
			docs[k] = NULL;
		}
		wr->status = rc;
		if (rc == 0) {
			total += wr->nevents;
			live++;
		}
	}
	if (live == 0)
		goto out;
	int rc = insert_heads(w, op, ws, idx, docs, cnt);
	if (rc != 0) {
		fail_round(ws, idx, docs, cnt, rc);
		goto out;
	}
	uint64_t base;
	bson_error_t err;
	if (insert_manifest(w, ws, idx, docs, cnt, total, &base, &err) != 0) {
		set_msg(op,
		        "append: allocating offsets in the global order failed (nothing was "
		        "stored, or it is unknown): %s",
		        err.message);
		fail_round(ws, idx, docs, cnt, SKALD_EBACKEND);
		goto out;
	}
	/* Payloads first: an events document is the commit of its write, and
	 * must never name a payload that is not there. */
	if (insert_payloads(w, op, pls, cnt) != 0) {
		fail_round(ws, idx, docs, cnt, SKALD_EBACKEND);
		goto out;
	}
	/* The events documents, in manifest order, with their offsets. */
	const bson_t **ins = calloc(live, sizeof *ins);
	size_t *pos = calloc(live, sizeof *pos);
	uint64_t *offs = calloc(cnt, sizeof *offs);
	if (ins == NULL || pos == NULL || offs == NULL) {
		free(ins);
		free(pos);
		free(offs);
		fail_round(ws, idx, docs, cnt, SKALD_ENOMEM);
		goto out;
	}
	uint64_t off = base + 1;
	size_t ni = 0;
	for (size_t k = 0; k < cnt; k++) {
		if (docs[k] == NULL)
			continue;
		skald_write_t *wr = &ws[idx[k]];
		BSON_APPEND_INT64(docs[k], "off", i64(off));
		offs[k] = off;
		for (size_t i = 0; i < wr->nevents; i++)
			wr->events[i].offset = off + i;
		off += wr->nevents;
		pos[ni] = k;
		ins[ni++] = docs[k];
	}
	mongoc_collection_t *c = coll_of(w, SKALD_MONGO_EVENTS);
	/* Every document was checked as it was built: libmongoc need not
	 * validate them again. */
	bson_t *opts = BCON_NEW("ordered", BCON_BOOL(false), "validate", BCON_BOOL(false));
	bson_t reply;
	bool ok = mongoc_collection_insert_many(c, ins, ni, opts, &reply, &err);
	bson_destroy(opts);
	mongoc_collection_destroy(c);
	int *result = calloc(ni, sizeof *result);
	bson_iter_t it, we;
	if (!ok && (!bson_iter_init_find(&it, &reply, "writeErrors") ||
	            !bson_iter_recurse(&it, &we) || result == NULL)) {
		/* The command failed as a whole: the server may or may not
		 * have stored each document. */
		set_msg(op,
		        "append: storing %zu writes failed, and whether they were stored is "
		        "unknown: %s",
		        ni, err.message);
		fail_round(ws, idx, docs, cnt, SKALD_EBACKEND);
	} else {
		while (!ok && bson_iter_next(&we)) {
			bson_iter_t f;
			int64_t index = -1, code = 0;
			if (bson_iter_recurse(&we, &f) && bson_iter_find(&f, "index"))
				index = bson_iter_as_int64(&f);
			if (bson_iter_recurse(&we, &f) && bson_iter_find(&f, "code"))
				code = bson_iter_as_int64(&f);
			if (index < 0 || (size_t)index >= ni)
				continue;
			result[index] = code == ERR_DUPLICATE_KEY ? 1 : 2;
			if (code != ERR_DUPLICATE_KEY && bson_iter_recurse(&we, &f) &&
			    bson_iter_find(&f, "errmsg"))
				set_msg(op, "append to \"%s\" failed: %s",
				        ws[idx[pos[index]]].persistence_id,
				        bson_iter_utf8(&f, NULL));
		}
		for (size_t r = 0; r < ni; r++) {
			size_t k = pos[r];
			skald_write_t *wr = &ws[idx[k]];
			if (result[r] == 0) {
				wr->status = 0;
				uint32_t since = cache_put(w->be, wr->persistence_id,
				                           wr->expected_seq + wr->nevents, 1);
				due[k] = since >= PID_HINT_EVERY;
				continue;
			}
			wr->status = result[r] == 1 ? explain_duplicate(w, op, wr, offs[k])
			                            : SKALD_EBACKEND;
			if (wr->status == SKALD_ECONFLICT && pls[k])
				drop_payload(w, pls[k]); /* certainly not stored: no orphan */
			cache_drop(w->be, wr->persistence_id);
			for (size_t i = 0; i < wr->nevents; i++)
				wr->events[i].offset = 0;
		}
		update_hints(w, ws, idx, due, cnt);
	}
	bson_destroy(&reply);
	free(result);
	free(ins);
	free(pos);
	free(offs);
out:
	for (size_t k = 0; k < cnt; k++) {
		if (docs && docs[k])
			bson_destroy(docs[k]);
		if (pls && pls[k])
			bson_destroy(pls[k]);
	}
	free(docs);
	free(pls);
	free(due);
}

/*
 * Runs an append. Writes of one id chain within a call (the second expects
 * the first's last seq), so they go in rounds: round r holds the r-th write
 * of every id, and runs only after round r-1 has stored its predecessor.
 */
static void run_append(wctx_t *w, op_t *op)
{
	skald_write_t *ws = op->u.append.writes;
	size_t n = op->u.append.n;
	uint32_t *round = calloc(n, sizeof *round);
	size_t *before = calloc(n, sizeof *before); /* the same id's previous write + 1 */
	size_t *idx = calloc(n, sizeof *idx);
	size_t nslots = 16;
	while (nslots < 2 * n)
		nslots *= 2;
	size_t *slots = calloc(nslots, sizeof *slots); /* write index + 1 of an id's last */
	if (round == NULL || before == NULL || idx == NULL || slots == NULL) {
		for (size_t i = 0; i < n; i++)
			ws[i].status = SKALD_ENOMEM;
		op->status = SKALD_ENOMEM;
		goto out;
	}
	uint32_t rounds = 1;
	for (size_t i = 0; i < n; i++) {
		size_t k = skald__hash_str(ws[i].persistence_id) & (nslots - 1);
		while (slots[k] &&
		       strcmp(ws[slots[k] - 1].persistence_id, ws[i].persistence_id) != 0)
			k = (k + 1) & (nslots - 1);
		if (slots[k]) {
			before[i] = slots[k];
			round[i] = round[slots[k] - 1] + 1;
			if (round[i] + 1 > rounds)
				rounds = round[i] + 1;
		}
		slots[k] = i + 1;
	}
	for (uint32_t r = 0; r < rounds; r++) {
		size_t cnt = 0;
		for (size_t i = 0; i < n; i++) {
			if (round[i] != r)
				continue;
			int pred = before[i] ? ws[before[i] - 1].status : 0;
			if (pred != 0) {
				/* The predecessor was not stored, so this write's
				 * expected seq is not the highest. */
				ws[i].status = pred == SKALD_EREJECTED ? SKALD_ECONFLICT : pred;
				continue;
			}
			idx[cnt++] = i;
			if (cnt == MAX_ROUND) {
				append_round(w, op, ws, idx, cnt);
				cnt = 0;
			}
		}
		if (cnt > 0)
			append_round(w, op, ws, idx, cnt);
	}
	op->status = 0;
out:
	free(round);
	free(before);
	free(idx);
	free(slots);
	op->finished = 1;
}

/* ------------------------------------------------------------------------ */
/* Worker: reads                                                             */

/* Decodes the event element it (one entry of a document's "ev") as seq of
 * pid and adds it to op's batch. */
/* Names the event a read stopped at, for skald_journal_bad_event. Returns
 * SKALD_EDECODE. */
static int bad_event(op_t *op, const char *pid, uint64_t seq, uint64_t offset)
{
	free(op->bad_pid);
	op->bad_pid = strdup(pid);
	op->bad_seq = seq;
	op->bad_offset = offset;
	return SKALD_EDECODE;
}

static int add_event(op_t *op, const char *pid, uint64_t seq, uint64_t offset, bson_iter_t *it)
{
	bson_iter_t f, d, j;
	int has_d = 0, has_j = 0;
	const char *type = NULL;
	int version = 1;
	int64_t ts = 0;
	uint64_t writer = 0;
	if (!BSON_ITER_HOLDS_DOCUMENT(it) || !bson_iter_recurse(it, &f))
		goto bad;
	while (bson_iter_next(&f)) {
		const char *k = bson_iter_key(&f);
		if (strcmp(k, "t") == 0 && BSON_ITER_HOLDS_UTF8(&f))
			type = bson_iter_utf8(&f, NULL);
		else if (strcmp(k, "v") == 0)
			version = (int)bson_iter_as_int64(&f);
		else if (strcmp(k, "ts") == 0)
			ts = BSON_ITER_HOLDS_DATE_TIME(&f) ? bson_iter_date_time(&f)
			                                   : bson_iter_as_int64(&f);
		else if (strcmp(k, "w") == 0)
			writer = (uint64_t)bson_iter_as_int64(&f);
		else if (strcmp(k, "d") == 0)
			d = f, has_d = 1;
		else if (strcmp(k, "j") == 0)
			j = f, has_j = 1;
	}
	const char *why = "it has no type";
	json_t *data =
	        type ? skald__mongo_get_data(has_d ? &d : NULL, has_j ? &j : NULL, &why) : NULL;
	if (data == NULL) {
		fail(op, SKALD_EDECODE, "event \"%s\" seq %" PRIu64 " cannot be decoded: %s", pid,
		     seq, why);
		return bad_event(op, pid, seq, offset);
	}
	int rc = batch_add(op, pid, seq, type, version, data, ts, writer, offset);
	if (rc != 0)
		fail(op, rc, "out of memory reading events");
	return rc;
bad:
	fail(op, SKALD_EDECODE, "event \"%s\" seq %" PRIu64 " is not a document", pid, seq);
	return bad_event(op, pid, seq, offset);
}

static void backend_error(op_t *op, const char *what, const bson_error_t *err)
{
	fail(op, SKALD_EBACKEND, "MongoDB journal: %s failed: %s", what, err->message);
}

/* Replaces op->doc, when its events live in a payload document, by a copy
 * holding them. Returns 0, or -1 with op failed. */
static int inline_payload(wctx_t *w, op_t *op)
{
	bson_iter_t it;
	if (!bson_iter_init_find(&it, op->doc, "pl") || !BSON_ITER_HOLDS_UTF8(&it))
		return 0;
	bson_error_t err;
	bson_t *pl;
	int rc = find_key(w, SKALD_MONGO_PAYLOADS, bson_iter_utf8(&it, NULL), NULL, &pl, &err);
	if (rc < 0) {
		backend_error(op, "reading the events of a large write", &err);
		return -1;
	}
	if (rc == 0) {
		fail(op, SKALD_EDECODE,
		     "the events of a large write of \"%s\" are missing (payload "
		     "%s)",
		     op->pid ? op->pid : "?", bson_iter_utf8(&it, NULL));
		return -1;
	}
	bson_t *merged = bson_new();
	bson_copy_to_excluding_noinit(op->doc, merged, "pl", "ev", NULL);
	const uint8_t *data;
	uint32_t len;
	bson_t arr;
	if (bson_iter_init_find(&it, pl, "ev") && BSON_ITER_HOLDS_ARRAY(&it)) {
		bson_iter_array(&it, &len, &data);
		if (bson_init_static(&arr, data, len))
			BSON_APPEND_ARRAY(merged, "ev", &arr);
	}
	bson_destroy(pl);
	bson_destroy(op->doc);
	op->doc = merged;
	return 0;
}

/*
 * Delivers the events of op->doc (an events document of pid) with
 * from <= seq <= to, starting at the op's position in it, until the batch
 * is full. Returns 1 when the document is used up (and frees it).
 */
static int read_doc(wctx_t *w, op_t *op)
{
	mg_t *m = w->m;
	if (op->u.read.pos == 0 && inline_payload(w, op) != 0)
		return 1;
	const bson_t *doc = op->doc;
	uint64_t prev = doc_u64(doc, "prev"), to = doc_u64(doc, "to");
	uint64_t del = doc_u64(doc, "del"), off = doc_u64(doc, "off");
	bson_iter_t it, ev;
	if (prev + 1 > op->u.read.to) {
		op->finished = 1;
	} else if (!doc_bool(doc, "void") && bson_iter_init_find(&it, doc, "ev") &&
	           bson_iter_recurse(&it, &ev)) {
		uint32_t i = 0;
		while (bson_iter_next(&ev) && !op->finished) {
			if (i++ < op->u.read.pos)
				continue;
			uint64_t seq = prev + i;
			if (seq > op->u.read.to) {
				op->finished = 1;
				break;
			}
			op->u.read.pos = i;
			if (seq >= op->u.read.next && seq > del) {
				if (add_event(op, op->pid, seq, off + i - 1, &ev) != 0)
					break;
				op->u.read.next = seq + 1;
				if (--op->u.read.left == 0)
					op->finished = 1;
				else if (op->nev >= m->opt.batch)
					return 0;
			}
		}
	}
	if (to >= op->u.read.to)
		op->finished = 1;
	if (to + 1 > op->u.read.next)
		op->u.read.next = to + 1;
	op->u.read.key_prev = to;
	op->u.read.pos = 0;
	bson_destroy(op->doc);
	op->doc = NULL;
	return 1;
}

static void step_read(wctx_t *w, op_t *op)
{
	bson_error_t err;
	if (!op->started) {
		op->started = 1;
		op->u.read.next = op->u.read.from;
		op->u.read.key_prev = op->u.read.from - 1;
		if (op->u.read.left == 0 || op->u.read.from > op->u.read.to) {
			op->finished = 1;
			return;
		}
		/* A long way to go (as far as the cache or the hint tell): one
		 * range query costs less than many lookups. */
		uint64_t known = 0;
		if (!cache_get(w->be, op->pid, &known) || known == 0) {
			bson_t *proj = BCON_NEW("h", BCON_INT32(1)), *doc;
			int rc = find_key(w, SKALD_MONGO_HEADS, op->pid, proj, &doc, &err);
			bson_destroy(proj);
			if (rc < 0) {
				backend_error(op, "replaying events", &err);
				return;
			}
			if (rc == 1) {
				known = doc_u64(doc, "h");
				bson_destroy(doc);
			}
		}
		if (known >= op->u.read.from + LONG_READ) {
			op->u.read.query = 1;
		} else if (op->u.read.from > 1) {
			/* The document starting at from sits in slot from-1 when
			 * from-1 ends a write, as it does after a snapshot taken
			 * by an entity; otherwise the range query finds it. */
			int rc = find_slot(w, op->pid, op->u.read.from - 1, NULL, &op->doc, &err);
			if (rc < 0) {
				backend_error(op, "replaying events", &err);
				return;
			}
			op->u.read.query = rc == 0;
			op->u.read.walked = 1;
		}
	}
	while (op->nev < w->m->opt.batch && !op->finished) {
		if (op->doc == NULL && !op->u.read.query) {
			if (op->u.read.walked >= WALK_LIMIT) {
				op->u.read.query = 1;
				continue;
			}
			int rc = find_slot(w, op->pid, op->u.read.key_prev, NULL, &op->doc, &err);
			if (rc < 0) {
				backend_error(op, "replaying events", &err);
				return;
			}
			if (rc == 0) {
				/* The free slot follows the highest seq. */
				cache_put(w->be, op->pid, op->u.read.key_prev, 0);
				op->finished = 1;
				return;
			}
			op->u.read.walked++;
		} else if (op->doc == NULL) {
			if (op->cursor == NULL) {
				/* A long history: one query, read as a cursor across
				 * the steps. `to` orders the documents of one id as
				 * their seqs do, and has an index. */
				bson_t *filter =
				        BCON_NEW("pid", BCON_UTF8(op->pid), "to", "{", "$gte",
				                 BCON_INT64(i64(op->u.read.next)), "}");
				bson_t *opts = BCON_NEW("sort", "{", "to", BCON_INT32(1), "}");
				mongoc_collection_t *c = coll_of(w, SKALD_MONGO_EVENTS);
				op->cursor =
				        mongoc_collection_find_with_opts(c, filter, opts, NULL);
				mongoc_collection_destroy(c);
				bson_destroy(filter);
				bson_destroy(opts);
			}
			const bson_t *d;
			if (!mongoc_cursor_next(op->cursor, &d)) {
				if (mongoc_cursor_error(op->cursor, &err))
					backend_error(op, "replaying events", &err);
				else
					op->finished = 1;
				return;
			}
			op->doc = bson_copy(d);
		}
		read_doc(w, op);
		if (op->status != 0)
			return;
	}
}

static void step_highest(wctx_t *w, op_t *op)
{
	bson_error_t err;
	if (walk_highest(w, op->pid, &op->u.highest.seq, &err) != 0)
		backend_error(op, "reading the highest seq", &err);
	op->finished = 1;
}

/* Marks the events document in slot (pid, prev) ending at `to` as deleted
 * up to d (readers skip seq <= del), emptying it when wholly deleted, and
 * then removing its payload pl (may be NULL). */
static int delete_in_doc(wctx_t *w, mongoc_collection_t *c, const char *pid, uint64_t prev,
                         uint64_t to, const char *pl, int64_t d, bson_error_t *err)
{
	char *key = skald__mongo_event_key(pid, prev);
	bson_t *sel = BCON_NEW("_id", BCON_UTF8(key ? key : ""));
	int whole = (uint64_t)d >= to;
	bson_t *upd =
	        whole ? BCON_NEW("$set", "{", "ev", "[", "]", "}", "$unset", "{", "pl",
	                         BCON_UTF8(""), "}", "$max", "{", "del", BCON_INT64(i64(to)), "}")
	              : BCON_NEW("$max", "{", "del", BCON_INT64(d), "}");
	bool ok = mongoc_collection_update_one(c, sel, upd, NULL, NULL, err);
	bson_destroy(sel);
	bson_destroy(upd);
	free(key);
	if (ok && whole && pl) {
		/* After the update: a reader never finds a document naming a
		 * payload that is gone. */
		bson_t *p = BCON_NEW("_id", BCON_UTF8(pl));
		drop_payload(w, p);
		bson_destroy(p);
	}
	return ok ? 0 : -1;
}

/*
 * Deletes by walking the chain from its start and updating each document by
 * _id; a history longer than WALK_LIMIT documents is finished with two
 * range updates (index pid_to) instead. Lookups and updates by _id are what
 * every server serves best; FerretDB 1.x runs a range update as a scan that
 * holds its write lock throughout. The documents stay (emptied): they carry
 * the chain, and with it the highest seq.
 */
static void step_delete_to(wctx_t *w, op_t *op)
{
	bson_error_t err;
	int64_t to = i64(op->u.del.to);
	mongoc_collection_t *c = coll_of(w, SKALD_MONGO_EVENTS);
	bson_t *proj = BCON_NEW("to", BCON_INT32(1), "pl", BCON_INT32(1));
	uint64_t prev = 0;
	int rc = 0;
	op->finished = 1;
	for (unsigned steps = 0; (int64_t)prev < to; steps++) {
		if (steps == WALK_LIMIT) {
			bson_t *f1 = BCON_NEW("pid", BCON_UTF8(op->pid), "prev", "{", "$gte",
			                      BCON_INT64(i64(prev)), "$lt", BCON_INT64(to), "}");
			bson_t *u1 = BCON_NEW("$max", "{", "del", BCON_INT64(to), "}");
			bson_t *f2 = BCON_NEW("pid", BCON_UTF8(op->pid), "prev", "{", "$gte",
			                      BCON_INT64(i64(prev)), "}", "to", "{", "$lte",
			                      BCON_INT64(to), "}");
			bson_t *u2 = BCON_NEW("$set", "{", "ev", "[", "]", "}");
			if (!mongoc_collection_update_many(c, f1, u1, NULL, NULL, &err) ||
			    !mongoc_collection_update_many(c, f2, u2, NULL, NULL, &err))
				rc = -1;
			bson_destroy(f1);
			bson_destroy(u1);
			bson_destroy(f2);
			bson_destroy(u2);
			break;
		}
		bson_t *doc;
		rc = find_slot(w, op->pid, prev, proj, &doc, &err);
		if (rc <= 0)
			break;
		uint64_t end = doc_u64(doc, "to");
		bson_iter_t it;
		char *pl = bson_iter_init_find(&it, doc, "pl") && BSON_ITER_HOLDS_UTF8(&it)
		                   ? strdup(bson_iter_utf8(&it, NULL))
		                   : NULL;
		bson_destroy(doc);
		if (end > prev)
			rc = delete_in_doc(w, c, op->pid, prev, end, pl, to, &err);
		free(pl);
		if (end <= prev || rc != 0)
			break;
		prev = end;
	}
	if (rc < 0)
		backend_error(op, "deleting events", &err);
	bson_destroy(proj);
	mongoc_collection_destroy(c);
}

/* ------------------------------------------------------------------------ */
/* Worker: snapshots                                                         */

static void step_snap_save(wctx_t *w, op_t *op)
{
	const skald_snapshot_t *s = op->u.save.snap;
	char *key = skald__mongo_event_key(s->persistence_id, s->seq);
	bson_t doc = BSON_INITIALIZER;
	op->finished = 1;
	if (key == NULL) {
		fail(op, SKALD_ENOMEM, "out of memory saving a snapshot");
		return;
	}
	BSON_APPEND_UTF8(&doc, "_id", key);
	BSON_APPEND_UTF8(&doc, "pid", s->persistence_id);
	BSON_APPEND_INT64(&doc, "seq", i64(s->seq));
	BSON_APPEND_INT32(&doc, "v", s->version);
	BSON_APPEND_DATE_TIME(&doc, "ts", s->timestamp);
	if (skald__mongo_put_data(&doc, s->data) != 0 || doc.len > MAX_DOC) {
		fail(op, SKALD_EREJECTED,
		     "snapshot of \"%s\" at seq %" PRIu64
		     " rejected: data is not a JSON object that can be stored (invalid "
		     "UTF-8, nested deeper than SKALD_DATA_MAX_DEPTH, or larger than one "
		     "MongoDB document)",
		     s->persistence_id, s->seq);
	} else {
		bson_error_t err;
		mongoc_collection_t *c = coll_of(w, SKALD_MONGO_SNAPSHOTS);
		bson_t *sel = BCON_NEW("_id", BCON_UTF8(key));
		bson_t *opts = BCON_NEW("upsert", BCON_BOOL(true));
		if (!mongoc_collection_replace_one(c, sel, &doc, opts, NULL, &err))
			backend_error(op, "saving a snapshot", &err);
		bson_destroy(sel);
		bson_destroy(opts);
		mongoc_collection_destroy(c);
	}
	bson_destroy(&doc);
	free(key);
}

static void step_snap_load(wctx_t *w, op_t *op)
{
	bson_error_t err;
	bson_t *doc;
	bson_t *filter = BCON_NEW("pid", BCON_UTF8(op->pid), "seq", "{", "$lte",
	                          BCON_INT64(i64(op->u.snap.seq)), "}");
	bson_t *opts = BCON_NEW("sort", "{", "seq", BCON_INT32(-1), "}");
	int rc = find_one(w, SKALD_MONGO_SNAPSHOTS, filter, opts, &doc, &err);
	bson_destroy(filter);
	bson_destroy(opts);
	op->finished = 1;
	if (rc < 0) {
		backend_error(op, "loading a snapshot", &err);
		return;
	}
	if (rc == 0)
		return;
	bson_iter_t d, j, it;
	int has_d = bson_iter_init_find(&d, doc, "d");
	int has_j = bson_iter_init_find(&j, doc, "j");
	const char *why;
	json_t *data = skald__mongo_get_data(has_d ? &d : NULL, has_j ? &j : NULL, &why);
	if (data == NULL) {
		/* A snapshot that cannot be read fails the load: reporting "no
		 * snapshot" would replay from events that may be deleted. */
		fail(op, SKALD_EDECODE, "snapshot of \"%s\" cannot be decoded: %s", op->pid, why);
	} else {
		op->u.snap.found = 1;
		op->u.snap.snap.persistence_id = op->pid;
		op->u.snap.snap.seq = doc_u64(doc, "seq");
		op->u.snap.snap.version =
		        bson_iter_init_find(&it, doc, "v") ? (int)bson_iter_as_int64(&it) : 1;
		op->u.snap.snap.timestamp =
		        bson_iter_init_find(&it, doc, "ts") && BSON_ITER_HOLDS_DATE_TIME(&it)
		                ? bson_iter_date_time(&it)
		                : 0;
		op->u.snap.snap.data = data;
	}
	bson_destroy(doc);
}

static void step_snap_delete(wctx_t *w, op_t *op, int upto)
{
	bson_error_t err;
	mongoc_collection_t *c = coll_of(w, SKALD_MONGO_SNAPSHOTS);
	bson_t *filter;
	bool ok;
	if (upto) {
		filter = BCON_NEW("pid", BCON_UTF8(op->pid), "seq", "{", "$lte",
		                  BCON_INT64(i64(op->u.snap.seq)), "}");
		ok = mongoc_collection_delete_many(c, filter, NULL, NULL, &err);
	} else {
		char *key = skald__mongo_event_key(op->pid, op->u.snap.seq);
		filter = BCON_NEW("_id", BCON_UTF8(key ? key : ""));
		free(key);
		ok = mongoc_collection_delete_one(c, filter, NULL, NULL, &err);
	}
	if (!ok)
		backend_error(op, "deleting snapshots", &err);
	bson_destroy(filter);
	mongoc_collection_destroy(c);
	op->finished = 1;
}

/* ------------------------------------------------------------------------ */
/* Worker: the global order                                                  */

/* Puts a void document in the slot of a listed write that is not stored,
 * so that it never can be (see "Global order"). 0 when the void is there,
 * 1 when the real document won the slot first, -1 on error. */
static int fence(wctx_t *w, const char *pid, uint64_t prev, uint64_t count, uint64_t off,
                 bson_error_t *err)
{
	char *key = skald__mongo_event_key(pid, prev);
	if (key == NULL) {
		bson_set_error(err, 0, 0, "out of memory");
		return -1;
	}
	bson_t *doc = BCON_NEW("_id", BCON_UTF8(key), "pid", BCON_UTF8(pid), "prev",
	                       BCON_INT64(i64(prev)), "to", BCON_INT64(i64(prev + count)), "n",
	                       BCON_INT64(i64(count)), "off", BCON_INT64(i64(off)), "void",
	                       BCON_BOOL(true), "ev", "[", "]");
	mongoc_collection_t *c = coll_of(w, SKALD_MONGO_EVENTS);
	int rc = 0;
	if (!mongoc_collection_insert_one(c, doc, NULL, NULL, err))
		rc = err->code == ERR_DUPLICATE_KEY ? 1 : -1;
	mongoc_collection_destroy(c);
	bson_destroy(doc);
	free(key);
	return rc;
}

/*
 * Resolves one write listed in a manifest (pid, prev, count, at offset off)
 * into op->doc: the stored document, or NULL when the write is not part of
 * the order (it lost its race, or was fenced off). Waits while the write is
 * in flight, up to gapTimeoutMS from when this read first waited. Returns
 * 0, or -1 with op failed.
 */
static int resolve_write(wctx_t *w, op_t *op, const char *pid, uint64_t prev, uint64_t count,
                         uint64_t off)
{
	bson_error_t err;
	int pause = 1;
	for (;;) {
		bson_t *doc;
		int rc = find_slot(w, pid, prev, NULL, &doc, &err);
		if (rc < 0) {
			backend_error(op, "reading the global order", &err);
			return -1;
		}
		if (rc == 1) {
			if (doc_u64(doc, "off") == off && !doc_bool(doc, "void"))
				op->doc = doc;
			else
				bson_destroy(doc);
			return 0;
		}
		int64_t now = mono_ms();
		if (op->u.all.deadline == 0)
			op->u.all.deadline = now + w->m->opt.gap_ms;
		if (now < op->u.all.deadline) {
			sleep_ms(pause);
			pause = pause < 50 ? pause * 2 : 50;
			continue;
		}
		rc = fence(w, pid, prev, count, off, &err);
		if (rc < 0) {
			backend_error(op, "fencing off a lost write", &err);
			return -1;
		}
		if (rc == 0)
			return 0;
		/* The write landed just before the void: read it. */
	}
}

/* Delivers the events of op->doc (a write at offsets off...) with offset >=
 * next_off from the op's position. Returns 1 when the document is used up. */
static int read_all_doc(wctx_t *w, op_t *op, const char *pid, uint64_t off)
{
	mg_t *m = w->m;
	if (op->u.all.pos == 0 && inline_payload(w, op) != 0)
		return 1;
	const bson_t *doc = op->doc;
	uint64_t prev = doc_u64(doc, "prev"), del = doc_u64(doc, "del");
	bson_iter_t it, ev;
	if (bson_iter_init_find(&it, doc, "ev") && bson_iter_recurse(&it, &ev)) {
		uint32_t i = 0;
		while (bson_iter_next(&ev)) {
			if (i++ < op->u.all.pos)
				continue;
			op->u.all.pos = i;
			uint64_t offset = off + i - 1, seq = prev + i;
			if (offset < op->u.all.next_off || seq <= del)
				continue;
			if (add_event(op, pid, seq, offset, &ev) != 0)
				return 1;
			op->u.all.next_off = offset + 1;
			if (--op->u.all.left == 0) {
				op->finished = 1;
				break;
			}
			if (op->nev >= m->opt.batch)
				return 0;
		}
	}
	bson_destroy(op->doc);
	op->doc = NULL;
	op->u.all.pos = 0;
	return 1;
}

/* Finds the manifest holding offset after+1 into op->mdoc, or finishes the
 * read when there is none yet. */
static int read_all_start(wctx_t *w, op_t *op)
{
	bson_error_t err;
	uint64_t after = op->u.all.after;
	op->u.all.next_off = after + 1;
	op->u.all.mkey = after;
	if (op->u.all.left == 0) {
		op->finished = 1;
		return 0;
	}
	if (after == 0)
		return 0;
	/* A reader that consumed whole manifests resumes at a manifest's end,
	 * which is the next manifest's _id. */
	int rc = find_num(w, SKALD_MONGO_ORDER, after, NULL, &op->mdoc, &err);
	if (rc == 0) {
		bson_t *filter = BCON_NEW("_id", "{", "$lte", BCON_INT64(i64(after)), "}");
		bson_t *opts = BCON_NEW("sort", "{", "_id", BCON_INT32(-1), "}");
		rc = find_one(w, SKALD_MONGO_ORDER, filter, opts, &op->mdoc, &err);
		bson_destroy(filter);
		bson_destroy(opts);
		if (rc == 1) {
			uint64_t id = doc_u64(op->mdoc, "_id"), n = doc_u64(op->mdoc, "n");
			if (id + n > after) {
				op->u.all.mkey = id;
			} else {
				/* after is the end of the chain (or past it). */
				bson_destroy(op->mdoc);
				op->mdoc = NULL;
			}
		}
	}
	if (rc < 0) {
		backend_error(op, "reading the global order", &err);
		return -1;
	}
	return 0;
}

static void step_read_all(wctx_t *w, op_t *op)
{
	bson_error_t err;
	if (!op->started) {
		op->started = 1;
		if (read_all_start(w, op) != 0 || op->finished)
			return;
	}
	while (op->nev < w->m->opt.batch && !op->finished) {
		if (op->mdoc == NULL) {
			int rc = find_num(w, SKALD_MONGO_ORDER, op->u.all.mkey, NULL, &op->mdoc,
			                  &err);
			if (rc < 0) {
				backend_error(op, "reading the global order", &err);
				return;
			}
			if (rc == 0) {
				op->finished = 1; /* the end of the order, for now */
				return;
			}
			op->u.all.widx = 0;
		}
		uint64_t base = op->u.all.mkey + 1, n = doc_u64(op->mdoc, "n");
		bson_iter_t it, ws;
		uint32_t i = 0;
		uint64_t off = base;
		if (bson_iter_init_find(&it, op->mdoc, "w") && bson_iter_recurse(&it, &ws)) {
			while (bson_iter_next(&ws) && !op->finished && op->nev < w->m->opt.batch) {
				bson_t entry;
				const uint8_t *data;
				uint32_t len;
				if (!BSON_ITER_HOLDS_DOCUMENT(&ws))
					continue;
				bson_iter_document(&ws, &len, &data);
				if (!bson_init_static(&entry, data, len))
					continue;
				bson_iter_t f;
				const char *pid = bson_iter_init_find(&f, &entry, "p") &&
				                                  BSON_ITER_HOLDS_UTF8(&f)
				                          ? bson_iter_utf8(&f, NULL)
				                          : "";
				uint64_t prev = doc_u64(&entry, "e"), count = doc_u64(&entry, "c");
				uint64_t at = off;
				off += count;
				if (i++ < op->u.all.widx)
					continue;
				if (at + count <= op->u.all.next_off) {
					/* Delivered already (a batch may end with a
					 * write's last event). */
					if (op->doc) {
						bson_destroy(op->doc);
						op->doc = NULL;
						op->u.all.pos = 0;
					}
					op->u.all.widx = i;
					continue;
				}
				if (op->doc == NULL) {
					if (resolve_write(w, op, pid, prev, count, at) != 0)
						return;
					if (op->doc == NULL) {
						op->u.all.widx = i;
						continue;
					}
				}
				if (read_all_doc(w, op, pid, at) == 0 || op->status != 0)
					return; /* the batch is full; resume in this document */
				op->u.all.widx = i;
				if (op->u.all.next_off < at + count)
					op->u.all.next_off = at + count;
			}
			if (op->finished || op->nev >= w->m->opt.batch)
				return;
		}
		/* The manifest is done. */
		op->u.all.mkey += n ? n : 1;
		if (op->u.all.next_off < op->u.all.mkey + 1)
			op->u.all.next_off = op->u.all.mkey + 1;
		bson_destroy(op->mdoc);
		op->mdoc = NULL;
	}
}

/* ------------------------------------------------------------------------ */
/* Worker: listing ids                                                       */

static void step_list(wctx_t *w, op_t *op)
{
	bson_error_t err;
	const char *prefix = op->u.list.prefix ? op->u.list.prefix : "";
	size_t plen = strlen(prefix);
	if (!op->started) {
		op->started = 1;
		if (op->u.list.left == 0) {
			op->finished = 1;
			return;
		}
		/* Byte order: MongoDB and FerretDB both compare strings by
		 * their UTF-8 bytes (the simple collation), as strcmp does. */
		bson_t filter = BSON_INITIALIZER, range;
		BSON_APPEND_DOCUMENT_BEGIN(&filter, "_id", &range);
		BSON_APPEND_UTF8(&range, "$gte", prefix);
		if (op->u.list.after)
			BSON_APPEND_UTF8(&range, "$gt", op->u.list.after);
		bson_append_document_end(&filter, &range);
		bson_t *opts = BCON_NEW("sort", "{", "_id", BCON_INT32(1), "}");
		mongoc_collection_t *c = coll_of(w, SKALD_MONGO_HEADS);
		op->cursor = mongoc_collection_find_with_opts(c, &filter, opts, NULL);
		mongoc_collection_destroy(c);
		bson_destroy(&filter);
		bson_destroy(opts);
	}
	while (op->nids < w->m->opt.batch && !op->finished) {
		const bson_t *doc;
		if (!mongoc_cursor_next(op->cursor, &doc)) {
			if (mongoc_cursor_error(op->cursor, &err))
				backend_error(op, "listing persistence ids", &err);
			op->finished = 1;
			return;
		}
		bson_iter_t it;
		if (!bson_iter_init_find(&it, doc, "_id") || !BSON_ITER_HOLDS_UTF8(&it))
			continue;
		const char *id = bson_iter_utf8(&it, NULL);
		if (strncmp(id, prefix, plen) != 0) {
			op->finished = 1; /* sorted: no later id has the prefix */
			return;
		}
		char *copy = strdup(id);
		uint64_t h;
		if (copy == NULL) {
			fail(op, SKALD_ENOMEM, "out of memory listing persistence ids");
			return;
		}
		if (walk_highest(w, copy, &h, &err) != 0) {
			free(copy);
			backend_error(op, "listing persistence ids", &err);
			return;
		}
		if (h == 0) {
			free(copy); /* a writer that never stored its first write */
			continue;
		}
		if (op->nids == op->idcap) {
			size_t n = op->idcap ? op->idcap * 2 : 64;
			skald_persistence_id_t *ids = realloc(op->ids, n * sizeof *ids);
			if (ids == NULL) {
				free(copy);
				fail(op, SKALD_ENOMEM, "out of memory listing persistence ids");
				return;
			}
			op->ids = ids;
			op->idcap = n;
		}
		op->ids[op->nids++] = (skald_persistence_id_t){copy, h};
		if (--op->u.list.left == 0)
			op->finished = 1;
	}
}

/* ------------------------------------------------------------------------ */
/* Worker thread                                                             */

/* Releases what a stream holds between steps. Worker thread. */
static void release(wctx_t *w, op_t *op)
{
	if (op->cursor) {
		mongoc_cursor_destroy(op->cursor);
		op->cursor = NULL;
	}
	if (op->doc) {
		bson_destroy(op->doc);
		op->doc = NULL;
	}
	if (op->mdoc) {
		bson_destroy(op->mdoc);
		op->mdoc = NULL;
	}
}

static void run_op(mg_t *m, op_t *op)
{
	wctx_t w = {m, m->be, op->client};
	if (w.client == NULL)
		w.client = mongoc_client_pool_pop(m->be->pool);
	if (op->stop) {
		release(&w, op);
		op->finished = 1;
		goto out;
	}
	if (!op->started && !atomic_load(&m->be->schema_ok)) {
		int rc = skald__mongo_schema_check(w.client, m->be->db, op->errmsg,
		                                   sizeof op->errmsg);
		if (rc != 0) {
			op->status = rc;
			op->finished = 1;
			if (op->kind == OP_APPEND)
				for (size_t i = 0; i < op->u.append.n; i++)
					op->u.append.writes[i].status = rc;
			goto out;
		}
		atomic_store(&m->be->schema_ok, 1);
	}
	switch (op->kind) {
	case OP_APPEND:
		run_append(&w, op);
		break;
	case OP_READ:
		step_read(&w, op);
		break;
	case OP_HIGHEST:
		step_highest(&w, op);
		break;
	case OP_DELETE_TO:
		step_delete_to(&w, op);
		break;
	case OP_SNAP_SAVE:
		step_snap_save(&w, op);
		break;
	case OP_SNAP_LOAD:
		step_snap_load(&w, op);
		break;
	case OP_SNAP_DELETE:
		step_snap_delete(&w, op, 0);
		break;
	case OP_SNAP_DELETE_TO:
		step_snap_delete(&w, op, 1);
		break;
	case OP_READ_ALL:
		step_read_all(&w, op);
		break;
	case OP_LIST:
		step_list(&w, op);
		break;
	}
	if (op->finished)
		release(&w, op);
out:
	/* A stream reading a cursor keeps its client (a cursor belongs to
	 * one); every other operation gives it back. */
	if (op->cursor) {
		op->client = w.client;
	} else {
		mongoc_client_pool_push(m->be->pool, w.client);
		op->client = NULL;
	}
}

static void *worker_main(void *arg)
{
	mg_t *m = arg;
	for (;;) {
		pthread_mutex_lock(&m->lock);
		while (m->todo_head == NULL && !m->stop)
			pthread_cond_wait(&m->cond, &m->lock);
		op_t *op = m->todo_head;
		if (op == NULL) {
			m->exited = 1;
			pthread_mutex_unlock(&m->lock);
			if (m->async_ready)
				uv_async_send(&m->async);
			return NULL;
		}
		m->todo_head = op->next;
		if (m->todo_head == NULL)
			m->todo_tail = NULL;
		pthread_mutex_unlock(&m->lock);

		run_op(m, op);

		pthread_mutex_lock(&m->lock);
		push(&m->done_head, &m->done_tail, op);
		pthread_mutex_unlock(&m->lock);
		uv_async_send(&m->async);
	}
}

/* ------------------------------------------------------------------------ */
/* Loop side: completions                                                    */

static void on_async_closed(uv_handle_t *h)
{
	mg_t *m = h->data;
	m->close_done(m->j);
}

static void request_stop(mg_t *m)
{
	pthread_mutex_lock(&m->lock);
	m->stop = 1;
	pthread_cond_signal(&m->cond);
	pthread_mutex_unlock(&m->lock);
}

static void complete(mg_t *m, op_t *op)
{
	op_free(op);
	if (--m->inflight == 0 && m->closing)
		request_stop(m);
}

/* Delivers what the worker made of op. Loop thread. */
static void deliver(mg_t *m, op_t *op)
{
	skald_journal_t *j = m->j;
	if (op->errmsg[0])
		skald_journal_set_errmsg(j, "%s", op->errmsg);
	if (op->bad_pid)
		skald_journal_set_bad_event(j, op->bad_pid, op->bad_seq, op->bad_offset);
	switch (op->kind) {
	case OP_APPEND:
		op->u.append.cb(j, op->status, op->u.append.writes, op->u.append.n, op->arg);
		complete(m, op);
		return;
	case OP_HIGHEST:
		op->u.highest.cb(j, op->status, op->u.highest.seq, op->arg);
		complete(m, op);
		return;
	case OP_SNAP_LOAD:
		op->u.snap.cb(j, op->status, op->u.snap.found ? &op->u.snap.snap : NULL, op->arg);
		complete(m, op);
		return;
	case OP_DELETE_TO:
	case OP_SNAP_SAVE:
	case OP_SNAP_DELETE:
	case OP_SNAP_DELETE_TO:
		op->done(j, op->status, op->arg);
		complete(m, op);
		return;
	case OP_READ:
	case OP_READ_ALL:
	case OP_LIST:
		break;
	}
	int rc = 0;
	if (op->nev > 0) {
		skald_events_fn cb = op->kind == OP_READ ? op->u.read.cb : op->u.all.cb;
		rc = cb(j, op->ev, op->nev, op->arg);
	} else if (op->nids > 0) {
		rc = op->u.list.cb(j, op->ids, op->nids, op->arg);
	}
	free_batch(op);
	op->errmsg[0] = '\0';
	if (!op->finished && rc == 0 && !m->closing) {
		to_worker(m, op); /* the next batch */
		return;
	}
	if (!op->finished) {
		/* Stopped by the reader, or cut short by close: the worker
		 * releases the stream, then done runs. */
		op->status = rc != 0 ? rc : SKALD_ECANCELED;
		op->stop = 1;
		to_worker(m, op);
		return;
	}
	if (op->status == 0)
		op->status = rc;
	op->done(j, op->status, op->arg);
	complete(m, op);
}

static void on_async(uv_async_t *a)
{
	mg_t *m = a->data;
	pthread_mutex_lock(&m->lock);
	op_t *op = m->done_head;
	m->done_head = m->done_tail = NULL;
	int exited = m->exited;
	pthread_mutex_unlock(&m->lock);
	while (op) {
		op_t *next = op->next;
		deliver(m, op);
		op = next;
	}
	if (exited && !m->joined) {
		pthread_join(m->thread, NULL);
		m->joined = 1;
		uv_close((uv_handle_t *)&m->async, on_async_closed);
	}
}

/* ------------------------------------------------------------------------ */
/* The store table                                                           */

static int mg_open(void *state, skald_journal_t *j, uv_loop_t *loop, const char *uri)
{
	mg_t *m = state;
	char err[400];
	mongoc_uri_t *u;
	char *key;
	pthread_once(&mongoc_once, init_mongoc);
	m->j = j;
	m->loop = loop;
	int rc = make_uri(uri, &m->opt, &u, &key, err, sizeof err);
	if (rc != 0) {
		skald_journal_set_errmsg(j, "%s", err);
		return rc;
	}
	m->be = backend_attach(key, u, mongoc_uri_get_database(u));
	free(key);
	if (m->be == NULL) {
		mongoc_uri_destroy(u);
		skald_journal_set_errmsg(j, "out of memory opening the MongoDB journal");
		return SKALD_ENOMEM;
	}
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->cond, NULL);
	m->sync_ready = 1;
	if (pthread_create(&m->thread, NULL, worker_main, m) != 0) {
		skald_journal_set_errmsg(j, "cannot start the MongoDB journal's worker thread");
		return SKALD_ENOMEM;
	}
	m->thread_started = 1;
	/* Last: a failed open must leave no loop handle behind. */
	rc = uv_async_init(loop, &m->async, on_async);
	if (rc != 0) {
		request_stop(m);
		pthread_join(m->thread, NULL);
		m->thread_started = 0;
		skald_journal_set_errmsg(j, "cannot create the MongoDB journal's wakeup handle: %s",
		                         uv_strerror(rc));
		return rc;
	}
	m->async.data = m;
	m->async_ready = 1;
	return 0;
}

static void mg_close(void *state, void (*done)(skald_journal_t *j))
{
	mg_t *m = state;
	m->closing = 1;
	m->close_done = done;
	/* Operations in flight finish first; the last one stops the worker
	 * (complete), whose exit closes the async handle, whose close calls
	 * done: never from inside this call. */
	if (m->inflight == 0)
		request_stop(m);
}

static void mg_fini(void *state)
{
	mg_t *m = state;
	if (m->thread_started && !m->joined) {
		request_stop(m);
		pthread_join(m->thread, NULL);
	}
	while (m->done_head) {
		op_t *op = m->done_head;
		m->done_head = op->next;
		op_free(op);
	}
	if (m->sync_ready) {
		pthread_mutex_destroy(&m->lock);
		pthread_cond_destroy(&m->cond);
	}
	if (m->be)
		backend_detach(m->be);
	memset(m, 0, sizeof *m);
}

static int mg_append(void *state, skald_write_t *writes, size_t nwrites, skald_append_fn cb,
                     void *arg)
{
	mg_t *m = state;
	op_t *op = op_new(m, OP_APPEND, NULL, arg);
	if (op == NULL)
		return m->closing ? SKALD_ECLOSED : SKALD_ENOMEM;
	op->u.append.cb = cb;
	op->u.append.writes = writes;
	op->u.append.n = nwrites;
	return submit(m, op);
}

static int mg_read(void *state, const char *pid, uint64_t from, uint64_t to, uint64_t max,
                   skald_events_fn on_events, skald_done_fn done, void *arg)
{
	mg_t *m = state;
	op_t *op = op_new(m, OP_READ, pid, arg);
	if (op == NULL)
		return m->closing ? SKALD_ECLOSED : SKALD_ENOMEM;
	op->done = done;
	op->u.read.cb = on_events;
	op->u.read.from = from;
	op->u.read.to = to > INT64_LIMIT ? INT64_LIMIT : to;
	op->u.read.left = max;
	return submit(m, op);
}

static int mg_highest(void *state, const char *pid, skald_seq_fn cb, void *arg)
{
	mg_t *m = state;
	op_t *op = op_new(m, OP_HIGHEST, pid, arg);
	if (op == NULL)
		return m->closing ? SKALD_ECLOSED : SKALD_ENOMEM;
	op->u.highest.cb = cb;
	return submit(m, op);
}

static int mg_delete_to(void *state, const char *pid, uint64_t to, skald_done_fn cb, void *arg)
{
	mg_t *m = state;
	op_t *op = op_new(m, OP_DELETE_TO, pid, arg);
	if (op == NULL)
		return m->closing ? SKALD_ECLOSED : SKALD_ENOMEM;
	op->done = cb;
	op->u.del.to = to;
	return submit(m, op);
}

static int mg_snapshot_save(void *state, skald_snapshot_t *snap, skald_done_fn cb, void *arg)
{
	mg_t *m = state;
	op_t *op = op_new(m, OP_SNAP_SAVE, snap->persistence_id, arg);
	if (op == NULL)
		return m->closing ? SKALD_ECLOSED : SKALD_ENOMEM;
	op->done = cb;
	op->u.save.snap = snap;
	return submit(m, op);
}

static int mg_snapshot_load(void *state, const char *pid, uint64_t max_seq, skald_snapshot_fn cb,
                            void *arg)
{
	mg_t *m = state;
	op_t *op = op_new(m, OP_SNAP_LOAD, pid, arg);
	if (op == NULL)
		return m->closing ? SKALD_ECLOSED : SKALD_ENOMEM;
	op->u.snap.cb = cb;
	op->u.snap.seq = max_seq;
	return submit(m, op);
}

static int snap_delete(mg_t *m, enum op_kind kind, const char *pid, uint64_t seq, skald_done_fn cb,
                       void *arg)
{
	op_t *op = op_new(m, kind, pid, arg);
	if (op == NULL)
		return m->closing ? SKALD_ECLOSED : SKALD_ENOMEM;
	op->done = cb;
	op->u.snap.seq = seq;
	return submit(m, op);
}

static int mg_snapshot_delete(void *state, const char *pid, uint64_t seq, skald_done_fn cb,
                              void *arg)
{
	return snap_delete(state, OP_SNAP_DELETE, pid, seq, cb, arg);
}

static int mg_snapshot_delete_to(void *state, const char *pid, uint64_t max_seq, skald_done_fn cb,
                                 void *arg)
{
	return snap_delete(state, OP_SNAP_DELETE_TO, pid, max_seq, cb, arg);
}

static int mg_read_all(void *state, uint64_t after, uint64_t max, skald_events_fn on_events,
                       skald_done_fn done, void *arg)
{
	mg_t *m = state;
	op_t *op = op_new(m, OP_READ_ALL, NULL, arg);
	if (op == NULL)
		return m->closing ? SKALD_ECLOSED : SKALD_ENOMEM;
	op->done = done;
	op->u.all.cb = on_events;
	op->u.all.after = after;
	op->u.all.left = max;
	return submit(m, op);
}

static int mg_list_ids(void *state, const char *prefix, const char *after, uint64_t max,
                       skald_ids_fn on_ids, skald_done_fn done, void *arg)
{
	mg_t *m = state;
	op_t *op = op_new(m, OP_LIST, NULL, arg);
	if (op == NULL)
		return m->closing ? SKALD_ECLOSED : SKALD_ENOMEM;
	op->done = done;
	op->u.list.cb = on_ids;
	op->u.list.left = max;
	if ((prefix && *prefix && (op->u.list.prefix = strdup(prefix)) == NULL) ||
	    (after && (op->u.list.after = strdup(after)) == NULL)) {
		op_free(op);
		return SKALD_ENOMEM;
	}
	return submit(m, op);
}

static const skald_store_t mongo_store = {
        .abi = SKALD_STORE_ABI,
        .schemes = {"mongodb", "mongodb+srv"},
        .state_size = sizeof(mg_t),
        .caps = SKALD_CAP_ATOMIC_WRITES | SKALD_CAP_BATCHED_WRITES | SKALD_CAP_SHARED |
                SKALD_CAP_DURABLE | SKALD_CAP_SNAPSHOTS | SKALD_CAP_QUERIES,
        .open = mg_open,
        .close = mg_close,
        .fini = mg_fini,
        .append = mg_append,
        .read = mg_read,
        .highest = mg_highest,
        .delete_to = mg_delete_to,
        .snapshot_save = mg_snapshot_save,
        .snapshot_load = mg_snapshot_load,
        .snapshot_delete = mg_snapshot_delete,
        .snapshot_delete_to = mg_snapshot_delete_to,
        .read_all = mg_read_all,
        .list_ids = mg_list_ids,
        .migrate = skald__mongo_migrate,
};

/* A constructor: see the declaration. A failure shows up as an unknown
 * scheme, with the list of the schemes that did register. */
__attribute__((constructor)) void skald__store_mongo_register(void)
{
	(void)skald_store_register(&mongo_store);
}

/* ------------------------------------------------------------------------ */
/* Migrations, for tools                                                     */

int skald__mongo_migrate(const char *uri, int status_only, FILE *out, char *err, size_t errlen)
{
	uri_opts_t o;
	mongoc_uri_t *u;
	char *key;
	pthread_once(&mongoc_once, init_mongoc);
	int rc = make_uri(uri, &o, &u, &key, err, errlen);
	if (rc != 0)
		return rc;
	free(key);
	mongoc_client_t *client = mongoc_client_new_from_uri(u);
	if (client == NULL) {
		mongoc_uri_destroy(u);
		snprintf(err, errlen, "cannot create a MongoDB client for the journal URI");
		return SKALD_EURI;
	}
	mongoc_client_set_error_api(client, MONGOC_ERROR_API_VERSION_2);
	if (mongoc_uri_get_appname(u) == NULL)
		mongoc_client_set_appname(client, "skald-migrate");
	rc = skald__mongo_migrate_client(client, mongoc_uri_get_database(u), status_only, out, err,
	                                 errlen);
	mongoc_client_destroy(client);
	mongoc_uri_destroy(u);
	return rc;
}
