/*
 * actors/cluster/node.c - the membership logic bound to the network, and
 * the public API of skald/cluster.h.
 *
 * The logic object (skald__cl_t) lives on the network thread: every input
 * reaches it there, from the network's hooks (a CLUSTER frame, a lost
 * connection, a refused handshake), from one uv timer armed at
 * skald__cl_next_deadline(), and from commands that other threads post
 * (start, leave, subscribe). Its outputs are CLUSTER frames, sent through
 * the network (by node id, or by address, connecting on demand), and
 * member events. The events are collected while a call into the logic runs
 * (its callbacks must not call back into it) and handled after it returns:
 * sent to subscribers, published in the snapshot other threads read under
 * `lock`, and acted upon (a downed node is banned from the network; this
 * node, when downed, isolates itself).
 */
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/cluster/cluster_int.h"
#include "actors/cluster/leave.h"
#include "actors/cluster/reg.h"
#include "actors/remote/remote_int.h"
#include "skald/cluster.h"

#define WHY_MAX         192
#define MAX_SUBSCRIBERS 1024
#define MAX_RESETS      64
#define DNS_RETRY_MS    500
#define DNS_RETRY_MAX   5000

typedef struct seed_s {
	char spec[SKALD__CL_ADDR_MAX + 1]; /* as configured */
	int dns;                           /* dns://NAME:PORT */
	char host[256];
	char port[8];
	char **resolved; /* dns: tcp:// addresses of the last resolution */
	size_t nresolved;
	/* Under lock: the last failure seen with it (0: none). */
	int err;
	int refused; /* err is a handshake refusal */
	char why[WHY_MAX];
} seed_t;

typedef struct pending_ev_s {
	skald__cl_event_t ev;
	skald__cl_rec_t rec;
	int reason;
} pending_ev_t;

typedef struct binding_s {
	skald__net_t *net;
	skald_system_t *sys;
	skald__cl_t *cl;
	skald__reg_t *reg; /* the registry of names and groups (reg.h) */
	uint64_t self;
	seed_t *seeds;
	size_t nseeds;
	char addr[SKALD__CL_ADDR_MAX + 1];

	/* Network thread only. */
	uv_timer_t timer, dns_timer;
	uv_getaddrinfo_t gai;
	int gai_busy;
	size_t dns_next;
	unsigned dns_delay;
	int joined;  /* skald__cl_join called */
	int handles; /* open handles and requests; freed at 0 once closing */
	int closing;
	int in_logic, draining;
	pending_ev_t *evq;
	size_t nev, capev;
	uint64_t resets[MAX_RESETS];
	size_t nresets;
	skald__refset_t subs;

	/* Published for other threads, under lock. */
	uv_mutex_t lock;
	uv_cond_t cond;
	skald_member_t me;
	skald_member_t *up; /* age order */
	size_t nup;
	uint64_t published; /* the digest of the view published (network thread) */
	_Atomic uint64_t msgs_sent, bytes_sent, msgs_received, bytes_received;
	int final_err; /* this node can never be up again: its reason */
	char final_why[WHY_MAX];
} binding_t;

static const char *const status_names[] = {"?", "joining", "up", "leaving", "down", "removed"};

const char *skald_member_status_name(skald_member_status_t status)
{
	return status >= SKALD_MEMBER_JOINING && status <= SKALD_MEMBER_REMOVED
	               ? status_names[status]
	               : status_names[0];
}

static void member_of(const skald__cl_rec_t *r, skald_member_t *m)
{
	memset(m, 0, sizeof *m);
	m->node = r->node;
	m->up_number = r->up_number;
	m->status = (skald_member_status_t)skald__cl_rec_status(r);
	m->reachable = !(r->state & SKALD__CL_SUSPECT);
	snprintf(m->addr, sizeof m->addr, "%s", r->addr);
}

static uint64_t now_of(binding_t *b)
{
	uv_update_time(&b->net->loop);
	return uv_now(&b->net->loop);
}

/* ------------------------------------------------------------------------ */
/* Member events (network thread)                                           */

static void event_free(void *payload)
{
	skald_member_event_t *ev = payload;
	if (ev != NULL)
		free(ev->members);
	free(ev);
}

/* Member events never cross the wire: no codec. */
static const skald_msgtype_t member_type = {
        .name = "skald.member",
        .free = event_free,
};

static void deliver(binding_t *b, skald_ref_t to, const skald_member_event_t *src)
{
	skald_member_event_t *ev = malloc(sizeof *ev);
	if (ev == NULL)
		return;
	*ev = *src;
	ev->members = NULL;
	if (src->nmembers > 0) {
		ev->members = malloc(src->nmembers * sizeof *ev->members);
		if (ev->members == NULL) {
			free(ev);
			return;
		}
		memcpy(ev->members, src->members, src->nmembers * sizeof *ev->members);
	}
	skald__env_t *e = skald__env_new(ENV_USER, SKALD_TYPE_MEMBER, SKALD_REF_NULL, ev);
	if (e == NULL) {
		event_free(ev);
		return;
	}
	skald__send(b->sys, to, e);
}

