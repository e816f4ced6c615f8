/*
 * stores/mongo/engine.h - the MongoDB store's handle, its operations, its
 * backends, and what the store's files share. Never installed.
 *
 * Files (README.md explains the design):
 *   mongo.c     open, close, the store table and its registration; migrate
 *   backend.c   one client pool and its caches per URI, shared in the process
 *   uri.c       mongodb:// URIs
 *   op.c        start: an operation's working state, messages, hand-over to
 *               the worker
 *   worker.c    the worker thread; the loop side that delivers results
 *   lookup.c    the worker's helpers over libmongoc
 *   append.c    append
 *   read.c      read, highest, delete_to
 *   snapshot.c  snapshots
 *   order.c     read_all (the global order)
 *   ids.c       list_ids
 *   codec.c     event data as BSON or JSON text (mongo_int.h)
 *   schema.c    migrations and the schema check (mongo_int.h)
 */
#ifndef SKALD_STORES_MONGO_ENGINE_H
#define SKALD_STORES_MONGO_ENGINE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "stores/mongo/mongo_int.h"

/* _id lookups a chain walk makes before it switches to a range query. */
#define WALK_LIMIT 32
/* Writes of an id between two refreshes of its hint. */
#define PID_HINT_EVERY 64
/* Largest event document: MongoDB's 16 MiB, less room for the envelope. */
#define MAX_DOC           (16 * 1024 * 1024 - 16 * 1024)
#define ERR_DUPLICATE_KEY 11000
#define INT64_LIMIT       ((uint64_t)INT64_MAX)

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

typedef struct uri_opts_s {
	size_t batch;
	int64_t gap_ms;
} uri_opts_t;

/* The store's working state for one operation of the front (sop), from
 * start to finish; streams released to the front run beside later
 * operations, so there may be several. Linked only in the worker's queues. */
