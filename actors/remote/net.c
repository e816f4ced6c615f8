/*
 * actors/remote/net.c - the network thread, peers, and the remote send path.
 *
 * Sending to a remote reference happens on the sender's thread: the message
 * is encoded once with its type's codec into a frame, counted against the
 * peer's bounded queue (a full queue is an error the sender sees), and posted
 * to the network thread, which appends it to the connection's write queue.
 * The network thread writes everything queued for a connection with one
 * uv_write (many frames per system call).
 */
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/remote/remote_int.h"

#define DEFAULT_HEARTBEAT_MS 1000
#define DEFAULT_TIMEOUT_MS   5000
#define DEFAULT_MAX_FRAME    (8u << 20)
#define DEFAULT_MAX_QUEUE    ((size_t)64 << 20)

/* ------------------------------------------------------------------------ */
/* Peers                                                                     */

skald__peer_t *skald__peer_find(skald__net_t *net, uint64_t node)
{
	uv_rwlock_rdlock(&net->plock);
	skald__peer_t *p = net->pslots[node & (net->npslots - 1)];
	while (p != NULL && p->node != node)
		p = p->next;
	uv_rwlock_rdunlock(&net->plock);
	return p;
}

/* Network thread only (the one writer of the table). */
skald__peer_t *skald__peer_get(skald__net_t *net, uint64_t node)
{
	skald__peer_t *p = skald__peer_find(net, node);
	if (p != NULL)
		return p;
	p = calloc(1, sizeof *p);
	if (p == NULL)
		return NULL;
	p->node = node;
	skald__peer_metrics(node, &p->metrics);
	uv_rwlock_wrlock(&net->plock);
	skald__peer_t **slot = &net->pslots[node & (net->npslots - 1)];
	p->next = *slot;
	*slot = p;
	uv_rwlock_wrunlock(&net->plock);
	return p;
}

void skald__net_notify(skald__net_t *net, const skald__peer_t *p, int up, int reason)
{
	uv_mutex_lock(&net->mlock);
	for (uint32_t i = 0; i < net->monitors.n; i++) {
		skald_node_event_t *ev = calloc(1, sizeof *ev);
		if (ev == NULL)
			break;
		ev->node = p->node;
		ev->up = up;
		ev->reason = reason;
		snprintf(ev->name, sizeof ev->name, "%s", p->name);
		snprintf(ev->addr, sizeof ev->addr, "%s", p->addr);
		skald__env_t *e = skald__env_new(ENV_USER, SKALD_TYPE_NODE, SKALD_REF_NULL, ev);
		if (e == NULL) {
			free(ev);
			break;
		}
		skald__send(net->sys, net->monitors.v[i], e);
	}
	uv_cond_broadcast(&net->mcond);
	uv_mutex_unlock(&net->mlock);
}

void skald__net_peer_up(skald__net_t *net, skald__peer_t *p)
{
	atomic_store(&p->up, 1);
	SKALD_LOG(SKALD_LOG_INFO, "node %s (%016llx) at %s is up", p->name,
	          (unsigned long long)p->node, p->addr);
	skald__net_notify(net, p, 1, 0);
}

void skald__net_peer_down(skald__net_t *net, skald__peer_t *p, int reason)
{
	atomic_store(&p->up, 0);
	p->conn = NULL;
	SKALD_LOG(SKALD_LOG_INFO, "node %s (%016llx) is down: %s", p->name,
	          (unsigned long long)p->node, skald_strerror(reason));
	/* Every local actor watching an actor of that node hears of it now. */
	for (size_t i = 0; i < p->nwatches; i++)
		skald__down_send(net->sys, p->watches[i].watcher, p->watches[i].target,
		                 SKALD_ENODEDOWN);
	p->nwatches = 0;
	skald__net_notify(net, p, 0, reason);
}

static void watch_add(skald__peer_t *p, skald_ref_t watcher, skald_ref_t target)
{
	for (size_t i = 0; i < p->nwatches; i++)
		if (skald_ref_eq(p->watches[i].watcher, watcher) &&
		    skald_ref_eq(p->watches[i].target, target))
			return;
	if (p->nwatches == p->capwatches) {
		size_t cap = p->capwatches ? p->capwatches * 2 : 8;
		skald__rwatch_t *v = realloc(p->watches, cap * sizeof *v);
		if (v == NULL)
			return;
		p->watches = v;
		p->capwatches = cap;
	}
	p->watches[p->nwatches++] = (skald__rwatch_t){watcher, target};
}

static void watch_del(skald__peer_t *p, skald_ref_t watcher, skald_ref_t target)
{
	for (size_t i = 0; i < p->nwatches; i++) {
		if (skald_ref_eq(p->watches[i].watcher, watcher) &&
		    skald_ref_eq(p->watches[i].target, target)) {
			p->watches[i] = p->watches[--p->nwatches];
			return;
		}
	}
}

