/*
 * journal/journal_int.h - internals shared by the journal front and the
 * built-in stores. Never installed.
 */
#ifndef SKALD_JOURNAL_INT_H
#define SKALD_JOURNAL_INT_H

#include <stddef.h>
#include <stdint.h>

#include "skald/store.h"

/*
 * Adds store to the registry without first registering the built-in stores:
 * the built-ins' registration functions call this (calling
 * skald_store_register from there would re-enter the one-time built-in
 * registration). Errors as skald_store_register.
 */
int skald__registry_add(const skald_store_t *store);

/*
 * Finds the store for uri's scheme (the text before the first ':'). On
 * failure returns SKALD_EURI or SKALD_ESCHEME and writes a message for the
 * user into err (errlen bytes), which names the mistake and, for an unknown
 * scheme, lists the registered ones. Thread-safe.
 */
int skald__registry_find(const char *uri, const skald_store_t **out, char *err, size_t errlen);

/*
 * Applies the registered upcasters to ev (type, version and data) until none
 * matches its version. ev->data must be an owned reference, which may be
 * replaced. Returns 0 or the failing upcaster's code (SKALD_EINVAL if it did
 * not raise the version or left no data). Thread-safe.
 */
int skald__upcast(skald_event_t *ev);

/* Non-zero once any upcaster is registered: lets readers skip the lookup. */
int skald__upcasters_active(void);

/* The journal of a system's entities when nothing names one. */
#define SKALD__JOURNAL_DEFAULT "memory://default"

/*
 * What "no journal URI" means, in one place: uri when given (not NULL),
 * else the environment variable SKALD_JOURNAL when it is set and not empty,
 * else dflt. A system's entities pass SKALD__JOURNAL_DEFAULT, so that they
 * run with no configuration at all; skald_journal_open and
 * skald_store_migrate (the tool's way in) pass NULL, so that no journal is
 * ever opened or migrated that nobody named. Stores the URI in *out
 * (borrowed) and returns 0, or returns SKALD_EURI when there is none (or it
 * is empty) with a message for the user in err (errlen bytes; may be NULL).
 */
int skald__journal_uri(const char *uri, const char *dflt, const char **out, char *err,
                       size_t errlen);

/* Wall-clock milliseconds since the Unix epoch. */
int64_t skald__now_ms(void);

/* Registration functions of the built-in stores, called once by the registry
 * (journal/registry.c, register_builtins). */
int skald__store_memory_register(void);
int skald__store_postgres_register(void);
int skald__store_mongo_register(void);

#endif /* SKALD_JOURNAL_INT_H */