static void broadcast(binding_t *b, const skald_member_event_t *ev)
{
	for (uint32_t i = 0; i < b->subs.n; i++)
		deliver(b, b->subs.v[i], ev);
}

/* The view now, for a new subscriber: up members oldest first, then the
 * others that are neither down nor removed. */
static void send_current(binding_t *b, skald_ref_t to)
{
	size_t n = skald__cl_size(b->cl);
	skald_member_event_t ev = {.kind = SKALD_MEMBER_EV_CURRENT};
	ev.members = calloc(n ? n : 1, sizeof *ev.members);
	if (ev.members == NULL)
		return;
	skald__cl_rec_t *up = calloc(n ? n : 1, sizeof *up);
	if (up == NULL) {
		free(ev.members);
		return;
	}
	size_t nup = skald__cl_up_members(b->cl, up, n);
	for (size_t i = 0; i < nup && i < n; i++)
		member_of(&up[i], &ev.members[ev.nmembers++]);
	for (size_t i = 0; i < n; i++) {
		const skald__cl_rec_t *r = skald__cl_at(b->cl, i);
		skald__cl_status_t st = skald__cl_rec_status(r);
		if (st == SKALD__CL_ST_JOINING || st == SKALD__CL_ST_LEAVING)
			member_of(r, &ev.members[ev.nmembers++]);
	}
	free(up);
	deliver(b, to, &ev);
	free(ev.members);
}

/* Copies the view other threads read. */
static void publish(binding_t *b)
{
	size_t n = skald__cl_size(b->cl);
	skald__cl_rec_t *up = calloc(n ? n : 1, sizeof *up);
	skald_member_t *list = calloc(n ? n : 1, sizeof *list);
	if (up == NULL || list == NULL) {
		free(up);
		free(list);
		return;
	}
	size_t nup = skald__cl_up_members(b->cl, up, n);
	skald__cl_metrics(b->cl);
	for (size_t i = 0; i < nup; i++)
		member_of(&up[i], &list[i]);
	free(up);
	b->published = skald__cl_digest(b->cl);
	uv_mutex_lock(&b->lock);
	member_of(skald__cl_self(b->cl), &b->me);
	free(b->up);
	b->up = list;
	b->nup = nup;
	uv_cond_broadcast(&b->cond);
	uv_mutex_unlock(&b->lock);
}

static void set_final(binding_t *b, int err, const char *why)
{
	uv_mutex_lock(&b->lock);
	if (b->final_err == 0) {
		b->final_err = err;
		snprintf(b->final_why, sizeof b->final_why, "%s", why);
	}
	uv_cond_broadcast(&b->cond);
	uv_mutex_unlock(&b->lock);
}

