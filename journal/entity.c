/*
 * journal/entity.c - persistent actors: recovery, persist, snapshots.
 *
 * An entity is an actor whose behaviour is `entity_behavior` below; the
 * user's entity type is driven from it. While recovering or while a write is
 * in flight the actor's mailbox is paused, so commands wait in order without
 * being copied anywhere.
 *
 * Journal callbacks arrive on the entity's loop but outside its turns, and
 * possibly after it stopped or restarted. Each operation therefore carries
 * the entity's reference and a token drawn at init: a callback whose entity
 * is gone, or whose token is stale, only frees its own memory.
 */
#include <stdlib.h>
#include <string.h>

#include "actors/layer.h"
#include "base/log.h"
#include "base/metrics_int.h"
#include "journal/entity_int.h"
#include "journal/journal_int.h"
#include "journal/writer.h"
#include "skald/entity.h"

/* The spawn argument, owned by the actor (free_arg). */
typedef struct {
	const skald_entity_type_t *type;
	size_t id_off; /* the id inside pid, after "NAME-" */
	char pid[];
} entity_arg_t;

typedef struct {
	const entity_arg_t *arg;
	skald_system_t *sys;
	skald_ref_t ref; /* the entity's own, for its operations in flight */
	void *state;     /* the user's state */
	uint64_t seq;
	uint64_t snap_seq;
	uint64_t token;
	skald__writer_t *w;
	bool ready;
	bool second_pass;     /* recovery: the replay up to the highest seq */
	uint64_t target;      /* the highest seq the second pass replays to */
	struct persist_s *pw; /* the write in flight */
	uint64_t start_ns;    /* uv_hrtime() at init, for the recovery metric */
	uint64_t read_ns;     /* uv_hrtime() when the current replay read began */
} entity_t;

/* Common head of every operation in flight. */
typedef struct {
	skald_system_t *sys;
	skald_ref_t ref;
	uint64_t token;
} op_t;

typedef struct persist_s {
	skald__pwrite_t pw;
	op_t op;
	skald_persist_fn cb;
	void *cb_arg;
	void (*cb_arg_free)(void *arg); /* releases cb_arg, whether cb ran or not */
	size_t n;
	skald_event_t events[];
} persist_t;

static _Thread_local uint64_t next_token;

static const skald_behavior_t entity_behavior;

/* The runtime's wrapper of an entity lives in the actor's state block; the
 * actor's `state`, which every callback (asks, timers) receives, is the
 * user's state once init has run. */
static entity_t *entity_of(const skald_actor_t *self)
{
	return self != NULL ? skald__actor_block_of(self, &entity_behavior) : NULL;
}

/* The entity an operation belongs to, if it is still the same life. */
static skald_actor_t *op_owner(const op_t *op, entity_t **e)
{
	skald_actor_t *a = skald__actor_local(op->sys, op->ref);
	if (a == NULL)
		return NULL;
	*e = entity_of(a);
	return (*e)->token == op->token ? a : NULL;
}

static void op_set(op_t *op, const entity_t *e)
{
	op->sys = e->sys;
	op->ref = e->ref;
	op->token = e->token;
}

/* ------------------------------------------------------------------------ */
/* Snapshots                                                                 */

typedef struct {
	op_t op;
	skald_snapshot_t snap;
	char pid[];
} snapshot_op_t;

static void snapshot_saved(skald_journal_t *j, int status, void *arg)
{
	snapshot_op_t *s = arg;
	char d[600];
	if (status < 0)
		SKALD_LOG(SKALD_LOG_WARN, "%s: snapshot at seq %llu not saved: %s%s", s->pid,
		          (unsigned long long)s->snap.seq, skald_strerror(status),
		          skald__log_paren(skald_journal_errmsg(j), d, sizeof d));
	json_decref(s->snap.data);
	free(s);
}

