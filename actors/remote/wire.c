/*
 * actors/remote/wire.c - encoding and parsing of frames (see wire.h).
 *
 * Pure functions over byte buffers, with no I/O and no allocation, so that
 * the fuzz targets exercise exactly what the transport runs.
 */
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "actors/remote/wire.h"
#include "skald/error.h"

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

void skald__wire_put_hdr(uint8_t *out, const skald__wire_hdr_t *h, size_t payload_len)
{
	put32(out, (uint32_t)(SKALD_WIRE_HEADER - 4 + payload_len));
	out[4] = h->kind;
	out[5] = h->flags;
	out[6] = out[7] = 0;
	put32(out + 8, h->src_actor);
	put32(out + 12, h->src_inc);
	put32(out + 16, h->dst_actor);
	put32(out + 20, h->dst_inc);
	put32(out + 24, h->type);
	put32(out + 28, (uint32_t)h->arg);
	put64(out + 32, h->corr);
}

int skald__wire_parse(const uint8_t *buf, size_t len, uint32_t max_frame, skald__wire_hdr_t *h,
                      const uint8_t **payload, size_t *payload_len, size_t *consumed)
{
	if (len < 4)
		return 0;
	uint32_t length = get32(buf);
	/* Checked before waiting for the rest, so that a hostile length can
	 * never make the reader buffer without bound. */
	if (length < SKALD_WIRE_HEADER - 4 || length > max_frame)
		return SKALD_EPROTO;
	if (len < 5)
		return 0;
	if (buf[4] == 0 || buf[4] > SKALD_WIRE_KIND_MAX)
		return SKALD_EPROTO;
	if (len - 4 < length)
		return 0;
	h->length = length;
	h->kind = buf[4];
	h->flags = buf[5];
	h->src_actor = get32(buf + 8);
	h->src_inc = get32(buf + 12);
	h->dst_actor = get32(buf + 16);
	h->dst_inc = get32(buf + 20);
	h->type = get32(buf + 24);
	h->arg = (int32_t)get32(buf + 28);
	h->corr = get64(buf + 32);
	*payload = buf + SKALD_WIRE_HEADER;
	*payload_len = length - (SKALD_WIRE_HEADER - 4);
	*consumed = (size_t)length + 4;
	return 1;
}

static size_t put_name(uint8_t *p, const char *s)
{
	size_t n = strnlen(s, SKALD_WIRE_NAME_MAX);
	p[0] = (uint8_t)n;
	memcpy(p + 1, s, n);
	return n + 1;
}

size_t skald__wire_hello_encode(uint8_t *out, const skald__wire_hello_t *h)
{
	memcpy(out, "SKLD", 4);
	out[4] = (uint8_t)(h->version >> 8);
	out[5] = (uint8_t)h->version;
	out[6] = out[7] = 0;
	put64(out + 8, h->node);
	put32(out + 16, h->registry_actor);
	put32(out + 20, h->registry_inc);
	memcpy(out + 24, h->nonce, SKALD_WIRE_NONCE);
	size_t n = 56;
	n += put_name(out + n, h->name);
	n += put_name(out + n, h->cluster);
	n += put_name(out + n, h->addr);
	return n;
}

static int get_name(const uint8_t *p, size_t len, size_t *pos, char *out, int may_be_empty)
{
	if (*pos >= len)
		return SKALD_EPROTO;
	size_t n = p[*pos];
	if ((n == 0 && !may_be_empty) || n > SKALD_WIRE_NAME_MAX || len - *pos - 1 < n)
		return SKALD_EPROTO;
	memcpy(out, p + *pos + 1, n);
	out[n] = '\0';
	/* A NUL inside would make two different names compare equal. */
	if (strlen(out) != n)
		return SKALD_EPROTO;
	*pos += n + 1;
	return 0;
}

int skald__wire_hello_decode(const uint8_t *p, size_t len, skald__wire_hello_t *h)
{
	if (len < 56 || memcmp(p, "SKLD", 4) != 0)
		return SKALD_EPROTO;
	h->version = (uint16_t)(p[4] << 8 | p[5]);
	h->node = get64(p + 8);
	h->registry_actor = get32(p + 16);
	h->registry_inc = get32(p + 20);
	memcpy(h->nonce, p + 24, SKALD_WIRE_NONCE);
	size_t pos = 56;
	if (get_name(p, len, &pos, h->name, 0) < 0 || get_name(p, len, &pos, h->cluster, 0) < 0)
		return SKALD_EPROTO;
	h->addr[0] = '\0';
	if (pos < len && get_name(p, len, &pos, h->addr, 1) < 0)
		return SKALD_EPROTO;
	if (pos != len || h->node == 0)
		return SKALD_EPROTO;
	return 0;
}

int skald__wire_auth_mac(const void *key, size_t keylen, const uint8_t peer_nonce[SKALD_WIRE_NONCE],
                         uint64_t my_node, uint64_t peer_node, uint8_t out[SKALD_WIRE_MAC])
{
	static const char label[] = "skald-auth-v1";
	uint8_t msg[sizeof label - 1 + SKALD_WIRE_NONCE + 16];
	memcpy(msg, label, sizeof label - 1);
	memcpy(msg + sizeof label - 1, peer_nonce, SKALD_WIRE_NONCE);
	put64(msg + sizeof label - 1 + SKALD_WIRE_NONCE, my_node);
	put64(msg + sizeof label - 1 + SKALD_WIRE_NONCE + 8, peer_node);
	unsigned int outlen = 0;
	if (HMAC(EVP_sha256(), key, (int)keylen, msg, sizeof msg, out, &outlen) == NULL ||
	    outlen != SKALD_WIRE_MAC)
		return SKALD_ENOMEM;
	return 0;
}

int skald__wire_mac_eq(const uint8_t *a, const uint8_t *b)
{
	uint8_t d = 0;
	for (unsigned i = 0; i < SKALD_WIRE_MAC; i++)
		d |= (uint8_t)(a[i] ^ b[i]);
	return d == 0;
}
