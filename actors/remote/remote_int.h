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
	skald__conn_t *conn;      /* network thread only */
	skald__rwatch_t *watches; /* network thread only */
	size_t nwatches, capwatches;
} skald__peer_t;

/* Commands to the network thread. */
enum {
	CMD_SEND = 1, /* a frame for peer */
	CMD_CONNECT,  /* addr */
	CMD_LISTEN,   /* addr, sync */
	CMD_LOOKUP,   /* addr, name, asker + corr */
	CMD_STOP,
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
};

/* net.c */
/* The network of sys, or NULL before skald_remote_start. Any thread. */
skald__net_t *skald__net_of(const skald_system_t *sys);
skald__peer_t *skald__peer_find(skald__net_t *net, uint64_t node);
skald__peer_t *skald__peer_get(skald__net_t *net, uint64_t node);
void skald__net_post(skald__net_t *net, skald__cmd_t *c);
void skald__net_peer_up(skald__net_t *net, skald__peer_t *p);
void skald__net_peer_down(skald__net_t *net, skald__peer_t *p, int reason);
void skald__net_notify(skald__net_t *net, const skald__peer_t *p, int up, int reason);

/* conn.c */
void skald__conn_accept(uv_stream_t *server, int status);
int skald__conn_connect(skald__target_t *t);
void skald__conn_queue(skald__conn_t *c, skald__cmd_t *f);
void skald__conn_flush_dirty(skald__net_t *net);
void skald__conn_close(skald__conn_t *c, int reason, const char *why);
void skald__conn_heartbeat(uv_timer_t *h);
void skald__target_lookups_flush(skald__target_t *t);
skald__cmd_t *skald__frame_new(uint8_t kind, skald_ref_t src, skald_ref_t dst, uint32_t type,
                               int32_t arg, uint64_t corr, const void *payload, size_t len);

/* registry.c */
int skald__registry_start(skald_system_t *sys, skald__net_t *net);
extern uint32_t skald__t_lookup, skald__t_lookup_reply;

#endif /* SKALD_ACTORS_REMOTE_INT_H */
