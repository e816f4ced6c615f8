/*
 * sharding/region.h - the state of a region actor, shared by the files that
 * act on it (view.c, route.c, hosted.c, handoff.c, remember.c, region.c).
 * Never installed. Everything here lives on the region's thread.
 *
 * A region is one member's part of a sharded type: it knows the members
 * (from member events, in order), computes each shard's owner from them,
 * hosts the entities of the shards it owns, and routes every other message
 * to the region of the owner. See docs/SHARDING.md for the protocol.
 */
#ifndef SKALD_SHARDING_REGION_H
#define SKALD_SHARDING_REGION_H

#include "base/log.h"
#include "sharding/sharding_int.h"

/* A member as the region knows it. */
typedef struct member_s {
	uint64_t node;
	uint32_t up_number;
	skald_member_status_t status;
	char addr[64];
} member_t;

/* An ask forwarded to another member's region, failed with
 * SKALD_ENODEDOWN if that member goes before the asker stops waiting. */
typedef struct track_s {
	struct track_s *next;
	skald_ref_t asker;
	uint64_t ask_id;
	uint64_t deadline;
} track_t;

/* Another member's region. */
typedef struct peer_s {
	uint64_t node;
	char addr[64];
	skald_ref_t region; /* null until found */
	bool looking;       /* a lookup is in flight */
	bool heard;         /* its region has sent this one something */
	bool gone;          /* down or removed */
	uint64_t retry_at;  /* next lookup, while not found */
	unsigned backoff;
	uint64_t view_seen; /* the last view it said it routes by */
	msgq_t waiting;     /* for it, until its region is found */
	track_t *asks, *asks_tail;
	size_t nasks;
} peer_t;

/* Shard states on this member. */
enum {
	SH_REMOTE = 0, /* another member owns it: route there */
	SH_SERVING,    /* this member owns it and hosts its entities */
	SH_TAKING,     /* this member owns it and waits for the old owner's handoff */
	SH_HANDING,    /* this member owned it and is handing it over */
};

struct ent_s;

typedef struct shard_s {
	struct ent_s *ents; /* its entities known here, any state */
	uint64_t owner;     /* by this member's view; 0 before it has one */
	int state;          /* SH_* */
	uint64_t peer;      /* TAKING: the old owner; HANDING: the new one */
	uint64_t since;     /* when TAKING or HANDING began (monotonic ms) */
	msgq_t held;        /* TAKING: sent straight here; HANDING: for the new owner */
	msgq_t handed;      /* TAKING: forwarded by the old owner with its handoff */
	unsigned live;      /* entities of the shard alive here, stopping included */
	/* remember: the shard's set of live entities (remember.c) */
	skald_ref_t rem;    /* its entity, or null */
	bool rem_busy;      /* a change is being stored */
	bool rem_stopping;  /* stopped for a handoff; null once down */
	uint64_t rem_retry; /* after a failure: when to start it again */
	unsigned rem_failures;
	json_t *rem_pending; /* changes not yet sent: {id: true (started) or false} */
	json_t *rem_sent;    /* the change in flight, sent again if it failed */
	/* A BEGIN that came from a member whose view this one does not have
	 * yet: handled once this member's view is that one. */
	uint64_t begin_from, begin_view;
	/* The last handoff this member sent: to whom, under which view (a
	 * BEGIN that crossed it needs no second one). */
	uint64_t handed_to, handed_view;
	/* A new owner asked while this member held nothing of the shard: it
	 * gets an empty handoff once the views agree. */
	uint64_t answer_to, answer_since;
	uint64_t asked_view; /* TAKING: the view of the last BEGIN sent */
} shard_t;

/* Entity states on this member. */
enum {
	E_WAITING = 1, /* to be started when a recovery slot frees */
	E_RECOVERING,  /* spawned, not recovered yet (messages wait in its mailbox) */
	E_READY,
	E_STOPPING, /* asked to stop; messages wait here */
	E_BACKOFF,  /* failed; started again at retry_at */
};

/* Why an entity is being stopped. */
enum { WHY_NONE = 0, WHY_PASSIVATE, WHY_HANDOFF, WHY_REGION };

