/*
 * tests/entity/test_shutdown.c - stopping a system whose entities are busy.
 * Run under ASan too: a crash or a leak here is a failure of the graceful
 * stop.
 *
 * A named memory:// database lives as long as the process (see
 * stores/memory/memory.c: it outlives its handles), so the journal can be
 * read after the system is gone.
 */
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

TestSuite(shutdown, .init = entity_fixture, .timeout = SUITE_TIMEOUT);

enum { ENTITIES = 100 };

/* 100 entities recover one after the other before the load starts: on
 * FerretDB under a sanitizer that alone takes a minute. */
Test(shutdown, stop_while_entities_write_keeps_every_acknowledged_event, .timeout = 300)
{
	skald_system_t *sys = sys_start(store_uri(), 2);
	char base[128], id[160], pid[192];
	unique_id(base, sizeof base, "busy");
	skald_ref_t refs[ENTITIES];
	for (int i = 0; i < ENTITIES; i++) {
		snprintf(id, sizeof id, "%s-%d", base, i);
		int rc = skald_entity_spawn(sys, &acc_type, id, NULL, &refs[i]);
		cr_assert_eq(rc, 0, "spawn %s: %s", id, skald_strerror(rc));
	}
	for (int i = 0; i < ENTITIES; i++)
		free(ask_op(sys, refs[i], C_GET, 0, 0));
	/* Each entity persists 1, 2, 3... one write after the other, until
	 * the system stops under it. */
	for (int i = 0; i < ENTITIES; i++)
		tell_op(sys, refs[i], C_LOOP, 1, 0);
	AWAIT(atomic_load(&g_acked_total) >= 20 * ENTITIES, WAIT_MS);
	skald_system_stop(sys);

	long acked_total = 0;
	jloop_t l;
	jl_open(&l, store_uri());
	for (int i = 0; i < ENTITIES; i++) {
		snprintf(pid, sizeof pid, "acc-%s-%d", base, i);
		long acked = atomic_load(&g_acked[i]);
		acked_total += acked;
		jl_check_loop_history(&l, pid, acked);
	}
	jl_close(&l);
	cr_assert_eq(acked_total, atomic_load(&g_acked_total));
	test_end();
}

Test(shutdown, stop_while_entities_recover_is_clean)
{
	enum { N = 20, HISTORY = 2000 };
	char base[128], id[160], pid[192];
	unique_id(base, sizeof base, "recovering");
	jloop_t l;
	jl_open(&l, store_uri());
	for (int i = 0; i < N; i++) {
		snprintf(pid, sizeof pid, "acc-%s-%d", base, i);
		jl_append(&l, pid, 0, HISTORY, "acc.added", 1, "v", 1);
	}

	skald_system_t *sys = sys_start(store_uri(), 2);
	skald_ref_t refs[N];
	for (int i = 0; i < N; i++) {
		snprintf(id, sizeof id, "%s-%d", base, i);
		cr_assert_eq(skald_entity_spawn(sys, &acc_type, id, NULL, &refs[i]), 0);
		/* Waits for the end of the recovery that the stop cuts short. */
		tell_op(sys, refs[i], C_ADD, HISTORY + 1, 0);
	}
	AWAIT(atomic_load(&g_apply_calls) > 0, WAIT_MS);
	skald_system_stop(sys);

	/* Whatever was written in the meantime follows the history. */
	for (int i = 0; i < N; i++) {
		snprintf(pid, sizeof pid, "acc-%s-%d", base, i);
		uint64_t h = jl_highest(&l, pid);
		cr_assert(h == HISTORY || h == HISTORY + 1, "%s: highest %llu", pid,
		          (unsigned long long)h);
	}
	jl_close(&l);
	test_end();
}
