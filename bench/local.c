/*
 * bench/local.c - actor benchmarks on one node: ping-pong, fan-out, spawn.
 *
 * Prints one line per figure on stdout, in the format that the peers in
 * bench/peers print too, so that scripts/bench.sh can set them side by side:
 *   pingpong n=<round trips> time=<s>s rate=<r> round-trips/s
 *   pingpong-2threads n=<round trips> time=<s>s rate=<r> round-trips/s
 *   fanout n=<messages> time=<s>s rate=<r> msgs/s
 *   spawn n=<actors> time=<s>s rate=<r> spawns/s bytes_per_actor=<b>
 *   pingpong-metrics-on|off n=<round trips> rate=<r> round-trips/s
 *   metrics-overhead pct=<how much slower ping-pong is with metrics on>
 *
 * Usage: local [scale]   (scale > 0 multiplies every n; default 1)
 *
 * Every figure runs on a default system (one scheduler thread per core) and
 * places actors the way the runtime does by default unless the figure says
 * otherwise. Messages carry an integer in the payload pointer, so that the
 * figures measure the runtime and not malloc.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "skald/actor.h"
#include "skald/metrics.h"

/* The longest any figure may take before the run is declared stuck, per
 * unit of scale (a healthy run needs a few seconds at scale 1). */
#define FIGURE_TIMEOUT_S 300.0

static uint32_t t_msg;
static double scale = 1.0;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long scaled(long n)
{
	long v = (long)((double)n * scale);
	return v < 1 ? 1 : v;
}

static double figure_timeout(void)
{
	return FIGURE_TIMEOUT_S * (scale > 1.0 ? scale : 1.0);
}

static void die(const char *what, int err)
{
	fprintf(stderr, "local: %s: %s\n", what, err ? skald_strerror(err) : "timed out");
	exit(1);
}

/* ------------------------------------------------------------------------ */
/* Completion: an actor signals, the main thread waits with a bound.        */

typedef struct done_s {
	pthread_mutex_t m;
	pthread_cond_t c;
	int done;
	double t0, t1; /* measured by the actors, around the work itself */
} done_t;

static void done_init(done_t *d)
{
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_mutex_init(&d->m, NULL);
	pthread_cond_init(&d->c, &attr);
	pthread_condattr_destroy(&attr);
	d->done = 0;
	d->t0 = d->t1 = 0;
}

static void done_fini(done_t *d)
{
	pthread_cond_destroy(&d->c);
	pthread_mutex_destroy(&d->m);
}

static void done_signal(done_t *d)
{
	pthread_mutex_lock(&d->m);
	d->t1 = now_s();
	d->done = 1;
	pthread_cond_signal(&d->c);
	pthread_mutex_unlock(&d->m);
}

/* Waits for done_signal(); exits the program if it does not come in time. */
static void done_wait(done_t *d, const char *figure)
{
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += (time_t)figure_timeout();
	pthread_mutex_lock(&d->m);
	while (!d->done) {
		if (pthread_cond_timedwait(&d->c, &d->m, &until) == ETIMEDOUT && !d->done)
			die(figure, 0);
	}
	pthread_mutex_unlock(&d->m);
}

static void sleep_us(long us)
{
	struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000};
	nanosleep(&ts, NULL);
}

static uint64_t live_actors(skald_system_t *sys)
{
	skald_stats_t st;
	int rc = skald_system_stats(sys, &st);
	if (rc < 0)
		die("skald_system_stats", rc);
	return st.live_actors;
}

/* Waits (bounded) until the node has `live` actors again. */
static void await_live(skald_system_t *sys, uint64_t live, const char *figure)
{
	double until = now_s() + figure_timeout();
	while (live_actors(sys) != live) {
		if (now_s() > until)
			die(figure, 0);
		sleep_us(100);
	}
}

static void tell_or_die(skald_actor_t *self, skald_ref_t to, uintptr_t v)
{
	int rc = skald_tell(self, to, t_msg, (void *)v);
	if (rc < 0)
		die("skald_tell", rc);
}

/* Answers every message to its sender with the same payload. */
static int echo_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	return skald_tell(self, msg->sender, t_msg, msg->payload);
}

static const skald_behavior_t echo_behavior = {.receive = echo_receive};

/* ------------------------------------------------------------------------ */
/* Ping-pong: one message in flight between two actors.                     */

typedef struct pingpong_s {
	long n;
	int pinned; /* ping and pong on different threads */
	skald_ref_t pong;
	done_t done;
} pingpong_t;

typedef struct ping_state_s {
	pingpong_t *pp;
	long round_trips;
} ping_state_t;

static int ping_init(skald_actor_t *self, void *state, void *arg)
{
	ping_state_t *st = state;
	st->pp = arg;
	st->pp->done.t0 = now_s();
	tell_or_die(self, st->pp->pong, 1);
	return 0;
}

