/*
 * sharding/api.c - skald/sharding.h: starting and stopping a region, and
 * sending to an entity through this member's region.
 *
 * A client's message goes to the local region as one envelope (hops 0):
 * the region takes its sender and ask id from the envelope's own delivery,
 * so an ask's pending entry and timeout stay the runtime's (skald_ask), and
 * the entity's reply reaches the asker directly.
 */
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "journal/entity_int.h"
#include "sharding/region.h"

#define ID_MAX     1024u
#define SHARDS_MAX 65536u

/* Regions published in this process, by system and name, so that a type
 * started twice on one system is refused instead of silently replacing the
 * first. */
typedef struct live_s {
	struct live_s *next;
	skald_system_t *sys;
	skald_sharding_t *sh;
} live_t;

static uv_mutex_t live_lock;
static uv_once_t live_once = UV_ONCE_INIT;
static live_t *lives;

static void live_init(void)
{
	if (uv_mutex_init(&live_lock) != 0)
		abort();
}

/* Adds sh to the list unless its name is taken on its system. */
static int live_add(skald_sharding_t *sh)
{
	uv_once(&live_once, live_init);
	live_t *l = malloc(sizeof *l);
	if (l == NULL)
		return SKALD_ENOMEM;
	uv_mutex_lock(&live_lock);
	for (live_t *x = lives; x != NULL; x = x->next) {
		if (x->sys == sh->sys && strcmp(x->sh->name, sh->name) == 0) {
			uv_mutex_unlock(&live_lock);
			free(l);
			return SKALD_EINVAL;
		}
	}
	l->sys = sh->sys;
	l->sh = sh;
	l->next = lives;
	lives = l;
	uv_mutex_unlock(&live_lock);
	return 0;
}

static void live_del(skald_sharding_t *sh)
{
	uv_once(&live_once, live_init);
	uv_mutex_lock(&live_lock);
	for (live_t **pp = &lives; *pp != NULL; pp = &(*pp)->next) {
		if ((*pp)->sh == sh) {
			live_t *l = *pp;
			*pp = l->next;
			free(l);
			break;
		}
	}
	uv_mutex_unlock(&live_lock);
}

void skald__sharding_release(skald_sharding_t *sh)
{
	if (sh == NULL || atomic_fetch_sub(&sh->refs, 1) != 1)
		return;
	free(sh->owners);
	free(sh->single_id);
	free(sh->remember_name);
	free(sh);
}

static void recovered_wrapper(skald_actor_t *self, void *state)
{
	const shard_type_t *t = (const shard_type_t *)skald__entity_type(self);
	skald_tell(self, skald_parent(self), SKALD__TYPE_SHARD_READY, NULL);
	if (t != NULL && t->user->recovered != NULL)
		t->user->recovered(self, state);
}

/* Fills the defaults of cfg into sh->cfg; SKALD_EINVAL for bad values. */
static int defaults(skald_sharding_t *sh, const skald_sharding_config_t *cfg)
{
	skald_sharding_config_t c = *cfg;
	if (c.shards == 0)
		c.shards = 64;
	if (c.passivate_ms == 0)
		c.passivate_ms = 120000;
	if (c.max_recoveries == 0)
		c.max_recoveries = 32;
	if (c.max_buffer == 0)
		c.max_buffer = 10000;
	if (c.handoff_timeout_ms == 0)
		c.handoff_timeout_ms = 5000;
	if (c.backoff_min_ms == 0)
		c.backoff_min_ms = 200;
	if (c.backoff_max_ms == 0)
		c.backoff_max_ms = c.backoff_min_ms > 10000 ? c.backoff_min_ms : 10000;
	if (c.shards > SHARDS_MAX || c.backoff_min_ms > c.backoff_max_ms)
		return SKALD_EINVAL;
	sh->cfg = c;
	return 0;
}

/* A handle for sys with cfg, hosting type (or, for a plain singleton, no
 * type), published as "PREFIX.NAME". */
