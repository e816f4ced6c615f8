/*
 * tests/fuzz/fuzz_wire.c - libFuzzer target for the frame parser and the
 * HELLO decoder (actors/remote/wire.c).
 *
 * The input is a byte stream as a connection would receive it, fed in
 * arbitrary chunks: every frame the parser accepts must lie inside the
 * bytes given, and HELLO payloads go through the decoder.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "actors/remote/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Copy into an exact-size buffer so that ASan catches a read one byte
	 * past the end. */
	uint8_t *buf = malloc(size ? size : 1);
	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	size_t off = 0;
	while (off < size) {
		skald__wire_hdr_t h;
		const uint8_t *p;
		size_t n, used;
		int rc = skald__wire_parse(buf + off, size - off, 1u << 16, &h, &p, &n, &used);
		if (rc <= 0)
			break;
		if (p < buf || p + n > buf + size || used == 0 || off + used > size)
			abort();
		if (h.kind == SKALD_WIRE_HELLO) {
			skald__wire_hello_t hello;
			if (skald__wire_hello_decode(p, n, &hello) == 0) {
				uint8_t out[SKALD_WIRE_HELLO_MAX];
				size_t k = skald__wire_hello_encode(out, &hello);
				skald__wire_hello_t again;
				/* What decodes must encode and decode to the same. */
				if (skald__wire_hello_decode(out, k, &again) != 0 ||
				    again.node != hello.node ||
				    strcmp(again.name, hello.name) != 0 ||
				    strcmp(again.cluster, hello.cluster) != 0)
					abort();
			}
		}
		off += used;
	}
	free(buf);
	return 0;
}
