/*
 * tests/fuzz/loopback.h - what the targets that fuzz a live server share:
 * one input sent over a fresh loopback connection. Header-only, since each
 * target is one file built on its own.
 */
#ifndef SKALD_TESTS_FUZZ_LOOPBACK_H
#define SKALD_TESTS_FUZZ_LOOPBACK_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Connects to 127.0.0.1:port, writes data, shuts the writing side, then
 * reads what the server says until it closes or 200 ms pass, and closes
 * with a reset (SO_LINGER 0), so that millions of connections leave no
 * TIME_WAIT behind to exhaust the loopback ports. A connection that cannot
 * be made for 2 s means the server stopped accepting: a failure of the
 * target (abort, after saying why). */
static inline void fuzz_loopback_send(int port, const uint8_t *data, size_t size)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int fd = -1;
	for (int tries = 0; fd < 0; tries++) {
		fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
			break;
		int err = errno;
		if (fd >= 0)
			close(fd);
		fd = -1;
		if (tries == 200) {
			fprintf(stderr, "fuzz: cannot connect to the server on port %d: %s\n", port,
			        strerror(err));
			abort();
		}
		usleep(10000);
	}
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
	struct linger lg = {1, 0};
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	close(fd);
}

#endif /* SKALD_TESTS_FUZZ_LOOPBACK_H */