/* ------------------------------------------------------------------------ */
/* The send path (any thread)                                                */

skald__cmd_t *skald__frame_new(uint8_t kind, skald_ref_t src, skald_ref_t dst, uint32_t type,
                               int32_t arg, uint64_t corr, const void *payload, size_t len)
{
	skald__cmd_t *c = malloc(sizeof *c + SKALD_WIRE_HEADER + len);
	if (c == NULL)
		return NULL;
	memset(c, 0, sizeof *c);
	c->op = CMD_SEND;
	c->kind = kind;
	c->src = src;
	c->dst = dst;
	c->corr = corr;
	c->len = SKALD_WIRE_HEADER + len;
	skald__wire_hdr_t h = {
	        0,    kind, 0,   src.actor, src.incarnation, dst.actor, dst.incarnation,
	        type, arg,  corr};
	skald__wire_put_hdr(c->data, &h, len);
	if (len > 0)
		memcpy(c->data + SKALD_WIRE_HEADER, payload, len);
	return c;
}

void skald__net_post(skald__net_t *net, skald__cmd_t *c)
{
	skald__mpsc_push(&net->inbox, &c->node);
	/* The same handshake as the schedulers': push, then look at the flag
	 * the network thread sets before it blocks (and rechecks after). */
	if (atomic_load(&net->sleeping))
		uv_async_send(&net->wake);
}

/* The transport's send (actors/transport.h): to is an actor of another
 * node; any thread. */
static int tcp_send(void *ctx, skald_ref_t to, skald__env_t *e)
{
	skald__net_t *net = ctx;
	skald_system_t *sys = net->sys;
	skald__peer_t *p = skald__peer_find(net, to.node);
	if (p == NULL || !atomic_load(&p->up)) {
		skald__env_dispose(sys, to, e, SKALD_ENODEDOWN);
		return 0;
	}
	if (atomic_load(&p->cut)) {
		skald__env_free(e); /* the fault hook: lost on the way */
		return 0;
	}
	uint8_t kind;
	switch (e->kind) {
	case ENV_USER:
		kind = SKALD_WIRE_TELL;
		break;
	case ENV_REPLY:
		kind = SKALD_WIRE_REPLY;
		break;
	case ENV_ASK_FAIL:
		kind = SKALD_WIRE_ASK_FAIL;
		break;
	case ENV_WATCH:
		kind = SKALD_WIRE_WATCH;
		break;
	case ENV_UNWATCH:
		kind = SKALD_WIRE_UNWATCH;
		break;
	case ENV_DOWN:
		kind = SKALD_WIRE_DOWN;
		break;
	case ENV_STOP:
		kind = SKALD_WIRE_STOP;
		break;
	default:
		/* Supervision never crosses nodes: children are local. */
		skald__env_dispose(sys, to, e, SKALD_ENOACTOR);
		return 0;
	}
	void *buf = NULL;
	size_t len = 0;
	if (kind == SKALD_WIRE_TELL || kind == SKALD_WIRE_REPLY) {
		const skald_msgtype_t *t = skald_type_get(e->type);
		int rc = t != NULL ? skald__type_encode(t, e->payload, &buf, &len) : SKALD_ENOCODEC;
		if (rc < 0)
			return rc;
	}
	if (SKALD_WIRE_HEADER + len > net->max_frame) {
		free(buf);
		return SKALD_EPROTO;
	}
	/* A sender that is not a local actor (outside code, or a third node's
	 * actor) travels as "no sender". */
	skald_ref_t src = e->sender.node == sys->node ? e->sender : SKALD_REF_NULL;
	skald__cmd_t *c =
	        skald__frame_new(kind, src, to, e->type, (int32_t)e->arg, e->corr, buf, len);
	free(buf);
	if (c == NULL)
		return SKALD_ENOMEM;
	size_t size = c->len;
	if (atomic_fetch_add(&p->queued, size) + size > net->max_queue) {
		atomic_fetch_sub(&p->queued, size);
		free(c);
		return SKALD_EQUEUEFULL;
	}
	c->peer = p;
	c->account = size;
	c->local_type = (kind == SKALD_WIRE_TELL || kind == SKALD_WIRE_REPLY) ? e->type : 0;
	skald__net_post(net, c);
	/* Sent: the payload's local life ends here. */
	skald__env_free(e);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* The network thread                                                        */

int skald__net_parse_addr(const char *addr, struct sockaddr_storage *sa)
{
	struct sockaddr_storage ignored;
	if (sa == NULL)
		sa = &ignored;
	if (addr == NULL || strncmp(addr, "tcp://", 6) != 0)
		return SKALD_EINVAL;
	const char *host = addr + 6;
	const char *colon = strrchr(host, ':');
	if (colon == NULL || colon == host || colon[1] == '\0')
		return SKALD_EINVAL;
	char h[64];
	size_t hl = (size_t)(colon - host);
	if (hl >= sizeof h)
		return SKALD_EINVAL;
	memcpy(h, host, hl);
	h[hl] = '\0';
	char *end;
	long port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || port < 0 || port > 65535)
		return SKALD_EINVAL;
	if (strcmp(h, "localhost") == 0)
		snprintf(h, sizeof h, "127.0.0.1");
	if (h[0] == '[' && hl > 2 && h[hl - 1] == ']') {
		h[hl - 1] = '\0';
		return uv_ip6_addr(h + 1, (int)port, (struct sockaddr_in6 *)sa) == 0 ? 0
		                                                                     : SKALD_EINVAL;
	}
	return uv_ip4_addr(h, (int)port, (struct sockaddr_in *)sa) == 0 ? 0 : SKALD_EINVAL;
}

