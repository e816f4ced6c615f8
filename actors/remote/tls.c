/*
 * actors/remote/tls.c - TLS 1.3 on memory BIOs for tls:// (see tls.h).
 *
 * Everything but skald__tls_ctx_new runs on the network thread. OpenSSL's
 * error queue is per thread, and SSL_get_error reads it: it is emptied
 * whenever a failure left something in it (fail(), ctx_fail()) and before
 * the calls of the handshake, so that the hot path of records (SSL_read,
 * SSL_write, which leave nothing behind when they succeed or only want
 * more bytes) needs no clearing of its own.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "actors/remote/tls.h"
#include "base/log.h"
#include "skald/error.h"

#define IN_CHUNK     65536
#define RECORD       16384 /* the largest TLS record's plaintext */
#define PSK_LEN      32
#define PSK_IDENTITY "skald-psk-v1"
#define PSK_SALT     "skald-tls-psk-v1"
#define AUTH_LABEL   "EXPORTER-skald-auth-v1"
/* TLS_AES_128_GCM_SHA256: the pre-shared key is bound to SHA-256, so only
 * the suites of that hash are offered; AES-GCM runs on AES-NI. */
#define PSK_SUITE ((const unsigned char *)"\x13\x01")
#define CIPHERS   "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256"
#define WHY_MAX   224

struct skald__tls_ctx_s {
	SSL_CTX *ssl;
	bool certs;
	char *secret; /* NULL: none (certificates only) */
	uint8_t psk[PSK_LEN];
};

struct skald__tls_s {
	skald__tls_ctx_t *ctx;
	SSL *ssl;
	BIO *rbio, *wbio; /* ciphertext from the socket; ciphertext for it */
	bool ready, failed, by_peer;
	bool client;
	bool hello_seen;  /* a server read a whole ClientHello */
	bool psk_offered; /* it offered a pre-shared key */
	bool got_bytes;
	uint8_t first; /* the first byte the peer sent */
	char why[WHY_MAX];
	uint8_t auth_key[SKALD__TLS_AUTH_KEY];
	size_t nstage;
	uint8_t *out; /* ciphertext handed to the socket */
	size_t outcap;
	uint8_t stage[RECORD]; /* frames waiting to be sealed */
	uint8_t in[IN_CHUNK];  /* ciphertext read by libuv */
};

/* ------------------------------------------------------------------------ */
/* The context                                                               */

/* The reason of the oldest error OpenSSL queued, or fallback. */
static const char *ssl_reason(const char *fallback)
{
	unsigned long e = ERR_peek_error();
	const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;
	return r != NULL ? r : fallback;
}

static int ctx_fail(int rc, const char *fmt, const char *a, const char *b)
{
	char msg[512];
	snprintf(msg, sizeof msg, fmt, a, b);
	SKALD_LOG(SKALD_LOG_ERROR, "remote: TLS configuration: %s", msg);
	ERR_clear_error();
	return rc;
}

/* Whether path can be read at all: the error a user can act on (missing,
 * no permission, a directory) before OpenSSL's parse errors. */
static int readable(const char *what, const char *path)
{
	FILE *f = fopen(path, "r");
	int err = f == NULL ? errno : 0, c = EOF;
	if (f != NULL) {
		/* A directory opens for reading on Linux; its first read fails. */
		c = fgetc(f);
		if (ferror(f))
			err = errno;
		fclose(f);
	}
	if (err != 0) {
		SKALD_LOG(SKALD_LOG_ERROR, "remote: TLS configuration: %s %s cannot be read: %s",
		          what, path, strerror(err));
		return -err; /* libuv's codes are the negated errno values */
	}
	if (c == EOF)
		return ctx_fail(SKALD_ETLS, "%s %s is empty", what, path);
	return 0;
}

/* The time t as text ("Jan  2 15:04:05 2026 GMT"). */
static void time_str(const ASN1_TIME *t, char *buf, size_t len)
{
	BIO *m = BIO_new(BIO_s_mem());
	buf[0] = '\0';
	if (m == NULL)
		return;
	if (ASN1_TIME_print(m, t) == 1) {
		int n = BIO_read(m, buf, (int)len - 1);
		buf[n > 0 ? n : 0] = '\0';
	}
	BIO_free(m);
}

