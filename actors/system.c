/*
 * actors/system.c - systems (nodes), their scheduler threads, graceful stop.
 *
 * The graceful stop has two phases, separated by a barrier, because actors
 * on one thread may still send to actors on another while they stop:
 *   1. every thread terminates its actors (stop callbacks run, watchers are
 *      told); sends are still safe because every loop is alive;
 *   2. once all threads are past phase 1 no live actor remains, so nothing
 *      can enqueue or wake a thread any more: each frees what its queues
 *      still hold, closes its handles and leaves its loop.
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "actors/transport.h"

static uint64_t random_node_id(void)
{
	uint64_t id = 0;
	FILE *f = fopen("/dev/urandom", "rb");
	if (f != NULL) {
		if (fread(&id, sizeof id, 1, f) != 1)
			id = 0;
		fclose(f);
	}
	/* Without /dev/urandom, time and pid still differ between starts. */
	if (id == 0)
		id = uv_hrtime() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)&id;
	return id == 0 ? 1 : id;
}

static void handle_close_noop(uv_handle_t *h)
{
	(void)h;
}

static void shutdown_thread(skald__thread_t *t)
{
	skald_system_t *sys = t->sys;
	t->shutting_down = true;

	/* Spawns that began before `stopping` was set finish first, so that
	 * every actor is in some thread's queue or list below. */
	while (atomic_load(&sys->spawning) != 0)
		sched_yield();

	/* Actors not yet started are known only to the run queues: adopt them
	 * so that they are terminated with the rest (without a stop callback,
	 * since init never ran). */
	skald__thread_drain(t);
	for (skald__mpsc_node_t *n = t->rq_head; n != NULL;
	     n = atomic_load_explicit(&n->next, memory_order_relaxed)) {
		skald_actor_t *a = (skald_actor_t *)((char *)n - offsetof(skald_actor_t, rq));
		if (!(a->flags & AF_TERMINATED))
			skald__actor_link(a);
	}
	while (t->actors != NULL)
		skald__actor_terminate(t->actors, SKALD_ESTOPPING);

	uv_mutex_lock(&sys->stop_lock);
	sys->phase1_done++;
	uv_cond_broadcast(&sys->stop_cond);
	while (sys->phase1_done < sys->nthreads)
		uv_cond_wait(&sys->stop_cond, &sys->stop_lock);
	uv_mutex_unlock(&sys->stop_lock);

	skald__rq_drain_free(t);
	for (int i = 0; i < SKALD__LAYERS; i++) {
		if (t->layer[i].fini != NULL)
			t->layer[i].fini(t->layer[i].ctx);
		t->layer[i].ctx = NULL;
		t->layer[i].fini = NULL;
	}
	if (t->actors != NULL)
		SKALD_LOG(SKALD_LOG_ERROR, "thread %u: actors left after shutdown", t->index);
	uv_idle_stop(&t->runner);
	uv_close((uv_handle_t *)&t->runner, handle_close_noop);
	uv_close((uv_handle_t *)&t->wake, handle_close_noop);
}

static void wake_cb(uv_async_t *h)
{
	skald__thread_t *t = h->data;
	if (atomic_load(&t->sys->stopping) == 2 && !t->shutting_down) {
		shutdown_thread(t);
		return;
	}
	skald__thread_wake_cb(h);
}

static void thread_main(void *arg)
{
	skald__thread_t *t = arg;
	skald__current = t;
	uv_run(&t->loop, UV_RUN_DEFAULT);
	/* Handles closed in shutdown_thread need one more pass to finish. */
	uv_run(&t->loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&t->loop) != 0)
		SKALD_LOG(SKALD_LOG_ERROR, "thread %u: loop closed with handles open", t->index);
	skald__current = NULL;
}

/* The node and the reference of an actor, in the context of log lines
 * (base/log.h). */
static void log_ref(const void *actor, int field, char *buf, size_t len)
{
	skald_ref_t r = ((const skald_actor_t *)actor)->ref;
	if (field == SKALD__LOG_NODE)
		snprintf(buf, len, "%016llx", (unsigned long long)r.node);
	else
		skald_ref_str(r, buf, len);
}

