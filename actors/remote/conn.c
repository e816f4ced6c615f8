/*
 * actors/remote/conn.c - TCP connections between nodes: handshake, frames
 * in, coalesced frames out, heartbeats, reconnection.
 *
 * Everything here runs on the network thread. A connection starts in
 * CONN_HANDSHAKE: both ends send HELLO, answer the peer's HELLO with AUTH,
 * and become CONN_ACTIVE on a valid AUTH; any other frame before that, a
 * wrong secret, cluster or version closes it with a logged reason (the peer
 * is told why with REFUSE). One connection per pair of nodes: when a second
 * one authenticates, the one opened by the node with the lower id wins, the
 * same choice on both ends.
 *
 * Bad input never crashes the node or makes it allocate without bound: a
 * frame's length is checked against the maximum before its bytes are
 * awaited, and every parse is bounded by the bytes received.
 */
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/remote/remote_int.h"

#define MAX_TYPES          4096
#define READ_CHUNK         65536
#define MAX_BUFS_PER_WRITE 1024
#define MAX_BACKOFF_MS     5000

static void conn_free_cb(uv_handle_t *h)
{
	skald__conn_t *c = h->data;
	free(c->rbuf);
	free(c->bufs);
	free(c->announced);
	free(c->types);
	free(c);
}

static void free_frames(skald__conn_t *c, skald__cmd_t *f)
{
	while (f != NULL) {
		skald__cmd_t *next = f->next;
		if (f->peer != NULL && f->account)
			atomic_fetch_sub(&f->peer->queued, f->account);
		free(f);
		f = next;
	}
}

static void retry_cb(uv_timer_t *h)
{
	skald__target_t *t = h->data;
	if (!t->net->stopping && t->conn == NULL)
		skald__conn_connect(t);
}

static void schedule_retry(skald__target_t *t)
{
	if (t->net->stopping || t->on_demand)
		return;
	uv_timer_start(&t->retry, retry_cb, t->backoff_ms, 0);
	t->backoff_ms = t->backoff_ms * 2 > MAX_BACKOFF_MS ? MAX_BACKOFF_MS : t->backoff_ms * 2;
}