static int load_certs(SSL_CTX *ssl, const skald_remote_config_t *cfg)
{
	int rc;
	if ((rc = readable("CA file (tls_ca_file)", cfg->tls_ca_file)) < 0 ||
	    (rc = readable("certificate file (tls_cert_file)", cfg->tls_cert_file)) < 0 ||
	    (rc = readable("key file (tls_key_file)", cfg->tls_key_file)) < 0)
		return rc;
	ERR_clear_error();
	if (SSL_CTX_load_verify_locations(ssl, cfg->tls_ca_file, NULL) != 1)
		return ctx_fail(SKALD_ETLS,
		                "CA file %s holds no PEM certificate OpenSSL can read (%s)",
		                cfg->tls_ca_file, ssl_reason("no certificate"));
	if (SSL_CTX_use_certificate_chain_file(ssl, cfg->tls_cert_file) != 1)
		return ctx_fail(
		        SKALD_ETLS,
		        "certificate file %s holds no PEM certificate OpenSSL can read (%s)",
		        cfg->tls_cert_file, ssl_reason("no certificate"));
	if (SSL_CTX_use_PrivateKey_file(ssl, cfg->tls_key_file, SSL_FILETYPE_PEM) != 1) {
		/* OpenSSL reports a key of another certificate here too. */
		unsigned long e = ERR_peek_error();
		if (ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH ||
		    ERR_GET_REASON(e) == X509_R_KEY_TYPE_MISMATCH)
			return ctx_fail(
			        SKALD_ETLS,
			        "the certificate in %s does not match the private key in %s",
			        cfg->tls_cert_file, cfg->tls_key_file);
		return ctx_fail(SKALD_ETLS,
		                "key file %s holds no PEM private key OpenSSL can read (%s)",
		                cfg->tls_key_file, ssl_reason("no key"));
	}
	if (SSL_CTX_check_private_key(ssl) != 1)
		return ctx_fail(SKALD_ETLS,
		                "the certificate in %s does not match the private key in %s",
		                cfg->tls_cert_file, cfg->tls_key_file);
	X509 *cert = SSL_CTX_get0_certificate(ssl);
	char when[64], msg[256];
	if (X509_cmp_current_time(X509_get0_notAfter(cert)) <= 0) {
		time_str(X509_get0_notAfter(cert), when, sizeof when);
		snprintf(msg, sizeof msg, "expired on %s: peers would refuse it", when);
		return ctx_fail(SKALD_ETLS, "the certificate in %s %s", cfg->tls_cert_file, msg);
	}
	if (X509_cmp_current_time(X509_get0_notBefore(cert)) > 0) {
		time_str(X509_get0_notBefore(cert), when, sizeof when);
		snprintf(msg, sizeof msg, "is not valid before %s: peers would refuse it", when);
		return ctx_fail(SKALD_ETLS, "the certificate in %s %s", cfg->tls_cert_file, msg);
	}
	/* Both ends verify: mutual TLS. */
	SSL_CTX_set_verify(ssl, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	return 0;
}

static int derive_psk(const char *secret, const char *cluster, uint8_t out[PSK_LEN])
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *k = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
	EVP_KDF_free(kdf);
	if (k == NULL)
		return SKALD_ENOMEM;
	OSSL_PARAM params[] = {
	        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA256", 0),
	        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret,
	                                          strlen(secret)),
	        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, PSK_SALT,
	                                          sizeof PSK_SALT - 1),
	        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)cluster,
	                                          strlen(cluster)),
	        OSSL_PARAM_construct_end(),
	};
	int ok = EVP_KDF_derive(k, out, PSK_LEN, params);
	EVP_KDF_CTX_free(k);
	return ok == 1 ? 0 : SKALD_ENOMEM;
}

/* A session that carries the pre-shared key, for one handshake (OpenSSL
 * frees it). */
