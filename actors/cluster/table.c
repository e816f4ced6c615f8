/*
 * actors/cluster/table.c - the registry's table of names and group
 * entries, under its lock (see reg.h).
 *
 * Entries live in one array of slots (a free list reuses them), chained by
 * key in a hash table, so that everything about one name or one group is
 * found without a scan. An entry is visible when its origin is this node or
 * an up member; an entry of an origin whose admission this node has not
 * seen yet waits, hidden, until it has. Group subscribers hear a change of
 * the listing (a reference that appears under a key, or disappears from
 * it) exactly once, however many origins checked the reference in.
 */
#include <stdlib.h>
#include <string.h>

#include "actors/cluster/reg.h"
#include "actors/internal.h"
#include "base/hash.h"
#include "base/metrics_int.h"

#define DEAD_KEEP_MS    (5 * 60 * 1000u) /* a dead peer is remembered this long */
#define UNKNOWN_KEEP_MS (60 * 1000u)     /* a part whose origin never came up */

/* skald_cluster_registry_entries{kind="name"|"group"}: entries held, over
 * every system of the process (docs/OPERATIONS.md). */
static skald_metric_t *held[REG_GROUP + 1];
static uv_once_t metrics_once = UV_ONCE_INIT;

static void metrics_setup(void)
{
	static const char *const kinds[] = {NULL, "name", "group"};
	for (int k = REG_NAME; k <= REG_GROUP; k++)
		(void)skald_metric_gauge("skald_cluster_registry_entries",
		                         "Registrations in this node's table of the cluster "
		                         "registry (its own and the other members'), by kind.",
		                         "kind", kinds[k], &held[k]);
}

int skald__reg_check_name(const char *name)
{
	if (name == NULL || name[0] == '\0')
		return SKALD_EINVAL;
	return strnlen(name, SKALD_NAME_MAX + 1) > SKALD_NAME_MAX ? SKALD_ENAMETOOLONG : 0;
}