void skald__conn_close(skald__conn_t *c, int reason, const char *why)
{
	skald__net_t *net = c->net;
	if (c->state == CONN_CLOSING)
		return;
	int was_active = c->state == CONN_ACTIVE;
	c->state = CONN_CLOSING;
	for (skald__conn_t **pp = &net->conns; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	if (c->dirty) {
		for (skald__conn_t **pp = &net->dirty; *pp != NULL; pp = &(*pp)->dirty_next) {
			if (*pp == c) {
				*pp = c->dirty_next;
				break;
			}
		}
		c->dirty = false;
	}
	if (was_active || c->got_hello)
		SKALD_LOG(reason == SKALD_ESTOPPING || reason == UV_EOF ? SKALD_LOG_INFO
		                                                        : SKALD_LOG_WARN,
		          "connection to %s (%s) closed: %s", c->addr,
		          c->got_hello ? c->hello.name : "?", why);
	else
		SKALD_LOG(SKALD_LOG_DEBUG, "connection to %s closed: %s", c->addr, why);
	/* What the cluster's failure detector hears: the peer's end went away
	 * (a dead process on a live host), or its host refused a connect. */
	bool lost =
	        reason == UV_EOF || reason == UV_ECONNRESET || reason == UV_ECONNREFUSED ||
	        reason == UV_EPIPE || reason == UV_ECONNABORTED ||
	        /* any failed connect (libuv's codes lie above -4096) */
	        (c->target != NULL && !was_active && !c->got_hello && reason < 0 && reason > -4096);
	uint64_t lost_node = 0;
	if (c->peer != NULL && c->peer->conn == c) {
		lost_node = c->peer->node;
		if (c->banned)
			c->peer->conn = NULL; /* it was never reported up */
		else
			skald__net_peer_down(net, c->peer,
			                     reason == SKALD_ESTOPPING ? reason : SKALD_ENODEDOWN);
	} else if (c->target != NULL && !was_active) {
		lost_node = c->target->expect ? c->target->expect : c->target->node;
	}
	free_frames(c, c->wq_head);
	c->wq_head = c->wq_tail = NULL;
	/* Frames of a write under way are freed by its callback. */
	char target_addr[64] = "";
	if (c->target != NULL) {
		skald__target_t *t = c->target;
		t->conn = NULL;
		c->target = NULL;
		snprintf(target_addr, sizeof target_addr, "%s", t->addr);
		if (!was_active)
			skald__target_failed(t, reason);
		/* Waiting CLUSTER frames are best effort: the protocol resends. */
		free_frames(c, t->pending);
		t->pending = t->pending_tail = NULL;
		t->npending = 0;
		schedule_retry(t);
	}
	if (lost && !net->stopping && net->hooks != NULL && net->hooks->lost != NULL &&
	    (lost_node != 0 || target_addr[0] != '\0'))
		net->hooks->lost(net->hooks_ctx, lost_node, target_addr[0] ? target_addr : NULL,
		                 reason);
	uv_close((uv_handle_t *)&c->tcp, conn_free_cb);
}

/* ------------------------------------------------------------------------ */
/* Writing                                                                   */

static void mark_dirty(skald__conn_t *c)
{
	if (c->dirty)
		return;
	c->dirty = true;
	c->dirty_next = c->net->dirty;
	c->net->dirty = c;
}

void skald__conn_queue(skald__conn_t *c, skald__cmd_t *f)
{
	if (f->local_type != 0 && f->local_type < MAX_TYPES &&
	    !(c->announced[f->local_type >> 3] & (1u << (f->local_type & 7)))) {
		/* The first use of a type on this connection names it. */
		const skald_msgtype_t *t = skald_type_get(f->local_type);
		skald__cmd_t *a = skald__frame_new(SKALD_WIRE_TYPE, SKALD_REF_NULL, SKALD_REF_NULL,
		                                   f->local_type, 0, 0, t->name, strlen(t->name));
		if (a != NULL) {
			c->announced[f->local_type >> 3] |= (uint8_t)(1u << (f->local_type & 7));
			skald__conn_queue(c, a);
		}
	}
	f->next = NULL;
	if (c->wq_tail == NULL)
		c->wq_head = f;
	else
		c->wq_tail->next = f;
	c->wq_tail = f;
	mark_dirty(c);
}

static void flush(skald__conn_t *c);

static void write_cb(uv_write_t *req, int status)
{
	skald__conn_t *c = req->data;
	free_frames(c, c->inflight);
	c->inflight = NULL;
	c->writing = false;
	if (c->state == CONN_CLOSING)
		return;
	if (status < 0) {
		skald__conn_close(c, status, uv_strerror(status));
		return;
	}
	if (c->refused && c->wq_head == NULL) {
		skald__conn_close(c, c->refuse_reason, c->refuse_why);
		return;
	}
	flush(c);
}

static void flush(skald__conn_t *c)
{
	if (c->writing || c->wq_head == NULL || c->state == CONN_CLOSING)
		return;
	size_t n = 0;
	skald__cmd_t *f = c->wq_head, *last = NULL;
	for (; f != NULL && n < MAX_BUFS_PER_WRITE; f = f->next, n++)
		last = f;
	if (n > c->capbufs) {
		uv_buf_t *b = realloc(c->bufs, n * sizeof *b);
		if (b == NULL)
			return; /* try again on the next flush */
		c->bufs = b;
		c->capbufs = n;
	}
	size_t i = 0, bytes = 0;
	for (f = c->wq_head; i < n; f = f->next, i++) {
		c->bufs[i] = uv_buf_init((char *)f->data, (unsigned)f->len);
		bytes += f->len;
	}
	skald__peer_count(c->peer ? &c->peer->metrics : NULL, true, n, bytes);
	c->inflight = c->wq_head;
	c->wq_head = last->next;
	last->next = NULL;
	if (c->wq_head == NULL)
		c->wq_tail = NULL;
	c->writing = true;
	c->wreq.data = c;
	c->last_send = uv_now(&c->net->loop);
	int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, c->bufs, (unsigned)n, write_cb);
	if (rc < 0) {
		c->writing = false;
		free_frames(c, c->inflight);
		c->inflight = NULL;
		skald__conn_close(c, rc, uv_strerror(rc));
	}
}

