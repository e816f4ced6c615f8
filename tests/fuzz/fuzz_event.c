/*
 * tests/fuzz/fuzz_event.c - libFuzzer target for event data on its way in
 * and out of the stores, and for upcasting.
 *
 * The first byte chooses:
 *   even: the rest is JSON text as the PostgreSQL store reads it back from
 *         jsonb (skald__pg_json_parse). Data that every store keeps
 *         (skald__data_check) must come back equal through the PostgreSQL
 *         store's own text (skald__pg_json_text) and through the MongoDB
 *         store's BSON or text form (skald__mongo_put_data, then
 *         skald__mongo_get_data); then it goes through the upcasters
 *         registered below, at a version and type the second byte picks.
 *   odd:  the rest is a BSON document as a MongoDB server may hold it
 *         (written by another program); its "d" and "j" fields are read as
 *         the store reads event data, which must fail with a reason or give
 *         a JSON object.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "journal/journal_int.h"
#include "stores/mongo/mongo_int.h"
#include "stores/postgres/pg.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* fz 1 -> 2: renames "old" to "new". */
static int up1(const char *type, int *version, json_t **data, void *arg)
{
	json_t *old = json_object_get(*data, "old");
	if (old != NULL) {
		json_object_set(*data, "new", old);
		json_object_del(*data, "old");
	}
	*version = 2;
	return 0;
}

/* fz 2 -> 3: wraps the data. */
static int up2(const char *type, int *version, json_t **data, void *arg)
{
	json_t *w = json_pack("{sO}", "v2", *data);
	if (w == NULL)
		return SKALD_ENOMEM;
	json_decref(*data);
	*data = w;
	*version = 3;
	return 0;
}

/* fz.bad 1: refuses; fz.same 1: does not raise the version. */
static int up_fail(const char *type, int *version, json_t **data, void *arg)
{
	return -7001;
}

static int up_same(const char *type, int *version, json_t **data, void *arg)
{
	return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	if (skald_upcaster_register("fz", 1, up1, NULL) != 0 ||
	    skald_upcaster_register("fz", 2, up2, NULL) != 0 ||
	    skald_upcaster_register("fz.bad", 1, up_fail, NULL) != 0 ||
	    skald_upcaster_register("fz.same", 1, up_same, NULL) != 0)
		abort();
	return 0;
}

/* data through the MongoDB store's encoding and back. */
static json_t *through_bson(const json_t *data)
{
	bson_t doc = BSON_INITIALIZER;
	char why[160];
	json_t *back = NULL;
	if (skald__mongo_put_data(&doc, data, why, sizeof why) == 0) {
		bson_iter_t d, j;
		int has_d = bson_iter_init_find(&d, &doc, "d");
		int has_j = bson_iter_init_find(&j, &doc, "j");
		const char *err = NULL;
		back = skald__mongo_get_data(has_d ? &d : NULL, has_j ? &j : NULL, &err);
		if (back == NULL)
			abort(); /* the store wrote what it cannot read */
	}
	bson_destroy(&doc);
	return back;
}

static void json_path(const uint8_t *p, size_t n, uint8_t pick)
{
	json_error_t err;
	json_t *data = skald__pg_json_parse((const char *)p, n, &err);
	if (data == NULL)
		return;
	char why[160];
	if (skald__data_check(data, why, sizeof why) == 0) {
		size_t len;
		char *text = skald__pg_json_text(data, &len);
		if (text == NULL)
			abort(); /* kept by every store, yet not writable as text */
		json_t *back = skald__pg_json_parse(text, len, &err);
		if (back == NULL || !json_equal(back, data))
			abort();
		json_decref(back);
		free(text);
		back = through_bson(data);
		if (back == NULL || !json_equal(back, data))
			abort();
		json_decref(back);
	}
	static const char *const types[] = {"fz", "fz.bad", "fz.same", "other"};
	skald_event_t ev = {.persistence_id = "fuzz-1",
	                    .seq = 1,
	                    .type = types[pick & 3],
	                    .version = 1 + (pick >> 2) % 4,
	                    .data = data};
	int version = ev.version;
	int rc = skald__upcast(&ev);
	if (rc == 0 && (ev.version < version || ev.data == NULL))
		abort();
	json_decref(ev.data);
}

static void bson_path(const uint8_t *p, size_t n)
{
	bson_t doc;
	size_t off;
	if (!bson_init_static(&doc, p, n) || !bson_validate(&doc, BSON_VALIDATE_NONE, &off))
		return;
	bson_iter_t d, j;
	int has_d = bson_iter_init_find(&d, &doc, "d");
	int has_j = bson_iter_init_find(&j, &doc, "j");
	const char *err = NULL;
	json_t *data = skald__mongo_get_data(has_d ? &d : NULL, has_j ? &j : NULL, &err);
	if (data == NULL ? err == NULL : !json_is_object(data))
		abort();
	json_decref(data);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	/* An exact-size copy, so that ASan sees a read one byte past the end. */
	uint8_t *buf = malloc(size - 2 ? size - 2 : 1);
	if (buf == NULL)
		return 0;
	memcpy(buf, data + 2, size - 2);
	if (data[0] & 1)
		bson_path(buf, size - 2);
	else
		json_path(buf, size - 2, data[1]);
	free(buf);
	return 0;
}