static skald__target_t *target_find(skald__net_t *net, const char *addr)
{
	for (skald__target_t *t = net->targets; t != NULL; t = t->next)
		if (strcmp(t->addr, addr) == 0)
			return t;
	return NULL;
}

static skald__target_t *target_get(skald__net_t *net, const char *addr, bool on_demand)
{
	skald__target_t *t = target_find(net, addr);
	if (t != NULL) {
		if (!on_demand && t->on_demand) {
			/* Asked for by the application now: keep it connected. */
			t->on_demand = false;
			if (t->conn == NULL)
				skald__conn_connect(t);
		}
		return t;
	}
	t = calloc(1, sizeof *t);
	if (t == NULL)
		return NULL;
	if (skald__net_parse_addr(addr, &t->sa) < 0) {
		free(t);
		return NULL;
	}
	snprintf(t->addr, sizeof t->addr, "%s", addr);
	t->net = net;
	t->on_demand = on_demand;
	t->backoff_ms = 100;
	uv_timer_init(&net->loop, &t->retry);
	t->retry.data = t;
	/* Other threads read the list (node_at) under mlock. */
	uv_mutex_lock(&net->mlock);
	t->next = net->targets;
	net->targets = t;
	uv_mutex_unlock(&net->mlock);
	skald__conn_connect(t);
	return t;
}

static void sync_done(skald__sync_t *s, int status, int port)
{
	uv_mutex_lock(&s->m);
	s->status = status;
	s->port = port;
	s->done = true;
	uv_cond_signal(&s->c);
	uv_mutex_unlock(&s->m);
}

/* The first listener on a concrete host is where this node can be reached,
 * unless the cluster was told otherwise: HELLO carries it. */
static void advertise(skald__net_t *net, const char *addr, int port)
{
	if (net->advertised[0] != '\0')
		return;
	const char *host = addr + 6; /* skald__net_parse_addr checked "tcp://" */
	size_t hl = (size_t)(strrchr(host, ':') - host);
	if ((hl == 7 && strncmp(host, "0.0.0.0", 7) == 0) ||
	    (hl == 4 && strncmp(host, "[::]", 4) == 0))
		return;
	snprintf(net->advertised, sizeof net->advertised, "tcp://%.*s:%d", (int)hl, host, port);
}

static void do_listen(skald__net_t *net, skald__cmd_t *c)
{
	struct sockaddr_storage sa;
	int rc = skald__net_parse_addr(c->addr, &sa);
	if (rc < 0 || net->nlisteners == sizeof net->listeners / sizeof net->listeners[0]) {
		sync_done(c->sync, rc < 0 ? rc : SKALD_ETOOMANY, 0);
		return;
	}
	uv_tcp_t *l = calloc(1, sizeof *l);
	if (l == NULL) {
		sync_done(c->sync, SKALD_ENOMEM, 0);
		return;
	}
	uv_tcp_init(&net->loop, l);
	l->data = net;
	rc = uv_tcp_bind(l, (struct sockaddr *)&sa, 0);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)l, 128, skald__conn_accept);
	int port = 0;
	if (rc == 0) {
		struct sockaddr_storage bound;
		int len = sizeof bound;
		uv_tcp_getsockname(l, (struct sockaddr *)&bound, &len);
		port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
		net->listeners[net->nlisteners++] = l;
		advertise(net, c->addr, port);
	} else {
		uv_close((uv_handle_t *)l, (uv_close_cb)free);
	}
	sync_done(c->sync, rc, port);
}

