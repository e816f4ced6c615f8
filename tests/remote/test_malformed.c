/*
 * tests/remote/test_malformed.c - bad input on a node's listening port: the
 * node closes that connection (refusing with a reason where it can) and
 * keeps working for everyone else.
 */
#include <signal.h>
#include <string.h>
#include <sys/socket.h>

#include "harness.h"
#include "raw.h"

TestSuite(malformed, .init = fixture_setup, .fini = fixture_teardown, .timeout = 60);

/* The node's handshake timeout: long, so that a connection closed within
 * CLOSE_MS was closed for its content, not for its silence. */
#define LONG_TIMEOUT_MS 30000
#define CLOSE_MS        5000

static node_t *start_node(unsigned timeout_ms)
{
	return node_start(
	        &(node_opts_t){.name = "b", .heartbeat_ms = 500, .timeout_ms = timeout_ms});
}

/* The node is alive, and a legitimate node can still connect and ask. */
static void node_still_serves(node_t *b)
{
	cr_assert(node_running(b), "the node died");
	skald_system_t *a = sys_start(NULL);
	skald_ref_t echo = lookup_on(a, b, "echo");
	uint64_t v = 0;
	cr_assert_eq(ask_u64(a, echo, t_int, 41, WAIT_MS, &v), 0);
	cr_assert_eq(v, 42);
	cr_assert_eq(ask_cmd(a, echo, CMD_COUNT), 1, "something else reached the echo");
	sys_stop(a);
	node_exit_clean(b);
}

/* The connection must close. A REFUSE on the way, if any, must give the
 * protocol error as its reason (whether it is sent at all when a write is
 * already under way is the business of test_auth.c's
 * a_refused_peer_is_told_why_even_right_after_its_hello). */
static void expect_refused_and_closed(raw_t *r, const char *what)
{
	int32_t why = 0;
	cr_assert(raw_closed_within(r, CLOSE_MS, &why), "%s: the node kept the connection", what);
	cr_assert(why == 0 || why == SKALD_EPROTO, "%s: refused with %s", what,
	          skald_err_name(why));
	raw_close(r);
}

Test(malformed, garbage_bytes_close_the_connection)
{
	node_t *b = start_node(LONG_TIMEOUT_MS);
	static raw_t r;

	/* Someone speaking HTTP: its first four bytes read as a huge length. */
	raw_connect(&r, b->port);
	const char *http = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
	cr_assert_eq(raw_send(&r, http, strlen(http)), 0);
	expect_refused_and_closed(&r, "HTTP request");

	/* Zeros: a length below the header's size. */
	raw_connect(&r, b->port);
	uint8_t zeros[64] = {0};
	cr_assert_eq(raw_send(&r, zeros, sizeof zeros), 0);
	expect_refused_and_closed(&r, "zeros");

	/* A plausible length and an unknown frame kind. */
	raw_connect(&r, b->port);
	uint8_t frame[64];
	size_t n = raw_frame(frame, &(raw_hdr_t){.kind = 200}, "xx", 2);
	cr_assert_eq(raw_send(&r, frame, n), 0);
	expect_refused_and_closed(&r, "unknown kind");
	node_still_serves(b);
}

Test(malformed, an_oversized_length_closes_the_connection_at_once)
{
	node_t *b = start_node(LONG_TIMEOUT_MS);
	static raw_t r;
	/* Just over the default maximum frame (8 MiB), and the largest
	 * possible: the node must refuse on reading the length, not wait for
	 * (or allocate) the rest. */
	static const uint32_t lengths[] = {(8u << 20) + 1u, 0xffffffffu};
	for (unsigned i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
		raw_connect(&r, b->port);
		uint8_t hdr[RAW_HEADER];
		raw_frame(hdr, &(raw_hdr_t){.kind = RAW_HELLO}, NULL, 0);
		hdr[0] = (uint8_t)(lengths[i] >> 24);
		hdr[1] = (uint8_t)(lengths[i] >> 16);
		hdr[2] = (uint8_t)(lengths[i] >> 8);
		hdr[3] = (uint8_t)lengths[i];
		cr_assert_eq(raw_send(&r, hdr, sizeof hdr), 0);
		expect_refused_and_closed(&r, "oversized length");
	}
	node_still_serves(b);
}

