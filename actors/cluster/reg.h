/*
 * actors/cluster/reg.h - the cluster registry (names and groups) and remote
 * spawn: what their files share. Private to actors/cluster/; never
 * installed.
 *
 *   table.c      the table of registrations under its lock: visibility,
 *                the winner rule for names, group events to local
 *                subscribers, lookups that wait
 *   reg_codec.c  the messages between the registry actors of two nodes
 *   daemon.c     the registry actor of a node: member events, finding the
 *                other members' registry actors, replication, repair,
 *                withdrawing names that lost, serving remote spawns
 *   names.c      skald_cluster_register ... skald_cluster_system_lookup
 *   groups.c     skald_group_*
 *   spawn.c      the behaviour table and skald_cluster_spawn
 *
 * Model. Every registration (a name, or a group entry) belongs to the node
 * that made it, its origin; only the origin ends it. Each node's registry
 * actor (the daemon) sends the changes of its own part, in versioned
 * deltas, to the daemons of the other members, and its whole part (FULL) to
 * a member it finds, and to one that asks (WANT) because it saw a gap in the
 * versions. Every member thus holds every part, and drops a part at once
 * when its origin is down or removed. A name held by several origins
 * resolves, on every member alike, to the registration of the oldest origin
 * (the age order of the membership); the younger origins withdraw theirs.
 *
 * Threads: the table (skald__reg_t) is read and written by any thread under
 * `lock`; a change made by the public API is applied at once under the lock
 * and told to the daemon (a LOCAL batch) inside the same critical section,
 * so the daemon sees local changes in the table's order. Only the daemon
 * talks to other nodes, and only it changes the peers (under the lock, as
 * spawn reads their daemons from other threads).
 */
#ifndef SKALD_ACTORS_CLUSTER_REG_H
#define SKALD_ACTORS_CLUSTER_REG_H

#include <stdatomic.h>
#include <uv.h>

#include "skald/cluster.h"

enum { REG_NAME = 1, REG_GROUP = 2, REG_WATCH = 3 /* LOCAL only: watch a subscriber */ };

/* One registration. */
typedef struct skald__reg_entry_s {
	char *key; /* NULL: a free slot */
	skald_ref_t ref;
	uint64_t origin; /* the node that made it, the only one to end it */
	uint32_t next;   /* hash chain: index + 1 of the next entry, 0 at the end */
	uint8_t kind;    /* REG_NAME, REG_GROUP */
	uint8_t vis;     /* counted in listings and lookups (see visible()) */
	uint8_t mark;    /* scratch for a caller holding the lock */
} skald__reg_entry_t;

/* What this node knows of another member's part. */
enum { PEER_UNKNOWN = 0, PEER_UP = 1, PEER_DEAD = 2 };

typedef struct skald__reg_item_s skald__reg_item_t;

typedef struct skald__reg_peer_s {
	uint64_t node;
	uint32_t up_number; /* from the member events; 0 until known */
	uint8_t status;     /* PEER_*: UP also while leaving */
	uint8_t looking;    /* a lookup of its daemon is under way */
	uint8_t sent_full;  /* our whole part went to it: deltas follow */
	uint8_t synced;     /* its whole part arrived once */
	uint64_t since;     /* ms (monotonic) of the last status change */
	uint64_t wanted;    /* ms when we last asked it for its part; 0: not */
	skald_ref_t daemon; /* its registry actor; null until found */
	uint64_t ver;       /* the version of its part applied here */
	char addr[64];
	/* A FULL that arrives in chunks, kept until its last chunk. */
	skald__reg_item_t *stage;
	size_t nstage, capstage;
} skald__reg_peer_t;

typedef struct skald__reg_sub_s {
	char *key;
	skald_ref_t sub;
} skald__reg_sub_t;

/* A skald_cluster_lookup waiting for its name. */
typedef struct skald__reg_waiter_s {
	char *name;
	skald_ref_t asker;
	uint64_t corr;     /* the asker's pending ask */
	uint64_t deadline; /* ms (monotonic); past it the asker timed out */
} skald__reg_waiter_t;

