/*
 * tests/journal/registry.c - the journal front: store registration and URI selection, and the
 * memory store's own options, on the built-in memory store.
 */
#include <stdlib.h>
#include <string.h>

#include "tests/stores/harness.h"

/* ------------------------------------------------------------------------ */
/* Registry and URI selection (built-in memory store)                        */

Test(registry, unknown_scheme_lists_the_registered_ones, TEST_OPT)
{
	uv_loop_t loop;
	skald_journal_t *j = (skald_journal_t *)&loop;
	cr_assert_eq(uv_loop_init(&loop), 0);
	cr_assert_eq(skald_journal_open(&loop, "nosuchstore://user:secret@host/db", &j),
	             SKALD_ESCHEME);
	cr_assert_null(j);
	const char *msg = skald_journal_open_errmsg();
	cr_assert(strstr(msg, "memory") != NULL, "message: %s", msg);
	cr_assert(strstr(msg, "nosuchstore") != NULL, "message: %s", msg);
	cr_assert(strstr(msg, "secret") == NULL, "a password leaked into: %s", msg);
	/* Schemes match exactly. */
	cr_assert_eq(skald_journal_open(&loop, "Memory://x", &j), SKALD_ESCHEME);
	cr_assert_eq(skald_journal_open(&loop, "memoryx://x", &j), SKALD_ESCHEME);
	cr_assert_eq(skald_journal_open(&loop, "mem://x", &j), SKALD_ESCHEME);
	cr_assert_eq(uv_loop_close(&loop), 0);
}

Test(registry, uri_without_scheme_is_malformed, TEST_OPT)
{
	uv_loop_t loop;
	skald_journal_t *j;
	cr_assert_eq(uv_loop_init(&loop), 0);
	cr_assert_eq(skald_journal_open(&loop, "just-a-name", &j), SKALD_EURI);
	cr_assert_eq(skald_journal_open(&loop, "://x", &j), SKALD_EURI);
	cr_assert_gt(strlen(skald_journal_open_errmsg()), 0);
	cr_assert_eq(skald_journal_open(&loop, "memory:x", &j), SKALD_EURI);
	cr_assert_eq(skald_journal_open(&loop, "memory://x?bogus=1", &j), SKALD_EURI);
	cr_assert(strstr(skald_journal_open_errmsg(), "bogus") != NULL, "%s",
	          skald_journal_open_errmsg());
	cr_assert_eq(skald_journal_open(&loop, "memory://x?batch=0", &j), SKALD_EURI);
	cr_assert_eq(uv_loop_close(&loop), 0);
}

static void close_and_run(uv_loop_t *loop, skald_journal_t *j)
{
	int closed = 0;
	cr_assert_eq(skald_journal_close(j, on_closed, &closed), 0);
	uv_run(loop, UV_RUN_DEFAULT);
	cr_assert_eq(closed, 1);
}

Test(registry, null_uri_means_the_environment, TEST_OPT)
{
	uv_loop_t loop;
	skald_journal_t *j;
	cr_assert_eq(uv_loop_init(&loop), 0);
	unsetenv("SKALD_JOURNAL");
	cr_assert_eq(skald_journal_open(&loop, NULL, &j), SKALD_EURI);
	cr_assert(strstr(skald_journal_open_errmsg(), "SKALD_JOURNAL") != NULL);
	setenv("SKALD_JOURNAL", "memory://from-env", 1);
	cr_assert_eq(skald_journal_open(&loop, NULL, &j), 0, "%s", skald_journal_open_errmsg());
	cr_assert_str_eq(skald_journal_open_errmsg(), "");
	cr_assert_str_eq(skald_journal_scheme(j), "memory");
	cr_assert_eq(skald_journal_loop(j), &loop);
	close_and_run(&loop, j);
	cr_assert_eq(uv_loop_close(&loop), 0);
}

Test(registry, lookup_finds_the_memory_store, TEST_OPT)
{
	const skald_store_t *s = skald_store_lookup("memory");
	cr_assert_not_null(s);
	cr_assert_eq(s->abi, SKALD_STORE_ABI);
	cr_assert(s->caps & SKALD_CAP_ATOMIC_WRITES);
	cr_assert_null(skald_store_lookup("memory:"));
	cr_assert_null(skald_store_lookup(NULL));
	/* Registering the same table again is harmless. */
	cr_assert_eq(skald_store_register(s), 0);
}

