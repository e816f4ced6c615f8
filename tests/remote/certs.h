/*
 * tests/remote/certs.h - certificates made at test time for the tls://
 * tests, with libcrypto: a CA, and node certificates it signs (or that
 * another CA signs), valid over a chosen window. Nothing is committed:
 * every key is generated into the test's scratch directory (harness.h),
 * which the suite's fini removes.
 *
 * Keys are ECDSA P-256; certificates name their node as a DNS subject
 * alternative name and as common name.
 */
#ifndef SKALD_TESTS_REMOTE_CERTS_H
#define SKALD_TESTS_REMOTE_CERTS_H

#include <stdbool.h>

typedef struct cert_files_s {
	char ca[160];   /* the cluster's CA (PEM) */
	char cert[160]; /* the certificate (PEM) */
	char key[160];  /* its private key (PEM) */
} cert_files_t;

/*
 * Issues a certificate naming `name`, valid from now + from_s to now +
 * to_s (seconds, negative for the past), signed by the cluster's CA or,
 * with untrusted, by an unrelated CA; files named after `file`. The paths
 * are in *out; out->ca is always the cluster's CA. The CAs are made on
 * first use. Fails the test on error.
 */
void certs_issue(const char *file, const char *name, long from_s, long to_s, bool untrusted,
                 cert_files_t *out);

/* Frees the CAs (the files stay for the fini to remove). */
void certs_free(void);

#endif /* SKALD_TESTS_REMOTE_CERTS_H */
