/*
 * tests/cluster/test_registry.c - the registry's API on one node that forms
 * a cluster alone: names, waiting lookups, groups and their events, remote
 * spawn on this node, bad input and full tables, and the registry's
 * messages refusing malformed bytes. Between processes: test_registry_nodes.c.
 */
#define SKALD_TEST_DEFINE
#include "tests/include/skald_test.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "proc.h"
#include "skald/skald.h"

static void setup(void)
{
	checks_reset();
}

TestSuite(registry, .init = setup, .timeout = 60);

static skald_system_t *one_node(skald_cluster_config_t cfg)
{
	skald_system_t *sys;
	cr_assert_eq(skald_system_new(&(skald_config_t){.threads = 2}, &sys), 0);
	cr_assert_eq(skald_remote_start(sys, &(skald_remote_config_t){.secret = "registry"}), 0);
	cr_assert_eq(skald_listen(sys, "tcp://127.0.0.1:0", NULL), 0);
	cr_assert_eq(skald_cluster_start(sys, &cfg), 0);
	char why[256] = "";
	int rc = skald_cluster_wait(sys, 20000, why, sizeof why);
	cr_assert_eq(rc, 0, "not up: %s (%s)", why, skald_err_name(rc));
	return sys;
}

static int idle_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	return 0;
}

static const skald_behavior_t idle = {.receive = idle_receive};

static skald_ref_t spawn_idle(skald_system_t *sys)
{
	skald_ref_t r;
	cr_assert_eq(skald_spawn(sys, &idle, NULL, NULL, &r), 0);
	return r;
}

static int whereis_is(skald_system_t *sys, const char *name, int want)
{
	skald_ref_t r;
	return skald_cluster_whereis(sys, name, &r) == want;
}

/* ------------------------------------------------------------------------ */
/* Names                                                                     */

Test(registry, a_name_is_registered_found_and_withdrawn)
{
	skald_system_t *sys = one_node((skald_cluster_config_t){0});
	skald_ref_t a = spawn_idle(sys), b = spawn_idle(sys), r;
	cr_assert_eq(skald_cluster_register(sys, "lobby", a), 0);
	cr_assert_eq(skald_cluster_whereis(sys, "lobby", &r), 0);
	cr_assert(skald_ref_eq(r, a));
	cr_assert_eq(skald_cluster_register(sys, "lobby", a), 0, "the same actor again");
	cr_assert_eq(skald_cluster_register(sys, "lobby", b), SKALD_EEXISTS);
	cr_assert_eq(skald_cluster_unregister(sys, "lobby"), 0);
	cr_assert_eq(skald_cluster_whereis(sys, "lobby", &r), SKALD_ENOTFOUND);
	cr_assert_eq(skald_cluster_unregister(sys, "lobby"), SKALD_ENOTFOUND);
	cr_assert_eq(skald_cluster_register(sys, "lobby", b), 0, "free again");
	skald_system_stop(sys);
}

Test(registry, a_name_ends_when_its_actor_stops)
{
	skald_system_t *sys = one_node((skald_cluster_config_t){0});
	skald_ref_t a = spawn_idle(sys);
	cr_assert_eq(skald_cluster_register(sys, "short-lived", a), 0);
	cr_assert_eq(skald_stop(sys, a), 0);
	AWAIT(whereis_is(sys, "short-lived", SKALD_ENOTFOUND), 10000);
	/* A dead actor's registration ends as soon as it is watched. */
	cr_assert_eq(skald_cluster_register(sys, "stillborn", a), 0);
	AWAIT(whereis_is(sys, "stillborn", SKALD_ENOTFOUND), 10000);
	skald_system_stop(sys);
}