static void handle_event(binding_t *b, const pending_ev_t *p)
{
	static const skald_member_event_kind_t kinds[] = {
	        [SKALD__CL_EV_UP] = SKALD_MEMBER_EV_UP,
	        [SKALD__CL_EV_UNREACHABLE] = SKALD_MEMBER_EV_UNREACHABLE,
	        [SKALD__CL_EV_REACHABLE] = SKALD_MEMBER_EV_REACHABLE,
	        [SKALD__CL_EV_LEFT] = SKALD_MEMBER_EV_LEFT,
	        [SKALD__CL_EV_DOWN] = SKALD_MEMBER_EV_DOWN,
	        [SKALD__CL_EV_REMOVED] = SKALD_MEMBER_EV_REMOVED,
	        [SKALD__CL_EV_REFUSED] = SKALD_MEMBER_EV_REFUSED,
	};
	skald_member_event_t ev = {.kind = kinds[p->ev], .reason = p->reason};
	member_of(&p->rec, &ev.member);
	ev.self = p->rec.node == b->self;
	const char *who = ev.self ? "this node" : "member";
	SKALD_LOG(p->ev == SKALD__CL_EV_DOWN || p->ev == SKALD__CL_EV_REFUSED ? SKALD_LOG_WARN
	                                                                      : SKALD_LOG_INFO,
	          "cluster: %s %016llx at %s: %s", who, (unsigned long long)p->rec.node,
	          p->rec.addr,
	          p->ev == SKALD__CL_EV_UP            ? "up"
	          : p->ev == SKALD__CL_EV_UNREACHABLE ? "unreachable"
	          : p->ev == SKALD__CL_EV_REACHABLE   ? "reachable"
	          : p->ev == SKALD__CL_EV_LEFT        ? "leaving"
	          : p->ev == SKALD__CL_EV_DOWN        ? "down"
	          : p->ev == SKALD__CL_EV_REMOVED     ? "removed"
	                                              : "join refused");
	if (p->ev == SKALD__CL_EV_REFUSED) {
		ev.reason = p->reason ? p->reason : SKALD_EPROTO;
		snprintf(ev.why, sizeof ev.why, "a seed refused this node's join: %s",
		         skald_strerror(ev.reason));
		set_final(b, ev.reason, ev.why);
	} else if (p->ev == SKALD__CL_EV_DOWN && ev.self) {
		ev.reason = SKALD_ENODEDOWN;
		set_final(b, SKALD_ENODEDOWN,
		          "this node was declared down by its cluster (lost by the others for "
		          "longer than the timeout, or on the minority side of a partition); "
		          "start the system again to rejoin as a new node");
		/* Traffic of this incarnation ends here. */
		skald__net_isolate(b->net);
	} else if (p->ev == SKALD__CL_EV_DOWN) {
		ev.reason = SKALD_ENODEDOWN;
		skald__net_ban(b->net, p->rec.node, 1);
	} else if (p->ev == SKALD__CL_EV_UP && !ev.self && b->self < p->rec.node) {
		/* A full mesh: messages to the actors of any member (the
		 * registry's included) need a connection, which the probes
		 * alone open only to some members. The lower node id opens
		 * it, so that two members do not both connect at once. */
		skald__net_cluster_connect(b->net, p->rec.node, p->rec.addr);
	} else if (p->ev == SKALD__CL_EV_REMOVED && ev.self) {
		set_final(b, SKALD_ESTOPPING, "this node left the cluster");
	} else if (p->ev == SKALD__CL_EV_REMOVED) {
		skald__net_ban(b->net, p->rec.node, 0);
	}
	broadcast(b, &ev);
}

static void timer_cb(uv_timer_t *t);

/* After every input: the resets that came in meanwhile, the events, the
 * snapshot, the frames, the timer. */
static void after(binding_t *b)
{
	if (b->in_logic || b->draining || b->closing)
		return;
	b->draining = 1;
	int changed = 0;
	for (;;) {
		if (b->nresets > 0 && !skald__cl_stopped(b->cl)) {
			uint64_t node = b->resets[--b->nresets];
			b->in_logic = 1;
			skald__cl_conn_reset(b->cl, node, now_of(b));
			b->in_logic = 0;
			continue;
		}
		b->nresets = 0;
		if (b->nev == 0)
			break;
		/* Handling an event may close connections, whose hooks queue
		 * more resets and events: take the queue as it is now. */
		size_t n = b->nev;
		pending_ev_t *q = malloc(n * sizeof *q);
		if (q == NULL) {
			b->nev = 0;
			break;
		}
		memcpy(q, b->evq, n * sizeof *q);
		b->nev = 0;
		for (size_t i = 0; i < n; i++)
			handle_event(b, &q[i]);
		free(q);
		changed = 1;
	}
	/* A merge can change the view without an event: an up number that
	 * converges to the smallest one given (a joiner admitted by two
	 * seeds at once). Placement and the registry read the snapshot. */
	if (changed || skald__cl_digest(b->cl) != b->published)
		publish(b);
	b->draining = 0;
	skald__conn_flush_dirty(b->net);
	uint64_t next = skald__cl_stopped(b->cl) ? UINT64_MAX : skald__cl_next_deadline(b->cl);
	if (next == UINT64_MAX) {
		uv_timer_stop(&b->timer);
		return;
	}
	uint64_t now = now_of(b);
	uv_timer_start(&b->timer, timer_cb, next > now ? next - now : 0, 0);
}

/* ------------------------------------------------------------------------ */
/* The logic's inputs (network thread)                                      */

static void timer_cb(uv_timer_t *t)
{
	binding_t *b = t->data;
	b->in_logic = 1;
	skald__cl_tick(b->cl, now_of(b));
	b->in_logic = 0;
	after(b);
}

static void on_send(void *ctx, uint64_t node, const char *addr, const uint8_t *buf, size_t len)
{
	binding_t *b = ctx;
	atomic_fetch_add(&b->msgs_sent, 1);
	atomic_fetch_add(&b->bytes_sent, SKALD_WIRE_HEADER + len);
	skald__net_cluster_send(b->net, node, addr, buf, len);
}

static void on_event(void *ctx, skald__cl_event_t ev, const skald__cl_rec_t *member, int reason)
{
	binding_t *b = ctx;
	if (b->nev == b->capev) {
		size_t cap = b->capev ? b->capev * 2 : 16;
		pending_ev_t *q = realloc(b->evq, cap * sizeof *q);
		if (q == NULL)
			return; /* the snapshot still shows the view; the event is lost */
		b->evq = q;
		b->capev = cap;
	}
	b->evq[b->nev++] = (pending_ev_t){ev, *member, reason};
}

