/*
 * actors/cluster/downing.c - the downing rule: keep-majority.
 *
 * After a partition each side sees the other as unreachable. Only a side
 * that holds more than half of the members it knew stays; the other downs
 * itself, so that at most one side keeps running entities and singletons.
 * An exact half stays only if it holds the oldest member, which both halves
 * agree on because age order is part of the converged view.
 */
#include "actors/cluster/cluster_int.h"

int skald__cl_keep_majority(size_t total, size_t reachable, int oldest_reachable)
{
	if (reachable * 2 > total)
		return 1;
	if (reachable * 2 == total)
		return oldest_reachable ? 1 : 0;
	return 0;
}
