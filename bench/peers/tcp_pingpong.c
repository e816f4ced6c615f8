/*
 * Skald remote ping-pong benchmark -- raw TCP baseline (POSIX sockets).
 *
 * Usage:
 *   tcp_pingpong -m server [-H host] [-p port]
 *   tcp_pingpong -m client [-H host] [-p port] [-r R] [-n N] [-w W]
 *
 * The server accepts one connection and answers every ping with a pong; it
 * exits when the client sends "quit" or closes the connection.  The client
 * runs two phases over that connection and prints one line for each:
 *   latency    window=1 n=R time=<s>s <rate> round-trips/s rtt_us <stats>
 *   throughput window=W n=N time=<s>s <rate> round-trips/s rtt_us <stats>
 * with <stats> = "mean=.. p50=.. p90=.. p99=.. max=.." in microseconds.
 * The latency phase has one request in flight; the throughput phase keeps W
 * in flight, every reply letting the next request go, until N replies are in.
 * A request's round-trip time runs from its send to the arrival of its reply.
 * Percentiles are nearest-rank.
 *
 * This is the "one write per message" baseline: every message is 16 bytes
 * (type, magic, id), TCP_NODELAY is set on both ends, and each message, in
 * either direction, is passed to the kernel with its own write() -- requests
 * and replies are never coalesced in user space.  Reads take whatever has
 * arrived.  The client uses a non-blocking socket and poll(), so it never
 * blocks on a write while replies wait to be read; the server uses blocking
 * I/O.
 *
 * Build: cc -O2 -std=c11 tcp_pingpong.c -o tcp_pingpong
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

enum {
	MSG_SIZE = 16,
	MSG_PING = 1,
	MSG_PONG = 2,
	MSG_QUIT = 3,
};

#define MSG_MAGIC 0x534b5050u /* "SKPP" */

/* How long the client keeps retrying to connect while the server starts. */
#define CONNECT_RETRY_SECONDS 10

static const char *prog = "tcp_pingpong";

static void die(const char *what)
{
	fprintf(stderr, "%s: %s: %s\n", prog, what, strerror(errno));
	exit(1);
}

static void fail(const char *what)
{
	fprintf(stderr, "%s: %s\n", prog, what);
	exit(1);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------ wire format */

static void put_u32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static uint32_t get_u32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static void encode(unsigned char *msg, uint32_t type, uint64_t id)
{
	put_u32(msg, type);
	put_u32(msg + 4, MSG_MAGIC);
	put_u32(msg + 8, (uint32_t)(id >> 32));
	put_u32(msg + 12, (uint32_t)id);
}

/* Returns the message type, or 0 for a malformed message. */
static uint32_t decode(const unsigned char *msg, uint64_t *id)
{
	if (get_u32(msg + 4) != MSG_MAGIC)
		return 0;
	*id = (uint64_t)get_u32(msg + 8) << 32 | get_u32(msg + 12);
	return get_u32(msg);
}

/* ---------------------------------------------------------------- sockets */

static int resolve(const char *host, int port, struct sockaddr_storage *sa, socklen_t *len)
{
	struct addrinfo hints, *res;
	char service[16];
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(service, sizeof service, "%d", port);
	int rc = getaddrinfo(host, service, &hints, &res);
	if (rc != 0) {
		fprintf(stderr, "%s: %s: %s\n", prog, host, gai_strerror(rc));
		return -1;
	}
	memcpy(sa, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static void set_nodelay(int fd)
{
	int one = 1;
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0)
		die("setsockopt(TCP_NODELAY)");
}

static void write_all(int fd, const unsigned char *p, size_t len)
{
	while (len > 0) {
		ssize_t k = write(fd, p, len);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			die("write");
		}
		p += k;
		len -= (size_t)k;
	}
}

/* ----------------------------------------------------------------- server */

static int run_server(const char *host, int port)
{
	struct sockaddr_storage sa;
	socklen_t salen;
	if (resolve(host, port, &sa, &salen) < 0)
		return 1;
	int lfd = socket(sa.ss_family, SOCK_STREAM, 0);
	if (lfd < 0)
		die("socket");
	int one = 1;
	if (setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
		die("setsockopt(SO_REUSEADDR)");
	if (bind(lfd, (struct sockaddr *)&sa, salen) < 0)
		die("bind");
	if (listen(lfd, 1) < 0)
		die("listen");
	fprintf(stderr, "%s: listening on %s:%d\n", prog, host, port);

	int fd;
	while ((fd = accept(lfd, NULL, NULL)) < 0) {
		if (errno != EINTR)
			die("accept");
	}
	close(lfd);
	set_nodelay(fd);

	static unsigned char buf[65536];
	size_t have = 0;
	for (;;) {
		ssize_t k = read(fd, buf + have, sizeof buf - have);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ECONNRESET)
				break;
			die("read");
		}
		if (k == 0)
			break; /* client closed the connection */
		have += (size_t)k;
		size_t off = 0;
		for (; have - off >= MSG_SIZE; off += MSG_SIZE) {
			unsigned char *msg = buf + off;
			uint64_t id;
			uint32_t type = decode(msg, &id);
			if (type == MSG_QUIT) {
				close(fd);
				return 0;
			}
			if (type != MSG_PING)
				fail("malformed message from client");
			put_u32(msg, MSG_PONG);
			write_all(fd, msg, MSG_SIZE); /* one write per reply */
		}
		memmove(buf, buf + off, have - off);
		have -= off;
	}
	close(fd);
	return 0;
}