typedef struct skald__reg_s {
	uv_mutex_t lock;
	uv_cond_t cond; /* broadcast on every change of a name */
	skald_system_t *sys;
	uint64_t self;
	unsigned max_names, max_group_entries, max_peers;
	/* Under lock. */
	skald_ref_t daemon; /* null until spawned */
	int closed;         /* the daemon stopped: the system is stopping */
	uint32_t self_up;   /* this node's up number, 0 until admitted */
	skald__reg_entry_t *v;
	size_t cap, nnames, ngroup; /* slots of v; names and group entries in use */
	uint32_t *freelist;
	size_t nfree;
	uint32_t *buckets; /* index + 1 of the first entry; nbuckets a power of 2 */
	size_t nbuckets;
	skald__reg_sub_t *subs;
	size_t nsubs, capsubs;
	skald__reg_waiter_t *waiters;
	size_t nwaiters, capwaiters;
	skald__reg_peer_t *peers;
	size_t npeers, cappeers;
} skald__reg_t;

/* ------------------------------------------------------------------------ */
/* Messages (reg_codec.c)                                                     */

/* What a batch is. LOCAL never leaves the node: a change the API made,
 * for the daemon to send on. */
enum {
	REG_MSG_DELTA = 0, /* the origin's changes since version ver - 1 */
	REG_MSG_FULL = 1,  /* the origin's whole part at version ver, in chunks */
	REG_MSG_WANT = 2,  /* send me your whole part */
	REG_MSG_VER = 3,   /* my part is at version ver */
	REG_MSG_LOCAL = 4,
};
enum { REG_FULL_FIRST = 1, REG_FULL_LAST = 2 };

struct skald__reg_item_s {
	uint8_t kind;   /* REG_NAME, REG_GROUP (REG_WATCH: LOCAL only) */
	uint8_t add;    /* 1 present, 0 removed */
	int32_t reason; /* removed group entry: why (skald_group_event_t) */
	skald_ref_t ref;
	char *key;
};

/* A batch is shared by the messages that carry it to several members:
 * its type's free drops one reference. */
typedef struct skald__reg_batch_s {
	_Atomic unsigned refs;
	uint8_t what, flags;
	uint64_t origin, ver;
	skald__reg_item_t *items;
	uint32_t n, cap;
} skald__reg_batch_t;

/* A remote spawn: the behaviour's name, the argument's type name ("" for
 * none) and its encoded bytes. It is asked of this node's daemon, which
 * relays it to the daemon of `node` (neither it nor the timeout travels:
 * a request that came over the wire has node 0, "here"). */
typedef struct skald__reg_spawn_s {
	char *behavior;
	char *type;
	uint8_t *data;
	size_t len;
	uint64_t node;
	uint64_t timeout_ms;
} skald__reg_spawn_t;

/* The answer to a lookup or a spawn. */
typedef struct skald__reg_result_s {
	int32_t status;
	skald_ref_t ref;
} skald__reg_result_t;

/* Type ids, registered once per process by skald__reg_types. */
extern uint32_t skald__t_reg_batch, skald__t_reg_spawn, skald__t_reg_result;
int skald__reg_types(void);
skald__reg_batch_t *skald__reg_batch_new(uint8_t what, uint64_t origin, uint64_t ver);
/* Appends an item (key copied). SKALD_ENOMEM. */
int skald__reg_batch_add(skald__reg_batch_t *b, uint8_t kind, uint8_t add, int32_t reason,
                         const char *key, skald_ref_t ref);
/* Takes one more reference; the type's free drops one. */
skald__reg_batch_t *skald__reg_batch_hold(skald__reg_batch_t *b);
void skald__reg_batch_free(void *payload);
void skald__reg_spawn_free(void *payload);
skald__reg_result_t *skald__reg_result_new(int status, skald_ref_t ref);
void skald__reg_items_free(skald__reg_item_t *items, size_t n);

/* ------------------------------------------------------------------------ */
/* The table (table.c); the caller holds reg->lock unless said otherwise     */

/* 0, SKALD_EINVAL (NULL or empty) or SKALD_ENAMETOOLONG. No lock. */
int skald__reg_check_name(const char *name);
/* The checks every call of the API starts with: the registry of sys in
 * *out, or SKALD_EINVAL (no cluster) or the name's error. No lock. */