static int save_snapshot(entity_t *e)
{
	const skald_entity_type_t *t = e->arg->type;
	if (t->snapshot == NULL || t->restore == NULL)
		return SKALD_EUNSUPPORTED;
	json_t *data = NULL;
	int rc = t->snapshot(e->state, &data);
	if (rc < 0 || data == NULL) {
		SKALD_LOG(SKALD_LOG_WARN, "%s: the snapshot callback failed: %s", e->arg->pid,
		          skald_strerror(rc));
		json_decref(data);
		return rc < 0 ? rc : SKALD_EENCODE;
	}
	size_t len = strlen(e->arg->pid) + 1;
	snapshot_op_t *s = malloc(sizeof *s + len);
	if (s == NULL) {
		json_decref(data);
		return SKALD_ENOMEM;
	}
	op_set(&s->op, e);
	memcpy(s->pid, e->arg->pid, len);
	s->snap = (skald_snapshot_t){s->pid, e->seq, t->snapshot_version ? t->snapshot_version : 1,
	                             data, 0};
	rc = skald_journal_snapshot_save(skald__writer_journal(e->w), &s->snap, snapshot_saved, s);
	if (rc < 0) {
		snapshot_saved(skald__writer_journal(e->w), rc, s);
		return rc;
	}
	e->snap_seq = e->seq;
	return 0;
}

int skald_entity_snapshot(skald_actor_t *self)
{
	entity_t *e = entity_of(self);
	if (e == NULL || !e->ready)
		return SKALD_EINVAL;
	return save_snapshot(e);
}

/* ------------------------------------------------------------------------ */
/* Recovery                                                                  */

static void recovery_failed(skald_actor_t *a, entity_t *e, int rc, const char *what)
{
	skald_journal_t *j = skald__writer_journal(e->w);
	uint64_t seq;
	char d[600];
	if (rc == SKALD_EDECODE && skald_journal_bad_event(j, NULL, &seq, NULL) == 0)
		SKALD_LOG_AT(a, SKALD_LOG_ERROR,
		             "%s: recovery failed: event seq %llu is in the journal but cannot be "
		             "read back (%s); the entity cannot recover past it",
		             e->arg->pid, (unsigned long long)seq, skald_journal_errmsg(j));
	else
		SKALD_LOG_AT(a, SKALD_LOG_ERROR, "%s: recovery failed while %s: %s%s", e->arg->pid,
		             what, skald_strerror(rc),
		             skald__log_paren(skald_journal_errmsg(j), d, sizeof d));
	skald__actor_terminate(a, rc);
}

static void recovery_done(skald_actor_t *a, entity_t *e)
{
	e->ready = true;
	skald_metric_observe(skald__m.recovery, (double)(uv_hrtime() - e->start_ns) / 1e9);
	if (e->arg->type->recovered != NULL)
		e->arg->type->recovered(a, e->state);
	if (!skald__actor_terminated(a) && e->pw == NULL)
		skald__actor_resume(a);
	skald__actor_after_callback(a);
}

static void replay(skald_actor_t *a, entity_t *e, op_t *op, uint64_t to);

static void highest_cb(skald_journal_t *j, int status, uint64_t seq, void *arg)
{
	op_t *op = arg;
	entity_t *e;
	skald_actor_t *a = op_owner(op, &e);
	if (a == NULL) {
		free(op);
		return;
	}
	if (status < 0) {
		free(op);
		recovery_failed(a, e, status, "reading the highest seq");
		return;
	}
	/* Events at or below the highest that the replay did not see were
	 * either written by another incarnation while we replayed, or deleted.
	 * Replay once more up to this highest to apply the former; what is
	 * still missing after that was deleted, and new writes must follow
	 * the highest all the same (replay_done). */
	if (seq > e->seq) {
		e->second_pass = true;
		e->target = seq;
		replay(a, e, op, seq);
		return;
	}
	free(op);
	recovery_done(a, e);
}

