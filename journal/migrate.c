/*
 * journal/migrate.c - schema migrations of the store behind a URI, for tools
 * (`skald migrate`). Blocking, unlike everything else in the journal.
 */
#include <stdio.h>

#include "journal/journal_int.h"

int skald_store_migrate(const char *uri, int status_only, FILE *out, char *err, size_t errlen)
{
	char scratch[512];
	if (err == NULL || errlen == 0) {
		err = scratch;
		errlen = sizeof scratch;
	}
	err[0] = '\0';
	const skald_store_t *store;
	int rc = skald__journal_uri(uri, NULL, &uri, err, errlen);
	if (rc == 0)
		rc = skald__registry_find(uri, &store, err, errlen);
	if (rc != 0)
		return rc;
	if (store->migrate == NULL) {
		if (out)
			fprintf(out, "the %s store has no schema: nothing to migrate\n",
			        store->schemes[0]);
		return 0;
	}
	return store->migrate(uri, status_only, out, err, errlen);
}