int skald__reg_args(skald_system_t *sys, const char *name, skald__reg_t **out);
/* The entry (kind, key, ref, origin), or NULL. */
skald__reg_entry_t *skald__reg_find(skald__reg_t *reg, uint8_t kind, const char *key,
                                    skald_ref_t ref, uint64_t origin);
/* This node's own registration of name, or NULL. */
skald__reg_entry_t *skald__reg_own_name(skald__reg_t *reg, const char *name);
/* The visible registration of name that wins (the oldest origin), or NULL. */
skald__reg_entry_t *skald__reg_winner(skald__reg_t *reg, const char *name);
/* Adds an entry (key copied), telling group subscribers and waiting
 * lookups. SKALD_EFULL, SKALD_ENOMEM. */
int skald__reg_add(skald__reg_t *reg, uint8_t kind, const char *key, skald_ref_t ref,
                   uint64_t origin);
/* Removes e, telling group subscribers LEFT with reason. */
void skald__reg_del(skald__reg_t *reg, skald__reg_entry_t *e, int reason);
/* Tells the daemon a change this node made (a LOCAL batch of one item). */
int skald__reg_tell(skald__reg_t *reg, uint8_t kind, uint8_t add, const char *key, skald_ref_t ref);
/* The peer of node, created (status UNKNOWN) if create and there is room;
 * NULL otherwise. */
skald__reg_peer_t *skald__reg_peer(skald__reg_t *reg, uint64_t node, int create);
/* Sets a peer's status (and up number), showing or hiding its part. A DEAD
 * peer's part is dropped, with the entries whose actor lives on it. */
void skald__reg_peer_status(skald__reg_t *reg, skald__reg_peer_t *p, uint8_t status,
                            uint32_t up_number);
/* Forgets dead peers after a while, and the hidden parts of origins that
 * never came up (downed before this node heard of them). Moves peers:
 * pointers to them are stale afterwards. */
void skald__reg_peers_expire(skald__reg_t *reg, uint64_t now);
/* The group listing of key, sorted, without duplicates; *out is malloc'ed
 * (NULL when empty). SKALD_ENOMEM. */
int skald__reg_listing(skald__reg_t *reg, const char *key, skald_ref_t **out, size_t *n);
/* Sends the group event to the subscribers of key. */
void skald__reg_group_event(skald__reg_t *reg, const skald_group_event_t *ev);
/* Sends SKALD_TYPE_GROUP CURRENT for key to sub. */
void skald__reg_send_current(skald__reg_t *reg, const char *key, skald_ref_t sub);
/* Answers the waiting lookups of name with ref, and forgets the expired. */
void skald__reg_wake(skald__reg_t *reg, const char *name, skald_ref_t ref);
/* Sends a reply (status, ref) to the pending ask corr of asker. No lock. */
void skald__reg_answer(skald_system_t *sys, skald_ref_t asker, uint64_t corr, int status,
                       skald_ref_t ref);

/* The registry of sys, or NULL before skald_cluster_start (node.c). Any
 * thread. */
skald__reg_t *skald__reg_of(skald_system_t *sys);
/* A malloc'ed copy of the up members, oldest first, as
 * skald_cluster_members gives them (node.c). SKALD_EINVAL, SKALD_ENOMEM.
 * Any thread. */
int skald__cluster_view(skald_system_t *sys, skald_member_t **out, size_t *n);
/* The table for sys (node.c calls it in skald_cluster_start, before the
 * cluster is visible); freed with skald__reg_free once the system's actors
 * are gone. SKALD_ENOMEM. */
int skald__reg_new(skald_system_t *sys, const skald_cluster_config_t *cfg, skald__reg_t **out);
void skald__reg_free(skald__reg_t *reg);
/* Spawns reg's daemon (daemon.c), once the cluster is visible. */
int skald__reg_start(skald__reg_t *reg);

/* spawn.c: the daemon's side of a remote spawn. Consumes nothing. */
int skald__reg_serve_spawn(skald_system_t *sys, const skald__reg_spawn_t *req, skald_ref_t *out);

#endif /* SKALD_ACTORS_CLUSTER_REG_H */
