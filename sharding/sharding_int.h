/*
 * sharding/sharding_int.h - what the files of sharding/ share. Never
 * installed.
 *
 * Map:
 *   env.c       the envelope of a message on its way to an entity, its
 *               codec, the built-in types, queues of envelopes
 *   place.c     shard of an id, owner of a shard, digest of a view
 *   view.c      the region's view of the members, from member events, and
 *               what a change of view does to each shard
 *   route.c     routing: to a local entity, to another member's region
 *               (found with skald_lookup), holding; asks failed with why
 *   hosted.c    the entities a region hosts: start (capped recoveries),
 *               deliver, stop, passivation, restart with backoff
 *   handoff.c   moving a shard between live members, and taking over a
 *               shard whose owner is gone
 *   remember.c  the set of live entities of each shard, kept in the
 *               journal as an entity of its own
 *   region.c    the region actor: its messages, timer and stop
 *   api.c       skald/sharding.h
 *   singleton.c skald_singleton_* of skald/sharding.h: a region with one
 *               shard whose owner is the oldest member
 *
 * Layering: sharding/ sits above journal/ and actors/cluster/: it uses the
 * public headers, actors/layer.h (forwarding on behalf of a sender, failing
 * an ask, built-in types) and journal/entity_int.h (the type an entity was
 * spawned with).
 *
 * Threads: everything of a region but its handle's counters lives on the
 * region actor's thread. Entities run on every scheduler thread; they talk
 * to their region only by messages.
 */
#ifndef SKALD_SHARDING_INT_H
#define SKALD_SHARDING_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "skald/cluster.h"
#include "skald/remote.h"
#include "skald/sharding.h"

/* Built-in message types (ids reserved by the runtime for sharding,
 * installed by skald__sharding_types). Only the envelope crosses nodes. */
enum {
	SKALD__TYPE_SHARD_ENV = 10,      /* shard_env_t, between regions and from clients */
	SKALD__TYPE_SHARD_READY = 11,    /* an entity of the region recovered; no payload */
	SKALD__TYPE_SHARD_STOP = 12,     /* stop the region (an ask); no payload */
	SKALD__TYPE_SHARD_REM = 13,      /* to a remember entity: json {"started","stopped"} */
	SKALD__TYPE_SHARD_REM_ACK = 14,  /* from it: a change stored; no payload */
	SKALD__TYPE_SHARD_REM_LIST = 15, /* from it once recovered: json array of ids */
};

/* What an envelope carries. */
enum {
	SK_MSG = 0, /* a message for entity `id` */
	SK_VIEW,    /* the sending region routes by the view `view` from now on */
	SK_BEGIN,   /* the sender takes over `shard` (its view: `view`) */
	SK_HANDOFF, /* the sender has handed `shard` over to the receiver */
	SK_KIND_MAX = SK_HANDOFF,
};

/* flags */
#define SF_HANDED 1u /* forwarded by the shard's old owner with its handoff */

/* A message on its way to entity `id`, or a control message between
 * regions. The user's type and payload are owned by the envelope until
 * delivered. On the wire the type goes by name and the payload through the
 * type's codec; next, err and via never travel. */
typedef struct shard_env_s {
	struct shard_env_s *next; /* in a queue of a region */
	uint8_t kind;             /* SK_* */
	uint8_t flags;            /* SF_* */
	uint16_t hops;            /* regions it went through */
	uint32_t shard;
	uint64_t view;      /* digest of the view of the region that sent it */
	skald_ref_t sender; /* the original sender (any node), or null */
	uint64_t ask_id;    /* the sender's ask, 0 for a tell */
	uint64_t deadline;  /* an ask: monotonic ms when its asker stops waiting */
	uint32_t type;      /* the user's type (this process's id) */
	int err;            /* received, but the payload could not be decoded */
	uint64_t via;       /* the member whose region sent it here (0: a client) */
	void *payload;
	char id[];
} shard_env_t;

typedef struct msgq_s {
	shard_env_t *head, *tail;
	size_t n;
} msgq_t;

