/*
 * tests/remote/raw.c - the hand-made wire peer (see raw.h).
 */
#include "raw.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "harness.h"

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)(v >> 32));
	put32(p + 4, (uint32_t)v);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) << 32 | get32(p + 4);
}

static struct sockaddr_in loopback(int port)
{
	struct sockaddr_in sa;
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return sa;
}

static void raw_init(raw_t *r, int fd)
{
	r->fd = fd;
	r->len = r->used = 0;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

void raw_connect(raw_t *r, int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0, "socket: %s", strerror(errno));
	struct sockaddr_in sa = loopback(port);
	int rc;
	do
		rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
	while (rc < 0 && errno == EINTR);
	cr_assert_eq(rc, 0, "connect to port %d: %s", port, strerror(errno));
	raw_init(r, fd);
}

int raw_listen(int *port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0, "socket: %s", strerror(errno));
	struct sockaddr_in sa = loopback(0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0, "bind: %s", strerror(errno));
	cr_assert_eq(listen(fd, 8), 0);
	socklen_t len = sizeof sa;
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

void raw_accept(raw_t *r, int lfd, int timeout_ms)
{
	struct pollfd p = {.fd = lfd, .events = POLLIN};
	int rc;
	do
		rc = poll(&p, 1, timeout_ms);
	while (rc < 0 && errno == EINTR);
	cr_assert_eq(rc, 1, "no connection within %d ms", timeout_ms);
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	cr_assert_geq(fd, 0, "accept: %s", strerror(errno));
	raw_init(r, fd);
}

void raw_close(raw_t *r)
{
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
}

