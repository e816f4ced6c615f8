/*
 * tests/include/skald_test.h - what the Criterion suites share: time,
 * expectations checked on actor threads, and bounded waits.
 *
 * Each suite is its own binary: exactly one file of a suite defines
 * SKALD_TEST_DEFINE before including this header, which then also emits the
 * definitions of the functions declared here.
 */
#ifndef SKALD_TESTS_SKALD_TEST_H
#define SKALD_TESTS_SKALD_TEST_H

#include <criterion/criterion.h>
#include <stdint.h>

/* Milliseconds of the monotonic clock. */
uint64_t now_ms(void);
/* Sleeps ms milliseconds, also when a signal interrupts the sleep. */
void sleep_ms(unsigned ms);

/* Broken expectations seen on actor threads, where a Criterion assertion
 * must not run: CHECK records them, checks_ok fails the test with the
 * first one, checks_reset forgets them (in a suite's .init). */
void check_failed(const char *file, int line, const char *expr);
void checks_ok(void);
void checks_reset(void);
#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			check_failed(__FILE__, __LINE__, #cond);                                   \
	} while (0)

/* Polls cond every millisecond; fails the test after ms milliseconds. */
#define AWAIT(cond, ms)                                                                            \
	do {                                                                                       \
		uint64_t await_end_ = now_ms() + (ms);                                             \
		while (!(cond)) {                                                                  \
			if (now_ms() > await_end_)                                                 \
				cr_assert_fail("timed out after %d ms waiting for: %s", (int)(ms), \
				               #cond);                                             \
			sleep_ms(1);                                                               \
		}                                                                                  \
	} while (0)

/* Fails the test if cond stops holding within ms milliseconds. */
#define HOLDS_FOR(cond, ms)                                                                        \
	do {                                                                                       \
		uint64_t holds_end_ = now_ms() + (ms);                                             \
		while (now_ms() <= holds_end_) {                                                   \
			cr_assert(cond, "no longer holds: %s", #cond);                             \
			sleep_ms(1);                                                               \
		}                                                                                  \
	} while (0)

#ifdef SKALD_TEST_DEFINE
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

static atomic_int check_failures;
/* The first failed CHECK, kept for the report; later ones are only counted. */
static char first_failure[256];
static atomic_flag first_taken = ATOMIC_FLAG_INIT;

uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000u, .tv_nsec = (long)(ms % 1000u) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

void check_failed(const char *file, int line, const char *expr)
{
	if (!atomic_flag_test_and_set(&first_taken))
		snprintf(first_failure, sizeof first_failure, "%s:%d: CHECK(%s) failed", file, line,
		         expr);
	atomic_fetch_add(&check_failures, 1);
}

void checks_ok(void)
{
	int n = atomic_load(&check_failures);
	cr_assert_eq(n, 0, "%d check(s) failed on actor threads; first: %s", n, first_failure);
}

void checks_reset(void)
{
	atomic_store(&check_failures, 0);
}
#endif /* SKALD_TEST_DEFINE */

#endif /* SKALD_TESTS_SKALD_TEST_H */