int skald__reg_args(skald_system_t *sys, const char *name, skald__reg_t **out)
{
	skald__reg_t *reg = skald__reg_of(sys);
	int rc = skald__reg_check_name(name);
	if (reg == NULL)
		return SKALD_EINVAL;
	if (rc < 0)
		return rc;
	*out = reg;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Peers                                                                     */

skald__reg_peer_t *skald__reg_peer(skald__reg_t *reg, uint64_t node, int create)
{
	for (size_t i = 0; i < reg->npeers; i++)
		if (reg->peers[i].node == node)
			return &reg->peers[i];
	if (!create || node == 0 || node == reg->self)
		return NULL;
	if (reg->npeers == reg->cappeers)
		return NULL;
	skald__reg_peer_t *p = &reg->peers[reg->npeers++];
	memset(p, 0, sizeof *p);
	p->node = node;
	p->since = skald__mono_ms();
	return p;
}

static int visible(skald__reg_t *reg, uint64_t origin)
{
	if (origin == reg->self)
		return 1;
	skald__reg_peer_t *p = skald__reg_peer(reg, origin, 0);
	return p != NULL && p->status == PEER_UP;
}

/* The age of an origin: its up number, or UINT32_MAX while unknown. */
static uint32_t age_of(skald__reg_t *reg, uint64_t origin)
{
	if (origin == reg->self)
		return reg->self_up ? reg->self_up : UINT32_MAX;
	skald__reg_peer_t *p = skald__reg_peer(reg, origin, 0);
	return p != NULL && p->up_number ? p->up_number : UINT32_MAX;
}

static int ref_cmp(skald_ref_t a, skald_ref_t b)
{
	if (a.node != b.node)
		return a.node < b.node ? -1 : 1;
	if (a.actor != b.actor)
		return a.actor < b.actor ? -1 : 1;
	if (a.incarnation != b.incarnation)
		return a.incarnation < b.incarnation ? -1 : 1;
	return 0;
}

/* Non-zero if a's registration wins over b's: the older origin (age order
 * of the membership: up number, then node id), then the lower reference,
 * so that every member picks the same one. */
static int wins(skald__reg_t *reg, const skald__reg_entry_t *a, const skald__reg_entry_t *b)
{
	uint32_t x = age_of(reg, a->origin), y = age_of(reg, b->origin);
	if (x != y)
		return x < y;
	if (a->origin != b->origin)
		return a->origin < b->origin;
	return ref_cmp(a->ref, b->ref) < 0;
}

/* ------------------------------------------------------------------------ */
/* Finding entries                                                           */

static uint32_t *bucket(skald__reg_t *reg, const char *key)
{
	return &reg->buckets[skald__hash_str(key) & (reg->nbuckets - 1)];
}

#define CHAIN(reg, key, e)                                                                         \
	for (skald__reg_entry_t *e = *bucket(reg, key) ? &(reg)->v[*bucket(reg, key) - 1] : NULL;  \
	     e != NULL; e = e->next ? &(reg)->v[e->next - 1] : NULL)

skald__reg_entry_t *skald__reg_find(skald__reg_t *reg, uint8_t kind, const char *key,
                                    skald_ref_t ref, uint64_t origin)
{
	CHAIN(reg, key, e)
	{
		if (e->kind == kind && e->origin == origin && skald_ref_eq(e->ref, ref) &&
		    strcmp(e->key, key) == 0)
			return e;
	}
	return NULL;
}

skald__reg_entry_t *skald__reg_own_name(skald__reg_t *reg, const char *name)
{
	CHAIN(reg, name, e)
	{
		if (e->kind == REG_NAME && e->origin == reg->self && strcmp(e->key, name) == 0)
			return e;
	}
	return NULL;
}

skald__reg_entry_t *skald__reg_winner(skald__reg_t *reg, const char *name)
{
	skald__reg_entry_t *best = NULL;
	CHAIN(reg, name, e)
	{
		if (e->kind == REG_NAME && e->vis && strcmp(e->key, name) == 0 &&
		    (best == NULL || wins(reg, e, best)))
			best = e;
	}
	return best;
}

/* Another visible entry of e's group with e's reference. */
static int listed_elsewhere(skald__reg_t *reg, const skald__reg_entry_t *e)
{
	CHAIN(reg, e->key, o)
	{
		if (o != e && o->vis && o->kind == REG_GROUP && skald_ref_eq(o->ref, e->ref) &&
		    strcmp(o->key, e->key) == 0)
			return 1;
	}
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Events                                                                    */

static void send_event(skald__reg_t *reg, skald_ref_t to, const skald_group_event_t *src)
{
	skald_group_event_t *ev = malloc(sizeof *ev);
	if (ev == NULL)
		return;
	*ev = *src;
	ev->refs = NULL;
	if (src->nrefs > 0) {
		if ((ev->refs = malloc(src->nrefs * sizeof *ev->refs)) == NULL) {
			free(ev);
			return;
		}
		memcpy(ev->refs, src->refs, src->nrefs * sizeof *ev->refs);
	}
	skald__env_t *env = skald__env_new(ENV_USER, SKALD_TYPE_GROUP, SKALD_REF_NULL, ev);
	if (env == NULL) {
		free(ev->refs);
		free(ev);
		return;
	}
	skald__send(reg->sys, to, env);
}

void skald__reg_group_event(skald__reg_t *reg, const skald_group_event_t *ev)
{
	for (size_t i = 0; i < reg->nsubs; i++)
		if (strcmp(reg->subs[i].key, ev->key) == 0)
			send_event(reg, reg->subs[i].sub, ev);
}

void skald__reg_send_current(skald__reg_t *reg, const char *key, skald_ref_t sub)
{
	skald_group_event_t ev = {.kind = SKALD_GROUP_EV_CURRENT};
	snprintf(ev.key, sizeof ev.key, "%s", key);
	if (skald__reg_listing(reg, key, &ev.refs, &ev.nrefs) < 0)
		return;
	send_event(reg, sub, &ev);
	free(ev.refs);
}

static void group_changed(skald__reg_t *reg, const skald__reg_entry_t *e, int joined, int reason)
{
	if (listed_elsewhere(reg, e))
		return;
	skald_group_event_t ev = {
	        .kind = joined ? SKALD_GROUP_EV_JOINED : SKALD_GROUP_EV_LEFT,
	        .ref = e->ref,
	        .reason = joined ? 0 : reason,
	};
	snprintf(ev.key, sizeof ev.key, "%s", e->key);
	skald__reg_group_event(reg, &ev);
}

void skald__reg_answer(skald_system_t *sys, skald_ref_t asker, uint64_t corr, int status,
                       skald_ref_t ref)
{
	skald__env_t *env;
	skald__reg_result_t *res = NULL;
	if (status < 0) {
		env = skald__env_new(ENV_ASK_FAIL, 0, SKALD_REF_NULL, NULL);
		if (env != NULL)
			env->arg = status;
	} else {
		res = skald__reg_result_new(0, ref);
		env = res ? skald__env_new(ENV_REPLY, skald__t_reg_result, SKALD_REF_NULL, res)
		          : NULL;
	}
	if (env == NULL) {
		free(res);
		return; /* the asker's own timeout ends its wait */
	}
	env->corr = corr;
	skald__send(sys, asker, env);
}

void skald__reg_wake(skald__reg_t *reg, const char *name, skald_ref_t ref)
{
	uint64_t now = skald__mono_ms();
	for (size_t i = 0; i < reg->nwaiters;) {
		skald__reg_waiter_t *w = &reg->waiters[i];
		int match = name != NULL && strcmp(w->name, name) == 0;
		if (match || w->deadline <= now) {
			if (match)
				skald__reg_answer(reg->sys, w->asker, w->corr, 0, ref);
			free(w->name);
			*w = reg->waiters[--reg->nwaiters];
		} else {
			i++;
		}
	}
}

/* e became visible, or stopped being visible (vis already updated). */
static void shown(skald__reg_t *reg, skald__reg_entry_t *e, int reason)
{
	if (e->kind == REG_GROUP) {
		group_changed(reg, e, e->vis, reason);
		return;
	}
	if (e->vis && skald__reg_winner(reg, e->key) == e)
		skald__reg_wake(reg, e->key, e->ref);
	uv_cond_broadcast(&reg->cond);
}

/* ------------------------------------------------------------------------ */
/* Adding and removing                                                       */

int skald__reg_add(skald__reg_t *reg, uint8_t kind, const char *key, skald_ref_t ref,
                   uint64_t origin)
{
	if (kind == REG_NAME ? reg->nnames >= reg->max_names
	                     : reg->ngroup >= reg->max_group_entries)
		return SKALD_EFULL;
	if (reg->nfree == 0) {
		/* Grow: the table is bounded by the two limits, so this ends. */
		size_t cap = reg->cap ? reg->cap * 2 : 64;
		size_t max = (size_t)reg->max_names + reg->max_group_entries;
		cap = cap > max ? max : cap;
		skald__reg_entry_t *v = realloc(reg->v, cap * sizeof *v);
		if (v == NULL)
			return SKALD_ENOMEM;
		reg->v = v;
		uint32_t *f = realloc(reg->freelist, cap * sizeof *f);
		if (f == NULL)
			return SKALD_ENOMEM;
		reg->freelist = f;
		for (size_t i = cap; i > reg->cap; i--) {
			memset(&v[i - 1], 0, sizeof v[i - 1]);
			f[reg->nfree++] = (uint32_t)(i - 1);
		}
		reg->cap = cap;
	}
	char *k = strdup(key);
	if (k == NULL)
		return SKALD_ENOMEM;
	uint32_t i = reg->freelist[--reg->nfree];
	skald__reg_entry_t *e = &reg->v[i];
	uint32_t *b = bucket(reg, key);
	*e = (skald__reg_entry_t){.key = k, .ref = ref, .origin = origin, .next = *b, .kind = kind};
	*b = i + 1;
	if (kind == REG_NAME)
		reg->nnames++;
	else
		reg->ngroup++;
	skald_metric_add(held[kind], 1);
	e->vis = (uint8_t)visible(reg, origin);
	if (e->vis)
		shown(reg, e, 0);
	return 0;
}

void skald__reg_del(skald__reg_t *reg, skald__reg_entry_t *e, int reason)
{
	if (e->vis) {
		e->vis = 0;
		shown(reg, e, reason);
	}
	uint32_t i = (uint32_t)(e - reg->v);
	for (uint32_t *link = bucket(reg, e->key); *link != 0; link = &reg->v[*link - 1].next) {
		if (*link == i + 1) {
			*link = e->next;
			break;
		}
	}
	if (e->kind == REG_NAME)
		reg->nnames--;
	else
		reg->ngroup--;
	skald_metric_add(held[e->kind], -1);
	free(e->key);
	memset(e, 0, sizeof *e);
	reg->freelist[reg->nfree++] = i;
}

void skald__reg_peer_status(skald__reg_t *reg, skald__reg_peer_t *p, uint8_t status,
                            uint32_t up_number)
{
	if (up_number != 0)
		p->up_number = up_number;
	if (status != p->status)
		p->since = skald__mono_ms();
	p->status = status;
	for (size_t i = 0; i < reg->cap; i++) {
		skald__reg_entry_t *e = &reg->v[i];
		if (e->key == NULL)
			continue;
		if (status == PEER_DEAD && (e->origin == p->node || e->ref.node == p->node)) {
			skald__reg_del(reg, e, SKALD_ENODEDOWN);
		} else if (e->origin == p->node && e->vis != (status == PEER_UP)) {
			e->vis = status == PEER_UP;
			shown(reg, e, SKALD_ENODEDOWN);
		}
	}
	if (status == PEER_DEAD) {
		skald__reg_items_free(p->stage, p->nstage);
		p->stage = NULL;
		p->nstage = p->capstage = 0;
		p->daemon = SKALD_REF_NULL;
	}
	/* An up number learnt may change which registration of a name wins. */
	uv_cond_broadcast(&reg->cond);
}

/* ------------------------------------------------------------------------ */
/* Listings                                                                  */

static int ref_qcmp(const void *a, const void *b)
{
	return ref_cmp(*(const skald_ref_t *)a, *(const skald_ref_t *)b);
}

int skald__reg_listing(skald__reg_t *reg, const char *key, skald_ref_t **out, size_t *n)
{
	size_t count = 0;
	CHAIN(reg, key, e)
	{
		count += e->kind == REG_GROUP && e->vis && strcmp(e->key, key) == 0;
	}
	*out = NULL;
	*n = 0;
	if (count == 0)
		return 0;
	skald_ref_t *v = malloc(count * sizeof *v);
	if (v == NULL)
		return SKALD_ENOMEM;
	size_t k = 0;
	CHAIN(reg, key, e)
	{
		if (e->kind == REG_GROUP && e->vis && strcmp(e->key, key) == 0)
			v[k++] = e->ref;
	}
	qsort(v, k, sizeof *v, ref_qcmp);
	size_t u = 0;
	for (size_t i = 0; i < k; i++)
		if (u == 0 || !skald_ref_eq(v[u - 1], v[i]))
			v[u++] = v[i];
	*out = v;
	*n = u;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* The table's life                                                          */

int skald__reg_tell(skald__reg_t *reg, uint8_t kind, uint8_t add, const char *key, skald_ref_t ref)
{
	if (skald_ref_is_null(reg->daemon))
		return 0; /* the daemon reads the table when it starts */
	skald__reg_batch_t *b = skald__reg_batch_new(REG_MSG_LOCAL, reg->self, 0);
	if (b == NULL || skald__reg_batch_add(b, kind, add, 0, key, ref) < 0) {
		skald__reg_batch_free(b);
		return SKALD_ENOMEM;
	}
	int rc = skald_system_tell(reg->sys, reg->daemon, skald__t_reg_batch, b);
	if (rc < 0)
		skald__reg_batch_free(b);
	return rc;
}

int skald__reg_new(skald_system_t *sys, const skald_cluster_config_t *cfg, skald__reg_t **out)
{
	int rc = skald__reg_types();
	if (rc < 0)
		return rc;
	uv_once(&metrics_once, metrics_setup);
	skald__reg_t *reg = calloc(1, sizeof *reg);
	if (reg == NULL)
		return SKALD_ENOMEM;
	reg->sys = sys;
	reg->self = skald_system_node(sys);
	reg->max_names = cfg->max_names ? cfg->max_names : 10000;
	reg->max_group_entries = cfg->max_group_entries ? cfg->max_group_entries : 10000;
	reg->max_peers = cfg->max_members ? cfg->max_members : 1024;
	size_t want = ((size_t)reg->max_names + reg->max_group_entries) / 2;
	reg->nbuckets = 64;
	while (reg->nbuckets < want && reg->nbuckets < (1u << 20))
		reg->nbuckets *= 2;
	reg->buckets = calloc(reg->nbuckets, sizeof *reg->buckets);
	reg->cappeers = reg->max_peers;
	reg->peers = calloc(reg->cappeers, sizeof *reg->peers);
	if (reg->buckets == NULL || reg->peers == NULL) {
		free(reg->buckets);
		free(reg->peers);
		free(reg);
		return SKALD_ENOMEM;
	}
	uv_mutex_init(&reg->lock);
	uv_cond_init(&reg->cond);
	*out = reg;
	return 0;
}

void skald__reg_peers_expire(skald__reg_t *reg, uint64_t now)
{
	for (size_t i = 0; i < reg->npeers;) {
		skald__reg_peer_t *p = &reg->peers[i];
		int old = (p->status == PEER_DEAD && now - p->since > DEAD_KEEP_MS) ||
		          (p->status == PEER_UNKNOWN && now - p->since > UNKNOWN_KEEP_MS);
		if (!old) {
			i++;
			continue;
		}
		if (p->status == PEER_UNKNOWN)
			skald__reg_peer_status(reg, p, PEER_DEAD, 0);
		skald__reg_items_free(p->stage, p->nstage);
		reg->peers[i] = reg->peers[--reg->npeers];
	}
}

void skald__reg_free(skald__reg_t *reg)
{
	if (reg == NULL)
		return;
	skald_metric_add(held[REG_NAME], -(int64_t)reg->nnames);
	skald_metric_add(held[REG_GROUP], -(int64_t)reg->ngroup);
	for (size_t i = 0; i < reg->cap; i++)
		free(reg->v[i].key);
	for (size_t i = 0; i < reg->nsubs; i++)
		free(reg->subs[i].key);
	for (size_t i = 0; i < reg->nwaiters; i++)
		free(reg->waiters[i].name);
	for (size_t i = 0; i < reg->npeers; i++)
		skald__reg_items_free(reg->peers[i].stage, reg->peers[i].nstage);
	free(reg->v);
	free(reg->freelist);
	free(reg->buckets);
	free(reg->subs);
	free(reg->waiters);
	free(reg->peers);
	uv_cond_destroy(&reg->cond);
	uv_mutex_destroy(&reg->lock);
	free(reg);
}