static int ping_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	ping_state_t *st = state;
	if (++st->round_trips == st->pp->n) {
		done_signal(&st->pp->done);
		return 0;
	}
	return skald_tell(self, st->pp->pong, t_msg, msg->payload);
}

static const skald_behavior_t ping_behavior = {
        .state_size = sizeof(ping_state_t),
        .init = ping_init,
        .receive = ping_receive,
};

/* The driver makes ping and pong its children, so that by default they live
 * on its thread, as an application's actors would. */
static int pp_driver_init(skald_actor_t *self, void *state, void *arg)
{
	pingpong_t *pp = arg;
	skald_spawn_opts_t pin0 = {.flags = SKALD_SPAWN_PIN, .thread = 0};
	skald_spawn_opts_t pin1 = {.flags = SKALD_SPAWN_PIN, .thread = 1};
	skald_ref_t ping;
	int rc =
	        skald_spawn_child(self, &echo_behavior, NULL, pp->pinned ? &pin1 : NULL, &pp->pong);
	if (rc == 0)
		rc = skald_spawn_child(self, &ping_behavior, pp, pp->pinned ? &pin0 : NULL, &ping);
	return rc;
}

static int idle_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	return 0;
}

static const skald_behavior_t pp_driver_behavior = {
        .init = pp_driver_init,
        .receive = idle_receive,
};

/* Runs one ping-pong of n round trips under the name figure; prints its line
 * unless quiet; returns the rate. */
static double pingpong_run(skald_system_t *sys, long n, int pinned, const char *figure, int quiet)
{
	pingpong_t pp = {.n = n, .pinned = pinned};
	uint64_t live = live_actors(sys);
	skald_ref_t driver;
	done_init(&pp.done);
	int rc = skald_spawn(sys, &pp_driver_behavior, &pp, NULL, &driver);
	if (rc < 0)
		die("skald_spawn", rc);
	done_wait(&pp.done, figure);
	double t = pp.done.t1 - pp.done.t0;
	if (!quiet) {
		printf("%s n=%ld time=%.3fs rate=%.0f round-trips/s\n", figure, n, t,
		       (double)n / t);
		fflush(stdout);
	}
	skald_stop(sys, driver);
	await_live(sys, live, figure);
	done_fini(&pp.done);
	return (double)n / t;
}

static void bench_pingpong(skald_system_t *sys, long n, int pinned)
{
	pingpong_run(sys, n, pinned, pinned ? "pingpong-2threads" : "pingpong", 0);
}

/* The cost of metrics on the hottest path: ping-pong with metrics on and off
 * (skald_metrics_enable), alternated METRICS_ROUNDS times in this one run so
 * that both see the same machine; the best rate of each is compared (the
 * best is the run least disturbed by the rest of the machine). "Off" still
 * runs the update calls, which return at once. */
#define METRICS_ROUNDS 9

static void bench_metrics_overhead(skald_system_t *sys, long n)
{
	double best_on = 0, best_off = 0;
	for (int r = 0; r < METRICS_ROUNDS; r++) {
		for (int on = 0; on < 2; on++) {
			skald_metrics_enable(on);
			double rate = pingpong_run(sys, n, 0, "pingpong-metrics", 1);
			double *best = on ? &best_on : &best_off;
			if (rate > *best)
				*best = rate;
		}
	}
	skald_metrics_enable(true);
	printf("pingpong-metrics-on n=%ld rate=%.0f round-trips/s\n", n, best_on);
	printf("pingpong-metrics-off n=%ld rate=%.0f round-trips/s\n", n, best_off);
	printf("metrics-overhead pct=%.2f\n", (best_off - best_on) / best_off * 100.0);
	fflush(stdout);
}

/* ------------------------------------------------------------------------ */
/* Fan-out: a coordinator and its workers, one round at a time.             */

enum { FANOUT_WORKERS = 1000 };

typedef struct fanout_s {
	long rounds;
	done_t done;
} fanout_t;

typedef struct coord_state_s {
	fanout_t *fo;
	skald_ref_t *workers;
	long round;
	unsigned pending;
} coord_state_t;

static int coord_init(skald_actor_t *self, void *state, void *arg)
{
	coord_state_t *st = state;
	st->fo = arg;
	st->workers = calloc(FANOUT_WORKERS, sizeof(*st->workers));
	if (st->workers == NULL)
		return SKALD_ENOMEM;
	for (unsigned i = 0; i < FANOUT_WORKERS; i++) {
		int rc = skald_spawn_child(self, &echo_behavior, NULL, NULL, &st->workers[i]);
		if (rc < 0)
			return rc;
	}
	/* Start once init has returned, after the workers' own first turns. */
	tell_or_die(self, skald_self(self), 0);
	return 0;
}

static void coord_round(skald_actor_t *self, coord_state_t *st)
{
	st->pending = FANOUT_WORKERS;
	for (unsigned i = 0; i < FANOUT_WORKERS; i++)
		tell_or_die(self, st->workers[i], (uintptr_t)st->round + 1);
}

