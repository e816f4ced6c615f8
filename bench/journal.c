/*
 * bench/journal.c - persist and recovery throughput of entities.
 *
 *   build/bench/journal [--store URI] [--scale X]
 *
 * Figures, one line each:
 *   persist-1        one entity persisting sequentially (each write waits
 *                    for the previous), with per-write latency percentiles
 *   persist-1000     1,000 entities persisting at once (the journal batches
 *                    their writes)
 *   recover          one entity recovering a history of 1,000,000 events
 *   recover-snapshot the same history with a snapshot 1,000 events from the
 *                    end
 * The store defaults to memory://bench.
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include <skald/skald.h>

static uint32_t T_RUN, T_GET, T_VALUE, T_SNAP;
static const skald_msgtype_t run_type = {.name = "bench.run"};
static const skald_msgtype_t get_type = {.name = "bench.get"};
static const skald_msgtype_t value_type = {.name = "bench.value"};
static const skald_msgtype_t snap_type = {.name = "bench.snapshot"};

/* Completion of a whole figure, signalled to main. */
static uv_mutex_t lock;
static uv_cond_t cond;
static atomic_long remaining;

static void finished_one(void)
{
	if (atomic_fetch_sub(&remaining, 1) == 1) {
		uv_mutex_lock(&lock);
		uv_cond_signal(&cond);
		uv_mutex_unlock(&lock);
	}
}

static void wait_all(void)
{
	uv_mutex_lock(&lock);
	while (atomic_load(&remaining) > 0)
		if (uv_cond_timedwait(&cond, &lock, 600ull * 1000000000ull) == UV_ETIMEDOUT) {
			fprintf(stderr, "journal bench: timed out\n");
			exit(1);
		}
	uv_mutex_unlock(&lock);
}

/* Latencies of persist-1, in ns. */
static uint64_t *lat;
static long nlat;

typedef struct {
	long total;  /* sum of the events' n */
	long events; /* events applied */
	long left;   /* persists still to issue in this run */
	long batch;  /* events per persist */
	uint64_t t0;
	bool timed;
} st_t;

static int apply(void *state, const skald_event_t *ev)
{
	st_t *s = state;
	s->total += (long)json_integer_value(json_object_get(ev->data, "n"));
	s->events++;
	return 0;
}

static void next(skald_actor_t *self, st_t *s);

static void persisted(skald_actor_t *self, void *state, int status, void *arg)
{
	st_t *s = state;
	if (status < 0) {
		fprintf(stderr, "journal bench: persist failed: %s\n", skald_strerror(status));
		exit(1);
	}
	if (s->timed)
		lat[nlat++] = uv_hrtime() - s->t0;
	next(self, s);
}

static void next(skald_actor_t *self, st_t *s)
{
	if (s->left == 0) {
		finished_one();
		return;
	}
	s->left--;
	skald_new_event_t ev[1000];
	for (long i = 0; i < s->batch; i++)
		ev[i] = (skald_new_event_t){"bench.added", 1,
		                            json_pack("{sI}", "n", (json_int_t)1)};
	s->t0 = uv_hrtime();
	int rc = skald_persist_all(self, ev, (size_t)s->batch, persisted, NULL);
	if (rc < 0) {
		fprintf(stderr, "journal bench: persist refused: %s\n", skald_strerror(rc));
		exit(1);
	}
}

static int command(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	st_t *s = state;
	if (msg->type == T_RUN) {
		long spec = (long)(intptr_t)msg->payload;
		s->left = spec >> 16;
		s->batch = spec & 0xffff;
		s->timed = s->batch == 1 && lat != NULL;
		next(self, s);
	} else if (msg->type == T_GET) {
		return skald_reply(self, msg, T_VALUE, (void *)(intptr_t)s->events);
	} else if (msg->type == T_SNAP) {
		int rc = skald_entity_snapshot(self);
		return skald_reply(self, msg, T_VALUE, (void *)(intptr_t)rc);
	}
	return 0;
}

static int snapshot(const void *state, json_t **out)
{
	const st_t *s = state;
	*out = json_pack("{sIsI}", "total", (json_int_t)s->total, "events", (json_int_t)s->events);
	return *out != NULL ? 0 : SKALD_ENOMEM;
}

static int restore(void *state, const json_t *snap, int version)
{
	st_t *s = state;
	s->total = (long)json_integer_value(json_object_get(snap, "total"));
	s->events = (long)json_integer_value(json_object_get(snap, "events"));
	return 0;
}

static const skald_entity_type_t bench_entity = {
        .name = "bench",
        .state_size = sizeof(st_t),
        .command = command,
        .apply = apply,
        .snapshot = snapshot,
        .restore = restore,
};

