/*
 * tests/stores/order.c - conformance, the global order (read_all) and listing persistence ids.
 */
#include <stdlib.h>
#include <string.h>

#include "tests/stores/harness.h"

/* ------------------------------------------------------------------------ */
/* Journal: global order, listing                                            */

Test(journal, read_all_returns_every_event_exactly_once, TEST_OPT)
{
	tctx_t t;
	char p[3][256];
	t_open(&t, "read_all");
	for (int i = 0; i < 3; i++)
		pid_of(&t, (const char *[]){"a", "b", "c"}[i], p[i], sizeof p[i]);
	/* Interleave writes of three ids. */
	cr_assert_eq(append_n(&t, p[0], 0, 2), 0);
	uint64_t base = offset_before(&t, p[0]);
	cr_assert_eq(append_n(&t, p[1], 0, 3), 0);
	cr_assert_eq(append_n(&t, p[0], 2, 1), 0);
	cr_assert_eq(append_n(&t, p[2], 0, 1), 0);
	cr_assert_eq(append_n(&t, p[1], 3, 2), 0);
	cr_assert_eq(delete_to(&t, p[2], 0), 0);

	call_t c = {0};
	RUN(&t, &c, skald_journal_read_all(t.j, base, INF, on_events, on_done, &c));
	cr_assert_eq(c.status, 0);
	uint64_t seen[3] = {0};
	uint64_t last_offset = base;
	for (size_t i = 0; i < c.nev; i++) {
		const got_t *g = &c.ev[i];
		cr_assert_gt(g->offset, last_offset, "offsets must ascend strictly");
		last_offset = g->offset;
		for (int k = 0; k < 3; k++) {
			if (strcmp(g->pid, p[k]) != 0)
				continue;
			cr_assert_eq(g->seq, seen[k] + 1, "%s: seq %llu after %llu", p[k],
			             (unsigned long long)g->seq, (unsigned long long)seen[k]);
			seen[k] = g->seq;
		}
	}
	cr_assert_eq(seen[0], 3);
	cr_assert_eq(seen[1], 5);
	cr_assert_eq(seen[2], 1);
	call_free(&c);
	t_close(&t);
}

Test(journal, read_all_respects_after_and_max, TEST_OPT)
{
	tctx_t t;
	char pid[256];
	t_open(&t, "read_all_bounds");
	pid_of(&t, "a", pid, sizeof pid);
	cr_assert_eq(append_n(&t, pid, 0, 10), 0);
	uint64_t base = offset_before(&t, pid);
	call_t c = {0};
	RUN(&t, &c, skald_journal_read_all(t.j, base, 4, on_events, on_done, &c));
	cr_assert_eq(c.status, 0);
	cr_assert_eq(c.nev, 4);
	uint64_t last = c.ev[3].offset;
	cr_assert_gt(c.ev[0].offset, base);
	call_free(&c);
	/* A projection resumes after the last offset it processed. */
	RUN(&t, &c, skald_journal_read_all(t.j, last, INF, on_events, on_done, &c));
	for (size_t i = 0; i < c.nev; i++)
		cr_assert_gt(c.ev[i].offset, last);
	size_t mine = 0;
	for (size_t i = 0; i < c.nev; i++)
		if (strcmp(c.ev[i].pid, pid) == 0)
			cr_assert_eq(c.ev[i].seq, 5 + mine++);
	cr_assert_eq(mine, 6);
	call_free(&c);
	RUN(&t, &c, skald_journal_read_all(t.j, base, 0, on_events, on_done, &c));
	cr_assert_eq(c.nev, 0, "max 0 reads nothing");
	call_free(&c);
	t_close(&t);
}

Test(journal, deleted_events_leave_the_global_order, TEST_OPT)
{
	tctx_t t;
	char pid[256];
	t_open(&t, "read_all_deleted");
	pid_of(&t, "a", pid, sizeof pid);
	cr_assert_eq(append_n(&t, pid, 0, 4), 0);
	uint64_t base = offset_before(&t, pid);
	cr_assert_eq(delete_to(&t, pid, 2), 0);
	call_t c = {0};
	RUN(&t, &c, skald_journal_read_all(t.j, base, INF, on_events, on_done, &c));
	uint64_t expect = 3;
	for (size_t i = 0; i < c.nev; i++)
		if (strcmp(c.ev[i].pid, pid) == 0)
			cr_assert_eq(c.ev[i].seq, expect++);
	cr_assert_eq(expect, 5);
	call_free(&c);
	t_close(&t);
}

Test(journal, list_ids_by_prefix_in_pages, TEST_OPT)
{
	tctx_t t;
	char pid[256];
	t_open(&t, "list_ids");
	const char *names[] = {"c", "a", "b", "d"};
	for (int i = 0; i < 4; i++)
		cr_assert_eq(append_n(&t, pid_of(&t, names[i], pid, sizeof pid), 0, (size_t)i + 1),
		             0);
	call_t c = {0};
	RUN(&t, &c, skald_journal_list_ids(t.j, t.prefix, NULL, INF, on_ids, on_done, &c));
	cr_assert_eq(c.status, 0);
	cr_assert_eq(c.nids, 4);
	const char *order[] = {"a", "b", "c", "d"};
	const uint64_t highs[] = {2, 3, 1, 4};
	for (int i = 0; i < 4; i++) {
		cr_assert_str_eq(c.ids[i], pid_of(&t, order[i], pid, sizeof pid));
		cr_assert_eq(c.highs[i], highs[i]);
	}
	call_free(&c);
	/* Paging: two, then the rest after the last one seen. */
	RUN(&t, &c, skald_journal_list_ids(t.j, t.prefix, NULL, 2, on_ids, on_done, &c));
	cr_assert_eq(c.nids, 2);
	char after[256];
	snprintf(after, sizeof after, "%s", c.ids[1]);
	call_free(&c);
	RUN(&t, &c, skald_journal_list_ids(t.j, t.prefix, after, INF, on_ids, on_done, &c));
	cr_assert_eq(c.nids, 2);
	cr_assert_str_eq(c.ids[0], pid_of(&t, "c", pid, sizeof pid));
	call_free(&c);
	RUN(&t, &c, skald_journal_list_ids(t.j, t.prefix, NULL, 0, on_ids, on_done, &c));
	cr_assert_eq(c.nids, 0);
	call_free(&c);
	t_close(&t);
}
