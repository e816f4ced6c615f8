/*
 * skald/metrics.h - counters, gauges and histograms in the Prometheus text
 * format.
 *
 * The registry is process-wide: every system of the process counts into the
 * same metrics (a process usually runs one system, one node). Skald's own
 * metrics (skald_*, listed in docs/OPERATIONS.md) are registered when the
 * first system starts; an application registers its own with the functions
 * below and they are rendered with Skald's.
 *
 * Cost. An update touches only memory of the calling thread: each thread
 * counts into a block of its own, without atomic read-modify-write and
 * without a lock, and skald_metrics_render() sums the blocks at scrape time.
 * A thread that exits folds its block into the process totals first, so no
 * count is lost. Updates are safe from any thread.
 *
 * Serving. libskald does not serve HTTP. skald_metrics_render() returns the
 * text; libskald-http's skald_http_route_metrics() (skald/http.h) serves any
 * render callback at a path, and skald_metrics_scrape() below is such a
 * callback, so that a program linking both serves /metrics with one call:
 *
 *     skald_http_route_metrics(srv, "/metrics", skald_metrics_scrape, NULL);
 *
 * Neither library depends on the other.
 */
#ifndef SKALD_METRICS_H
#define SKALD_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One time series: a metric name with at most one label. Owned by the
 * registry for the life of the process; never freed. */
typedef struct skald_metric_s skald_metric_t;

/*
 * Registers a counter (a value that only goes up; the name should end in
 * _total) and stores it in *out. label and value name the series' one label
 * (e.g. "peer", "a1b2"); both NULL for a series without labels. Registering
 * the same name with the same label value again returns the same series, so
 * that a series can be looked up by registering it. Strings are copied.
 * Errors: SKALD_EINVAL (NULL name, help or out; a name or label that is not
 * [a-zA-Z_:][a-zA-Z0-9_:]*; only one of label and value), SKALD_EEXISTS
 * (the name is registered as another kind, with other help or with other
 * buckets), SKALD_ETOOMANY (the registry is full), SKALD_ENOMEM. Thread-safe.
 */
int skald_metric_counter(const char *name, const char *help, const char *label, const char *value,
                         skald_metric_t **out);

/* As skald_metric_counter, for a gauge: a value that goes up and down. */
int skald_metric_gauge(const char *name, const char *help, const char *label, const char *value,
                       skald_metric_t **out);

/*
 * A gauge whose value is computed at scrape time by fn(arg), called from
 * skald_metrics_render()'s thread while the registry's lock is held (fn
 * must not register metrics). Label and errors as skald_metric_counter; a
 * second registration of the same series replaces fn and arg.
 */
int skald_metric_gauge_fn(const char *name, const char *help, const char *label, const char *value,
                          double (*fn)(void *arg), void *arg, skald_metric_t **out);

/*
 * A histogram with the given upper bounds (ascending, finite, copied; at most
 * 32), to which a +Inf bucket is added. bounds NULL and nbounds 0 mean the
 * default latency buckets in seconds (100 µs to 10 s). Label and errors as
 * skald_metric_counter (SKALD_EINVAL also for bounds that do not ascend).
 */
int skald_metric_histogram(const char *name, const char *help, const double *bounds, size_t nbounds,
                           const char *label, const char *value, skald_metric_t **out);

/* Adds n to a counter. A no-op on NULL, on another kind, or while metrics
 * are disabled. Any thread. */
void skald_metric_inc(skald_metric_t *m, uint64_t n);
/* Adds delta (may be negative) to a gauge. Same rules. A gauge is updated
 * either with _add or with _set; its value is the set value plus the sum of
 * the additions. */
void skald_metric_add(skald_metric_t *m, int64_t delta);
/* Sets a gauge to v (the last set wins). Same rules. */
void skald_metric_set(skald_metric_t *m, double v);
/* Records one observation v in a histogram. Same rules. */
void skald_metric_observe(skald_metric_t *m, double v);

/*
 * Renders every registered metric in the Prometheus text exposition format
 * (version 0.0.4) into a malloc'ed, NUL-terminated buffer in *out (the
 * caller frees it) of *len bytes. Any thread. Errors: SKALD_EINVAL (NULL
 * argument), SKALD_ENOMEM.
 */
int skald_metrics_render(char **out, size_t *len);

/* skald_metrics_render() in the shape of a render callback (arg unused),
 * for skald_http_route_metrics() in skald/http.h. */
int skald_metrics_scrape(void *arg, char **out, size_t *len);

/* Turns every update on or off, process-wide (on by default). While off,
 * updates are dropped and the rendered values stay as they were. The series
 * read from the runtime's own counts at render time (messages processed,
 * dead letters, actors alive: skald_system_stats()) are not affected. */
void skald_metrics_enable(bool on);
bool skald_metrics_enabled(void);

/* The Content-Type of the rendered text. */
#define SKALD_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#ifdef __cplusplus
}
#endif
#endif /* SKALD_METRICS_H */
