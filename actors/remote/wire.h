/*
 * actors/remote/wire.h - the wire format between nodes, byte by byte.
 * Never installed. The one place that defines what crosses the network.
 *
 * Every integer is big-endian (network order). A connection carries a
 * sequence of frames; each frame is a fixed 40-byte header and a payload:
 *
 *   offset size field
 *   0      4    length     bytes that follow this field: 36 + payload size.
 *                          A length below 36, or above the configured
 *                          maximum frame size, closes the connection.
 *   4      1    kind       SKALD_WIRE_* below; unknown kinds close it
 *   5      1    flags      0 (reserved; ignored)
 *   6      2    reserved   0
 *   8      4    src_actor  slot of the sending actor (0: none)
 *   12     4    src_inc    its incarnation
 *   16     4    dst_actor  slot of the receiving actor (0: none)
 *   20     4    dst_inc    its incarnation
 *   24     4    type       message type id, as numbered by the SENDER; the
 *                          receiver learns the name of each id from a TYPE
 *                          frame that precedes its first use on the
 *                          connection, so nodes built separately agree by
 *                          name
 *   28     4    arg        DOWN, ASK_FAIL: the reason (a negative code as a
 *                          two's-complement int32); otherwise 0
 *   32     8    corr       ask correlation id (TELL with corr != 0 is an
 *                          ask; REPLY and ASK_FAIL answer it)
 *   40     ...  payload
 *
 * The node ids of source and destination are not in the frame: they are the
 * two ends of the connection, fixed by the handshake.
 *
 * Handshake (both sides send HELLO at once, then AUTH once they have the
 * peer's HELLO; nothing else is accepted before both AUTH are verified):
 *   HELLO payload:
 *     0   4   magic "SKLD"
 *     4   2   protocol version (SKALD_WIRE_VERSION)
 *     6   2   reserved 0
 *     8   8   node id (random per start: the node's incarnation)
 *     16  4   registry actor slot, 20 4 its incarnation (for lookups)
 *     24  32  nonce (random)
 *     56  1   name length N (1..63), then N bytes of node name
 *     ..  1   cluster length C (1..63), then C bytes of cluster name
 *     ..  1   address length A (0..63), then A bytes: the address the node
 *             listens at and can be reached by (`tcp://host:port` or
 *             `tls://host:port`), or
 *             nothing (A = 0) for a node that does not listen. New in
 *             version 2: the cluster membership answers a node at this
 *             address, and a JOIN comes from a node it has never reached.
 *   AUTH payload: 32 bytes, HMAC-SHA256 under a key K of
 *     "skald-auth-v1" | nonce of the RECEIVER of this AUTH (32 bytes)
 *     | node id of the sender (8) | node id of the receiver (8)
 *   so a proof is bound to this connection and cannot be replayed.
 *   On tcp:// K is the cluster secret's bytes. On tls:// the whole
 *   handshake runs inside TLS 1.3 (actors/remote/tls.h), and K is
 *   HMAC-SHA256(key = the session's TLS exporter value for the label
 *   "EXPORTER-skald-auth-v1", 32 bytes, no context; message = the
 *   cluster secret, or nothing for a node without one), which binds the
 *   proof to the TLS session.
 *   REFUSE payload: a reason as text (logged by the receiver), then close.
 *
 * After the handshake:
 *   TYPE      type = id, payload = the type's name (1..255 bytes)
 *   TELL      a message (payload = the type's encoding); an ask if corr
 *   REPLY     the reply to ask `corr` (payload = encoding)
 *   ASK_FAIL  ask `corr` failed with `arg` (e.g. no such actor)
 *   WATCH     src watches dst;  UNWATCH: no longer
 *   DOWN      src (an actor of the sender) stopped with `arg`; to dst
 *   STOP      stop dst (skald_stop across nodes)
 *   HEARTBEAT nothing; proves the sender alive
 *   CLUSTER   payload = one message of the cluster membership protocol,
 *             as docs/CLUSTER.md lays it out (actors/cluster/codec.c);
 *             the header's other fields are 0. A node without a cluster
 *             drops them.
 *
 * Versions: 1 had no address in HELLO and no CLUSTER frame. A node refuses
 * a peer of another version with REFUSE (SKALD_EVERSION) naming both.
 */