/* The entity type a region spawns: the user's, with `recovered` wrapped to
 * tell the region (the recovery cap counts on it). t comes first, so that
 * the wrapper finds `user` from the type pointer of the entity. */
typedef struct shard_type_s {
	skald_entity_type_t t;
	const skald_entity_type_t *user;
} shard_type_t;

enum { REGION_SHARDS = 1, REGION_SINGLETON };

/* A region's handle: shared by the caller's thread and the region actor.
 * Freed by whichever lets go last (refs). */
struct skald_sharding_s {
	skald_system_t *sys;
	skald_ref_t region;
	int mode;                    /* REGION_* */
	skald_sharding_config_t cfg; /* defaults filled in */
	/* What a region hosts: an entity type (wrapped), or, for a plain
	 * singleton, a behaviour and its argument. */
	shard_type_t type;
	const skald_behavior_t *behavior;
	void *behavior_arg;
	char *single_id;              /* singleton: the one entity's id */
	skald_entity_type_t remember; /* remember: the type of the shards' sets */
	char *remember_name;
	char name[160];           /* published name of the region on each member */
	_Atomic uint64_t *owners; /* per shard, for skald_sharding_owner */
	atomic_size_t buffered;
	atomic_bool stopped;
	_Atomic int refs;
	_Atomic uint64_t shards_owned, live, recovering, started, handoffs_out, handoffs_in,
	        takeovers, passivated, restarts, conflicts, dropped;
};

/* env.c */
/* Installs the built-in types once per process; 0 or a negative code. */
int skald__sharding_types(void);
/* A new envelope of kind for id (NULL: ""), or NULL without memory; the
 * payload is not stored. */
shard_env_t *skald__env_alloc(uint8_t kind, const char *id);
/* Frees env and its payload (with its type's free). */
void skald__shard_env_free(shard_env_t *env);
void skald__q_push(msgq_t *q, shard_env_t *env);
shard_env_t *skald__q_pop(msgq_t *q);
/* Moves every envelope of src to the end of dst. */
void skald__q_move(msgq_t *dst, msgq_t *src);

/* place.c */
uint32_t skald__shard_of(const char *id, unsigned n);
/* The owner of shard among up[0..n) (node ids) but skip (0: none): the
 * highest rendezvous weight; 0 when there is nobody. */
uint64_t skald__rendezvous(uint32_t shard, const uint64_t *up, size_t n, uint64_t skip);
/* A 64-bit mix of x (splitmix64's finalizer). */
uint64_t skald__mix64(uint64_t x);

/* The handle's reference count. */
void skald__sharding_release(skald_sharding_t *sh);
/* Starts a region for sh (its config, mode and hosted kind set) on sys:
 * spawns and publishes the actor. 0 or a negative code (sh still the
 * caller's). */
int skald__region_start(skald_system_t *sys, skald_sharding_t *sh);
/* Asks the region to stop and waits (at most 30 s), then drops the
 * caller's reference. */
void skald__region_stop(skald_sharding_t *sh);
/* skald__region_stop, after forgetting that sh's name is taken. */
void skald__region_stop_release(skald_sharding_t *sh);
/* A started region for the singleton of cfg (checked by the caller). */
int skald__singleton_handle(skald_system_t *sys, const skald_singleton_config_t *cfg,
                            skald_sharding_t **out);
/* The body of skald_sharding_tell/_ask/_system_ask for id, shared with the
 * singletons. */
int skald__region_tell(skald_sharding_t *sh, skald_actor_t *self, const char *id, uint32_t type,
                       void *payload);
int skald__region_ask(skald_sharding_t *sh, skald_actor_t *self, const char *id, uint32_t type,
                      void *payload, uint64_t timeout_ms, skald_reply_fn cb, void *arg);
int skald__region_system_ask(skald_sharding_t *sh, const char *id, uint32_t type, void *payload,
                             uint64_t timeout_ms, uint32_t *reply_type, void **reply_payload);

#endif /* SKALD_SHARDING_INT_H */