static SSL_SESSION *psk_session(SSL *ssl, const skald__tls_ctx_t *ctx)
{
	const SSL_CIPHER *suite = SSL_CIPHER_find(ssl, PSK_SUITE);
	SSL_SESSION *s = SSL_SESSION_new();
	if (s == NULL || suite == NULL || SSL_SESSION_set1_master_key(s, ctx->psk, PSK_LEN) != 1 ||
	    SSL_SESSION_set_cipher(s, suite) != 1 ||
	    SSL_SESSION_set_protocol_version(s, TLS1_3_VERSION) != 1) {
		SSL_SESSION_free(s);
		return NULL;
	}
	return s;
}

static int psk_use(SSL *ssl, const EVP_MD *md, const unsigned char **id, size_t *idlen,
                   SSL_SESSION **sess)
{
	skald__tls_t *t = SSL_get_app_data(ssl);
	SSL_SESSION *s = psk_session(ssl, t->ctx);
	if (s == NULL)
		return 0;
	if (md != NULL && md != SSL_CIPHER_get_handshake_digest(SSL_SESSION_get0_cipher(s))) {
		/* The server chose a suite of another hash: no key fits it. */
		SSL_SESSION_free(s);
		*sess = NULL;
		*id = NULL;
		*idlen = 0;
		return 1;
	}
	*sess = s;
	*id = (const unsigned char *)PSK_IDENTITY;
	*idlen = sizeof PSK_IDENTITY - 1;
	return 1;
}

static int psk_find(SSL *ssl, const unsigned char *id, size_t idlen, SSL_SESSION **sess)
{
	skald__tls_t *t = SSL_get_app_data(ssl);
	*sess = NULL;
	t->psk_offered = true;
	if (t->ctx->certs)
		return 1; /* noted, for the reason of the failure to come */
	if (idlen != sizeof PSK_IDENTITY - 1 || memcmp(id, PSK_IDENTITY, idlen) != 0) {
		snprintf(t->why, sizeof t->why,
		         "the peer offered a pre-shared key that is not Skald's (\"%.*s\")",
		         (int)(idlen < 64 ? idlen : 64), (const char *)id);
		return 1; /* no key: the handshake fails for want of one */
	}
	*sess = psk_session(ssl, t->ctx);
	return *sess != NULL;
}

/* Marks that the peer's first flight was a TLS ClientHello, so that a
 * failure after it can be about keys rather than about bytes. */
static int hello_seen(SSL *ssl, int *alert, void *arg)
{
	skald__tls_t *t = SSL_get_app_data(ssl);
	t->hello_seen = true;
	return SSL_CLIENT_HELLO_SUCCESS;
}

int skald__tls_ctx_new(const skald_remote_config_t *cfg, const char *cluster,
                       skald__tls_ctx_t **out)
{
	*out = NULL;
	int nfiles = (cfg->tls_ca_file != NULL) + (cfg->tls_cert_file != NULL) +
	             (cfg->tls_key_file != NULL);
	bool secret = cfg->secret != NULL && cfg->secret[0] != '\0';
	if (nfiles == 0 && !secret) {
		SKALD_LOG(SKALD_LOG_ERROR,
		          "remote: no key material: set a cluster secret (tcp://, and tls:// keyed "
		          "by "
		          "it) or tls_ca_file, tls_cert_file and tls_key_file (tls:// with "
		          "certificates)");
		return SKALD_EINVAL;
	}
	if (nfiles != 0 && nfiles != 3) {
		SKALD_LOG(SKALD_LOG_ERROR,
		          "remote: TLS configuration: tls_ca_file, tls_cert_file and tls_key_file "
		          "go together; missing:%s%s%s",
		          cfg->tls_ca_file ? "" : " tls_ca_file",
		          cfg->tls_cert_file ? "" : " tls_cert_file",
		          cfg->tls_key_file ? "" : " tls_key_file");
		return SKALD_EINVAL;
	}
	skald__tls_ctx_t *ctx = calloc(1, sizeof *ctx);
	if (ctx == NULL)
		return SKALD_ENOMEM;
	ctx->certs = nfiles == 3;
	if (secret && (ctx->secret = strdup(cfg->secret)) == NULL) {
		free(ctx);
		return SKALD_ENOMEM;
	}
	ERR_clear_error();
	ctx->ssl = SSL_CTX_new(TLS_method());
	int rc = ctx->ssl != NULL ? 0 : SKALD_ENOMEM;
	if (rc == 0 && (SSL_CTX_set_min_proto_version(ctx->ssl, TLS1_3_VERSION) != 1 ||
	                SSL_CTX_set_ciphersuites(ctx->ssl, CIPHERS) != 1))
		rc = SKALD_ENOMEM;
	if (rc == 0) {
		/* No tickets, no session cache: nothing to resume, nothing to
		 * keep, and no message after the handshake but ours. */
		SSL_CTX_set_options(ctx->ssl, SSL_OP_NO_TICKET);
		SSL_CTX_set_num_tickets(ctx->ssl, 0);
		SSL_CTX_set_session_cache_mode(ctx->ssl, SSL_SESS_CACHE_OFF);
		/* With certificates too: a peer keyed by the secret is then
		 * told apart from one with a bad certificate. */
		SSL_CTX_set_psk_find_session_callback(ctx->ssl, psk_find);
		SSL_CTX_set_client_hello_cb(ctx->ssl, hello_seen, NULL);
		if (ctx->certs) {
			rc = load_certs(ctx->ssl, cfg);
		} else {
			rc = derive_psk(cfg->secret, cluster, ctx->psk);
			SSL_CTX_set_psk_use_session_callback(ctx->ssl, psk_use);
		}
	}
	if (rc < 0) {
		skald__tls_ctx_free(ctx);
		return rc;
	}
	*out = ctx;
	return 0;
}