void skald__conn_flush_dirty(skald__net_t *net)
{
	while (net->dirty != NULL) {
		skald__conn_t *c = net->dirty;
		net->dirty = c->dirty_next;
		c->dirty = false;
		flush(c);
	}
}

static void send_now(skald__conn_t *c, skald__cmd_t *f)
{
	if (f == NULL) {
		skald__conn_close(c, SKALD_ENOMEM, "out of memory");
		return;
	}
	skald__conn_queue(c, f);
	skald__conn_flush_dirty(c->net);
}

/* A handshake that fails for a reason an operator must hear of (secret,
 * cluster name, version, a downed node) is told to the cluster layer, so
 * that its API and its subscribers can say why. */
static void refused_hook(skald__conn_t *c, int reason, const char *why, int by_peer)
{
	skald__net_t *net = c->net;
	if (c->state != CONN_HANDSHAKE || net->hooks == NULL || net->hooks->refused == NULL)
		return;
	if (reason != SKALD_EAUTH && reason != SKALD_ECLUSTER && reason != SKALD_EVERSION &&
	    reason != SKALD_ENODEDOWN)
		return;
	const char *addr = c->target != NULL                  ? c->target->addr
	                   : c->got_hello && c->hello.addr[0] ? c->hello.addr
	                                                      : c->addr;
	net->hooks->refused(net->hooks_ctx, addr, c->got_hello ? c->hello.node : 0, reason, why,
	                    by_peer);
}

/* Tells the peer why, then closes: reading stops at once, and the close
 * waits until the REFUSE frame (and what was queued before it, such as our
 * AUTH) is written, so the peer can log the reason. */
static void refuse(skald__conn_t *c, int reason, const char *why)
{
	if (c->state == CONN_CLOSING || c->refused)
		return;
	skald__cmd_t *f = skald__frame_new(SKALD_WIRE_REFUSE, SKALD_REF_NULL, SKALD_REF_NULL, 0,
	                                   reason, 0, why, strlen(why));
	if (f == NULL) {
		skald__conn_close(c, reason, why);
		return;
	}
	c->refused = true;
	c->refuse_reason = reason;
	snprintf(c->refuse_why, sizeof c->refuse_why, "%s", why);
	refused_hook(c, reason, why, 0);
	uv_read_stop((uv_stream_t *)&c->tcp);
	skald__conn_queue(c, f);
	skald__conn_flush_dirty(c->net);
}

/* ------------------------------------------------------------------------ */
/* Handshake                                                                 */

static void send_hello(skald__conn_t *c)
{
	skald__net_t *net = c->net;
	skald__wire_hello_t h = {.version = SKALD_WIRE_VERSION,
	                         .node = net->sys->node,
	                         .registry_actor = net->registry.actor,
	                         .registry_inc = net->registry.incarnation};
	memcpy(h.nonce, c->nonce, SKALD_WIRE_NONCE);
	snprintf(h.name, sizeof h.name, "%s", net->sys->name);
	snprintf(h.cluster, sizeof h.cluster, "%s", net->cluster);
	snprintf(h.addr, sizeof h.addr, "%s", net->advertised);
	uint8_t buf[SKALD_WIRE_HELLO_MAX];
	size_t n = skald__wire_hello_encode(buf, &h);
	send_now(c, skald__frame_new(SKALD_WIRE_HELLO, SKALD_REF_NULL, SKALD_REF_NULL, 0, 0, 0, buf,
	                             n));
}

static int conn_init(skald__net_t *net, skald__conn_t *c)
{
	c->net = net;
	c->state = CONN_HANDSHAKE;
	c->announced = calloc(MAX_TYPES / 8, 1);
	c->types = calloc(MAX_TYPES, sizeof *c->types);
	if (c->announced == NULL || c->types == NULL)
		return SKALD_ENOMEM;
	if (RAND_bytes(c->nonce, SKALD_WIRE_NONCE) != 1)
		return SKALD_ENOMEM;
	c->started = c->last_recv = c->last_send = uv_now(&net->loop);
	c->tcp.data = c;
	c->next = net->conns;
	net->conns = c;
	return 0;
}