/* ----------------------------------------------------------------- client */

static int connect_with_retry(const char *host, int port)
{
	struct sockaddr_storage sa;
	socklen_t salen;
	if (resolve(host, port, &sa, &salen) < 0)
		exit(1);
	uint64_t deadline = now_ns() + (uint64_t)CONNECT_RETRY_SECONDS * 1000000000u;
	for (;;) {
		int fd = socket(sa.ss_family, SOCK_STREAM, 0);
		if (fd < 0)
			die("socket");
		if (connect(fd, (struct sockaddr *)&sa, salen) == 0)
			return fd;
		int err = errno;
		close(fd);
		if ((err != ECONNREFUSED && err != EINTR) || now_ns() > deadline) {
			errno = err;
			die("connect");
		}
		struct timespec pause = {0, 20 * 1000 * 1000};
		nanosleep(&pause, NULL);
	}
}

struct phase {
	long n;
	long window;
	double seconds;
	double *rtt_us;    /* rtt_us[id], filled when the reply to id arrives */
	uint64_t *sent_at; /* sent_at[id], in ns */
};

/*
 * Plays phase->n round trips over the non-blocking socket fd, with at most
 * phase->window requests in flight.  Request ids are 0 .. n-1.
 */
static void run_phase(int fd, struct phase *ph)
{
	static unsigned char rbuf[65536];
	size_t rhave = 0;
	unsigned char msg[MSG_SIZE];
	size_t msg_off = 0; /* bytes of msg already written (short writes) */
	long sent = 0, received = 0;

	uint64_t t0 = now_ns();
	for (;;) {
		/* Send while the window allows: one write() per message. */
		long limit = received + ph->window;
		if (limit > ph->n)
			limit = ph->n;
		while (sent < limit) {
			if (msg_off == 0) {
				encode(msg, MSG_PING, (uint64_t)sent);
				ph->sent_at[sent] = now_ns();
			}
			ssize_t k = write(fd, msg + msg_off, MSG_SIZE - msg_off);
			if (k < 0) {
				if (errno == EINTR)
					continue;
				if (errno == EAGAIN || errno == EWOULDBLOCK)
					break;
				die("write");
			}
			msg_off += (size_t)k;
			if (msg_off == MSG_SIZE) {
				msg_off = 0;
				sent++;
			}
		}
		if (received == ph->n)
			break;

		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (sent < limit)
			p.events |= POLLOUT;
		if (poll(&p, 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		if (!(p.revents & (POLLIN | POLLERR | POLLHUP)))
			continue;

		ssize_t k = read(fd, rbuf + rhave, sizeof rbuf - rhave);
		if (k < 0) {
			if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
				continue;
			die("read");
		}
		if (k == 0)
			fail("server closed the connection");
		uint64_t t = now_ns();
		rhave += (size_t)k;
		size_t off = 0;
		for (; rhave - off >= MSG_SIZE; off += MSG_SIZE) {
			uint64_t id;
			if (decode(rbuf + off, &id) != MSG_PONG || id >= (uint64_t)sent)
				fail("malformed reply from server");
			ph->rtt_us[id] = (double)(t - ph->sent_at[id]) / 1000.0;
			received++;
		}
		memmove(rbuf, rbuf + off, rhave - off);
		rhave -= off;
	}
	ph->seconds = (double)(now_ns() - t0) / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Nearest-rank percentile of the sorted array v[0..n-1]. */
static double percentile(const double *v, long n, double p)
{
	long rank = (long)ceil(p / 100.0 * (double)n);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return v[rank - 1];
}

static void report(const char *label, struct phase *ph)
{
	long n = ph->n;
	qsort(ph->rtt_us, (size_t)n, sizeof ph->rtt_us[0], cmp_double);
	double sum = 0;
	for (long i = 0; i < n; i++)
		sum += ph->rtt_us[i];
	printf("%-10s window=%ld n=%ld time=%.3fs %.0f round-trips/s rtt_us mean=%.1f p50=%.1f "
	       "p90=%.1f p99=%.1f max=%.1f\n",
	       label, ph->window, n, ph->seconds, (double)n / ph->seconds, sum / (double)n,
	       percentile(ph->rtt_us, n, 50), percentile(ph->rtt_us, n, 90),
	       percentile(ph->rtt_us, n, 99), ph->rtt_us[n - 1]);
	fflush(stdout);
}

static void alloc_phase(struct phase *ph, long n, long window)
{
	ph->n = n;
	ph->window = window;
	ph->seconds = 0;
	ph->rtt_us = calloc((size_t)n, sizeof ph->rtt_us[0]);
	ph->sent_at = calloc((size_t)n, sizeof ph->sent_at[0]);
	if (ph->rtt_us == NULL || ph->sent_at == NULL)
		fail("out of memory");
}

static int run_client(const char *host, int port, long r, long n, long w)
{
	int fd = connect_with_retry(host, port);
	set_nodelay(fd);
	int flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		die("fcntl(O_NONBLOCK)");

	struct phase lat, thr;
	alloc_phase(&lat, r, 1);
	alloc_phase(&thr, n, w);
	run_phase(fd, &lat);
	run_phase(fd, &thr);
	report("latency", &lat);
	report("throughput", &thr);

	/* Tell the server to stop; blocking mode for this last write. */
	if (fcntl(fd, F_SETFL, flags) < 0)
		die("fcntl");
	unsigned char quit[MSG_SIZE];
	encode(quit, MSG_QUIT, 0);
	write_all(fd, quit, MSG_SIZE);
	close(fd);
	free(lat.rtt_us);
	free(lat.sent_at);
	free(thr.rtt_us);
	free(thr.sent_at);
	return 0;
}

/* ------------------------------------------------------------------- main */

static void usage(void)
{
	fprintf(stderr,
	        "usage: %s -m server|client [-H host] [-p port] [-r R] [-n N] [-w W]\n"
	        "  defaults: -H 127.0.0.1 -p 47000 -r 10000 -n 200000 -w 1000\n",
	        prog);
	exit(2);
}

static long positive(const char *s)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < 1)
		usage();
	return v;
}

int main(int argc, char **argv)
{
	const char *mode = NULL;
	const char *host = "127.0.0.1";
	long port = 47000, r = 10000, n = 200000, w = 1000;
	int c;
	while ((c = getopt(argc, argv, "m:H:p:r:n:w:h")) != -1) {
		switch (c) {
		case 'm':
			mode = optarg;
			break;
		case 'H':
			host = optarg;
			break;
		case 'p':
			port = positive(optarg);
			break;
		case 'r':
			r = positive(optarg);
			break;
		case 'n':
			n = positive(optarg);
			break;
		case 'w':
			w = positive(optarg);
			break;
		default:
			usage();
		}
	}
	if (mode == NULL || optind != argc || port > 65535)
		usage();
	signal(SIGPIPE, SIG_IGN);
	if (strcmp(mode, "server") == 0)
		return run_server(host, (int)port);
	if (strcmp(mode, "client") == 0)
		return run_client(host, (int)port, r, n, w);
	usage();
	return 2;
}