/* The seed that addr belongs to (a tcp:// seed, or a DNS seed's result). */
static seed_t *seed_of(binding_t *b, const char *addr)
{
	if (addr == NULL)
		return NULL;
	for (size_t i = 0; i < b->nseeds; i++) {
		seed_t *s = &b->seeds[i];
		if (!s->dns && strcmp(s->spec, addr) == 0)
			return s;
		for (size_t k = 0; k < s->nresolved; k++)
			if (strcmp(s->resolved[k], addr) == 0)
				return s;
	}
	return NULL;
}

static void seed_failed(binding_t *b, seed_t *s, int err, int refused, const char *why)
{
	uv_mutex_lock(&b->lock);
	s->err = err;
	s->refused = refused;
	snprintf(s->why, sizeof s->why, "%s", why);
	uv_cond_broadcast(&b->cond);
	uv_mutex_unlock(&b->lock);
}

static void hook_frame(void *ctx, uint64_t node, const char *from_addr, const uint8_t *buf,
                       size_t len)
{
	binding_t *b = ctx;
	const char *why = NULL;
	atomic_fetch_add(&b->msgs_received, 1);
	atomic_fetch_add(&b->bytes_received, SKALD_WIRE_HEADER + len);
	b->in_logic = 1;
	int rc = skald__cl_receive(b->cl, from_addr[0] ? from_addr : NULL, buf, len, now_of(b),
	                           &why);
	b->in_logic = 0;
	if (rc < 0)
		SKALD_LOG(SKALD_LOG_WARN, "cluster: message from node %016llx dropped: %s",
		          (unsigned long long)node, why ? why : skald_strerror(rc));
	after(b);
}

static void hook_lost(void *ctx, uint64_t node, const char *addr, int reason)
{
	binding_t *b = ctx;
	/* While joining, a seed that cannot be reached is what the caller of
	 * skald_cluster_wait() needs to hear. */
	seed_t *s = skald__cl_self(b->cl)->up_number == 0 ? seed_of(b, addr) : NULL;
	if (s != NULL) {
		char why[WHY_MAX];
		snprintf(why, sizeof why, "seed %s: %s", addr, uv_strerror(reason));
		seed_failed(b, s, reason, 0, why);
	}
	/* Only a reset or a refusal is the sign of a dead process; a connect
	 * that times out may be a slow network, which the probes judge. */
	int reset = reason == UV_EOF || reason == UV_ECONNRESET || reason == UV_ECONNREFUSED ||
	            reason == UV_EPIPE || reason == UV_ECONNABORTED;
	if (reset && node != 0 && node != b->self && b->nresets < MAX_RESETS)
		b->resets[b->nresets++] = node;
	after(b);
}

static void hook_refused(void *ctx, const char *addr, uint64_t node, int reason, const char *why,
                         int by_peer)
{
	binding_t *b = ctx;
	skald_member_event_t ev = {.kind = SKALD_MEMBER_EV_REFUSED, .reason = reason};
	ev.member.node = node;
	snprintf(ev.member.addr, sizeof ev.member.addr, "%s", addr);
	if (by_peer)
		snprintf(ev.why, sizeof ev.why, "the node at %s refused this node: %s", addr, why);
	else
		snprintf(ev.why, sizeof ev.why, "this node refused the node at %s: %s", addr, why);
	SKALD_LOG(SKALD_LOG_WARN, "cluster: %s", ev.why);
	seed_t *s = skald__cl_self(b->cl)->up_number == 0 ? seed_of(b, addr) : NULL;
	if (s != NULL)
		seed_failed(b, s, reason, 1, ev.why);
	broadcast(b, &ev);
}

/* Drops one of b's handles or requests; the last one frees b. */
static void unref(binding_t *b)
{
	if (--b->handles == 0) {
		/* Nothing of the network refers to b now, and the system's
		 * actors, the registry's included, are gone. */
		skald__cl_free(b->cl);
		skald__reg_free(b->reg);
		for (size_t i = 0; i < b->nseeds; i++) {
			for (size_t k = 0; k < b->seeds[i].nresolved; k++)
				free(b->seeds[i].resolved[k]);
			free(b->seeds[i].resolved);
		}
		free(b->seeds);
		free(b->evq);
		free(b->up);
		skald__refset_fini(&b->subs);
		uv_cond_destroy(&b->cond);
		uv_mutex_destroy(&b->lock);
		free(b);
	}
}

static void handle_closed(uv_handle_t *h)
{
	unref(h->data);
}

