/*
 * skald/cluster.h - cluster membership: which nodes are in the cluster, in
 * an order every member agrees on, and what happens to them.
 *
 * A node (a system with its network started, skald/remote.h) joins a
 * cluster through seeds. Members find out who is alive with SWIM probes,
 * indirect probes and gossip (docs/CLUSTER.md); a process that dies on a
 * live host is seen down in well under a second (its connections reset and
 * its port refuses), a silent one (stopped, cut off) within the configured
 * timeout plus one probe interval. Every member converges to the same view;
 * skald_cluster_members() lists its up members oldest first, so placement
 * (an entity's owner, a singleton's host) is a function of the view, the
 * same on every member, with no election.
 *
 * Member status, per node id:
 *
 *   JOINING -> UP -> LEAVING -> REMOVED      (graceful leave)
 *              UP -> DOWN                    (failure; final)
 *
 * and, while UP, a member may be unreachable (suspected) and reachable
 * again. DOWN and REMOVED are final for a node id: a node id is one process
 * lifetime (a system start), so a node that was downed (after SIGSTOP and
 * SIGCONT, a partition on the minority side) learns it, takes no more
 * traffic, and must be started again as a new system, a new incarnation, to
 * rejoin. Watchers of the old incarnation's actors got their down notices;
 * messages to them are dead letters.
 *
 * The membership runs on the network thread; every function here is safe
 * from any thread unless said otherwise. The registry, groups and remote
 * spawn of the cluster are not part of this header yet.
 */
#ifndef SKALD_CLUSTER_H
#define SKALD_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "actor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct skald_cluster_config_s {
	/* Where the other members reach this node: `tcp://HOST:PORT` or
	 * `tls://HOST:PORT` (the scheme the whole cluster speaks). NULL:
	 * the address of the system's first skald_listen, which must then
	 * name a concrete host (not 0.0.0.0). Copied. */
	const char *addr;
	/* Seeds to join through, each `tcp://HOST:PORT`, `tls://HOST:PORT` or
	 * `dns://NAME:PORT` (NAME resolved with getaddrinfo to every address
	 * it has, IPv4 and IPv6, again on each retry until joined; each is
	 * reached with the scheme of addr). This node's own address
	 * among them is skipped; a node with no other seed forms a new
	 * cluster at once. Others are tried in turn, with backoff (500 ms
	 * doubling to 5 s), until one admits this node. Copied. */
	const char *const *seeds;
	size_t nseeds;
	/* Probe period, and the time within which a silent member is down on
	 * every member (plus at most one period). 0: 1,000 and 5,000 ms. */
	unsigned probe_interval_ms;
	unsigned timeout_ms;
	/* Members remembered at once, the down and removed of the last five
	 * minutes included; a join beyond it is refused (SKALD_ETOOMANY).
	 * 0: 1,024. */
	unsigned max_members;
} skald_cluster_config_t;

/*
 * Starts this node's membership and, in the background, its join. Returns
 * at once; skald_cluster_wait() blocks until the node is up. Requires
 * skald_remote_start() and, unless cfg->addr is set, a skald_listen() done
 * before. One cluster per system, for the system's life.
 * Errors: SKALD_EINVAL (NULL argument, network not started, called twice,
 * no address to advertise, a malformed seed: the log names it),
 * SKALD_ENOMEM.
 */
int skald_cluster_start(skald_system_t *sys, const skald_cluster_config_t *cfg);

/*
 * Blocks until this node is up, or timeout_ms passes, or the join can never
 * succeed. On failure, if why is not NULL, a sentence naming the cause (the
 * seed and what it said, or what failed) is written to why[0..why_len).
 * Not from a scheduler thread. Errors:
 *   SKALD_EINVAL       cluster not started
 *   SKALD_ENOTOWNER    called on a scheduler thread
 *   SKALD_EAUTH, SKALD_ECLUSTER, SKALD_EVERSION
 *                      every seed refused this node's handshake (wrong
 *                      secret, other cluster name, other protocol version);
 *                      returned as soon as all seeds have refused. The join
 *                      keeps trying in the background.
 *   SKALD_ETLS         the same for a refused TLS handshake on tls://
 *                      (another secret, an untrusted or expired
 *                      certificate: docs/TLS.md)
 *   SKALD_ENODEDOWN    this node was downed (it must restart to rejoin), or
 *                      a seed refused it as a node id already down
 *   SKALD_ETOOMANY     the cluster is full (max_members)
 *   SKALD_ESTOPPING    this node left the cluster
 *   at the timeout, the last failure seen, if any: a libuv code such as
 *   UV_ECONNREFUSED (no seed reachable) or UV_EAI_NONAME (a DNS seed does
 *   not resolve); else SKALD_ETIMEDOUT.
 */
int skald_cluster_wait(skald_system_t *sys, uint64_t timeout_ms, char *why, size_t why_len);

