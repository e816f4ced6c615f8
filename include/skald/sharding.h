/*
 * skald/sharding.h - persistent entities spread over the cluster, and
 * cluster singletons. An entity is reached by (type, id) from any member,
 * without knowing where it lives.
 *
 * Each member that runs skald_sharding_start() for an entity type hosts a
 * *region* for it: an actor that owns some of the type's shards and routes
 * every message for the others. An id belongs to one shard (a hash of the
 * id); a shard's owner is the member ranked first by rendezvous hashing of
 * (shard, node id) over the up members of the cluster (skald/cluster.h), so
 * every member with the same view names the same owner, with no election and
 * no coordinator (docs/SHARDING.md says why shards and why rendezvous).
 *
 * The owner starts an entity on its first message and the entity recovers
 * from the journal (skald/entity.h); at most max_recoveries recover at once
 * on a member, the others wait their turn. An entity that got no message for
 * passivate_ms is stopped. An entity that fails (a journal write that
 * failed, the database gone, a command that returned an error) is started
 * again after a backoff that doubles from backoff_min_ms to backoff_max_ms,
 * so service resumes by itself when the database returns.
 *
 * When the view changes, a shard that moves between two live members is
 * handed off: the old owner stops the shard's entities after their writes
 * in flight and holds what arrives meanwhile; the new owner holds what it
 * gets directly; once every member routes by the new view, the old owner
 * sends what it held, then the handoff, and the new owner delivers the
 * messages in the order they were sent. When its owner is down, a shard
 * moves at once to a survivor, which recovers the entities from the journal.
 * With `remember`, the set of live entities of each shard is kept in the
 * journal, and a member that takes a shard over starts them again without
 * waiting for a message.
 *
 * Guarantees:
 *  - single writer: two live incarnations of an entity (a member that was
 *    stopped and wakes, the minority side of a partition) never fork its
 *    history; the one that is behind gets SKALD_ECONFLICT on its next write
 *    and stops (entity.h).
 *  - ask: the callback runs exactly once, with the entity's reply or an
 *    error that says why (SKALD_ENODEDOWN, SKALD_ETIMEDOUT,
 *    SKALD_EBUFFERFULL, SKALD_ENOACTOR...).
 *  - tell: at most once. A message in flight to a member that dies is lost;
 *    one refused by another member (its buffer full, its type unknown there)
 *    is dropped and logged there.
 *  - order: the messages of one sender to one entity arrive in the order
 *    sent, also across a handoff (docs/SHARDING.md gives the one exception:
 *    a member that never routed by the new view within handoff_timeout_ms).
 *
 * Every member must run a region for each type it may receive, with the
 * same `shards`. Messages to entities on other members need a codec
 * (skald_msgtype_t), and so do their replies. An entity sees the original
 * sender of each message (msg->sender, NULL from outside an actor) and
 * answers an ask with skald_reply, wherever the asker lives.
 *
 * Threading: skald_sharding_stop and _system_ask (and the singleton ones)
 * must not run on a scheduler thread. The others are safe from any thread,
 * or, where they take an actor, from that actor's thread.
 */
#ifndef SKALD_SHARDING_H
#define SKALD_SHARDING_H

#include <stddef.h>
#include <stdint.h>

#include "actor.h"
#include "entity.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct skald_sharding_s skald_sharding_t;

/* passivate_ms value that never passivates. */
#define SKALD_SHARDING_NEVER UINT64_MAX

typedef struct skald_sharding_config_s {
	/* The entity type (skald/entity.h), borrowed for the life of the
	 * process. Its name names the region among members. Required. */
	const skald_entity_type_t *type;
	/* Shards of the type; the same on every member. 0: 64. At most
	 * 65,536. About ten per member is a good number. */
	unsigned shards;
	/* An entity that got no message for this long is stopped (it starts
	 * again on its next message). 0: 120,000; SKALD_SHARDING_NEVER:
	 * never. */
	uint64_t passivate_ms;
	/* Non-zero: the set of live entities of each shard is kept in the
	 * journal (as entity "skald.remember.TYPE-SHARD"), and a member that
	 * takes a shard over starts them at once. */
	int remember;
	/* Entities of this type recovering at once on this member. 0: 32. */
	unsigned max_recoveries;
	/* Messages this member holds for entities that are moving or
	 * starting, summed over shards; one more is refused with
	 * SKALD_EBUFFERFULL. 0: 10,000. */
	size_t max_buffer;
	/* How long a handoff may wait for the other members to route by the
	 * new view, and a new owner for the old owner's handoff, before it
	 * goes on anyway (the journal still keeps one writer). 0: 5,000. */
	uint64_t handoff_timeout_ms;
	/* Restart of a failed entity: the first after backoff_min_ms, each
	 * next one after twice as long, at most backoff_max_ms. 0: 200 and
	 * 10,000. */
	uint64_t backoff_min_ms, backoff_max_ms;
} skald_sharding_config_t;

