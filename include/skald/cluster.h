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
 * from any thread unless said otherwise.
 *
 * On top of the membership: a cluster-wide registry of names, groups of
 * actors under a key (a receptionist), and the remote spawn of behaviours
 * registered by name. Each node runs one registry actor that owns the
 * registrations made on that node, pushes every change to the registry
 * actors of the other up members, and sends its whole part to a member that
 * comes up (docs/CLUSTER.md, "Registry, groups and remote spawn"). It is
 * published on its node (skald_publish) as "skald.cluster.registry", a name
 * the application must leave alone.
 */
#ifndef SKALD_CLUSTER_H
#define SKALD_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "actor.h"
#include "remote.h"

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
	/* Name registrations this node holds at once, its own and those
	 * replicated from other members (a name registered on two nodes at
	 * once counts twice until the loser is withdrawn). Give every member
	 * the same value: a replicated name that does not fit is dropped
	 * with a warning. 0: 10,000. */
	unsigned max_names;
	/* Group entries (key, actor) held at once, the same way. 0: 10,000. */
	unsigned max_group_entries;
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

/* ------------------------------------------------------------------------ */
/* Names: the cluster-wide registry                                          */

/* Longest name, group key or behaviour name, in bytes (without the NUL). */
#define SKALD_NAME_MAX 255

/*
 * Registers ref under name for the whole cluster; name is copied. The name
 * is visible on this node when the call returns and on every other up
 * member once the change has reached it (a member that comes up later gets
 * it with this node's whole registry). The registration belongs to this
 * node: it ends when ref's actor stops (this node watches it), when
 * skald_cluster_unregister is called here, or when this node or ref's node
 * is down or removed. ref may live on any node.
 *
 * One name, one actor. If another node registered the same name at the
 * same time (neither knew of the other yet), every member keeps the
 * registration of the OLDER member (lower (up number, node id), the age
 * order of skald_cluster_members()); the node of the other one withdraws
 * it and tells its actor with a SKALD_TYPE_NAME_LOST message.
 *
 * Any thread; never blocks. Errors:
 *   SKALD_EINVAL        cluster not started, NULL or empty name, null ref
 *   SKALD_ENAMETOOLONG  name longer than SKALD_NAME_MAX bytes
 *   SKALD_EEXISTS       the name is already registered to another actor,
 *                       as far as this node knows (registering the same
 *                       ref again is a no-op: 0)
 *   SKALD_EFULL         this node's table holds max_names names (its own
 *                       and those of the other members)
 *   SKALD_ENOMEM
 */
int skald_cluster_register(skald_system_t *sys, const char *name, skald_ref_t ref);

/* Withdraws this node's registration of name everywhere. Only the node
 * that registered a name can withdraw it. Any thread. Errors: SKALD_EINVAL,
 * SKALD_ENAMETOOLONG, SKALD_ENOTFOUND (this node holds no registration of
 * name), SKALD_ENOMEM. */
int skald_cluster_unregister(skald_system_t *sys, const char *name);

/* The actor registered under name, as this node knows it now, in *ref.
 * Any thread; never blocks. Errors: SKALD_EINVAL (cluster not started,
 * NULL argument, empty name), SKALD_ENAMETOOLONG, SKALD_ENOTFOUND. */
int skald_cluster_whereis(skald_system_t *sys, const char *name, skald_ref_t *ref);

/*
 * Looks name up, waiting up to timeout_ms for it to be registered (on any
 * member) if it is not known yet; 0 does not wait. cb runs once on self's
 * thread, never before the call returns, with status 0 and the reference,
 * or SKALD_ETIMEDOUT (not registered in time) or SKALD_ECANCELED (self
 * stopping or restarting). name is copied; arg is passed to cb as is.
 * Errors (cb is never called): SKALD_EINVAL (cluster not started, NULL
 * self or cb, NULL or empty name), SKALD_ENAMETOOLONG, SKALD_ENOTOWNER (not
 * on self's thread), SKALD_ETOOMANY (1,024 lookups already wait on this
 * node), SKALD_ENOMEM, libuv codes (the timer).
 */
int skald_cluster_lookup(skald_actor_t *self, const char *name, uint64_t timeout_ms,
                         skald_lookup_fn cb, void *arg);

