/*
 * tests/cluster/test_logic.c - the pieces of the membership logic on their
 * own: the codec against malformed input, the downing rule, suspicion
 * timers, age order.
 */
#include <stdlib.h>
#include <string.h>

#include "sim.h"
#include "skald/error.h"

TestSuite(logic, .timeout = 60);

static skald__cl_rec_t rec(uint64_t node, uint32_t up, uint8_t state, const char *addr)
{
	skald__cl_rec_t r = {.node = node, .inc = 7, .up_number = up, .state = state};
	if (state & SKALD__CL_SUSPECT)
		r.suspecter = 99;
	snprintf(r.addr, sizeof r.addr, "%s", addr);
	return r;
}

/* One valid message of every type, encoded into bufs[i]. */
enum { TYPES = SKALD__CL_MSG_MAX };
static size_t encode_all(uint8_t bufs[TYPES][1024])
{
	skald__cl_rec_t recs[3] = {rec(1, 1, 0, "tcp://10.0.0.1:7000"),
	                           rec(2, 2, SKALD__CL_SUSPECT, "tcp://10.0.0.2:7000"),
	                           rec(3, 0, SKALD__CL_DOWN | SKALD__CL_LEAVING, "tcp://h:1")};
	size_t total = 0;
	for (int t = 1; t <= TYPES; t++) {
		skald__cl_msg_t m = {
		        .type = (uint8_t)t, .from = 1, .to = t == SKALD__CL_JOIN ? 0 : 2};
		m.seq = 42;
		m.flags = 1;
		m.reason = SKALD_ETOOMANY;
		m.target = 3;
		strcpy(m.target_addr, "tcp://h:1");
		m.digest = 0x1122334455667788ull;
		m.count = 3;
		m.recs = recs;
		m.nrecs = 3;
		size_t len = skald__cl_encode(&m, bufs[t - 1], 1024);
		cr_assert(len > 0, "type %d does not encode", t);
		total += len;
	}
	return total;
}

/* The size of the message at buf: the shortest prefix that decodes. */
static size_t decoded_length(const uint8_t *buf, skald__cl_msg_t *m, const char **why)
{
	for (size_t l = 1; l <= 1024; l++)
		if (skald__cl_decode(buf, l, m, why) == 0)
			return l;
	return 0;
}

Test(logic, every_message_type_round_trips)
{
	uint8_t bufs[TYPES][1024];
	encode_all(bufs);
	for (int t = 1; t <= TYPES; t++) {
		skald__cl_rec_t out[8];
		skald__cl_msg_t m = {.recs = out, .cap = 8};
		const char *why = NULL;
		size_t len = decoded_length(bufs[t - 1], &m, &why);
		cr_assert(len > 0, "type %d: %s", t, why);
		cr_assert_eq(m.type, t);
		cr_assert_eq(m.from, 1);
		cr_assert_eq(m.nrecs, 3);
		cr_assert_eq(out[1].suspecter, 99);
		cr_assert_str_eq(out[0].addr, "tcp://10.0.0.1:7000");
		cr_assert_eq(out[2].state, SKALD__CL_DOWN | SKALD__CL_LEAVING);
		if (t == SKALD__CL_PING_REQ) {
			cr_assert_eq(m.target, 3);
			cr_assert_str_eq(m.target_addr, "tcp://h:1");
		}
		if (t == SKALD__CL_REFUSE)
			cr_assert_eq(m.reason, SKALD_ETOOMANY);
		if (t == SKALD__CL_STATE || t == SKALD__CL_DIGEST)
			cr_assert_eq(m.digest, 0x1122334455667788ull);
	}
}