/* The connection c just authenticated peer node p: make it the one. */
static void activate(skald__conn_t *c)
{
	skald__net_t *net = c->net;
	skald__peer_t *p = skald__peer_get(net, c->hello.node);
	if (p == NULL) {
		skald__conn_close(c, SKALD_ENOMEM, "out of memory");
		return;
	}
	if (p->conn != NULL && p->conn != c) {
		/* Two connections to one node (both connected at once): keep the
		 * one opened by the lower node id, on both ends alike. */
		uint64_t low = net->sys->node < p->node ? net->sys->node : p->node;
		bool mine_wins = (c->initiator ? net->sys->node : p->node) == low;
		if (!mine_wins) {
			skald__target_t *t = c->target;
			if (t != NULL && p->conn->state == CONN_ACTIVE) {
				/* What waited for this connection goes on the one
				 * that stays. */
				while (t->pending != NULL) {
					skald__cmd_t *f = t->pending;
					t->pending = f->next;
					skald__conn_queue(p->conn, f);
				}
				t->pending_tail = NULL;
				t->npending = 0;
				uv_mutex_lock(&net->mlock);
				t->node = p->node;
				uv_mutex_unlock(&net->mlock);
			}
			skald__conn_close(c, SKALD_EEXISTS, "a connection to this node exists");
			if (t != NULL)
				skald__target_lookups_flush(t);
			return;
		}
		skald__conn_t *old = p->conn;
		p->conn = NULL; /* not a loss of the node: the new one takes over */
		old->peer = NULL;
		skald__conn_close(old, SKALD_EEXISTS, "replaced by a simultaneous connection");
	}
	c->state = CONN_ACTIVE;
	c->peer = p;
	p->conn = c;
	snprintf(p->name, sizeof p->name, "%s", c->hello.name);
	snprintf(p->addr, sizeof p->addr, "%s", c->target ? c->target->addr : c->addr);
	p->registry = (skald_ref_t){p->node, c->hello.registry_actor, c->hello.registry_inc};
	if (c->target != NULL) {
		uv_mutex_lock(&net->mlock);
		c->target->node = p->node;
		c->target->last_err = 0;
		uv_mutex_unlock(&net->mlock);
		c->target->backoff_ms = 100;
	}
	if (p->banned) {
		/* A node the cluster declared down or removed: it hears why
		 * through the cluster's frames, and nothing else. */
		c->banned = true;
	} else if (!atomic_load(&p->up)) {
		skald__net_peer_up(net, p);
	}
	if (c->target != NULL) {
		skald__target_lookups_flush(c->target);
		skald__target_pending_flush(c->target);
	}
}

static void on_hello(skald__conn_t *c, const uint8_t *p, size_t n)
{
	skald__net_t *net = c->net;
	if (c->got_hello) {
		refuse(c, SKALD_EPROTO, "a second HELLO");
		return;
	}
	if (skald__wire_hello_decode(p, n, &c->hello) < 0) {
		refuse(c, SKALD_EPROTO, "malformed HELLO");
		return;
	}
	c->got_hello = true;
	if (c->hello.version != SKALD_WIRE_VERSION) {
		char why[96];
		snprintf(why, sizeof why, "protocol version %u, this node speaks %u",
		         c->hello.version, SKALD_WIRE_VERSION);
		refuse(c, SKALD_EVERSION, why);
		return;
	}
	if (strcmp(c->hello.cluster, net->cluster) != 0) {
		char why[192];
		snprintf(why, sizeof why, "cluster \"%s\", this node is in \"%s\"",
		         c->hello.cluster, net->cluster);
		refuse(c, SKALD_ECLUSTER, why);
		return;
	}
	if (c->hello.node == net->sys->node) {
		refuse(c, SKALD_EPROTO, "connected to itself");
		return;
	}
	if (net->isolated) {
		refuse(c, SKALD_ENODEDOWN,
		       "this node was declared down by its cluster and takes no traffic; "
		       "it must restart to rejoin");
		return;
	}
	uint8_t mac[SKALD_WIRE_MAC];
	if (skald__wire_auth_mac(net->secret, c->hello.nonce, net->sys->node, c->hello.node, mac) <
	    0) {
		skald__conn_close(c, SKALD_ENOMEM, "HMAC failed");
		return;
	}
	send_now(c, skald__frame_new(SKALD_WIRE_AUTH, SKALD_REF_NULL, SKALD_REF_NULL, 0, 0, 0, mac,
	                             sizeof mac));
}

