/*
 * actors/cluster/reg_codec.c - the messages between registry actors, and
 * the built-in types of the registry, byte by byte.
 *
 * Every integer is big-endian. A reference is node (8), actor (4),
 * incarnation (4). A key is its length (2, 1..SKALD_NAME_MAX) and its
 * bytes (no NUL).
 *
 *   batch    what (1), flags (1), origin (8), ver (8), count (4), then per
 *            item: kind (1), add (1), reason (4), reference, key
 *   spawn    behaviour (1 + n), argument type name (1 + n; 0: none),
 *            argument length (4) and bytes
 *   result   status (4), reference
 *   name lost   winner (reference), name (key)
 *
 * Decoding reads nothing past the buffer and refuses, with SKALD_EDECODE,
 * a count that the bytes cannot hold, an unknown kind, a key that is empty,
 * too long or holds a NUL, and bytes after the last field.
 */
#include <stdlib.h>
#include <string.h>

#include "actors/layer.h"
#include "actors/cluster/reg.h"
#include "actors/transport.h"

uint32_t skald__t_reg_batch, skald__t_reg_spawn, skald__t_reg_result;

#define ITEM_MIN (1 + 1 + 4 + 16 + 2 + 1)

/* ------------------------------------------------------------------------ */
/* Writing and reading                                                       */

typedef struct wr_s {
	uint8_t *p;
	size_t len, cap;
	int err;
} wr_t;

static void put(wr_t *w, const void *src, size_t n)
{
	if (w->err || n == 0)
		return;
	if (w->len + n > w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 256;
		while (cap < w->len + n)
			cap *= 2;
		uint8_t *p = realloc(w->p, cap);
		if (p == NULL) {
			w->err = SKALD_ENOMEM;
			return;
		}
		w->p = p;
		w->cap = cap;
	}
	memcpy(w->p + w->len, src, n);
	w->len += n;
}

static void put_u(wr_t *w, uint64_t v, int bytes)
{
	uint8_t b[8];
	for (int i = bytes - 1; i >= 0; i--, v >>= 8)
		b[i] = (uint8_t)v;
	put(w, b, (size_t)bytes);
}

static void put_ref(wr_t *w, skald_ref_t r)
{
	put_u(w, r.node, 8);
	put_u(w, r.actor, 4);
	put_u(w, r.incarnation, 4);
}

static void put_key(wr_t *w, const char *key)
{
	size_t n = strlen(key);
	put_u(w, n, 2);
	put(w, key, n);
}

static void put_str8(wr_t *w, const char *s)
{
	size_t n = strlen(s);
	put_u(w, n, 1);
	put(w, s, n);
}

static int wr_done(wr_t *w, void **out, size_t *len)
{
	if (w->err) {
		free(w->p);
		return w->err;
	}
	*out = w->p;
	*len = w->len;
	return 0;
}

typedef struct rd_s {
	const uint8_t *p, *end;
	int bad;
} rd_t;

static const uint8_t *take(rd_t *r, size_t n)
{
	if (r->bad || (size_t)(r->end - r->p) < n) {
		r->bad = 1;
		return NULL;
	}
	const uint8_t *p = r->p;
	r->p += n;
	return p;
}

static uint64_t get_u(rd_t *r, int bytes)
{
	const uint8_t *p = take(r, (size_t)bytes);
	uint64_t v = 0;
	for (int i = 0; p != NULL && i < bytes; i++)
		v = v << 8 | p[i];
	return v;
}

static skald_ref_t get_ref(rd_t *r)
{
	skald_ref_t ref;
	ref.node = get_u(r, 8);
	ref.actor = (uint32_t)get_u(r, 4);
	ref.incarnation = (uint32_t)get_u(r, 4);
	return ref;
}

/* A string of n bytes, copied with a NUL; NULL (and r->bad) if it holds a
 * NUL or runs past the end, or on a failed allocation (*nomem set). */