static void do_send(skald__net_t *net, skald__cmd_t *c)
{
	skald__peer_t *p = c->peer;
	if (p->conn == NULL || p->conn->state != CONN_ACTIVE) {
		/* The node went down after the sender looked: what a dead
		 * letter would do, on this side. */
		atomic_fetch_sub(&p->queued, c->account);
		if (c->kind == SKALD_WIRE_TELL && c->corr != 0 && !skald_ref_is_null(c->src)) {
			skald__env_t *f = skald__env_new(ENV_ASK_FAIL, 0, c->dst, NULL);
			if (f != NULL) {
				f->corr = c->corr;
				f->arg = SKALD_ENODEDOWN;
				skald__send(net->sys, c->src, f);
			}
		} else if (c->kind == SKALD_WIRE_WATCH) {
			skald__down_send(net->sys, c->src, c->dst, SKALD_ENODEDOWN);
		}
		free(c);
		return;
	}
	if (c->kind == SKALD_WIRE_WATCH)
		watch_add(p, c->src, c->dst);
	else if (c->kind == SKALD_WIRE_UNWATCH)
		watch_del(p, c->src, c->dst);
	skald__conn_queue(p->conn, c);
}

static void do_lookup(skald__net_t *net, skald__cmd_t *c)
{
	skald__target_t *t = target_get(net, c->addr, false);
	if (t == NULL) {
		free(c->addr);
		free(c->name);
		free(c);
		return; /* the asker times out; the address was checked already */
	}
	c->next = t->lookups;
	t->lookups = c;
	if (t->node != 0)
		skald__target_lookups_flush(t);
}

static void shutdown_net(skald__net_t *net)
{
	net->stopping = true;
	if (net->hooks != NULL && net->hooks->close != NULL)
		net->hooks->close(net->hooks_ctx);
	uv_timer_stop(&net->heartbeat);
	uv_close((uv_handle_t *)&net->heartbeat, NULL);
	for (unsigned i = 0; i < net->nlisteners; i++)
		uv_close((uv_handle_t *)net->listeners[i], (uv_close_cb)free);
	net->nlisteners = 0;
	while (net->conns != NULL)
		skald__conn_close(net->conns, SKALD_ESTOPPING, "the system is stopping");
	for (skald__target_t *t = net->targets; t != NULL; t = t->next) {
		uv_timer_stop(&t->retry);
		uv_close((uv_handle_t *)&t->retry, NULL);
	}
	uv_close((uv_handle_t *)&net->wake, NULL);
}

static void wake_cb(uv_async_t *h)
{
	skald__net_t *net = h->data;
	skald__mpsc_node_t *n;
	net->activity++;
	for (;;) {
		n = skald__mpsc_pop(&net->inbox);
		if (n == NULL) {
			if (skald__mpsc_empty(&net->inbox))
				break;
			continue; /* a producer is mid-push: it finishes at once */
		}
		skald__cmd_t *c = (skald__cmd_t *)n;
		switch (c->op) {
		case CMD_SEND:
			if (net->stopping) {
				atomic_fetch_sub(&c->peer->queued, c->account);
				free(c);
			} else {
				do_send(net, c);
			}
			break;
		case CMD_CONNECT:
			if (!net->stopping)
				target_get(net, c->addr, false);
			free(c->addr);
			free(c);
			break;
		case CMD_LISTEN:
			do_listen(net, c);
			free(c->addr);
			free(c);
			break;
		case CMD_LOOKUP:
			if (net->stopping) {
				free(c->addr);
				free(c->name);
				free(c);
			} else {
				do_lookup(net, c);
			}
			break;
		case CMD_CALL:
			c->fn(net, c->arg);
			free(c);
			break;
		case CMD_STOP:
			free(c);
			shutdown_net(net);
			return;
		}
	}
	skald__conn_flush_dirty(net);
}

/* How long the network thread keeps polling after its last event before it
 * blocks in the kernel: a reply that comes back within it (a round trip on
 * a LAN or loopback) costs no wake-up. Erlang's schedulers do the same. */
#define NET_SPIN_NS 200000

static void net_main(void *arg)
{
	skald__net_t *net = arg;
	int alive = 1;
	while (alive) {
		uint64_t last = uv_hrtime();
		do {
			unsigned before = net->activity;
			alive = uv_run(&net->loop, UV_RUN_NOWAIT);
			if (alive && !skald__mpsc_empty(&net->inbox))
				wake_cb(&net->wake);
			else
				sched_yield();
			if (net->activity != before)
				last = uv_hrtime();
		} while (alive && !net->stopping && uv_hrtime() - last < NET_SPIN_NS);
		if (!alive)
			break;
		atomic_store(&net->sleeping, 1);
		if (!skald__mpsc_empty(&net->inbox)) {
			atomic_store(&net->sleeping, 0);
			continue;
		}
		alive = uv_run(&net->loop, UV_RUN_ONCE);
		atomic_store(&net->sleeping, 0);
	}
	/* Free what the closed handles left behind. */
	while (net->targets != NULL) {
		skald__target_t *t = net->targets;
		net->targets = t->next;
		while (t->lookups != NULL) {
			skald__cmd_t *c = t->lookups;
			t->lookups = c->next;
			free(c->addr);
			free(c->name);
			free(c);
		}
		while (t->pending != NULL) {
			skald__cmd_t *c = t->pending;
			t->pending = c->next;
			free(c);
		}
		free(t);
	}
	/* Commands posted while stopping. */
	skald__mpsc_node_t *n;
	while ((n = skald__mpsc_pop(&net->inbox)) != NULL) {
		skald__cmd_t *c = (skald__cmd_t *)n;
		if (c->sync != NULL)
			sync_done(c->sync, SKALD_ESTOPPING, 0);
		if (c->op == CMD_CALL)
			c->fn(net, c->arg); /* sees net->stopping: frees arg */
		if (c->op == CMD_SEND)
			atomic_fetch_sub(&c->peer->queued, c->account);
		free(c->addr);
		free(c->name);
		free(c);
	}
	if (uv_loop_close(&net->loop) != 0)
		SKALD_LOG(SKALD_LOG_ERROR, "network loop closed with handles open");
}

