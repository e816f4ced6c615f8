/*
 * tests/remote/raw.h - a hand-made peer that speaks the wire format of
 * actors/remote/wire.h byte by byte, written from that documentation, to
 * send what a real node never would (garbage, lies, half frames) and to be
 * a peer that stops reading.
 *
 * Every call is bounded in time; failures of the test's own plumbing fail
 * the test.
 */
#ifndef SKALD_TESTS_REMOTE_RAW_H
#define SKALD_TESTS_REMOTE_RAW_H

#include <stddef.h>
#include <stdint.h>

#define RAW_HEADER 40u
#define RAW_NONCE  32u
#define RAW_MAC    32u

enum {
	RAW_HELLO = 1,
	RAW_AUTH = 2,
	RAW_REFUSE = 3,
	RAW_TYPE = 4,
	RAW_TELL = 5,
	RAW_REPLY = 6,
	RAW_HEARTBEAT = 12,
};

typedef struct raw_hdr_s {
	uint8_t kind;
	uint32_t src_actor, src_inc;
	uint32_t dst_actor, dst_inc;
	uint32_t type;
	int32_t arg;
	uint64_t corr;
} raw_hdr_t;

typedef struct raw_s {
	int fd;
	size_t len, used; /* bytes in buf; bytes of the frame returned last */
	uint8_t buf[1 << 16];
} raw_t;

/* A connection to 127.0.0.1:port. */
void raw_connect(raw_t *r, int port);
/* A listening socket on 127.0.0.1, port 0; the port in *port. */
int raw_listen(int *port);
/* Accepts one connection on lfd within timeout_ms. */
void raw_accept(raw_t *r, int lfd, int timeout_ms);
void raw_close(raw_t *r);

/* Sends all of p; 0, or a negative errno if the peer is gone. */
int raw_send(raw_t *r, const void *p, size_t n);

/* Writes a frame into out (which must hold RAW_HEADER + len); returns its
 * size. */
size_t raw_frame(uint8_t *out, const raw_hdr_t *h, const void *payload, size_t len);
/* Writes a HELLO payload into out (at least 56 + 2 * 64 bytes); returns its
 * size. */
size_t raw_hello(uint8_t *out, uint64_t node, uint32_t reg_actor, uint32_t reg_inc,
                 const uint8_t nonce[RAW_NONCE], const char *name, const char *cluster);
/* Reads node id and nonce from a HELLO payload; 0, or -1 if malformed. */
int raw_hello_parse(const uint8_t *p, size_t n, uint64_t *node, uint8_t nonce[RAW_NONCE]);
/* The AUTH payload a node `sender` owes node `receiver` whose HELLO carried
 * `receiver_nonce`. */
void raw_mac(const char *secret, const uint8_t receiver_nonce[RAW_NONCE], uint64_t sender,
             uint64_t receiver, uint8_t out[RAW_MAC]);

/* Reads the next frame: 1 with *h and the payload (valid until the next
 * call), 0 if the connection was closed (EOF or reset), -1 on timeout. */
int raw_read(raw_t *r, int timeout_ms, raw_hdr_t *h, const uint8_t **payload, size_t *len);
/* Reads and discards frames until the peer closes the connection; 1 if it
 * did within timeout_ms. If refuse_arg is not NULL, *refuse_arg gets the
 * reason of a REFUSE frame seen on the way (0 if none). */
int raw_closed_within(raw_t *r, int timeout_ms, int32_t *refuse_arg);
/* Reads and discards whatever bytes are available within timeout_ms;
 * returns how many. */
size_t raw_drain(raw_t *r, int timeout_ms);

#endif /* SKALD_TESTS_REMOTE_RAW_H */