#ifndef SKALD_ACTORS_REMOTE_WIRE_H
#define SKALD_ACTORS_REMOTE_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define SKALD_WIRE_HEADER   40u
#define SKALD_WIRE_VERSION  2u
#define SKALD_WIRE_NONCE    32u
#define SKALD_WIRE_MAC      32u
#define SKALD_WIRE_NAME_MAX 63u

enum {
	SKALD_WIRE_HELLO = 1,
	SKALD_WIRE_AUTH = 2,
	SKALD_WIRE_REFUSE = 3,
	SKALD_WIRE_TYPE = 4,
	SKALD_WIRE_TELL = 5,
	SKALD_WIRE_REPLY = 6,
	SKALD_WIRE_ASK_FAIL = 7,
	SKALD_WIRE_WATCH = 8,
	SKALD_WIRE_UNWATCH = 9,
	SKALD_WIRE_DOWN = 10,
	SKALD_WIRE_STOP = 11,
	SKALD_WIRE_HEARTBEAT = 12,
	SKALD_WIRE_CLUSTER = 13,
	SKALD_WIRE_KIND_MAX = 13,
};

typedef struct skald__wire_hdr_s {
	uint32_t length; /* 36 + payload size */
	uint8_t kind;
	uint8_t flags;
	uint32_t src_actor, src_inc;
	uint32_t dst_actor, dst_inc;
	uint32_t type;
	int32_t arg;
	uint64_t corr;
} skald__wire_hdr_t;

typedef struct skald__wire_hello_s {
	uint16_t version;
	uint64_t node;
	uint32_t registry_actor, registry_inc;
	uint8_t nonce[SKALD_WIRE_NONCE];
	char name[SKALD_WIRE_NAME_MAX + 1];
	char cluster[SKALD_WIRE_NAME_MAX + 1];
	char addr[SKALD_WIRE_NAME_MAX + 1]; /* "" when the node does not listen */
} skald__wire_hello_t;

/* Writes h (with h->length set from payload_len) into out[40]. */
void skald__wire_put_hdr(uint8_t *out, const skald__wire_hdr_t *h, size_t payload_len);

/*
 * Parses the frame at the start of buf[0..len). Returns 0 when more bytes
 * are needed, 1 with *h set, *payload and *payload_len pointing into buf, and
 * *consumed the frame's total size, or SKALD_EPROTO for a frame that can
 * never be valid (length out of [36, max_frame], unknown kind). Reads
 * nothing beyond buf + len.
 */
int skald__wire_parse(const uint8_t *buf, size_t len, uint32_t max_frame, skald__wire_hdr_t *h,
                      const uint8_t **payload, size_t *payload_len, size_t *consumed);

/* HELLO payloads. encode writes at most SKALD_WIRE_HELLO_MAX bytes into out
 * and returns the size; decode returns 0 or SKALD_EPROTO. decode accepts a
 * HELLO without the address (version 1's) with addr set to "", so that the
 * version check can name both versions instead of calling it malformed. */
#define SKALD_WIRE_HELLO_MAX (56u + 3u * (1u + SKALD_WIRE_NAME_MAX))
size_t skald__wire_hello_encode(uint8_t *out, const skald__wire_hello_t *h);
int skald__wire_hello_decode(const uint8_t *p, size_t len, skald__wire_hello_t *h);

/* The AUTH proof for the peer: HMAC-SHA256(key of keylen bytes,
 * "skald-auth-v1" | peer_nonce | my node | peer node). Returns 0 or
 * SKALD_ENOMEM. */
int skald__wire_auth_mac(const void *key, size_t keylen, const uint8_t peer_nonce[SKALD_WIRE_NONCE],
                         uint64_t my_node, uint64_t peer_node, uint8_t out[SKALD_WIRE_MAC]);

/* Constant-time comparison of two MACs: 1 if equal. */
int skald__wire_mac_eq(const uint8_t *a, const uint8_t *b);

#endif /* SKALD_ACTORS_REMOTE_WIRE_H */