static void run(skald_system_t *sys, skald_ref_t *refs, long n, long persists, long batch)
{
	atomic_store(&remaining, n);
	for (long i = 0; i < n; i++)
		skald_system_tell(sys, refs[i], T_RUN, (void *)(intptr_t)(persists << 16 | batch));
	wait_all();
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static long ask_events(skald_system_t *sys, skald_ref_t r)
{
	uint32_t type;
	void *v;
	int rc = skald_system_ask(sys, r, T_GET, NULL, 600000, &type, &v);
	if (rc < 0) {
		fprintf(stderr, "journal bench: ask failed: %s\n", skald_strerror(rc));
		exit(1);
	}
	return (long)(intptr_t)v;
}

int main(int argc, char **argv)
{
	const char *store = "memory://bench";
	double scale = 1;
	unsigned threads = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--store") == 0 && i + 1 < argc)
			store = argv[++i];
		else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
			threads = (unsigned)atoi(argv[++i]);
		else if (strcmp(argv[i], "--scale") == 0 && i + 1 < argc)
			scale = atof(argv[++i]);
		else if (atof(argv[i]) > 0)
			scale = atof(argv[i]);
		else {
			fprintf(stderr, "usage: %s [--store URI] [--threads N] [--scale X]\n",
			        argv[0]);
			return 1;
		}
	}
	skald_type_register(&run_type, &T_RUN);
	skald_type_register(&get_type, &T_GET);
	skald_type_register(&value_type, &T_VALUE);
	skald_type_register(&snap_type, &T_SNAP);
	uv_mutex_init(&lock);
	uv_cond_init(&cond);

	skald_system_t *sys;
	skald_config_t cfg = {.journal = store, .threads = threads};
	if (skald_system_new(&cfg, &sys) < 0)
		return 1;
	char id[64];
	snprintf(id, sizeof id, "%llx", (unsigned long long)skald_system_node(sys));

	/* persist-1 */
	long n1 = (long)(100000 * scale);
	skald_ref_t one;
	char pid[96];
	snprintf(pid, sizeof pid, "one-%s", id);
	int rc = skald_entity_spawn(sys, &bench_entity, pid, NULL, &one);
	if (rc < 0) {
		fprintf(stderr, "journal bench: %s: %s\n", store, skald_strerror(rc));
		return 1;
	}
	lat = malloc((size_t)n1 * sizeof *lat);
	uint64_t t0 = uv_hrtime();
	run(sys, &one, 1, n1, 1);
	double secs = (double)(uv_hrtime() - t0) / 1e9;
	qsort(lat, (size_t)nlat, sizeof *lat, cmp_u64);
	printf("persist-1 n=%ld time=%.3fs rate=%.0f events/s p50_us=%.1f p99_us=%.1f\n", n1, secs,
	       (double)n1 / secs, (double)lat[nlat / 2] / 1e3, (double)lat[nlat * 99 / 100] / 1e3);
	free(lat);
	lat = NULL;

	/* persist-1000 */
	long actors = 1000, each = (long)(1000 * scale);
	if (each < 1)
		each = 1;
	skald_ref_t *refs = malloc((size_t)actors * sizeof *refs);
	for (long i = 0; i < actors; i++) {
		snprintf(pid, sizeof pid, "many-%s-%ld", id, i);
		skald_entity_spawn(sys, &bench_entity, pid, NULL, &refs[i]);
	}
	for (long i = 0; i < actors; i++)
		ask_events(sys, refs[i]); /* recovered, so only persists are timed */
	t0 = uv_hrtime();
	run(sys, refs, actors, each, 1);
	secs = (double)(uv_hrtime() - t0) / 1e9;
	printf("persist-1000 n=%ld time=%.3fs rate=%.0f events/s\n", actors * each, secs,
	       (double)(actors * each) / secs);
	for (long i = 0; i < actors; i++)
		skald_stop(sys, refs[i]);
	free(refs);

	/* recover: write the history in batches of 1,000 events, then time a
	 * fresh incarnation until it answers. */
	long hist = (long)(1000000 * scale);
	if (hist < 2000)
		hist = 2000;
	snprintf(pid, sizeof pid, "long-%s", id);
	skald_ref_t w;
	skald_entity_spawn(sys, &bench_entity, pid, NULL, &w);
	run(sys, &w, 1, hist / 1000, 1000);
	skald_stop(sys, w);
	t0 = uv_hrtime();
	skald_entity_spawn(sys, &bench_entity, pid, NULL, &w);
	long got = ask_events(sys, w);
	secs = (double)(uv_hrtime() - t0) / 1e9;
	if (got != hist) {
		fprintf(stderr, "journal bench: recovered %ld events of %ld\n", got, hist);
		return 1;
	}
	printf("recover n=%ld time=%.3fs rate=%.0f events/s\n", hist, secs, (double)hist / secs);

	/* recover-snapshot: the same history and a snapshot, then 1,000 more */
	uint32_t type;
	void *v;
	skald_system_ask(sys, w, T_SNAP, NULL, 600000, &type, &v);
	run(sys, &w, 1, 1, 1000);
	skald_stop(sys, w);
	t0 = uv_hrtime();
	skald_entity_spawn(sys, &bench_entity, pid, NULL, &w);
	got = ask_events(sys, w);
	secs = (double)(uv_hrtime() - t0) / 1e9;
	if (got != hist + 1000) {
		fprintf(stderr, "journal bench: recovered %ld events of %ld\n", got, hist + 1000);
		return 1;
	}
	/* The rate is of the whole history, as seen by the user: the snapshot
	 * replaces the replay of all but the last 1,000 events. */
	printf("recover-snapshot n=%ld replayed=1000 time=%.4fs rate=%.0f events/s\n", hist + 1000,
	       secs, (double)(hist + 1000) / secs);
	skald_system_stop(sys);
	return 0;
}
