/*
 * actors/remote/registry.c - names published on this node, for lookups from
 * other nodes (the CAF-style rendezvous).
 *
 * A system actor owns the table, so it needs no lock: skald_publish tells it,
 * a remote lookup asks it (the HELLO of each node carries its reference), and
 * it watches every published actor to drop its names when it stops.
 */
#include <stdlib.h>
#include <string.h>

#include "actors/remote/remote_int.h"

uint32_t skald__t_lookup, skald__t_lookup_reply;
static uint32_t t_publish;

/* --- codecs: a name is its bytes; a reply is node, actor, incarnation --- */

static int name_encode(const void *payload, void **out, size_t *len)
{
	size_t n = strlen(payload);
	if ((*out = malloc(n ? n : 1)) == NULL)
		return SKALD_ENOMEM;
	memcpy(*out, payload, n);
	*len = n;
	return 0;
}

static int name_decode(const void *data, size_t len, void **payload)
{
	if (len == 0 || len > 1024 || memchr(data, 0, len) != NULL)
		return SKALD_EDECODE;
	char *s = malloc(len + 1);
	if (s == NULL)
		return SKALD_ENOMEM;
	memcpy(s, data, len);
	s[len] = '\0';
	*payload = s;
	return 0;
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static int ref_encode(const void *payload, void **out, size_t *len)
{
	const skald_ref_t *r = payload;
	uint8_t *b = malloc(16);
	if (b == NULL)
		return SKALD_ENOMEM;
	put64(b, r->node);
	put64(b + 8, (uint64_t)r->actor << 32 | r->incarnation);
	*out = b;
	*len = 16;
	return 0;
}

static int ref_decode(const void *data, size_t len, void **payload)
{
	if (len != 16)
		return SKALD_EDECODE;
	skald_ref_t *r = malloc(sizeof *r);
	if (r == NULL)
		return SKALD_ENOMEM;
	r->node = get64(data);
	uint64_t ai = get64((const uint8_t *)data + 8);
	r->actor = (uint32_t)(ai >> 32);
	r->incarnation = (uint32_t)ai;
	*payload = r;
	return 0;
}

static const skald_msgtype_t lookup_type = {
        .name = "skald.lookup", .free = free, .encode = name_encode, .decode = name_decode};
static const skald_msgtype_t lookup_reply_type = {
        .name = "skald.lookup-reply", .free = free, .encode = ref_encode, .decode = ref_decode};

typedef struct {
	char *name;
	skald_ref_t ref;
} publish_t;

static void publish_free(void *p)
{
	publish_t *pb = p;
	free(pb->name);
	free(pb);
}

static const skald_msgtype_t publish_type = {.name = "skald.publish", .free = publish_free};

/* --- the registry actor ----------------------------------------------- */

typedef struct {
	publish_t *v;
	size_t n, cap;
} registry_t;

static int registry_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	registry_t *r = state;
	if (msg->type == t_publish) {
		publish_t *pb = msg->payload;
		for (size_t i = 0; i < r->n; i++) {
			if (strcmp(r->v[i].name, pb->name) == 0) {
				r->v[i].ref = pb->ref;
				skald_watch(self, pb->ref);
				return 0;
			}
		}
		if (r->n == r->cap) {
			size_t cap = r->cap ? r->cap * 2 : 8;
			publish_t *v = realloc(r->v, cap * sizeof *v);
			if (v == NULL)
				return 0; /* the name is not published; logged below */
			r->v = v;
			r->cap = cap;
		}
		r->v[r->n].name = pb->name;
		r->v[r->n].ref = pb->ref;
		r->n++;
		pb->name = NULL; /* moved into the table */
		skald_watch(self, pb->ref);
	} else if (msg->type == skald__t_lookup) {
		skald_ref_t *found = malloc(sizeof *found);
		if (found == NULL)
			return 0;
		*found = SKALD_REF_NULL;
		for (size_t i = 0; i < r->n; i++)
			if (strcmp(r->v[i].name, msg->payload) == 0)
				*found = r->v[i].ref;
		if (skald_reply(self, msg, skald__t_lookup_reply, found) < 0)
			free(found);
	} else if (msg->type == SKALD_TYPE_DOWN) {
		const skald_down_t *d = msg->payload;
		for (size_t i = 0; i < r->n;) {
			if (skald_ref_eq(r->v[i].ref, d->ref)) {
				free(r->v[i].name);
				r->v[i] = r->v[--r->n];
			} else {
				i++;
			}
		}
	}
	return 0;
}

static void registry_stop(skald_actor_t *self, void *state, int reason)
{
	registry_t *r = state;
	for (size_t i = 0; i < r->n; i++)
		free(r->v[i].name);
	free(r->v);
}

static const skald_behavior_t registry_behavior = {
        .state_size = sizeof(registry_t),
        .receive = registry_receive,
        .stop = registry_stop,
};

int skald__registry_start(skald_system_t *sys, skald__net_t *net)
{
	int rc;
	if ((rc = skald_type_register(&lookup_type, &skald__t_lookup)) < 0 ||
	    (rc = skald_type_register(&lookup_reply_type, &skald__t_lookup_reply)) < 0 ||
	    (rc = skald_type_register(&publish_type, &t_publish)) < 0)
		return rc;
	return skald_spawn(sys, &registry_behavior, NULL, NULL, &net->registry);
}

int skald_publish(skald_system_t *sys, const char *name, skald_ref_t ref)
{
	skald__net_t *net = skald__net_of(sys);
	if (net == NULL)
		return SKALD_ENONET;
	if (name == NULL || name[0] == '\0' || strlen(name) > 1024 || skald_ref_is_null(ref))
		return SKALD_EINVAL;
	publish_t *pb = malloc(sizeof *pb);
	if (pb == NULL || (pb->name = strdup(name)) == NULL) {
		free(pb);
		return SKALD_ENOMEM;
	}
	pb->ref = ref;
	int rc = skald_system_tell(sys, net->registry, t_publish, pb);
	if (rc < 0)
		publish_free(pb);
	return rc;
}

int skald_system_lookup(skald_system_t *sys, const char *addr, const char *name,
                        uint64_t timeout_ms, skald_ref_t *ref)
{
	skald__net_t *net = skald__net_of(sys);
	if (net == NULL)
		return SKALD_ENONET;
	if (name == NULL || name[0] == '\0' || ref == NULL)
		return SKALD_EINVAL;
	uint64_t node;
	int rc = skald_node_wait(sys, addr, timeout_ms, &node);
	if (rc < 0)
		return rc;
	skald__peer_t *p = skald__peer_find(net, node);
	char *q = strdup(name);
	if (q == NULL)
		return SKALD_ENOMEM;
	uint32_t type;
	void *reply;
	rc = skald_system_ask(sys, p->registry, skald__t_lookup, q, timeout_ms, &type, &reply);
	if (rc < 0)
		return rc;
	skald_ref_t found = *(skald_ref_t *)reply;
	free(reply);
	if (skald_ref_is_null(found))
		return SKALD_ENOTFOUND;
	*ref = found;
	return 0;
}
