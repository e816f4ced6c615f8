/*
 * actors/remote/tls.h - TLS 1.3 for tls:// connections. Never installed.
 *
 * OpenSSL's libssl runs on two memory BIOs: the socket stays libuv's, the
 * connection (conn.c) hands this file the ciphertext it read and takes the
 * ciphertext to write, so TLS adds no thread and no blocking call. Above
 * it, the frames, their coalescing and the bounded queues are those of
 * tcp://. Keying (docs/TLS.md):
 *   - certificates: mutual TLS, both sides verified against the CA file;
 *     the HELLO's node name is then checked against the peer's
 *     certificate (skald__tls_peer_named);
 *   - else the cluster secret: a TLS 1.3 external pre-shared key,
 *     HKDF-SHA256(secret, salt "skald-tls-psk-v1", info cluster name),
 *     identity "skald-psk-v1", with (EC)DHE, so that past sessions stay
 *     secret if the secret leaks later.
 * Session tickets and resumption are off: every connection is a full
 * handshake, and nothing about a session outlives it.
 *
 * Threads: a context is made by skald_remote_start and then used by the
 * network thread only; a skald__tls_t belongs to its connection, on the
 * network thread.
 */
#ifndef SKALD_ACTORS_REMOTE_TLS_H
#define SKALD_ACTORS_REMOTE_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "skald/remote.h"

typedef struct skald__tls_ctx_s skald__tls_ctx_t;
typedef struct skald__tls_s skald__tls_t;

/* The size of the AUTH key a TLS connection derives (skald__tls_auth_key). */
#define SKALD__TLS_AUTH_KEY 32u

/*
 * Reads and checks the TLS configuration of cfg for the cluster named
 * cluster: the three certificate files if cfg names any, else the secret.
 * On success *out is the context (free with skald__tls_ctx_free). On
 * failure nothing is allocated, and the problem was logged at error level
 * naming the file and what is wrong with it. Errors: SKALD_EINVAL (neither
 * secret nor certificates, only some of the three files), libuv codes for
 * a file that cannot be opened (UV_ENOENT, UV_EACCES, UV_EISDIR...),
 * SKALD_ETLS (not PEM, no certificate or key in it, a certificate that does
 * not match the key, expired or not yet valid), SKALD_ENOMEM.
 */
int skald__tls_ctx_new(const skald_remote_config_t *cfg, const char *cluster,
                       skald__tls_ctx_t **out);
void skald__tls_ctx_free(skald__tls_ctx_t *ctx);

/*
 * The TLS state of one connection: client (the side that connected) or
 * server. A client's first flight (its ClientHello) is ready to be written
 * at once. NULL without memory.
 */
skald__tls_t *skald__tls_new(skald__tls_ctx_t *ctx, bool client);
void skald__tls_free(skald__tls_t *t);

/* The buffer libuv reads ciphertext into (alloc_cb); the bytes read are
 * then handed to skald__tls_input. Borrowed until skald__tls_free. */
uv_buf_t skald__tls_inbuf(skald__tls_t *t);

/*
 * Takes n bytes of ciphertext that libuv read into skald__tls_inbuf: drives
 * the handshake, then appends what it decrypts to the connection's read
 * buffer *buf of *len bytes and *cap capacity, growing it (by realloc). At
 * most n + 16 KiB of plaintext come out per call, so reading stays bounded
 * by what the socket delivered. Returns 0; UV_EOF when the peer closed TLS
 * (close_notify); SKALD_ENOMEM; or SKALD_ETLS when the handshake or a
 * record failed: the connection is unusable, skald__tls_why says why, and
 * an alert for the peer may be waiting in the output.
 */
int skald__tls_input(skald__tls_t *t, size_t n, uint8_t **buf, size_t *len, size_t *cap);

/* True once the handshake completed (frames may flow). */
bool skald__tls_ready(const skald__tls_t *t);
/* True after SKALD_ETLS: nothing more can be sent but the pending alert. */
bool skald__tls_failed(const skald__tls_t *t);
/* Why the connection failed, a sentence; and whether the peer said so (it
 * sent an alert) rather than this node finding it. Borrowed. */
const char *skald__tls_why(const skald__tls_t *t);
bool skald__tls_by_peer(const skald__tls_t *t);
/* True when the peer's first bytes were no TLS record at all: a peer of
 * another protocol (a tcp:// node at a tls:// port). */
bool skald__tls_peer_plain(const skald__tls_t *t);

/* Encrypts n bytes of frames, coalesced into records of up to 16 KiB with
 * the bytes of the next calls until skald__tls_output. 0 or SKALD_ETLS /
 * SKALD_ENOMEM (then the connection must close). Only once ready. */
int skald__tls_write(skald__tls_t *t, const uint8_t *p, size_t n);
/* True when ciphertext waits to be written (handshake messages, alerts,
 * records). */
bool skald__tls_pending(const skald__tls_t *t);
/* Seals what skald__tls_write took and hands out every ciphertext byte
 * waiting, in *out (len 0: nothing). The bytes are the tls's and must stay
 * untouched until the write completes: call again only after that.
 * Returns 0, SKALD_ETLS or SKALD_ENOMEM. */
int skald__tls_output(skald__tls_t *t, uv_buf_t *out);

/*
 * The key of the AUTH proof on this connection, once ready:
 * HMAC-SHA256(key = the TLS exporter "EXPORTER-skald-auth-v1" of 32 bytes,
 * message = the cluster secret, or nothing for a node without one). It
 * binds the proof to this TLS session, and a node with certificates and a
 * secret is only admitted by nodes with the same secret.
 */
const uint8_t *skald__tls_auth_key(const skald__tls_t *t);

/* True when the context is keyed by certificates. */
bool skald__tls_ctx_certs(const skald__tls_ctx_t *ctx);
/* True when the peer's certificate names node `name` (a DNS subject
 * alternative name, or the common name if there is none). Always true with
 * pre-shared keys: there, knowing the secret is the identity. */
bool skald__tls_peer_named(const skald__tls_t *t, const char *name);

#endif /* SKALD_ACTORS_REMOTE_TLS_H */
