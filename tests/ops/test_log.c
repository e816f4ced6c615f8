/*
 * tests/ops/test_log.c - SKALD_LOG_FORMAT=json: every line of stderr is one
 * JSON object, read back with jansson, with the actor's context where the
 * line is about an actor. Each test runs in a process of its own, so the
 * format is read afresh (it is read once per process).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scrape.h"
#include "skald/entity.h"

/* stderr goes to a file from here on; returns the file's path. */
static char *capture_stderr(void)
{
	static char path[] = "/tmp/skald-ops-log-XXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_geq(dup2(fd, 2), 0);
	close(fd);
	return path;
}

/* The lines written so far, each parsed; fails on a line that is not a
 * JSON object. Returns an array (owned by the caller). */
static json_t *read_lines(const char *path)
{
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f);
	json_t *lines = json_array();
	char buf[16384];
	while (fgets(buf, sizeof buf, f) != NULL) {
		json_error_t err;
		json_t *o = json_loads(buf, 0, &err);
		cr_assert(json_is_object(o), "not a JSON object (%s): %s", err.text, buf);
		json_array_append_new(lines, o); /* steals o */
	}
	fclose(f);
	return lines;
}

/* The first line whose msg contains what, or NULL (borrowed from lines). */
static json_t *line_with(json_t *lines, const char *what)
{
	size_t i;
	json_t *o;
	json_array_foreach(lines, i, o)
	{
		const char *msg = json_string_value(json_object_get(o, "msg"));
		if (msg != NULL && strstr(msg, what) != NULL)
			return o;
	}
	return NULL;
}

/* True once a line whose msg contains what has been written. */
static bool logged(const char *path, const char *what)
{
	json_t *lines = read_lines(path);
	bool found = line_with(lines, what) != NULL;
	json_decref(lines);
	return found;
}

static const char *field(json_t *o, const char *name)
{
	return json_string_value(json_object_get(o, name));
}

static int fail_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	return SKALD_EINVAL;
}

static const skald_behavior_t failing = {.receive = fail_receive};

/* A system of one thread with an actor that fails on the message it is
 * sent, without a parent: the runtime logs that it stops. */
static skald_system_t *fail_one(skald_ref_t *r)
{
	skald_system_t *sys;
	cr_assert_eq(skald_system_new(&(skald_config_t){.threads = 1}, &sys), 0);
	cr_assert_eq(skald_spawn(sys, &failing, NULL, NULL, r), 0);
	static const skald_msgtype_t def = {.name = "ops.log.poke"};
	uint32_t t;
	cr_assert_eq(skald_type_register(&def, &t), 0);
	cr_assert_eq(skald_system_tell(sys, *r, t, NULL), 0);
	return sys;
}

Test(log, json_lines_name_the_node_and_actor)
{
	setenv("SKALD_LOG_FORMAT", "json", 1);
	setenv("SKALD_LOG", "info", 1);
	char *path = capture_stderr();
	skald_ref_t r;
	skald_system_t *sys = fail_one(&r);
	AWAIT(logged(path, "has no parent"), WAIT_MS);
	skald_system_stop(sys);

	json_t *lines = read_lines(path);
	json_t *o = line_with(lines, "has no parent");
	char node[17], ref[48];
	snprintf(node, sizeof node, "%016llx", (unsigned long long)r.node);
	cr_assert_str_eq(field(o, "level"), "error");
	cr_assert_str_eq(field(o, "node"), node);
	cr_assert_str_eq(field(o, "actor"), skald_ref_str(r, ref, sizeof ref));
	cr_assert_null(json_object_get(o, "persistence_id"), "not an entity");
	/* RFC 3339 in UTC with milliseconds. */
	const char *time = field(o, "time");
	cr_assert_not_null(time);
	cr_assert_eq(strlen(time), strlen("2024-05-01T12:00:00.123Z"), "%s", time);
	cr_assert_eq(time[10], 'T');
	cr_assert_eq(time[23], 'Z');
	json_decref(lines);
	unlink(path);
}

/* An entity that fails to apply its events in recovery. Its id has a
 * quote, a backslash and a newline, which the lines must escape. */
#define ODD_ID "sec\"o\\n\nd"
static int bad_command(skald_actor_t *self, void *state, skald_msg_t *cmd)
{
	return skald_persist(self, "ops.noted", 1, json_object(), NULL, NULL);
}

static int bad_apply(void *state, const skald_event_t *ev)
{
	return *(int *)state ? SKALD_EINVAL : 0;
}

static int bad_init(void *state, const char *id)
{
	*(int *)state = strcmp(id, ODD_ID) == 0;
	return 0;
}

Test(log, json_lines_of_an_entity_carry_its_persistence_id)
{
	setenv("SKALD_LOG_FORMAT", "json", 1);
	char *path = capture_stderr();
	char journal[64];
	snprintf(journal, sizeof journal, "memory://ops-log-%d", (int)getpid());
	skald_system_t *sys;
	cr_assert_eq(skald_system_new(&(skald_config_t){.threads = 1, .journal = journal}, &sys),
	             0);
	static const skald_msgtype_t def = {.name = "ops.log.cmd"};
	uint32_t t;
	cr_assert_eq(skald_type_register(&def, &t), 0);
	/* One history, "logged-" ODD_ID, written by a type that applies its
	 * events and recovered by one whose apply fails. */
	static const skald_entity_type_t ok = {.name = "logged",
	                                       .state_size = sizeof(int),
	                                       .command = bad_command,
	                                       .apply = bad_apply};
	static const skald_entity_type_t bad = {.name = "logged",
	                                        .state_size = sizeof(int),
	                                        .init = bad_init,
	                                        .command = bad_command,
	                                        .apply = bad_apply};
	skald_ref_t e;
	cr_assert_eq(skald_entity_spawn(sys, &ok, ODD_ID, NULL, &e), 0);
	cr_assert_eq(skald_system_tell(sys, e, t, NULL), 0);
	AWAIT(metric_now("skald_journal_write_seconds_count") >= 1, WAIT_MS);
	cr_assert_eq(skald_stop(sys, e), 0);
	cr_assert_eq(skald_entity_spawn(sys, &bad, ODD_ID, NULL, &e), 0);
	AWAIT(logged(path, "apply failed"), WAIT_MS);
	skald_system_stop(sys);

	json_t *lines = read_lines(path);
	json_t *o = line_with(lines, "apply failed");
	cr_assert_str_eq(field(o, "persistence_id"), "logged-" ODD_ID);
	cr_assert_not_null(strstr(field(o, "msg"), "logged-" ODD_ID));
	cr_assert_str_eq(field(o, "level"), "error");
	cr_assert_not_null(field(o, "actor"));
	json_decref(lines);
	unlink(path);
}

Test(log, an_unknown_format_is_said_and_text_is_written)
{
	setenv("SKALD_LOG_FORMAT", "xml", 1);
	char *path = capture_stderr();
	skald_ref_t r;
	skald_system_t *sys = fail_one(&r);
	char buf[4096];
	for (uint64_t end = now_ms() + WAIT_MS; now_ms() < end; sleep_ms(1)) {
		FILE *f = fopen(path, "r");
		size_t n = fread(buf, 1, sizeof buf - 1, f);
		buf[n] = '\0';
		fclose(f);
		if (strstr(buf, "has no parent") != NULL)
			break;
	}
	skald_system_stop(sys);
	cr_assert_not_null(
	        strstr(buf, "SKALD_LOG_FORMAT=xml is not understood (known: text, json)"), "%s",
	        buf);
	cr_assert_not_null(strstr(buf, "skald error: actor "), "%s", buf);
	unlink(path);
}
