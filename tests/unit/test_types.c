/*
 * tests/unit/test_types.c - the message type registry, references and error
 * strings: the parts of actor.h and error.h that need no running system.
 */
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <uv.h>

#include "helpers.h"

TestSuite(types, .init = fixture_setup, .timeout = 30);

static void other_free(void *payload)
{
	free(payload);
}

static const skald_msgtype_t alpha = {.name = "types.alpha"};
static const skald_msgtype_t beta = {.name = "types.beta"};

Test(types, register_gives_distinct_positive_ids)
{
	uint32_t a = 0, b = 0;
	cr_assert_eq(skald_type_register(&alpha, &a), 0);
	cr_assert_eq(skald_type_register(&beta, &b), 0);
	cr_assert_gt(a, 0);
	cr_assert_gt(b, 0);
	cr_assert_neq(a, b);
	/* The built-in down notice is a type too; no user type may share its id. */
	cr_assert_neq(a, SKALD_TYPE_DOWN);
	cr_assert_neq(b, SKALD_TYPE_DOWN);
}

Test(types, register_same_definition_twice_is_idempotent)
{
	uint32_t a = 0, again = 0;
	cr_assert_eq(skald_type_register(&alpha, &a), 0);
	cr_assert_eq(skald_type_register(&alpha, &again), 0);
	cr_assert_eq(a, again);
}

Test(types, register_equal_copy_under_same_name_gives_same_id)
{
	/* A second definition object, equal member by member: e.g. the same
	 * module's table reached through another shared object. */
	static const skald_msgtype_t copy = {.name = "types.alpha"};
	uint32_t a = 0, b = 0;
	cr_assert_eq(skald_type_register(&alpha, &a), 0);
	cr_assert_eq(skald_type_register(&copy, &b), 0);
	cr_assert_eq(a, b);
}

Test(types, register_name_taken_by_other_definition_is_etypeexists)
{
	static const skald_msgtype_t clash = {.name = "types.alpha", .free = other_free};
	uint32_t a = 0, b = 12345;
	cr_assert_eq(skald_type_register(&alpha, &a), 0);
	cr_assert_eq(skald_type_register(&clash, &b), SKALD_ETYPEEXISTS);
	/* The first registration is untouched. */
	cr_assert_eq(skald_type_get(a), &alpha);
}

Test(types, register_null_or_nameless_is_einval)
{
	static const skald_msgtype_t nameless = {.name = NULL};
	uint32_t id = 0;
	cr_assert_eq(skald_type_register(NULL, &id), SKALD_EINVAL);
	cr_assert_eq(skald_type_register(&nameless, &id), SKALD_EINVAL);
}

Test(types, lookup_finds_registered_name)
{
	uint32_t a = 0, found = 0;
	cr_assert_eq(skald_type_register(&alpha, &a), 0);
	cr_assert_eq(skald_type_lookup("types.alpha", &found), 0);
	cr_assert_eq(found, a);
}

Test(types, lookup_unknown_name_is_enotype)
{
	uint32_t found = 0;
	cr_assert_eq(skald_type_lookup("types.never-registered", &found), SKALD_ENOTYPE);
}

Test(types, lookup_compares_names_exactly)
{
	uint32_t a = 0, found = 0;
	cr_assert_eq(skald_type_register(&alpha, &a), 0);
	cr_assert_eq(skald_type_lookup("types.alph", &found), SKALD_ENOTYPE);
	cr_assert_eq(skald_type_lookup("types.alphax", &found), SKALD_ENOTYPE);
	cr_assert_eq(skald_type_lookup("TYPES.ALPHA", &found), SKALD_ENOTYPE);
}

Test(types, get_returns_definition_or_null)
{
	uint32_t a = 0;
	cr_assert_eq(skald_type_register(&alpha, &a), 0);
	cr_assert_eq(skald_type_get(a), &alpha);
	cr_assert_null(skald_type_get(0));
	cr_assert_null(skald_type_get(0xfffffff0u));
}

/* Threads race to register the same names; each name must end with one id
 * that every thread saw. */
enum { RACE_THREADS = 4, RACE_DEFS = 6 };
static const skald_msgtype_t race_defs[RACE_DEFS] = {
        {.name = "types.race.0"}, {.name = "types.race.1"}, {.name = "types.race.2"},
        {.name = "types.race.3"}, {.name = "types.race.4"}, {.name = "types.race.5"},
};
static uint32_t race_ids[RACE_THREADS][RACE_DEFS];
static int race_rcs[RACE_THREADS][RACE_DEFS];

