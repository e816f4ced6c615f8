/*
 * actors/cluster/cluster_int.h - the membership protocol's logic, without
 * its I/O. Never installed.
 *
 * The membership object (skald__cl_t) is a pure state machine. Its inputs
 * are calls: bytes received, the time, a connection reset, join, leave. Its
 * outputs are two callbacks: bytes to send to a member, and member events
 * for local subscribers. It reads no clock (every call carries `now`, a
 * monotonic time in ms chosen by the caller), opens no socket, and draws its
 * randomness only from a PRNG seeded by the caller. So the same inputs give
 * the same outputs, and the simulation in tests/cluster runs a hundred
 * members in one process, deterministically. docs/CLUSTER.md describes the
 * protocol and its reasons.
 *
 * Threads: an object is used by one thread at a time; the callbacks run
 * inside the call that caused them, on that thread, and must not call back
 * into the object.
 */
#ifndef SKALD_ACTORS_CLUSTER_INT_H
#define SKALD_ACTORS_CLUSTER_INT_H

#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------------------ */
/* Members                                                                   */

#define SKALD__CL_ADDR_MAX    63u /* bytes of an address, without the NUL */
#define SKALD__CL_CONFIRM_MAX 8u  /* distinct suspecters remembered per member */

/* Bits of skald__cl_rec_t.state. SUSPECT and the incarnation are the SWIM
 * part; LEAVING is set once and never cleared; DOWN and REMOVED are terminal
 * (at most one of them is set) and win over everything else. */
enum {
	SKALD__CL_SUSPECT = 0x01,
	SKALD__CL_LEAVING = 0x02,
	SKALD__CL_DOWN = 0x10,
	SKALD__CL_REMOVED = 0x20,
	SKALD__CL_STATE_MASK = 0x33,
	SKALD__CL_TERMINAL = SKALD__CL_DOWN | SKALD__CL_REMOVED,
};

/* What one member knows of another; also the unit of gossip on the wire. */
typedef struct skald__cl_rec_s {
	uint64_t node;                     /* node id: random per process start, never 0 */
	uint64_t suspecter;                /* with SUSPECT: a member that suspects it */
	uint32_t inc;                      /* incarnation: raised only by the member itself,
	                                    * to refute a suspicion */
	uint32_t up_number;                /* order of admission, given by the member that let
	                                    * it in; 0 while joining. Age order is
	                                    * (up_number, node). */
	uint8_t state;                     /* SKALD__CL_* bits */
	char addr[SKALD__CL_ADDR_MAX + 1]; /* where it listens, NUL-terminated */
} skald__cl_rec_t;

/* The status a subscriber sees, derived from the state bits. */
typedef enum {
	SKALD__CL_ST_JOINING = 1, /* only ever the local node, before admission */
	SKALD__CL_ST_UP,
	SKALD__CL_ST_LEAVING,
	SKALD__CL_ST_DOWN,
	SKALD__CL_ST_REMOVED,
} skald__cl_status_t;

skald__cl_status_t skald__cl_rec_status(const skald__cl_rec_t *r);

/* Member events, in the order they happen in the local view. */
typedef enum {
	SKALD__CL_EV_UP = 1,      /* joined the view (or this node was admitted) */
	SKALD__CL_EV_UNREACHABLE, /* suspected: probes failed, not yet down */
	SKALD__CL_EV_REACHABLE,   /* refuted a suspicion */
	SKALD__CL_EV_LEFT,        /* announced a graceful leave */
	SKALD__CL_EV_DOWN,        /* declared down: final for this node id */
	SKALD__CL_EV_REMOVED,     /* finished leaving: final for this node id */
	SKALD__CL_EV_REFUSED,     /* this node's join was refused (see reason) */
} skald__cl_event_t;

/* ------------------------------------------------------------------------ */
/* Messages (codec.c). docs/CLUSTER.md has the byte layout.                  */

#define SKALD__CL_VERSION 1u
#define SKALD__CL_HDR     18u
/* The largest encoding of one record: fixed fields, suspecter, address. */
#define SKALD__CL_REC_MAX (8u + 4u + 4u + 1u + 8u + 1u + SKALD__CL_ADDR_MAX)

typedef enum {
	SKALD__CL_PING = 1, /* seq: are you alive? answered by ACK */
	SKALD__CL_ACK,      /* seq: yes (or relayed by a helper) */
	SKALD__CL_PING_REQ, /* seq, target: probe target for me */
	SKALD__CL_NACK,     /* seq, flags: helper could not reach target */
	SKALD__CL_GOSSIP,   /* records only */
	SKALD__CL_JOIN,     /* the joiner's own record */
	SKALD__CL_REFUSE,   /* reason: the join was refused */
	SKALD__CL_DIGEST,   /* digest, count: is your view the same as mine? */
	SKALD__CL_STATE,    /* digest, flags, the whole view */
	SKALD__CL_MSG_MAX = SKALD__CL_STATE,
} skald__cl_msgtype_t;