/*
 * Starts the region of cfg->type on sys and stores its handle in *out. The
 * cluster must be started (skald_cluster_start); the region follows its
 * view, and holds messages until this member is up. Returns at once; any
 * thread. cfg is copied. Errors: SKALD_EINVAL (NULL argument, no type or a
 * type without name, command or apply, shards above 65,536, backoff_min_ms
 * above backoff_max_ms, cluster not started, a region of that type already
 * started on sys), SKALD_ESCHEME and SKALD_EURI (the system's journal URI;
 * the reason is logged), SKALD_ENOMEM, SKALD_ESTOPPING, SKALD_ETOOMANY.
 */
int skald_sharding_start(skald_system_t *sys, const skald_sharding_config_t *cfg,
                         skald_sharding_t **out);

/*
 * Stops the region: its entities stop after their writes in flight, and
 * messages still held here fail (asks with SKALD_ESTOPPING). The shards move
 * to other members only when this member leaves the view: call
 * skald_cluster_leave first for a handoff without failover. Blocks until
 * every entity has stopped (at most 30 s), then releases sh. Call it before
 * skald_system_stop, and not on a scheduler thread (it could not wait there:
 * it would release sh at once and leave the region running). Safe with
 * NULL.
 */
void skald_sharding_stop(skald_sharding_t *sh);

/*
 * Sends payload of type `type` to the entity `id`, from self (NULL: from
 * outside any actor; the entity then sees a null sender). At most once. On
 * 0 the payload belongs to the runtime; on error the caller still owns it.
 * id is copied. Errors: SKALD_EINVAL (NULL sh, empty id or longer than 1,024
 * bytes), SKALD_ENOTYPE, SKALD_ENOTOWNER (self not on its thread),
 * SKALD_EBUFFERFULL (max_buffer messages are held by this member),
 * SKALD_ESTOPPING (the region stopped), SKALD_ENOMEM.
 */
int skald_sharding_tell(skald_sharding_t *sh, skald_actor_t *self, const char *id, uint32_t type,
                        void *payload);

/*
 * Asks the entity `id`: cb runs once on self's thread with the entity's
 * reply (status 0; borrowed as in skald_reply_fn), or reply NULL and:
 *   SKALD_ETIMEDOUT    no answer within timeout_ms
 *   SKALD_ENODEDOWN    the member that had the message went down or left,
 *                      or this member was downed
 *   SKALD_EBUFFERFULL  too many messages wait where it was held
 *   SKALD_ENOCODEC, SKALD_EENCODE, SKALD_ENOTYPE, SKALD_EDECODE
 *                      the message cannot reach the owner, or the owner
 *                      cannot read it
 *   SKALD_ENOACTOR     the entity stopped before it answered
 *   SKALD_ESTOPPING    the region that held it stopped
 *   SKALD_ECANCELED    self is stopping or restarting
 * Ownership of payload as skald_sharding_tell; id is copied; arg is passed
 * to cb as is. Errors (cb never runs): as skald_sharding_tell, and
 * SKALD_EINVAL for a NULL self or cb.
 */
int skald_sharding_ask(skald_sharding_t *sh, skald_actor_t *self, const char *id, uint32_t type,
                       void *payload, uint64_t timeout_ms, skald_reply_fn cb, void *arg);

/*
 * Blocking ask from a thread that is not one of the system's. On 0 the
 * reply is in *reply_type and *reply_payload (the caller owns the payload).
 * Errors: the statuses of skald_sharding_ask, and those of
 * skald_sharding_tell; the payload is consumed except on SKALD_EINVAL,
 * SKALD_ENOTYPE, SKALD_ENOTOWNER, SKALD_EBUFFERFULL, SKALD_ESTOPPING and
 * SKALD_ENOMEM.
 */
int skald_sharding_system_ask(skald_sharding_t *sh, const char *id, uint32_t type, void *payload,
                              uint64_t timeout_ms, uint32_t *reply_type, void **reply_payload);

/* The shard of id, in [0, shards): the same on every member. Errors:
 * SKALD_EINVAL (NULL sh or id). Any thread. */
int skald_sharding_shard(const skald_sharding_t *sh, const char *id, unsigned *shard);

