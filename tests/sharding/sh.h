/*
 * tests/sharding/sh.h - what the sharding suite shares besides the ctr
 * entity (ctr.h): members of a cluster inside the test's process (each its
 * own system, network and cluster on loopback, all on one journal).
 *
 * The suite also links tests/entity/helpers.c (and what it needs) for the
 * journal read-back (jl_*), unique ids, the per-test journal URI
 * (store_uri: SKALD_TEST_STORE, else a fresh memory://) and the "entprobe:"
 * store that fails writes and reads on demand; and tests/cluster/proc.c for
 * members as separate processes (test_procs.c).
 */
#ifndef SKALD_TESTS_SHARDING_SH_H
#define SKALD_TESTS_SHARDING_SH_H

#include <stdatomic.h>
#include <stdint.h>

#include "skald/skald.h"
#include "tests/entity/helpers.h"
#include "tests/sharding/ctr.h"

/* ------------------------------------------------------------------------ */
/* In-process members                                                        */

typedef struct tnode_s {
	skald_system_t *sys;
	skald_sharding_t *sh;
	uint64_t id;
	char addr[64];
	int port;
} tnode_t;

/* A member on journal uri that joins through seed (NULL: forms the
 * cluster) and runs a region with cfg (NULL: ctr_config()). Fails the test
 * on error. */
tnode_t *tnode_start(const char *uri, const tnode_t *seed, const skald_sharding_config_t *cfg);
/* Stops the region, then the system, without leaving the cluster: to the
 * others the member is gone as if it had crashed (its connections reset,
 * nothing is handed over), but its entities finished their writes. */
void tnode_stop(tnode_t *n);
/* Waits (bounded) until every one of n[0..k) has the same k up members and
 * its region places ids by that view. */
void await_members(tnode_t **n, int k);
/* The owner of id as member `via` sees it. */
uint64_t owner_of(tnode_t *via, const char *id);
/* The member of n[0..k) whose node id is node, or NULL. */
tnode_t *node_by_id(tnode_t **n, int k, uint64_t node);

/* skald_sharding_system_ask of an integer message; the integer reply in
 * *out. Returns the ask's status. */
int ctr_ask(skald_sharding_t *sh, const char *id, uint32_t type, uint64_t v, uint64_t timeout_ms,
            uint64_t *out);
/* ctr_ask that must succeed; returns the reply. */
uint64_t ctr_ask_ok(skald_sharding_t *sh, const char *id, uint32_t type, uint64_t v);

/* ctr_history of entity ctr-ID with l's journal; fails the test on error. */
void ctr_read(jloop_t *l, const char *id, ctr_history_t *h);

#endif /* SKALD_TESTS_SHARDING_SH_H */
