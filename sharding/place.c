/*
 * sharding/place.c - where things live: the shard of an id, and the owner
 * of a shard among the up members, by rendezvous (highest random weight)
 * hashing. Every member computes the same answers from the same view.
 *
 * Rendezvous hashing gives each (shard, member) pair a weight and the shard
 * to the member of highest weight. A member that joins takes from each
 * other member only the shards it now weighs highest on (about 1/n of
 * them); a member that goes gives its shards away and no other shard moves.
 * There is no ring to keep and nothing to agree on but the member list.
 */
#include "base/hash.h"
#include "sharding/sharding_int.h"

uint64_t skald__mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

uint32_t skald__shard_of(const char *id, unsigned n)
{
	return n > 1 ? (uint32_t)(skald__mix64(skald__hash_str(id)) % n) : 0;
}

uint64_t skald__rendezvous(uint32_t shard, const uint64_t *up, size_t n, uint64_t skip)
{
	uint64_t best = 0, best_w = 0;
	uint64_t key = skald__mix64(0x9e3779b97f4a7c15ull ^ shard);
	for (size_t i = 0; i < n; i++) {
		if (up[i] == skip)
			continue;
		uint64_t w = skald__mix64(key ^ up[i]);
		/* Ties (practically never) go to the smaller node id, the same
		 * everywhere. */
		if (best == 0 || w > best_w || (w == best_w && up[i] < best)) {
			best = up[i];
			best_w = w;
		}
	}
	return best;
}
