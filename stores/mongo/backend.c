/*
 * stores/mongo/backend.c - backends: one client pool and its caches per URI,
 * shared by the handles of the process.
 */
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "stores/mongo/engine.h"

/* Entries of the boundary cache before it is cleared. */
#define MAX_CACHE (1u << 17)

/* ------------------------------------------------------------------------ */
/* Backends: one client pool and its caches per URI, shared in the process   */

static pthread_mutex_t backends_lock = PTHREAD_MUTEX_INITIALIZER;
static backend_t *backends;

static void cache_clear_locked(backend_t *be)
{
	for (size_t i = 0; i < be->nslots; i++)
		free(be->slots[i].pid);
	free(be->slots);
	be->slots = NULL;
	be->nslots = be->nused = 0;
}

static cache_ent_t *cache_find_locked(backend_t *be, const char *pid, uint64_t h)
{
	if (be->nslots == 0)
		return NULL;
	size_t mask = be->nslots - 1;
	for (size_t i = h & mask;; i = (i + 1) & mask) {
		cache_ent_t *e = &be->slots[i];
		if (e->pid == NULL)
			return NULL;
		if (e->hash == h && strcmp(e->pid, pid) == 0)
			return e;
	}
}

static cache_ent_t *cache_add_locked(backend_t *be, const char *pid, uint64_t h)
{
	if (be->nused >= MAX_CACHE)
		cache_clear_locked(be);
	if ((be->nused + 1) * 2 > be->nslots) {
		size_t n = be->nslots ? be->nslots * 2 : 256;
		cache_ent_t *slots = calloc(n, sizeof *slots);
		if (slots == NULL)
			return NULL;
		for (size_t i = 0; i < be->nslots; i++) {
			if (be->slots[i].pid == NULL)
				continue;
			size_t k = be->slots[i].hash & (n - 1);
			while (slots[k].pid)
				k = (k + 1) & (n - 1);
			slots[k] = be->slots[i];
		}
		free(be->slots);
		be->slots = slots;
		be->nslots = n;
	}
	size_t mask = be->nslots - 1;
	size_t k = h & mask;
	while (be->slots[k].pid)
		k = (k + 1) & mask;
	char *copy = strdup(pid);
	if (copy == NULL)
		return NULL;
	be->slots[k] = (cache_ent_t){copy, h, 0, 0};
	be->nused++;
	return &be->slots[k];
}

/* The last boundary known for pid, in *boundary; 0 when none is known. */
int skald__mg_cache_get(backend_t *be, const char *pid, uint64_t *boundary)
{
	pthread_mutex_lock(&be->lock);
	cache_ent_t *e = cache_find_locked(be, pid, skald__hash_str(pid));
	if (e)
		*boundary = e->boundary;
	pthread_mutex_unlock(&be->lock);
	return e != NULL;
}

/*
 * Records that boundary ends a stored document of pid (keeping the highest
 * known), counting a write when wrote is set. Returns the writes since the
 * hint was last refreshed, and resets that count when it reaches
 * PID_HINT_EVERY (the caller then refreshes the hint).
 */
uint32_t skald__mg_cache_put(backend_t *be, const char *pid, uint64_t boundary, int wrote)
{
	uint64_t h = skald__hash_str(pid);
	uint32_t since = 0;
	pthread_mutex_lock(&be->lock);
	cache_ent_t *e = cache_find_locked(be, pid, h);
	if (e == NULL)
		e = cache_add_locked(be, pid, h);
	if (e) {
		if (boundary > e->boundary)
			e->boundary = boundary;
		if (wrote)
			since = ++e->since_hint;
		if (since >= PID_HINT_EVERY)
			e->since_hint = 0;
	}
	pthread_mutex_unlock(&be->lock);
	return since;
}

/* Forgets pid's boundary: after a conflict, another writer moved it on. */
void skald__mg_cache_drop(backend_t *be, const char *pid)
{
	uint64_t h = skald__hash_str(pid);
	pthread_mutex_lock(&be->lock);
	cache_ent_t *e = cache_find_locked(be, pid, h);
	if (e)
		e->boundary = 0;
	pthread_mutex_unlock(&be->lock);
}

static void backend_free(backend_t *be)
{
	if (be->pool)
		mongoc_client_pool_destroy(be->pool);
	if (be->uri)
		mongoc_uri_destroy(be->uri);
	cache_clear_locked(be);
	pthread_mutex_destroy(&be->lock);
	pthread_mutex_destroy(&be->order_lock);
	free(be->key);
	free(be->db);
	free(be);
}

/* The backend for the mongoc URI text key (parsed as uri), created on first
 * use. Takes ownership of uri on success. */
backend_t *skald__mg_backend_attach(const char *key, mongoc_uri_t *uri, const char *db)
{
	pthread_mutex_lock(&backends_lock);
	backend_t *be = backends;
	while (be && strcmp(be->key, key) != 0)
		be = be->next;
	if (be) {
		be->refs++;
		pthread_mutex_unlock(&backends_lock);
		mongoc_uri_destroy(uri);
		return be;
	}
	be = calloc(1, sizeof *be);
	if (be == NULL || (be->key = strdup(key)) == NULL || (be->db = strdup(db)) == NULL) {
		if (be) {
			free(be->key);
			free(be);
		}
		pthread_mutex_unlock(&backends_lock);
		return NULL;
	}
	pthread_mutex_init(&be->lock, NULL);
	pthread_mutex_init(&be->order_lock, NULL);
	be->uri = uri;
	/* The pool only prepares here; it connects on the first pop, on a
	 * worker thread. */
	be->pool = mongoc_client_pool_new(uri);
	if (be->pool == NULL) {
		be->uri = NULL;
		backend_free(be);
		pthread_mutex_unlock(&backends_lock);
		return NULL;
	}
	mongoc_client_pool_set_error_api(be->pool, MONGOC_ERROR_API_VERSION_2);
	if (mongoc_uri_get_appname(uri) == NULL)
		mongoc_client_pool_set_appname(be->pool, "skald");
	be->refs = 1;
	be->next = backends;
	backends = be;
	pthread_mutex_unlock(&backends_lock);
	return be;
}

/* A backend outlives its handles, as a connection pool should: a handle
 * opened again later finds its connections and caches (above all the end of
 * the order chain) still there. Backends live until the process exits. */
void skald__mg_backend_detach(backend_t *be)
{
	pthread_mutex_lock(&backends_lock);
	be->refs--;
	pthread_mutex_unlock(&backends_lock);
}
