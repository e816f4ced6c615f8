/*
 * stores/mongo/snapshot.c - snapshots, on the worker.
 */
#include <inttypes.h>
#include <stdlib.h>

#include "stores/mongo/engine.h"

/* ------------------------------------------------------------------------ */
/* Worker: snapshots                                                         */

void skald__mg_step_snap_save(wctx_t *w, op_t *op)
{
	const skald_snapshot_t *s = op->u.save.snap;
	char *key = skald__mongo_event_key(s->persistence_id, s->seq);
	bson_t doc = BSON_INITIALIZER;
	op->finished = 1;
	if (key == NULL) {
		skald__mg_fail(op, SKALD_ENOMEM, "out of memory saving a snapshot");
		return;
	}
	BSON_APPEND_UTF8(&doc, "_id", key);
	BSON_APPEND_UTF8(&doc, "pid", s->persistence_id);
	BSON_APPEND_INT64(&doc, "seq", skald__mg_i64(s->seq));
	BSON_APPEND_INT32(&doc, "v", s->version);
	BSON_APPEND_DATE_TIME(&doc, "ts", s->timestamp);
	char why[160];
	int rc = skald__mongo_put_data(&doc, s->data, why, sizeof why);
	if (rc == 0 && doc.len > MAX_DOC) {
		snprintf(why, sizeof why, "is larger than one MongoDB document (16 MiB)");
		rc = SKALD_EREJECTED;
	}
	if (rc != 0) {
		skald__mg_fail(op, SKALD_EREJECTED,
		               "snapshot of \"%s\" at seq %" PRIu64 " rejected: data %s",
		               s->persistence_id, s->seq, why);
	} else {
		bson_error_t err;
		mongoc_collection_t *c = skald__mg_coll_of(w, SKALD_MONGO_SNAPSHOTS);
		bson_t *sel = BCON_NEW("_id", BCON_UTF8(key));
		bson_t *opts = BCON_NEW("upsert", BCON_BOOL(true));
		if (!mongoc_collection_replace_one(c, sel, &doc, opts, NULL, &err))
			skald__mg_backend_error(op, "saving a snapshot", &err);
		bson_destroy(sel);
		bson_destroy(opts);
		mongoc_collection_destroy(c);
	}
	bson_destroy(&doc);
	free(key);
}

void skald__mg_step_snap_load(wctx_t *w, op_t *op)
{
	bson_error_t err;
	bson_t *doc;
	bson_t *filter = BCON_NEW("pid", BCON_UTF8(op->pid), "seq", "{", "$lte",
	                          BCON_INT64(skald__mg_i64(op->u.snap.seq)), "}");
	bson_t *opts = BCON_NEW("sort", "{", "seq", BCON_INT32(-1), "}");
	int rc = skald__mg_find_one(w, SKALD_MONGO_SNAPSHOTS, filter, opts, &doc, &err);
	bson_destroy(filter);
	bson_destroy(opts);
	op->finished = 1;
	if (rc < 0) {
		skald__mg_backend_error(op, "loading a snapshot", &err);
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
		skald__mg_fail(op, SKALD_EDECODE, "snapshot of \"%s\" cannot be decoded: %s",
		               op->pid, why);
	} else {
		op->u.snap.found = 1;
		op->u.snap.snap.persistence_id = op->pid;
		op->u.snap.snap.seq = skald__mg_doc_u64(doc, "seq");
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

void skald__mg_step_snap_delete(wctx_t *w, op_t *op, int upto)
{
	bson_error_t err;
	mongoc_collection_t *c = skald__mg_coll_of(w, SKALD_MONGO_SNAPSHOTS);
	bson_t *filter;
	bool ok;
	if (upto) {
		filter = BCON_NEW("pid", BCON_UTF8(op->pid), "seq", "{", "$lte",
		                  BCON_INT64(skald__mg_i64(op->u.snap.seq)), "}");
		ok = mongoc_collection_delete_many(c, filter, NULL, NULL, &err);
	} else {
		char *key = skald__mongo_event_key(op->pid, op->u.snap.seq);
		filter = BCON_NEW("_id", BCON_UTF8(key ? key : ""));
		free(key);
		ok = mongoc_collection_delete_one(c, filter, NULL, NULL, &err);
	}
	if (!ok)
		skald__mg_backend_error(op, "deleting snapshots", &err);
	bson_destroy(filter);
	mongoc_collection_destroy(c);
	op->finished = 1;
}