Test(registry, bad_names_are_refused_with_a_clear_error)
{
	skald_system_t *sys = one_node((skald_cluster_config_t){0});
	skald_ref_t a = spawn_idle(sys), r;
	char longest[SKALD_NAME_MAX + 1], too_long[SKALD_NAME_MAX + 2];
	memset(longest, 'n', SKALD_NAME_MAX);
	longest[SKALD_NAME_MAX] = '\0';
	memset(too_long, 'n', SKALD_NAME_MAX + 1);
	too_long[SKALD_NAME_MAX + 1] = '\0';
	cr_assert_eq(skald_cluster_register(sys, NULL, a), SKALD_EINVAL);
	cr_assert_eq(skald_cluster_register(sys, "", a), SKALD_EINVAL);
	cr_assert_eq(skald_cluster_register(sys, "x", SKALD_REF_NULL), SKALD_EINVAL);
	cr_assert_eq(skald_cluster_register(sys, too_long, a), SKALD_ENAMETOOLONG);
	cr_assert_eq(skald_cluster_register(sys, longest, a), 0);
	cr_assert_eq(skald_cluster_whereis(sys, too_long, &r), SKALD_ENAMETOOLONG);
	cr_assert_eq(skald_cluster_whereis(sys, "x", NULL), SKALD_EINVAL);
	cr_assert_eq(skald_group_join(sys, too_long, a), SKALD_ENAMETOOLONG);
	cr_assert_eq(skald_cluster_behavior_register(too_long, &idle), SKALD_ENAMETOOLONG);
	cr_assert(strstr(skald_strerror(SKALD_ENAMETOOLONG), "255") != NULL);
	cr_assert_str_eq(skald_err_name(SKALD_EFULL), "SKALD_EFULL");
	cr_assert(strstr(skald_strerror(SKALD_EFULL), "max_names") != NULL);
	skald_system_stop(sys);
}

Test(registry, without_a_cluster_every_call_says_einval)
{
	skald_system_t *sys;
	cr_assert_eq(skald_system_new(&(skald_config_t){.threads = 1}, &sys), 0);
	skald_ref_t a = spawn_idle(sys), r;
	size_t n;
	cr_assert_eq(skald_cluster_register(sys, "x", a), SKALD_EINVAL);
	cr_assert_eq(skald_cluster_whereis(sys, "x", &r), SKALD_EINVAL);
	cr_assert_eq(skald_cluster_system_lookup(sys, "x", 10, &r), SKALD_EINVAL);
	cr_assert_eq(skald_group_join(sys, "g", a), SKALD_EINVAL);
	cr_assert_eq(skald_group_members(sys, "g", NULL, 0, &n), SKALD_EINVAL);
	cr_assert_eq(skald_cluster_system_spawn(sys, skald_system_node(sys), "x", 0, NULL, 10, &r),
	             SKALD_EINVAL);
	skald_system_stop(sys);
}

Test(registry, full_tables_are_a_clear_error)
{
	skald_system_t *sys =
	        one_node((skald_cluster_config_t){.max_names = 3, .max_group_entries = 2});
	skald_ref_t a = spawn_idle(sys);
	cr_assert_eq(skald_cluster_register(sys, "n1", a), 0);
	cr_assert_eq(skald_cluster_register(sys, "n2", a), 0);
	cr_assert_eq(skald_cluster_register(sys, "n3", a), 0);
	cr_assert_eq(skald_cluster_register(sys, "n4", a), SKALD_EFULL);
	cr_assert_eq(skald_cluster_unregister(sys, "n2"), 0);
	cr_assert_eq(skald_cluster_register(sys, "n4", a), 0, "a freed place is used again");
	cr_assert_eq(skald_group_join(sys, "g1", a), 0);
	cr_assert_eq(skald_group_join(sys, "g2", a), 0);
	cr_assert_eq(skald_group_join(sys, "g3", a), SKALD_EFULL);
	cr_assert_eq(skald_group_join(sys, "g1", a), 0, "joining twice takes no room");
	/* Operators see how full the tables are. */
	char *text;
	size_t len;
	cr_assert_eq(skald_metrics_render(&text, &len), 0);
	cr_assert(strstr(text, "skald_cluster_registry_entries{kind=\"name\"} 3") != NULL, "%s",
	          text);
	cr_assert(strstr(text, "skald_cluster_registry_entries{kind=\"group\"} 2") != NULL);
	free(text);
	skald_system_stop(sys);
}