/* The system's counts, for skald_metrics_render (base/metrics_int.h). */
static void metrics_read(void *arg, double *v)
{
	skald_stats_t st;
	skald_system_stats(arg, &st);
	v[SKALD__SRC_MESSAGES] += (double)st.delivered;
	v[SKALD__SRC_DEAD_LETTERS] += (double)st.dead_letters;
	v[SKALD__SRC_ACTORS] += (double)st.live_actors;
}

int (*skald__journal_check)(const char *uri);

int skald_system_new(const skald_config_t *cfg, skald_system_t **out)
{
	int rc;
	if (out == NULL)
		return SKALD_EINVAL;
	skald_config_t dflt = {0};
	if (cfg == NULL)
		cfg = &dflt;
	unsigned n = cfg->threads;
	if (n == 0) {
		long c = sysconf(_SC_NPROCESSORS_ONLN);
		n = c > 0 ? (unsigned)c : 1;
	}
	if (n > 1024)
		return SKALD_EINVAL;
	if (skald__journal_check != NULL && (rc = skald__journal_check(cfg->journal)) < 0)
		return rc;
	skald__metrics_init();
	skald__log_hook(SKALD__LOG_NODE, log_ref);
	skald__log_hook(SKALD__LOG_ACTOR, log_ref);
	skald_system_t *sys = calloc(1, sizeof *sys);
	if (sys == NULL)
		return SKALD_ENOMEM;
	sys->node = random_node_id();
	sys->nthreads = n;
	sys->budget = cfg->budget ? cfg->budget : 64;
	snprintf(sys->name, sizeof sys->name, "%s", cfg->name ? cfg->name : "skald");
	if (cfg->journal != NULL && (sys->journal_uri = strdup(cfg->journal)) == NULL) {
		free(sys);
		return SKALD_ENOMEM;
	}
	rc = skald__slots_init(&sys->slots);
	if (rc < 0) {
		free(sys->journal_uri);
		free(sys);
		return rc;
	}
	uv_mutex_init(&sys->stop_lock);
	uv_cond_init(&sys->stop_cond);
	sys->threads = calloc(n, sizeof *sys->threads);
	if (sys->threads == NULL) {
		skald__slots_fini(&sys->slots);
		free(sys->journal_uri);
		free(sys);
		return SKALD_ENOMEM;
	}
	for (unsigned i = 0; i < n; i++) {
		skald__thread_t *t = &sys->threads[i];
		t->sys = sys;
		t->index = i;
		skald__mpsc_init(&t->inbound);
		atomic_init(&t->sleeping, 1);
		if ((rc = uv_loop_init(&t->loop)) < 0)
			abort(); /* only fails without file descriptors or memory */
		uv_async_init(&t->loop, &t->wake, wake_cb);
		uv_idle_init(&t->loop, &t->runner);
		t->wake.data = t;
		t->runner.data = t;
	}
	for (unsigned i = 0; i < n; i++) {
		if ((rc = uv_thread_create(&sys->threads[i].tid, thread_main, &sys->threads[i])) <
		    0)
			abort();
	}
	sys->metrics = (skald__msource_t){.read = metrics_read, .arg = sys};
	skald__metrics_source_add(&sys->metrics);
	*out = sys;
	return 0;
}

void skald_system_stop(skald_system_t *sys)
{
	if (sys == NULL)
		return;
	atomic_store(&sys->stopping, 2);
	for (unsigned i = 0; i < sys->nthreads; i++)
		uv_async_send(&sys->threads[i].wake);
	for (unsigned i = 0; i < sys->nthreads; i++)
		uv_thread_join(&sys->threads[i].tid);
	const skald__transport_t *tr = atomic_load(&sys->transport);
	if (tr != NULL)
		tr->stop(sys->transport_ctx);
	skald__metrics_source_remove(&sys->metrics);
	skald_system_shutdown(sys);
	skald__slots_fini(&sys->slots);
	uv_cond_destroy(&sys->stop_cond);
	uv_mutex_destroy(&sys->stop_lock);
	free(sys->threads);
	free(sys->journal_uri);
	free(sys);
}

