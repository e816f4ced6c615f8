/*
 * journal/upcast.c - the process-wide upcaster registry, and its application
 * to events as the journal front reads them.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "journal/journal_int.h"

typedef struct upcaster_s {
	char *type;
	int from_version;
	skald_upcast_fn fn;
	void *arg;
} upcaster_t;

/* Registration happens at start-up and reads happen on every loop thread, so
 * a reader-writer lock keeps readers from serialising on each other. Entries
 * are never removed, and a linear scan is fine for the few dozen upcasters an
 * application has. */
static pthread_rwlock_t lock = PTHREAD_RWLOCK_INITIALIZER;
static upcaster_t *table;
static size_t count, cap;
/* Read without the lock on the hot path of every event: while it is zero no
 * read pays for a lookup. */
static atomic_size_t active;

/* A chain longer than this is a cycle or a bug, not a schema history. */
#define MAX_CHAIN 1000

int skald_upcaster_register(const char *type, int from_version, skald_upcast_fn fn, void *arg)
{
	if (type == NULL || *type == '\0' || fn == NULL || from_version < 1)
		return SKALD_EINVAL;
	char *copy = strdup(type);
	if (copy == NULL)
		return SKALD_ENOMEM;
	int rc = 0;
	pthread_rwlock_wrlock(&lock);
	for (size_t i = 0; i < count; i++) {
		if (table[i].from_version == from_version && strcmp(table[i].type, type) == 0) {
			rc = SKALD_EEXISTS;
			goto out;
		}
	}
	if (count == cap) {
		size_t ncap = cap ? cap * 2 : 16;
		upcaster_t *t = realloc(table, ncap * sizeof *t);
		if (t == NULL) {
			rc = SKALD_ENOMEM;
			goto out;
		}
		table = t;
		cap = ncap;
	}
	table[count++] = (upcaster_t){copy, from_version, fn, arg};
	copy = NULL;
	atomic_store_explicit(&active, count, memory_order_release);
out:
	pthread_rwlock_unlock(&lock);
	free(copy);
	return rc;
}

int skald__upcasters_active(void)
{
	return atomic_load_explicit(&active, memory_order_acquire) != 0;
}

int skald__upcast(skald_event_t *ev)
{
	for (int step = 0; step < MAX_CHAIN; step++) {
		skald_upcast_fn fn = NULL;
		void *arg = NULL;
		pthread_rwlock_rdlock(&lock);
		for (size_t i = 0; i < count; i++) {
			if (table[i].from_version == ev->version &&
			    strcmp(table[i].type, ev->type) == 0) {
				fn = table[i].fn;
				arg = table[i].arg;
				break;
			}
		}
		pthread_rwlock_unlock(&lock);
		if (fn == NULL)
			return 0;
		/* Stores may share one tree between readers (the memory store
		 * does): an upcaster, which may rewrite in place, gets a copy
		 * of its own. The store releases whatever ev->data holds after
		 * the batch, so the shared reference is dropped here. */
		if (__atomic_load_n(&ev->data->refcount, __ATOMIC_ACQUIRE) > 1) {
			json_t *own = json_deep_copy(ev->data);
			if (own == NULL)
				return SKALD_ENOMEM;
			json_decref(ev->data);
			ev->data = own;
		}
		/* The upcaster runs without the lock: it may be slow, and it
		 * may even register further upcasters. */
		int version = ev->version;
		int rc = fn(ev->type, &version, &ev->data, arg);
		if (rc != 0)
			return rc < 0 ? rc : SKALD_EINVAL;
		if (version <= ev->version || ev->data == NULL)
			return SKALD_EINVAL;
		ev->version = version;
	}
	return SKALD_EINVAL;
}
