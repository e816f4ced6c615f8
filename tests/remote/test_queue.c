/*
 * tests/remote/test_queue.c - the outbound queue to a node is bounded: a
 * peer that stops reading makes sends fail with SKALD_EQUEUEFULL, the
 * sender keeps its payload, and sends succeed again once the peer reads.
 *
 * The peer is the hand-made one of raw.h: it completes the handshake as a
 * node would, then reads nothing.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "raw.h"

TestSuite(queue, .init = fixture_setup, .fini = fixture_teardown, .timeout = 60);

#define RAW_NODE  0x5eed5eed5eed5eedull
#define MAX_QUEUE 4096u
#define MSG_BYTES 1024u

Test(queue, a_peer_that_does_not_read_fills_the_queue_and_the_sender_sees_it)
{
	int port;
	int lfd = raw_listen(&port);
	/* No heartbeats come from the raw peer: a long timeout keeps the
	 * node from dropping it for silence during the test. */
	skald_system_t *a = sys_start(&(sys_opts_t){.max_queue = MAX_QUEUE, .timeout_ms = 60000});
	char addr[64];
	snprintf(addr, sizeof addr, "tcp://127.0.0.1:%d", port);
	cr_assert_eq(skald_connect(a, addr), 0);

	/* The handshake, by hand. */
	static raw_t r;
	raw_accept(&r, lfd, WAIT_MS);
	raw_hdr_t h;
	const uint8_t *p;
	size_t n;
	cr_assert_eq(raw_read(&r, WAIT_MS, &h, &p, &n), 1, "no HELLO from the node");
	cr_assert_eq(h.kind, RAW_HELLO);
	uint64_t a_node;
	uint8_t a_nonce[RAW_NONCE], my_nonce[RAW_NONCE];
	cr_assert_eq(raw_hello_parse(p, n, &a_node, a_nonce), 0);
	cr_assert_eq(a_node, skald_system_node(a));
	memset(my_nonce, 0x5a, sizeof my_nonce);
	uint8_t hello[256], mac[RAW_MAC], out[1024];
	size_t hn = raw_hello(hello, RAW_NODE, 1, 1, my_nonce, "sink", "skald");
	size_t len = raw_frame(out, &(raw_hdr_t){.kind = RAW_HELLO}, hello, hn);
	raw_mac(SECRET, a_nonce, RAW_NODE, a_node, mac);
	len += raw_frame(out + len, &(raw_hdr_t){.kind = RAW_AUTH}, mac, sizeof mac);
	cr_assert_eq(raw_send(&r, out, len), 0);
	uint64_t node = 0;
	int rc = skald_node_wait(a, addr, WAIT_MS, &node);
	cr_assert_eq(rc, 0, "the raw peer was not accepted: %s", skald_err_name(rc));
	cr_assert_eq(node, RAW_NODE);

	/* From now on the peer reads nothing. With a queue this small a burst
	 * alone can be refused for a moment, until the network thread writes;
	 * what a peer that does not read causes is a refusal that lasts, once
	 * the kernel's buffers (a few megabytes) are full. */
	skald_ref_t sink = {RAW_NODE, 9, 1};
	long sent = 0;
	blob_t *m = blob_new(MSG_BYTES);
	uint64_t end = now_ms() + WAIT_MS, refused_since = 0;
	for (;;) {
		cr_assert_leq(now_ms(), end, "no lasting SKALD_EQUEUEFULL after %ld messages",
		              sent);
		rc = skald_system_tell(a, sink, t_blob, m);
		if (rc == 0) {
			sent++;
			refused_since = 0;
			m = blob_new(MSG_BYTES);
			continue;
		}
		cr_assert_eq(rc, SKALD_EQUEUEFULL, "tell: %s", skald_err_name(rc));
		/* The refused payload is still the caller's: not freed. */
		cr_assert_eq(atomic_load(&blob_frees), sent, "%ld frees for %ld sent",
		             atomic_load(&blob_frees), sent);
		if (refused_since == 0)
			refused_since = now_ms();
		else if (now_ms() - refused_since >= QUIET_MS)
			break;
		/* Short: the network thread frees room within microseconds while
		 * the kernel still takes bytes. */
		nanosleep(&(struct timespec){.tv_nsec = 200000}, NULL);
	}
	cr_assert_gt(sent * MSG_BYTES, MAX_QUEUE, "refused before even the queue was full");

	/* Once the peer reads again, the queue drains and sends succeed. */
	end = now_ms() + WAIT_MS;
	for (;;) {
		cr_assert_leq(now_ms(), end, "the queue never drained");
		raw_drain(&r, 10);
		rc = skald_system_tell(a, sink, t_blob, m);
		if (rc == 0)
			break;
		cr_assert_eq(rc, SKALD_EQUEUEFULL, "tell: %s", skald_err_name(rc));
	}
	cr_log_info("%ld messages of %u bytes before the queue was full", sent, MSG_BYTES);
	raw_close(&r);
	close(lfd);
	sys_stop(a);
}