static void tcp_stop(void *ctx);

/* The network layer as the runtime sees it. */
static const skald__transport_t tcp_transport = {
        .name = "tcp",
        .send = tcp_send,
        .stop = tcp_stop,
};

/* Node events (SKALD_TYPE_NODE), which never cross the wire. */
static const skald_msgtype_t node_type = {
        .name = "skald.node",
        .free = free,
};

int skald_remote_start(skald_system_t *sys, const skald_remote_config_t *cfg)
{
	if (sys == NULL || cfg == NULL || cfg->secret == NULL || cfg->secret[0] == '\0' ||
	    skald__net_of(sys) != NULL)
		return SKALD_EINVAL;
	int rc = skald__type_install(SKALD_TYPE_NODE, &node_type);
	if (rc < 0)
		return rc;
	const char *cluster = cfg->cluster ? cfg->cluster : "skald";
	if (strlen(cluster) > SKALD_WIRE_NAME_MAX || cluster[0] == '\0' ||
	    strlen(sys->name) > SKALD_WIRE_NAME_MAX)
		return SKALD_EINVAL;
	/* A peer that closes while we write would otherwise kill the process
	 * with SIGPIPE; the write's error closes that connection instead. An
	 * application that installed its own handler keeps it. */
	struct sigaction old;
	if (sigaction(SIGPIPE, NULL, &old) == 0 && old.sa_handler == SIG_DFL)
		signal(SIGPIPE, SIG_IGN);
	skald__net_t *net = calloc(1, sizeof *net);
	if (net == NULL)
		return SKALD_ENOMEM;
	net->sys = sys;
	net->cluster = strdup(cluster);
	net->secret = strdup(cfg->secret);
	net->heartbeat_ms = cfg->heartbeat_ms ? cfg->heartbeat_ms : DEFAULT_HEARTBEAT_MS;
	net->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : DEFAULT_TIMEOUT_MS;
	net->max_frame = cfg->max_frame ? cfg->max_frame : DEFAULT_MAX_FRAME;
	net->max_queue = cfg->max_queue ? cfg->max_queue : DEFAULT_MAX_QUEUE;
	net->npslots = 256;
	net->pslots = calloc(net->npslots, sizeof *net->pslots);
	if (net->cluster == NULL || net->secret == NULL || net->pslots == NULL) {
		free(net->cluster);
		free(net->secret);
		free(net->pslots);
		free(net);
		return SKALD_ENOMEM;
	}
	skald__mpsc_init(&net->inbox);
	uv_rwlock_init(&net->plock);
	uv_mutex_init(&net->mlock);
	uv_cond_init(&net->mcond);
	uv_loop_init(&net->loop);
	uv_async_init(&net->loop, &net->wake, wake_cb);
	net->wake.data = net;
	uv_timer_init(&net->loop, &net->heartbeat);
	net->heartbeat.data = net;
	uv_timer_start(&net->heartbeat, skald__conn_heartbeat, net->heartbeat_ms / 2 + 1,
	               net->heartbeat_ms / 2 + 1);
	rc = skald__registry_start(sys, net);
	if (rc == 0)
		rc = uv_thread_create(&net->tid, net_main, net);
	if (rc < 0) {
		SKALD_LOG(SKALD_LOG_ERROR, "cannot start the network: %s", skald_strerror(rc));
		abort(); /* loops and threads fail only without memory */
	}
	/* Installed last, so that no caller sees a network that is not
	 * running. A second start racing with this one loses here. */
	if (skald__transport_install(sys, &tcp_transport, net) < 0) {
		tcp_stop(net);
		return SKALD_EINVAL;
	}
	return 0;
}

skald__net_t *skald__net_of(const skald_system_t *sys)
{
	return skald__transport_ctx(sys, &tcp_transport);
}

/* The transport's stop (actors/transport.h): after the schedulers are
 * joined. */
