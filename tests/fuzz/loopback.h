/*
 * tests/fuzz/loopback.h - what the targets that fuzz a live server share:
 * one input sent over a fresh loopback connection. Header-only, since each
 * target is one file built on its own.
 */
#ifndef SKALD_TESTS_FUZZ_LOOPBACK_H
#define SKALD_TESTS_FUZZ_LOOPBACK_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

/* Connects to 127.0.0.1:port (aborts if the server stopped accepting: a
 * failure of the target), writes data, shuts the writing side, then reads
 * what the server says until it closes or 200 ms pass. */
static inline void fuzz_loopback_send(int port, const uint8_t *data, size_t size)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
		abort();
	size_t off = 0;
	while (off < size) {
		ssize_t w = send(fd, data + off, size - off, MSG_NOSIGNAL);
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	shutdown(fd, SHUT_WR);
	char buf[4096];
	struct pollfd p = {fd, POLLIN, 0};
	while (poll(&p, 1, 200) > 0) {
		if (read(fd, buf, sizeof buf) <= 0)
			break;
	}
	close(fd);
}

#endif /* SKALD_TESTS_FUZZ_LOOPBACK_H */
