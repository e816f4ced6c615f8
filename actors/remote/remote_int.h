/*
 * actors/remote/remote_int.h - the network layer's private structures.
 * Never installed.
 *
 *   wire.c      frame format (see wire.h)
 *   net.c       the network thread, its command queue, peers, the send
 *               path used by every scheduler thread
 *   conn.c      TCP connections: handshake, reading, coalesced writing,
 *               heartbeats, reconnection
 *   registry.c  publish and lookup of names
 *
 * Threads: every connection, listener and timer lives on the network
 * thread's loop. Other threads reach it only through `inbox` (an MPSC queue
 * of commands) and the peer table (a read-mostly hash under a rwlock, whose
 * entries are never freed before the system, so a sender may keep a pointer).
 */
#ifndef SKALD_ACTORS_REMOTE_INT_H
#define SKALD_ACTORS_REMOTE_INT_H

#include "actors/transport.h"
#include "actors/remote/wire.h"
#include "skald/remote.h"

typedef struct skald__net_s skald__net_t;
typedef struct skald__conn_s skald__conn_t;
typedef struct skald__target_s skald__target_t;

/* A remote watch made by a local actor: kept per peer so that losing the
 * peer can tell every local watcher. Network thread only. */
typedef struct skald__rwatch_s {
	skald_ref_t watcher; /* local */
	skald_ref_t target;  /* on the peer */
} skald__rwatch_t;

/* A node we have authenticated at least once. */
typedef struct skald__peer_s {
	struct skald__peer_s *next; /* hash chain */
	uint64_t node;
	char name[SKALD_WIRE_NAME_MAX + 1];
	char addr[64];
	skald_ref_t registry;     /* its registry actor, for lookups */
	_Atomic int up;           /* 1 while a connection is active */
	_Atomic size_t queued;    /* bytes accepted and not yet written */
	bool banned;              /* declared down or removed by the cluster:
	                           * network thread only (net.c skald__net_ban) */
	_Atomic bool cut;         /* the fault hook: traffic dropped both ways */
	skald__conn_t *conn;      /* network thread only */
	skald__rwatch_t *watches; /* network thread only */
	size_t nwatches, capwatches;
	skald__peer_metrics_t metrics; /* frames and bytes, labelled peer="node" */
} skald__peer_t;

/* Commands to the network thread. */
enum {
	CMD_SEND = 1, /* a frame for peer */
	CMD_CONNECT,  /* addr */
	CMD_LISTEN,   /* addr, sync */
	CMD_LOOKUP,   /* addr, name, asker + corr */
	CMD_STOP,
	CMD_CALL, /* run fn(net, arg) on the network thread */
};

typedef struct skald__sync_s {
	uv_mutex_t m;
	uv_cond_t c;
	bool done;
	int status;
	int port;
} skald__sync_t;

/* A command; for CMD_SEND it is also the frame, which then joins a
 * connection's write queue without another allocation. */
typedef struct skald__cmd_s {
	skald__mpsc_node_t node;
	struct skald__cmd_s *next; /* in a write queue */
	int op;
	skald__peer_t *peer;
	uint32_t local_type; /* TELL/REPLY: to announce with TYPE first */
	uint8_t kind;
	skald_ref_t src, dst;
	uint64_t corr;
	skald__sync_t *sync;
	char *addr, *name;
	void (*fn)(skald__net_t *net, void *arg); /* CMD_CALL */
	void *arg;
	size_t account; /* bytes counted in peer->queued */
	size_t len;
	uint8_t data[]; /* the frame */
} skald__cmd_t;

struct skald__target_s {
	skald__target_t *next;
	skald__net_t *net;
	char addr[64];
	struct sockaddr_storage sa;
	skald__conn_t *conn; /* the current attempt or connection */
	uint64_t node;       /* node id once authenticated, else 0 */
	unsigned backoff_ms;
	uv_timer_t retry;
	skald__cmd_t *lookups; /* CMD_LOOKUP waiting for the handshake */
	/* Made by the cluster (skald__net_cluster_send): connected when a
	 * frame needs it, never retried on a timer. A skald_connect of the
	 * same address clears it. */
	bool on_demand;
	uint64_t expect;       /* the node the cluster expects there, or 0 */
	skald__cmd_t *pending; /* CLUSTER frames waiting for the handshake */
	skald__cmd_t *pending_tail;
	unsigned npending;
	int last_err; /* why the last attempt failed (0: none, or it
	               * authenticated); under the net's mlock */
};

