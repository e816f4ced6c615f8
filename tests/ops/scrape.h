/*
 * tests/ops/scrape.h - what the operations suite shares: reading a sample
 * out of the Prometheus text, and running promtool over it.
 */
#ifndef SKALD_TESTS_OPS_SCRAPE_H
#define SKALD_TESTS_OPS_SCRAPE_H

#include <stdbool.h>

#include "tests/include/skald_test.h"

/* The bound of an ordinary wait. */
#define WAIT_MS 20000

/* The value of the sample whose name and labels are exactly `series` (e.g.
 * `skald_cluster_members{status="up"}`) in the text, or NaN when absent. */
double sample(const char *text, const char *series);

/* skald_metrics_render() of this process, as a string the caller frees;
 * fails the test on error. */
char *render(void);

/* The value of `series` in this process's metrics now (NaN when absent). */
double metric_now(const char *series);

/* Runs `promtool check metrics` on text; true when it accepts it. Whatever
 * promtool says is copied to out[0..len). */
bool promtool_accepts(const char *text, char *out, size_t len);

#endif