/* ------------------------------------------------------------------------ */
/* Lookups that wait                                                         */

typedef struct later_s {
	skald_system_t *sys;
	skald_ref_t ref;
} later_t;

static void *register_later(void *arg)
{
	later_t *l = arg;
	sleep_ms(300);
	CHECK(skald_cluster_register(l->sys, "later", l->ref) == 0);
	return NULL;
}

Test(registry, a_blocking_lookup_waits_for_the_name)
{
	skald_system_t *sys = one_node((skald_cluster_config_t){0});
	later_t l = {sys, spawn_idle(sys)};
	pthread_t th;
	pthread_create(&th, NULL, register_later, &l);
	skald_ref_t r;
	cr_assert_eq(skald_cluster_system_lookup(sys, "later", 20000, &r), 0);
	cr_assert(skald_ref_eq(r, l.ref));
	pthread_join(th, NULL);
	checks_ok();
	cr_assert_eq(skald_cluster_system_lookup(sys, "never", 200, &r), SKALD_ETIMEDOUT);
	skald_system_stop(sys);
}

/* What the looking actor saw, per lookup. */
static atomic_int seen_status[3];
static atomic_int seen_count;
static skald_ref_t seen_ref[3];

static void looked(skald_actor_t *self, void *state, int status, skald_ref_t ref, void *arg)
{
	int i = (int)(intptr_t)arg;
	seen_ref[i] = ref;
	atomic_store(&seen_status[i], status);
	atomic_fetch_add(&seen_count, 1);
}

static int looker_init(skald_actor_t *self, void *state, void *arg)
{
	CHECK(skald_cluster_lookup(self, "appears", 20000, looked, (void *)0) == 0);
	CHECK(skald_cluster_lookup(self, "absent", 100, looked, (void *)1) == 0);
	CHECK(skald_cluster_lookup(self, "known", 0, looked, (void *)2) == 0);
	CHECK(skald_cluster_lookup(self, "", 0, looked, NULL) == SKALD_EINVAL);
	return 0;
}

static const skald_behavior_t looker = {.init = looker_init, .receive = idle_receive};

Test(registry, an_actor_lookup_waits_times_out_or_answers_at_once)
{
	skald_system_t *sys = one_node((skald_cluster_config_t){0});
	skald_ref_t known = spawn_idle(sys), appears = spawn_idle(sys), r;
	atomic_store(&seen_count, 0);
	cr_assert_eq(skald_cluster_register(sys, "known", known), 0);
	cr_assert_eq(skald_spawn(sys, &looker, NULL, NULL, &r), 0);
	AWAIT(atomic_load(&seen_count) == 2, 10000);
	cr_assert_eq(atomic_load(&seen_status[1]), SKALD_ETIMEDOUT);
	cr_assert_eq(atomic_load(&seen_status[2]), 0);
	cr_assert(skald_ref_eq(seen_ref[2], known));
	cr_assert_eq(skald_cluster_register(sys, "appears", appears), 0);
	AWAIT(atomic_load(&seen_count) == 3, 10000);
	cr_assert_eq(atomic_load(&seen_status[0]), 0);
	cr_assert(skald_ref_eq(seen_ref[0], appears));
	checks_ok();
	skald_system_stop(sys);
}

/* ------------------------------------------------------------------------ */
/* Groups                                                                    */

#define MAX_GEV 32

static pthread_mutex_t gev_lock = PTHREAD_MUTEX_INITIALIZER;
static skald_group_event_t gev[MAX_GEV];
static int ngev;

