/*
 * examples/counter - a small tour of the runtime.
 *
 * A counter actor takes "add" messages and answers "get" asks. A supervisor
 * runs workers that crash now and then and are restarted with fresh state.
 * A watcher is told when the counter stops. The program prints a summary and
 * exits by itself.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <uv.h>

#include <skald/skald.h>

static uint32_t T_ADD, T_GET, T_VALUE, T_WORK;

/* Integers travel inside the payload pointer: no allocation, nothing to
 * free (the types have no free function). */
static const skald_msgtype_t add_type = {.name = "counter.add"};
static const skald_msgtype_t get_type = {.name = "counter.get"};
static const skald_msgtype_t value_type = {.name = "counter.value"};
static const skald_msgtype_t work_type = {.name = "counter.work"};

/* --- the counter ---------------------------------------------------------- */

typedef struct {
	long total;
} counter_t;

static int counter_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	counter_t *c = state;
	if (msg->type == T_ADD)
		c->total += (long)(intptr_t)msg->payload;
	else if (msg->type == T_GET)
		return skald_reply(self, msg, T_VALUE, (void *)(intptr_t)c->total);
	return 0;
}

static const skald_behavior_t counter = {
        .state_size = sizeof(counter_t),
        .receive = counter_receive,
};

/* --- a worker that fails on one job in 997 --------------------------------- */

typedef struct {
	skald_ref_t counter;
} worker_t;

static int worker_init(skald_actor_t *self, void *state, void *arg)
{
	((worker_t *)state)->counter = *(skald_ref_t *)arg;
	return 0;
}

static int worker_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	worker_t *w = state;
	if ((intptr_t)msg->payload % 997 == 0)
		return SKALD_EINVAL; /* a failure: the supervisor restarts us */
	return skald_tell(self, w->counter, T_ADD, (void *)(intptr_t)1);
}

static const skald_behavior_t worker = {
        .state_size = sizeof(worker_t),
        .init = worker_init,
        .receive = worker_receive,
};

/* --- the supervisor ------------------------------------------------------- */

#define WORKERS 4

typedef struct {
	skald_ref_t counter;
	skald_ref_t workers[WORKERS];
	int restarts;
} super_t;

static int super_init(skald_actor_t *self, void *state, void *arg)
{
	super_t *s = state;
	s->counter = *(skald_ref_t *)arg;
	for (int i = 0; i < WORKERS; i++) {
		int rc = skald_spawn_child(self, &worker, &s->counter, NULL, &s->workers[i]);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int super_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	super_t *s = state;
	if (msg->type == T_WORK) {
		intptr_t n = (intptr_t)msg->payload;
		return skald_tell(self, s->workers[n % WORKERS], T_WORK, msg->payload);
	}
	if (msg->type == T_GET)
		return skald_reply(self, msg, T_VALUE, (void *)(intptr_t)s->restarts);
	return 0;
}

static skald_directive_t super_decide(skald_actor_t *self, void *state, skald_ref_t child, int err)
{
	((super_t *)state)->restarts++;
	return SKALD_RESTART;
}

static const skald_behavior_t supervisor = {
        .state_size = sizeof(super_t),
        .init = super_init,
        .receive = super_receive,
        .on_child_failure = super_decide,
        .max_restarts = 1000,
        .restart_window_ms = 1000,
};

/* --- a watcher ------------------------------------------------------------ */

static int watcher_init(skald_actor_t *self, void *state, void *arg)
{
	return skald_watch(self, *(skald_ref_t *)arg);
}

static int watcher_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	if (msg->type == SKALD_TYPE_DOWN) {
		const skald_down_t *d = msg->payload;
		char b[48];
		printf("watcher: counter %s stopped (%s)\n", skald_ref_str(d->ref, b, sizeof b),
		       d->reason == 0 ? "normally" : skald_strerror(d->reason));
		skald_system_shutdown(skald_actor_system(self));
	}
	return 0;
}

static const skald_behavior_t watcher = {.init = watcher_init, .receive = watcher_receive};

int main(void)
{
	skald_system_t *sys;
	skald_ref_t count, super, watch;
	uint32_t type;
	void *value;
	const int jobs = 100000;

	if (skald_type_register(&add_type, &T_ADD) || skald_type_register(&get_type, &T_GET) ||
	    skald_type_register(&value_type, &T_VALUE) || skald_type_register(&work_type, &T_WORK))
		return 1;
	int rc = skald_system_new(NULL, &sys);
	if (rc < 0) {
		fprintf(stderr, "counter: %s\n", skald_strerror(rc));
		return 1;
	}
	uint64_t t0 = uv_hrtime();
	skald_spawn(sys, &counter, NULL, NULL, &count);
	skald_spawn(sys, &supervisor, &count, NULL, &super);
	skald_spawn(sys, &watcher, &count, NULL, &watch);
	for (intptr_t i = 0; i < jobs; i++)
		skald_system_tell(sys, super, T_WORK, (void *)i);

	/* A job that hits a failing worker is lost with the failing message, as
	 * in Akka: every job is either counted or lost to one restart. Wait
	 * until the two add up (bounded, in case something is wrong). */
	long total = 0, restarts = 0;
	for (int tries = 0; tries < 600 && total + restarts < jobs; tries++) {
		uv_sleep(10);
		if (skald_system_ask(sys, count, T_GET, NULL, 1000, &type, &value) == 0)
			total = (long)(intptr_t)value;
		if (skald_system_ask(sys, super, T_GET, NULL, 1000, &type, &value) == 0)
			restarts = (long)(intptr_t)value;
	}
	double secs = (double)(uv_hrtime() - t0) / 1e9;

	skald_stop(sys, count); /* the watcher sees it and asks for shutdown */
	skald_system_wait(sys);

	skald_stats_t st;
	skald_system_stats(sys, &st);
	printf("counter: %d jobs sent, %ld counted, %ld lost to %ld worker restarts\n", jobs, total,
	       jobs - total, restarts);
	printf("counter: %llu messages delivered on %u threads in %.3f s, %llu dead letters\n",
	       (unsigned long long)st.delivered, skald_system_threads(sys), secs,
	       (unsigned long long)st.dead_letters);
	skald_system_stop(sys);
	return total + restarts == jobs ? 0 : 1;
}
