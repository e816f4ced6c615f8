/*
 * tests/unit/helpers.c - shared fixtures of the actor runtime's unit tests.
 */
#define SKALD_TEST_DEFINE
#include "helpers.h"

#include <stdlib.h>

uint32_t t_int;
uint32_t t_box;
atomic_long box_frees;
void box_free(void *payload)
{
	atomic_fetch_add(&box_frees, 1);
	free(payload);
}

static const skald_msgtype_t int_type = {.name = "test.int"};
static const skald_msgtype_t box_type = {.name = "test.box", .free = box_free};

void fixture_setup(void)
{
	atomic_store(&box_frees, 0);
	checks_reset();
	cr_assert_eq(skald_type_register(&int_type, &t_int), 0);
	cr_assert_eq(skald_type_register(&box_type, &t_box), 0);
}

box_t *box_new(uint64_t v)
{
	box_t *b = malloc(sizeof(*b));
	cr_assert_not_null(b);
	b->v = v;
	return b;
}

uint64_t thread_id(void)
{
	/* glibc's pthread_t is an integer; the cast keeps comparisons cheap in
	 * hot receive callbacks. */
	return (uint64_t)pthread_self();
}

skald_system_t *sys_start(unsigned threads, unsigned budget)
{
	skald_config_t cfg = {.threads = threads, .budget = budget, .name = "unit"};
	skald_system_t *sys = NULL;
	int rc = skald_system_new(&cfg, &sys);
	cr_assert_eq(rc, 0, "skald_system_new: %s", skald_strerror(rc));
	cr_assert_not_null(sys);
	return sys;
}

skald_stats_t stats_of(skald_system_t *sys)
{
	skald_stats_t st;
	int rc = skald_system_stats(sys, &st);
	cr_assert_eq(rc, 0, "skald_system_stats: %s", skald_strerror(rc));
	return st;
}

skald_ref_t spawn_on(skald_system_t *sys, const skald_behavior_t *b, void *arg, int thread)
{
	skald_spawn_opts_t pin = {.flags = SKALD_SPAWN_PIN, .thread = (unsigned)thread};
	skald_ref_t ref = SKALD_REF_NULL;
	int rc = skald_spawn(sys, b, arg, thread < 0 ? NULL : &pin, &ref);
	cr_assert_eq(rc, 0, "skald_spawn: %s", skald_strerror(rc));
	cr_assert(!skald_ref_is_null(ref));
	return ref;
}

uint64_t ask_int(skald_system_t *sys, skald_ref_t to, uint64_t request)
{
	uint32_t type = 0;
	void *reply = NULL;
	int rc = skald_system_ask(sys, to, t_int, INT_PAYLOAD(request), WAIT_MS, &type, &reply);
	cr_assert_eq(rc, 0, "skald_system_ask: %s", skald_strerror(rc));
	cr_assert_eq(type, t_int, "reply of type %u, expected test.int (%u)", type, t_int);
	return PAYLOAD_INT(reply);
}

void tell_int(skald_system_t *sys, skald_ref_t to, uint64_t v)
{
	int rc = skald_system_tell(sys, to, t_int, INT_PAYLOAD(v));
	cr_assert_eq(rc, 0, "skald_system_tell: %s", skald_strerror(rc));
}

void ref_cell_put(ref_cell_t *c, skald_ref_t r)
{
	c->ref = r;
	/* Release: the test thread that sees set also sees ref. */
	atomic_store_explicit(&c->set, 1, memory_order_release);
}

skald_ref_t ref_cell_get(ref_cell_t *c)
{
	AWAIT(atomic_load_explicit(&c->set, memory_order_acquire), WAIT_MS);
	return c->ref;
}