static void on_auth(skald__conn_t *c, const uint8_t *p, size_t n)
{
	skald__net_t *net = c->net;
	if (!c->got_hello || n != SKALD_WIRE_MAC) {
		refuse(c, SKALD_EPROTO, "AUTH out of order or malformed");
		return;
	}
	uint8_t want[SKALD_WIRE_MAC];
	if (skald__wire_auth_mac(net->secret, c->nonce, c->hello.node, net->sys->node, want) < 0) {
		skald__conn_close(c, SKALD_ENOMEM, "HMAC failed");
		return;
	}
	if (!skald__wire_mac_eq(want, p)) {
		SKALD_LOG(SKALD_LOG_WARN,
		          "node \"%s\" at %s proved no knowledge of the cluster "
		          "secret: refused",
		          c->hello.name, c->addr);
		refuse(c, SKALD_EAUTH, "wrong cluster secret");
		return;
	}
	activate(c);
}

/* ------------------------------------------------------------------------ */
/* Frames after the handshake                                                */

static skald_ref_t local_ref(skald__conn_t *c, uint32_t actor, uint32_t inc)
{
	return (skald_ref_t){c->net->sys->node, actor, inc};
}

static skald_ref_t peer_ref(skald__conn_t *c, uint32_t actor, uint32_t inc)
{
	if (actor == 0)
		return SKALD_REF_NULL;
	return (skald_ref_t){c->peer->node, actor, inc};
}

static void on_message(skald__conn_t *c, const skald__wire_hdr_t *h, const uint8_t *p, size_t n)
{
	skald_system_t *sys = c->net->sys;
	skald_ref_t from = peer_ref(c, h->src_actor, h->src_inc);
	skald_ref_t to = local_ref(c, h->dst_actor, h->dst_inc);
	uint32_t type = h->type < MAX_TYPES ? c->types[h->type] : 0;
	const skald_msgtype_t *t = type ? skald_type_get(type) : NULL;
	void *payload = NULL;
	int rc = t != NULL ? skald__type_decode(t, p, n, &payload) : SKALD_ENOTYPE;
	if (rc < 0) {
		char b[48];
		SKALD_LOG(SKALD_LOG_WARN, "message from %s (type %u \"%s\" of node %s) dropped: %s",
		          skald_ref_str(from, b, sizeof b), h->type, t != NULL ? t->name : "?",
		          c->peer->name, skald_strerror(rc));
		if (h->kind == SKALD_WIRE_TELL && h->corr != 0 && !skald_ref_is_null(from)) {
			skald__env_t *f = skald__env_new(ENV_ASK_FAIL, 0, to, NULL);
			if (f != NULL) {
				f->corr = h->corr;
				f->arg = rc;
				skald__send(sys, from, f);
			}
		}
		return;
	}
	skald__env_t *e = skald__env_new(h->kind == SKALD_WIRE_TELL ? ENV_USER : ENV_REPLY, type,
	                                 from, payload);
	if (e == NULL) {
		skald__type_free(t, payload);
		return;
	}
	e->corr = h->corr;
	skald__send(sys, to, e);
}