static int replay_cb(skald_journal_t *j, const skald_event_t *events, size_t n, void *arg)
{
	op_t *op = arg;
	entity_t *e;
	skald_actor_t *a = op_owner(op, &e);
	if (a == NULL)
		return SKALD_ECANCELED;
	for (size_t i = 0; i < n; i++) {
		int rc = e->arg->type->apply(e->state, &events[i]);
		if (rc < 0) {
			SKALD_LOG_AT(a, SKALD_LOG_ERROR, "%s: apply failed on seq %llu (%s): %s",
			             e->arg->pid, (unsigned long long)events[i].seq, events[i].type,
			             skald_strerror(rc));
			return rc;
		}
		e->seq = events[i].seq;
	}
	return 0;
}

static void replay_done(skald_journal_t *j, int status, void *arg)
{
	op_t *op = arg;
	entity_t *e;
	skald_actor_t *a = op_owner(op, &e);
	if (a == NULL) {
		free(op);
		return;
	}
	skald_metric_observe(skald__m.journal_replay, (double)(uv_hrtime() - e->read_ns) / 1e9);
	if (status < 0) {
		free(op);
		/* The first read is also where a store connects: before any
		 * event was replayed, that is what failed. */
		recovery_failed(a, e, status,
		                e->seq > e->snap_seq ? "replaying events"
		                                     : "reading its events (none was replayed)");
		return;
	}
	if (e->second_pass) {
		/* Not the highest of now: a write after it must be a conflict
		 * for us, never a gap we jump. */
		free(op);
		if (e->target > e->seq)
			e->seq = e->target;
		recovery_done(a, e);
		return;
	}
	int rc = skald_journal_highest(j, e->arg->pid, highest_cb, op);
	if (rc < 0) {
		free(op);
		recovery_failed(a, e, rc, "reading the highest seq");
	}
}

/* Replays the events after e->seq up to `to`; replay_done goes on. */
static void replay(skald_actor_t *a, entity_t *e, op_t *op, uint64_t to)
{
	skald_journal_t *j = skald__writer_journal(e->w);
	e->read_ns = uv_hrtime();
	int rc = skald_journal_read(j, e->arg->pid, e->seq + 1, to, SKALD_SEQ_MAX, replay_cb,
	                            replay_done, op);
	if (rc < 0) {
		free(op);
		recovery_failed(a, e, rc, "replaying events");
	}
}

static void snapshot_loaded(skald_journal_t *j, int status, const skald_snapshot_t *snap, void *arg)
{
	op_t *op = arg;
	entity_t *e;
	skald_actor_t *a = op_owner(op, &e);
	if (a == NULL) {
		free(op);
		return;
	}
	/* A failed load fails recovery: the events before the snapshot may
	 * have been deleted, so starting from nothing would be wrong. */
	if (status < 0) {
		free(op);
		recovery_failed(a, e, status, "loading the snapshot");
		return;
	}
	if (snap != NULL) {
		int rc = e->arg->type->restore(e->state, snap->data, snap->version);
		if (rc < 0) {
			free(op);
			recovery_failed(a, e, rc, "restoring the snapshot");
			return;
		}
		e->seq = e->snap_seq = snap->seq;
	}
	replay(a, e, op, SKALD_SEQ_MAX);
}

static void recover(skald_actor_t *a, entity_t *e)
{
	op_t *op = malloc(sizeof *op);
	if (op == NULL) {
		recovery_failed(a, e, SKALD_ENOMEM, "starting");
		return;
	}
	op_set(op, e);
	skald_journal_t *j = skald__writer_journal(e->w);
	const skald_entity_type_t *t = e->arg->type;
	if (t->restore != NULL && (skald_journal_caps(j) & SKALD_CAP_SNAPSHOTS)) {
		int rc = skald_journal_snapshot_load(j, e->arg->pid, SKALD_SEQ_MAX, snapshot_loaded,
		                                     op);
		if (rc < 0) {
			free(op);
			recovery_failed(a, e, rc, "loading the snapshot");
		}
		return;
	}
	replay(a, e, op, SKALD_SEQ_MAX);
}

/* ------------------------------------------------------------------------ */
/* The actor                                                                 */

/* The persistence id in the context of log lines (base/log.h). */
static void log_pid(const void *actor, int field, char *buf, size_t len)
{
	const char *pid = skald_entity_pid(actor);
	snprintf(buf, len, "%s", pid != NULL ? pid : "");
}