static int subscriber_init(skald_actor_t *self, void *state, void *arg)
{
	CHECK(skald_group_subscribe(self, "players") == 0);
	CHECK(skald_group_subscribe(self, "players") == 0);
	CHECK(skald_group_unsubscribe(self, "nobody") == SKALD_ENOTFOUND);
	return 0;
}

static int subscriber_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	if (msg->type != SKALD_TYPE_GROUP)
		return 0;
	pthread_mutex_lock(&gev_lock);
	if (ngev < MAX_GEV) {
		gev[ngev] = *(skald_group_event_t *)msg->payload;
		gev[ngev++].refs = NULL; /* the listing's length is kept */
	}
	pthread_mutex_unlock(&gev_lock);
	return 0;
}

static const skald_behavior_t subscriber = {.init = subscriber_init, .receive = subscriber_receive};

static int events(void)
{
	pthread_mutex_lock(&gev_lock);
	int n = ngev;
	pthread_mutex_unlock(&gev_lock);
	return n;
}

static void expect_event(int i, skald_group_event_kind_t kind, skald_ref_t ref, int reason)
{
	cr_assert_eq(gev[i].kind, kind, "event %d: kind %d", i, gev[i].kind);
	cr_assert_str_eq(gev[i].key, "players");
	cr_assert(skald_ref_eq(gev[i].ref, ref), "event %d: another actor", i);
	cr_assert_eq(gev[i].reason, reason, "event %d: %s", i, skald_err_name(gev[i].reason));
}

Test(registry, a_subscriber_gets_the_listing_then_every_change)
{
	skald_system_t *sys = one_node((skald_cluster_config_t){0});
	ngev = 0;
	skald_ref_t a = spawn_idle(sys), b = spawn_idle(sys), s, v[4];
	size_t n;
	cr_assert_eq(skald_group_join(sys, "players", a), 0);
	cr_assert_eq(skald_spawn(sys, &subscriber, NULL, NULL, &s), 0);
	AWAIT(events() == 1, 10000);
	cr_assert_eq(gev[0].kind, SKALD_GROUP_EV_CURRENT);
	cr_assert_eq(gev[0].nrefs, 1, "the listing holds a");
	cr_assert_eq(skald_group_join(sys, "players", b), 0);
	cr_assert_eq(skald_group_join(sys, "players", b), 0, "twice is once");
	cr_assert_eq(skald_group_join(sys, "others", b), 0);
	cr_assert_eq(skald_group_members(sys, "players", v, 4, &n), 0);
	cr_assert_eq(n, 2);
	cr_assert(skald_ref_eq(v[0], a) || skald_ref_eq(v[0], b));
	cr_assert_eq(skald_group_leave(sys, "players", a), 0);
	cr_assert_eq(skald_group_leave(sys, "players", a), SKALD_ENOTFOUND);
	cr_assert_eq(skald_stop(sys, b), 0);
	AWAIT(events() == 4, 10000);
	expect_event(1, SKALD_GROUP_EV_JOINED, b, 0);
	expect_event(2, SKALD_GROUP_EV_LEFT, a, 0);
	expect_event(3, SKALD_GROUP_EV_LEFT, b, SKALD_ENOACTOR);
	AWAIT(skald_group_members(sys, "others", NULL, 0, &n) == 0 && n == 0, 10000);
	cr_assert_eq(skald_group_members(sys, "players", NULL, 0, &n), 0);
	cr_assert_eq(n, 0);
	checks_ok();
	skald_system_stop(sys);
}

/* ------------------------------------------------------------------------ */
/* Spawn                                                                     */

static const skald_msgtype_t local_type = {.name = "regtest.local"};