static void hook_close(void *ctx)
{
	binding_t *b = ctx;
	b->closing = 1;
	atomic_store(&b->net->above, NULL);
	b->net->hooks = NULL;
	uv_close((uv_handle_t *)&b->timer, handle_closed);
	uv_close((uv_handle_t *)&b->dns_timer, handle_closed);
	if (b->gai_busy)
		uv_cancel((uv_req_t *)&b->gai);
}

static const skald__net_hooks_t hooks = {
        .frame = hook_frame,
        .lost = hook_lost,
        .refused = hook_refused,
        .close = hook_close,
};

/* ------------------------------------------------------------------------ */
/* Join: DNS seeds first (network thread)                                   */

static void resolve_next(binding_t *b);

static void dns_timer_cb(uv_timer_t *t)
{
	resolve_next(t->data);
}

static void join_now(binding_t *b)
{
	size_t n = 0;
	for (size_t i = 0; i < b->nseeds; i++)
		n += b->seeds[i].dns ? b->seeds[i].nresolved : 1;
	const char **list = calloc(n ? n : 1, sizeof *list);
	if (list == NULL)
		return;
	n = 0;
	for (size_t i = 0; i < b->nseeds; i++) {
		seed_t *s = &b->seeds[i];
		if (!s->dns)
			list[n++] = s->spec;
		for (size_t k = 0; k < s->nresolved; k++)
			list[n++] = s->resolved[k];
	}
	if (b->nseeds > 0 && n == 0) {
		/* Seeds were given but none resolved: forming a cluster alone
		 * would split it. Resolve again later. */
		free(list);
		uv_timer_start(&b->dns_timer, dns_timer_cb, b->dns_delay, 0);
		b->dns_delay = b->dns_delay * 2 > DNS_RETRY_MAX ? DNS_RETRY_MAX : b->dns_delay * 2;
		return;
	}
	b->in_logic = 1;
	int rc = skald__cl_join(b->cl, list, n, now_of(b));
	b->in_logic = 0;
	free(list);
	if (rc < 0)
		set_final(b, rc, "the seed list was refused by the membership");
	b->joined = 1;
	after(b);
}

static void gai_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	binding_t *b = req->data;
	b->gai_busy = 0;
	if (b->closing) {
		uv_freeaddrinfo(res);
		unref(b);
		return;
	}
	b->handles--; /* the timers are open: never the last */
	seed_t *s = &b->seeds[b->dns_next];
	if (status < 0) {
		char why[WHY_MAX];
		snprintf(why, sizeof why, "seed %s does not resolve: %s", s->spec,
		         uv_strerror(status));
		SKALD_LOG(SKALD_LOG_WARN, "cluster: %s", why);
		seed_failed(b, s, status, 0, why);
	} else {
		for (size_t k = 0; k < s->nresolved; k++)
			free(s->resolved[k]);
		s->nresolved = 0;
		size_t n = 0;
		for (struct addrinfo *a = res; a != NULL; a = a->ai_next)
			n++;
		char **v = realloc(s->resolved, (n ? n : 1) * sizeof *v);
		if (v != NULL) {
			s->resolved = v;
			for (struct addrinfo *a = res; a != NULL; a = a->ai_next) {
				char host[46], addr[SKALD__CL_ADDR_MAX + 1];
				if (a->ai_family == AF_INET) {
					uv_ip4_name((struct sockaddr_in *)a->ai_addr, host,
					            sizeof host);
					snprintf(addr, sizeof addr, "tcp://%s:%s", host, s->port);
				} else if (a->ai_family == AF_INET6) {
					uv_ip6_name((struct sockaddr_in6 *)a->ai_addr, host,
					            sizeof host);
					snprintf(addr, sizeof addr, "tcp://[%s]:%s", host, s->port);
				} else {
					continue;
				}
				int dup = 0;
				for (size_t k = 0; k < s->nresolved; k++)
					dup |= strcmp(s->resolved[k], addr) == 0;
				if (!dup && (s->resolved[s->nresolved] = strdup(addr)) != NULL)
					s->nresolved++;
			}
		}
	}
	uv_freeaddrinfo(res);
	b->dns_next++;
	resolve_next(b);
}

/* Resolves the DNS seeds one after the other, then joins. */
static void resolve_next(binding_t *b)
{
	if (b->closing || b->joined)
		return;
	while (b->dns_next < b->nseeds && !b->seeds[b->dns_next].dns)
		b->dns_next++;
	if (b->dns_next < b->nseeds) {
		seed_t *s = &b->seeds[b->dns_next];
		struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
		b->gai.data = b;
		int rc = uv_getaddrinfo(&b->net->loop, &b->gai, gai_cb, s->host, s->port, &hints);
		if (rc == 0) {
			b->gai_busy = 1;
			b->handles++;
			return;
		}
		char why[WHY_MAX];
		snprintf(why, sizeof why, "seed %s cannot be resolved: %s", s->spec,
		         uv_strerror(rc));
		seed_failed(b, s, rc, 0, why);
		b->dns_next++;
		resolve_next(b);
		return;
	}
	b->dns_next = 0; /* the next round, if join_now asks for one */
	join_now(b);
}