enum {
	SKALD__CL_NACK_REFUSED = 0x01, /* NACK: the target's host refused us */
	SKALD__CL_STATE_REPLY = 0x01,  /* STATE: send yours back */
};

/* A decoded message. recs points to the caller's array of cap records. */
typedef struct skald__cl_msg_s {
	uint8_t type;
	uint64_t from; /* sender's node id */
	uint64_t to;   /* intended receiver's node id; 0 only in JOIN */
	uint32_t seq;
	uint8_t flags;
	int32_t reason;  /* REFUSE */
	uint64_t target; /* PING_REQ */
	char target_addr[SKALD__CL_ADDR_MAX + 1];
	uint64_t digest; /* DIGEST, STATE */
	uint32_t count;  /* DIGEST: members behind the digest */
	skald__cl_rec_t *recs;
	size_t nrecs, cap;
} skald__cl_msg_t;

/* Encodes m into buf[0..cap). Returns the size, or 0 if it does not fit or
 * m is not encodable (unknown type, address too long). */
size_t skald__cl_encode(const skald__cl_msg_t *m, uint8_t *buf, size_t cap);

/* Bytes needed for the record r on the wire. */
size_t skald__cl_rec_size(const skald__cl_rec_t *r);

/*
 * Decodes buf[0..len) into *m, whose recs/cap the caller has set. Returns 0,
 * or SKALD_EPROTO with *why set to a static sentence naming the fault
 * (truncated, unknown type, more records than cap, bad address, trailing
 * bytes...). Reads nothing beyond buf + len and allocates nothing.
 */
int skald__cl_decode(const uint8_t *buf, size_t len, skald__cl_msg_t *m, const char **why);

/* ------------------------------------------------------------------------ */
/* Downing rule (downing.c)                                                  */

/*
 * Keep-majority: may the side that this node sees as reachable stay up?
 * total: members not down or removed, self included; reachable: those of
 * them not suspected, self included; oldest_reachable: whether the oldest
 * of the total (age order) is among the reachable. Returns 1 (stay: the
 * unreachable may be downed) or 0 (this side is a minority: down itself).
 * An exact half stays only if it holds the oldest member.
 */
int skald__cl_keep_majority(size_t total, size_t reachable, int oldest_reachable);

/* ------------------------------------------------------------------------ */
/* Configuration                                                             */

typedef void (*skald__cl_send_fn)(void *ctx, uint64_t node, const char *addr, const uint8_t *buf,
                                  size_t len);
typedef void (*skald__cl_event_fn)(void *ctx, skald__cl_event_t ev, const skald__cl_rec_t *member,
                                   int reason);

typedef struct skald__cl_config_s {
	uint64_t node;    /* this node's id, not 0 */
	const char *addr; /* where this node listens (copied), 1..63 bytes */
	uint64_t seed;    /* seeds the PRNG; the only randomness */

	/* Protocol period (a probe of the ring successor and one of a random
	 * member per period), the wait for a direct ACK before asking
	 * helpers, and the time within which a silent member is declared
	 * down everywhere (plus at most one period). 0: 1,000, 400, 5,000. */
	unsigned probe_interval_ms;
	unsigned ack_timeout_ms;
	unsigned timeout_ms;
	/* Helpers asked per failed probe. 0: 3. */
	unsigned indirect_probes;
	/* Suspicion lasts suspicion_max_ms with one suspecter, shrinking
	 * toward suspicion_min_ms as independent suspecters confirm it.
	 * 0: timeout - 2 periods, and a third of that. */
	unsigned suspicion_max_ms;
	unsigned suspicion_min_ms;
	/* Gossip round (only when there is news) and its fan-out. 0: 200, 3. */
	unsigned gossip_interval_ms;
	unsigned gossip_fanout;
	/* Anti-entropy: a digest to one random member per interval. 0: 3,000. */
	unsigned pushpull_interval_ms;
	/* A record is sent retransmit_mult * ceil(log10(n + 1)) times. 0: 4. */
	unsigned retransmit_mult;
	/* Records piggybacked per message. 0: 8. */
	unsigned max_piggyback;
	/* Members in the table, tombstones included. 0: 1,024. */
	unsigned max_members;
	/* How long a down or removed member is remembered. 0: 300,000. */
	unsigned tombstone_ms;
	/* The set of unreachable members must not have grown for this long
	 * before the downing rule acts on a silent member. 0: one period. */
	unsigned stable_ms;
	/* Join retries: first delay, doubling up to 5 s. 0: 500. */
	unsigned join_retry_ms;
	/* Lifeguard's local health: 0..8 (0 turns it off). 0: 8; -1: off. */
	int lhm_max;

	skald__cl_send_fn send;   /* required */
	skald__cl_event_fn event; /* required */
	void *ctx;
} skald__cl_config_t;