int raw_send(raw_t *r, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n > 0) {
		/* MSG_NOSIGNAL: a peer that hung up is an outcome to check, not
		 * a reason for SIGPIPE to end the test. */
		ssize_t w = send(r->fd, b, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

size_t raw_frame(uint8_t *out, const raw_hdr_t *h, const void *payload, size_t len)
{
	put32(out, (uint32_t)(RAW_HEADER - 4 + len));
	out[4] = h->kind;
	out[5] = 0;
	out[6] = out[7] = 0;
	put32(out + 8, h->src_actor);
	put32(out + 12, h->src_inc);
	put32(out + 16, h->dst_actor);
	put32(out + 20, h->dst_inc);
	put32(out + 24, h->type);
	put32(out + 28, (uint32_t)h->arg);
	put64(out + 32, h->corr);
	if (len > 0)
		memcpy(out + RAW_HEADER, payload, len);
	return RAW_HEADER + len;
}

static size_t put_name(uint8_t *p, const char *s)
{
	size_t n = strlen(s);
	p[0] = (uint8_t)n;
	memcpy(p + 1, s, n);
	return n + 1;
}

size_t raw_hello(uint8_t *out, uint64_t node, uint32_t reg_actor, uint32_t reg_inc,
                 const uint8_t nonce[RAW_NONCE], const char *name, const char *cluster)
{
	memcpy(out, "SKLD", 4);
	out[4] = 0;
	out[5] = 2; /* protocol version 2 */
	out[6] = out[7] = 0;
	put64(out + 8, node);
	put32(out + 16, reg_actor);
	put32(out + 20, reg_inc);
	memcpy(out + 24, nonce, RAW_NONCE);
	size_t n = 56;
	n += put_name(out + n, name);
	n += put_name(out + n, cluster);
	out[n++] = 0; /* no listening address */
	return n;
}

int raw_hello_parse(const uint8_t *p, size_t n, uint64_t *node, uint8_t nonce[RAW_NONCE])
{
	if (n < 56 || memcmp(p, "SKLD", 4) != 0)
		return -1;
	*node = get64(p + 8);
	memcpy(nonce, p + 24, RAW_NONCE);
	return 0;
}

void raw_mac(const char *secret, const uint8_t receiver_nonce[RAW_NONCE], uint64_t sender,
             uint64_t receiver, uint8_t out[RAW_MAC])
{
	static const char label[] = "skald-auth-v1";
	uint8_t msg[sizeof label - 1 + RAW_NONCE + 16];
	memcpy(msg, label, sizeof label - 1);
	memcpy(msg + sizeof label - 1, receiver_nonce, RAW_NONCE);
	put64(msg + sizeof label - 1 + RAW_NONCE, sender);
	put64(msg + sizeof label - 1 + RAW_NONCE + 8, receiver);
	unsigned int len = 0;
	cr_assert_not_null(
	        HMAC(EVP_sha256(), secret, (int)strlen(secret), msg, sizeof msg, out, &len));
	cr_assert_eq(len, RAW_MAC);
}

/* Waits up to timeout_ms for bytes and appends them: 1 read something,
 * 0 closed, -1 timeout. */
static int fill(raw_t *r, int timeout_ms)
{
	struct pollfd p = {.fd = r->fd, .events = POLLIN};
	int rc;
	do
		rc = poll(&p, 1, timeout_ms);
	while (rc < 0 && errno == EINTR);
	if (rc == 0)
		return -1;
	cr_assert_eq(rc, 1, "poll: %s", strerror(errno));
	cr_assert_lt(r->len, sizeof r->buf, "a frame larger than the raw peer's buffer");
	ssize_t n;
	do
		n = recv(r->fd, r->buf + r->len, sizeof r->buf - r->len, 0);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return 0; /* EOF, or a reset (ECONNRESET): closed either way */
	r->len += (size_t)n;
	return 1;
}

int raw_read(raw_t *r, int timeout_ms, raw_hdr_t *h, const uint8_t **payload, size_t *len)
{
	if (r->used > 0) {
		memmove(r->buf, r->buf + r->used, r->len - r->used);
		r->len -= r->used;
		r->used = 0;
	}
	uint64_t end = now_ms() + (uint64_t)timeout_ms;
	for (;;) {
		if (r->len >= RAW_HEADER) {
			uint32_t length = get32(r->buf);
			cr_assert_geq(length, RAW_HEADER - 4, "the node sent a short frame");
			cr_assert_leq(length + 4, sizeof r->buf, "the node sent a huge frame");
			if (r->len >= length + 4) {
				h->kind = r->buf[4];
				h->src_actor = get32(r->buf + 8);
				h->src_inc = get32(r->buf + 12);
				h->dst_actor = get32(r->buf + 16);
				h->dst_inc = get32(r->buf + 20);
				h->type = get32(r->buf + 24);
				h->arg = (int32_t)get32(r->buf + 28);
				h->corr = get64(r->buf + 32);
				*payload = r->buf + RAW_HEADER;
				*len = length + 4 - RAW_HEADER;
				r->used = length + 4;
				return 1;
			}
		}
		uint64_t now = now_ms();
		if (now >= end)
			return -1;
		int rc = fill(r, (int)(end - now));
		if (rc <= 0)
			return rc;
	}
}

int raw_closed_within(raw_t *r, int timeout_ms, int32_t *refuse_arg)
{
	if (refuse_arg != NULL)
		*refuse_arg = 0;
	uint64_t end = now_ms() + (uint64_t)timeout_ms;
	for (;;) {
		uint64_t now = now_ms();
		if (now >= end)
			return 0;
		raw_hdr_t h;
		const uint8_t *p;
		size_t n;
		int rc = raw_read(r, (int)(end - now), &h, &p, &n);
		if (rc == 0)
			return 1;
		if (rc < 0)
			return 0;
		if (h.kind == RAW_REFUSE && refuse_arg != NULL)
			*refuse_arg = h.arg;
	}
}

size_t raw_drain(raw_t *r, int timeout_ms)
{
	size_t total = 0;
	static uint8_t sink[1 << 16];
	struct pollfd p = {.fd = r->fd, .events = POLLIN};
	while (poll(&p, 1, timeout_ms) == 1) {
		ssize_t n = recv(r->fd, sink, sizeof sink, MSG_DONTWAIT);
		if (n <= 0)
			break;
		total += (size_t)n;
		timeout_ms = 0;
	}
	return total;
}