static void on_frame(skald__conn_t *c, const skald__wire_hdr_t *h, const uint8_t *p, size_t n)
{
	if (c->state == CONN_HANDSHAKE) {
		if (h->kind == SKALD_WIRE_HELLO)
			on_hello(c, p, n);
		else if (h->kind == SKALD_WIRE_AUTH)
			on_auth(c, p, n);
		else if (h->kind == SKALD_WIRE_REFUSE) {
			char why[256];
			size_t k = n < sizeof why - 1 ? n : sizeof why - 1;
			memcpy(why, p, k);
			why[k] = '\0';
			SKALD_LOG(SKALD_LOG_WARN, "node at %s refused this node: %s", c->addr, why);
			refused_hook(c, h->arg < 0 ? h->arg : SKALD_EAUTH, why, 1);
			skald__conn_close(c, h->arg < 0 ? h->arg : SKALD_EAUTH, why);
		} else {
			refuse(c, SKALD_EPROTO, "a message before the handshake completed");
		}
		return;
	}
	skald__net_t *net = c->net;
	if (c->peer != NULL && atomic_load(&c->peer->cut))
		return; /* the fault hook (skald__net_fault_cut) */
	if (h->kind == SKALD_WIRE_CLUSTER) {
		if (net->hooks != NULL && net->hooks->frame != NULL)
			net->hooks->frame(net->hooks_ctx, c->peer->node, c->hello.addr, p, n);
		return;
	}
	if (c->banned && h->kind != SKALD_WIRE_REFUSE)
		return; /* a downed node's traffic: dead letters, unannounced */
	skald_system_t *sys = net->sys;
	skald_ref_t from = peer_ref(c, h->src_actor, h->src_inc);
	skald_ref_t to = local_ref(c, h->dst_actor, h->dst_inc);
	switch (h->kind) {
	case SKALD_WIRE_TYPE: {
		char name[256];
		uint32_t id;
		if (n == 0 || n >= sizeof name || h->type == 0 || h->type >= MAX_TYPES) {
			refuse(c, SKALD_EPROTO, "malformed TYPE");
			return;
		}
		memcpy(name, p, n);
		name[n] = '\0';
		/* An unknown name is not an error of the connection: messages
		 * of that type are dropped (and logged) as they come. */
		c->types[h->type] = skald_type_lookup(name, &id) == 0 ? id : 0;
		break;
	}
	case SKALD_WIRE_TELL:
	case SKALD_WIRE_REPLY:
		on_message(c, h, p, n);
		break;
	case SKALD_WIRE_ASK_FAIL: {
		skald__env_t *e = skald__env_new(ENV_ASK_FAIL, 0, from, NULL);
		if (e != NULL) {
			e->corr = h->corr;
			e->arg = h->arg < 0 ? h->arg : SKALD_EPROTO;
			skald__send(sys, to, e);
		}
		break;
	}
	case SKALD_WIRE_WATCH:
		if (!skald_ref_is_null(from))
			skald__send_sys(sys, to, ENV_WATCH, from, 0);
		break;
	case SKALD_WIRE_UNWATCH:
		if (!skald_ref_is_null(from))
			skald__send_sys(sys, to, ENV_UNWATCH, from, 0);
		break;
	case SKALD_WIRE_DOWN: {
		/* The watch is over: forget it before the watcher hears. */
		skald__peer_t *pr = c->peer;
		for (size_t i = 0; i < pr->nwatches; i++) {
			if (skald_ref_eq(pr->watches[i].watcher, to) &&
			    skald_ref_eq(pr->watches[i].target, from)) {
				pr->watches[i] = pr->watches[--pr->nwatches];
				break;
			}
		}
		skald__down_send(sys, to, from, h->arg <= 0 ? h->arg : SKALD_EPROTO);
		break;
	}
	case SKALD_WIRE_STOP:
		skald_stop(sys, to);
		break;
	case SKALD_WIRE_HEARTBEAT:
		break;
	case SKALD_WIRE_REFUSE: {
		char why[256];
		size_t k = n < sizeof why - 1 ? n : sizeof why - 1;
		memcpy(why, p, k);
		why[k] = '\0';
		SKALD_LOG(SKALD_LOG_WARN, "node %s closed the connection: %s", c->peer->name, why);
		skald__conn_close(c, h->arg < 0 ? h->arg : SKALD_EPROTO, why);
		break;
	}
	default:
		refuse(c, SKALD_EPROTO, "unexpected frame after the handshake");
		break;
	}
}