void skald__tls_ctx_free(skald__tls_ctx_t *ctx)
{
	if (ctx == NULL)
		return;
	SSL_CTX_free(ctx->ssl);
	OPENSSL_cleanse(ctx->psk, sizeof ctx->psk);
	if (ctx->secret != NULL) {
		OPENSSL_cleanse(ctx->secret, strlen(ctx->secret));
		free(ctx->secret);
	}
	free(ctx);
}

bool skald__tls_ctx_certs(const skald__tls_ctx_t *ctx)
{
	return ctx->certs;
}

/* ------------------------------------------------------------------------ */
/* Connections                                                               */

skald__tls_t *skald__tls_new(skald__tls_ctx_t *ctx, bool client)
{
	skald__tls_t *t = calloc(1, sizeof *t);
	if (t == NULL)
		return NULL;
	t->ctx = ctx;
	t->client = client;
	ERR_clear_error();
	t->ssl = SSL_new(ctx->ssl);
	t->rbio = BIO_new(BIO_s_mem());
	t->wbio = BIO_new(BIO_s_mem());
	if (t->ssl == NULL || t->rbio == NULL || t->wbio == NULL) {
		BIO_free(t->rbio);
		BIO_free(t->wbio);
		SSL_free(t->ssl);
		free(t);
		return NULL;
	}
	/* An empty input is "wait for more", not the end of the stream. */
	BIO_set_mem_eof_return(t->rbio, -1);
	SSL_set_bio(t->ssl, t->rbio, t->wbio);
	SSL_set_app_data(t->ssl, t);
	if (client) {
		SSL_set_connect_state(t->ssl);
		/* With a pre-shared key the server shows no certificate; if one
		 * comes anyway, an empty trust store refuses it. */
		if (!ctx->certs)
			SSL_set_verify(t->ssl, SSL_VERIFY_PEER, NULL);
		SSL_do_handshake(t->ssl); /* writes the ClientHello */
		ERR_clear_error();
	} else {
		SSL_set_accept_state(t->ssl);
	}
	return t;
}

void skald__tls_free(skald__tls_t *t)
{
	if (t == NULL)
		return;
	SSL_free(t->ssl); /* frees both BIOs */
	OPENSSL_cleanse(t->auth_key, sizeof t->auth_key);
	free(t->out);
	free(t);
}

uv_buf_t skald__tls_inbuf(skald__tls_t *t)
{
	return uv_buf_init((char *)t->in, sizeof t->in);
}

bool skald__tls_ready(const skald__tls_t *t)
{
	return t->ready;
}

bool skald__tls_failed(const skald__tls_t *t)
{
	return t->failed;
}

const char *skald__tls_why(const skald__tls_t *t)
{
	return t->why;
}

