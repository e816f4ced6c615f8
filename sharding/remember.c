/*
 * sharding/remember.c - remember entities: the set of live entities of
 * each shard, kept in the journal.
 *
 * The set is itself an entity, of type "skald.remember.TYPE" with the shard
 * number as its id, started by whichever member serves the shard. Its
 * events are "entities.started" and "entities.stopped", each with the ids
 * that started (first message) or stopped for good (passivated, or stopped
 * by themselves); a failure, a handoff or a failover does not remove an id.
 * When it has recovered it sends its set to the region, which starts those
 * entities without waiting for a message: after a failover the game
 * sessions in progress run again at once.
 *
 * Being an entity, it has a single writer like any other: a member that
 * serves the shard on a stale view conflicts on its next change and its set
 * stops. The region sends one change at a time and gathers what happens
 * meanwhile, so a thousand entities that start at once cost a few writes,
 * not a thousand. Snapshots keep recovery short.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/layer.h"
#include "base/log.h"
#include "sharding/region.h"

#define SNAPSHOT_EVERY 64
#define EV_STARTED     "entities.started"
#define EV_STOPPED     "entities.stopped"

/* ------------------------------------------------------------------------ */
/* The entity                                                                */

typedef struct {
	json_t *ids; /* {id: true} */
} rem_state_t;

static int rem_init(void *state, const char *id)
{
	rem_state_t *st = state;
	st->ids = json_object();
	return st->ids != NULL ? 0 : SKALD_ENOMEM;
}

static void rem_fini(void *state)
{
	rem_state_t *st = state;
	json_decref(st->ids);
	st->ids = NULL;
}

static int rem_apply(void *state, const skald_event_t *ev)
{
	rem_state_t *st = state;
	bool started = strcmp(ev->type, EV_STARTED) == 0;
	if (!started && strcmp(ev->type, EV_STOPPED) != 0)
		return 0; /* unknown: written by a newer build; ignored */
	json_t *ids = json_object_get(ev->data, "ids");
	size_t i;
	json_t *v;
	json_array_foreach(ids, i, v)
	{
		const char *id = json_string_value(v);
		if (id == NULL)
			continue;
		if (started)
			json_object_set_new(st->ids, id, json_true());
		else
			json_object_del(st->ids, id);
	}
	return 0;
}

static void rem_persisted(skald_actor_t *self, void *state, int status, void *arg)
{
	if (status == 0)
		skald_tell(self, skald_parent(self), SKALD__TYPE_SHARD_REM_ACK, NULL);
}

static int rem_command(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	if (msg->type != SKALD__TYPE_SHARD_REM)
		return 0;
	json_t *change = msg->payload;
	skald_new_event_t ev[2];
	size_t n = 0;
	json_t *started = json_object_get(change, "started");
	json_t *stopped = json_object_get(change, "stopped");
	if (json_array_size(started) > 0)
		ev[n++] = (skald_new_event_t){EV_STARTED, 1, json_pack("{sO}", "ids", started)};
	if (json_array_size(stopped) > 0)
		ev[n++] = (skald_new_event_t){EV_STOPPED, 1, json_pack("{sO}", "ids", stopped)};
	int rc = SKALD_ENOMEM;
	if (n > 0 && ev[0].data != NULL && (n < 2 || ev[1].data != NULL))
		rc = skald_persist_all(self, ev, n, rem_persisted, NULL);
	if (n == 0) {
		rem_persisted(self, state, 0, NULL);
		return 0;
	}
	if (rc < 0)
		for (size_t i = 0; i < n; i++)
			json_decref(ev[i].data);
	return rc;
}

static void rem_recovered(skald_actor_t *self, void *state)
{
	rem_state_t *st = state;
	json_t *list = json_array();
	const char *id;
	json_t *v;
	json_object_foreach(st->ids, id, v)
	{
		json_array_append_new(list, json_string(id));
	}
	if (list != NULL &&
	    skald_tell(self, skald_parent(self), SKALD__TYPE_SHARD_REM_LIST, list) < 0)
		json_decref(list);
}

