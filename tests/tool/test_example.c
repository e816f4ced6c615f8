/*
 * tests/tool/test_example.c - the chat example as a user runs it: the chat
 * rooms store what is said and show it to those who join. (The tic-tac-toe
 * cluster has its own tests: test_tictactoe*.c.)
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tt.h"

/* Runs `chat user` as name in room at addr with input; returns its output
 * (to free); asserts it exits 0. */
static char *chat_user(const char *addr, const char *room, const char *name, const char *input)
{
	char *argv[] = {(char *)tt_build("examples/chat"),
	                "user",
	                "--connect",
	                (char *)addr,
	                "--room",
	                (char *)room,
	                "--name",
	                (char *)name,
	                NULL};
	tt_result_t r;
	tt_runv(&r, input, argv);
	cr_assert_eq(r.code, 0, "chat user %s exited %d: %s", name, r.code, r.err);
	char *out = strdup(r.out);
	tt_free(&r);
	return out;
}

Test(example, chat_lines_are_events_and_a_joiner_is_shown_them, .timeout = TT_TIMEOUT)
{
	const tt_store_t *s = tt_stores();
	const char *room = tt_pid("lobby");
	char *argv[] = {(char *)tt_build("examples/chat"),
	                "serve",
	                "--listen",
	                "tcp://127.0.0.1:0",
	                "--rooms",
	                (char *)room,
	                "--store",
	                (char *)s->uri,
	                NULL};
	tt_proc_t p;
	tt_spawn(&p, argv);
	char line[512];
	tt_read_line(&p, line, sizeof line, 20000);
	char *at = strstr(line, " at tcp://");
	cr_assert_not_null(at, "%s", line);
	char addr[128];
	snprintf(addr, sizeof addr, "%.*s", (int)strcspn(at + 4, "\n"), at + 4);

	free(chat_user(addr, room, "alice", "hello\nsecond line\n"));
	char *bob = chat_user(addr, room, "bob", "");
	char want[512];
	snprintf(want, sizeof want, "[%s] alice: hello\n[%s] alice: second line\n", room, room);
	cr_assert_str_eq(bob, want);
	free(bob);

	/* What was said is in the journal, as events of the room. */
	char pid[256];
	snprintf(pid, sizeof pid, "room-%s", room);
	tt_result_t r;
	tt_skald(&r, NULL, "events", pid, "--store", s->uri, NULL);
	tt_assert_code(&r, 0, "events");
	cr_assert_not_null(strstr(r.out, "room.said"), "%s", r.out);
	cr_assert_not_null(strstr(r.out, "second line"), "%s", r.out);
	cr_assert_not_null(strstr(r.out, "room.joined"), "%s", r.out);
	tt_free(&r);

	/* A room nobody serves is named in the refusal. */
	char *args[] = {(char *)tt_build("examples/chat"),
	                "user",
	                "--connect",
	                addr,
	                "--room",
	                "nosuch",
	                "--name",
	                "carol",
	                NULL};
	tt_runv(&r, "", args);
	cr_assert_eq(r.code, 1);
	cr_assert_not_null(strstr(r.err, "room nosuch"), "%s", r.err);
	tt_free(&r);

	kill(p.pid, SIGTERM);
	tt_finish(&p, &r, 20000);
	cr_assert_eq(r.code, 0, "chat serve: %s", r.err);
	tt_free(&r);
}