static int handle_new(skald_system_t *sys, int mode, const skald_sharding_config_t *cfg,
                      const char *prefix, const char *name, skald_sharding_t **out)
{
	skald_member_t self;
	if (sys == NULL || out == NULL || skald_cluster_self(sys, &self) < 0)
		return SKALD_EINVAL;
	int rc = skald__sharding_types();
	if (rc < 0)
		return rc;
	skald_sharding_t *sh = calloc(1, sizeof *sh);
	if (sh == NULL)
		return SKALD_ENOMEM;
	sh->sys = sys;
	sh->mode = mode;
	atomic_init(&sh->refs, 1);
	if ((rc = defaults(sh, cfg)) < 0) {
		free(sh);
		return rc;
	}
	snprintf(sh->name, sizeof sh->name, "%s.%s", prefix, name);
	const skald_entity_type_t *t = cfg->type;
	if (t != NULL) {
		sh->type.t = *t;
		sh->type.t.recovered = recovered_wrapper;
		sh->type.user = t;
		if ((rc = skald__entity_journal_check(sys, sh->name)) < 0) {
			free(sh);
			return rc;
		}
	}
	sh->owners = calloc(sh->cfg.shards, sizeof *sh->owners);
	if (sh->owners == NULL || (t != NULL && sh->cfg.remember && skald__rg_rem_type(sh) < 0)) {
		skald__sharding_release(sh);
		return SKALD_ENOMEM;
	}
	*out = sh;
	return 0;
}

/* Publishes and starts sh's region; on failure sh is released. */
static int handle_start(skald_sharding_t *sh)
{
	int rc = live_add(sh);
	if (rc < 0) {
		skald__sharding_release(sh);
		return rc;
	}
	if ((rc = skald__region_start(sh->sys, sh)) < 0) {
		live_del(sh);
		skald__sharding_release(sh);
	}
	return rc;
}

int skald_sharding_start(skald_system_t *sys, const skald_sharding_config_t *cfg,
                         skald_sharding_t **out)
{
	if (cfg == NULL || cfg->type == NULL || cfg->type->name == NULL ||
	    cfg->type->name[0] == '\0' || cfg->type->command == NULL || cfg->type->apply == NULL)
		return SKALD_EINVAL;
	skald_sharding_t *sh;
	int rc = handle_new(sys, REGION_SHARDS, cfg, "skald.sharding", cfg->type->name, &sh);
	if (rc < 0)
		return rc;
	if ((rc = handle_start(sh)) < 0)
		return rc;
	*out = sh;
	return 0;
}

void skald__region_stop_release(skald_sharding_t *sh)
{
	live_del(sh);
	skald__region_stop(sh);
}

void skald_sharding_stop(skald_sharding_t *sh)
{
	if (sh != NULL)
		skald__region_stop_release(sh);
}

/* ------------------------------------------------------------------------ */
/* Sending                                                                   */

static int envelope(skald_sharding_t *sh, const char *id, uint32_t type, void *payload,
                    shard_env_t **out)
{
	if (sh == NULL || id == NULL || id[0] == '\0' || strlen(id) > ID_MAX)
		return SKALD_EINVAL;
	if (skald_type_get(type) == NULL)
		return SKALD_ENOTYPE;
	if (atomic_load(&sh->stopped))
		return SKALD_ESTOPPING;
	if (atomic_load(&sh->buffered) >= sh->cfg.max_buffer)
		return SKALD_EBUFFERFULL;
	shard_env_t *env = skald__env_alloc(SK_MSG, id);
	if (env == NULL)
		return SKALD_ENOMEM;
	env->type = type;
	env->payload = payload;
	env->shard = skald__shard_of(id, sh->cfg.shards);
	*out = env;
	return 0;
}

/* The payload stays the caller's: only the envelope goes. */
static void envelope_drop(shard_env_t *env)
{
	env->payload = NULL;
	skald__shard_env_free(env);
}

int skald__region_tell(skald_sharding_t *sh, skald_actor_t *self, const char *id, uint32_t type,
                       void *payload)
{
	shard_env_t *env;
	int rc = envelope(sh, id, type, payload, &env);
	if (rc < 0)
		return rc;
	rc = self != NULL ? skald_tell(self, sh->region, SKALD__TYPE_SHARD_ENV, env)
	                  : skald_system_tell(sh->sys, sh->region, SKALD__TYPE_SHARD_ENV, env);
	if (rc < 0)
		envelope_drop(env);
	return rc;
}

int skald__region_ask(skald_sharding_t *sh, skald_actor_t *self, const char *id, uint32_t type,
                      void *payload, uint64_t timeout_ms, skald_reply_fn cb, void *arg)
{
	if (self == NULL || cb == NULL)
		return SKALD_EINVAL;
	shard_env_t *env;
	int rc = envelope(sh, id, type, payload, &env);
	if (rc < 0)
		return rc;
	env->deadline = skald__rg_now() + timeout_ms;
	rc = skald_ask(self, sh->region, SKALD__TYPE_SHARD_ENV, env, timeout_ms, cb, arg);
	if (rc < 0)
		envelope_drop(env);
	return rc;
}

