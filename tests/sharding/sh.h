/*
 * tests/sharding/sh.h - what the sharding suite shares: the "ctr" entity,
 * its messages (with codecs, so they cross nodes), and members of a
 * cluster inside the test's process (each its own system, network and
 * cluster on loopback, all on one journal).
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

/* ------------------------------------------------------------------------ */
/* The ctr entity                                                            */

/*
 * ctr: a counter. Messages carry an integer in the payload pointer, 8 bytes
 * big-endian on the wire:
 *   t_add k   persists "ctr.added" {"k": k, "total": total + k}, then
 *             replies t_val with the new total
 *   t_get     replies t_val with the total at once
 *   t_seen n  persists "ctr.seen" {"n": n}; no reply (order tests)
 *   t_quit    stops the entity (skald_stop_self); no reply
 * and t_local, a type without a codec (local only).
 * apply checks that each "ctr.added" total is the previous total plus k: a
 * history written by two owners at once would break that (forks).
 */
extern uint32_t t_add, t_get, t_val, t_seen, t_quit, t_local;
extern const skald_entity_type_t ctr_type;

/* Process-wide counts of the ctr callbacks. */
extern atomic_long g_ctr_inits, g_ctr_recovered;

#define U(v) ((void *)(uintptr_t)(v))
#define V(p) ((uint64_t)(uintptr_t)(p))

/* Registers the types (any process, any time); 0 or the first error. */
int ctr_register(void);

/* ------------------------------------------------------------------------ */
/* In-process members                                                        */

typedef struct tnode_s {
	skald_system_t *sys;
	skald_sharding_t *sh;
	uint64_t id;
	char addr[64];
	int port;
} tnode_t;

/* The sharding configuration the helpers use unless given one: ctr with
 * 16 shards. */
skald_sharding_config_t ctr_config(void);

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

/* Reads entity ctr-ID back from the journal at uri: its events, whether
 * their totals chain (no fork), and the last total. */
typedef struct ctr_history_s {
	size_t events;
	uint64_t highest;
	uint64_t total;
	long forks;    /* "ctr.added" events whose total is not previous + k */
	long gaps;     /* seqs that are not previous + 1 */
	long disorder; /* "ctr.seen" events whose n is not previous n + 1 */
	uint64_t last_n;
	uint64_t bad_after, bad_n, bad_seq; /* the first disorder: n after n */
} ctr_history_t;
void ctr_history(jloop_t *l, const char *id, ctr_history_t *h);

/* Writes entities ctr-PREFIX-0 .. ctr-PREFIX-(n-1), each with `events`
 * "ctr.added" events of k 1 (totals 1 .. events), straight into the
 * journal, many entities per round trip. */
void ctr_prefill(jloop_t *l, const char *prefix, int n, int events);

#endif /* SKALD_TESTS_SHARDING_SH_H */
