/*
 * tests/fuzz/fuzz_registry.c - libFuzzer target for the decoders of the
 * cluster registry's messages (actors/cluster/reg_codec.c): batches between
 * registry actors, spawn requests and results, lost names.
 *
 * The first byte picks the type, the rest is its bytes. Whatever decodes
 * must encode, and decode again to the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "actors/cluster/reg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = {"skald.reg.batch", "skald.reg.spawn",
	                                    "skald.reg.result", "skald.name-lost"};
	if (size == 0 || skald__reg_types() < 0)
		return 0;
	uint32_t id;
	if (skald_type_lookup(names[data[0] % 4], &id) < 0)
		abort();
	const skald_msgtype_t *t = skald_type_get(id);
	/* An exact-size copy, so that ASan sees a read one byte past it. */
	size_t n = size - 1;
	uint8_t *buf = malloc(n ? n : 1);
	if (buf == NULL)
		return 0;
	memcpy(buf, data + 1, n);
	void *payload = NULL;
	if (t->decode(buf, n, &payload) == 0) {
		void *out = NULL, *again = NULL;
		size_t len = 0, len2 = 0;
		void *second = NULL;
		/* A batch as decoded is never LOCAL, so it always encodes. */
		if (t->encode(payload, &out, &len) != 0 || t->decode(out, len, &second) != 0 ||
		    t->encode(second, &again, &len2) != 0 || len != len2 ||
		    memcmp(out, again, len) != 0)
			abort();
		free(out);
		free(again);
		t->free(second);
		t->free(payload);
	}
	free(buf);
	return 0;
}