static int fake_fini_calls;

static int fake_open(void *state, skald_journal_t *j, uv_loop_t *loop, const char *uri)
{
	skald_journal_set_errmsg(j, "fake store: cannot reach %s", "the moon");
	return SKALD_EBACKEND;
}

static void fake_close(void *state, void (*done)(skald_journal_t *j))
{
}

static void fake_fini(void *state)
{
	fake_fini_calls++;
}

/* Refuses every operation, through the operation's own completion. */
static void fake_start(void *state, skald_op_t *op)
{
	skald_op_finish(op, SKALD_EUNSUPPORTED);
}

#define FAKE_MEMBERS .open = fake_open, .close = fake_close, .fini = fake_fini, .start = fake_start

static const skald_store_t fake_store = {
        .abi = SKALD_STORE_ABI,
        .schemes = {"conformance-fake", "conformance-fake2"},
        .state_size = 24,
        FAKE_MEMBERS,
};

Test(registry, duplicate_scheme_is_refused, TEST_OPT)
{
	static const skald_store_t dup = {
	        .abi = SKALD_STORE_ABI, .schemes = {"other", "memory"}, FAKE_MEMBERS};
	cr_assert_eq(skald_store_register(&dup), SKALD_EEXISTS);
	cr_assert_null(skald_store_lookup("other"), "a refused table registers no scheme");
	cr_assert_eq(skald_store_register(&fake_store), 0);
	static const skald_store_t dup2 = {
	        .abi = SKALD_STORE_ABI, .schemes = {"conformance-fake2"}, FAKE_MEMBERS};
	cr_assert_eq(skald_store_register(&dup2), SKALD_EEXISTS);
}

Test(registry, invalid_tables_are_refused, TEST_OPT)
{
	static const skald_store_t wrong_abi = {
	        .abi = SKALD_STORE_ABI + 1, .schemes = {"conformance-abi"}, FAKE_MEMBERS};
	static const skald_store_t no_scheme = {.abi = SKALD_STORE_ABI, FAKE_MEMBERS};
	static const skald_store_t bad_scheme = {
	        .abi = SKALD_STORE_ABI, .schemes = {"Bad:Scheme"}, FAKE_MEMBERS};
	static const skald_store_t no_start = {.abi = SKALD_STORE_ABI,
	                                       .schemes = {"conformance-nostart"},
	                                       .open = fake_open,
	                                       .close = fake_close,
	                                       .fini = fake_fini};
	cr_assert_eq(skald_store_register(NULL), SKALD_EINVAL);
	cr_assert_eq(skald_store_register(&wrong_abi), SKALD_EINVAL);
	cr_assert_eq(skald_store_register(&no_scheme), SKALD_EINVAL);
	cr_assert_eq(skald_store_register(&bad_scheme), SKALD_EINVAL);
	cr_assert_eq(skald_store_register(&no_start), SKALD_EINVAL);
}

Test(registry, failed_open_reports_and_calls_fini, TEST_OPT)
{
	uv_loop_t loop;
	skald_journal_t *j;
	cr_assert_eq(uv_loop_init(&loop), 0);
	cr_assert_eq(skald_store_register(&fake_store), 0);
	fake_fini_calls = 0;
	cr_assert_eq(skald_journal_open(&loop, "conformance-fake2://x", &j), SKALD_EBACKEND);
	cr_assert_null(j);
	cr_assert_eq(fake_fini_calls, 1, "fini runs after a failed open");
	cr_assert(strstr(skald_journal_open_errmsg(), "the moon") != NULL, "%s",
	          skald_journal_open_errmsg());
	cr_assert_eq(uv_loop_close(&loop), 0);
}

/* A store with no capability and only the required members: enough to open
 * and close, to check what the front refuses on its behalf. */
typedef struct bare_s {
	uv_idle_t idle;
	skald_journal_t *j;
	void (*done)(skald_journal_t *j);
} bare_t;

static int bare_open(void *state, skald_journal_t *j, uv_loop_t *loop, const char *uri)
{
	bare_t *b = state;
	b->j = j;
	uv_idle_init(loop, &b->idle);
	b->idle.data = b;
	return 0;
}

static void bare_closed(uv_handle_t *h)
{
	bare_t *b = h->data;
	b->done(b->j);
}