static int entity_init(skald_actor_t *self, void *state, void *arg)
{
	entity_t *e = entity_of(self);
	const entity_arg_t *ea = arg;
	int rc = 0;
	e->arg = ea;
	e->sys = skald_actor_system(self);
	e->ref = skald_self(self);
	e->token = ++next_token;
	skald__log_hook(SKALD__LOG_PID, log_pid);
	e->start_ns = uv_hrtime();
	e->w = skald__writer_get(self, &rc);
	if (e->w == NULL)
		return rc;
	e->state = calloc(1, ea->type->state_size ? ea->type->state_size : 1);
	if (e->state == NULL)
		return SKALD_ENOMEM;
	if (ea->type->init != NULL && (rc = ea->type->init(e->state, ea->pid + ea->id_off)) < 0)
		return rc;
	/* From now on every callback of the actor gets the user's state. */
	skald__actor_set_state(self, e->state);
	/* Commands wait in the mailbox until recovery completes. The first
	 * journal callback comes on a later loop pass, after init returns. */
	skald__actor_pause(self);
	recover(self, e);
	return 0;
}

static int entity_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	entity_t *e = entity_of(self);
	return e->arg->type->command(self, e->state, msg);
}

static void entity_stop(skald_actor_t *self, void *state, int reason)
{
	entity_t *e = entity_of(self);
	/* A write still in flight completes into nothing: its token is stale
	 * once this life ends (restart draws a new one). */
	e->pw = NULL;
	e->token = 0;
	if (e->state != NULL) {
		if (e->arg->type->fini != NULL)
			e->arg->type->fini(e->state);
		free(e->state);
		e->state = NULL;
	}
}

static const skald_behavior_t entity_behavior = {
        .state_size = sizeof(entity_t),
        .init = entity_init,
        .receive = entity_receive,
        .stop = entity_stop,
        .free_arg = free,
};

int skald__entity_journal_check(skald_system_t *sys, const char *who)
{
	const skald_store_t *store;
	const char *uri;
	char err[256];
	int rc = skald__journal_uri(skald__system_journal(sys), SKALD__JOURNAL_DEFAULT, &uri, err,
	                            sizeof err);
	if (rc == 0)
		rc = skald__registry_find(uri, &store, err, sizeof err);
	if (rc < 0) {
		SKALD_LOG(SKALD_LOG_ERROR, "%s: %s", who, err);
		skald__journal_open_failed(err);
	}
	return rc;
}

static int make_arg(skald_system_t *sys, const skald_entity_type_t *type, const char *id,
                    entity_arg_t **out)
{
	if (type == NULL || type->name == NULL || type->name[0] == '\0' || type->command == NULL ||
	    type->apply == NULL || id == NULL || id[0] == '\0')
		return SKALD_EINVAL;
	/* jansson seeds its hash function on the first object it creates;
	 * seeding before the entity runs keeps scheduler threads from racing
	 * to do it. */
	json_object_seed(0);
	char who[128];
	snprintf(who, sizeof who, "entity %s-%s", type->name, id);
	int rc = skald__entity_journal_check(sys, who);
	if (rc < 0)
		return rc;
	size_t nl = strlen(type->name), il = strlen(id);
	entity_arg_t *ea = malloc(sizeof *ea + nl + 1 + il + 1);
	if (ea == NULL)
		return SKALD_ENOMEM;
	ea->type = type;
	ea->id_off = nl + 1;
	memcpy(ea->pid, type->name, nl);
	ea->pid[nl] = '-';
	memcpy(ea->pid + nl + 1, id, il + 1);
	*out = ea;
	return 0;
}

int skald_entity_spawn(skald_system_t *sys, const skald_entity_type_t *type, const char *id,
                       const skald_spawn_opts_t *opts, skald_ref_t *out)
{
	entity_arg_t *ea;
	if (sys == NULL || out == NULL)
		return SKALD_EINVAL;
	int rc = make_arg(sys, type, id, &ea);
	if (rc < 0)
		return rc;
	if ((rc = skald_spawn(sys, &entity_behavior, ea, opts, out)) < 0)
		free(ea);
	return rc;
}

