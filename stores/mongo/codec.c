/*
 * stores/mongo/codec.c - event and snapshot data between jansson and BSON.
 *
 * Data is stored as a BSON document, so that it reads naturally in MongoDB's
 * own tools and can be queried there. JSON allows field names that MongoDB
 * servers refuse or treat specially in stored documents: a leading '$', a
 * '.', the empty name (FerretDB refuses the first two outright,
 * MongoDB accepts them only in some places). Rather than reject such an
 * event, which is valid JSON, it is stored as its JSON text in another
 * field; readers accept both forms. Nesting deeper than BSON_DEPTH goes the
 * same way, since servers limit the depth of stored documents, and so does
 * an array directly inside an array, which FerretDB 1.x refuses. Numbers
 * keep their kind: a JSON integer is a BSON int64, a real a double (negative
 * zero included). Data nested deeper than SKALD_DATA_MAX_DEPTH is refused.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal/journal_int.h"
#include "stores/mongo/mongo_int.h"

/* MongoDB refuses documents nested more than 100 levels deep; the data sits
 * two levels below the stored document (events array, event). Depth counts
 * from 1 for the data object; deeper than SKALD_DATA_MAX_DEPTH is refused. */
#define BSON_DEPTH 90

enum fit { FIT_BSON, FIT_TEXT, FIT_NONE };

static enum fit worse(enum fit a, enum fit b)
{
	return a > b ? a : b;
}

static int key_is_plain(const char *key, size_t len)
{
	return len > 0 && key[0] != '$' && memchr(key, '.', len) == NULL;
}

/* How v can be stored: as BSON, only as text, or not at all (a string or
 * key that is not UTF-8, or absurd nesting). */
static enum fit scan(const json_t *v, int depth)
{
	if (depth > SKALD_DATA_MAX_DEPTH)
		return FIT_NONE;
	enum fit f = depth > BSON_DEPTH ? FIT_TEXT : FIT_BSON;
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		for (void *it = json_object_iter((json_t *)v); it && f != FIT_NONE;
		     it = json_object_iter_next((json_t *)v, it)) {
			const char *key = json_object_iter_key(it);
			size_t len = json_object_iter_key_len(it);
			/* jansson can write a key holding a NUL byte but not
			 * parse it back, and BSON cannot hold one at all. */
			if (!bson_utf8_validate(key, len, false))
				return FIT_NONE;
			if (!key_is_plain(key, len))
				f = worse(f, FIT_TEXT);
			f = worse(f, scan(json_object_iter_value(it), depth + 1));
		}
		return f;
	case JSON_ARRAY:
		for (size_t i = 0; i < json_array_size(v) && f != FIT_NONE; i++) {
			const json_t *item = json_array_get(v, i);
			/* An array directly inside an array is valid BSON, but
			 * not every server of the MongoDB wire stores it
			 * (FerretDB 1.x refuses "nested arrays"): text is safe. */
			if (json_is_array(item))
				f = worse(f, FIT_TEXT);
			f = worse(f, scan(item, depth + 1));
		}
		return f;
	case JSON_STRING: {
		const char *s = json_string_value(v);
		size_t len = json_string_length(v);
		/* A NUL byte never gets here (skald__data_check). */
		if (!bson_utf8_validate(s, len, false))
			return FIT_NONE;
		return f;
	}
	default:
		return f;
	}
}

static int put_value(bson_t *b, const char *key, int keylen, const json_t *v);

static int put_members(bson_t *b, const json_t *obj)
{
	for (void *it = json_object_iter((json_t *)obj); it;
	     it = json_object_iter_next((json_t *)obj, it)) {
		if (put_value(b, json_object_iter_key(it), (int)json_object_iter_key_len(it),
		              json_object_iter_value(it)) != 0)
			return -1;
	}
	return 0;
}

static int put_value(bson_t *b, const char *key, int keylen, const json_t *v)
{
	bson_t child;
	bool ok = true;
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		if (!bson_append_document_begin(b, key, keylen, &child))
			return -1;
		if (put_members(&child, v) != 0)
			return -1;
		ok = bson_append_document_end(b, &child);
		break;
	case JSON_ARRAY:
		if (!bson_append_array_begin(b, key, keylen, &child))
			return -1;
		for (size_t i = 0; i < json_array_size(v); i++) {
			char buf[16];
			const char *k;
			size_t n = bson_uint32_to_string((uint32_t)i, &k, buf, sizeof buf);
			if (put_value(&child, k, (int)n, json_array_get(v, i)) != 0)
				return -1;
		}
		ok = bson_append_array_end(b, &child);
		break;
	case JSON_STRING:
		ok = bson_append_utf8(b, key, keylen, json_string_value(v),
		                      (int)json_string_length(v));
		break;
	case JSON_INTEGER:
		ok = bson_append_int64(b, key, keylen, (int64_t)json_integer_value(v));
		break;
	case JSON_REAL:
		ok = bson_append_double(b, key, keylen, json_real_value(v));
		break;
	case JSON_TRUE:
		ok = bson_append_bool(b, key, keylen, true);
		break;
	case JSON_FALSE:
		ok = bson_append_bool(b, key, keylen, false);
		break;
	case JSON_NULL:
		ok = bson_append_null(b, key, keylen);
		break;
	}
	return ok ? 0 : -1;
}