struct skald__conn_s {
	uv_tcp_t tcp;
	skald__net_t *net;
	skald__conn_t *next; /* net->conns */
	int state;           /* CONN_* */
	bool initiator;
	skald__target_t *target; /* outgoing connections */
	uint8_t nonce[SKALD_WIRE_NONCE];
	bool got_hello;
	skald__wire_hello_t hello;
	skald__peer_t *peer; /* once active */
	char addr[64];
	uint8_t *rbuf;
	size_t rlen, rcap;
	skald__cmd_t *wq_head, *wq_tail; /* frames waiting to be written */
	skald__cmd_t *inflight;          /* frames of the write under way */
	bool writing;
	bool refused; /* closing once the REFUSE frame is written */
	bool banned;  /* the peer is banned: only CLUSTER frames are read */
	int refuse_reason;
	char refuse_why[128];
	bool dirty; /* in net->dirty */
	skald__conn_t *dirty_next;
	uv_write_t wreq;
	uv_buf_t *bufs;
	size_t capbufs;
	uint8_t *announced; /* bitmap of local type ids announced */
	uint32_t *types;    /* peer's type id -> local id (0: unknown) */
	uint64_t last_recv, last_send, started;
};

enum { CONN_HANDSHAKE = 1, CONN_ACTIVE, CONN_CLOSING };

struct skald__net_s {
	skald_system_t *sys;
	char *cluster, *secret;
	unsigned heartbeat_ms, timeout_ms;
	uint32_t max_frame;
	size_t max_queue;
	uv_thread_t tid;
	uv_loop_t loop;
	uv_async_t wake;
	uv_timer_t heartbeat;
	skald__mpsc_t inbox;
	_Atomic int sleeping; /* 1: posters must wake the thread */
	unsigned activity;    /* bumped by every event handled; net thread */
	bool stopping;
	/* Peers: a hash by node id. */
	uv_rwlock_t plock;
	skald__peer_t **pslots;
	size_t npslots;
	/* Network thread only. */
	skald__conn_t *conns;
	skald__conn_t *dirty;
	skald__target_t *targets;
	uv_tcp_t *listeners[8];
	unsigned nlisteners;
	/* Node monitors and waiters. */
	uv_mutex_t mlock;
	uv_cond_t mcond; /* broadcast when a target authenticates */
	skald__refset_t monitors;
	skald_ref_t registry;
	/* The layer above (the cluster, actors/cluster/node.c): network
	 * thread only, but for `above`, set once before it is used. */
	char advertised[SKALD_WIRE_NAME_MAX + 1]; /* sent in HELLO; "" = none */
	bool isolated;                            /* this node was downed */
	const struct skald__net_hooks_s *hooks;
	void *hooks_ctx;
	_Atomic(void *) above; /* the cluster object, for its public API */
};

/*
 * What the network tells the cluster layer. Every member runs on the
 * network thread, must not block, and may call the skald__net_* functions
 * below (but not free the net).
 */
typedef struct skald__net_hooks_s {
	/* A CLUSTER frame from the authenticated node `node`, whose HELLO
	 * advertised from_addr ("" if none). buf is borrowed for the call. */
	void (*frame)(void *ctx, uint64_t node, const char *from_addr, const uint8_t *buf,
	              size_t len);
	/* The connection to `node` was lost through the peer (EOF, reset), or
	 * a connect to addr, where `node` was expected (0: unknown), failed;
	 * reason is the libuv code (UV_ECONNREFUSED for a host that has no
	 * listener, UV_ETIMEDOUT, UV_EHOSTUNREACH...). addr may be NULL for a connection the peer
	 * opened. */
	void (*lost)(void *ctx, uint64_t node, const char *addr, int reason);
	/* A handshake at addr failed: refused by the peer (by_peer = 1) or by
	 * this node (0); node is the peer's id if its HELLO came, else 0; why
	 * is a sentence. */
	void (*refused)(void *ctx, const char *addr, uint64_t node, int reason, const char *why,
	                int by_peer);
	/* The network thread is stopping: close the layer's handles (called
	 * once, on the network thread, before the loop ends). */
	void (*close)(void *ctx);
} skald__net_hooks_t;

