/*
 * journal/registry.c - the process-wide table of journal stores, and the
 * choice of a store by the scheme of a URI.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "journal/journal_int.h"

/* A handful of backends exist; a fixed table keeps lookups lock-cheap and
 * allocation-free. */
#define MAX_STORES 32

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static const skald_store_t *stores[MAX_STORES];
static size_t nstores;
static pthread_once_t builtins_once = PTHREAD_ONCE_INIT;

/*
 * The memory store and the fault-injecting faulty:// store are part of the
 * core library and registered here, the first time the registry is used. The database stores are libraries of their
 * own that register themselves from a constructor when they are linked in
 * (docs/PACKAGING.md): the registry never names them. A failure is ignored on
 * purpose: a table that cannot register (which only a broken table could
 * cause) shows up as an unknown scheme, with the list of the schemes that did
 * register.
 */
static void register_builtins(void)
{
	(void)skald__store_memory_register();
	(void)skald__store_faulty_register();
}

static void ensure_builtins(void)
{
	pthread_once(&builtins_once, register_builtins);
}

static int scheme_valid(const char *s)
{
	if (s == NULL || *s == '\0')
		return 0;
	for (; *s; s++) {
		int ok = (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '+' ||
		         *s == '-' || *s == '.';
		if (!ok)
			return 0;
	}
	return 1;
}

/* The table serving scheme (n bytes, not terminated), or NULL. Caller holds
 * lock. */
static const skald_store_t *find_locked(const char *scheme, size_t n)
{
	for (size_t i = 0; i < nstores; i++) {
		for (int k = 0; k < SKALD_STORE_MAX_SCHEMES && stores[i]->schemes[k]; k++) {
			const char *have = stores[i]->schemes[k];
			if (strlen(have) == n && memcmp(have, scheme, n) == 0)
				return stores[i];
		}
	}
	return NULL;
}

static int table_valid(const skald_store_t *s)
{
	if (s == NULL || s->abi != SKALD_STORE_ABI || s->schemes[0] == NULL)
		return 0;
	for (int k = 0; k < SKALD_STORE_MAX_SCHEMES && s->schemes[k]; k++)
		if (!scheme_valid(s->schemes[k]))
			return 0;
	return s->open && s->close && s->fini && s->start;
}

int skald__registry_add(const skald_store_t *store)
{
	if (!table_valid(store))
		return SKALD_EINVAL;
	int rc = 0;
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < nstores; i++) {
		if (stores[i] == store)
			goto out; /* the same table again: nothing to do */
	}
	for (int k = 0; k < SKALD_STORE_MAX_SCHEMES && store->schemes[k]; k++) {
		if (find_locked(store->schemes[k], strlen(store->schemes[k]))) {
			rc = SKALD_EEXISTS;
			goto out;
		}
	}
	if (nstores == MAX_STORES) {
		rc = SKALD_ETOOMANY;
		goto out;
	}
	stores[nstores++] = store;
out:
	pthread_mutex_unlock(&lock);
	return rc;
}

int skald_store_register(const skald_store_t *store)
{
	ensure_builtins();
	return skald__registry_add(store);
}

const skald_store_t *skald_store_lookup(const char *scheme)
{
	if (scheme == NULL)
		return NULL;
	ensure_builtins();
	pthread_mutex_lock(&lock);
	const skald_store_t *s = find_locked(scheme, strlen(scheme));
	pthread_mutex_unlock(&lock);
	return s;
}

/* Writes "a, b, c" (every registered scheme) into buf. Caller holds lock. */
static void list_schemes_locked(char *buf, size_t len)
{
	size_t used = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < nstores; i++) {
		for (int k = 0; k < SKALD_STORE_MAX_SCHEMES && stores[i]->schemes[k]; k++) {
			int n = snprintf(buf + used, len - used, "%s%s", used ? ", " : "",
			                 stores[i]->schemes[k]);
			if (n < 0 || (size_t)n >= len - used)
				return;
			used += (size_t)n;
		}
	}
}

int skald__registry_find(const char *uri, const skald_store_t **out, char *err, size_t errlen)
{
	ensure_builtins();
	*out = NULL;
	const char *colon = strchr(uri, ':');
	size_t n = colon ? (size_t)(colon - uri) : 0;
	/* The URI itself is never echoed: it may carry a password. The scheme
	 * alone is safe to show, unless it is absurdly long. */
	if (colon == NULL || n == 0) {
		snprintf(err, errlen,
		         "journal URI has no scheme: expected SCHEME://..., "
		         "e.g. memory://NAME or postgres://HOST/DB");
		return SKALD_EURI;
	}
	char schemes[256];
	pthread_mutex_lock(&lock);
	const skald_store_t *s = find_locked(uri, n);
	if (s == NULL)
		list_schemes_locked(schemes, sizeof schemes);
	pthread_mutex_unlock(&lock);
	if (s == NULL) {
		int shown = n > 32 ? 32 : (int)n;
		snprintf(err, errlen,
		         "unknown journal URI scheme \"%.*s%s\": registered schemes are %s "
		         "(schemes are matched exactly, in lower case)",
		         shown, uri, n > 32 ? "..." : "", schemes[0] ? schemes : "(none)");
		return SKALD_ESCHEME;
	}
	*out = s;
	return 0;
}