int skald__mongo_put_data(bson_t *doc, const json_t *data, char *why, size_t whylen)
{
	if (skald__data_check(data, why, whylen) != 0)
		return SKALD_EREJECTED;
	switch (scan(data, 1)) {
	case FIT_BSON: {
		/* Built apart first: the BSON of many small values takes several
		 * times their JSON text, which could outgrow a document that the
		 * text fits in. Such data goes as text. */
		bson_t child = BSON_INITIALIZER;
		bool fits = put_members(&child, data) == 0 && child.len <= SKALD_DATA_MAX_BYTES;
		bool ok = fits && bson_append_document(doc, "d", 1, &child);
		bson_destroy(&child);
		if (fits && !ok)
			snprintf(why, whylen, "is larger than a MongoDB document holds");
		if (fits)
			return ok ? 0 : SKALD_EREJECTED;
	}
		/* fall through */
	case FIT_TEXT: {
		char *text = json_dumps(data, JSON_COMPACT);
		bool ok = text != NULL && bson_append_utf8(doc, "j", 1, text, -1);
		free(text);
		if (!ok)
			snprintf(why, whylen, "cannot be written as JSON text");
		return ok ? 0 : SKALD_EREJECTED;
	}
	case FIT_NONE:
		break;
	}
	snprintf(why, whylen, "holds invalid UTF-8");
	return SKALD_EREJECTED;
}

static json_t *get_value(const bson_iter_t *it, int depth);

static json_t *get_document(const bson_iter_t *parent, int depth, int array)
{
	bson_iter_t it;
	if (depth > SKALD_DATA_MAX_DEPTH || !bson_iter_recurse(parent, &it))
		return NULL;
	json_t *out = array ? json_array() : json_object();
	if (out == NULL)
		return NULL;
	while (bson_iter_next(&it)) {
		json_t *v = get_value(&it, depth + 1);
		int rc = v == NULL ? -1
		         : array   ? json_array_append_new(out, v)
		                   : json_object_setn_new(out, bson_iter_key(&it),
		                                          bson_iter_key_len(&it), v);
		if (rc != 0) {
			json_decref(out);
			return NULL;
		}
	}
	return out;
}

static json_t *get_value(const bson_iter_t *it, int depth)
{
	switch (bson_iter_type(it)) {
	case BSON_TYPE_DOCUMENT:
		return get_document(it, depth, 0);
	case BSON_TYPE_ARRAY:
		return get_document(it, depth, 1);
	case BSON_TYPE_UTF8: {
		uint32_t len;
		const char *s = bson_iter_utf8(it, &len);
		return json_stringn(s, len);
	}
	case BSON_TYPE_INT32:
		return json_integer(bson_iter_int32(it));
	case BSON_TYPE_INT64:
		return json_integer(bson_iter_int64(it));
	case BSON_TYPE_DOUBLE:
		return json_real(bson_iter_double(it));
	case BSON_TYPE_BOOL:
		return json_boolean(bson_iter_bool(it));
	case BSON_TYPE_NULL:
		return json_null();
	case BSON_TYPE_DATE_TIME:
		/* Not written by Skald; a date put there by hand reads as the
		 * number of milliseconds it stands for. */
		return json_integer(bson_iter_date_time(it));
	default:
		/* ObjectIds, binaries, decimals...: Skald never writes them and
		 * JSON has no faithful form for them. */
		return NULL;
	}
}

json_t *skald__mongo_get_data(const bson_iter_t *d, const bson_iter_t *j, const char **err)
{
	if (d && bson_iter_type(d) == BSON_TYPE_DOCUMENT) {
		json_t *v = get_document(d, 1, 0);
		if (v == NULL)
			*err = "its data holds a BSON value with no JSON form";
		return v;
	}
	if (j && bson_iter_type(j) == BSON_TYPE_UTF8) {
		uint32_t len;
		const char *text = bson_iter_utf8(j, &len);
		json_error_t jerr;
		json_t *v = json_loadb(text, len, JSON_ALLOW_NUL, &jerr);
		if (v && !json_is_object(v)) {
			json_decref(v);
			v = NULL;
		}
		if (v == NULL)
			*err = "its data text is not a JSON object";
		return v;
	}
	*err = "it has no data field";
	return NULL;
}

char *skald__mongo_event_key(const char *persistence_id, uint64_t prev)
{
	/* The seq after the last '@' is all digits, so the key names one
	 * (persistence id, prev) pair even when the id holds '@'. */
	size_t len = strlen(persistence_id) + 22;
	char *key = malloc(len);
	if (key)
		snprintf(key, len, "%s@%" PRIu64, persistence_id, prev);
	return key;
}
