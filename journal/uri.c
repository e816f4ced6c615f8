/*
 * journal/uri.c - what the URIs of every store share: where a URI comes from
 * when none is given, and the batch=N option.
 */
#include <stdio.h>
#include <stdlib.h>

#include "journal/journal_int.h"

int skald__uri_batch(const char *store, const char *value, size_t len, size_t *batch, char *err,
                     size_t errlen)
{
	size_t v = 0;
	int ok = len > 0 && len <= 5; /* SKALD__BATCH_MAX has 5 digits */
	for (size_t i = 0; ok && i < len; i++) {
		ok = value[i] >= '0' && value[i] <= '9';
		v = v * 10 + (size_t)(value[i] - '0');
	}
	if (!ok || v < 1 || v > SKALD__BATCH_MAX) {
		snprintf(err, errlen, "%s journal URI: batch must be a number from 1 to %d", store,
		         SKALD__BATCH_MAX);
		return SKALD_EURI;
	}
	*batch = v;
	return 0;
}