static void tcp_stop(void *ctx)
{
	skald__net_t *net = ctx;
	skald__cmd_t *c = calloc(1, sizeof *c);
	if (c == NULL)
		abort();
	c->op = CMD_STOP;
	skald__net_post(net, c);
	uv_thread_join(&net->tid);
	for (size_t i = 0; i < net->npslots; i++) {
		while (net->pslots[i] != NULL) {
			skald__peer_t *p = net->pslots[i];
			net->pslots[i] = p->next;
			free(p->watches);
			free(p);
		}
	}
	free(net->pslots);
	skald__refset_fini(&net->monitors);
	uv_rwlock_destroy(&net->plock);
	uv_cond_destroy(&net->mcond);
	uv_mutex_destroy(&net->mlock);
	free(net->cluster);
	free(net->secret);
	free(net);
}

static skald__cmd_t *cmd_new(int op, const char *addr)
{
	skald__cmd_t *c = calloc(1, sizeof *c);
	if (c == NULL)
		return NULL;
	c->op = op;
	if (addr != NULL && (c->addr = strdup(addr)) == NULL) {
		free(c);
		return NULL;
	}
	return c;
}

/* sys's network and addr parsed into sa, or why not, said in the log with
 * what to do: SKALD_ENONET (skald_remote_start not called), SKALD_EADDR. */
static int net_addr(skald_system_t *sys, const char *fn, const char *addr, skald__net_t **net,
                    struct sockaddr_storage *sa)
{
	*net = skald__net_of(sys);
	if (*net == NULL) {
		SKALD_LOG(SKALD_LOG_WARN,
		          "%s: the network of this system is not started: call "
		          "skald_remote_start first",
		          fn);
		return SKALD_ENONET;
	}
	if (skald__net_parse_addr(addr, sa) < 0) {
		SKALD_LOG(SKALD_LOG_WARN,
		          "%s: \"%.64s\" is not a node address: write "
		          "tcp://HOST:PORT (an IPv4 address, [IPv6] or localhost)",
		          fn, addr != NULL ? addr : "(null)");
		return SKALD_EADDR;
	}
	return 0;
}

int skald_listen(skald_system_t *sys, const char *addr, int *port)
{
	struct sockaddr_storage sa;
	skald__net_t *net;
	int rc = net_addr(sys, "skald_listen", addr, &net, &sa);
	if (rc < 0)
		return rc;
	if (skald__current != NULL)
		return SKALD_ENOTOWNER;
	skald__sync_t s = {.done = false};
	uv_mutex_init(&s.m);
	uv_cond_init(&s.c);
	skald__cmd_t *c = cmd_new(CMD_LISTEN, addr);
	if (c == NULL)
		return SKALD_ENOMEM;
	c->sync = &s;
	skald__net_post(net, c);
	uv_mutex_lock(&s.m);
	while (!s.done)
		uv_cond_wait(&s.c, &s.m);
	uv_mutex_unlock(&s.m);
	uv_cond_destroy(&s.c);
	uv_mutex_destroy(&s.m);
	if (s.status == 0 && port != NULL)
		*port = s.port;
	return s.status;
}

int skald_connect(skald_system_t *sys, const char *addr)
{
	struct sockaddr_storage sa;
	skald__net_t *net;
	int rc = net_addr(sys, "skald_connect", addr, &net, &sa);
	if (rc < 0)
		return rc;
	skald__cmd_t *c = cmd_new(CMD_CONNECT, addr);
	if (c == NULL)
		return SKALD_ENOMEM;
	skald__net_post(net, c);
	return 0;
}

/* The node id authenticated at addr, or 0. Takes mlock. */
static uint64_t node_at(skald__net_t *net, const char *addr)
{
	/* Targets belong to the network thread; their `node` is written under
	 * mlock, so reading it under mlock is safe. */
	uint64_t node = 0;
	for (skald__target_t *t = net->targets; t != NULL; t = t->next)
		if (strcmp(t->addr, addr) == 0)
			node = t->node;
	return node;
}

/* Why the last attempt to reach addr failed, or 0. Under mlock. */
static int last_err_at(skald__net_t *net, const char *addr)
{
	for (skald__target_t *t = net->targets; t != NULL; t = t->next)
		if (strcmp(t->addr, addr) == 0)
			return t->last_err;
	return 0;
}