bool skald__tls_by_peer(const skald__tls_t *t)
{
	return t->by_peer;
}

bool skald__tls_peer_plain(const skald__tls_t *t)
{
	return t->got_bytes && t->first != 0x16 && t->first != 0x15;
}

const uint8_t *skald__tls_auth_key(const skald__tls_t *t)
{
	return t->auth_key;
}

/* Records why the connection failed, from OpenSSL's error queue and the
 * verification result, in words that point at the usual causes. */
static int fail(skald__tls_t *t, int err)
{
	t->failed = true;
	unsigned long e = ERR_peek_error();
	int reason = ERR_GET_REASON(e);
	const char *what = ssl_reason(err == SSL_ERROR_SYSCALL ? "unexpected end of the stream"
	                                                       : "unknown error");
	/* Received alerts are reasons SSL_AD_REASON_OFFSET + the alert. */
	t->by_peer = e != 0 && reason >= SSL_AD_REASON_OFFSET;
	char hint[WHY_MAX];
	hint[0] = '\0';
	long verify = SSL_get_verify_result(t->ssl);
	/* A server whose key differs refuses the client's binder with
	 * illegal_parameter (OpenSSL 3.0) or decrypt_error. */
	bool psk_refused = t->by_peer && !t->ready &&
	                   (reason == SSL_AD_REASON_OFFSET + SSL_AD_ILLEGAL_PARAMETER ||
	                    reason == SSL_AD_REASON_OFFSET + SSL_AD_DECRYPT_ERROR);
	bool certs = t->ctx->certs;
	if (skald__tls_peer_plain(t) && !t->ready)
		snprintf(hint, sizeof hint,
		         "the peer does not speak TLS (a tcp:// node at a tls:// address, or the "
		         "reverse?)");
	else if (!certs && t->client && reason == SSL_R_CERTIFICATE_VERIFY_FAILED)
		snprintf(hint, sizeof hint,
		         "the peer shows a certificate: it is keyed by certificates, and this node "
		         "by the cluster secret");
	else if (!certs && !t->client && t->hello_seen && !t->psk_offered && !t->ready)
		snprintf(
		        hint, sizeof hint,
		        "the peer offered no pre-shared key: it is keyed by certificates, and this "
		        "node by the cluster secret (%s)",
		        what);
	else if (certs && t->client && !t->ready &&
	         reason == SSL_AD_REASON_OFFSET + SSL_AD_HANDSHAKE_FAILURE)
		snprintf(hint, sizeof hint,
		         "the peer refused it: %s (is it keyed by the cluster secret, with no "
		         "certificate to show?)",
		         what);
	else if (certs && !t->client && t->psk_offered && !t->ready)
		snprintf(
		        hint, sizeof hint,
		        "the peer offered a pre-shared key: it is keyed by the cluster secret, and "
		        "this node by certificates (%s)",
		        what);
	else if (reason == SSL_R_CERTIFICATE_VERIFY_FAILED && verify != X509_V_OK)
		snprintf(hint, sizeof hint, "the peer's certificate is refused: %s",
		         X509_verify_cert_error_string(verify));
	else if (reason == SSL_R_BINDER_DOES_NOT_VERIFY || (psk_refused && !certs))
		snprintf(hint, sizeof hint,
		         "the pre-shared keys differ: the peer has another cluster secret or "
		         "cluster name (%s)",
		         what);
	else if (t->why[0] != '\0') /* set by psk_find */
		snprintf(hint, sizeof hint, "%.*s (%s)", WHY_MAX / 2, t->why, what);
	else if (t->by_peer)
		snprintf(hint, sizeof hint, "the peer refused it: %s", what);
	else
		snprintf(hint, sizeof hint, "%s", what);
	snprintf(t->why, sizeof t->why, "%s", hint);
	ERR_clear_error();
	return SKALD_ETLS;
}