Test(logic, every_truncation_and_extension_is_refused_with_a_reason)
{
	uint8_t bufs[TYPES][1024];
	encode_all(bufs);
	for (int t = 1; t <= TYPES; t++) {
		skald__cl_rec_t out[8];
		skald__cl_msg_t m = {.recs = out, .cap = 8};
		size_t len = decoded_length(bufs[t - 1], &m, NULL);
		/* Each prefix is copied to a buffer of exactly its size, so
		 * that the address sanitizer sees any read past the end. */
		for (size_t l = 0; l < len; l++) {
			uint8_t *p = malloc(l ? l : 1);
			memcpy(p, bufs[t - 1], l);
			const char *why = NULL;
			cr_assert_eq(skald__cl_decode(p, l, &m, &why), SKALD_EPROTO,
			             "type %d cut at %zu accepted", t, l);
			cr_assert(why && why[0]);
			free(p);
		}
		bufs[t - 1][len] = 0;
		const char *why = NULL;
		cr_assert_eq(skald__cl_decode(bufs[t - 1], len + 1, &m, &why), SKALD_EPROTO);
		cr_assert_str_eq(why, "trailing bytes after the records");
	}
}

Test(logic, hostile_fields_are_refused)
{
	uint8_t bufs[TYPES][1024];
	encode_all(bufs);
	skald__cl_rec_t out[2];
	skald__cl_msg_t m = {.recs = out, .cap = 2};
	const char *why = NULL;
	/* Three records where the receiver accepts two. */
	cr_assert_eq(skald__cl_decode(bufs[SKALD__CL_GOSSIP - 1], 1024, &m, &why), SKALD_EPROTO);
	cr_assert_str_eq(why, "more records than this node accepts in one message");

	uint8_t b[64] = {SKALD__CL_VERSION, SKALD__CL_GOSSIP};
	b[9] = 1;  /* from 1 */
	b[17] = 2; /* to 2 */
	/* A count of 2^32 - 1 records in a short buffer. */
	memset(b + 18, 0xff, 4);
	m.cap = 0xffffffffu;
	cr_assert_eq(skald__cl_decode(b, 22, &m, &why), SKALD_EPROTO);
	cr_assert_str_eq(why, "record count larger than the message");
	m.cap = 2;
	b[0] = 9;
	cr_assert_eq(skald__cl_decode(b, 22, &m, &why), SKALD_EPROTO);
	cr_assert_str_eq(why, "unsupported protocol version");
	b[0] = SKALD__CL_VERSION;
	b[1] = 77;
	cr_assert_eq(skald__cl_decode(b, 22, &m, &why), SKALD_EPROTO);
	cr_assert_str_eq(why, "unknown message type");
	b[1] = SKALD__CL_GOSSIP;
	b[17] = 0;
	cr_assert_eq(skald__cl_decode(b, 22, &m, &why), SKALD_EPROTO);
	cr_assert_str_eq(why, "receiver node id 0 outside JOIN");
}

static void ignore_send(void *ctx, uint64_t node, const char *addr, const uint8_t *buf, size_t len)
{
	(*(size_t *)ctx)++;
}

static void ignore_event(void *ctx, skald__cl_event_t ev, const skald__cl_rec_t *m, int reason)
{
}

Test(logic, random_and_corrupted_bytes_are_refused_without_harm)
{
	size_t sent = 0;
	skald__cl_config_t cfg = {.node = 5, .addr = "sim://5", .seed = 1};
	cfg.send = ignore_send;
	cfg.event = ignore_event;
	cfg.ctx = &sent;
	skald__cl_t *cl;
	cr_assert_eq(skald__cl_new(&cfg, &cl), 0);
	cr_assert_eq(skald__cl_join(cl, NULL, 0, 0), 0);
	uint8_t bufs[TYPES][1024];
	encode_all(bufs);
	uint64_t x = 0x12345;
	size_t refused = 0;
	for (int i = 0; i < 20000; i++) {
		uint8_t b[256];
		size_t len = (size_t)(i % 256);
		/* Half pure noise, half valid messages with bytes flipped. */
		for (size_t k = 0; k < len; k++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			b[k] = (uint8_t)x;
		}
		if (i % 2 && len > 0) {
			memcpy(b, bufs[i % TYPES], len);
			b[x % len] ^= (uint8_t)(1u << (x % 8));
		}
		uint8_t *p = malloc(len ? len : 1);
		memcpy(p, b, len);
		const char *why = NULL;
		if (skald__cl_receive(cl, "sim://9", p, len, 1000, &why) != 0) {
			cr_assert(why);
			refused++;
		}
		free(p);
	}
	cr_assert(refused > 19000, "only %zu of 20000 refused", refused);
	/* Still itself and still running. */
	cr_assert_eq(skald__cl_self(cl)->node, 5);
	cr_assert(!skald__cl_stopped(cl));
	skald__cl_free(cl);
}