Test(registry, a_behaviour_registered_by_name_is_spawned_with_its_argument)
{
	skald_system_t *sys = one_node((skald_cluster_config_t){0});
	uint32_t num, local;
	cr_assert_eq(skald_type_register(&proc_num_type, &num), 0);
	cr_assert_eq(skald_type_register(&local_type, &local), 0);
	cr_assert_eq(skald_cluster_behavior_register("regtest.adder", &proc_adder_behavior), 0);
	cr_assert_eq(skald_cluster_behavior_register("regtest.adder", &proc_adder_behavior), 0);
	cr_assert_eq(skald_cluster_behavior_register("regtest.adder", &idle), SKALD_EEXISTS);
	cr_assert_eq(skald_cluster_behavior_register("", &idle), SKALD_EINVAL);
	uint64_t me = skald_system_node(sys);
	skald_ref_t r;
	cr_assert_eq(
	        skald_cluster_system_spawn(sys, me, "regtest.adder", num, (void *)40, 10000, &r),
	        0);
	cr_assert_eq(r.node, me);
	uint32_t type;
	void *reply;
	cr_assert_eq(skald_system_ask(sys, r, num, (void *)2, 10000, &type, &reply), 0);
	cr_assert_eq((uintptr_t)reply, 42);
	cr_assert_eq(skald_cluster_system_spawn(sys, me, "regtest.none", 0, NULL, 10000, &r),
	             SKALD_ENOTFOUND);
	cr_assert_eq(skald_cluster_system_spawn(sys, me ^ 1, "regtest.adder", 0, NULL, 10000, &r),
	             SKALD_ENODEDOWN, "not a member");
	cr_assert_eq(
	        skald_cluster_system_spawn(sys, me, "regtest.adder", local, (void *)1, 10000, &r),
	        SKALD_ENOCODEC);
	cr_assert_eq(skald_cluster_system_spawn(sys, me, "regtest.adder", 0, (void *)1, 10000, &r),
	             SKALD_EINVAL, "an argument without a type");
	skald_system_stop(sys);
}

static atomic_int spawned_status = 1;
static skald_ref_t spawned_ref;

static void spawned(skald_actor_t *self, void *state, int status, skald_ref_t ref, void *arg)
{
	spawned_ref = ref;
	atomic_store(&spawned_status, status);
}

static int spawner_init(skald_actor_t *self, void *state, void *arg)
{
	uint32_t num;
	CHECK(skald_type_register(&proc_num_type, &num) == 0);
	uint64_t me = skald_self(self).node;
	CHECK(skald_cluster_spawn(self, me, "regtest.adder2", num, (void *)1, 10000, spawned,
	                          NULL) == 0);
	CHECK(skald_cluster_spawn(self, me, "regtest.adder2", 0, NULL, 10000, NULL, NULL) ==
	      SKALD_EINVAL);
	CHECK(skald_cluster_spawn(self, me ^ 1, "regtest.adder2", 0, NULL, 10000, spawned, NULL) ==
	      SKALD_ENODEDOWN);
	return 0;
}

static const skald_behavior_t spawner = {.init = spawner_init, .receive = idle_receive};

Test(registry, an_actor_spawns_a_behaviour_and_hears_its_reference)
{
	skald_system_t *sys = one_node((skald_cluster_config_t){0});
	cr_assert_eq(skald_cluster_behavior_register("regtest.adder2", &proc_adder_behavior), 0);
	skald_ref_t s;
	cr_assert_eq(skald_spawn(sys, &spawner, NULL, NULL, &s), 0);
	AWAIT(atomic_load(&spawned_status) != 1, 10000);
	cr_assert_eq(atomic_load(&spawned_status), 0, "%s",
	             skald_err_name(atomic_load(&spawned_status)));
	cr_assert_eq(spawned_ref.node, skald_system_node(sys));
	uint32_t num, type;
	void *reply;
	cr_assert_eq(skald_type_lookup("cltest.num", &num), 0);
	cr_assert_eq(skald_system_ask(sys, spawned_ref, num, (void *)1, 10000, &type, &reply), 0);
	cr_assert_eq((uintptr_t)reply, 2);
	checks_ok();
	skald_system_stop(sys);
}

/* ------------------------------------------------------------------------ */
/* Malformed messages                                                        */

