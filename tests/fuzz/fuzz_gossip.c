/*
 * tests/fuzz/fuzz_gossip.c - libFuzzer target for the cluster membership's
 * messages (actors/cluster/codec.c), as a CLUSTER frame's payload from any
 * peer reaches them.
 *
 * Every input goes through the decoder, which must refuse it with a reason
 * or accept it without reading past its end; what it accepts must encode
 * and decode again to the same message, field by field and record by
 * record, in exactly the bytes the encoder said it needs.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "actors/cluster/cluster_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { CAP = 256 };

static int same_rec(const skald__cl_rec_t *a, const skald__cl_rec_t *b)
{
	return a->node == b->node && a->inc == b->inc && a->up_number == b->up_number &&
	       a->state == b->state &&
	       (!(a->state & SKALD__CL_SUSPECT) || a->suspecter == b->suspecter) &&
	       strcmp(a->addr, b->addr) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static skald__cl_rec_t recs[CAP], again_recs[CAP];
	/* An exact-size copy, so that ASan sees a read one byte past the end. */
	uint8_t *buf = malloc(size ? size : 1);
	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	skald__cl_msg_t m = {.recs = recs, .cap = CAP};
	const char *why = NULL;
	int rc = skald__cl_decode(buf, size, &m, &why);
	if ((rc == 0) != (why == NULL))
		abort(); /* a refusal always says why, an acceptance never */
	if (rc == 0) {
		size_t need = SKALD__CL_HDR + 64 + m.nrecs * SKALD__CL_REC_MAX;
		uint8_t *out = malloc(need);
		size_t n = out ? skald__cl_encode(&m, out, need) : 0;
		skald__cl_msg_t again = {.recs = again_recs, .cap = CAP};
		if (n == 0 || skald__cl_decode(out, n, &again, &why) != 0)
			abort(); /* what decodes must encode and decode */
		if (again.type != m.type || again.from != m.from || again.to != m.to ||
		    again.seq != m.seq || again.flags != m.flags || again.reason != m.reason ||
		    again.target != m.target || strcmp(again.target_addr, m.target_addr) != 0 ||
		    again.digest != m.digest || again.count != m.count || again.nrecs != m.nrecs)
			abort();
		size_t recbytes = 0;
		for (size_t i = 0; i < m.nrecs; i++) {
			if (!same_rec(&m.recs[i], &again.recs[i]))
				abort();
			recbytes += skald__cl_rec_size(&m.recs[i]);
		}
		if (recbytes > n)
			abort();
		free(out);
	}
	free(buf);
	return 0;
}
