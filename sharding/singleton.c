/*
 * sharding/singleton.c - cluster singletons: a region with one shard whose
 * owner is the oldest up member (view.c, skald__rg_owner), hosting one
 * entity or actor whose id is the singleton's name and which it starts as
 * soon as it serves the shard. The proxy on every member is the region
 * itself: it routes to the host and holds messages while the singleton
 * moves, as for any shard.
 */
#include <string.h>

#include "sharding/sharding_int.h"

#define NAME_MAX_LEN 100

struct skald_singleton_s {
	skald_sharding_t sh; /* never used: the handle is the region's */
};

static skald_sharding_t *region_of(skald_singleton_t *s)
{
	return (skald_sharding_t *)s;
}

int skald_singleton_start(skald_system_t *sys, const skald_singleton_config_t *cfg,
                          skald_singleton_t **out)
{
	if (cfg == NULL || out == NULL || cfg->name == NULL || cfg->name[0] == '\0' ||
	    strlen(cfg->name) > NAME_MAX_LEN || (cfg->type == NULL) == (cfg->behavior == NULL))
		return SKALD_EINVAL;
	if (cfg->behavior != NULL &&
	    (cfg->behavior->receive == NULL || cfg->behavior->free_arg != NULL))
		return SKALD_EINVAL;
	if (cfg->type != NULL && (cfg->type->name == NULL || cfg->type->name[0] == '\0' ||
	                          cfg->type->command == NULL || cfg->type->apply == NULL))
		return SKALD_EINVAL;
	skald_sharding_t *sh;
	int rc = skald__singleton_handle(sys, cfg, &sh);
	if (rc < 0)
		return rc;
	*out = (skald_singleton_t *)sh;
	return 0;
}

void skald_singleton_stop(skald_singleton_t *s)
{
	if (s != NULL)
		skald__region_stop_release(region_of(s));
}

int skald_singleton_tell(skald_singleton_t *s, skald_actor_t *self, uint32_t type, void *payload)
{
	if (s == NULL)
		return SKALD_EINVAL;
	return skald__region_tell(region_of(s), self, region_of(s)->single_id, type, payload);
}

int skald_singleton_ask(skald_singleton_t *s, skald_actor_t *self, uint32_t type, void *payload,
                        uint64_t timeout_ms, skald_reply_fn cb, void *arg)
{
	if (s == NULL)
		return SKALD_EINVAL;
	return skald__region_ask(region_of(s), self, region_of(s)->single_id, type, payload,
	                         timeout_ms, cb, arg);
}

int skald_singleton_system_ask(skald_singleton_t *s, uint32_t type, void *payload,
                               uint64_t timeout_ms, uint32_t *reply_type, void **reply_payload)
{
	if (s == NULL)
		return SKALD_EINVAL;
	return skald__region_system_ask(region_of(s), region_of(s)->single_id, type, payload,
	                                timeout_ms, reply_type, reply_payload);
}

int skald_singleton_host(skald_singleton_t *s, uint64_t *node)
{
	if (s == NULL || node == NULL)
		return SKALD_EINVAL;
	*node = atomic_load(&region_of(s)->owners[0]);
	return 0;
}

int skald_singleton_stats(skald_singleton_t *s, skald_sharding_stats_t *out)
{
	if (s == NULL)
		return SKALD_EINVAL;
	return skald_sharding_stats(region_of(s), out);
}