static int coord_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	coord_state_t *st = state;
	if (skald_ref_eq(msg->sender, skald_self(self))) {
		st->fo->done.t0 = now_s();
		coord_round(self, st);
		return 0;
	}
	if (--st->pending > 0)
		return 0;
	if (++st->round < st->fo->rounds)
		coord_round(self, st);
	else
		done_signal(&st->fo->done);
	return 0;
}

static void coord_stop(skald_actor_t *self, void *state, int reason)
{
	coord_state_t *st = state;
	free(st->workers);
}

static const skald_behavior_t coord_behavior = {
        .state_size = sizeof(coord_state_t),
        .init = coord_init,
        .receive = coord_receive,
        .stop = coord_stop,
};

static void bench_fanout(skald_system_t *sys, long total)
{
	fanout_t fo = {.rounds = total / (2 * FANOUT_WORKERS)};
	if (fo.rounds < 1)
		fo.rounds = 1;
	long n = fo.rounds * 2 * FANOUT_WORKERS;
	uint64_t live = live_actors(sys);
	skald_ref_t coord;
	done_init(&fo.done);
	int rc = skald_spawn(sys, &coord_behavior, &fo, NULL, &coord);
	if (rc < 0)
		die("skald_spawn", rc);
	done_wait(&fo.done, "fanout");
	double t = fo.done.t1 - fo.done.t0;
	printf("fanout n=%ld time=%.3fs rate=%.0f msgs/s\n", n, t, (double)n / t);
	fflush(stdout);
	skald_stop(sys, coord);
	await_live(sys, live, "fanout");
	done_fini(&fo.done);
}

/* ------------------------------------------------------------------------ */
/* Spawn: n idle actors alive at once, then all stopped.                    */

static atomic_long spawn_inits;

static int counted_init(skald_actor_t *self, void *state, void *arg)
{
	atomic_fetch_add_explicit(&spawn_inits, 1, memory_order_relaxed);
	return 0;
}

static const skald_behavior_t idle_behavior = {
        .init = counted_init,
        .receive = idle_receive,
};

/* The process's resident set, in bytes, from /proc/self/status. */
static long long vm_rss_bytes(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long long kb = -1;
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "VmRSS:", 6) == 0) {
			kb = atoll(line + 6);
			break;
		}
	}
	fclose(f);
	return kb < 0 ? -1 : kb * 1024;
}

static void bench_spawn(skald_system_t *sys, long n)
{
	/* The references are counted in bytes_per_actor (16 B each), as the
	 * peers count the handles they keep to stop their actors. */
	skald_ref_t *refs = malloc((size_t)n * sizeof(*refs));
	if (refs == NULL)
		die("malloc", SKALD_ENOMEM);
	uint64_t live = live_actors(sys);
	atomic_store(&spawn_inits, 0);
	long long rss_before = vm_rss_bytes();
	double t0 = now_s();
	for (long i = 0; i < n; i++) {
		int rc = skald_spawn(sys, &idle_behavior, NULL, NULL, &refs[i]);
		if (rc < 0)
			die("skald_spawn", rc);
	}
	/* Alive means init has run, not merely queued. */
	double until = t0 + figure_timeout();
	while (atomic_load_explicit(&spawn_inits, memory_order_acquire) < n) {
		if (now_s() > until)
			die("spawn", 0);
		sleep_us(50);
	}
	long long rss_alive = vm_rss_bytes();
	for (long i = 0; i < n; i++)
		skald_stop(sys, refs[i]);
	await_live(sys, live, "spawn");
	double t = now_s() - t0;
	long long per_actor = rss_before < 0 || rss_alive < 0 ? -1 : (rss_alive - rss_before) / n;
	printf("spawn n=%ld time=%.3fs rate=%.0f spawns/s bytes_per_actor=%lld\n", n, t,
	       (double)n / t, per_actor);
	fflush(stdout);
	free(refs);
}

int main(int argc, char **argv)
{
	static const skald_msgtype_t msg_type = {.name = "bench.local.msg"};
	skald_system_t *sys;
	int rc;

	if (argc > 1) {
		char *end = NULL;
		scale = strtod(argv[1], &end);
		if (end == argv[1] || *end != '\0' || !(scale > 0)) {
			fprintf(stderr, "usage: %s [scale > 0]\n", argv[0]);
			return 2;
		}
	}
	if ((rc = skald_type_register(&msg_type, &t_msg)) < 0)
		die("skald_type_register", rc);
	if ((rc = skald_system_new(NULL, &sys)) < 0)
		die("skald_system_new", rc);

	bench_pingpong(sys, scaled(1000000), 0);
	bench_pingpong(sys, scaled(1000000), 1);
	bench_metrics_overhead(sys, scaled(1000000));
	bench_fanout(sys, scaled(10000000));
	bench_spawn(sys, scaled(1000000));

	skald_system_stop(sys);
	return 0;
}
