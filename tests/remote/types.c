/*
 * tests/remote/types.c - the message types of the remote tests and their
 * codecs. Every process (the test and its nodes) registers them under the
 * same names, which is how nodes agree on types across the wire.
 */
#include <stdlib.h>
#include <string.h>

#include "harness.h"

uint32_t t_int, t_seq, t_cmd, t_str, t_blob, t_nocodec;
atomic_long blob_frees;

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* --- integers in the pointer ------------------------------------------- */

static int u64_encode(const void *payload, void **out, size_t *len)
{
	uint8_t *b = malloc(8);
	if (b == NULL)
		return SKALD_ENOMEM;
	put64(b, PAYLOAD_INT(payload));
	*out = b;
	*len = 8;
	return 0;
}

static int u64_decode(const void *data, size_t len, void **payload)
{
	if (len != 8)
		return SKALD_EDECODE;
	*payload = INT_PAYLOAD(get64(data));
	return 0;
}

/* --- strings ------------------------------------------------------------- */

char *str_dup(const char *s)
{
	size_t n = strlen(s);
	char *d = malloc(n + 1);
	if (d != NULL)
		memcpy(d, s, n + 1);
	return d;
}

static int str_encode(const void *payload, void **out, size_t *len)
{
	size_t n = strlen(payload);
	uint8_t *b = malloc(n ? n : 1);
	if (b == NULL)
		return SKALD_ENOMEM;
	memcpy(b, payload, n);
	*out = b;
	*len = n;
	return 0;
}

static int str_decode(const void *data, size_t len, void **payload)
{
	if (memchr(data, 0, len) != NULL)
		return SKALD_EDECODE;
	char *s = malloc(len + 1);
	if (s == NULL)
		return SKALD_ENOMEM;
	memcpy(s, data, len);
	s[len] = '\0';
	*payload = s;
	return 0;
}

/* --- blobs --------------------------------------------------------------- */

blob_t *blob_new(size_t len)
{
	blob_t *b = malloc(sizeof *b + len);
	if (b == NULL)
		return NULL;
	b->len = len;
	for (size_t i = 0; i < len; i++)
		b->data[i] = (uint8_t)(i * 31u + 7u);
	return b;
}

void blob_free(void *payload)
{
	atomic_fetch_add(&blob_frees, 1);
	free(payload);
}

static int blob_encode(const void *payload, void **out, size_t *len)
{
	const blob_t *b = payload;
	uint8_t *d = malloc(b->len ? b->len : 1);
	if (d == NULL)
		return SKALD_ENOMEM;
	memcpy(d, b->data, b->len);
	*out = d;
	*len = b->len;
	return 0;
}

static int blob_decode(const void *data, size_t len, void **payload)
{
	blob_t *b = malloc(sizeof *b + len);
	if (b == NULL)
		return SKALD_ENOMEM;
	b->len = len;
	memcpy(b->data, data, len);
	*payload = b;
	return 0;
}

static const skald_msgtype_t int_type = {
        .name = "rt.int", .encode = u64_encode, .decode = u64_decode};
static const skald_msgtype_t seq_type = {
        .name = "rt.seq", .encode = u64_encode, .decode = u64_decode};
static const skald_msgtype_t cmd_type = {
        .name = "rt.cmd", .encode = u64_encode, .decode = u64_decode};
static const skald_msgtype_t str_type = {
        .name = "rt.str", .free = free, .encode = str_encode, .decode = str_decode};
static const skald_msgtype_t blob_type = {
        .name = "rt.blob", .free = blob_free, .encode = blob_encode, .decode = blob_decode};
static const skald_msgtype_t nocodec_type = {.name = "rt.nocodec", .free = blob_free};

int types_register(void)
{
	int rc;
	if ((rc = skald_type_register(&int_type, &t_int)) < 0 ||
	    (rc = skald_type_register(&seq_type, &t_seq)) < 0 ||
	    (rc = skald_type_register(&cmd_type, &t_cmd)) < 0 ||
	    (rc = skald_type_register(&str_type, &t_str)) < 0 ||
	    (rc = skald_type_register(&blob_type, &t_blob)) < 0 ||
	    (rc = skald_type_register(&nocodec_type, &t_nocodec)) < 0)
		return rc;
	return 0;
}