static int rem_snapshot(const void *state, json_t **out)
{
	const rem_state_t *st = state;
	json_t *list = json_array();
	const char *id;
	json_t *v;
	json_object_foreach(st->ids, id, v)
	{
		json_array_append_new(list, json_string(id));
	}
	*out = json_pack("{so}", "ids", list);
	return *out != NULL ? 0 : SKALD_ENOMEM;
}

static int rem_restore(void *state, const json_t *snap, int version)
{
	rem_state_t *st = state;
	json_t *ids = json_object_get(snap, "ids");
	size_t i;
	json_t *v;
	json_array_foreach(ids, i, v)
	{
		if (json_string_value(v) != NULL)
			json_object_set_new(st->ids, json_string_value(v), json_true());
	}
	return 0;
}

int skald__rg_rem_type(skald_sharding_t *sh)
{
	size_t len = strlen("skald.remember.") + strlen(sh->type.user->name) + 1;
	sh->remember_name = malloc(len);
	if (sh->remember_name == NULL)
		return SKALD_ENOMEM;
	snprintf(sh->remember_name, len, "skald.remember.%s", sh->type.user->name);
	sh->remember = (skald_entity_type_t){
	        .name = sh->remember_name,
	        .state_size = sizeof(rem_state_t),
	        .init = rem_init,
	        .command = rem_command,
	        .apply = rem_apply,
	        .recovered = rem_recovered,
	        .fini = rem_fini,
	        .snapshot = rem_snapshot,
	        .restore = rem_restore,
	        .snapshot_every = SNAPSHOT_EVERY,
	};
	return 0;
}

/* ------------------------------------------------------------------------ */
/* The region's side                                                         */

static bool remembering(const region_t *r)
{
	return r->sh->cfg.remember && r->sh->mode == REGION_SHARDS;
}

static shard_t *shard_of_rem(region_t *r, skald_ref_t ref, uint32_t *s)
{
	for (uint32_t i = 0; i < r->nshards; i++)
		if (skald_ref_eq(r->shards[i].rem, ref)) {
			*s = i;
			return &r->shards[i];
		}
	return NULL;
}

/* Sends the gathered changes, if none is in flight. */
static void flush(skald_actor_t *self, region_t *r, shard_t *sh, bool force)
{
	if (skald_ref_is_null(sh->rem) || (sh->rem_busy && !force) || sh->rem_pending == NULL ||
	    json_object_size(sh->rem_pending) == 0)
		return;
	json_t *started = json_array(), *stopped = json_array();
	const char *id;
	json_t *v;
	json_object_foreach(sh->rem_pending, id, v)
	{
		json_array_append_new(json_is_true(v) ? started : stopped, json_string(id));
	}
	json_t *change = json_pack("{soso}", "started", started, "stopped", stopped);
	if (change == NULL || skald_tell(self, sh->rem, SKALD__TYPE_SHARD_REM, change) < 0) {
		json_decref(change);
		return; /* stays pending; sent with the next change */
	}
	/* With force, a change may still be in flight: its record joins this
	 * one's, so that a failure sends both again. */
	json_t *sent = sh->rem_sent;
	if (sent != NULL) {
		json_object_update_missing(sh->rem_pending, sent);
		json_decref(sent);
	}
	sh->rem_sent = sh->rem_pending;
	sh->rem_pending = json_object();
	sh->rem_busy = true;
}

void skald__rg_rem_start(skald_actor_t *self, region_t *r, uint32_t s)
{
	shard_t *sh = &r->shards[s];
	if (!remembering(r) || !skald_ref_is_null(sh->rem) || sh->rem_stopping)
		return;
	char id[16];
	snprintf(id, sizeof id, "%u", s);
	skald_spawn_opts_t opts = {SKALD_SPAWN_PIN, r->next_thread++};
	skald_ref_t ref;
	int rc = skald_entity_spawn_child(self, &r->sh->remember, id, &opts, &ref);
	if (rc == 0 && (rc = skald_watch(self, ref)) < 0)
		skald_stop(r->sys, ref);
	if (rc < 0) {
		sh->rem_failures++;
		sh->rem_retry = skald__rg_now() + skald__rg_backoff(r, sh->rem_failures);
		RG_LOG(r, SKALD_LOG_ERROR, "cannot start the set of shard %u: %s", s,
		       skald_strerror(rc));
		return;
	}
	sh->rem = ref;
	sh->rem_busy = false;
	sh->rem_retry = 0;
	if (sh->rem_pending == NULL)
		sh->rem_pending = json_object();
	flush(self, r, sh, false);
}

