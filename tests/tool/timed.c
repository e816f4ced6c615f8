/*
 * tests/tool/timed.c - a game with known timestamps (see timed.h).
 */
#include <stdlib.h>
#include <string.h>

#include "tests/tool/timed.h"

const char *tt_timed_game(const tt_store_t *s)
{
	const char *pid = tt_pid("game");
	json_t *events = tt_json_lines(tt_game);
	char *input = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&input, &len);
	cr_assert_not_null(f);
	size_t i;
	json_t *ev;
	json_array_foreach(events, i, ev)
	{
		char ts[64];
		snprintf(ts, sizeof ts, "2026-12-03T14:%02zu:00.000Z", i);
		json_object_set_new(ev, "persistence_id", json_string(pid)); /* steals */
		json_object_set_new(ev, "seq", json_integer((json_int_t)i + 1));
		json_object_set_new(ev, "timestamp", json_string(ts));
		json_dumpf(ev, f, JSON_COMPACT);
		fputc('\n', f);
	}
	fclose(f);
	json_decref(events);
	tt_result_t r;
	tt_skald(&r, input, "import", "--store", s->uri, NULL);
	tt_assert_code(&r, 0, s->name);
	tt_free(&r);
	free(input);
	return pid;
}

void tt_fake_snapshot(const tt_store_t *s, const char *pid)
{
	/* 2026-12-03T14:03:30Z */
	tt_snapshot_save(s->uri, pid, 4, 1,
	                 "{\"x\":\"alice\",\"o\":\"bob\",\"board\":\".OX.X....\",\"moves\":3,"
	                 "\"status\":\"playing\"}",
	                 1796306610000);
}