int skald_node_wait(skald_system_t *sys, const char *addr, uint64_t timeout_ms, uint64_t *node)
{
	if (skald__current != NULL)
		return SKALD_ENOTOWNER;
	int rc = skald_connect(sys, addr);
	if (rc < 0)
		return rc;
	skald__net_t *net = skald__net_of(sys);
	uint64_t deadline = uv_hrtime() + timeout_ms * 1000000ull;
	uint64_t found = 0;
	int err = 0;
	uv_mutex_lock(&net->mlock);
	for (;;) {
		found = node_at(net, addr);
		if (found != 0) {
			skald__peer_t *p = skald__peer_find(net, found);
			if (p != NULL && atomic_load(&p->up))
				break;
			found = 0;
		}
		/* A refused handshake will be refused again: no use waiting. */
		err = last_err_at(net, addr);
		if (err == SKALD_EAUTH || err == SKALD_ECLUSTER || err == SKALD_EVERSION)
			break;
		uint64_t now = uv_hrtime();
		if (now >= deadline)
			break;
		uv_cond_timedwait(&net->mcond, &net->mlock, deadline - now);
	}
	uv_mutex_unlock(&net->mlock);
	if (found == 0)
		return err < 0 ? err : SKALD_ETIMEDOUT;
	if (node != NULL)
		*node = found;
	return 0;
}

int skald_monitor_nodes(skald_actor_t *self)
{
	skald__net_t *net = self != NULL ? skald__net_of(self->thread->sys) : NULL;
	if (net == NULL)
		return SKALD_EINVAL;
	uv_mutex_lock(&net->mlock);
	int rc = skald__refset_add(&net->monitors, self->ref);
	uv_mutex_unlock(&net->mlock);
	return rc;
}