Test(malformed, a_truncated_frame_then_close_is_harmless)
{
	node_t *b = start_node(LONG_TIMEOUT_MS);
	static raw_t r;
	for (int i = 0; i < 20; i++) {
		raw_connect(&r, b->port);
		/* A frame that announces 1,000 payload bytes; 100 follow, then
		 * the end of the stream (or, every other time, a reset). */
		uint8_t frame[RAW_HEADER + 1000];
		memset(frame + RAW_HEADER, 0xab, 1000);
		raw_frame(frame, &(raw_hdr_t){.kind = RAW_HELLO}, frame + RAW_HEADER, 1000);
		cr_assert_eq(raw_send(&r, frame, RAW_HEADER + 100), 0);
		if (i % 2 == 0) {
			shutdown(r.fd, SHUT_WR);
			cr_assert(raw_closed_within(&r, CLOSE_MS, NULL),
			          "the node kept a half-closed connection");
		} else {
			struct linger l = {.l_onoff = 1, .l_linger = 0};
			setsockopt(r.fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
		}
		raw_close(&r);
	}
	node_still_serves(b);
}

Test(malformed, a_truncated_frame_left_open_is_closed_by_the_handshake_timeout)
{
	node_t *b = start_node(1500);
	static raw_t r;
	raw_connect(&r, b->port);
	uint8_t frame[RAW_HEADER + 1000];
	memset(frame + RAW_HEADER, 0xab, 1000);
	raw_frame(frame, &(raw_hdr_t){.kind = RAW_HELLO}, frame + RAW_HEADER, 1000);
	cr_assert_eq(raw_send(&r, frame, RAW_HEADER + 100), 0);
	cr_assert(raw_closed_within(&r, WAIT_MS, NULL), "a stalled handshake was kept open");
	raw_close(&r);
	node_still_serves(b);
}

Test(malformed, a_message_before_any_handshake_is_refused)
{
	node_t *b = start_node(LONG_TIMEOUT_MS);
	skald_ref_t echo = node_ref(b, "echo");
	static raw_t r;
	raw_connect(&r, b->port);
	/* Well-formed frames, in the wrong place: a TYPE and a TELL to the
	 * echo with no HELLO and no AUTH. */
	uint8_t out[256];
	size_t len = 0;
	uint8_t payload[8] = {0, 0, 0, 0, 0, 0, 0, 5};
	len += raw_frame(out + len, &(raw_hdr_t){.kind = RAW_TYPE, .type = 9}, "rt.int", 6);
	len += raw_frame(out + len,
	                 &(raw_hdr_t){.kind = RAW_TELL,
	                              .dst_actor = echo.actor,
	                              .dst_inc = echo.incarnation,
	                              .type = 9},
	                 payload, sizeof payload);
	cr_assert_eq(raw_send(&r, out, len), 0);
	expect_refused_and_closed(&r, "TYPE and TELL first");
	node_still_serves(b);
}

Test(malformed, a_message_between_hello_and_auth_is_refused)
{
	node_t *b = start_node(LONG_TIMEOUT_MS);
	skald_ref_t echo = node_ref(b, "echo");
	static raw_t r;
	raw_connect(&r, b->port);
	uint8_t nonce[RAW_NONCE] = {1, 2, 3};
	uint8_t hello[256], out[512];
	size_t hn = raw_hello(hello, 0x42, 0, 0, nonce, "raw", "skald");
	size_t len = raw_frame(out, &(raw_hdr_t){.kind = RAW_HELLO}, hello, hn);
	uint8_t payload[8] = {0, 0, 0, 0, 0, 0, 0, 5};
	len += raw_frame(out + len,
	                 &(raw_hdr_t){.kind = RAW_TELL,
	                              .dst_actor = echo.actor,
	                              .dst_inc = echo.incarnation,
	                              .type = 9},
	                 payload, sizeof payload);
	cr_assert_eq(raw_send(&r, out, len), 0);
	expect_refused_and_closed(&r, "TELL before AUTH");
	node_still_serves(b);
}

Test(malformed, a_malformed_hello_is_refused)
{
	node_t *b = start_node(LONG_TIMEOUT_MS);
	static raw_t r;
	uint8_t nonce[RAW_NONCE] = {9};
	uint8_t hello[256], out[512];

	/* A name length beyond the payload. */
	raw_connect(&r, b->port);
	size_t hn = raw_hello(hello, 0x42, 0, 0, nonce, "raw", "skald");
	hello[56] = 200;
	size_t len = raw_frame(out, &(raw_hdr_t){.kind = RAW_HELLO}, hello, hn);
	cr_assert_eq(raw_send(&r, out, len), 0);
	expect_refused_and_closed(&r, "name length beyond the payload");

	/* A bad magic. */
	raw_connect(&r, b->port);
	hn = raw_hello(hello, 0x42, 0, 0, nonce, "raw", "skald");
	memcpy(hello, "XXXX", 4);
	len = raw_frame(out, &(raw_hdr_t){.kind = RAW_HELLO}, hello, hn);
	cr_assert_eq(raw_send(&r, out, len), 0);
	expect_refused_and_closed(&r, "bad magic");

	/* Too short to hold anything. */
	raw_connect(&r, b->port);
	len = raw_frame(out, &(raw_hdr_t){.kind = RAW_HELLO}, "SKLD", 4);
	cr_assert_eq(raw_send(&r, out, len), 0);
	expect_refused_and_closed(&r, "short HELLO");

	/* The node's own id: a node talking to itself. */
	raw_connect(&r, b->port);
	hn = raw_hello(hello, b->id, 0, 0, nonce, "raw", "skald");
	len = raw_frame(out, &(raw_hdr_t){.kind = RAW_HELLO}, hello, hn);
	cr_assert_eq(raw_send(&r, out, len), 0);
	expect_refused_and_closed(&r, "the node's own id");
	node_still_serves(b);
}

Test(malformed, many_bad_connections_at_once_leave_the_node_working)
{
	node_t *b = start_node(LONG_TIMEOUT_MS);
	enum { CONNS = 32 };
	static raw_t r[CONNS];
	for (int i = 0; i < CONNS; i++)
		raw_connect(&r[i], b->port);
	for (int i = 0; i < CONNS; i++) {
		uint8_t junk[128];
		for (unsigned k = 0; k < sizeof junk; k++)
			junk[k] = (uint8_t)(k * 13u + (unsigned)i * 101u + 5u);
		/* The first byte keeps the length out of range. */
		junk[0] = 0xff;
		raw_send(&r[i], junk, sizeof junk);
	}
	for (int i = 0; i < CONNS; i++) {
		cr_assert(raw_closed_within(&r[i], CLOSE_MS, NULL), "connection %d kept open", i);
		raw_close(&r[i]);
	}
	node_still_serves(b);
}
