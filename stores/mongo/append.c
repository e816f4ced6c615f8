/*
 * stores/mongo/append.c - append, on the worker: events documents, manifests
 * in the order chain, conflicts.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal/journal_int.h"
#include "base/hash.h"
#include "stores/mongo/engine.h"

/* Manifests (or steps along the order chain) between two refreshes of the
 * order's hint. */
#define HINT_EVERY 16
/* Writes per manifest: bounds the manifest's size, far below 16 MiB. */
#define MAX_ROUND 4096
/* An events document larger than this keeps its events in a document of
 * skald_payloads (see "Payloads" in README.md). */
#define INLINE_MAX (8 * 1024)

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
	BSON_APPEND_INT64(doc, "prev", skald__mg_i64(wr->expected_seq));
	BSON_APPEND_INT64(doc, "to", skald__mg_i64(wr->expected_seq + wr->nevents));
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
		char why[160];
		int bad_type = !bson_utf8_validate(e->type, strlen(e->type), false);
		if (bad_type || skald__mongo_put_data(&el, e->data, why, sizeof why) != 0) {
			skald__mg_set_msg(
			        op, "append to \"%s\" rejected: event seq %" PRIu64 " (%s): %s%s",
			        wr->persistence_id, e->seq, e->type,
			        bad_type ? "its type name is not valid UTF-8" : "data ",
			        bad_type ? "" : why);
			*rc = SKALD_EREJECTED;
		}
		bson_append_document_end(&arr, &el);
	}
	bson_append_array_end(doc, &arr);
	if (*rc == 0 && doc->len > MAX_DOC) {
		skald__mg_set_msg(
		        op,
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

void skald__mg_conflict(op_t *op, const skald_write_t *wr, const char *how, uint64_t highest)
{
	skald__mg_set_msg(op,
	                  "append to \"%s\": expected highest seq %" PRIu64 ", but it is %s%" PRIu64
	                  " (another writer appended first)",
	                  wr->persistence_id, wr->expected_seq, how, highest);
}

/* Whether wr may be inserted: its expected seq must be a boundary (see the
 * top of this file). 0, SKALD_ECONFLICT or SKALD_EBACKEND. */
static int check_boundary(wctx_t *w, op_t *op, const skald_write_t *wr)
{
	uint64_t e = wr->expected_seq, b = 0;
	int known = skald__mg_cache_get(w->be, wr->persistence_id, &b) && b > 0;
	if (known && b == e)
		return 0;
	if (known && b > e) {
		/* Seq b is stored, so the highest is at least b. */
		skald__mg_conflict(op, wr, "at least ", b);
		return SKALD_ECONFLICT;
	}
	if (!known && e == 0)
		return 0; /* 0 is the root of every chain */
	bson_error_t err;
	uint64_t h;
	if (skald__mg_walk_highest(w, wr->persistence_id, &h, &err) != 0) {
		skald__mg_set_msg(op, "append to \"%s\": reading its highest seq failed: %s",
		                  wr->persistence_id, err.message);
		return SKALD_EBACKEND;
	}
	if (h == e)
		return 0;
	skald__mg_conflict(op, wr, "", h);
	return SKALD_ECONFLICT;
}

/* Inserts skald_heads documents for ids written for the first time, so that
 * list_ids finds them. Existing heads are fine. */
static int insert_heads(wctx_t *w, op_t *op, skald_write_t *const *ws, const size_t *idx,
                        bson_t **docs, size_t cnt)
{
	bson_t **heads = calloc(cnt, sizeof *heads);
	size_t nh = 0;
	int rc = 0;
	if (heads == NULL)
		return SKALD_ENOMEM;
	for (size_t k = 0; k < cnt; k++)
		if (docs[k] && ws[idx[k]]->expected_seq == 0)
			heads[nh++] = BCON_NEW("_id", BCON_UTF8(ws[idx[k]]->persistence_id), "h",
			                       BCON_INT64(0));
	if (nh > 0) {
		mongoc_collection_t *c = skald__mg_coll_of(w, SKALD_MONGO_HEADS);
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
				skald__mg_set_msg(
				        op,
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
	int rc = skald__mg_find_key(w, SKALD_MONGO_META, "order", NULL, &doc, err);
	if (rc < 0)
		return -1;
	w->be->order_end = rc == 1 ? skald__mg_doc_u64(doc, "end") : 0;
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
static int insert_manifest(wctx_t *w, skald_write_t *const *ws, const size_t *idx, bson_t **docs,
                           size_t cnt, uint64_t total, uint64_t *base, bson_error_t *err)
{
	backend_t *be = w->be;
	mongoc_collection_t *c = skald__mg_coll_of(w, SKALD_MONGO_ORDER);
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
		BSON_APPEND_INT64(&man, "_id", skald__mg_i64(p));
		BSON_APPEND_INT64(&man, "n", skald__mg_i64(total));
		BSON_APPEND_DATE_TIME(&man, "at", skald__now_ms());
		BSON_APPEND_ARRAY_BEGIN(&man, "w", &arr);
		uint32_t i = 0;
		for (size_t k = 0; k < cnt; k++) {
			if (docs[k] == NULL)
				continue;
			const skald_write_t *wr = ws[idx[k]];
			char buf[16];
			const char *key;
			size_t klen = bson_uint32_to_string(i++, &key, buf, sizeof buf);
			bson_append_document_begin(&arr, key, (int)klen, &el);
			BSON_APPEND_UTF8(&el, "p", wr->persistence_id);
			BSON_APPEND_INT64(&el, "e", skald__mg_i64(wr->expected_seq));
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
				int f = skald__mg_find_one(w, SKALD_MONGO_ORDER, &filter, opts,
				                           &doc, err);
				bson_destroy(opts);
				if (f < 0) {
					rc = -1;
					goto out;
				}
				if (f == 1) {
					uint64_t last = skald__mg_doc_u64(doc, "_id") +
					                skald__mg_doc_u64(doc, "n");
					bson_destroy(doc);
					if (last > p)
						p = last;
				}
				continue;
			}
			int f = skald__mg_find_num(w, SKALD_MONGO_ORDER, p, proj, &doc, err);
			if (f < 0) {
				rc = -1;
				goto out;
			}
			if (f == 0)
				break;
			uint64_t n = skald__mg_doc_u64(doc, "n");
			bson_destroy(doc);
			p += n ? n : 1;
		}
	}
	*base = p;
	be->order_end = p + total;
	if (++be->order_since_hint >= HINT_EVERY) {
		be->order_since_hint = 0;
		mongoc_collection_t *meta = skald__mg_coll_of(w, SKALD_MONGO_META);
		bson_t *sel = BCON_NEW("_id", BCON_UTF8("order"));
		bson_t *upd =
		        BCON_NEW("$max", "{", "end", BCON_INT64(skald__mg_i64(p + total)), "}");
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
static void update_hints(wctx_t *w, skald_write_t *const *ws, const size_t *idx, const uint8_t *due,
                         size_t cnt)
{
	mongoc_bulk_operation_t *bulk = NULL;
	mongoc_collection_t *c = NULL;
	for (size_t k = 0; k < cnt; k++) {
		if (!due[k])
			continue;
		if (bulk == NULL) {
			c = skald__mg_coll_of(w, SKALD_MONGO_HEADS);
			bson_t *o = BCON_NEW("ordered", BCON_BOOL(false));
			bulk = mongoc_collection_create_bulk_operation_with_opts(c, o);
			bson_destroy(o);
		}
		const skald_write_t *wr = ws[idx[k]];
		bson_t *sel = BCON_NEW("_id", BCON_UTF8(wr->persistence_id));
		bson_t *upd =
		        BCON_NEW("$max", "{", "h",
		                 BCON_INT64(skald__mg_i64(wr->expected_seq + wr->nevents)), "}");
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
static void fail_round(skald_write_t *const *ws, const size_t *idx, bson_t **docs, size_t cnt,
                       int code)
{
	for (size_t k = 0; k < cnt; k++) {
		if (docs[k] == NULL)
			continue;
		ws[idx[k]]->status = code;
		for (size_t i = 0; i < ws[idx[k]]->nevents; i++)
			ws[idx[k]]->events[i].offset = 0;
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
	int rc = skald__mg_find_slot(w, wr->persistence_id, wr->expected_seq, proj, &doc, &err);
	bson_destroy(proj);
	if (rc == 1 && skald__mg_doc_bool(doc, "void") && skald__mg_doc_u64(doc, "off") == off) {
		bson_destroy(doc);
		skald__mg_set_msg(
		        op,
		        "append to \"%s\" failed: it took so long that a reader of the global "
		        "order "
		        "fenced it off (raise gapTimeoutMS); nothing was stored",
		        wr->persistence_id);
		return SKALD_EBACKEND;
	}
	if (rc == 1)
		bson_destroy(doc);
	skald__mg_set_msg(op,
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
		mongoc_collection_t *c = skald__mg_coll_of(w, SKALD_MONGO_PAYLOADS);
		bson_t *opts = BCON_NEW("ordered", BCON_BOOL(false), "validate", BCON_BOOL(false));
		bson_error_t err;
		if (!mongoc_collection_insert_many(c, docs, n, opts, NULL, &err)) {
			skald__mg_set_msg(
			        op,
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
void skald__mg_drop_payload(wctx_t *w, const bson_t *pl)
{
	bson_iter_t it;
	if (!bson_iter_init_find(&it, pl, "_id"))
		return;
	mongoc_collection_t *c = skald__mg_coll_of(w, SKALD_MONGO_PAYLOADS);
	bson_t *sel = BCON_NEW("_id", BCON_UTF8(bson_iter_utf8(&it, NULL)));
	mongoc_collection_delete_one(c, sel, NULL, NULL, NULL);
	bson_destroy(sel);
	mongoc_collection_destroy(c);
}

/* Applies the writes ws[idx[0..cnt)], no two of one id, in one manifest and
 * one insert_many. */
static void append_round(wctx_t *w, op_t *op, skald_write_t *const *ws, const size_t *idx,
                         size_t cnt)
{
	bson_t **docs = calloc(cnt, sizeof *docs);
	bson_t **pls = calloc(cnt, sizeof *pls);
	uint8_t *due = calloc(cnt, 1);
	if (docs == NULL || pls == NULL || due == NULL) {
		for (size_t k = 0; k < cnt; k++)
			ws[idx[k]]->status = SKALD_ENOMEM;
		goto out;
	}
	uint64_t total = 0;
	size_t live = 0;
	for (size_t k = 0; k < cnt; k++) {
		int rc;
		skald_write_t *wr = ws[idx[k]];
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
		skald__mg_set_msg(
		        op,
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
		skald_write_t *wr = ws[idx[k]];
		BSON_APPEND_INT64(docs[k], "off", skald__mg_i64(off));
		offs[k] = off;
		for (size_t i = 0; i < wr->nevents; i++)
			wr->events[i].offset = off + i;
		off += wr->nevents;
		pos[ni] = k;
		ins[ni++] = docs[k];
	}
	mongoc_collection_t *c = skald__mg_coll_of(w, SKALD_MONGO_EVENTS);
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
		skald__mg_set_msg(
		        op,
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
				skald__mg_set_msg(op, "append to \"%s\" failed: %s",
				                  ws[idx[pos[index]]]->persistence_id,
				                  bson_iter_utf8(&f, NULL));
		}
		for (size_t r = 0; r < ni; r++) {
			size_t k = pos[r];
			skald_write_t *wr = ws[idx[k]];
			if (result[r] == 0) {
				wr->status = 0;
				uint32_t since =
				        skald__mg_cache_put(w->be, wr->persistence_id,
				                            wr->expected_seq + wr->nevents, 1);
				due[k] = since >= PID_HINT_EVERY;
				continue;
			}
			wr->status = result[r] == 1 ? explain_duplicate(w, op, wr, offs[k])
			                            : SKALD_EBACKEND;
			if (wr->status == SKALD_ECONFLICT && pls[k])
				skald__mg_drop_payload(
				        w, pls[k]); /* certainly not stored: no orphan */
			skald__mg_cache_drop(w->be, wr->persistence_id);
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
void skald__mg_run_append(wctx_t *w, op_t *op)
{
	skald_write_t *const *ws = op->u.append.writes;
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
			ws[i]->status = SKALD_ENOMEM;
		op->status = SKALD_ENOMEM;
		goto out;
	}
	uint32_t rounds = 1;
	for (size_t i = 0; i < n; i++) {
		size_t k = skald__hash_str(ws[i]->persistence_id) & (nslots - 1);
		while (slots[k] &&
		       strcmp(ws[slots[k] - 1]->persistence_id, ws[i]->persistence_id) != 0)
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
			int pred = before[i] ? ws[before[i] - 1]->status : 0;
			if (pred != 0) {
				/* The predecessor was not stored, so this write's
				 * expected seq is not the highest. */
				ws[i]->status = pred == SKALD_EREJECTED ? SKALD_ECONFLICT : pred;
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
