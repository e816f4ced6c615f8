/*
 * tests/remote/proxy.c - the man in the middle (see proxy.h).
 */
#include "proxy.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_PAIRS   8
#define CAPTURE_MAX (8u << 20)

typedef struct pair_s {
	int client, upstream; /* -1: closed */
} pair_t;

struct proxy_s {
	int lfd, port, upstream;
	int wake[2]; /* a byte on wake[1] ends the thread */
	pthread_t thread;
	pthread_mutex_t lock;
	pair_t pairs[MAX_PAIRS];
	atomic_int flip_armed, flipped;
	uint8_t *capture; /* under lock */
	size_t ncapture;
	atomic_size_t bytes;
};

static int connect_upstream(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void pair_close(pair_t *x)
{
	if (x->client >= 0)
		close(x->client);
	if (x->upstream >= 0)
		close(x->upstream);
	x->client = x->upstream = -1;
}

static void record(proxy_t *p, const uint8_t *b, size_t n)
{
	atomic_fetch_add(&p->bytes, n);
	pthread_mutex_lock(&p->lock);
	size_t k = CAPTURE_MAX - p->ncapture < n ? CAPTURE_MAX - p->ncapture : n;
	memcpy(p->capture + p->ncapture, b, k);
	p->ncapture += k;
	pthread_mutex_unlock(&p->lock);
}

/* Forwards what is readable on from to to; false when the pair is done. */
static bool forward(proxy_t *p, int from, int to, bool downstream)
{
	uint8_t buf[65536];
	ssize_t n = recv(from, buf, sizeof buf, 0);
	if (n <= 0)
		return false;
	record(p, buf, (size_t)n);
	int one = 1;
	if (downstream && atomic_compare_exchange_strong(&p->flip_armed, &one, 0)) {
		buf[n - 1] ^= 0x01;
		atomic_store(&p->flipped, 1);
	}
	for (ssize_t off = 0; off < n;) {
		ssize_t w = send(to, buf + off, (size_t)(n - off), MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		off += w;
	}
	return true;
}

static void *proxy_main(void *arg)
{
	proxy_t *p = arg;
	for (;;) {
		struct pollfd fds[2 + 2 * MAX_PAIRS];
		int idx[2 + 2 * MAX_PAIRS];
		nfds_t n = 0;
		fds[n++] = (struct pollfd){.fd = p->wake[0], .events = POLLIN};
		fds[n++] = (struct pollfd){.fd = p->lfd, .events = POLLIN};
		for (int i = 0; i < MAX_PAIRS; i++) {
			if (p->pairs[i].client < 0)
				continue;
			idx[n] = i;
			fds[n++] = (struct pollfd){.fd = p->pairs[i].client, .events = POLLIN};
			idx[n] = i;
			fds[n++] = (struct pollfd){.fd = p->pairs[i].upstream, .events = POLLIN};
		}
		if (poll(fds, n, -1) < 0 && errno != EINTR)
			break;
		if (fds[0].revents)
			break;
		if (fds[1].revents & POLLIN) {
			int c = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC);
			int u = c >= 0 ? connect_upstream(p->upstream) : -1;
			int slot = 0;
			while (slot < MAX_PAIRS && p->pairs[slot].client >= 0)
				slot++;
			if (c >= 0 && u >= 0 && slot < MAX_PAIRS) {
				p->pairs[slot] = (pair_t){c, u};
			} else {
				/* As a dead upstream would: the client sees a reset. */
				if (c >= 0)
					close(c);
				if (u >= 0)
					close(u);
			}
			continue; /* the pair indexes above are stale now */
		}
		for (nfds_t k = 2; k < n; k++) {
			if (fds[k].revents == 0)
				continue;
			pair_t *x = &p->pairs[idx[k]];
			if (x->client < 0)
				continue;
			bool from_client = fds[k].fd == x->client;
			bool ok = from_client ? forward(p, x->client, x->upstream, false)
			                      : forward(p, x->upstream, x->client, true);
			if (!ok)
				pair_close(x);
		}
	}
	for (int i = 0; i < MAX_PAIRS; i++)
		pair_close(&p->pairs[i]);
	return NULL;
}

proxy_t *proxy_start(int upstream)
{
	proxy_t *p = calloc(1, sizeof *p);
	cr_assert_not_null(p);
	p->capture = malloc(CAPTURE_MAX);
	cr_assert_not_null(p->capture);
	p->upstream = upstream;
	for (int i = 0; i < MAX_PAIRS; i++)
		p->pairs[i] = (pair_t){-1, -1};
	cr_assert_eq(pipe2(p->wake, O_CLOEXEC), 0);
	pthread_mutex_init(&p->lock, NULL);
	p->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(p->lfd, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(p->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
	cr_assert_eq(listen(p->lfd, 16), 0);
	socklen_t len = sizeof sa;
	cr_assert_eq(getsockname(p->lfd, (struct sockaddr *)&sa, &len), 0);
	p->port = ntohs(sa.sin_port);
	cr_assert_eq(pthread_create(&p->thread, NULL, proxy_main, p), 0);
	return p;
}

int proxy_port(const proxy_t *p)
{
	return p->port;
}

void proxy_flip_next(proxy_t *p)
{
	atomic_store(&p->flip_armed, 1);
}

bool proxy_flipped(proxy_t *p)
{
	return atomic_load(&p->flipped) != 0;
}

bool proxy_saw(proxy_t *p, const void *needle, size_t len)
{
	pthread_mutex_lock(&p->lock);
	bool found = memmem(p->capture, p->ncapture, needle, len) != NULL;
	pthread_mutex_unlock(&p->lock);
	return found;
}

size_t proxy_bytes(proxy_t *p)
{
	return atomic_load(&p->bytes);
}

void proxy_stop(proxy_t *p)
{
	cr_assert_eq(write(p->wake[1], "x", 1), 1);
	pthread_join(p->thread, NULL);
	close(p->lfd);
	close(p->wake[0]);
	close(p->wake[1]);
	pthread_mutex_destroy(&p->lock);
	free(p->capture);
	free(p);
}