static int decode_as(const char *type, const void *data, size_t len)
{
	uint32_t id;
	cr_assert_eq(skald_type_lookup(type, &id), 0);
	const skald_msgtype_t *t = skald_type_get(id);
	void *payload = NULL;
	int rc = t->decode(data, len, &payload);
	if (rc == 0)
		t->free(payload);
	return rc;
}

/* A DELTA from node 1 at version 2 with one item: a name "ab". */
static const uint8_t good_batch[] = {
        0, 0,                       /* what, flags */
        0, 0, 0,   0,   0, 0, 0, 1, /* origin */
        0, 0, 0,   0,   0, 0, 0, 2, /* ver */
        0, 0, 0,   1,               /* count */
        1, 1, 0,   0,   0, 0,       /* kind, add, reason */
        0, 0, 0,   0,   0, 0, 0, 1, /* ref node */
        0, 0, 0,   7,   0, 0, 0, 1, /* actor, incarnation */
        0, 2, 'a', 'b',             /* key */
};

Test(registry, malformed_registry_messages_are_refused)
{
	skald_system_t *sys = one_node((skald_cluster_config_t){0});
	uint8_t b[sizeof good_batch + 1];
	cr_assert_eq(decode_as("skald.reg.batch", good_batch, sizeof good_batch), 0);
	for (size_t n = 0; n < sizeof good_batch; n++)
		cr_assert_eq(decode_as("skald.reg.batch", good_batch, n), SKALD_EDECODE,
		             "truncated at %zu", n);
	memcpy(b, good_batch, sizeof good_batch);
	b[sizeof good_batch] = 0;
	cr_assert_eq(decode_as("skald.reg.batch", b, sizeof good_batch + 1), SKALD_EDECODE,
	             "a byte after the end");
	memcpy(b, good_batch, sizeof good_batch);
	b[21] = 9; /* count 9 */
	cr_assert_eq(decode_as("skald.reg.batch", b, sizeof good_batch), SKALD_EDECODE);
	memcpy(b, good_batch, sizeof good_batch);
	b[22] = 7; /* kind */
	cr_assert_eq(decode_as("skald.reg.batch", b, sizeof good_batch), SKALD_EDECODE);
	memcpy(b, good_batch, sizeof good_batch);
	b[sizeof good_batch - 1] = 0; /* a NUL in the key */
	cr_assert_eq(decode_as("skald.reg.batch", b, sizeof good_batch), SKALD_EDECODE);
	memcpy(b, good_batch, sizeof good_batch);
	b[sizeof good_batch - 3] = 0; /* key length 0 */
	cr_assert_eq(decode_as("skald.reg.batch", b, sizeof good_batch - 2), SKALD_EDECODE);
	memcpy(b, good_batch, sizeof good_batch);
	memset(b + 28, 0, 16); /* a null reference */
	cr_assert_eq(decode_as("skald.reg.batch", b, sizeof good_batch), SKALD_EDECODE);
	/* A spawn request: behaviour "x", no type, no argument; then cut. */
	const uint8_t spawn[] = {1, 'x', 0, 0, 0, 0, 0};
	cr_assert_eq(decode_as("skald.reg.spawn", spawn, sizeof spawn), 0);
	cr_assert_eq(decode_as("skald.reg.spawn", spawn, sizeof spawn - 1), SKALD_EDECODE);
	const uint8_t no_behaviour[] = {0, 0, 0, 0, 0, 0};
	cr_assert_eq(decode_as("skald.reg.spawn", no_behaviour, sizeof no_behaviour),
	             SKALD_EDECODE);
	const uint8_t lost[] = {0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 1, 'n'};
	cr_assert_eq(decode_as("skald.name-lost", lost, sizeof lost), 0);
	cr_assert_eq(decode_as("skald.name-lost", lost, sizeof lost - 1), SKALD_EDECODE);
	skald_system_stop(sys);
}
