/*
 * tests/unit/helpers.h - shared fixtures of the actor runtime's unit tests.
 *
 * Criterion asserts may only run on the test's own thread (a failed assert
 * unwinds that thread), so code running on scheduler threads records broken
 * expectations with CHECK() and the test thread reports them with
 * checks_ok(). Every wait on the runtime is bounded: AWAIT() fails the test
 * when its condition is not met in time.
 */
#ifndef SKALD_TESTS_UNIT_HELPERS_H
#define SKALD_TESTS_UNIT_HELPERS_H

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "skald/actor.h"
#include "tests/include/skald_test.h"

/* The bound of an ordinary wait; long enough for a slow sanitizer build on a
 * loaded machine, short enough that a hang fails well inside the suite's
 * timeout. */
#define WAIT_MS 10000
/* How long a negative check ("nothing more arrives") watches. */
#define QUIET_MS 100

/* An error code no Skald or libuv function returns, used as the failure of
 * a test actor's handler so that it cannot be confused with the runtime's. */
#define TEST_ERR (-7001)

/* An integer carried in the payload pointer (type t_int, nothing freed). */
#define INT_PAYLOAD(v) ((void *)(uintptr_t)(v))
#define PAYLOAD_INT(p) ((uint64_t)(uintptr_t)(p))

/* A heap payload whose frees are counted (type t_box). */
typedef struct box_s {
	uint64_t v;
} box_t;

extern uint32_t t_int;
extern uint32_t t_box;
extern atomic_long box_frees;

/* Registers the test types and resets the counters; the .init of every
 * TestSuite. */
void fixture_setup(void);

box_t *box_new(uint64_t v);
/* The type's free function, for payloads the test owns (counts like the
 * runtime's frees). */
void box_free(void *payload);

/* An id of the calling thread, comparable with ==. */
uint64_t thread_id(void);

/* A running system with `threads` schedulers and the given budget (0: the
 * defaults); fails the test if it cannot start. */
skald_system_t *sys_start(unsigned threads, unsigned budget);
skald_stats_t stats_of(skald_system_t *sys);

/* Spawns a top-level actor, pinned to `thread` unless thread < 0; fails the
 * test on error. */
skald_ref_t spawn_on(skald_system_t *sys, const skald_behavior_t *b, void *arg, int thread);

/* skald_system_ask with an integer request, expecting an integer reply. */
uint64_t ask_int(skald_system_t *sys, skald_ref_t to, uint64_t request);
/* skald_system_tell of an integer; fails the test on error. */
void tell_int(skald_system_t *sys, skald_ref_t to, uint64_t v);

/* A fixed-size record of refs an actor can publish to the test thread. */
typedef struct ref_cell_s {
	skald_ref_t ref;
	atomic_int set;
} ref_cell_t;
void ref_cell_put(ref_cell_t *c, skald_ref_t r);
skald_ref_t ref_cell_get(ref_cell_t *c); /* waits, bounded */

/* Waits until the live actor count is back to `live` (bounded). */
#define AWAIT_LIVE(sys, live) AWAIT(stats_of(sys).live_actors == (uint64_t)(live), WAIT_MS)

#endif /* SKALD_TESTS_UNIT_HELPERS_H */