typedef struct op_s {
	struct op_s *next;
	skald_op_t *sop;
	skald_op_kind_t kind;
	int status;
	int started;      /* worker: the first step ran */
	int finished;     /* stream: no batch after the one it carries */
	int stop;         /* stream: the loop ended it; the worker releases it */
	int released;     /* stream: its turn is given back to the front */
	const char *pid;  /* sop's */
	char errmsg[400]; /* set by the worker, given to the handle on the loop */
	/* The stored event a read cannot decode (bad_pid owned; NULL: none),
	 * given to the handle with errmsg. */
	char *bad_pid;
	uint64_t bad_seq, bad_offset;

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
			skald_write_t **writes;
			size_t n;
		} append;
		struct {
			uint64_t from, to, left;
			uint64_t next;     /* the lowest seq still to deliver */
			uint64_t key_prev; /* walk: the slot to look up next */
			uint32_t pos;      /* index in doc's events */
			int query;         /* walking done: reading the range query */
			unsigned walked;
		} read;
		struct {
			uint64_t seq;
		} highest;
		struct {
			uint64_t to;
		} del;
		struct {
			skald_snapshot_t *snap;
		} save;
		struct {
			uint64_t seq; /* max seq for load; exact seq for delete */
			int found;
			skald_snapshot_t snap; /* persistence_id is op->pid; data owned */
		} snap;
		struct {
			uint64_t after, left;
			uint64_t next_off; /* the lowest offset still to deliver */
			uint64_t mkey;     /* _id of the manifest to walk next */
			uint32_t widx;     /* write in mdoc */
			uint32_t pos;      /* event in doc */
			int64_t deadline;  /* when a missing write is fenced off */
		} all;
		struct {
			const char *prefix, *after; /* sop's; NULL: none */
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

typedef struct wctx_s {
	mg_t *m;
	backend_t *be;
	mongoc_client_t *client;
} wctx_t;

/* The last boundary known for pid, in *boundary; 0 when none is known. */
int skald__mg_cache_get(backend_t *be, const char *pid, uint64_t *boundary);

/*
 * Records that boundary ends a stored document of pid (keeping the highest
 * known), counting a write when wrote is set. Returns the writes since the
 * hint was last refreshed, and resets that count when it reaches
 * PID_HINT_EVERY (the caller then refreshes the hint).
 */
uint32_t skald__mg_cache_put(backend_t *be, const char *pid, uint64_t boundary, int wrote);

/* Forgets pid's boundary: after a conflict, another writer moved it on. */
void skald__mg_cache_drop(backend_t *be, const char *pid);

/* The backend for the mongoc URI text key (parsed as uri), created on first
 * use. Takes ownership of uri on success. */
backend_t *skald__mg_backend_attach(const char *key, mongoc_uri_t *uri, const char *db);

/* A backend outlives its handles, as a connection pool should: a handle
 * opened again later finds its connections and caches (above all the end of
 * the order chain) still there. Backends live until the process exits. */
void skald__mg_backend_detach(backend_t *be);

/* Parses uri for libmongoc, with Skald's defaults for the timeouts. On
 * failure writes a message into err and returns SKALD_EURI. */
int skald__mg_make_uri(const char *uri, uri_opts_t *o, mongoc_uri_t **out, char **key, char *err,
                       size_t errlen);

void skald__mg_push(op_t **head, op_t **tail, op_t *op);

void skald__mg_free_batch(op_t *op);

/* Frees op; its mongoc resources must already be released (worker). */
void skald__mg_op_free(op_t *op);

/* Sets the message the handle gets with op's completion (truncated). */
void skald__mg_set_msg(op_t *op, const char *fmt, ...) SKALD_STORE_PRINTF(2, 3);

void skald__mg_fail(op_t *op, int code, const char *fmt, ...) SKALD_STORE_PRINTF(3, 4);

int64_t skald__mg_mono_ms(void);

void skald__mg_sleep_ms(int ms);

/* Hands op to the worker. Loop thread. */
void skald__mg_to_worker(mg_t *m, op_t *op);

/* The store's start member (store.h): makes sop's working state and hands
 * it to the worker. Loop thread. */
void skald__mg_start(void *state, skald_op_t *sop);

/* Adds an event to op's batch; takes data, copies the strings. */
int skald__mg_batch_add(op_t *op, const char *pid, uint64_t seq, const char *type, int version,
                        json_t *data, int64_t ts, uint64_t writer, uint64_t offset);

mongoc_collection_t *skald__mg_coll_of(wctx_t *w, const char *name);

/* The unsigned integer field key of doc (0 when absent). */
uint64_t skald__mg_doc_u64(const bson_t *doc, const char *key);

int skald__mg_doc_bool(const bson_t *doc, const char *key);

int64_t skald__mg_i64(uint64_t v);

/*
 * Finds one document of collection name matching filter (opts as for
 * mongoc_collection_find_with_opts; a limit of 1 is added). Returns 1 with a
 * copy in *out, 0 when there is none, -1 on error (err set).
 */
int skald__mg_find_one(wctx_t *w, const char *name, const bson_t *filter, const bson_t *opts,
                       bson_t **out, bson_error_t *err);

/* find_one by a string _id, with an optional projection. */
int skald__mg_find_key(wctx_t *w, const char *name, const char *key, const bson_t *projection,
                       bson_t **out, bson_error_t *err);

/* find_one by an integer _id (manifests). */
int skald__mg_find_num(wctx_t *w, const char *name, uint64_t key, const bson_t *projection,
                       bson_t **out, bson_error_t *err);

/* find_one of the events document in slot (pid, prev). */
int skald__mg_find_slot(wctx_t *w, const char *pid, uint64_t prev, const bson_t *projection,
                        bson_t **out, bson_error_t *err);

/*
 * The highest seq of pid: walks the chain of its events documents by _id
 * from the last boundary known (the process's cache, else the id's hint),
 * until the slot after a boundary is free. A walk that grows long asks for
 * the end with one range query instead. Returns 0 or -1 (err set).
 */
int skald__mg_walk_highest(wctx_t *w, const char *pid, uint64_t *out, bson_error_t *err);

void skald__mg_conflict(op_t *op, const skald_write_t *wr, const char *how, uint64_t highest);

/* Removes the payload of a write that was not stored; a failure leaves an
 * orphan that nothing refers to, which is harmless. */
void skald__mg_drop_payload(wctx_t *w, const bson_t *pl);

/*
 * Runs an append. Writes of one id chain within a call (the second expects
 * the first's last seq), so they go in rounds: round r holds the r-th write
 * of every id, and runs only after round r-1 has stored its predecessor.
 */
void skald__mg_run_append(wctx_t *w, op_t *op);

int skald__mg_add_event(op_t *op, const char *pid, uint64_t seq, uint64_t offset, bson_iter_t *it);

void skald__mg_backend_error(op_t *op, const char *what, const bson_error_t *err);

/* Replaces op->doc, when its events live in a payload document, by a copy
 * holding them. Returns 0, or -1 with op failed. */
int skald__mg_inline_payload(wctx_t *w, op_t *op);

void skald__mg_step_read(wctx_t *w, op_t *op);

void skald__mg_step_highest(wctx_t *w, op_t *op);

/*
 * Deletes by walking the chain from its start and updating each document by
 * _id; a history longer than WALK_LIMIT documents is finished with two
 * range updates (index pid_to) instead. Lookups and updates by _id are what
 * every server serves best; FerretDB 1.x runs a range update as a scan that
 * holds its write lock throughout. The documents stay (emptied): they carry
 * the chain, and with it the highest seq.
 */
void skald__mg_step_delete_to(wctx_t *w, op_t *op);

/* Worker: snapshots                                                         */
void skald__mg_step_snap_save(wctx_t *w, op_t *op);

void skald__mg_step_snap_load(wctx_t *w, op_t *op);

void skald__mg_step_snap_delete(wctx_t *w, op_t *op, int upto);

void skald__mg_step_read_all(wctx_t *w, op_t *op);

/* Worker: listing ids                                                       */
void skald__mg_step_list(wctx_t *w, op_t *op);

void *skald__mg_worker_main(void *arg);

void skald__mg_request_stop(mg_t *m);

void skald__mg_complete(mg_t *m, op_t *op);

/* Hands what the worker made of op to the front. Loop thread. */
void skald__mg_deliver(mg_t *m, op_t *op);

void skald__mg_on_async(uv_async_t *a);

#endif /* SKALD_STORES_MONGO_ENGINE_H */
