/*
 * tests/sharding/ctr.h - the "ctr" entity of the sharding suite and of
 * bench/failover, its messages (with codecs, so they cross nodes), and its
 * histories read back from a journal. Nothing here uses Criterion: the
 * benchmark and member processes use it too.
 */
#ifndef SKALD_TESTS_SHARDING_CTR_H
#define SKALD_TESTS_SHARDING_CTR_H

#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>

#include "skald/skald.h"

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

/* The sharding configuration of ctr the suite uses unless told otherwise:
 * 16 shards. */
skald_sharding_config_t ctr_config(void);

/* A history read back from the journal. */
typedef struct ctr_history_s {
	size_t events;
	uint64_t highest;
	uint64_t total;
	long forks;    /* "ctr.added" events whose total is not previous + k */
	long gaps;     /* seqs that are not previous + 1 */
	long dup_seqs; /* seqs read twice */
	long disorder; /* "ctr.seen" events whose n is not previous n + 1 */
	uint64_t last_n;
	uint64_t bad_after, bad_n, bad_seq; /* the first disorder: n after n */
} ctr_history_t;

/* Reads persistence id pid back with j, running loop (j's) until done.
 * Returns 0 or the read's error. */
int ctr_history(skald_journal_t *j, uv_loop_t *loop, const char *pid, ctr_history_t *h);

/* Writes persistence ids PREFIX-0 .. PREFIX-(n-1) (PREFIX includes the
 * type name: "ctr-run7"), each with `events` "ctr.added" events of k 1
 * (totals 1 .. events), straight into the journal with j, many ids per
 * round trip. Returns 0 or the first error. */
int ctr_prefill(skald_journal_t *j, uv_loop_t *loop, const char *prefix, int n, int events);

#endif /* SKALD_TESTS_SHARDING_CTR_H */
