/*
 * tests/journal/upcast.c - the journal front: upcasters: registered per event type, they rewrite
 * old events as they are read, whatever the store (here the memory store).
 */
#include <stdlib.h>
#include <string.h>

#include "tests/stores/harness.h"

/* ------------------------------------------------------------------------ */
/* Upcasters                                                                 */

static int upcast_rename(const char *type, int *version, json_t **data, void *arg)
{
	/* v1 {"old": x} -> v2 {"renamed": x}, replacing the object. */
	json_t *next = json_pack("{sO}", "renamed", json_object_get(*data, "old"));
	if (next == NULL)
		return SKALD_EDECODE;
	json_decref(*data);
	*data = next;
	*version = 2;
	return 0;
}

static int upcast_add_field(const char *type, int *version, json_t **data, void *arg)
{
	/* v2 -> v3 adds a field, in place. */
	json_object_set_new(*data, "added", json_string((const char *)arg));
	*version = 3;
	return 0;
}

static int upcast_fail(const char *type, int *version, json_t **data, void *arg)
{
	return -4343;
}

/* Appends one event of type at version with data {"old": 7}. */
static void append_typed(tctx_t *t, const char *pid, uint64_t expected, const char *type,
                         int version)
{
	skald_event_t e = {.type = type, .version = version, .data = json_pack("{si}", "old", 7)};
	skald_write_t w = {pid, expected, &e, 1, 1};
	call_t a = {0};
	RUN(t, &a, skald_journal_append(t->j, &w, 1, on_append, &a));
	cr_assert_eq(a.status, 0);
	json_decref(e.data);
}

Test(journal, upcasters_rewrite_old_events_on_replay_and_global_read, TEST_OPT)
{
	tctx_t t;
	char pid[256], type[256];
	t_open(&t, "upcast");
	pid_of(&t, "a", pid, sizeof pid);
	pid_of(&t, "type.moved", type, sizeof type);
	cr_assert_eq(skald_upcaster_register(type, 1, upcast_rename, NULL), 0);
	cr_assert_eq(skald_upcaster_register(type, 2, upcast_add_field, "yes"), 0);
	cr_assert_eq(skald_upcaster_register(type, 1, upcast_rename, NULL), SKALD_EEXISTS);
	append_typed(&t, pid, 0, type, 1); /* upcast 1 -> 2 -> 3 */
	append_typed(&t, pid, 1, type, 2); /* upcast 2 -> 3 */
	append_typed(&t, pid, 2, type, 3); /* current */
	append_typed(&t, pid, 3, TYPE_COUNTED, 1);

	call_t c = {0};
	read_range(&t, pid, 1, INF, INF, &c);
	cr_assert_eq(c.nev, 4);
	json_t *v3 = json_pack("{siss}", "renamed", 7, "added", "yes");
	cr_assert_eq(c.ev[0].version, 3);
	cr_assert(json_equal(c.ev[0].data, v3), "1 -> 3");
	cr_assert_eq(c.ev[1].version, 3);
	cr_assert_eq(json_integer_value(json_object_get(c.ev[1].data, "old")), 7);
	cr_assert_str_eq(json_string_value(json_object_get(c.ev[1].data, "added")), "yes");
	cr_assert_eq(c.ev[2].version, 3);
	cr_assert_null(json_object_get(c.ev[2].data, "added"), "a current event is untouched");
	cr_assert_eq(c.ev[3].version, 1, "other types are untouched");
	call_free(&c);

	uint64_t base = offset_before(&t, pid);
	RUN(&t, &c, skald_journal_read_all(t.j, base, INF, on_events, on_done, &c));
	int found = 0;
	for (size_t i = 0; i < c.nev; i++) {
		if (strcmp(c.ev[i].pid, pid) == 0 && c.ev[i].seq == 1) {
			cr_assert_eq(c.ev[i].version, 3);
			cr_assert(json_equal(c.ev[i].data, v3));
			found = 1;
		}
	}
	cr_assert(found);
	call_free(&c);
	json_decref(v3);
	t_close(&t);
}

Test(journal, failing_upcaster_fails_the_read, TEST_OPT)
{
	tctx_t t;
	char pid[256], type[256];
	t_open(&t, "upcast_fail");
	pid_of(&t, "a", pid, sizeof pid);
	pid_of(&t, "type.broken", type, sizeof type);
	cr_assert_eq(skald_upcaster_register(type, 1, upcast_fail, NULL), 0);
	append_typed(&t, pid, 0, type, 1);
	call_t c = {0};
	read_range(&t, pid, 1, INF, INF, &c);
	cr_assert_eq(c.status, -4343);
	cr_assert_eq(c.nev, 0, "the reader never sees an event that failed to upcast");
	call_free(&c);
	cr_assert_eq(skald_upcaster_register(NULL, 1, upcast_fail, NULL), SKALD_EINVAL);
	cr_assert_eq(skald_upcaster_register(type, 0, upcast_fail, NULL), SKALD_EINVAL);
	cr_assert_eq(skald_upcaster_register(type, 5, NULL, NULL), SKALD_EINVAL);
	t_close(&t);
}
