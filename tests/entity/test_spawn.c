/*
 * tests/entity/test_spawn.c - spawning entities: the mistakes that
 * skald_entity_spawn must refuse.
 */
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

TestSuite(spawn, .init = entity_fixture, .timeout = SUITE_TIMEOUT);

static skald_stats_t stats_of(skald_system_t *sys)
{
	skald_stats_t st;
	cr_assert_eq(skald_system_stats(sys, &st), 0);
	return st;
}

/* The journal is checked when the system starts: a bad one fails there,
 * with the reason on the calling thread, not at the first entity. */
static void expect_refused(const char *uri, int code, const char *says)
{
	skald_config_t cfg = {.threads = 2, .journal = uri};
	skald_system_t *sys = NULL;
	int rc = skald_system_new(&cfg, &sys);
	cr_assert_eq(rc, code, "skald_system_new(%s): %s", uri, skald_err_name(rc));
	cr_assert_null(sys);
	cr_assert(strstr(skald_journal_open_errmsg(), says) != NULL, "errmsg: \"%s\"",
	          skald_journal_open_errmsg());
}

Test(spawn, unknown_journal_scheme_fails_the_system_with_escheme)
{
	expect_refused("nosuch://x", SKALD_ESCHEME, "unknown journal URI scheme \"nosuch\"");
	test_end();
}

Test(spawn, journal_uri_without_scheme_fails_the_system_with_euri)
{
	expect_refused("no-scheme-here", SKALD_EURI, "has no scheme");
	test_end();
}

Test(spawn, bad_journal_option_fails_the_system_with_euri)
{
	expect_refused("memory://spawn-opt?batch=lots", SKALD_EURI, "batch must be a number");
	test_end();
}

Test(spawn, bad_journal_in_the_environment_fails_the_system)
{
	setenv("SKALD_JOURNAL", "memory:no-slashes", 1);
	expect_refused(NULL, SKALD_EURI, "memory://NAME");
	unsetenv("SKALD_JOURNAL");
	test_end();
}

static int no_command(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	return 0;
}

static int no_apply(void *state, const skald_event_t *ev)
{
	return 0;
}

Test(spawn, missing_callbacks_or_names_are_einval)
{
	static const skald_entity_type_t no_cmd = {.name = "x", .apply = no_apply};
	static const skald_entity_type_t no_app = {.name = "x", .command = no_command};
	static const skald_entity_type_t no_name = {.command = no_command, .apply = no_apply};
	static const skald_entity_type_t empty_name = {
	        .name = "", .command = no_command, .apply = no_apply};
	static const skald_entity_type_t ok = {
	        .name = "x", .command = no_command, .apply = no_apply};
	skald_system_t *sys = sys_start(store_uri(), 2);
	char id[128];
	unique_id(id, sizeof id, "einval");
	skald_ref_t ref;
	struct {
		const char *what;
		int rc;
	} cases[] = {
	        {"no command", skald_entity_spawn(sys, &no_cmd, id, NULL, &ref)},
	        {"no apply", skald_entity_spawn(sys, &no_app, id, NULL, &ref)},
	        {"no name", skald_entity_spawn(sys, &no_name, id, NULL, &ref)},
	        {"empty name", skald_entity_spawn(sys, &empty_name, id, NULL, &ref)},
	        {"no type", skald_entity_spawn(sys, NULL, id, NULL, &ref)},
	        {"no id", skald_entity_spawn(sys, &ok, NULL, NULL, &ref)},
	        {"empty id", skald_entity_spawn(sys, &ok, "", NULL, &ref)},
	        {"no system", skald_entity_spawn(NULL, &ok, id, NULL, &ref)},
	        {"no out", skald_entity_spawn(sys, &ok, id, NULL, NULL)},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		cr_assert_eq(cases[i].rc, SKALD_EINVAL, "%s: %d (%s)", cases[i].what, cases[i].rc,
		             skald_err_name(cases[i].rc));
	cr_assert_eq(stats_of(sys).spawned, 0);
	/* The same id with a complete type is fine. */
	cr_assert_eq(skald_entity_spawn(sys, &ok, id, NULL, &ref), 0);
	skald_system_stop(sys);
	test_end();
}
