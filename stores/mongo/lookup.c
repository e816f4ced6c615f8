/*
 * stores/mongo/lookup.c - the worker's small helpers over libmongoc: finding
 * documents, hints, the highest seq of an id.
 */
#include <inttypes.h>
#include <stdlib.h>

#include "stores/mongo/engine.h"

/* ------------------------------------------------------------------------ */
/* Worker: small helpers over libmongoc                                      */

mongoc_collection_t *skald__mg_coll_of(wctx_t *w, const char *name)
{
	return mongoc_client_get_collection(w->client, w->be->db, name);
}

/* The unsigned integer field key of doc (0 when absent). */
uint64_t skald__mg_doc_u64(const bson_t *doc, const char *key)
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

int skald__mg_doc_bool(const bson_t *doc, const char *key)
{
	bson_iter_t it;
	return bson_iter_init_find(&it, doc, key) && bson_iter_as_bool(&it);
}

int64_t skald__mg_i64(uint64_t v)
{
	return v > INT64_LIMIT ? INT64_MAX : (int64_t)v;
}

/*
 * Finds one document of collection name matching filter (opts as for
 * mongoc_collection_find_with_opts; a limit of 1 is added). Returns 1 with a
 * copy in *out, 0 when there is none, -1 on error (err set).
 */
int skald__mg_find_one(wctx_t *w, const char *name, const bson_t *filter, const bson_t *opts,
                       bson_t **out, bson_error_t *err)
{
	mongoc_collection_t *c = skald__mg_coll_of(w, name);
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
int skald__mg_find_key(wctx_t *w, const char *name, const char *key, const bson_t *projection,
                       bson_t **out, bson_error_t *err)
{
	bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER;
	BSON_APPEND_UTF8(&filter, "_id", key);
	if (projection)
		BSON_APPEND_DOCUMENT(&opts, "projection", projection);
	int rc = skald__mg_find_one(w, name, &filter, &opts, out, err);
	bson_destroy(&filter);
	bson_destroy(&opts);
	return rc;
}

/* find_one by an integer _id (manifests). */
int skald__mg_find_num(wctx_t *w, const char *name, uint64_t key, const bson_t *projection,
                       bson_t **out, bson_error_t *err)
{
	bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER;
	BSON_APPEND_INT64(&filter, "_id", skald__mg_i64(key));
	if (projection)
		BSON_APPEND_DOCUMENT(&opts, "projection", projection);
	int rc = skald__mg_find_one(w, name, &filter, &opts, out, err);
	bson_destroy(&filter);
	bson_destroy(&opts);
	return rc;
}

/* find_one of the events document in slot (pid, prev). */
int skald__mg_find_slot(wctx_t *w, const char *pid, uint64_t prev, const bson_t *projection,
                        bson_t **out, bson_error_t *err)
{
	char *key = skald__mongo_event_key(pid, prev);
	if (key == NULL) {
		bson_set_error(err, 0, 0, "out of memory");
		return -1;
	}
	int rc = skald__mg_find_key(w, SKALD_MONGO_EVENTS, key, projection, out, err);
	free(key);
	return rc;
}

/* Raises pid's hint in skald_heads to h; a failure only costs a longer walk
 * later, so it is ignored. Creates the head if it is missing (a writer that
 * died between its head and its events leaves none). */
static void hint_update(wctx_t *w, const char *pid, uint64_t h)
{
	mongoc_collection_t *c = skald__mg_coll_of(w, SKALD_MONGO_HEADS);
	bson_t *sel = BCON_NEW("_id", BCON_UTF8(pid));
	bson_t *upd = BCON_NEW("$max", "{", "h", BCON_INT64(skald__mg_i64(h)), "}");
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
int skald__mg_walk_highest(wctx_t *w, const char *pid, uint64_t *out, bson_error_t *err)
{
	uint64_t b = 0;
	if (!skald__mg_cache_get(w->be, pid, &b) || b == 0) {
		bson_t *proj = BCON_NEW("h", BCON_INT32(1)), *doc;
		int rc = skald__mg_find_key(w, SKALD_MONGO_HEADS, pid, proj, &doc, err);
		bson_destroy(proj);
		if (rc < 0)
			return -1;
		if (rc == 1) {
			uint64_t h = skald__mg_doc_u64(doc, "h");
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
			rc = skald__mg_find_one(w, SKALD_MONGO_EVENTS, filter, opts, &doc, err);
			bson_destroy(filter);
			bson_destroy(opts);
			if (rc == 1) {
				uint64_t to = skald__mg_doc_u64(doc, "to");
				if (to > b)
					b = to;
				bson_destroy(doc);
			}
			/* Documents stored after the query extend the chain
			 * further: walk on from the new end. */
			if (rc < 0)
				break;
			steps = 0;
			rc = skald__mg_find_slot(w, pid, b, proj, &doc, err);
			if (rc != 1)
				break;
		} else {
			rc = skald__mg_find_slot(w, pid, b, proj, &doc, err);
			if (rc != 1)
				break;
		}
		uint64_t to = skald__mg_doc_u64(doc, "to");
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
	skald__mg_cache_put(w->be, pid, b, 0);
	if (steps > 8)
		hint_update(w, pid, b);
	*out = b;
	return 0;
}
