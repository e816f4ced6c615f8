/*
 * tests/remote/test_order.c - messages from one actor to one actor on
 * another node arrive in the order sent, all of them.
 */
#include "harness.h"

TestSuite(order, .init = fixture_setup, .fini = fixture_teardown, .timeout = 120);

#define MESSAGES 1000000u
/* Sends per turn, so that the sender gives its thread back now and then. */
#define BATCH 4096u

typedef struct seqsend_ctx_s {
	skald_ref_t to;
	uint64_t next; /* sender's thread only */
	atomic_ullong sent;
	atomic_ullong full; /* sends refused with SKALD_EQUEUEFULL, retried */
	atomic_int error;   /* any other refusal */
	atomic_int done;
} seqsend_ctx_t;

static void seqsend_resume(skald_actor_t *self, void *state, void *arg)
{
	skald_tell(self, skald_self(self), t_cmd, INT_PAYLOAD(0));
}

static int seqsend_init(skald_actor_t *self, void *state, void *arg)
{
	*(seqsend_ctx_t **)state = arg;
	return skald_tell(self, skald_self(self), t_cmd, INT_PAYLOAD(0));
}

static int seqsend_receive(skald_actor_t *self, void *state, skald_msg_t *msg)
{
	seqsend_ctx_t *s = *(seqsend_ctx_t **)state;
	for (unsigned i = 0; i < BATCH && s->next < MESSAGES; i++) {
		int rc = skald_tell(self, s->to, t_seq, INT_PAYLOAD(s->next));
		if (rc == SKALD_EQUEUEFULL) {
			/* The queue to that node is full: the same number again
			 * shortly. */
			atomic_fetch_add(&s->full, 1);
			CHECK(skald_timer_start(self, 1, 0, seqsend_resume, NULL, NULL) == 0);
			return 0;
		}
		if (rc < 0) {
			atomic_store(&s->error, rc);
			atomic_store(&s->done, 1);
			return 0;
		}
		s->next++;
	}
	atomic_store(&s->sent, s->next);
	if (s->next < MESSAGES)
		return skald_tell(self, skald_self(self), t_cmd, INT_PAYLOAD(0));
	atomic_store(&s->done, 1);
	return 0;
}

static const skald_behavior_t seqsend_behavior = {
        .state_size = sizeof(void *),
        .init = seqsend_init,
        .receive = seqsend_receive,
};

Test(order, a_million_messages_between_two_actors_arrive_in_order)
{
	node_t *b = node_start(&(node_opts_t){.name = "b", .watchdog_s = 110});
	skald_system_t *a = sys_start(NULL);
	skald_ref_t seq = lookup_on(a, b, "seq");

	static seqsend_ctx_t s;
	s.to = seq;
	spawn(a, &seqsend_behavior, &s);

	/* The receiver reports how many it has seen; a stall (no progress
	 * for a whole WAIT_MS) fails the test. */
	uint64_t got = 0, last = 0, stalled_since = now_ms();
	while ((got = ask_cmd(a, seq, CMD_COUNT)) < MESSAGES) {
		cr_assert_eq(atomic_load(&s.error), 0, "send refused: %s",
		             skald_err_name(atomic_load(&s.error)));
		if (got != last) {
			last = got;
			stalled_since = now_ms();
		}
		cr_assert_leq(now_ms() - stalled_since, WAIT_MS,
		              "no progress: %llu received, %llu sent", (unsigned long long)got,
		              (unsigned long long)atomic_load(&s.sent));
		sleep_ms(50);
	}
	cr_assert(atomic_load(&s.done));
	cr_assert_eq(atomic_load(&s.error), 0);
	cr_assert_eq(got, MESSAGES, "%llu received of %u sent", (unsigned long long)got, MESSAGES);
	uint64_t bad = ask_cmd(a, seq, CMD_FIRST_BAD);
	cr_assert_eq(bad, NO_GAP, "message %llu arrived out of order", (unsigned long long)bad);
	/* Nothing more comes after the last. */
	HOLDS_FOR(ask_cmd(a, seq, CMD_COUNT) == MESSAGES, QUIET_MS);
	cr_log_info("1,000,000 in order; %llu sends retried on a full queue",
	            (unsigned long long)atomic_load(&s.full));
	checks_ok();
	sys_stop(a);
	node_exit_clean(b);
}
