/*
 * stores/mongo/read.c - reads of one persistence id, highest and delete_to,
 * on the worker.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "stores/mongo/engine.h"

/* Events ahead of a replay from which it reads by range query at once. */
#define LONG_READ 256

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

int skald__mg_add_event(op_t *op, const char *pid, uint64_t seq, uint64_t offset, bson_iter_t *it)
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
		skald__mg_fail(op, SKALD_EDECODE,
		               "event \"%s\" seq %" PRIu64 " cannot be decoded: %s", pid, seq, why);
		return bad_event(op, pid, seq, offset);
	}
	int rc = skald__mg_batch_add(op, pid, seq, type, version, data, ts, writer, offset);
	if (rc != 0)
		skald__mg_fail(op, rc, "out of memory reading events");
	return rc;
bad:
	skald__mg_fail(op, SKALD_EDECODE, "event \"%s\" seq %" PRIu64 " is not a document", pid,
	               seq);
	return bad_event(op, pid, seq, offset);
}

void skald__mg_backend_error(op_t *op, const char *what, const bson_error_t *err)
{
	skald__mg_fail(op, SKALD_EBACKEND, "MongoDB journal: %s failed: %s", what, err->message);
}

/* Replaces op->doc, when its events live in a payload document, by a copy
 * holding them. Returns 0, or -1 with op failed. */
int skald__mg_inline_payload(wctx_t *w, op_t *op)
{
	bson_iter_t it;
	if (!bson_iter_init_find(&it, op->doc, "pl") || !BSON_ITER_HOLDS_UTF8(&it))
		return 0;
	bson_error_t err;
	bson_t *pl;
	int rc = skald__mg_find_key(w, SKALD_MONGO_PAYLOADS, bson_iter_utf8(&it, NULL), NULL, &pl,
	                            &err);
	if (rc < 0) {
		skald__mg_backend_error(op, "reading the events of a large write", &err);
		return -1;
	}
	if (rc == 0) {
		skald__mg_fail(op, SKALD_EDECODE,
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
	if (op->u.read.pos == 0 && skald__mg_inline_payload(w, op) != 0)
		return 1;
	const bson_t *doc = op->doc;
	uint64_t prev = skald__mg_doc_u64(doc, "prev"), to = skald__mg_doc_u64(doc, "to");
	uint64_t del = skald__mg_doc_u64(doc, "del"), off = skald__mg_doc_u64(doc, "off");
	bson_iter_t it, ev;
	if (prev + 1 > op->u.read.to) {
		op->finished = 1;
	} else if (!skald__mg_doc_bool(doc, "void") && bson_iter_init_find(&it, doc, "ev") &&
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
				if (skald__mg_add_event(op, op->pid, seq, off + i - 1, &ev) != 0)
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

void skald__mg_step_read(wctx_t *w, op_t *op)
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
		if (!skald__mg_cache_get(w->be, op->pid, &known) || known == 0) {
			bson_t *proj = BCON_NEW("h", BCON_INT32(1)), *doc;
			int rc =
			        skald__mg_find_key(w, SKALD_MONGO_HEADS, op->pid, proj, &doc, &err);
			bson_destroy(proj);
			if (rc < 0) {
				skald__mg_backend_error(op, "replaying events", &err);
				return;
			}
			if (rc == 1) {
				known = skald__mg_doc_u64(doc, "h");
				bson_destroy(doc);
			}
		}
		if (known >= op->u.read.from + LONG_READ) {
			op->u.read.query = 1;
		} else if (op->u.read.from > 1) {
			/* The document starting at from sits in slot from-1 when
			 * from-1 ends a write, as it does after a snapshot taken
			 * by an entity; otherwise the range query finds it. */
			int rc = skald__mg_find_slot(w, op->pid, op->u.read.from - 1, NULL,
			                             &op->doc, &err);
			if (rc < 0) {
				skald__mg_backend_error(op, "replaying events", &err);
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
			int rc = skald__mg_find_slot(w, op->pid, op->u.read.key_prev, NULL,
			                             &op->doc, &err);
			if (rc < 0) {
				skald__mg_backend_error(op, "replaying events", &err);
				return;
			}
			if (rc == 0) {
				/* The free slot follows the highest seq. */
				skald__mg_cache_put(w->be, op->pid, op->u.read.key_prev, 0);
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
				                 BCON_INT64(skald__mg_i64(op->u.read.next)), "}");
				bson_t *opts = BCON_NEW("sort", "{", "to", BCON_INT32(1), "}");
				mongoc_collection_t *c = skald__mg_coll_of(w, SKALD_MONGO_EVENTS);
				op->cursor =
				        mongoc_collection_find_with_opts(c, filter, opts, NULL);
				mongoc_collection_destroy(c);
				bson_destroy(filter);
				bson_destroy(opts);
			}
			const bson_t *d;
			if (!mongoc_cursor_next(op->cursor, &d)) {
				if (mongoc_cursor_error(op->cursor, &err))
					skald__mg_backend_error(op, "replaying events", &err);
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

void skald__mg_step_highest(wctx_t *w, op_t *op)
{
	bson_error_t err;
	if (skald__mg_walk_highest(w, op->pid, &op->u.highest.seq, &err) != 0)
		skald__mg_backend_error(op, "reading the highest seq", &err);
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
	bson_t *upd = whole ? BCON_NEW("$set", "{", "ev", "[", "]", "}", "$unset", "{", "pl",
	                               BCON_UTF8(""), "}", "$max", "{", "del",
	                               BCON_INT64(skald__mg_i64(to)), "}")
	                    : BCON_NEW("$max", "{", "del", BCON_INT64(d), "}");
	bool ok = mongoc_collection_update_one(c, sel, upd, NULL, NULL, err);
	bson_destroy(sel);
	bson_destroy(upd);
	free(key);
	if (ok && whole && pl) {
		/* After the update: a reader never finds a document naming a
		 * payload that is gone. */
		bson_t *p = BCON_NEW("_id", BCON_UTF8(pl));
		skald__mg_drop_payload(w, p);
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
void skald__mg_step_delete_to(wctx_t *w, op_t *op)
{
	bson_error_t err;
	int64_t to = skald__mg_i64(op->u.del.to);
	mongoc_collection_t *c = skald__mg_coll_of(w, SKALD_MONGO_EVENTS);
	bson_t *proj = BCON_NEW("to", BCON_INT32(1), "pl", BCON_INT32(1));
	uint64_t prev = 0;
	int rc = 0;
	op->finished = 1;
	for (unsigned steps = 0; (int64_t)prev < to; steps++) {
		if (steps == WALK_LIMIT) {
			bson_t *f1 = BCON_NEW("pid", BCON_UTF8(op->pid), "prev", "{", "$gte",
			                      BCON_INT64(skald__mg_i64(prev)), "$lt",
			                      BCON_INT64(to), "}");
			bson_t *u1 = BCON_NEW("$max", "{", "del", BCON_INT64(to), "}");
			bson_t *f2 = BCON_NEW("pid", BCON_UTF8(op->pid), "prev", "{", "$gte",
			                      BCON_INT64(skald__mg_i64(prev)), "}", "to", "{",
			                      "$lte", BCON_INT64(to), "}");
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
		rc = skald__mg_find_slot(w, op->pid, prev, proj, &doc, &err);
		if (rc <= 0)
			break;
		uint64_t end = skald__mg_doc_u64(doc, "to");
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
		skald__mg_backend_error(op, "deleting events", &err);
	bson_destroy(proj);
	mongoc_collection_destroy(c);
}
