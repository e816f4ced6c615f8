/*
 * skald/remote.h - nodes and remote references.
 *
 * A system becomes a node when it listens or connects. Nodes talk over TCP,
 * one connection per pair, after a handshake that proves on both sides the
 * knowledge of a shared cluster secret (HMAC-SHA256 challenge-response) and
 * checks the cluster name and protocol version. A reference to an actor on
 * another node is the same skald_ref_t as a local one: skald_tell, skald_ask,
 * skald_reply and skald_watch work across nodes unchanged. A message crosses
 * the wire through its type's encode/decode (skald_msgtype_t); a type
 * without a codec can only be sent locally.
 *
 * A node's id is random at each start, so a restarted node is a new
 * incarnation: references to actors of the old one are dead letters.
 *
 * The network runs on a thread of its own; all functions here are safe from
 * any thread unless said otherwise.
 */
#ifndef SKALD_REMOTE_H
#define SKALD_REMOTE_H

#include "actor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct skald_remote_config_s {
	/* Nodes with another cluster name are refused. NULL: "skald". */
	const char *cluster;
	/* The shared secret; required (NULL or "" is SKALD_EINVAL). Copied. */
	const char *secret;
	/* Heartbeat interval and the silence after which a peer is declared
	 * down, in ms. 0: 1,000 and 5,000. */
	unsigned heartbeat_ms;
	unsigned timeout_ms;
	/* Largest frame accepted or sent, in bytes. 0: 8 MiB. */
	unsigned max_frame;
	/* Bytes queued per peer before sends fail with SKALD_EQUEUEFULL.
	 * 0: 64 MiB. */
	size_t max_queue;
} skald_remote_config_t;

/*
 * Starts the network of sys with cfg (copied). Must be called once, before
 * listening or connecting. If SIGPIPE has its default action, it is set to
 * be ignored, so that a peer closing mid-write cannot kill the process. Errors: SKALD_EINVAL (no
 * secret, called twice), SKALD_ENOMEM, libuv codes.
 */
int skald_remote_start(skald_system_t *sys, const skald_remote_config_t *cfg);

/*
 * Listens on `tcp://HOST:PORT` (PORT 0 picks a free one); the bound port is
 * stored in *port (may be NULL). Blocks until the socket is bound. Errors:
 * SKALD_EADDR (not tcp://HOST:PORT), SKALD_ENONET (skald_remote_start not
 * called), SKALD_ENOTOWNER, libuv codes (e.g. UV_EADDRINUSE). Each of
 * these mistakes is also logged with what to write instead.
 */
int skald_listen(skald_system_t *sys, const char *addr, int *port);

/*
 * Connects to the node at `tcp://HOST:PORT`, in the background: the call
 * returns at once; the connection is retried with backoff (100 ms doubling
 * to 5 s) for as long as the system runs, also after it drops. Connecting
 * twice to one address is a no-op. Errors: SKALD_EADDR, SKALD_ENONET (as
 * skald_listen).
 *
 * One connection per pair of nodes: if two nodes connect to each other at
 * the same moment, both keep the one opened by the node with the lower id
 * and close the other. Messages sent in the instant before that choice may
 * travel on the closed one, so their order with later messages is not
 * guaranteed; order holds on the connection that remains.
 */
int skald_connect(skald_system_t *sys, const char *addr);

/*
 * Blocks until the node at addr is connected and authenticated, or
 * timeout_ms passes; stores its node id in *node (may be NULL). Starts
 * connecting if needed. Not from an actor's thread. Errors: SKALD_EADDR,
 * SKALD_ENONET, SKALD_ENOTOWNER; SKALD_EAUTH, SKALD_ECLUSTER, SKALD_EVERSION
 * as soon as the node refuses the handshake (wrong secret, other cluster
 * name, other protocol version: retrying cannot help); at the timeout, why
 * the last attempt failed (UV_ECONNREFUSED: nobody listens there), or
 * SKALD_ETIMEDOUT.
 */
int skald_node_wait(skald_system_t *sys, const char *addr, uint64_t timeout_ms, uint64_t *node);