static void *race_worker(void *arg)
{
	int t = (int)(intptr_t)arg;
	/* Each thread walks the names in its own order, so that the same name is
	 * registered by several threads at about the same time. */
	for (int i = 0; i < RACE_DEFS; i++) {
		int d = (i + t) % RACE_DEFS;
		race_rcs[t][d] = skald_type_register(&race_defs[d], &race_ids[t][d]);
	}
	return NULL;
}

Test(types, register_is_thread_safe)
{
	pthread_t th[RACE_THREADS];
	for (int t = 0; t < RACE_THREADS; t++)
		cr_assert_eq(pthread_create(&th[t], NULL, race_worker, (void *)(intptr_t)t), 0);
	for (int t = 0; t < RACE_THREADS; t++)
		pthread_join(th[t], NULL);
	for (int d = 0; d < RACE_DEFS; d++) {
		for (int t = 0; t < RACE_THREADS; t++) {
			cr_assert_eq(race_rcs[t][d], 0, "thread %d, %s: %s", t, race_defs[d].name,
			             skald_strerror(race_rcs[t][d]));
			cr_assert_eq(race_ids[t][d], race_ids[0][d], "%s got two ids",
			             race_defs[d].name);
		}
		for (int e = 0; e < d; e++)
			cr_assert_neq(race_ids[0][d], race_ids[0][e]);
		cr_assert_eq(skald_type_get(race_ids[0][d]), &race_defs[d]);
	}
}

/* ------------------------------------------------------------------------ */
/* References                                                                */

Test(types, null_ref_is_null_and_equal_to_itself)
{
	skald_ref_t n = SKALD_REF_NULL;
	cr_assert(skald_ref_is_null(n));
	cr_assert(skald_ref_eq(n, SKALD_REF_NULL));
	cr_assert_not(skald_ref_is_null((skald_ref_t){1, 0, 0}));
	cr_assert_not(skald_ref_is_null((skald_ref_t){0, 1, 0}));
	cr_assert_not(skald_ref_is_null((skald_ref_t){0, 0, 1}));
}

Test(types, ref_eq_compares_every_field)
{
	skald_ref_t a = {0x1234, 7, 3};
	cr_assert(skald_ref_eq(a, (skald_ref_t){0x1234, 7, 3}));
	cr_assert_not(skald_ref_eq(a, (skald_ref_t){0x1235, 7, 3}));
	cr_assert_not(skald_ref_eq(a, (skald_ref_t){0x1234, 8, 3}));
	cr_assert_not(skald_ref_eq(a, (skald_ref_t){0x1234, 7, 4}));
}

Test(types, ref_str_is_hex_node_dot_actor_dot_incarnation)
{
	char buf[48];
	skald_ref_t r = {UINT64_C(0xfedcba9876543210), 4000000000u, 4294967295u};
	cr_assert_eq(skald_ref_str(r, buf, sizeof(buf)), buf);
	cr_assert_lt(strlen(buf), sizeof(buf));

	char *end = NULL;
	cr_assert_eq(strtoull(buf, &end, 16), r.node, "node part of %s", buf);
	cr_assert_eq(*end, '.', "%s", buf);
	cr_assert_eq(strtoull(end + 1, &end, 10), r.actor, "actor part of %s", buf);
	cr_assert_eq(*end, '.', "%s", buf);
	cr_assert_eq(strtoull(end + 1, &end, 10), r.incarnation, "incarnation part of %s", buf);
	cr_assert_eq(*end, '\0', "%s", buf);
}

Test(types, ref_str_tells_refs_apart)
{
	char a[48], b[48];
	skald_ref_str((skald_ref_t){1, 2, 3}, a, sizeof(a));
	skald_ref_str((skald_ref_t){1, 2, 4}, b, sizeof(b));
	cr_assert_str_neq(a, b);
}

/* ------------------------------------------------------------------------ */
/* Error strings                                                             */

Test(types, every_skald_code_has_its_name_and_message)
{
	/* The table in error.h is the source of truth: walk it, so that a code
	 * added later is covered too. */
	struct {
		int code;
		const char *name;
		const char *msg;
	} table[] = {
#define XX(name, value, msg) {SKALD_##name, "SKALD_" #name, msg},
	        SKALD_ERRNO_MAP(XX)
#undef XX
	};
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		const char *name = skald_err_name(table[i].code);
		const char *msg = skald_strerror(table[i].code);
		cr_assert_not_null(name, "%d", table[i].code);
		cr_assert_not_null(msg, "%d", table[i].code);
		cr_assert_str_eq(name, table[i].name);
		cr_assert_str_eq(msg, table[i].msg);
	}
}

Test(types, libuv_codes_pass_through_to_libuv_strings)
{
	cr_assert_str_eq(skald_err_name(UV_ECONNREFUSED), "ECONNREFUSED");
	cr_assert_str_eq(skald_strerror(UV_ECONNREFUSED), uv_strerror(UV_ECONNREFUSED));
	cr_assert_str_eq(skald_err_name(UV_ENOENT), "ENOENT");
}

