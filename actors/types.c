/*
 * actors/types.c - the process-wide registry of message types.
 *
 * Ids index a fixed array, so the send path reads a definition with one
 * atomic load and no lock. Registration takes a mutex; it is rare.
 */
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "actors/transport.h"

#define MAX_TYPES 4096

static _Atomic(const skald_msgtype_t *) types[MAX_TYPES];
static _Atomic uint32_t ntypes;
static uv_mutex_t lock;
static uv_once_t once = UV_ONCE_INIT;

static const skald_msgtype_t down_type = {
        .name = "skald.down",
        .free = free,
};

static void init_once(void)
{
	if (uv_mutex_init(&lock) != 0)
		abort();
	/* Id 0 is never valid; the built-in types come first, at the ids
	 * their headers promise. Those of other layers stay empty until the
	 * layer installs them (skald__type_install). */
	atomic_store(&types[SKALD_TYPE_DOWN], &down_type);
	atomic_store(&ntypes, SKALD__TYPE_FIRST_USER);
}

static int same_def(const skald_msgtype_t *a, const skald_msgtype_t *b)
{
	return a == b ||
	       (strcmp(a->name, b->name) == 0 && a->free == b->free && a->encode == b->encode &&
	        a->decode == b->decode && a->codec == b->codec && a->size == b->size);
}

int skald__type_encode(const skald_msgtype_t *t, const void *payload, void **out, size_t *len)
{
	if (t->codec != NULL)
		return t->codec->encode(t, payload, out, len);
	if (t->encode == NULL)
		return SKALD_ENOCODEC;
	return t->encode(payload, out, len) < 0 ? SKALD_EENCODE : 0;
}

int skald__type_decode(const skald_msgtype_t *t, const void *data, size_t len, void **payload)
{
	if (t->codec != NULL)
		return t->codec->decode(t, data, len, payload);
	if (t->decode == NULL)
		return SKALD_ENOCODEC;
	return t->decode(data, len, payload) < 0 ? SKALD_EDECODE : 0;
}

void skald__type_free(const skald_msgtype_t *t, void *payload)
{
	if (t == NULL || payload == NULL)
		return;
	if (t->free != NULL)
		t->free(payload);
	else if (t->codec != NULL)
		t->codec->free(payload);
}

/* The id of the type called name, or 0. Reads without the lock: an entry,
 * once stored, never changes. */
static uint32_t find(const char *name)
{
	uint32_t n = atomic_load(&ntypes);
	for (uint32_t i = 1; i < n; i++) {
		const skald_msgtype_t *t = atomic_load(&types[i]);
		if (t != NULL && strcmp(t->name, name) == 0)
			return i;
	}
	return 0;
}

int skald_type_register(const skald_msgtype_t *def, uint32_t *id)
{
	if (def == NULL || def->name == NULL || def->name[0] == '\0' || id == NULL)
		return SKALD_EINVAL;
	if (def->codec != NULL &&
	    (def->encode != NULL || def->decode != NULL || (def->codec->sized && def->size == 0)))
		return SKALD_EINVAL;
	uv_once(&once, init_once);
	uv_mutex_lock(&lock);
	uint32_t n = atomic_load(&ntypes);
	uint32_t found = find(def->name);
	if (found != 0) {
		const skald_msgtype_t *t = atomic_load(&types[found]);
		uv_mutex_unlock(&lock);
		if (!same_def(t, def))
			return SKALD_ETYPEEXISTS;
		*id = found;
		return 0;
	}
	if (n >= MAX_TYPES) {
		uv_mutex_unlock(&lock);
		return SKALD_ETOOMANY;
	}
	atomic_store(&types[n], def);
	atomic_store(&ntypes, n + 1);
	uv_mutex_unlock(&lock);
	*id = n;
	return 0;
}

int skald__type_install(uint32_t id, const skald_msgtype_t *def)
{
	if (id == 0 || id >= SKALD__TYPE_FIRST_USER || def == NULL || def->name == NULL ||
	    def->name[0] == '\0')
		return SKALD_EINVAL;
	uv_once(&once, init_once);
	uv_mutex_lock(&lock);
	const skald_msgtype_t *t = atomic_load(&types[id]);
	uint32_t found = find(def->name);
	int rc = 0;
	if (t != NULL)
		rc = same_def(t, def) ? 0 : SKALD_ETYPEEXISTS;
	else if (found != 0)
		rc = SKALD_ETYPEEXISTS;
	else
		atomic_store(&types[id], def);
	uv_mutex_unlock(&lock);
	return rc;
}

int skald_type_lookup(const char *name, uint32_t *id)
{
	if (name == NULL || id == NULL)
		return SKALD_EINVAL;
	uv_once(&once, init_once);
	uint32_t found = find(name);
	if (found == 0)
		return SKALD_ENOTYPE;
	*id = found;
	return 0;
}

const skald_msgtype_t *skald_type_get(uint32_t id)
{
	uv_once(&once, init_once);
	if (id == 0 || id >= MAX_TYPES)
		return NULL;
	return atomic_load_explicit(&types[id], memory_order_acquire);
}

void *skald_msg_take(skald_msg_t *msg)
{
	/* msg is the runtime's own view of the envelope: after the callback it
	 * frees whatever payload msg still holds, so clearing it is the
	 * transfer. */
	void *p = msg->payload;
	msg->payload = NULL;
	return p;
}

void skald_payload_free(uint32_t id, void *payload)
{
	skald__type_free(skald_type_get(id), payload);
}