/* skald_cluster_lookup for threads that are not the system's: blocks until
 * name is known or timeout_ms passes; on 0 the reference is in *ref.
 * Errors: SKALD_EINVAL (cluster not started, NULL ref, NULL or empty name),
 * SKALD_ENAMETOOLONG, SKALD_ENOTOWNER (on a scheduler thread),
 * SKALD_ETIMEDOUT, SKALD_ESTOPPING (the system is stopping). */
int skald_cluster_system_lookup(skald_system_t *sys, const char *name, uint64_t timeout_ms,
                                skald_ref_t *ref);

/* Built-in type of the message a registered actor receives when its name
 * went to another actor (a registration of the same name, made at the same
 * time by an older member, won). Payload skald_name_lost_t, freed by the
 * runtime after receive. It crosses the wire (the actor may live on another
 * node than the registration). */
#define SKALD_TYPE_NAME_LOST 4u

typedef struct skald_name_lost_s {
	char name[SKALD_NAME_MAX + 1];
	skald_ref_t winner; /* the actor that holds the name now */
} skald_name_lost_t;

/* ------------------------------------------------------------------------ */
/* Groups: actors checked in under a key                                     */

/*
 * Checks ref in under key (copied) for the whole cluster. A key holds any
 * number of actors; an actor may be in any number of groups. Like a name,
 * the entry belongs to this node and ends when the actor stops, when
 * skald_group_leave is called here, or when this node or ref's node is
 * down or removed. Joining twice is a no-op. Any thread; never blocks.
 * Errors: SKALD_EINVAL (cluster not started, NULL or empty key, null ref),
 * SKALD_ENAMETOOLONG (key longer than SKALD_NAME_MAX), SKALD_EFULL (this
 * node's table holds max_group_entries entries, its own and those of the
 * other members), SKALD_ENOMEM.
 */
int skald_group_join(skald_system_t *sys, const char *key, skald_ref_t ref);

/* Removes this node's entry (key, ref) everywhere. Any thread. Errors:
 * SKALD_EINVAL, SKALD_ENAMETOOLONG, SKALD_ENOTFOUND (this node checked no
 * such entry in), SKALD_ENOMEM. */
int skald_group_leave(skald_system_t *sys, const char *key, skald_ref_t ref);

/* Copies the actors under key, as this node knows them now, ordered by
 * reference (node, actor, incarnation), into out[0..cap), and stores how
 * many there are in *n (may exceed cap). Any thread. Errors: SKALD_EINVAL
 * (cluster not started, NULL key or n, NULL out with cap > 0),
 * SKALD_ENAMETOOLONG. */
int skald_group_members(skald_system_t *sys, const char *key, skald_ref_t *out, size_t cap,
                        size_t *n);

/* Built-in type of group events; payload skald_group_event_t, freed by the
 * runtime after receive. Never crosses the wire. */
#define SKALD_TYPE_GROUP 5u

typedef enum {
	SKALD_GROUP_EV_CURRENT = 1, /* first after subscribing: the listing */
	SKALD_GROUP_EV_JOINED,      /* ref was checked in */
	SKALD_GROUP_EV_LEFT,        /* ref is gone from the group: see reason */
} skald_group_event_kind_t;

typedef struct skald_group_event_s {
	skald_group_event_kind_t kind;
	char key[SKALD_NAME_MAX + 1];
	skald_ref_t ref; /* JOINED, LEFT */
	/* LEFT: 0 (skald_group_leave), SKALD_ENOACTOR (the actor stopped),
	 * SKALD_ENODEDOWN (its node, or the node that checked it in, is down
	 * or removed); 0 too when this node missed the change itself and
	 * learnt it from the other node's whole registry. */
	int reason;
	/* CURRENT: the listing, ordered as skald_group_members. Owned by the
	 * event. */
	skald_ref_t *refs;
	size_t nrefs;
} skald_group_event_t;

/*
 * self receives SKALD_TYPE_GROUP messages for key (copied): CURRENT first,
 * then a JOINED or LEFT for every change this node sees, until self stops
 * or unsubscribes. Subscribing twice to one key is a no-op. Owner thread
 * only. Errors: SKALD_EINVAL (cluster not started, NULL self or key, empty
 * key), SKALD_ENAMETOOLONG, SKALD_ENOTOWNER, SKALD_ETOOMANY (1,024
 * subscriptions on this node), SKALD_ENOMEM.
 */