typedef struct ent_s {
	struct ent_s *hnext;         /* chain by id */
	struct ent_s *rnext;         /* chain by reference */
	struct ent_s *sprev, *snext; /* its shard's list */
	struct ent_s *wprev, *wnext; /* the list of E_WAITING or of E_BACKOFF */
	skald_ref_t ref;
	uint32_t shard;
	int state;         /* E_* */
	int why;           /* WHY_* while E_STOPPING */
	bool counted;      /* counted among the recoveries under way */
	uint64_t last;     /* last message delivered (monotonic ms) */
	uint64_t ready_at; /* when it last recovered */
	uint64_t retry_at; /* E_BACKOFF */
	unsigned failures;
	msgq_t held; /* messages that wait for it here */
	char id[];
} ent_t;

typedef struct region_s {
	skald_sharding_t *sh;
	skald_system_t *sys;
	uint64_t me;
	unsigned nshards;
	/* The view. */
	member_t *members;
	size_t nmembers, capmembers;
	uint64_t *up; /* up members' node ids, oldest first */
	size_t nup;
	uint64_t digest;
	bool have_view; /* this member is up (or leaving): routing can start */
	bool down;      /* this member was downed or removed */
	/* Stop. */
	bool stopping;
	skald_ref_t stop_asker;
	uint64_t stop_ask;
	/* Shards, peers, entities. */
	shard_t *shards;
	peer_t *peers;
	size_t npeers, cappeers;
	ent_t **by_id, **by_ref;
	size_t nbuckets, nents;
	ent_t *wait_head, *wait_tail; /* E_WAITING, oldest first */
	ent_t *backoff;               /* E_BACKOFF */
	unsigned recovering;
	unsigned live; /* entities alive here, stopping included */
	/* Messages held until this member has a view, or until its view
	 * changes (a region with another view sent them here). */
	msgq_t noview, viewwait;
	uint64_t viewwait_since;
	size_t held; /* user messages held by this region, all queues */
	uint64_t next_passivation;
	unsigned next_thread;
	uint64_t timer;
	uint64_t settle_timer; /* armed while admissions arrive (view.c) */
	bool leave_held;       /* this region holds the member's leave */
} region_t;

