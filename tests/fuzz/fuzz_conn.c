/*
 * tests/fuzz/fuzz_conn.c - libFuzzer target for a node's listening socket:
 * handshake, frame decoding and dispatch, as a hostile client would reach
 * them.
 *
 * One node runs for the whole fuzzing session; each input is written to it
 * over a fresh loopback connection, then the client reads until the node
 * closes the connection or a short timeout passes. A crash, an ASan report
 * or a hang in the node fails the run. Inputs may start with a valid HELLO
 * (the corpus seeds one), so the fuzzer also reaches the AUTH check.
 *
 * The node also listens on tls:// (keyed by its secret). An input that
 * starts with 0x16 (a TLS handshake record) goes there whole: the TLS
 * handshake on memory buffers and its failures. One that starts with 0xff
 * goes there without that byte: a peer that speaks no TLS at a tls:// port,
 * which is answered with a plain REFUSE. Every other input goes to the
 * tcp:// port.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <skald/skald.h>

#include "tests/fuzz/loopback.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int port, tls_port;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	skald_system_t *sys;
	skald_config_t cfg = {.threads = 1, .name = "fuzz"};
	skald_remote_config_t rc = {.secret = "fuzz", .cluster = "fuzz", .max_frame = 1u << 16};
	if (skald_system_new(&cfg, &sys) < 0 || skald_remote_start(sys, &rc) < 0 ||
	    skald_listen(sys, "tcp://127.0.0.1:0", &port) < 0 ||
	    skald_listen(sys, "tls://127.0.0.1:0", &tls_port) < 0)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int to = port;
	if (size > 0 && (data[0] == 0x16 || data[0] == 0xff)) {
		to = tls_port;
		if (data[0] == 0xff) {
			data++;
			size--;
		}
	}
	fuzz_loopback_send(to, data, size);
	return 0;
}
