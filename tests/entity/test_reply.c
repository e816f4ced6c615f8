/*
 * tests/entity/test_reply.c - persist, then reply (skald_persist_reply):
 * the asker gets an answer built from the state after the events were
 * applied, or from the write's failure, and the entity keeps nothing of the
 * request.
 */
#include <stdlib.h>

#include "helpers.h"

TestSuite(reply, .init = entity_fixture, .timeout = SUITE_TIMEOUT);

/* A tally: "tally.added" events {"n": N}; commands are numbers to add,
 * answered with the total, or with the negated write error. */
typedef struct tally_s {
	long total;
} tally_t;

static const skald_msgtype_t num_def = {
        .name = "reply.num", .codec = &skald_codec_fixed, .size = sizeof(long)};
static uint32_t t_num;

static int total_of(skald_actor_t *self, void *state, int status, void *arg, uint32_t *type,
                    void **payload)
{
	long *v = malloc(sizeof *v);
	if (v == NULL)
		return SKALD_ENOMEM;
	*v = status == 0 ? ((tally_t *)state)->total : status;
	*type = t_num;
	*payload = v;
	return 0;
}

static int tally_command(skald_actor_t *self, void *state, skald_msg_t *cmd)
{
	long n = *(long *)cmd->payload;
	skald_new_event_t ev = {"tally.added", 1, json_pack("{s:i}", "n", (json_int_t)n)};
	int rc = skald_persist_reply(self, cmd, &ev, 1, total_of, NULL);
	if (rc < 0)
		json_decref(ev.data);
	return rc;
}

static int tally_apply(void *state, const skald_event_t *ev)
{
	((tally_t *)state)->total += (long)json_integer_value(json_object_get(ev->data, "n"));
	return 0;
}

static const skald_entity_type_t tally_type = {.name = "tally",
                                               .state_size = sizeof(tally_t),
                                               .command = tally_command,
                                               .apply = tally_apply};

/* Asks entity e to add n; returns the answer. */
static long add(skald_system_t *sys, skald_ref_t e, long n)
{
	long *v = malloc(sizeof *v);
	*v = n;
	uint32_t type;
	void *reply;
	int rc = skald_system_ask(sys, e, t_num, v, WAIT_MS, &type, &reply);
	cr_assert_eq(rc, 0, "ask: %s", skald_err_name(rc));
	cr_assert_eq(type, t_num);
	long r = *(long *)reply;
	skald_payload_free(type, reply);
	return r;
}

Test(reply, the_answer_is_built_from_the_state_after_the_events)
{
	cr_assert_eq(skald_type_register(&num_def, &t_num), 0);
	skald_system_t *sys = sys_start(probe_store_uri(), 2);
	char id[128];
	unique_id(id, sizeof id, "tally");
	skald_ref_t e;
	cr_assert_eq(skald_entity_spawn(sys, &tally_type, id, NULL, &e), 0);
	cr_assert_eq(add(sys, e, 5), 5);
	cr_assert_eq(add(sys, e, 7), 12);
	cr_assert_eq(atomic_load(&probe_events_committed), 2, "answered before the write");
	/* A failed write is answered too, with its error; the entity stops. */
	atomic_store(&probe_fail_append, SKALD_EBACKEND);
	cr_assert_eq(add(sys, e, 1), SKALD_EBACKEND);
	atomic_store(&probe_fail_append, 0);
	/* Recovered from the journal: the total is what was stored. */
	cr_assert_eq(skald_entity_spawn(sys, &tally_type, id, NULL, &e), 0);
	cr_assert_eq(add(sys, e, 0), 12);
	skald_system_stop(sys);
	test_end();
}

Test(reply, a_tell_cannot_be_answered)
{
	cr_assert_eq(skald_type_register(&num_def, &t_num), 0);
	skald_system_t *sys = sys_start(store_uri(), 1);
	char id[128];
	unique_id(id, sizeof id, "tally");
	skald_ref_t e;
	cr_assert_eq(skald_entity_spawn(sys, &tally_type, id, NULL, &e), 0);
	long *v = malloc(sizeof *v);
	*v = 3;
	cr_assert_eq(skald_system_tell(sys, e, t_num, v), 0);
	/* The command handler's SKALD_EINVAL failed the entity, which has no
	 * parent: it stopped, and the ask behind the tell learns why. */
	long *w = malloc(sizeof *w);
	*w = 0;
	uint32_t type;
	void *reply = NULL;
	int rc = skald_system_ask(sys, e, t_num, w, WAIT_MS, &type, &reply);
	cr_assert_eq(rc, SKALD_EINVAL, "%s", skald_err_name(rc));
	skald_system_stop(sys);
	test_end();
}