Test(types, zero_and_unknown_codes_have_non_null_strings)
{
	const int codes[] = {0, -4999, -6000, -123456, 77, INT32_MIN};
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		const char *name = skald_err_name(codes[i]);
		const char *msg = skald_strerror(codes[i]);
		cr_assert_not_null(name, "%d", codes[i]);
		cr_assert_not_null(msg, "%d", codes[i]);
		cr_assert_gt(strlen(msg), 0, "%d", codes[i]);
		cr_assert_gt(strlen(name), 0, "%d", codes[i]);
	}
	/* An unknown code must not masquerade as one of Skald's. */
	cr_assert_str_neq(skald_strerror(-6000), skald_strerror(SKALD_EINVAL));
}

Test(types, strings_of_unknown_codes_are_static)
{
	/* The contract promises static strings: asking twice must not build
	 * (and leak) a new one each time. */
	cr_assert_eq(skald_strerror(-6000), skald_strerror(-6000));
	cr_assert_eq(skald_err_name(-6000), skald_err_name(-6000));
	cr_assert_eq(skald_strerror(TEST_ERR), skald_strerror(TEST_ERR));
}

/* --- chosen codecs -------------------------------------------------------- */

typedef struct pair_s {
	int32_t a, b;
} pair_t;

static int hand_encode(const void *payload, void **out, size_t *len)
{
	return SKALD_EENCODE;
}

Test(types, a_codec_is_chosen_alone_and_fixed_needs_a_size)
{
	static const skald_msgtype_t both = {
	        .name = "types.both", .codec = &skald_codec_json, .encode = hand_encode};
	static const skald_msgtype_t unsized = {.name = "types.unsized",
	                                        .codec = &skald_codec_fixed};
	static const skald_msgtype_t pair = {
	        .name = "types.pair", .codec = &skald_codec_fixed, .size = sizeof(pair_t)};
	static const skald_msgtype_t pair_json = {.name = "types.pair", .codec = &skald_codec_json};
	uint32_t id, again;
	cr_assert_eq(skald_type_register(&both, &id), SKALD_EINVAL);
	cr_assert_eq(skald_type_register(&unsized, &id), SKALD_EINVAL);
	cr_assert_eq(skald_type_register(&pair, &id), 0);
	cr_assert_eq(skald_type_register(&(skald_msgtype_t){.name = "types.pair",
	                                                    .codec = &skald_codec_fixed,
	                                                    .size = sizeof(pair_t)},
	                                 &again),
	             0, "the same definition again");
	cr_assert_eq(id, again);
	cr_assert_eq(skald_type_register(&pair_json, &id), SKALD_ETYPEEXISTS,
	             "the same name with another codec");
}

Test(types, the_fixed_codec_round_trips_and_refuses_another_size)
{
	static const skald_msgtype_t pair = {
	        .name = "types.pair2", .codec = &skald_codec_fixed, .size = sizeof(pair_t)};
	pair_t in = {7, -9};
	void *bytes, *out;
	size_t len;
	cr_assert_eq(skald_codec_fixed.encode(&pair, &in, &bytes, &len), 0);
	cr_assert_eq(len, sizeof(pair_t));
	cr_assert_eq(skald_codec_fixed.decode(&pair, bytes, len, &out), 0);
	cr_assert_eq(memcmp(out, &in, sizeof in), 0);
	skald_codec_fixed.free(out);
	cr_assert_eq(skald_codec_fixed.decode(&pair, bytes, len - 1, &out), SKALD_EDECODE);
	free(bytes);
}

Test(types, the_json_codec_round_trips_any_value_and_refuses_garbage)
{
	static const skald_msgtype_t j = {.name = "types.json", .codec = &skald_codec_json};
	json_t *in = json_pack("[s, {s:i}, n, f]", "x", "y", 3, 2.5);
	void *bytes, *out;
	size_t len;
	cr_assert_eq(skald_codec_json.encode(&j, in, &bytes, &len), 0);
	cr_assert_eq(skald_codec_json.decode(&j, bytes, len, &out), 0);
	cr_assert(json_equal(in, out));
	skald_codec_json.free(out);
	free(bytes);
	json_t *s = json_string("only a string");
	cr_assert_eq(skald_codec_json.encode(&j, s, &bytes, &len), 0,
	             "any value, not only objects");
	free(bytes);
	json_decref(s);
	cr_assert_eq(skald_codec_json.decode(&j, "{\"a\":", 5, &out), SKALD_EDECODE);
	json_decref(in);
}
