/*
 * stores/mongo/order.c - read_all: the global order along the manifest chain,
 * on the worker.
 */
#include <stdlib.h>

#include "stores/mongo/engine.h"

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
	bson_t *doc = BCON_NEW(
	        "_id", BCON_UTF8(key), "pid", BCON_UTF8(pid), "prev",
	        BCON_INT64(skald__mg_i64(prev)), "to", BCON_INT64(skald__mg_i64(prev + count)), "n",
	        BCON_INT64(skald__mg_i64(count)), "off", BCON_INT64(skald__mg_i64(off)), "void",
	        BCON_BOOL(true), "ev", "[", "]");
	mongoc_collection_t *c = skald__mg_coll_of(w, SKALD_MONGO_EVENTS);
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
		int rc = skald__mg_find_slot(w, pid, prev, NULL, &doc, &err);
		if (rc < 0) {
			skald__mg_backend_error(op, "reading the global order", &err);
			return -1;
		}
		if (rc == 1) {
			if (skald__mg_doc_u64(doc, "off") == off &&
			    !skald__mg_doc_bool(doc, "void"))
				op->doc = doc;
			else
				bson_destroy(doc);
			return 0;
		}
		int64_t now = skald__mg_mono_ms();
		if (op->u.all.deadline == 0)
			op->u.all.deadline = now + w->m->opt.gap_ms;
		if (now < op->u.all.deadline) {
			skald__mg_sleep_ms(pause);
			pause = pause < 50 ? pause * 2 : 50;
			continue;
		}
		rc = fence(w, pid, prev, count, off, &err);
		if (rc < 0) {
			skald__mg_backend_error(op, "fencing off a lost write", &err);
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
	if (op->u.all.pos == 0 && skald__mg_inline_payload(w, op) != 0)
		return 1;
	const bson_t *doc = op->doc;
	uint64_t prev = skald__mg_doc_u64(doc, "prev"), del = skald__mg_doc_u64(doc, "del");
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
			if (skald__mg_add_event(op, pid, seq, offset, &ev) != 0)
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
	int rc = skald__mg_find_num(w, SKALD_MONGO_ORDER, after, NULL, &op->mdoc, &err);
	if (rc == 0) {
		bson_t *filter =
		        BCON_NEW("_id", "{", "$lte", BCON_INT64(skald__mg_i64(after)), "}");
		bson_t *opts = BCON_NEW("sort", "{", "_id", BCON_INT32(-1), "}");
		rc = skald__mg_find_one(w, SKALD_MONGO_ORDER, filter, opts, &op->mdoc, &err);
		bson_destroy(filter);
		bson_destroy(opts);
		if (rc == 1) {
			uint64_t id = skald__mg_doc_u64(op->mdoc, "_id"),
			         n = skald__mg_doc_u64(op->mdoc, "n");
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
		skald__mg_backend_error(op, "reading the global order", &err);
		return -1;
	}
	return 0;
}

void skald__mg_step_read_all(wctx_t *w, op_t *op)
{
	bson_error_t err;
	if (!op->started) {
		op->started = 1;
		if (read_all_start(w, op) != 0 || op->finished)
			return;
	}
	while (op->nev < w->m->opt.batch && !op->finished) {
		if (op->mdoc == NULL) {
			int rc = skald__mg_find_num(w, SKALD_MONGO_ORDER, op->u.all.mkey, NULL,
			                            &op->mdoc, &err);
			if (rc < 0) {
				skald__mg_backend_error(op, "reading the global order", &err);
				return;
			}
			if (rc == 0) {
				op->finished = 1; /* the end of the order, for now */
				return;
			}
			op->u.all.widx = 0;
		}
		uint64_t base = op->u.all.mkey + 1, n = skald__mg_doc_u64(op->mdoc, "n");
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
				uint64_t prev = skald__mg_doc_u64(&entry, "e"),
				         count = skald__mg_doc_u64(&entry, "c");
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
