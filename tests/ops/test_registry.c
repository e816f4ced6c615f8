/*
 * tests/ops/test_registry.c - the metrics registry: per-thread counts
 * merged at render time, the text format, refusals. Each test runs in a
 * process of its own (Criterion), so each starts from an empty registry.
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "scrape.h"
#include "skald/metrics.h"

#define THREADS    4
#define PER_THREAD 100000

static skald_metric_t *shared_counter;

static void *count_thread(void *arg)
{
	for (int i = 0; i < PER_THREAD; i++)
		skald_metric_inc(shared_counter, 1);
	return NULL;
}

Test(registry, counts_of_exited_threads_are_kept)
{
	cr_assert_eq(skald_metric_counter("ops_test_things_total", "Things.", NULL, NULL,
	                                  &shared_counter),
	             0);
	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, count_thread, NULL), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	skald_metric_inc(shared_counter, 7);
	/* Every counting thread has exited: their blocks were folded. */
	cr_assert_eq(metric_now("ops_test_things_total"), THREADS * PER_THREAD + 7.0);
	/* A second round reuses the retired blocks without counting twice. */
	for (int i = 0; i < THREADS; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, count_thread, NULL), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	cr_assert_eq(metric_now("ops_test_things_total"), 2.0 * THREADS * PER_THREAD + 7.0);
}

static skald_metric_t *shared_gauge;

static void *gauge_up_thread(void *arg)
{
	skald_metric_add(shared_gauge, 5);
	return NULL;
}

Test(registry, gauge_additions_from_several_threads_sum)
{
	cr_assert_eq(skald_metric_gauge("ops_test_depth", "Depth.", NULL, NULL, &shared_gauge), 0);
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, gauge_up_thread, NULL), 0);
	pthread_join(t, NULL);
	/* Taken down on another thread than the one that put it up. */
	skald_metric_add(shared_gauge, -3);
	cr_assert_eq(metric_now("ops_test_depth"), 2.0);
}

Test(registry, histogram_buckets_are_cumulative)
{
	static const double bounds[] = {1, 2, 5};
	skald_metric_t *h;
	cr_assert_eq(skald_metric_histogram("ops_test_wait_seconds", "Waits.", bounds, 3, NULL,
	                                    NULL, &h),
	             0);
	skald_metric_observe(h, 0.5);
	skald_metric_observe(h, 1.0); /* on a bound: counted in that bucket */
	skald_metric_observe(h, 1.5);
	skald_metric_observe(h, 3);
	skald_metric_observe(h, 10);
	char *text = render();
	cr_assert_eq(sample(text, "ops_test_wait_seconds_bucket{le=\"1\"}"), 2);
	cr_assert_eq(sample(text, "ops_test_wait_seconds_bucket{le=\"2\"}"), 3);
	cr_assert_eq(sample(text, "ops_test_wait_seconds_bucket{le=\"5\"}"), 4);
	cr_assert_eq(sample(text, "ops_test_wait_seconds_bucket{le=\"+Inf\"}"), 5);
	cr_assert_eq(sample(text, "ops_test_wait_seconds_count"), 5);
	cr_assert_float_eq(sample(text, "ops_test_wait_seconds_sum"), 16.0, 1e-9);
	cr_assert_not_null(strstr(text, "# TYPE ops_test_wait_seconds histogram\n"));
	char why[4096];
	cr_assert(promtool_accepts(text, why, sizeof why), "promtool: %s\n%s", why, text);
	free(text);
}

Test(registry, labelled_series_share_one_family)
{
	skald_metric_t *a, *b, *again;
	cr_assert_eq(skald_metric_counter("ops_test_sent_total", "Sent.", "peer", "a", &a), 0);
	cr_assert_eq(skald_metric_counter("ops_test_sent_total", "Sent.", "peer", "b\"\\\n", &b),
	             0);
	cr_assert_eq(skald_metric_counter("ops_test_sent_total", "Sent.", "peer", "a", &again), 0);
	cr_assert_eq(a, again, "registering a series again returns it");
	skald_metric_inc(a, 2);
	skald_metric_inc(b, 3);
	char *text = render();
	cr_assert_eq(sample(text, "ops_test_sent_total{peer=\"a\"}"), 2);
	/* The quote, backslash and newline of the value are escaped. */
	cr_assert_eq(sample(text, "ops_test_sent_total{peer=\"b\\\"\\\\\\n\"}"), 3);
	const char *type = "# TYPE ops_test_sent_total counter\n";
	char *first = strstr(text, type);
	cr_assert_not_null(first);
	cr_assert_null(strstr(first + 1, type), "one TYPE line per family");
	char why[4096];
	cr_assert(promtool_accepts(text, why, sizeof why), "promtool: %s\n%s", why, text);
	free(text);
}

Test(registry, bad_registrations_are_refused)
{
	skald_metric_t *m;
	cr_assert_eq(skald_metric_counter("9starts_with_a_digit", "x", NULL, NULL, &m),
	             SKALD_EINVAL);
	cr_assert_eq(skald_metric_counter("has-dash_total", "x", NULL, NULL, &m), SKALD_EINVAL);
	cr_assert_eq(skald_metric_counter("ops_ok_total", NULL, NULL, NULL, &m), SKALD_EINVAL);
	cr_assert_eq(skald_metric_counter("ops_ok_total", "x", "le", "1", &m), SKALD_EINVAL);
	cr_assert_eq(skald_metric_counter("ops_ok_total", "x", "peer", NULL, &m), SKALD_EINVAL);
	cr_assert_eq(skald_metric_counter("ops_ok_total", "x", NULL, NULL, &m), 0);
	cr_assert_eq(skald_metric_gauge("ops_ok_total", "x", NULL, NULL, &m), SKALD_EEXISTS);
	cr_assert_eq(skald_metric_counter("ops_ok_total", "other help", NULL, NULL, &m),
	             SKALD_EEXISTS);
	/* Every series of a family has the same label name. */
	cr_assert_eq(skald_metric_counter("ops_ok_total", "x", "peer", "a", &m), SKALD_EINVAL);
	static const double down[] = {2, 1};
	cr_assert_eq(skald_metric_histogram("ops_h_seconds", "x", down, 2, NULL, NULL, &m),
	             SKALD_EINVAL);
}

Test(registry, updates_while_disabled_are_dropped)
{
	skald_metric_t *c;
	cr_assert_eq(skald_metric_counter("ops_test_off_total", "x", NULL, NULL, &c), 0);
	skald_metric_inc(c, 1);
	skald_metrics_enable(false);
	cr_assert(!skald_metrics_enabled());
	skald_metric_inc(c, 100);
	skald_metrics_enable(true);
	skald_metric_inc(c, 1);
	cr_assert_eq(metric_now("ops_test_off_total"), 2);
}

static double forty_two(void *arg)
{
	return *(double *)arg;
}

Test(registry, computed_gauges_are_read_at_render)
{
	static double v = 1.5;
	skald_metric_t *m;
	cr_assert_eq(skald_metric_gauge_fn("ops_test_computed", "x", NULL, NULL, forty_two, &v, &m),
	             0);
	cr_assert_eq(metric_now("ops_test_computed"), 1.5);
	v = 42;
	cr_assert_eq(metric_now("ops_test_computed"), 42);
}