int skald_group_subscribe(skald_actor_t *self, const char *key);
/* Ends the subscription; events already sent may still arrive. Errors: as
 * skald_group_subscribe, and SKALD_ENOTFOUND (no such subscription). */
int skald_group_unsubscribe(skald_actor_t *self, const char *key);

/* ------------------------------------------------------------------------ */
/* Remote spawn                                                              */

/*
 * Registers b under name (both borrowed for the life of the process: a
 * static const behaviour) so that any member can spawn it on this node.
 * The table is process-wide, like message types: register the same
 * behaviours in every process of the cluster. Registering the same pair
 * again is a no-op. Thread-safe.
 *
 * The spawned actor's argument is the payload its spawner sent, decoded on
 * this node with its type's decode: it belongs to the actor, so a
 * behaviour whose argument must be freed sets free_arg (called once after
 * the final stop; typically the type's free). With no argument (type 0),
 * arg is NULL.
 *
 * Errors: SKALD_EINVAL (NULL name or b, empty name, no receive callback),
 * SKALD_ENAMETOOLONG, SKALD_EEXISTS (name taken by another behaviour),
 * SKALD_ETOOMANY (256 behaviours).
 */
int skald_cluster_behavior_register(const char *name, const skald_behavior_t *b);

/* The outcome of a remote spawn, on the spawner's thread: status 0 and the
 * new actor's reference, or a failure (see skald_cluster_spawn). */
typedef void (*skald_spawned_fn)(skald_actor_t *self, void *state, int status, skald_ref_t ref,
                                 void *arg);

/*
 * Spawns the behaviour registered as `behavior` on the member `node` (this
 * node's own id works too), as a top-level actor there, with payload, a
 * message of type `type` (0 and NULL: no argument), as its argument.
 * payload is borrowed: encoded with its type's codec before the call
 * returns, so the caller still owns it. The request goes through this
 * node's registry actor, which relays it to the member's (waiting, within
 * timeout_ms, for a member that came up a moment ago to be found). cb runs
 * once on self's thread with the reference, or a failure:
 *   SKALD_ENOTFOUND    no behaviour of that name on the member
 *   SKALD_ENOTYPE      the member does not know the argument's type
 *   SKALD_ENOCODEC     the type has no decode there
 *   SKALD_EDECODE      its decode failed
 *   SKALD_ESTOPPING, SKALD_ETOOMANY, SKALD_ENOMEM  the spawn there failed
 *   SKALD_ETOOMANY     256 spawns already wait here for members not found
 *   SKALD_ENODEDOWN    the member went down meanwhile
 *   SKALD_ETIMEDOUT, SKALD_ECANCELED, SKALD_ENOACTOR  (the ask's own)
 * arg is passed to cb as is. Errors (cb is never called): SKALD_EINVAL
 * (cluster not started, NULL self, behavior or cb, payload without a
 * type), SKALD_ENAMETOOLONG, SKALD_ENOTOWNER, SKALD_ENOTYPE (type not
 * registered here), SKALD_ENOCODEC (type without encode), SKALD_EENCODE,
 * SKALD_ENODEDOWN (node is neither this one nor an up member of
 * skald_cluster_members), SKALD_ESTOPPING, SKALD_ENOMEM.
 */
int skald_cluster_spawn(skald_actor_t *self, uint64_t node, const char *behavior, uint32_t type,
                        const void *payload, uint64_t timeout_ms, skald_spawned_fn cb, void *arg);

/* skald_cluster_spawn for threads that are not the system's: blocks up to
 * timeout_ms; on 0 the new actor's reference is in *ref. Errors: those of
 * skald_cluster_spawn and of its cb, and SKALD_ENOTOWNER on a scheduler
 * thread. */
int skald_cluster_system_spawn(skald_system_t *sys, uint64_t node, const char *behavior,
                               uint32_t type, const void *payload, uint64_t timeout_ms,
                               skald_ref_t *ref);

#ifdef __cplusplus
}
#endif
#endif /* SKALD_CLUSTER_H */