static void start_on_net(skald__net_t *net, void *arg)
{
	binding_t *b = arg;
	if (net->stopping) {
		/* Never started: nothing but b to free. */
		b->handles = 1;
		b->closing = 1;
		unref(b);
		return;
	}
	snprintf(net->advertised, sizeof net->advertised, "%s", b->addr);
	uv_timer_init(&net->loop, &b->timer);
	uv_timer_init(&net->loop, &b->dns_timer);
	b->timer.data = b->dns_timer.data = b;
	b->handles = 2;
	b->dns_delay = DNS_RETRY_MS;
	net->hooks_ctx = b;
	net->hooks = &hooks;
	publish(b);
	resolve_next(b);
}

/* ------------------------------------------------------------------------ */
/* The public API (any thread)                                              */

static binding_t *binding_of(skald_system_t *sys)
{
	skald__net_t *net = sys != NULL ? skald__net_of(sys) : NULL;
	return net != NULL ? atomic_load(&net->above) : NULL;
}

static int seed_parse(seed_t *s, const char *spec)
{
	if (spec == NULL || strlen(spec) > SKALD__CL_ADDR_MAX)
		return SKALD_EINVAL;
	snprintf(s->spec, sizeof s->spec, "%s", spec);
	if (strncmp(spec, "tcp://", 6) == 0)
		return skald__net_parse_addr(spec, NULL);
	if (strncmp(spec, "dns://", 6) != 0)
		return SKALD_EINVAL;
	const char *host = spec + 6, *colon = strrchr(host, ':');
	if (colon == NULL || colon == host || (size_t)(colon - host) >= sizeof s->host)
		return SKALD_EINVAL;
	char *end;
	long port = strtol(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || port < 1 || port > 65535)
		return SKALD_EINVAL;
	s->dns = 1;
	memcpy(s->host, host, (size_t)(colon - host));
	s->host[colon - host] = '\0';
	snprintf(s->port, sizeof s->port, "%ld", port);
	return 0;
}

int skald_cluster_start(skald_system_t *sys, const skald_cluster_config_t *cfg)
{
	skald__net_t *net = sys != NULL ? skald__net_of(sys) : NULL;
	if (net == NULL || cfg == NULL || (cfg->nseeds > 0 && cfg->seeds == NULL))
		return SKALD_EINVAL;
	int rc = skald__type_install(SKALD_TYPE_MEMBER, &member_type);
	if (rc < 0)
		return rc;
	/* Written by the network thread in skald_listen, which waited for
	 * it: visible here. */
	const char *addr = cfg->addr != NULL ? cfg->addr : net->advertised;
	if (addr[0] == '\0' || strlen(addr) > SKALD__CL_ADDR_MAX ||
	    skald__net_parse_addr(addr, NULL) < 0) {
		SKALD_LOG(SKALD_LOG_ERROR,
		          "cluster: no address to advertise: set skald_cluster_config_t.addr to "
		          "tcp://HOST:PORT, or listen on a concrete host first");
		return SKALD_EINVAL;
	}
	binding_t *b = calloc(1, sizeof *b);
	if (b == NULL)
		return SKALD_ENOMEM;
	b->seeds = calloc(cfg->nseeds ? cfg->nseeds : 1, sizeof *b->seeds);
	if (b->seeds == NULL) {
		free(b);
		return SKALD_ENOMEM;
	}
	b->nseeds = cfg->nseeds;
	for (size_t i = 0; i < cfg->nseeds; i++) {
		if (seed_parse(&b->seeds[i], cfg->seeds[i]) < 0) {
			SKALD_LOG(SKALD_LOG_ERROR,
			          "cluster: seed \"%s\" is not tcp://HOST:PORT or dns://NAME:PORT",
			          cfg->seeds[i] ? cfg->seeds[i] : "(null)");
			free(b->seeds);
			free(b);
			return SKALD_EINVAL;
		}
	}
	b->net = net;
	b->sys = sys;
	b->self = skald_system_node(sys);
	snprintf(b->addr, sizeof b->addr, "%s", addr);
	uint64_t seed = 0;
	if (RAND_bytes((unsigned char *)&seed, sizeof seed) != 1)
		seed = b->self ^ uv_hrtime();
	skald__cl_config_t lc = {
	        .node = b->self,
	        .addr = b->addr,
	        .seed = seed,
	        .probe_interval_ms = cfg->probe_interval_ms,
	        .timeout_ms = cfg->timeout_ms,
	        .max_members = cfg->max_members,
	        .send = on_send,
	        .event = on_event,
	        .ctx = b,
	};
	rc = skald__cl_new(&lc, &b->cl);
	if (rc == 0 && (rc = skald__reg_new(sys, cfg, &b->reg)) < 0)
		skald__cl_free(b->cl);
	if (rc < 0) {
		free(b->seeds);
		free(b);
		return rc;
	}
	uv_mutex_init(&b->lock);
	uv_cond_init(&b->cond);
	member_of(skald__cl_self(b->cl), &b->me);
	void *none = NULL;
	if (!atomic_compare_exchange_strong(&net->above, &none, b)) {
		skald__cl_free(b->cl);
		skald__reg_free(b->reg);
		uv_cond_destroy(&b->cond);
		uv_mutex_destroy(&b->lock);
		free(b->seeds);
		free(b);
		return SKALD_EINVAL;
	}
	rc = skald__net_call(net, start_on_net, b);
	if (rc < 0) {
		/* Nothing runs it: a system that cannot post a command is out
		 * of memory; the cluster stays unusable. */
		atomic_store(&net->above, NULL);
		skald__cl_free(b->cl);
		skald__reg_free(b->reg);
		uv_cond_destroy(&b->cond);
		uv_mutex_destroy(&b->lock);
		free(b->seeds);
		free(b);
		return rc;
	}
	/* The registry's actor subscribes to member events: the cluster is
	 * visible by now. */
	if ((rc = skald__reg_start(b->reg)) < 0)
		SKALD_LOG(SKALD_LOG_ERROR,
		          "cluster: the registry of names and groups could not start: %s",
		          skald_strerror(rc));
	return rc;
}