void skald_system_shutdown(skald_system_t *sys)
{
	if (sys == NULL)
		return;
	uv_mutex_lock(&sys->stop_lock);
	sys->shutdown_requested = true;
	uv_cond_broadcast(&sys->stop_cond);
	uv_mutex_unlock(&sys->stop_lock);
}

void skald_system_wait(skald_system_t *sys)
{
	if (sys == NULL)
		return;
	uv_mutex_lock(&sys->stop_lock);
	while (!sys->shutdown_requested)
		uv_cond_wait(&sys->stop_cond, &sys->stop_lock);
	uv_mutex_unlock(&sys->stop_lock);
}

const char *skald__system_journal(const skald_system_t *sys)
{
	return sys->journal_uri;
}

uint64_t skald_system_node(const skald_system_t *sys)
{
	return sys != NULL ? sys->node : 0;
}

unsigned skald_system_threads(const skald_system_t *sys)
{
	return sys != NULL ? sys->nthreads : 0;
}

int skald_system_stats(skald_system_t *sys, skald_stats_t *out)
{
	if (sys == NULL || out == NULL)
		return SKALD_EINVAL;
	memset(out, 0, sizeof *out);
	out->live_actors = atomic_load(&sys->live_actors);
	out->spawned = atomic_load(&sys->spawned);
	out->dead_letters = atomic_load(&sys->dead_letters);
	for (unsigned i = 0; i < sys->nthreads; i++) {
		out->delivered +=
		        atomic_load_explicit(&sys->threads[i].delivered, memory_order_relaxed);
		out->late_replies +=
		        atomic_load_explicit(&sys->threads[i].late_replies, memory_order_relaxed);
	}
	return 0;
}

int skald_system_tell(skald_system_t *sys, skald_ref_t to, uint32_t type, void *payload)
{
	if (sys == NULL || skald_ref_is_null(to))
		return SKALD_EINVAL;
	if (skald_type_get(type) == NULL)
		return SKALD_ENOTYPE;
	skald__env_t *e = skald__env_new(ENV_USER, type, SKALD_REF_NULL, payload);
	if (e == NULL)
		return SKALD_ENOMEM;
	int rc = skald__deliver(sys, to, e);
	if (rc < 0)
		skald__env_release(e);
	return rc;
}

int skald_tell(skald_actor_t *self, skald_ref_t to, uint32_t type, void *payload)
{
	if (self == NULL || skald_ref_is_null(to))
		return SKALD_EINVAL;
	if (skald_type_get(type) == NULL)
		return SKALD_ENOTYPE;
	skald__env_t *e = skald__env_new(ENV_USER, type, self->ref, payload);
	if (e == NULL)
		return SKALD_ENOMEM;
	int rc = skald__deliver(self->thread->sys, to, e);
	if (rc < 0)
		skald__env_release(e);
	return rc;
}

int skald__transport_install(skald_system_t *sys, const skald__transport_t *tr, void *ctx)
{
	if (sys == NULL || tr == NULL || tr->send == NULL || tr->stop == NULL)
		return SKALD_EINVAL;
	/* The stop lock orders two installs; the release store publishes ctx
	 * to the senders, which read the table first. */
	uv_mutex_lock(&sys->stop_lock);
	int rc = SKALD_EINVAL;
	if (atomic_load(&sys->transport) == NULL) {
		sys->transport_ctx = ctx;
		atomic_store_explicit(&sys->transport, tr, memory_order_release);
		rc = 0;
	}
	uv_mutex_unlock(&sys->stop_lock);
	return rc;
}

void *skald__transport_ctx(const skald_system_t *sys, const skald__transport_t *tr)
{
	if (sys == NULL || tr == NULL ||
	    atomic_load_explicit(&sys->transport, memory_order_acquire) != tr)
		return NULL;
	return sys->transport_ctx;
}
