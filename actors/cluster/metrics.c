/*
 * actors/cluster/metrics.c - members by status, as the gauge
 * skald_cluster_members{status="..."} (docs/OPERATIONS.md).
 */
#include <uv.h>

#include "actors/cluster/cluster_int.h"
#include "base/metrics_int.h"

/* One series per status, indexed by skald__cl_status_t. */
static skald_metric_t *by_status[SKALD__CL_ST_REMOVED + 1];
static uv_once_t once = UV_ONCE_INIT;

static void setup(void)
{
	static const char *const names[] = {NULL, "joining", "up", "leaving", "down", "removed"};
	for (int s = SKALD__CL_ST_JOINING; s <= SKALD__CL_ST_REMOVED; s++)
		(void)skald_metric_gauge(
		        "skald_cluster_members",
		        "Members of the cluster in this node's view, by status "
		        "(down and removed ones are forgotten after five minutes).",
		        "status", names[s], &by_status[s]);
}

void skald__cl_metrics(const skald__cl_t *cl)
{
	double n[SKALD__CL_ST_REMOVED + 1] = {0};
	uv_once(&once, setup);
	for (size_t i = 0, size = skald__cl_size(cl); i < size; i++)
		n[skald__cl_rec_status(skald__cl_at(cl, i))]++;
	for (int s = SKALD__CL_ST_JOINING; s <= SKALD__CL_ST_REMOVED; s++)
		skald_metric_set(by_status[s], n[s]);
}
