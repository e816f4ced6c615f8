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

Test(spawn, unknown_journal_scheme_is_escheme)
{
	skald_system_t *sys = sys_start("nosuch://x", 2);
	char id[128];
	unique_id(id, sizeof id, "scheme");
	skald_ref_t ref = SKALD_REF_NULL;
	int rc = skald_entity_spawn(sys, &acc_type, id, NULL, &ref);
	cr_assert_eq(rc, SKALD_ESCHEME, "spawn: %d (%s)", rc, skald_err_name(rc));
	cr_assert(skald_ref_is_null(ref), "a reference was handed out for a refused spawn");
	cr_assert_eq(stats_of(sys).spawned, 0, "an actor was spawned");
	skald_system_stop(sys);
	test_end();
}

Test(spawn, journal_uri_without_scheme_is_euri)
{
	skald_system_t *sys = sys_start("no-scheme-here", 2);
	char id[128];
	unique_id(id, sizeof id, "uri");
	skald_ref_t ref = SKALD_REF_NULL;
	int rc = skald_entity_spawn(sys, &acc_type, id, NULL, &ref);
	cr_assert_eq(rc, SKALD_EURI, "spawn: %d (%s)", rc, skald_err_name(rc));
	cr_assert_eq(stats_of(sys).spawned, 0);
	skald_system_stop(sys);
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