skald__reg_t *skald__reg_of(skald_system_t *sys)
{
	binding_t *b = binding_of(sys);
	return b != NULL ? b->reg : NULL;
}

int skald__cluster_view(skald_system_t *sys, skald_member_t **out, size_t *n)
{
	binding_t *b = binding_of(sys);
	if (b == NULL)
		return SKALD_EINVAL;
	uv_mutex_lock(&b->lock);
	*n = b->nup;
	*out = malloc((b->nup ? b->nup : 1) * sizeof **out);
	if (*out != NULL)
		memcpy(*out, b->up, b->nup * sizeof **out);
	uv_mutex_unlock(&b->lock);
	return *out != NULL ? 0 : SKALD_ENOMEM;
}

static void why_put(char *why, size_t len, const char *s)
{
	if (why != NULL && len > 0)
		snprintf(why, len, "%s", s);
}

int skald_cluster_wait(skald_system_t *sys, uint64_t timeout_ms, char *why, size_t why_len)
{
	binding_t *b = binding_of(sys);
	if (b == NULL)
		return SKALD_EINVAL;
	if (skald__current != NULL)
		return SKALD_ENOTOWNER;
	uint64_t deadline = uv_hrtime() + timeout_ms * 1000000ull;
	int rc;
	uv_mutex_lock(&b->lock);
	for (;;) {
		if (b->me.status == SKALD_MEMBER_UP) {
			rc = 0;
			break;
		}
		if (b->final_err != 0) {
			rc = b->final_err;
			why_put(why, why_len, b->final_why);
			break;
		}
		/* Every seed refused the handshake: no point in waiting. */
		size_t refused = 0;
		seed_t *last = NULL;
		for (size_t i = 0; i < b->nseeds; i++) {
			refused += b->seeds[i].refused;
			if (b->seeds[i].err != 0)
				last = &b->seeds[i];
		}
		if (b->nseeds > 0 && refused == b->nseeds) {
			rc = b->seeds[0].err;
			why_put(why, why_len, b->seeds[0].why);
			break;
		}
		uint64_t now = uv_hrtime();
		if (now >= deadline) {
			rc = last != NULL ? last->err : SKALD_ETIMEDOUT;
			why_put(why, why_len,
			        last != NULL ? last->why : "no seed admitted this node in time");
			break;
		}
		uv_cond_timedwait(&b->cond, &b->lock, deadline - now);
	}
	uv_mutex_unlock(&b->lock);
	return rc;
}

static void leave_on_net(skald__net_t *net, void *arg)
{
	binding_t *b = arg;
	if (net->stopping || b->closing)
		return;
	b->in_logic = 1;
	skald__cl_leave(b->cl, now_of(b));
	b->in_logic = 0;
	after(b);
}

typedef struct hold_s {
	binding_t *b;
	int delta;
} hold_t;

static void hold_on_net(skald__net_t *net, void *arg)
{
	hold_t h = *(hold_t *)arg;
	free(arg);
	if (net->stopping || h.b->closing)
		return;
	h.b->in_logic = 1;
	skald__cl_hold_leave(h.b->cl, h.delta);
	/* A release may let the leave finish now rather than at the next
	 * deadline. */
	skald__cl_tick(h.b->cl, now_of(h.b));
	h.b->in_logic = 0;
	after(h.b);
}

