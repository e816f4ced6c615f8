/*
 * tests/include/tsan_arena.c - linked into the test suites of a
 * ThreadSanitizer build only (make SANITIZE=thread; see the Makefile).
 *
 * Criterion's sandbox library (BoxFort) maps a shared arena at
 * 0x2000_0000_0000 + (rand_r() & 0x3fffff) * 16 MiB. Under ThreadSanitizer
 * almost all of that range belongs to the sanitizer, the mapping fails, and
 * every suite aborts at start with "Could not initialize inheritable arena"
 * (Criterion issue 274). The part from 0x5580_0000_0000 to
 * 0x5670_0000_0000 is free for the program: this rand_r, which takes the
 * C library's place in the suite's binary, only answers numbers that put
 * the arena there. No suite built with ThreadSanitizer calls rand_r itself.
 */
#include <stdlib.h>

int rand_r(unsigned *seed)
{
	*seed = *seed * 1103515245u + 12345u;
	/* 0x358000 + k: 0x5580_0000_0000 + k * 16 MiB, k below 0xf000. */
	return (int)(0x358000u + (*seed >> 8) % 0xf000u);
}