/* ------------------------------------------------------------------------ */
/* Reading                                                                   */

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	skald__conn_t *c = h->data;
	if (c->rcap - c->rlen < READ_CHUNK) {
		size_t cap = c->rlen + READ_CHUNK;
		uint8_t *b = realloc(c->rbuf, cap);
		if (b == NULL) {
			*buf = uv_buf_init(NULL, 0);
			return;
		}
		c->rbuf = b;
		c->rcap = cap;
	}
	*buf = uv_buf_init((char *)c->rbuf + c->rlen, (unsigned)(c->rcap - c->rlen));
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	skald__conn_t *c = s->data;
	if (nread == UV_ENOBUFS) {
		skald__conn_close(c, SKALD_ENOMEM, "out of memory for the read buffer");
		return;
	}
	if (nread < 0) {
		skald__conn_close(c, (int)nread,
		                  nread == UV_EOF ? "closed by the peer" : uv_strerror((int)nread));
		return;
	}
	if (nread == 0)
		return;
	c->net->activity++;
	c->rlen += (size_t)nread;
	c->last_recv = uv_now(&c->net->loop);
	size_t off = 0;
	while (c->state != CONN_CLOSING && !c->refused) {
		skald__wire_hdr_t h;
		const uint8_t *p;
		size_t n, used;
		int rc = skald__wire_parse(c->rbuf + off, c->rlen - off, c->net->max_frame, &h, &p,
		                           &n, &used);
		if (rc == 0)
			break;
		if (rc < 0) {
			refuse(c, SKALD_EPROTO, "malformed or oversized frame");
			return;
		}
		skald__peer_count(c->peer ? &c->peer->metrics : NULL, false, 1, used);
		on_frame(c, &h, p, n);
		off += used;
	}
	if (c->state == CONN_CLOSING || c->refused)
		return;
	if (off > 0) {
		memmove(c->rbuf, c->rbuf + off, c->rlen - off);
		c->rlen -= off;
	}
	/* Keep big buffers only while a big frame is being read. */
	if (c->rlen == 0 && c->rcap > 4 * READ_CHUNK) {
		free(c->rbuf);
		c->rbuf = NULL;
		c->rcap = 0;
	}
	skald__conn_flush_dirty(c->net);
}

static void start(skald__conn_t *c, const char *addr)
{
	snprintf(c->addr, sizeof c->addr, "%s", addr);
	uv_tcp_nodelay(&c->tcp, 1);
	int rc = uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
	if (rc < 0) {
		skald__conn_close(c, rc, uv_strerror(rc));
		return;
	}
	send_hello(c);
}

void skald__conn_accept(uv_stream_t *server, int status)
{
	skald__net_t *net = server->data;
	if (status < 0 || net->stopping)
		return;
	skald__conn_t *c = calloc(1, sizeof *c);
	if (c == NULL)
		return;
	uv_tcp_init(&net->loop, &c->tcp);
	c->tcp.data = c;
	if (conn_init(net, c) < 0) {
		/* Not listed yet: only the handle needs closing. */
		uv_close((uv_handle_t *)&c->tcp, conn_free_cb);
		return;
	}
	if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
		skald__conn_close(c, SKALD_ENOMEM, "accept failed");
		return;
	}
	struct sockaddr_storage sa;
	int len = sizeof sa;
	char host[64] = "?";
	int port = 0;
	if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&sa, &len) == 0) {
		if (sa.ss_family == AF_INET6) {
			uv_ip6_name((struct sockaddr_in6 *)&sa, host, sizeof host);
			port = ntohs(((struct sockaddr_in6 *)&sa)->sin6_port);
		} else {
			uv_ip4_name((struct sockaddr_in *)&sa, host, sizeof host);
			port = ntohs(((struct sockaddr_in *)&sa)->sin_port);
		}
	}
	char addr[96];
	snprintf(addr, sizeof addr, "tcp://%s:%d", host, port);
	start(c, addr);
}

static void connect_cb(uv_connect_t *req, int status)
{
	skald__conn_t *c = req->data;
	free(req);
	if (c->state == CONN_CLOSING)
		return;
	if (status < 0) {
		skald__conn_close(c, status, uv_strerror(status));
		return;
	}
	start(c, c->target->addr);
}

