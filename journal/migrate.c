/*
 * journal/migrate.c - schema migrations of the store behind a URI, for tools
 * (`skald migrate`), and the walk over a store's migrations that every
 * store's migrate member shares. Blocking, unlike everything else in the
 * journal.
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

int skald__migrate_walk(const skald__migration_t *known, size_t nknown, const char *const *unknown,
                        size_t nunknown, int status_only, FILE *out,
                        int (*apply)(void *arg, size_t i, char *err, size_t errlen), void *arg,
                        char *err, size_t errlen)
{
	int rc = 0, pending = 0, ran = 0;
	for (size_t i = 0; i < nknown && rc == 0; i++) {
		const skald__migration_t *m = &known[i];
		if (m->applied) {
			if (status_only && out)
				fprintf(out, "applied  %s%s\n", m->name,
				        m->changed ? "  (its text has changed since it was applied)"
				                   : "");
			continue;
		}
		pending++;
		if (status_only) {
			if (out)
				fprintf(out, "pending  %s\n", m->name);
			continue;
		}
		rc = apply(arg, i, err, errlen);
		if (rc == 0) {
			ran++;
			if (out) {
				fprintf(out, "applied  %s\n", m->name);
				fflush(out);
			}
		}
	}
	for (size_t i = 0; i < nunknown && status_only && out; i++)
		fprintf(out, "unknown  %s  (applied by a newer build)\n", unknown[i]);
	if (rc == 0 && out) {
		if (status_only)
			fprintf(out, "%s\n",
			        pending ? "the schema is behind: run `skald migrate` to apply the "
			                  "pending migrations"
			                : "the schema is up to date");
		else
			fprintf(out, "the schema is up to date (%s)%s\n",
			        nknown ? known[nknown - 1].name : "none",
			        ran == 0 ? ": nothing to apply" : "");
	}
	/* A check that finds work to do says so in its code, so that a
	 * deployment script can tell (`skald migrate --status` exits 5). */
	if (rc == 0 && status_only && pending) {
		snprintf(err, errlen, "%d migration(s) pending: run `skald migrate` to apply them",
		         pending);
		rc = SKALD_ESCHEMA;
	}
	if (rc == 0 && nunknown && !status_only)
		fprintf(out ? out : stderr,
		        "note: the database holds %zu migration(s) newer than this build knows\n",
		        nunknown);
	return rc;
}