int skald_entity_spawn_child(skald_actor_t *self, const skald_entity_type_t *type, const char *id,
                             const skald_spawn_opts_t *opts, skald_ref_t *out)
{
	entity_arg_t *ea;
	if (self == NULL || out == NULL)
		return SKALD_EINVAL;
	int rc = make_arg(skald_actor_system(self), type, id, &ea);
	if (rc < 0)
		return rc;
	if ((rc = skald_spawn_child(self, &entity_behavior, ea, opts, out)) < 0)
		free(ea);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Persist                                                                   */

static void persist_free(persist_t *p)
{
	for (size_t i = 0; i < p->n; i++) {
		free((char *)p->events[i].type);
		json_decref(p->events[i].data);
	}
	free((char *)p->pw.w.persistence_id);
	if (p->cb_arg_free != NULL)
		p->cb_arg_free(p->cb_arg);
	free(p);
}

static void persisted(skald__pwrite_t *pw, int status)
{
	persist_t *p = (persist_t *)pw;
	entity_t *e;
	skald_actor_t *a = op_owner(&p->op, &e);
	if (a == NULL || e->pw != p) {
		persist_free(p);
		return;
	}
	e->pw = NULL;
	int failed = 0;
	if (status < 0)
		skald_metric_inc(skald__m.write_failures, 1);
	if (status == 0) {
		for (size_t i = 0; i < p->n; i++) {
			int rc = e->arg->type->apply(e->state, &p->events[i]);
			e->seq = p->events[i].seq;
			if (rc < 0 && !failed) {
				SKALD_LOG_AT(a, SKALD_LOG_ERROR,
				             "%s: apply failed on seq %llu (%s): %s", e->arg->pid,
				             (unsigned long long)p->events[i].seq,
				             p->events[i].type, skald_strerror(rc));
				failed = rc;
			}
		}
	} else if (status == SKALD_ECONFLICT) {
		SKALD_LOG_AT(a, SKALD_LOG_WARN,
		             "%s: another writer appended after seq %llu first; stopping this one "
		             "(its state no longer reflects the journal)",
		             e->arg->pid, (unsigned long long)p->pw.w.expected_seq);
	} else if (status != SKALD_EREJECTED) {
		char d[600];
		SKALD_LOG_AT(a, SKALD_LOG_ERROR, "%s: journal write failed: %s%s; stopping",
		             e->arg->pid, skald_strerror(status),
		             skald__log_paren(skald_journal_errmsg(skald__writer_journal(e->w)), d,
		                              sizeof d));
	}
	if (p->cb != NULL)
		p->cb(a, e->state, status, p->cb_arg);
	persist_free(p);
	if (skald__actor_terminated(a))
		return;
	if (status != 0 && status != SKALD_EREJECTED) {
		skald__actor_terminate(a, status);
		return;
	}
	if (failed) {
		skald__actor_fail(a, failed);
	} else if (status == 0) {
		const skald_entity_type_t *t = e->arg->type;
		if (t->snapshot_every > 0 && e->seq - e->snap_seq >= t->snapshot_every)
			save_snapshot(e);
	}
	if (e->pw == NULL)
		skald__actor_resume(a);
	skald__actor_after_callback(a);
}

static int persist_all(skald_actor_t *self, const skald_new_event_t *events, size_t n,
                       skald_persist_fn cb, void *arg, void (*arg_free)(void *))
{
	entity_t *e = entity_of(self);
	if (e == NULL || events == NULL || n == 0)
		return SKALD_EINVAL;
	if (e->pw != NULL || !e->ready)
		return SKALD_EBUSY;
	for (size_t i = 0; i < n; i++)
		if (events[i].type == NULL || events[i].type[0] == '\0' ||
		    !json_is_object(events[i].data))
			return SKALD_EINVAL;
	persist_t *p = calloc(1, sizeof *p + n * sizeof p->events[0]);
	if (p == NULL)
		return SKALD_ENOMEM;
	/* The record outlives the entity if it stops meanwhile: it owns its
	 * copy of the persistence id and of the type names. */
	char *pid = strdup(e->arg->pid);
	p->pw.w = (skald_write_t){pid, e->seq, p->events, n, 0};
	if (pid == NULL) {
		free(p);
		return SKALD_ENOMEM;
	}
	uint64_t writer = e->ref.node ^ ((uint64_t)e->ref.actor << 32 | e->ref.incarnation);
	for (size_t i = 0; i < n; i++) {
		char *type = strdup(events[i].type);
		if (type == NULL) {
			/* persist_free releases what is copied so far; the data
			 * stays the caller's. */
			p->n = i;
			for (size_t k = 0; k < i; k++)
				p->events[k].data = NULL;
			persist_free(p);
			return SKALD_ENOMEM;
		}
		p->events[i] = (skald_event_t){pid,
		                               e->seq + i + 1,
		                               type,
		                               events[i].version ? events[i].version : 1,
		                               events[i].data,
		                               0,
		                               writer,
		                               0};
	}
	p->n = n;
	p->pw.done = persisted;
	op_set(&p->op, e);
	p->cb = cb;
	p->cb_arg = arg;
	p->cb_arg_free = arg_free;
	e->pw = p;
	skald__actor_pause(self);
	skald__writer_submit(e->w, &p->pw);
	return 0;
}

int skald_persist_all(skald_actor_t *self, const skald_new_event_t *events, size_t n,
                      skald_persist_fn cb, void *arg)
{
	return persist_all(self, events, n, cb, arg, NULL);
}

int skald_persist(skald_actor_t *self, const char *type, int version, json_t *data,
                  skald_persist_fn cb, void *arg)
{
	skald_new_event_t ev = {type, version, data};
	return skald_persist_all(self, &ev, 1, cb, arg);
}

/* What skald_persist_reply keeps until the write completes: the asker, not
 * the command's payload. Freed with the write, whether or not it ran. */
typedef struct then_reply_s {
	skald_msg_t to;
	skald_reply_build_fn build;
	void *arg;
} then_reply_t;

static void then_reply(skald_actor_t *self, void *state, int status, void *arg)
{
	then_reply_t *t = arg;
	uint32_t type = 0;
	void *payload = NULL;
	if (t->build(self, state, status, t->arg, &type, &payload) < 0)
		return;
	int rc = skald_reply(self, &t->to, type, payload);
	if (rc < 0) {
		SKALD_LOG(SKALD_LOG_WARN, "%s: the reply after persisting was not sent: %s",
		          skald_entity_pid(self), skald_strerror(rc));
		skald_payload_free(type, payload);
	}
}

int skald_persist_reply(skald_actor_t *self, const skald_msg_t *cmd,
                        const skald_new_event_t *events, size_t n, skald_reply_build_fn build,
                        void *arg)
{
	if (cmd == NULL || cmd->ask_id == 0 || build == NULL)
		return SKALD_EINVAL;
	then_reply_t *t = malloc(sizeof *t);
	if (t == NULL)
		return SKALD_ENOMEM;
	*t = (then_reply_t){{cmd->type, NULL, cmd->sender, cmd->ask_id}, build, arg};
	int rc = persist_all(self, events, n, then_reply, t, free);
	if (rc < 0)
		free(t);
	return rc;
}

const char *skald_entity_pid(const skald_actor_t *self)
{
	entity_t *e = entity_of(self);
	return e != NULL ? e->arg->pid : NULL;
}

const char *skald_entity_id(const skald_actor_t *self)
{
	entity_t *e = entity_of(self);
	return e != NULL ? e->arg->pid + e->arg->id_off : NULL;
}

uint64_t skald_entity_seq(const skald_actor_t *self)
{
	entity_t *e = entity_of(self);
	return e != NULL ? e->seq : 0;
}

const skald_entity_type_t *skald__entity_type(const skald_actor_t *self)
{
	entity_t *e = entity_of(self);
	return e != NULL ? e->arg->type : NULL;
}
