/*
 * actors/cluster/state.h - the membership object's fields and the functions
 * its files share. Private to actors/cluster/.
 *
 * view.c      the member table, the merge rule, events, digests, age order
 * swim.c      probes, helpers' relays, suspicion timers, downing
 * gossip.c    sending with piggybacked records, gossip rounds, push-pull
 * membership.c  the object: new/free, join, leave, receive, tick
 */
#ifndef SKALD_ACTORS_CLUSTER_STATE_H
#define SKALD_ACTORS_CLUSTER_STATE_H

#include "actors/cluster/cluster_int.h"

#define CL_PROBES 4u  /* probes of one node in flight at once */
#define CL_RELAYS 16u /* probes a node runs for others at once */
#define CL_NEVER  UINT64_MAX

typedef struct skald__cl_member_s {
	skald__cl_rec_t rec;
	uint64_t since; /* suspect: when suspected here; terminal: when */
	uint64_t confirmers[SKALD__CL_CONFIRM_MAX];
	uint8_t nconfirm;
	uint32_t tx_left; /* times rec is still to be piggybacked */
} skald__cl_member_t;

/* One probe of this node: direct PING, then PING_REQ to helpers. */
typedef struct skald__cl_probe_s {
	uint64_t target;
	uint64_t ack_at; /* no ACK by then: ask helpers */
	uint64_t end;    /* no ACK by then: suspect */
	uint32_t seq;
	uint8_t phase; /* 0 free, 1 direct, 2 indirect */
	uint8_t asked, nacks;
	uint8_t refused;       /* helpers that answered NACK refused */
	uint8_t local_refused; /* this node's connection was refused too */
} skald__cl_probe_t;

/* A probe this node runs as a helper for another. */
typedef struct skald__cl_relay_s {
	uint64_t origin, target, deadline;
	uint32_t origin_seq, seq;
	uint8_t used;
	char origin_addr[SKALD__CL_ADDR_MAX + 1];
} skald__cl_relay_t;

struct skald__cl_s {
	skald__cl_config_t cfg; /* defaults resolved; addr points to self's rec */
	uint64_t self;
	uint64_t rng;

	skald__cl_member_t *members; /* sorted by node id */
	size_t n;
	size_t queued; /* members with tx_left > 0 */
	uint32_t max_up;

	int started, joining, stopped;
	unsigned leave_holds; /* LEAVING waits for these before REMOVED */
	char **seeds;
	size_t nseeds, seed_next;
	uint64_t join_at;
	unsigned join_delay;

	unsigned lhm;
	uint32_t seq;
	uint64_t next_probe_at, next_gossip_at, next_pp_at;
	uint64_t last_unreach_add; /* when a member last became suspect here */
	uint64_t period;           /* periods started; even ones probe the ring */
	skald__cl_probe_t probes[CL_PROBES];
	skald__cl_relay_t relays[CL_RELAYS];

	uint64_t *rr; /* round-robin probe order, reshuffled per round */
	size_t rr_n, rr_pos;

	uint8_t *buf; /* one encoded message */
	size_t bufcap;
	skald__cl_rec_t *scratch; /* records of a message being sent */
	skald__cl_rec_t *inbox;   /* records of the message received */
	size_t *tmp;              /* member indexes, for random choices */
};

/* PRNG (xorshift64*): uniform in [0, n), n > 0. */
uint64_t skald__cl_rand(skald__cl_t *cl, uint64_t n);

/* view.c */
skald__cl_member_t *skald__cl_find(const skald__cl_t *cl, uint64_t node);
skald__cl_member_t *skald__cl_me(const skald__cl_t *cl);
/* Applies a received record: the merge rule, events, refutation, re-gossip.
 * from: the node whose message carried it. */
void skald__cl_apply(skald__cl_t *cl, const skald__cl_rec_t *r, uint64_t now);
/* Marks m suspect (suspecter: who), or adds a confirmer; events. */
void skald__cl_suspect(skald__cl_t *cl, skald__cl_member_t *m, uint64_t who, uint64_t now);
/* Marks m terminal (DOWN or REMOVED); events; stops this node if m is it. */
void skald__cl_terminate(skald__cl_t *cl, skald__cl_member_t *m, uint8_t how, uint64_t now);
/* Queues m's record for retransmission. */
void skald__cl_queue(skald__cl_t *cl, skald__cl_member_t *m);
/* Members neither down nor removed, self included. */
size_t skald__cl_live(const skald__cl_t *cl);
/* Forgets tombstones older than tombstone_ms. */
void skald__cl_reap(skald__cl_t *cl, uint64_t now);
/* The oldest live member (age order), or NULL. */
const skald__cl_member_t *skald__cl_oldest_live(const skald__cl_t *cl);
/* A record is either terminal or can be admitted; 0 when the table is
 * full even after forgetting the oldest tombstone. */
skald__cl_member_t *skald__cl_insert(skald__cl_t *cl, const skald__cl_rec_t *r, uint64_t now);

/* gossip.c */
/* Sends m (type and body set by the caller) to node at addr, with as many
 * queued records piggybacked as fit. */
void skald__cl_send(skald__cl_t *cl, skald__cl_msg_t *m, uint64_t node, const char *addr);
/* Sends m carrying the whole table (STATE). */
void skald__cl_send_state(skald__cl_t *cl, uint64_t node, const char *addr, int want_reply);
void skald__cl_gossip_tick(skald__cl_t *cl, uint64_t now);
void skald__cl_on_digest(skald__cl_t *cl, const skald__cl_msg_t *m, const char *addr);
void skald__cl_on_state(skald__cl_t *cl, const skald__cl_msg_t *m, const char *addr, uint64_t now);
/* A random live member other than self and except, or NULL. */
skald__cl_member_t *skald__cl_random_peer(skald__cl_t *cl, uint64_t except);

/* swim.c */
void skald__cl_probe_tick(skald__cl_t *cl, uint64_t now);
void skald__cl_suspicion_tick(skald__cl_t *cl, uint64_t now);
uint64_t skald__cl_swim_deadline(const skald__cl_t *cl);
void skald__cl_on_ping(skald__cl_t *cl, const skald__cl_msg_t *m, const char *addr);
void skald__cl_on_ack(skald__cl_t *cl, const skald__cl_msg_t *m);
void skald__cl_on_ping_req(skald__cl_t *cl, const skald__cl_msg_t *m, const char *addr,
                           uint64_t now);
void skald__cl_on_nack(skald__cl_t *cl, const skald__cl_msg_t *m, uint64_t now);
/* The suspicion timeout of m now, Lifeguard-scaled. */
uint64_t skald__cl_suspicion_ms(const skald__cl_t *cl, const skald__cl_member_t *m);

#endif /* SKALD_ACTORS_CLUSTER_STATE_H */