int skald__region_system_ask(skald_sharding_t *sh, const char *id, uint32_t type, void *payload,
                             uint64_t timeout_ms, uint32_t *reply_type, void **reply_payload)
{
	if (reply_type == NULL || reply_payload == NULL)
		return SKALD_EINVAL;
	shard_env_t *env;
	int rc = envelope(sh, id, type, payload, &env);
	if (rc < 0)
		return rc;
	env->deadline = skald__rg_now() + timeout_ms;
	rc = skald_system_ask(sh->sys, sh->region, SKALD__TYPE_SHARD_ENV, env, timeout_ms,
	                      reply_type, reply_payload);
	/* These are found before anything is sent: the envelope was not
	 * consumed. Any other outcome consumed it, the payload with it. */
	if (rc == SKALD_EINVAL || rc == SKALD_ENOTYPE || rc == SKALD_ENOTOWNER ||
	    rc == SKALD_ENOMEM || rc == SKALD_ESTOPPING)
		envelope_drop(env);
	return rc;
}

int skald_sharding_tell(skald_sharding_t *sh, skald_actor_t *self, const char *id, uint32_t type,
                        void *payload)
{
	return skald__region_tell(sh, self, id, type, payload);
}

int skald_sharding_ask(skald_sharding_t *sh, skald_actor_t *self, const char *id, uint32_t type,
                       void *payload, uint64_t timeout_ms, skald_reply_fn cb, void *arg)
{
	return skald__region_ask(sh, self, id, type, payload, timeout_ms, cb, arg);
}

int skald_sharding_system_ask(skald_sharding_t *sh, const char *id, uint32_t type, void *payload,
                              uint64_t timeout_ms, uint32_t *reply_type, void **reply_payload)
{
	return skald__region_system_ask(sh, id, type, payload, timeout_ms, reply_type,
	                                reply_payload);
}

/* ------------------------------------------------------------------------ */
/* Looking                                                                   */

int skald_sharding_shard(const skald_sharding_t *sh, const char *id, unsigned *shard)
{
	if (sh == NULL || id == NULL || shard == NULL)
		return SKALD_EINVAL;
	*shard = skald__shard_of(id, sh->cfg.shards);
	return 0;
}

int skald_sharding_owner(skald_sharding_t *sh, const char *id, uint64_t *node)
{
	if (sh == NULL || id == NULL || node == NULL)
		return SKALD_EINVAL;
	*node = atomic_load(&sh->owners[skald__shard_of(id, sh->cfg.shards)]);
	return 0;
}

skald_ref_t skald_sharding_region(const skald_sharding_t *sh)
{
	return sh != NULL ? sh->region : SKALD_REF_NULL;
}

int skald_sharding_stats(skald_sharding_t *sh, skald_sharding_stats_t *out)
{
	if (sh == NULL || out == NULL)
		return SKALD_EINVAL;
	*out = (skald_sharding_stats_t){
	        .shards_owned = atomic_load(&sh->shards_owned),
	        .live_entities = atomic_load(&sh->live),
	        .recovering = atomic_load(&sh->recovering),
	        .buffered = atomic_load(&sh->buffered),
	        .started = atomic_load(&sh->started),
	        .handoffs_out = atomic_load(&sh->handoffs_out),
	        .handoffs_in = atomic_load(&sh->handoffs_in),
	        .takeovers = atomic_load(&sh->takeovers),
	        .passivated = atomic_load(&sh->passivated),
	        .restarts = atomic_load(&sh->restarts),
	        .conflicts = atomic_load(&sh->conflicts),
	        .dropped = atomic_load(&sh->dropped),
	};
	return 0;
}

/* ------------------------------------------------------------------------ */
/* For singleton.c                                                           */

int skald__singleton_handle(skald_system_t *sys, const skald_singleton_config_t *cfg,
                            skald_sharding_t **out)
{
	skald_sharding_config_t c = {
	        .type = cfg->type,
	        .shards = 1,
	        .passivate_ms = SKALD_SHARDING_NEVER,
	        .max_recoveries = 1,
	        .max_buffer = cfg->max_buffer,
	        .handoff_timeout_ms = cfg->handoff_timeout_ms,
	        .backoff_min_ms = cfg->backoff_min_ms,
	        .backoff_max_ms = cfg->backoff_max_ms,
	};
	skald_sharding_t *sh;
	int rc = handle_new(sys, REGION_SINGLETON, &c, "skald.singleton", cfg->name, &sh);
	if (rc < 0)
		return rc;
	sh->behavior = cfg->behavior;
	sh->behavior_arg = cfg->arg;
	if ((sh->single_id = strdup(cfg->name)) == NULL) {
		skald__sharding_release(sh);
		return SKALD_ENOMEM;
	}
	if ((rc = handle_start(sh)) < 0)
		return rc;
	*out = sh;
	return 0;
}
