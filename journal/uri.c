/*
 * journal/uri.c - what the URIs of every store share: where a URI comes from
 * when none is given, the batch=N option, and the check of a system's
 * journal when the system starts.
 */
#include <stdio.h>
#include <stdlib.h>

#include "actors/layer.h"
#include "journal/journal_int.h"

static void checked(skald_journal_t *j, void *arg)
{
	*(int *)arg = 1;
}

/* Opens and closes the journal on a loop of its own: the store parses the
 * URI and its options as it would for an entity, without connecting (the
 * stores connect on their first operation). */
static int check_journal(const char *configured)
{
	const char *uri;
	char err[256];
	int rc = skald__journal_uri(configured, SKALD__JOURNAL_DEFAULT, &uri, err, sizeof err);
	if (rc != 0)
		return rc;
	uv_loop_t loop;
	if ((rc = uv_loop_init(&loop)) != 0)
		return rc;
	skald_journal_t *j;
	rc = skald_journal_open(&loop, uri, &j);
	if (rc == 0) {
		int closed = 0;
		if (skald_journal_close(j, checked, &closed) == 0)
			while (!closed && uv_run(&loop, UV_RUN_ONCE) != 0)
				;
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	(void)uv_loop_close(&loop);
	return rc;
}

__attribute__((constructor)) static void install_check(void)
{
	skald__journal_check = check_journal;
}

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
