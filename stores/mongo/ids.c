/*
 * stores/mongo/ids.c - list_ids, on the worker.
 */
#include <stdlib.h>
#include <string.h>

#include "stores/mongo/engine.h"

/* ------------------------------------------------------------------------ */
/* Worker: listing ids                                                       */

void skald__mg_step_list(wctx_t *w, op_t *op)
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
		mongoc_collection_t *c = skald__mg_coll_of(w, SKALD_MONGO_HEADS);
		op->cursor = mongoc_collection_find_with_opts(c, &filter, opts, NULL);
		mongoc_collection_destroy(c);
		bson_destroy(&filter);
		bson_destroy(opts);
	}
	while (op->nids < w->m->opt.batch && !op->finished) {
		const bson_t *doc;
		if (!mongoc_cursor_next(op->cursor, &doc)) {
			if (mongoc_cursor_error(op->cursor, &err))
				skald__mg_backend_error(op, "listing persistence ids", &err);
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
			skald__mg_fail(op, SKALD_ENOMEM, "out of memory listing persistence ids");
			return;
		}
		if (skald__mg_walk_highest(w, copy, &h, &err) != 0) {
			free(copy);
			skald__mg_backend_error(op, "listing persistence ids", &err);
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
				skald__mg_fail(op, SKALD_ENOMEM,
				               "out of memory listing persistence ids");
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