int skald_unmonitor_nodes(skald_actor_t *self)
{
	skald__net_t *net = self != NULL ? skald__net_of(self->thread->sys) : NULL;
	if (net == NULL)
		return SKALD_EINVAL;
	uv_mutex_lock(&net->mlock);
	skald__refset_del(&net->monitors, self->ref);
	uv_mutex_unlock(&net->mlock);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* The cluster's side (actors/cluster/node.c)                                */

int skald__net_call(skald__net_t *net, void (*fn)(skald__net_t *net, void *arg), void *arg)
{
	skald__cmd_t *c = cmd_new(CMD_CALL, NULL);
	if (c == NULL)
		return SKALD_ENOMEM;
	c->fn = fn;
	c->arg = arg;
	skald__net_post(net, c);
	return 0;
}

#define MAX_PENDING 64u

void skald__net_cluster_send(skald__net_t *net, uint64_t node, const char *addr, const uint8_t *buf,
                             size_t len)
{
	if (net->stopping || net->isolated || SKALD_WIRE_HEADER + len > net->max_frame)
		return;
	skald__peer_t *p = node != 0 ? skald__peer_find(net, node) : NULL;
	if (p != NULL && atomic_load(&p->cut))
		return;
	skald__cmd_t *f = skald__frame_new(SKALD_WIRE_CLUSTER, SKALD_REF_NULL, SKALD_REF_NULL, 0, 0,
	                                   0, buf, len);
	if (f == NULL)
		return;
	if (p != NULL && p->conn != NULL && p->conn->state == CONN_ACTIVE) {
		skald__conn_queue(p->conn, f);
		return; /* written when the network thread next flushes */
	}
	skald__target_t *t = addr != NULL && addr[0] != '\0' ? target_get(net, addr, true) : NULL;
	if (t == NULL || t->npending >= MAX_PENDING) {
		free(f);
		return;
	}
	if (node != 0)
		t->expect = node;
	f->next = NULL;
	if (t->pending_tail != NULL)
		t->pending_tail->next = f;
	else
		t->pending = f;
	t->pending_tail = f;
	t->npending++;
	if (t->conn == NULL) {
		/* A connect now, not at the next retry: a refusal is news. */
		uv_timer_stop(&t->retry);
		skald__conn_connect(t);
	} else {
		skald__target_pending_flush(t);
	}
}

void skald__net_cluster_connect(skald__net_t *net, uint64_t node, const char *addr)
{
	if (net->stopping || net->isolated || addr == NULL || addr[0] == '\0')
		return;
	skald__peer_t *p = skald__peer_find(net, node);
	if (p != NULL && (p->banned || p->conn != NULL))
		return;
	skald__target_t *t = target_find(net, addr);
	if (t != NULL && t->conn != NULL)
		return;
	if (t == NULL && (t = target_get(net, addr, true)) == NULL)
		return; /* target_get connects a new target */
	t->expect = node;
	if (t->conn == NULL) {
		uv_timer_stop(&t->retry);
		skald__conn_connect(t);
	}
}

void skald__net_ban(skald__net_t *net, uint64_t node, int close_now)
{
	skald__peer_t *p = skald__peer_get(net, node);
	if (p == NULL || p->banned)
		return;
	p->banned = true;
	for (skald__target_t *t = net->targets; t != NULL; t = t->next) {
		if (t->node == node || t->expect == node) {
			/* Never reconnect to it on a timer: its address may come
			 * back as a new node, which the cluster reaches on demand. */
			t->on_demand = true;
			uv_timer_stop(&t->retry);
		}
	}
	if (p->conn != NULL) {
		skald__conn_t *c = p->conn;
		if (close_now) {
			skald__conn_close(c, SKALD_ENODEDOWN, "declared down by the cluster");
		} else {
			c->banned = true;
			if (atomic_load(&p->up))
				skald__net_peer_down(net, p, SKALD_ENODEDOWN);
			p->conn = c; /* still carries its CLUSTER frames */
		}
	}
}

void skald__net_isolate(skald__net_t *net)
{
	net->isolated = true;
	while (net->conns != NULL)
		skald__conn_close(net->conns, SKALD_ENODEDOWN, "this node was declared down");
	for (skald__target_t *t = net->targets; t != NULL; t = t->next) {
		uv_timer_stop(&t->retry);
		t->on_demand = true;
	}
}

/* ------------------------------------------------------------------------ */
/* Lookups                                                                   */

typedef struct {
	skald_lookup_fn cb;
	void *arg;
} lookup_ctx_t;

static void lookup_reply(skald_actor_t *self, void *state, int status, skald_msg_t *reply,
                         void *arg)
{
	lookup_ctx_t ctx = *(lookup_ctx_t *)arg;
	free(arg);
	skald_ref_t ref = SKALD_REF_NULL;
	if (status == 0) {
		if (reply->type != skald__t_lookup_reply || reply->payload == NULL)
			status = SKALD_EPROTO;
		else if (skald_ref_is_null(ref = *(skald_ref_t *)reply->payload))
			status = SKALD_ENOTFOUND;
	}
	ctx.cb(self, state, status, ref, ctx.arg);
}

int skald_lookup_node(skald_actor_t *self, uint64_t node, const char *name, uint64_t timeout_ms,
                      skald_lookup_fn cb, void *arg)
{
	skald__net_t *net = self != NULL ? skald__net_of(self->thread->sys) : NULL;
	if (net == NULL || cb == NULL || name == NULL || name[0] == '\0' || strlen(name) > 1024)
		return SKALD_EINVAL;
	skald__peer_t *p = skald__peer_find(net, node);
	if (p == NULL || !atomic_load(&p->up))
		return SKALD_ENODEDOWN;
	lookup_ctx_t *ctx = malloc(sizeof *ctx);
	char *q = strdup(name);
	if (ctx == NULL || q == NULL) {
		free(ctx);
		free(q);
		return SKALD_ENOMEM;
	}
	ctx->cb = cb;
	ctx->arg = arg;
	/* The registry's reference came with the peer's HELLO; the ask rides
	 * the connection the node already has. */
	int rc = skald_ask(self, p->registry, skald__t_lookup, q, timeout_ms, lookup_reply, ctx);
	if (rc < 0) {
		free(ctx);
		free(q);
	}
	return rc;
}

int skald_lookup(skald_actor_t *self, const char *addr, const char *name, uint64_t timeout_ms,
                 skald_lookup_fn cb, void *arg)
{
	struct sockaddr_storage sa;
	skald__net_t *net;
	if (self == NULL || cb == NULL || name == NULL || name[0] == '\0')
		return SKALD_EINVAL;
	int rc = net_addr(self->thread->sys, "skald_lookup", addr, &net, &sa);
	if (rc < 0)
		return rc;
	lookup_ctx_t *ctx = malloc(sizeof *ctx);
	skald__cmd_t *c = cmd_new(CMD_LOOKUP, addr);
	if (ctx == NULL || c == NULL || (c->name = strdup(name)) == NULL) {
		free(ctx);
		if (c != NULL)
			free(c->addr);
		free(c);
		return SKALD_ENOMEM;
	}
	ctx->cb = cb;
	ctx->arg = arg;
	uint64_t corr;
	rc = skald__ask_pending(self, timeout_ms, lookup_reply, ctx, &corr);
	if (rc < 0) {
		free(ctx);
		free(c->addr);
		free(c->name);
		free(c);
		return rc;
	}
	c->src = self->ref;
	c->corr = corr;
	skald__net_post(net, c);
	return 0;
}

typedef struct cut_s {
	uint64_t node;
	bool cut;
} cut_t;

static void cut_on_net(skald__net_t *net, void *arg)
{
	cut_t *c = arg;
	skald__peer_t *p = net->stopping ? NULL : skald__peer_get(net, c->node);
	if (p != NULL)
		atomic_store(&p->cut, c->cut);
	free(c);
}

int skald__net_fault_cut(skald_system_t *sys, uint64_t node, bool cut)
{
	skald__net_t *net = skald__net_of(sys);
	if (net == NULL || node == 0)
		return SKALD_EINVAL;
	cut_t *c = malloc(sizeof *c);
	if (c == NULL)
		return SKALD_ENOMEM;
	*c = (cut_t){node, cut};
	int rc = skald__net_call(net, cut_on_net, c);
	if (rc < 0)
		free(c);
	return rc;
}