static char *get_str(rd_t *r, size_t n, int *nomem)
{
	const uint8_t *p = take(r, n);
	if (p == NULL || memchr(p, 0, n) != NULL) {
		r->bad = 1;
		return NULL;
	}
	char *s = malloc(n + 1);
	if (s == NULL) {
		*nomem = 1;
		r->bad = 1;
		return NULL;
	}
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

static char *get_key(rd_t *r, int *nomem)
{
	size_t n = (size_t)get_u(r, 2);
	if (n == 0 || n > SKALD_NAME_MAX) {
		r->bad = 1;
		return NULL;
	}
	return get_str(r, n, nomem);
}

static int rd_done(rd_t *r, int nomem)
{
	if (nomem)
		return SKALD_ENOMEM;
	return r->bad || r->p != r->end ? SKALD_EDECODE : 0;
}

/* ------------------------------------------------------------------------ */
/* Batches                                                                   */

skald__reg_batch_t *skald__reg_batch_new(uint8_t what, uint64_t origin, uint64_t ver)
{
	skald__reg_batch_t *b = calloc(1, sizeof *b);
	if (b == NULL)
		return NULL;
	atomic_init(&b->refs, 1);
	b->what = what;
	b->origin = origin;
	b->ver = ver;
	return b;
}

int skald__reg_batch_add(skald__reg_batch_t *b, uint8_t kind, uint8_t add, int32_t reason,
                         const char *key, skald_ref_t ref)
{
	if (b->n == b->cap) {
		uint32_t cap = b->cap ? b->cap * 2 : 4;
		skald__reg_item_t *v = realloc(b->items, cap * sizeof *v);
		if (v == NULL)
			return SKALD_ENOMEM;
		b->items = v;
		b->cap = cap;
	}
	char *k = strdup(key);
	if (k == NULL)
		return SKALD_ENOMEM;
	b->items[b->n++] = (skald__reg_item_t){kind, add, reason, ref, k};
	return 0;
}

skald__reg_batch_t *skald__reg_batch_hold(skald__reg_batch_t *b)
{
	atomic_fetch_add(&b->refs, 1);
	return b;
}

void skald__reg_items_free(skald__reg_item_t *items, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(items[i].key);
	free(items);
}

void skald__reg_batch_free(void *payload)
{
	skald__reg_batch_t *b = payload;
	if (b == NULL || atomic_fetch_sub(&b->refs, 1) != 1)
		return;
	skald__reg_items_free(b->items, b->n);
	free(b);
}

static int batch_encode(const void *payload, void **out, size_t *len)
{
	const skald__reg_batch_t *b = payload;
	if (b->what == REG_MSG_LOCAL)
		return SKALD_EENCODE; /* never leaves the node */
	wr_t w = {0};
	put_u(&w, b->what, 1);
	put_u(&w, b->flags, 1);
	put_u(&w, b->origin, 8);
	put_u(&w, b->ver, 8);
	put_u(&w, b->n, 4);
	for (uint32_t i = 0; i < b->n; i++) {
		const skald__reg_item_t *it = &b->items[i];
		put_u(&w, it->kind, 1);
		put_u(&w, it->add, 1);
		put_u(&w, (uint32_t)it->reason, 4);
		put_ref(&w, it->ref);
		put_key(&w, it->key);
	}
	return wr_done(&w, out, len);
}

static int batch_decode(const void *data, size_t len, void **payload)
{
	rd_t r = {data, (const uint8_t *)data + len, 0};
	int nomem = 0;
	uint8_t what = (uint8_t)get_u(&r, 1), flags = (uint8_t)get_u(&r, 1);
	uint64_t origin = get_u(&r, 8), ver = get_u(&r, 8);
	uint32_t n = (uint32_t)get_u(&r, 4);
	if (r.bad || what > REG_MSG_VER || origin == 0 || n > (size_t)(r.end - r.p) / ITEM_MIN)
		return SKALD_EDECODE;
	skald__reg_batch_t *b = skald__reg_batch_new(what, origin, ver);
	if (b == NULL || (n > 0 && (b->items = calloc(n, sizeof *b->items)) == NULL)) {
		free(b);
		return SKALD_ENOMEM;
	}
	b->flags = flags;
	b->cap = n;
	for (uint32_t i = 0; i < n && !r.bad; i++) {
		skald__reg_item_t *it = &b->items[i];
		it->kind = (uint8_t)get_u(&r, 1);
		it->add = (uint8_t)get_u(&r, 1);
		it->reason = (int32_t)(uint32_t)get_u(&r, 4);
		it->ref = get_ref(&r);
		it->key = get_key(&r, &nomem);
		if (r.bad)
			break;
		b->n++;
		if ((it->kind != REG_NAME && it->kind != REG_GROUP) || it->add > 1 ||
		    skald_ref_is_null(it->ref))
			r.bad = 1;
	}
	int rc = rd_done(&r, nomem);
	if (rc < 0) {
		skald__reg_batch_free(b);
		return rc;
	}
	*payload = b;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Spawn requests and results                                                */

void skald__reg_spawn_free(void *payload)
{
	skald__reg_spawn_t *s = payload;
	if (s == NULL)
		return;
	free(s->behavior);
	free(s->type);
	free(s->data);
	free(s);
}

static int spawn_encode(const void *payload, void **out, size_t *len)
{
	const skald__reg_spawn_t *s = payload;
	wr_t w = {0};
	put_str8(&w, s->behavior);
	put_str8(&w, s->type);
	put_u(&w, s->len, 4);
	put(&w, s->data, s->len);
	return wr_done(&w, out, len);
}

static int spawn_decode(const void *data, size_t len, void **payload)
{
	rd_t r = {data, (const uint8_t *)data + len, 0};
	int nomem = 0;
	skald__reg_spawn_t *s = calloc(1, sizeof *s);
	if (s == NULL)
		return SKALD_ENOMEM;
	s->behavior = get_str(&r, (size_t)get_u(&r, 1), &nomem);
	s->type = get_str(&r, (size_t)get_u(&r, 1), &nomem);
	s->len = (size_t)get_u(&r, 4);
	const uint8_t *p = take(&r, s->len);
	if (p != NULL && (s->data = malloc(s->len ? s->len : 1)) == NULL)
		nomem = 1;
	else if (p != NULL)
		memcpy(s->data, p, s->len);
	int rc = rd_done(&r, nomem);
	if (rc == 0 && s->behavior[0] == '\0')
		rc = SKALD_EDECODE;
	if (rc < 0) {
		skald__reg_spawn_free(s);
		return rc;
	}
	*payload = s;
	return 0;
}

skald__reg_result_t *skald__reg_result_new(int status, skald_ref_t ref)
{
	skald__reg_result_t *res = malloc(sizeof *res);
	if (res != NULL)
		*res = (skald__reg_result_t){status, ref};
	return res;
}

static int result_encode(const void *payload, void **out, size_t *len)
{
	const skald__reg_result_t *res = payload;
	wr_t w = {0};
	put_u(&w, (uint32_t)res->status, 4);
	put_ref(&w, res->ref);
	return wr_done(&w, out, len);
}

static int result_decode(const void *data, size_t len, void **payload)
{
	rd_t r = {data, (const uint8_t *)data + len, 0};
	skald__reg_result_t res;
	res.status = (int32_t)(uint32_t)get_u(&r, 4);
	res.ref = get_ref(&r);
	int rc = rd_done(&r, 0);
	if (rc < 0)
		return rc;
	if ((*payload = skald__reg_result_new(res.status, res.ref)) == NULL)
		return SKALD_ENOMEM;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* The built-in types: a lost name (crosses the wire), group events (never) */

static int lost_encode(const void *payload, void **out, size_t *len)
{
	const skald_name_lost_t *l = payload;
	wr_t w = {0};
	put_ref(&w, l->winner);
	put_key(&w, l->name);
	return wr_done(&w, out, len);
}

static int lost_decode(const void *data, size_t len, void **payload)
{
	rd_t r = {data, (const uint8_t *)data + len, 0};
	int nomem = 0;
	skald_ref_t winner = get_ref(&r);
	char *name = get_key(&r, &nomem);
	int rc = rd_done(&r, nomem);
	skald_name_lost_t *l = rc == 0 ? calloc(1, sizeof *l) : NULL;
	if (rc == 0 && l == NULL)
		rc = SKALD_ENOMEM;
	if (rc == 0) {
		l->winner = winner;
		memcpy(l->name, name, strlen(name) + 1);
		*payload = l;
	}
	free(name);
	return rc;
}

static void group_event_free(void *payload)
{
	skald_group_event_t *ev = payload;
	if (ev != NULL)
		free(ev->refs);
	free(ev);
}

static const skald_msgtype_t batch_type = {.name = "skald.reg.batch",
                                           .free = skald__reg_batch_free,
                                           .encode = batch_encode,
                                           .decode = batch_decode};
static const skald_msgtype_t spawn_type = {.name = "skald.reg.spawn",
                                           .free = skald__reg_spawn_free,
                                           .encode = spawn_encode,
                                           .decode = spawn_decode};
static const skald_msgtype_t result_type = {
        .name = "skald.reg.result", .free = free, .encode = result_encode, .decode = result_decode};
static const skald_msgtype_t lost_type = {
        .name = "skald.name-lost", .free = free, .encode = lost_encode, .decode = lost_decode};
static const skald_msgtype_t group_type = {.name = "skald.group", .free = group_event_free};

int skald__reg_types(void)
{
	int rc;
	if ((rc = skald__type_install(SKALD_TYPE_NAME_LOST, &lost_type)) < 0 ||
	    (rc = skald__type_install(SKALD_TYPE_GROUP, &group_type)) < 0 ||
	    (rc = skald_type_register(&batch_type, &skald__t_reg_batch)) < 0 ||
	    (rc = skald_type_register(&spawn_type, &skald__t_reg_spawn)) < 0 ||
	    (rc = skald_type_register(&result_type, &skald__t_reg_result)) < 0)
		return rc;
	return 0;
}