/* The node id that owns id's shard in this member's current view (0 while
 * it has none). Errors: SKALD_EINVAL (NULL argument). Any thread. */
int skald_sharding_owner(skald_sharding_t *sh, const char *id, uint64_t *node);

/* The region's reference (its messages are internal). SKALD_REF_NULL for
 * NULL. */
skald_ref_t skald_sharding_region(const skald_sharding_t *sh);

typedef struct skald_sharding_stats_s {
	uint64_t shards_owned;  /* shards this member serves or is taking over */
	uint64_t live_entities; /* started and not yet stopped */
	uint64_t recovering;    /* of which still recovering */
	uint64_t buffered;      /* messages held here */
	uint64_t started;       /* entities started since the region began */
	uint64_t handoffs_out;  /* shards handed over to another member */
	uint64_t handoffs_in;   /* shards taken after a handoff */
	uint64_t takeovers;     /* shards taken from a member that was gone */
	uint64_t passivated;    /* entities stopped for being idle */
	uint64_t restarts;      /* entities started again after a failure */
	uint64_t conflicts;     /* entities stopped by a write conflict */
	uint64_t dropped;       /* messages refused or lost here (asks told why) */
} skald_sharding_stats_t;

/* Copies the region's counters (approximate while it runs). Errors:
 * SKALD_EINVAL (NULL argument). Any thread. */
int skald_sharding_stats(skald_sharding_t *sh, skald_sharding_stats_t *out);

/* ------------------------------------------------------------------------ */
/* Singletons                                                                */

/*
 * One instance of a named actor in the cluster, hosted by the oldest up
 * member (the first of skald_cluster_members, the same on every member),
 * started again on the next oldest when its host leaves or goes down. Every
 * member runs skald_singleton_start with the same name; each gets a proxy
 * that routes to the host and holds messages while the singleton moves
 * (bounded by max_buffer). A move between live members is a handoff, as for
 * sharded entities: the old instance stops after what it was sent, then the
 * new one starts and gets the held messages in order.
 *
 * A persistent singleton (an entity type) recovers its state from its
 * events on its new host: the game lobby. Its persistence id is
 * "TYPE-NAME". A plain one (a behaviour) starts afresh.
 */
typedef struct skald_singleton_s skald_singleton_t;

typedef struct skald_singleton_config_s {
	/* The singleton's name, the same on every member; 1 to 100 bytes.
	 * Copied. Required. */
	const char *name;
	/* Exactly one of: an entity type (persistent), or a behaviour and
	 * its argument (plain; the behaviour must not own the argument, no
	 * free_arg: it is passed to every instance this member starts).
	 * Borrowed until skald_singleton_stop returns. */
	const skald_entity_type_t *type;
	const skald_behavior_t *behavior;
	void *arg;
	/* As skald_sharding_config_t; 0: the same defaults. */
	size_t max_buffer;
	uint64_t handoff_timeout_ms;
	uint64_t backoff_min_ms, backoff_max_ms;
} skald_singleton_config_t;

/* Starts this member's part of the singleton: its host if this member is
 * the oldest, its proxy in any case. Returns at once. Errors as
 * skald_sharding_start, and SKALD_EINVAL for a name that is missing or too
 * long, or not exactly one of type and behavior, or a behaviour with
 * free_arg. */
int skald_singleton_start(skald_system_t *sys, const skald_singleton_config_t *cfg,
                          skald_singleton_t **out);
/* As skald_sharding_stop. Safe with NULL. */
void skald_singleton_stop(skald_singleton_t *s);
/* As skald_sharding_tell, _ask and _system_ask, to the singleton. */
int skald_singleton_tell(skald_singleton_t *s, skald_actor_t *self, uint32_t type, void *payload);
int skald_singleton_ask(skald_singleton_t *s, skald_actor_t *self, uint32_t type, void *payload,
                        uint64_t timeout_ms, skald_reply_fn cb, void *arg);
int skald_singleton_system_ask(skald_singleton_t *s, uint32_t type, void *payload,
                               uint64_t timeout_ms, uint32_t *reply_type, void **reply_payload);
/* The node id of the member that hosts it in this member's view (0 while
 * there is none). Errors: SKALD_EINVAL (NULL argument). Any thread. */
int skald_singleton_host(skald_singleton_t *s, uint64_t *node);
/* The counters of this member's part (skald_sharding_stats_t). Errors:
 * SKALD_EINVAL. */
int skald_singleton_stats(skald_singleton_t *s, skald_sharding_stats_t *out);

#ifdef __cplusplus
}
#endif
#endif /* SKALD_SHARDING_H */
