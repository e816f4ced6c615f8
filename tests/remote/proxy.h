/*
 * tests/remote/proxy.h - a man in the middle for the tls:// tests: a TCP
 * proxy on 127.0.0.1 that forwards every connection it accepts to an
 * upstream port, keeps a copy of every byte it forwards (a capture, as a
 * sniffer on the path would have it), and on request flips one bit of the
 * stream, as an attacker or a broken router would.
 *
 * It runs on a thread of its own with plain sockets; every call is safe
 * from the test's thread. Fails the test on errors of its own plumbing.
 */
#ifndef SKALD_TESTS_REMOTE_PROXY_H
#define SKALD_TESTS_REMOTE_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct proxy_s proxy_t;

/* A proxy to 127.0.0.1:upstream, listening on a port the kernel picks. */
proxy_t *proxy_start(int upstream);
int proxy_port(const proxy_t *p);

/* The last byte of the next chunk forwarded from the upstream to the
 * client gets one bit flipped. */
void proxy_flip_next(proxy_t *p);
/* True once that flip was made. */
bool proxy_flipped(proxy_t *p);

/* True if the bytes forwarded so far, in either direction, contain
 * needle (of len bytes). The capture keeps the first 8 MiB. */
bool proxy_saw(proxy_t *p, const void *needle, size_t len);
/* Bytes forwarded so far, both directions. */
size_t proxy_bytes(proxy_t *p);

/* Closes every connection and the listener, ends the thread, frees p. */
void proxy_stop(proxy_t *p);

#endif /* SKALD_TESTS_REMOTE_PROXY_H */