/*
 * Leaves the cluster gracefully: LEAVING at once (the member drops out of
 * the up list, so placement moves away while it still runs), then REMOVED
 * once the news has spread. With timeout_ms > 0, blocks until REMOVED or
 * the timeout (then not from a scheduler thread); with 0, returns at once.
 * The system keeps running; stop it after. Errors: SKALD_EINVAL (cluster
 * not started), SKALD_ENOTOWNER, SKALD_ETIMEDOUT, SKALD_ENODEDOWN (downed
 * before it could leave), SKALD_ENOMEM.
 */
int skald_cluster_leave(skald_system_t *sys, uint64_t timeout_ms);

typedef enum {
	SKALD_MEMBER_JOINING = 1, /* only ever this node, before admission */
	SKALD_MEMBER_UP,
	SKALD_MEMBER_LEAVING,
	SKALD_MEMBER_DOWN,
	SKALD_MEMBER_REMOVED,
} skald_member_status_t;

typedef struct skald_member_s {
	uint64_t node;      /* node id: the `node` of its actors' references */
	uint32_t up_number; /* order of admission (0 while joining); age order
	                     * is (up_number, node) ascending */
	skald_member_status_t status;
	int reachable; /* 0 while some member's probes of it fail */
	char addr[64]; /* where it listens */
} skald_member_t;

/* Returns the name of status ("up", "down", ...); static. */
const char *skald_member_status_name(skald_member_status_t status);

/*
 * Copies this node's view of the up members, oldest first (ascending
 * (up_number, node)), into out[0..cap) and stores how many there are in *n
 * (may exceed cap). Members that are leaving, down or removed are not
 * listed; unreachable ones are (reachability is local and transient, so it
 * must not move placement). Converged views give every member the same
 * list; out[0] is the oldest up member (where a singleton lives). Errors:
 * SKALD_EINVAL (cluster not started, NULL n, NULL out with cap > 0).
 */
int skald_cluster_members(skald_system_t *sys, skald_member_t *out, size_t cap, size_t *n);

/* This node's own member record (its node id is skald_system_node()).
 * Errors: SKALD_EINVAL (cluster not started, NULL out). */
int skald_cluster_self(skald_system_t *sys, skald_member_t *out);

typedef struct skald_cluster_stats_s {
	/* Membership messages of this node since it started, and their bytes
	 * on the wire (the 40-byte frame header included). */
	uint64_t msgs_sent, bytes_sent;
	uint64_t msgs_received, bytes_received;
} skald_cluster_stats_t;

/* Copies the counters of this node's membership protocol. Errors:
 * SKALD_EINVAL (cluster not started, NULL out). */
int skald_cluster_stats(skald_system_t *sys, skald_cluster_stats_t *out);

/* ------------------------------------------------------------------------ */
/* Member events                                                             */

/* Built-in type of member events; payload skald_member_event_t, freed by
 * the runtime after receive. Never crosses the wire. */
#define SKALD_TYPE_MEMBER 3u

typedef enum {
	SKALD_MEMBER_EV_CURRENT = 1, /* first after subscribing: the whole view */
	SKALD_MEMBER_EV_UP,          /* admitted (this node too, when it is) */
	SKALD_MEMBER_EV_UNREACHABLE, /* probes failed; not decided yet */
	SKALD_MEMBER_EV_REACHABLE,   /* it refuted the suspicion */
	SKALD_MEMBER_EV_LEFT,        /* it announced a graceful leave */
	SKALD_MEMBER_EV_DOWN,        /* declared down: final for the node id */
	SKALD_MEMBER_EV_REMOVED,     /* finished leaving: final for the node id */
	SKALD_MEMBER_EV_REFUSED,     /* a handshake or join refused: see why */
} skald_member_event_kind_t;

typedef struct skald_member_event_s {
	skald_member_event_kind_t kind;
	/* The member concerned (not CURRENT). For REFUSED: the other node, as
	 * far as it is known (node 0 if its HELLO never came). */
	skald_member_t member;
	int self;      /* 1: the member is this node (DOWN about itself: this node
	                * was downed and must restart to rejoin) */
	int reason;    /* DOWN, REFUSED: why (SKALD_ENODEDOWN, SKALD_EAUTH, ...) */
	char why[192]; /* REFUSED: a sentence; otherwise "" */
	/* CURRENT: every member this node knows that is neither down nor
	 * removed, up ones oldest first, then joining or leaving ones. Owned
	 * by the event. */
	skald_member_t *members;
	size_t nmembers;
} skald_member_event_t;

/*
 * self receives SKALD_TYPE_MEMBER messages: CURRENT first (the view when
 * the subscription takes effect), then every change, in the order this
 * node saw them, until it stops or unsubscribes. REFUSED events also tell
 * a member that it refused a node (wrong secret, other cluster) and a
 * joiner that it was refused. Owner thread only. Errors: SKALD_EINVAL
 * (NULL self, cluster not started), SKALD_ENOTOWNER, SKALD_ENOMEM.
 */
int skald_cluster_subscribe(skald_actor_t *self);
int skald_cluster_unsubscribe(skald_actor_t *self);

#ifdef __cplusplus
}
#endif
#endif /* SKALD_CLUSTER_H */