void skald__rg_rem_change(skald_actor_t *self, region_t *r, uint32_t s, const char *id,
                          bool started)
{
	if (!remembering(r))
		return;
	shard_t *sh = &r->shards[s];
	if (sh->rem_pending == NULL && (sh->rem_pending = json_object()) == NULL)
		return;
	json_object_set_new(sh->rem_pending, id, json_boolean(started));
	flush(self, r, sh, false);
}

void skald__rg_rem_stop(skald_actor_t *self, region_t *r, uint32_t s, bool do_flush)
{
	shard_t *sh = &r->shards[s];
	if (skald_ref_is_null(sh->rem) || sh->rem_stopping)
		return;
	if (do_flush)
		flush(self, r, sh, true);
	sh->rem_stopping = true;
	skald_stop(r->sys, sh->rem);
}

void skald__rg_rem_ack(skald_actor_t *self, region_t *r, skald_ref_t from)
{
	uint32_t s;
	shard_t *sh = shard_of_rem(r, from, &s);
	if (sh == NULL)
		return;
	json_decref(sh->rem_sent);
	sh->rem_sent = NULL;
	sh->rem_busy = false;
	sh->rem_failures = 0;
	if (!sh->rem_stopping)
		flush(self, r, sh, false);
}

void skald__rg_rem_list(skald_actor_t *self, region_t *r, skald_ref_t from, json_t *ids)
{
	uint32_t s;
	shard_t *sh = shard_of_rem(r, from, &s);
	if (sh == NULL || sh->state != SH_SERVING)
		return;
	size_t i;
	json_t *v;
	json_array_foreach(ids, i, v)
	{
		const char *id = json_string_value(v);
		if (id != NULL && *id != '\0')
			skald__rg_ensure(self, r, s, id);
	}
}

bool skald__rg_rem_down(skald_actor_t *self, region_t *r, skald_ref_t ref, int reason)
{
	uint32_t s;
	shard_t *sh = shard_of_rem(r, ref, &s);
	if (sh == NULL)
		return false;
	bool stopping = sh->rem_stopping;
	sh->rem = SKALD_REF_NULL;
	sh->rem_busy = false;
	sh->rem_stopping = false;
	/* A change whose write was not confirmed is sent again by the next
	 * set (a change is idempotent); newer pending changes win. */
	if (sh->rem_sent != NULL) {
		if (sh->rem_pending != NULL)
			json_object_update_missing(sh->rem_pending, sh->rem_sent);
		json_decref(sh->rem_sent);
		sh->rem_sent = NULL;
	}
	bool serving = sh->state == SH_SERVING && !r->stopping && !r->down;
	if (serving && (reason < 0 || !stopping)) {
		if (reason == SKALD_ECONFLICT)
			atomic_fetch_add(&r->sh->conflicts, 1);
		sh->rem_failures++;
		uint64_t delay = skald__rg_backoff(r, sh->rem_failures);
		sh->rem_retry = skald__rg_now() + delay;
		RG_LOG(r, SKALD_LOG_WARN,
		       "the set of shard %u stopped (%s); starting it again in "
		       "%llu ms",
		       s, skald_err_name(reason), (unsigned long long)delay);
	} else if (serving) {
		skald__rg_rem_start(self, r, s); /* the shard came back during its handoff */
	} else {
		json_decref(sh->rem_pending);
		sh->rem_pending = NULL;
	}
	skald__rg_handoff_check(self, r, s);
	skald__rg_stop_check(self, r);
	return true;
}

void skald__rg_rem_tick(skald_actor_t *self, region_t *r, uint64_t now)
{
	if (!remembering(r))
		return;
	for (uint32_t s = 0; s < r->nshards; s++) {
		shard_t *sh = &r->shards[s];
		if (sh->state == SH_SERVING && skald_ref_is_null(sh->rem) && sh->rem_retry != 0 &&
		    now >= sh->rem_retry)
			skald__rg_rem_start(self, r, s);
	}
}