/* A log line of region r: "sharding NAME on NODE: ...". */
#define RG_LOG(r, level, fmt, ...)                                                                 \
	SKALD_LOG(level, "sharding %s on %016llx: " fmt, (r)->sh->name,                            \
	          (unsigned long long)(r)->me, ##__VA_ARGS__)

/* now, monotonic ms */
uint64_t skald__rg_now(void);

/* view.c */
/* Applies a member event; recomputes the view and the shards if it
 * changed. */
void skald__rg_member_event(skald_actor_t *self, region_t *r, const skald_member_event_t *ev);
/* Whether node is known and neither down nor removed. */
bool skald__rg_alive(const region_t *r, uint64_t node);
const member_t *skald__rg_member(const region_t *r, uint64_t node);
/* The owner of shard by the current view, or, with without != 0, by the
 * current view without that member. */
uint64_t skald__rg_owner(const region_t *r, uint32_t shard, uint64_t without);

/* route.c */
/* Routes a user message (a client's, another region's, or one held). */
void skald__rg_route(skald_actor_t *self, region_t *r, shard_env_t *env);
/* Sends env to node's region (held until found); consumes env. */
void skald__rg_send(skald_actor_t *self, region_t *r, uint64_t node, shard_env_t *env);
/* Holds env in q, or refuses it when max_buffer messages are held. */
void skald__rg_hold(region_t *r, msgq_t *q, shard_env_t *env);
/* Takes n user messages out of the count (they leave a queue for good). */
void skald__rg_unhold(region_t *r, size_t n);
/* Ends env with the error why: its ask fails, a tell is dropped. */
void skald__rg_reject(region_t *r, shard_env_t *env, int why);
/* Rejects every message of q with why. */
void skald__rg_reject_all(region_t *r, msgq_t *q, int why);
peer_t *skald__rg_peer(region_t *r, uint64_t node);
peer_t *skald__rg_peer_find(region_t *r, uint64_t node);
/* A peer region's reply to a lookup, a region learned from a message, and
 * the periodic work: lookups to retry, expired ask records. */
void skald__rg_peer_found(skald_actor_t *self, region_t *r, uint64_t node, skald_ref_t ref);
void skald__rg_peers_tick(skald_actor_t *self, region_t *r, uint64_t now);
/* A member went: its asks fail with SKALD_ENODEDOWN and what waited for it
 * is routed again. */
void skald__rg_peer_gone(skald_actor_t *self, region_t *r, uint64_t node);
/* The region ends: what waits for peers is refused, the peers freed. */
void skald__rg_peers_fini(region_t *r);
/* A peer region stopped (its watch fired). */
void skald__rg_peer_down(region_t *r, skald_ref_t ref);

/* hosted.c */
/* Delivers a message to entity env->id of a shard this member serves,
 * starting it if needed. */
void skald__rg_deliver(skald_actor_t *self, region_t *r, shard_env_t *env);
/* Starts entity id of shard without a message (remembered, singleton), if
 * it is not alive here. */
void skald__rg_ensure(skald_actor_t *self, region_t *r, uint32_t shard, const char *id);
/* An entity recovered; an entity stopped (its watch fired). */
void skald__rg_ready(skald_actor_t *self, region_t *r, skald_ref_t ref);
void skald__rg_ent_down(skald_actor_t *self, region_t *r, skald_ref_t ref, int reason);
/* Stops every entity of shard (why: WHY_*); their held messages go to dst
 * when it is not NULL, else they are rejected with err. */
void skald__rg_stop_shard(skald_actor_t *self, region_t *r, uint32_t shard, int why, msgq_t *dst,
                          int err);
/* Periodic: passivation and restarts after backoff. */
void skald__rg_hosted_tick(skald_actor_t *self, region_t *r, uint64_t now);
void skald__rg_ents_fini(region_t *r);

/* handoff.c */
/* What a change of owner does to shard s (old: its owner before). */
void skald__rg_shard_moved(skald_actor_t *self, region_t *r, uint32_t s, uint64_t old);
/* Control messages from other regions. */
void skald__rg_control(skald_actor_t *self, region_t *r, shard_env_t *env);
/* Re-checks the shards waiting on something (handoffs, timeouts). */
void skald__rg_handoff_tick(skald_actor_t *self, region_t *r, uint64_t now);
/* Hands shard s over if it is handing off and nothing holds it any more. */
void skald__rg_handoff_check(skald_actor_t *self, region_t *r, uint32_t s);
/* After a change of view: the BEGINs that waited for this view, and this
 * member's own BEGINs again, under the new view. */
void skald__rg_begins(skald_actor_t *self, region_t *r);
/* Starts serving shard s now (taken over, or handed over). */
void skald__rg_serve(skald_actor_t *self, region_t *r, uint32_t s);
/* This member leaves: the region holds the leave (actors/cluster/leave.h)
 * until it has handed every shard over, so that the others still hear it
 * meanwhile. leave_check releases the hold once that is done (or the region
 * stops, or the member is out). */
void skald__rg_leave_hold(region_t *r);
void skald__rg_leave_check(region_t *r);

/* remember.c */
/* Starts the shard's remember entity (remember regions only). */
void skald__rg_rem_start(skald_actor_t *self, region_t *r, uint32_t s);
/* Records that id started or stopped for good (passivated). */
void skald__rg_rem_change(skald_actor_t *self, region_t *r, uint32_t s, const char *id,
                          bool started);
/* Stops the shard's remember entity after what is queued; with flush, the
 * changes not yet sent are sent first (a handoff, a region that stops). */
void skald__rg_rem_stop(skald_actor_t *self, region_t *r, uint32_t s, bool flush);
/* Messages from remember entities. */
void skald__rg_rem_ack(skald_actor_t *self, region_t *r, skald_ref_t from);
void skald__rg_rem_list(skald_actor_t *self, region_t *r, skald_ref_t from, json_t *ids);
/* Its watch fired: true if ref was a remember entity. */
bool skald__rg_rem_down(skald_actor_t *self, region_t *r, skald_ref_t ref, int reason);
void skald__rg_rem_tick(skald_actor_t *self, region_t *r, uint64_t now);
/* Installs the remember entity type of sh; 0 or SKALD_ENOMEM. */
int skald__rg_rem_type(skald_sharding_t *sh);

/* region.c: a region that stops finishes once nothing of it is alive. */
void skald__rg_stop_check(skald_actor_t *self, region_t *r);

/* The delay before restart number `failures` (from 1), doubling from the
 * configured minimum to the maximum. */
uint64_t skald__rg_backoff(const region_t *r, unsigned failures);

#endif /* SKALD_SHARDING_REGION_H */