int skald__conn_connect(skald__target_t *t)
{
	skald__net_t *net = t->net;
	skald__conn_t *c = calloc(1, sizeof *c);
	uv_connect_t *req = malloc(sizeof *req);
	if (c == NULL || req == NULL) {
		free(c);
		free(req);
		schedule_retry(t);
		return SKALD_ENOMEM;
	}
	uv_tcp_init(&net->loop, &c->tcp);
	c->tcp.data = c;
	int rc = conn_init(net, c);
	c->initiator = true;
	c->target = t;
	t->conn = c;
	snprintf(c->addr, sizeof c->addr, "%s", t->addr);
	req->data = c;
	if (rc == 0)
		rc = uv_tcp_connect(req, &c->tcp, (struct sockaddr *)&t->sa, connect_cb);
	if (rc < 0) {
		free(req);
		skald__conn_close(c, rc, uv_strerror(rc));
	}
	return rc;
}

void skald__target_lookups_flush(skald__target_t *t)
{
	skald__peer_t *p = t->node ? skald__peer_find(t->net, t->node) : NULL;
	if (p == NULL || p->conn == NULL || p->conn->state != CONN_ACTIVE)
		return;
	while (t->lookups != NULL) {
		skald__cmd_t *l = t->lookups;
		t->lookups = l->next;
		skald__cmd_t *f =
		        skald__frame_new(SKALD_WIRE_TELL, l->src, p->registry, skald__t_lookup, 0,
		                         l->corr, l->name, strlen(l->name));
		if (f != NULL) {
			f->peer = p;
			f->local_type = skald__t_lookup;
			skald__conn_queue(p->conn, f);
		}
		free(l->addr);
		free(l->name);
		free(l);
	}
	skald__conn_flush_dirty(t->net);
}

/* Refusals that retrying cannot cure. */
static bool final_refusal(int reason)
{
	return reason == SKALD_EAUTH || reason == SKALD_ECLUSTER || reason == SKALD_EVERSION;
}

void skald__target_failed(skald__target_t *t, int reason)
{
	if (reason == SKALD_ESTOPPING)
		return;
	uv_mutex_lock(&t->net->mlock);
	t->last_err = reason;
	uv_cond_broadcast(&t->net->mcond);
	uv_mutex_unlock(&t->net->mlock);
	while (final_refusal(reason) && t->lookups != NULL) {
		skald__cmd_t *l = t->lookups;
		t->lookups = l->next;
		skald__env_t *f = skald__env_new(ENV_ASK_FAIL, 0, SKALD_REF_NULL, NULL);
		if (f != NULL) {
			f->corr = l->corr;
			f->arg = reason;
			skald__send(t->net->sys, l->src, f);
		}
		free(l->addr);
		free(l->name);
		free(l);
	}
}

void skald__target_pending_flush(skald__target_t *t)
{
	skald__conn_t *c = t->conn;
	if (c == NULL || c->state != CONN_ACTIVE)
		return;
	while (t->pending != NULL) {
		skald__cmd_t *f = t->pending;
		t->pending = f->next;
		skald__conn_queue(c, f);
	}
	t->pending_tail = NULL;
	t->npending = 0;
	skald__conn_flush_dirty(t->net);
}

/* ------------------------------------------------------------------------ */
/* Heartbeats                                                                */

void skald__conn_heartbeat(uv_timer_t *h)
{
	skald__net_t *net = h->data;
	uint64_t now = uv_now(&net->loop);
	skald__conn_t *next;
	for (skald__conn_t *c = net->conns; c != NULL; c = next) {
		next = c->next;
		if (now - c->last_recv > net->timeout_ms) {
			skald__conn_close(c, SKALD_ENODEDOWN,
			                  c->state == CONN_ACTIVE
			                          ? "no heartbeat within the timeout"
			                          : "handshake timed out");
			continue;
		}
		if (c->state == CONN_ACTIVE && now - c->last_send >= net->heartbeat_ms &&
		    c->wq_head == NULL && !c->writing) {
			skald__cmd_t *f = skald__frame_new(SKALD_WIRE_HEARTBEAT, SKALD_REF_NULL,
			                                   SKALD_REF_NULL, 0, 0, 0, NULL, 0);
			if (f != NULL)
				skald__conn_queue(c, f);
		}
	}
	skald__conn_flush_dirty(net);
}
