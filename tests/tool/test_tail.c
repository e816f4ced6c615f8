/*
 * tests/tool/test_tail.c - `skald tail`: follows the global stream live,
 * from an offset or from the end, and exits cleanly on --count, SIGINT and
 * SIGTERM.
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/tool/tt.h"

static void append_ok(const char *uri, const char *pid, const char *expect, int from, int n)
{
	char input[2048];
	size_t len = 0;
	for (int i = from; i < from + n; i++)
		len += (size_t)snprintf(input + len, sizeof input - len,
		                        "{\"type\":\"tail.step\",\"data\":{\"i\":%d}}\n", i);
	tt_result_t r;
	tt_skald(&r, input, "append", pid, "--expect", expect, "--store", uri, NULL);
	tt_assert_code(&r, 0, pid);
	tt_free(&r);
}

/* The global offset of pid's event seq. */
static long long offset_of(const char *uri, const char *pid, const char *seq)
{
	tt_result_t r;
	tt_skald(&r, NULL, "events", pid, "--from", seq, "--max", "1", "--json", "--store", uri,
	         NULL);
	tt_assert_code(&r, 0, pid);
	json_t *lines = tt_json_lines(r.out);
	long long off = json_integer_value(json_object_get(json_array_get(lines, 0), "offset"));
	json_decref(lines);
	tt_free(&r);
	cr_assert_gt(off, 0);
	return off;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

Test(tail, count_exits_after_n_events_from_an_offset, .timeout = TT_TIMEOUT)
{
	for (const tt_store_t *s = tt_stores(); s->name; s++) {
		const char *pid = tt_pid("tail");
		append_ok(s->uri, pid, "0", 1, 1);
		char from[32];
		snprintf(from, sizeof from, "%lld", offset_of(s->uri, pid, "1") + 1);
		char *argv[] = {(char *)tt_build("skald"),
		                "tail",
		                "--from",
		                from,
		                "--prefix",
		                (char *)pid,
		                "--count",
		                "3",
		                "--json",
		                "--interval",
		                "50",
		                "--store",
		                (char *)s->uri,
		                NULL};
		tt_proc_t p;
		tt_spawn(&p, argv);
		/* Some before it looks, some while it follows. */
		append_ok(s->uri, pid, "1", 2, 2);
		sleep_ms(300);
		append_ok(s->uri, pid, "3", 4, 2);
		tt_result_t r;
		tt_finish(&p, &r, 60000);
		tt_assert_code(&r, 0, s->name);
		json_t *lines = tt_json_lines(r.out);
		cr_assert_eq(json_array_size(lines), 3, "%s: %s", s->name, r.out);
		for (size_t i = 0; i < 3; i++) {
			json_t *e = json_array_get(lines, i);
			cr_assert_str_eq(json_string_value(json_object_get(e, "persistence_id")),
			                 pid);
			cr_assert_eq(json_integer_value(json_object_get(e, "seq")),
			             (json_int_t)i + 2);
		}
		json_decref(lines);
		tt_free(&r);
	}
}

Test(tail, without_from_starts_at_the_end, .timeout = TT_TIMEOUT)
{
	for (const tt_store_t *s = tt_stores(); s->name; s++) {
		const char *pid = tt_pid("tailend");
		append_ok(s->uri, pid, "0", 1, 2);
		char *argv[] = {(char *)tt_build("skald"),
		                "tail",
		                "--prefix",
		                (char *)pid,
		                "--count",
		                "1",
		                "--json",
		                "--interval",
		                "50",
		                "--store",
		                (char *)s->uri,
		                NULL};
		tt_proc_t p;
		tt_spawn(&p, argv);
		/* Whenever it has found the end, the next event is the one it
		 * shows: keep writing until it has seen one. */
		tt_result_t r = {0};
		uint64_t seq = 2;
		for (int tries = 0; tries < 200; tries++) {
			char expect[24];
			snprintf(expect, sizeof expect, "%llu", (unsigned long long)seq);
			append_ok(s->uri, pid, expect, (int)seq + 1, 1);
			seq++;
			sleep_ms(150);
			/* Has it exited? Asked without reaping it: tt_finish does. */
			siginfo_t si = {0};
			if (waitid(P_PID, (id_t)p.pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
			    si.si_pid == p.pid)
				break;
		}
		tt_finish(&p, &r, 60000);
		tt_assert_code(&r, 0, s->name);
		json_t *lines = tt_json_lines(r.out);
		cr_assert_eq(json_array_size(lines), 1, "%s: %s", s->name, r.out);
		cr_assert_gt(json_integer_value(json_object_get(json_array_get(lines, 0), "seq")),
		             2, "%s: events from before it started were shown: %s", s->name, r.out);
		json_decref(lines);
		tt_free(&r);
	}
}

static void stops_cleanly_on(int sig)
{
	for (const tt_store_t *s = tt_stores(); s->name; s++) {
		const char *pid = tt_pid("tailsig");
		append_ok(s->uri, pid, "0", 1, 1);
		char from[32];
		snprintf(from, sizeof from, "%lld", offset_of(s->uri, pid, "1"));
		char *argv[] = {(char *)tt_build("skald"),
		                "tail",
		                "--from",
		                from,
		                "--prefix",
		                (char *)pid,
		                "--interval",
		                "50",
		                "--store",
		                (char *)s->uri,
		                NULL};
		tt_proc_t p;
		tt_spawn(&p, argv);
		/* Once it has printed, it is following: its handlers are in. */
		char buf[4096];
		tt_read_line(&p, buf, sizeof buf, 60000);
		cr_assert(strncmp(buf, "OFFSET", 6) == 0, "%s", buf);
		kill(p.pid, sig);
		tt_result_t r;
		tt_finish(&p, &r, 60000);
		tt_assert_code(&r, 0, strsignal(sig));
		tt_free(&r);
	}
}

Test(tail, sigterm_exits_cleanly, .timeout = TT_TIMEOUT)
{
	stops_cleanly_on(SIGTERM);
}

Test(tail, sigint_exits_cleanly, .timeout = TT_TIMEOUT)
{
	stops_cleanly_on(SIGINT);
}