Test(logic, keep_majority_keeps_the_larger_side_and_the_oldest_half)
{
	cr_assert_eq(skald__cl_keep_majority(100, 60, 0), 1);
	cr_assert_eq(skald__cl_keep_majority(100, 40, 1), 0);
	cr_assert_eq(skald__cl_keep_majority(100, 99, 1), 1);
	cr_assert_eq(skald__cl_keep_majority(4, 2, 1), 1);
	cr_assert_eq(skald__cl_keep_majority(4, 2, 0), 0);
	cr_assert_eq(skald__cl_keep_majority(1, 1, 1), 1);
	cr_assert_eq(skald__cl_keep_majority(2, 1, 0), 0);
}

Test(logic, suspicion_timeout_shrinks_with_independent_confirmations)
{
	sim_t *sim = sim_new(21, 10);
	sim_form(sim, 10);
	skald__cl_t *cl = sim->nodes[0].cl;
	skald__cl_member_t *m = skald__cl_find(cl, sim->nodes[1].node);
	uint64_t t[5];
	for (int c = 0; c < 5; c++) {
		m->nconfirm = (uint8_t)(c + 1);
		t[c] = skald__cl_suspicion_ms(cl, m);
	}
	/* Defaults: 3,000 ms with one suspecter, 1,000 with 1 + 3 or more. */
	cr_assert_eq(t[0], 3000);
	cr_assert(t[1] < t[0] && t[2] < t[1], "%llu %llu %llu", (unsigned long long)t[0],
	          (unsigned long long)t[1], (unsigned long long)t[2]);
	cr_assert_eq(t[3], 1000);
	cr_assert_eq(t[4], 1000);
	m->nconfirm = 0;
	sim_free(sim);
}

Test(logic, up_members_are_in_age_order_and_the_same_everywhere)
{
	sim_t *sim = sim_new(22, 20);
	sim_form(sim, 20);
	skald__cl_rec_t a[20], b[3];
	cr_assert_eq(skald__cl_up_members(sim->nodes[7].cl, a, 20), 20);
	for (int i = 1; i < 20; i++)
		cr_assert(a[i - 1].up_number < a[i].up_number ||
		          (a[i - 1].up_number == a[i].up_number && a[i - 1].node < a[i].node));
	/* A short buffer gets the oldest, in order, and the full count. */
	cr_assert_eq(skald__cl_up_members(sim->nodes[3].cl, b, 3), 20);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(b[i].node, a[i].node);
	cr_assert_eq(a[0].node, sim->nodes[0].node, "the founder is the oldest");
	sim_free(sim);
}

Test(logic, bad_configuration_and_seeds_are_refused)
{
	skald__cl_config_t cfg = {.node = 5, .addr = "sim://5"};
	skald__cl_t *cl = NULL;
	cr_assert_eq(skald__cl_new(&cfg, &cl), SKALD_EINVAL, "callbacks are required");
	cfg.send = ignore_send;
	cfg.event = ignore_event;
	cfg.addr = "has space";
	cr_assert_eq(skald__cl_new(&cfg, &cl), SKALD_EINVAL);
	cfg.addr = "sim://5";
	cfg.node = 0;
	cr_assert_eq(skald__cl_new(&cfg, &cl), SKALD_EINVAL);
	cfg.node = 5;
	cr_assert_eq(skald__cl_new(&cfg, &cl), 0);
	const char *seeds[] = {""};
	cr_assert_eq(skald__cl_join(cl, seeds, 1, 0), SKALD_EINVAL);
	skald__cl_free(cl);
}