static int handshake(skald__tls_t *t)
{
	ERR_clear_error();
	int rc = SSL_do_handshake(t->ssl);
	if (rc == 1) {
		t->ready = true;
		uint8_t exported[32];
		const char *secret = t->ctx->secret != NULL ? t->ctx->secret : "";
		unsigned int len = 0;
		if (SSL_export_keying_material(t->ssl, exported, sizeof exported, AUTH_LABEL,
		                               sizeof AUTH_LABEL - 1, NULL, 0, 0) != 1 ||
		    HMAC(EVP_sha256(), exported, sizeof exported, (const unsigned char *)secret,
		         strlen(secret), t->auth_key, &len) == NULL ||
		    len != SKALD__TLS_AUTH_KEY)
			return fail(t, SSL_ERROR_SSL);
		OPENSSL_cleanse(exported, sizeof exported);
		return 0;
	}
	int err = SSL_get_error(t->ssl, rc);
	if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
		return 0;
	return fail(t, err);
}

int skald__tls_input(skald__tls_t *t, size_t n, uint8_t **buf, size_t *len, size_t *cap)
{
	if (t->failed)
		return SKALD_ETLS;
	if (n > 0 && !t->got_bytes) {
		t->got_bytes = true;
		t->first = t->in[0];
	}
	if (BIO_write(t->rbio, t->in, (int)n) != (int)n)
		return SKALD_ENOMEM;
	if (!t->ready) {
		int rc = handshake(t);
		if (rc < 0 || !t->ready)
			return rc;
	}
	for (;;) {
		if (*cap - *len < RECORD) {
			size_t ncap = *len + 4 * RECORD;
			uint8_t *b = realloc(*buf, ncap);
			if (b == NULL)
				return SKALD_ENOMEM;
			*buf = b;
			*cap = ncap;
		}
		size_t got = 0;
		if (SSL_read_ex(t->ssl, *buf + *len, *cap - *len, &got) == 1) {
			*len += got;
			/* Most reads hold whole records: no call to learn that
			 * nothing is left. */
			if (BIO_ctrl_pending(t->rbio) == 0 && SSL_pending(t->ssl) == 0)
				return 0;
			continue;
		}
		int err = SSL_get_error(t->ssl, 0);
		if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
			return 0;
		if (err == SSL_ERROR_ZERO_RETURN)
			return UV_EOF;
		return fail(t, err);
	}
}

static int seal(skald__tls_t *t)
{
	if (t->nstage == 0)
		return 0;
	size_t done = 0;
	/* A memory BIO takes everything: the write is whole or fails. */
	if (SSL_write_ex(t->ssl, t->stage, t->nstage, &done) != 1 || done != t->nstage)
		return fail(t, SSL_get_error(t->ssl, 0));
	t->nstage = 0;
	return 0;
}

int skald__tls_write(skald__tls_t *t, const uint8_t *p, size_t n)
{
	if (t->failed || !t->ready)
		return SKALD_ETLS;
	while (n > 0) {
		size_t k = RECORD - t->nstage < n ? RECORD - t->nstage : n;
		memcpy(t->stage + t->nstage, p, k);
		t->nstage += k;
		p += k;
		n -= k;
		if (t->nstage == RECORD) {
			int rc = seal(t);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

bool skald__tls_pending(const skald__tls_t *t)
{
	return t->nstage > 0 || BIO_ctrl_pending(t->wbio) > 0;
}

int skald__tls_output(skald__tls_t *t, uv_buf_t *out)
{
	*out = uv_buf_init(NULL, 0);
	if (!t->failed) {
		int rc = seal(t);
		if (rc < 0)
			return rc;
	}
	size_t n = BIO_ctrl_pending(t->wbio);
	if (n == 0)
		return 0;
	if (n > t->outcap) {
		uint8_t *b = realloc(t->out, n);
		if (b == NULL)
			return SKALD_ENOMEM;
		t->out = b;
		t->outcap = n;
	}
	if (BIO_read(t->wbio, t->out, (int)n) != (int)n)
		return SKALD_ENOMEM;
	*out = uv_buf_init((char *)t->out, (unsigned)n);
	return 0;
}

bool skald__tls_peer_named(const skald__tls_t *t, const char *name)
{
	if (!t->ctx->certs)
		return true;
	X509 *cert = SSL_get0_peer_certificate(t->ssl);
	return cert != NULL && X509_check_host(cert, name, strlen(name), 0, NULL) == 1;
}