/* net.c */
/* The network of sys, or NULL before skald_remote_start. Any thread. */
skald__net_t *skald__net_of(const skald_system_t *sys);
skald__peer_t *skald__peer_find(skald__net_t *net, uint64_t node);
skald__peer_t *skald__peer_get(skald__net_t *net, uint64_t node);
void skald__net_post(skald__net_t *net, skald__cmd_t *c);
void skald__net_peer_up(skald__net_t *net, skald__peer_t *p);
void skald__net_peer_down(skald__net_t *net, skald__peer_t *p, int reason);
void skald__net_notify(skald__net_t *net, const skald__peer_t *p, int up, int reason);
/* 0 if addr is `tcp://HOST:PORT` (HOST an IPv4 address, [IPv6] or
 * localhost), with the socket address in *sa (may be NULL); else
 * SKALD_EINVAL. Any thread. */
int skald__net_parse_addr(const char *addr, struct sockaddr_storage *sa);
/* Runs fn(net, arg) on the network thread, in order with other commands.
 * Any thread. Errors: SKALD_ENOMEM (fn does not run). If the network is
 * stopping, fn runs with net->stopping set, so it can free arg. */
int skald__net_call(skald__net_t *net, void (*fn)(skald__net_t *net, void *arg), void *arg);
/* Network thread only, for the cluster: */
/* Sends a CLUSTER frame to node (0: unknown) by its connection, or else
 * connects to addr on demand and sends once authenticated (up to 64
 * frames wait; more are dropped). Best effort: nothing is reported. */
void skald__net_cluster_send(skald__net_t *net, uint64_t node, const char *addr, const uint8_t *buf,
                             size_t len);
/* Connects to node at addr as skald__net_cluster_send does (on demand,
 * never retried on a timer), unless a connection to it exists: so that
 * every member can be sent to as soon as it is up. */
void skald__net_cluster_connect(skald__net_t *net, uint64_t node, const char *addr);
/* From now on, node's connections carry only CLUSTER frames and it is
 * never reported up; with close_now, its connection is closed (its
 * watchers get SKALD_ENODEDOWN at once). */
void skald__net_ban(skald__net_t *net, uint64_t node, int close_now);
/* This node is out of the cluster: every connection closes and every new
 * one is refused with SKALD_ENODEDOWN. */
void skald__net_isolate(skald__net_t *net);

/*
 * The fault hook, for tests of partitions (in the way SQLite's test VFS
 * wraps a real one): with cut, every frame to or from node after the
 * handshake is dropped on this side, membership frames and messages alike,
 * while the connection itself stays up; a message to one of its actors is
 * lost without a dead letter, as in a partition. Cutting both sides of
 * each pair makes a partition. Takes effect on the network thread shortly
 * after the call. Any thread. Errors: SKALD_EINVAL (network not started),
 * SKALD_ENOMEM.
 */
int skald__net_fault_cut(skald_system_t *sys, uint64_t node, bool cut);

/* conn.c */
void skald__conn_accept(uv_stream_t *server, int status);
int skald__conn_connect(skald__target_t *t);
void skald__conn_queue(skald__conn_t *c, skald__cmd_t *f);
void skald__conn_flush_dirty(skald__net_t *net);
void skald__conn_close(skald__conn_t *c, int reason, const char *why);
void skald__conn_heartbeat(uv_timer_t *h);
void skald__target_lookups_flush(skald__target_t *t);
/* An attempt to reach t's address failed with reason: kept for
 * skald_node_wait; a refused handshake (secret, cluster name, version) also
 * fails the lookups waiting on t at once. Network thread. */
void skald__target_failed(skald__target_t *t, int reason);
/* Queues t's waiting CLUSTER frames once t's connection is active. */
void skald__target_pending_flush(skald__target_t *t);
skald__cmd_t *skald__frame_new(uint8_t kind, skald_ref_t src, skald_ref_t dst, uint32_t type,
                               int32_t arg, uint64_t corr, const void *payload, size_t len);

/* registry.c */
int skald__registry_start(skald_system_t *sys, skald__net_t *net);
extern uint32_t skald__t_lookup, skald__t_lookup_reply;

#endif /* SKALD_ACTORS_REMOTE_INT_H */