/* ------------------------------------------------------------------------ */
/* Names                                                                     */

/*
 * Publishes ref under name on this node, for skald_lookup from other nodes
 * (the CAF-style rendezvous: names of this node only, not replicated). A
 * name published again is replaced. The name is dropped when the actor
 * stops. name is copied. Errors: SKALD_ENONET (network not started),
 * SKALD_EINVAL (name empty or longer than 1,024 bytes, null reference),
 * SKALD_ENOMEM.
 */
int skald_publish(skald_system_t *sys, const char *name, skald_ref_t ref);

/*
 * Looks up name on the node at addr (connecting if needed). cb runs on
 * self's thread with status 0 and the reference, or SKALD_ENOTFOUND,
 * SKALD_EAUTH, SKALD_ECLUSTER, SKALD_EVERSION (the node refused the
 * handshake: at once), SKALD_ETIMEDOUT, SKALD_ECANCELED (self stopping or
 * restarting),
 * SKALD_EPROTO (a malformed answer), or another failure of the ask (see
 * skald_reply_fn). name and addr are copied; arg is
 * passed to cb as is. Errors (cb is never called): SKALD_ENONET, SKALD_EADDR
 * (as skald_listen), SKALD_EINVAL (empty name, NULL cb), SKALD_ENOTOWNER
 * (not on self's thread), SKALD_ENOMEM, libuv codes.
 */
typedef void (*skald_lookup_fn)(skald_actor_t *self, void *state, int status, skald_ref_t ref,
                                void *arg);
int skald_lookup(skald_actor_t *self, const char *addr, const char *name, uint64_t timeout_ms,
                 skald_lookup_fn cb, void *arg);

/* As skald_lookup, on the node whose id is `node`, over the connection this
 * node already has to it (a cluster member's, say): it starts no connection
 * of its own and leaves nothing behind once answered. Errors (cb is never
 * called): SKALD_EINVAL (network not started, empty name or longer than
 * 1,024 bytes, NULL cb), SKALD_ENODEDOWN (not connected to that node),
 * SKALD_ENOTOWNER, SKALD_ENOMEM, libuv codes. */
int skald_lookup_node(skald_actor_t *self, uint64_t node, const char *name, uint64_t timeout_ms,
                      skald_lookup_fn cb, void *arg);

/* Blocking skald_lookup for threads that are not the system's: waits for
 * the node at addr (as skald_node_wait), then asks it, each for at most
 * timeout_ms. On 0 the reference is in *ref. Errors: those of
 * skald_node_wait (SKALD_EAUTH at once for a wrong secret, UV_ECONNREFUSED
 * when nobody listens, ...), SKALD_EINVAL (empty name, NULL ref),
 * SKALD_ENOTFOUND, SKALD_ENOMEM, and those of skald_system_ask
 * (SKALD_ENOACTOR, SKALD_ESTOPPING, ...). */
int skald_system_lookup(skald_system_t *sys, const char *addr, const char *name,
                        uint64_t timeout_ms, skald_ref_t *ref);

/* ------------------------------------------------------------------------ */
/* Node events                                                               */

/* Built-in type of node events; payload skald_node_event_t, freed by the
 * runtime after receive. */
#define SKALD_TYPE_NODE 2u

typedef struct skald_node_event_s {
	uint64_t node; /* the node's id (the `node` of its references) */
	int up;        /* 1: connected and authenticated; 0: lost */
	int reason;    /* when lost: why (SKALD_ENODEDOWN, a libuv code) */
	char name[64]; /* the node's name (skald_config_t.name) */
	char addr[64]; /* the address it was reached at, or its peer address */
} skald_node_event_t;

/*
 * self receives a SKALD_TYPE_NODE message whenever a node comes up or goes
 * down, until it stops or calls skald_unmonitor_nodes. Owner thread only.
 * Errors: SKALD_EINVAL (NULL self, network not started), SKALD_ENOMEM
 * (monitor only).
 */
int skald_monitor_nodes(skald_actor_t *self);
int skald_unmonitor_nodes(skald_actor_t *self);

#ifdef __cplusplus
}
#endif
#endif /* SKALD_REMOTE_H */