typedef struct skald__cl_s skald__cl_t;

/* ------------------------------------------------------------------------ */
/* The membership object (membership.c)                                      */

/* Allocates a member with cfg (copied). Errors: SKALD_EINVAL (node 0, bad
 * address, missing callback), SKALD_ENOMEM. */
int skald__cl_new(const skald__cl_config_t *cfg, skald__cl_t **out);
void skald__cl_free(skald__cl_t *cl);

/*
 * Joins through seeds (addresses, copied; this node's own address is
 * skipped). With no other seed, this node forms a cluster alone and is up at
 * once. Otherwise JOIN is sent to the seeds in turn with backoff until one
 * admits it (UP about itself) or refuses (REFUSED with the reason).
 * Errors: SKALD_EINVAL (called twice, bad address), SKALD_ENOMEM.
 */
int skald__cl_join(skald__cl_t *cl, const char *const *seeds, size_t nseeds, uint64_t now);

/* Starts a graceful leave: LEFT, then REMOVED about this node once the news
 * has spread and no hold is left (skald__cl_hold_leave); the node then
 * stops (skald__cl_stopped). */
void skald__cl_leave(skald__cl_t *cl, uint64_t now);

/* Adds delta (+1 or -1) to the holds on this node's leave: while one is
 * held, a leaving node stays LEAVING (out of the up list, still
 * reachable), so that a layer above can finish moving its work away (the
 * handoffs of sharding) before the others stop hearing it. */
void skald__cl_hold_leave(skald__cl_t *cl, int delta);

/*
 * Bytes received, from_addr being where the sender can be answered (may be
 * NULL). Returns 0, or SKALD_EPROTO with *why (may be NULL) naming the
 * fault: the message is dropped and nothing else changes.
 */
int skald__cl_receive(skald__cl_t *cl, const char *from_addr, const uint8_t *buf, size_t len,
                      uint64_t now, const char **why);

/* The connection to node was reset, or a connect to it refused: the fast
 * sign of a dead process on a live host. Suspects node at once and asks
 * helpers to confirm. */
void skald__cl_conn_reset(skald__cl_t *cl, uint64_t node, uint64_t now);

/* Runs what is due at now. Call it at skald__cl_next_deadline() (or any
 * time: it does nothing when nothing is due). */
void skald__cl_tick(skald__cl_t *cl, uint64_t now);

/* When tick next has work: a time in ms, or UINT64_MAX when stopped. */
uint64_t skald__cl_next_deadline(const skald__cl_t *cl);

/* 1 once this node is down, removed (left) or refused: it sends nothing
 * more. A node that wants back in restarts with a new node id. */
int skald__cl_stopped(const skald__cl_t *cl);

/* ------------------------------------------------------------------------ */
/* The view (view.c)                                                         */

/* This node's own record (borrowed, valid until the next call). */
const skald__cl_rec_t *skald__cl_self(const skald__cl_t *cl);

/* The record of node, or NULL (borrowed, valid until the next call). */
const skald__cl_rec_t *skald__cl_lookup(const skald__cl_t *cl, uint64_t node);

/* Members in the table, tombstones included; member i in node id order. */
size_t skald__cl_size(const skald__cl_t *cl);
const skald__cl_rec_t *skald__cl_at(const skald__cl_t *cl, size_t i);
/* Sets the gauge of members by status from cl's table (metrics.c). */
void skald__cl_metrics(const skald__cl_t *cl);

/*
 * The up members (admitted, neither leaving, down nor removed; suspicion
 * does not matter, as it is local and transient) in age order: ascending
 * (up_number, node). Copies at most cap into out; returns how many there
 * are. Converged views give every member the same list, so placement can
 * be a function of it. The oldest up member is out[0].
 */
size_t skald__cl_up_members(const skald__cl_t *cl, skald__cl_rec_t *out, size_t cap);

/* A hash of every live member's (node, inc, up_number, leaving): equal
 * digests mean equal views, up to suspicion. */
uint64_t skald__cl_digest(const skald__cl_t *cl);

/* Lifeguard's local health multiplier now (0: healthy). */
unsigned skald__cl_health(const skald__cl_t *cl);

#endif /* SKALD_ACTORS_CLUSTER_INT_H */
