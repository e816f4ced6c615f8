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
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <skald/skald.h>

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
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return 0;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)to)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
		abort(); /* the node stopped accepting: a failure */
	size_t off = 0;
	while (off < size) {
		ssize_t w = send(fd, data + off, size - off, MSG_NOSIGNAL);
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	shutdown(fd, SHUT_WR);
	/* Drain what the node says (its HELLO, maybe a REFUSE) until it closes
	 * or 200 ms pass. */
	char buf[4096];
	struct pollfd p = {fd, POLLIN, 0};
	while (poll(&p, 1, 200) > 0) {
		if (read(fd, buf, sizeof buf) <= 0)
			break;
	}
	close(fd);
	return 0;
}
