/*
 * tests/remote/certs.c - certificates made at test time (see certs.h).
 */
#include "certs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "harness.h"

/* Each test runs in a process of its own: these start empty. */
static EVP_PKEY *ca_key, *other_key;
static X509 *ca_cert, *other_cert;
static char ca_path[SCRATCH_PATH_MAX];
static long serial = 1;

static void add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	cr_assert_not_null(ext, "extension %s=%s", OBJ_nid2sn(nid), value);
	cr_assert_eq(X509_add_ext(cert, ext, -1), 1);
	X509_EXTENSION_free(ext);
}

/* A certificate for key, named cn, signed by issuer_key (self-signed when
 * issuer is NULL). */
static X509 *make_cert(EVP_PKEY *key, const char *cn, long from_s, long to_s, X509 *issuer,
                       EVP_PKEY *issuer_key, bool ca)
{
	X509 *c = X509_new();
	cr_assert_not_null(c);
	X509_set_version(c, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(c), serial++);
	X509_gmtime_adj(X509_getm_notBefore(c), from_s);
	X509_gmtime_adj(X509_getm_notAfter(c), to_s);
	X509_set_pubkey(c, key);
	X509_NAME *name = X509_get_subject_name(c);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(c, issuer != NULL ? X509_get_subject_name(issuer) : name);
	X509 *self = issuer != NULL ? issuer : c;
	if (ca) {
		add_ext(c, self, NID_basic_constraints, "critical,CA:TRUE");
		add_ext(c, self, NID_key_usage, "critical,keyCertSign,cRLSign");
		add_ext(c, self, NID_subject_key_identifier, "hash");
	} else {
		char san[160];
		snprintf(san, sizeof san, "DNS:%s", cn);
		add_ext(c, self, NID_basic_constraints, "critical,CA:FALSE");
		add_ext(c, self, NID_key_usage, "critical,digitalSignature");
		add_ext(c, self, NID_ext_key_usage, "serverAuth,clientAuth");
		add_ext(c, self, NID_subject_alt_name, san);
		add_ext(c, self, NID_authority_key_identifier, "keyid");
	}
	cr_assert_gt(X509_sign(c, issuer_key, EVP_sha256()), 0, "X509_sign");
	return c;
}

static void write_pem(const char *path, X509 *cert, EVP_PKEY *key)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f, "%s", path);
	if (cert != NULL)
		cr_assert_eq(PEM_write_X509(f, cert), 1);
	if (key != NULL)
		cr_assert_eq(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
	cr_assert_eq(fclose(f), 0);
}

static void setup(void)
{
	if (ca_cert != NULL)
		return;
	ca_key = EVP_EC_gen("P-256");
	other_key = EVP_EC_gen("P-256");
	cr_assert(ca_key != NULL && other_key != NULL, "EC key generation");
	ca_cert = make_cert(ca_key, "Skald test CA", -3600, 86400, NULL, ca_key, true);
	other_cert = make_cert(other_key, "Unrelated CA", -3600, 86400, NULL, other_key, true);
	scratch_path("ca.pem", ca_path);
	write_pem(ca_path, ca_cert, NULL);
}

void certs_issue(const char *file, const char *name, long from_s, long to_s, bool untrusted,
                 cert_files_t *out)
{
	setup();
	EVP_PKEY *key = EVP_EC_gen("P-256");
	cr_assert_not_null(key);
	X509 *c = make_cert(key, name, from_s, to_s, untrusted ? other_cert : ca_cert,
	                    untrusted ? other_key : ca_key, false);
	char name_pem[96], name_key[96];
	snprintf(name_pem, sizeof name_pem, "%s.pem", file);
	snprintf(name_key, sizeof name_key, "%s.key", file);
	snprintf(out->ca, sizeof out->ca, "%s", ca_path);
	scratch_path(name_pem, out->cert);
	scratch_path(name_key, out->key);
	write_pem(out->cert, c, NULL);
	write_pem(out->key, NULL, key);
	X509_free(c);
	EVP_PKEY_free(key);
}

void certs_free(void)
{
	X509_free(ca_cert);
	X509_free(other_cert);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(other_key);
	ca_cert = other_cert = NULL;
	ca_key = other_key = NULL;
}
