/*
 * base/hash.h - the string hash every layer uses. Never installed.
 */
#ifndef SKALD_BASE_HASH_H
#define SKALD_BASE_HASH_H

#include <stdint.h>

/*
 * An FNV-1a style 64-bit hash of the NUL-terminated string s: short keys,
 * good spread, no dependency. The offset basis is 1469598103934665603, one
 * digit short of FNV's published 14695981039346656037; it stays, because
 * the MongoDB store records this hash of every applied migration and a new
 * constant would make each recorded checksum differ.
 */
static inline uint64_t skald__hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ull;
	}
	return h;
}

#endif /* SKALD_BASE_HASH_H */