int skald__cluster_hold_leave(skald_system_t *sys, int delta)
{
	binding_t *b = binding_of(sys);
	if (b == NULL)
		return SKALD_EINVAL;
	hold_t *h = malloc(sizeof *h);
	if (h == NULL)
		return SKALD_ENOMEM;
	*h = (hold_t){b, delta};
	int rc = skald__net_call(b->net, hold_on_net, h);
	if (rc < 0)
		free(h);
	return rc;
}

int skald_cluster_leave(skald_system_t *sys, uint64_t timeout_ms)
{
	binding_t *b = binding_of(sys);
	if (b == NULL)
		return SKALD_EINVAL;
	if (timeout_ms > 0 && skald__current != NULL)
		return SKALD_ENOTOWNER;
	int rc = skald__net_call(b->net, leave_on_net, b);
	if (rc < 0 || timeout_ms == 0)
		return rc;
	uint64_t deadline = uv_hrtime() + timeout_ms * 1000000ull;
	uv_mutex_lock(&b->lock);
	for (;;) {
		if (b->me.status == SKALD_MEMBER_REMOVED || b->final_err == SKALD_ESTOPPING) {
			rc = 0;
			break;
		}
		if (b->final_err != 0) {
			rc = b->final_err == SKALD_ENODEDOWN ? SKALD_ENODEDOWN : b->final_err;
			break;
		}
		uint64_t now = uv_hrtime();
		if (now >= deadline) {
			rc = SKALD_ETIMEDOUT;
			break;
		}
		uv_cond_timedwait(&b->cond, &b->lock, deadline - now);
	}
	uv_mutex_unlock(&b->lock);
	return rc;
}

int skald_cluster_members(skald_system_t *sys, skald_member_t *out, size_t cap, size_t *n)
{
	binding_t *b = binding_of(sys);
	if (b == NULL || n == NULL || (out == NULL && cap > 0))
		return SKALD_EINVAL;
	uv_mutex_lock(&b->lock);
	*n = b->nup;
	if (cap > 0)
		memcpy(out, b->up, (b->nup < cap ? b->nup : cap) * sizeof *out);
	uv_mutex_unlock(&b->lock);
	return 0;
}

int skald_cluster_self(skald_system_t *sys, skald_member_t *out)
{
	binding_t *b = binding_of(sys);
	if (b == NULL || out == NULL)
		return SKALD_EINVAL;
	uv_mutex_lock(&b->lock);
	*out = b->me;
	uv_mutex_unlock(&b->lock);
	return 0;
}

typedef struct sub_cmd_s {
	binding_t *b;
	skald_ref_t ref;
	int add;
} sub_cmd_t;

static void subscribe_on_net(skald__net_t *net, void *arg)
{
	sub_cmd_t *c = arg;
	binding_t *b = c->b;
	if (!net->stopping && !b->closing) {
		if (!c->add) {
			skald__refset_del(&b->subs, c->ref);
		} else if (b->subs.n < MAX_SUBSCRIBERS && !skald__refset_has(&b->subs, c->ref) &&
		           skald__refset_add(&b->subs, c->ref) == 0) {
			/* The view first, then every change: both from this
			 * thread, so in this order. */
			send_current(b, c->ref);
		}
	}
	free(c);
}

static int subscription(skald_actor_t *self, int add)
{
	binding_t *b = self != NULL ? binding_of(self->thread->sys) : NULL;
	if (b == NULL)
		return SKALD_EINVAL;
	if (skald__current != self->thread)
		return SKALD_ENOTOWNER;
	sub_cmd_t *c = malloc(sizeof *c);
	if (c == NULL)
		return SKALD_ENOMEM;
	*c = (sub_cmd_t){b, self->ref, add};
	int rc = skald__net_call(b->net, subscribe_on_net, c);
	if (rc < 0)
		free(c);
	return rc;
}

int skald_cluster_subscribe(skald_actor_t *self)
{
	return subscription(self, 1);
}

int skald_cluster_unsubscribe(skald_actor_t *self)
{
	return subscription(self, 0);
}

int skald_cluster_stats(skald_system_t *sys, skald_cluster_stats_t *out)
{
	binding_t *b = binding_of(sys);
	if (b == NULL || out == NULL)
		return SKALD_EINVAL;
	out->msgs_sent = atomic_load(&b->msgs_sent);
	out->bytes_sent = atomic_load(&b->bytes_sent);
	out->msgs_received = atomic_load(&b->msgs_received);
	out->bytes_received = atomic_load(&b->bytes_received);
	return 0;
}