static void bare_close(void *state, void (*done)(skald_journal_t *j))
{
	bare_t *b = state;
	b->done = done;
	uv_close((uv_handle_t *)&b->idle, bare_closed);
}

static void bare_fini(void *state)
{
}

static const skald_store_t bare_store = {
        .abi = SKALD_STORE_ABI,
        .schemes = {"conformance-bare"},
        .state_size = sizeof(bare_t),
        .open = bare_open,
        .close = bare_close,
        .fini = bare_fini,
        .start = fake_start,
};

Test(registry, front_refuses_what_a_store_cannot_do, TEST_OPT)
{
	uv_loop_t loop;
	skald_journal_t *j;
	cr_assert_eq(uv_loop_init(&loop), 0);
	cr_assert_eq(skald_store_register(&bare_store), 0);
	cr_assert_eq(skald_journal_open(&loop, "conformance-bare://", &j), 0);
	cr_assert_eq(skald_journal_caps(j), 0);
	call_t c = {.returned = 1};
	json_t *obj = json_object();
	skald_event_t ev[2] = {{.type = TYPE_COUNTED, .data = obj},
	                       {.type = TYPE_COUNTED, .data = obj}};
	skald_write_t w = {"a", 0, ev, 2, 1};
	skald_snapshot_t snap = {"a", 1, 1, obj, 0};
	cr_assert_eq(skald_journal_append(j, &w, 1, on_append, &c), SKALD_EUNSUPPORTED,
	             "several events need SKALD_CAP_ATOMIC_WRITES");
	cr_assert(strstr(skald_journal_errmsg(j), "atomic") != NULL, "%s", skald_journal_errmsg(j));
	cr_assert_eq(skald_journal_snapshot_save(j, &snap, on_done, &c), SKALD_EUNSUPPORTED);
	cr_assert_eq(skald_journal_snapshot_load(j, "a", INF, on_snapshot, &c), SKALD_EUNSUPPORTED);
	cr_assert_eq(skald_journal_snapshot_delete(j, "a", 1, on_done, &c), SKALD_EUNSUPPORTED);
	cr_assert_eq(skald_journal_snapshot_delete_to(j, "a", 1, on_done, &c), SKALD_EUNSUPPORTED);
	cr_assert_eq(skald_journal_read_all(j, 0, INF, on_events, on_done, &c), SKALD_EUNSUPPORTED);
	cr_assert_eq(skald_journal_list_ids(j, NULL, NULL, INF, on_ids, on_done, &c),
	             SKALD_EUNSUPPORTED);
	cr_assert_eq(c.calls, 0, "a refused call has no callback");
	/* A store's own refusal reaches the callback, after the call. */
	cr_assert_eq(skald_journal_highest(j, "a", on_seq, &c), 0);
	close_and_run(&loop, j);
	cr_assert_eq(c.calls, 1);
	cr_assert_eq(c.status, SKALD_EUNSUPPORTED);
	json_decref(obj);
	cr_assert_eq(uv_loop_close(&loop), 0);
}

Test(registry, memory_batches_follow_the_batch_option, TEST_OPT)
{
	tctx_t t;
	char pid[256];
	t_open_uri(&t, "mem_batch", "memory://batch-test?batch=2");
	pid_of(&t, "a", pid, sizeof pid);
	write_five(&t, pid);
	call_t c = {0};
	read_range(&t, pid, 1, INF, INF, &c);
	expect_seqs(&c, pid, 1, 5);
	cr_assert_eq(c.batches, 3, "5 events in batches of 2");
	call_free(&c);
	RUN(&t, &c, skald_journal_list_ids(t.j, t.prefix, NULL, INF, on_ids, on_done, &c));
	cr_assert_eq(c.nids, 1);
	call_free(&c);
	t_close(&t);
}

Test(registry, private_memory_journal_is_not_shared, TEST_OPT)
{
	tctx_t t1, t2;
	char pid[256];
	t_open_uri(&t1, "mem_private", "memory://");
	t_open_uri(&t2, "mem_private", "memory://");
	pid_of(&t1, "a", pid, sizeof pid);
	cr_assert_eq(append_n(&t1, pid, 0, 3), 0);
	cr_assert_eq(highest(&t1, pid), 3);
	cr_assert_eq(highest(&t2, pid), 0);
	t_close(&t1);
	t_close(&t2);
}
