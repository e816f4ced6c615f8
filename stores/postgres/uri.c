/*
 * stores/postgres/uri.c - postgres:// URIs: libpq's syntax, plus the store's
 * own options, which are taken out before libpq sees the URI.
 */
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

#include "journal/journal_int.h"
#include "skald/error.h"
#include "stores/postgres/pg.h"

void skald__pg_scrub(char *buf, size_t len, const char *msg, const char *secret)
{
	/* A secret of a few characters would blank out ordinary words (and
	 * show where it is): only longer ones are searched for. */
	size_t slen = secret ? strlen(secret) : 0;
	size_t used = 0;
	if (len == 0)
		return;
	if (slen < 4)
		slen = 0;
	while (*msg && used + 1 < len) {
		if (slen && strncmp(msg, secret, slen) == 0) {
			for (const char *r = "***"; *r && used + 1 < len; r++)
				buf[used++] = *r;
			msg += slen;
			continue;
		}
		/* libpq's messages span lines; the journal's are one line. */
		char c = *msg++;
		if (c == '\n' || c == '\t' || c == '\r')
			c = ' ';
		if (c == ' ' && (used == 0 || buf[used - 1] == ' '))
			continue;
		buf[used++] = c;
	}
	while (used > 0 && buf[used - 1] == ' ')
		used--;
	buf[used] = '\0';
}

void skald__pg_uri_free(skald__pg_uri_t *u)
{
	for (size_t i = 0; i < u->n; i++) {
		free(u->keywords[i]);
		free(u->values[i]);
	}
	free(u->keywords);
	free(u->values);
	memset(u, 0, sizeof *u);
}

static const char *get(const skald__pg_uri_t *u, const char *keyword)
{
	for (size_t i = 0; i < u->n; i++)
		if (strcmp(u->keywords[i], keyword) == 0)
			return u->values[i];
	return NULL;
}

int skald__pg_uri_set(skald__pg_uri_t *u, const char *keyword, const char *value)
{
	for (size_t i = 0; i < u->n; i++) {
		if (strcmp(u->keywords[i], keyword) == 0) {
			char *v = strdup(value);
			if (v == NULL)
				return SKALD_ENOMEM;
			free(u->values[i]);
			u->values[i] = v;
			return 0;
		}
	}
	/* Room for the new pair and the NULL terminators. */
	char **k = realloc(u->keywords, (u->n + 2) * sizeof *k);
	if (k == NULL)
		return SKALD_ENOMEM;
	u->keywords = k;
	char **v = realloc(u->values, (u->n + 2) * sizeof *v);
	if (v == NULL)
		return SKALD_ENOMEM;
	u->values = v;
	k[u->n] = strdup(keyword);
	v[u->n] = strdup(value);
	if (k[u->n] == NULL || v[u->n] == NULL) {
		free(k[u->n]);
		free(v[u->n]);
		k[u->n] = v[u->n] = NULL;
		return SKALD_ENOMEM;
	}
	u->n++;
	k[u->n] = v[u->n] = NULL;
	return 0;
}

/* Parses a decimal option value in [lo, hi]. */
static int number(const char *s, size_t len, uint64_t lo, uint64_t hi, uint64_t *out)
{
	uint64_t v = 0;
	if (len == 0 || len > 19)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

/* Moves the store's options out of the query of uri into u, and writes the
 * rest of the URI, for libpq, to `rest` (as long as uri). */
static int take_store_options(const char *uri, skald__pg_uri_t *u, char *rest, char *err,
                              size_t errlen)
{
	const char *q = strchr(uri, '?');
	size_t head = q ? (size_t)(q - uri) : strlen(uri);
	memcpy(rest, uri, head);
	rest[head] = '\0';
	if (q == NULL)
		return 0;
	size_t used = head;
	int first = 1;
	for (q++; *q;) {
		size_t len = strcspn(q, "&");
		uint64_t v;
		if (len > 6 && strncmp(q, "batch=", 6) == 0) {
			int rc = skald__uri_batch("postgres", q + 6, len - 6, &u->batch, err,
			                          errlen);
			if (rc != 0)
				return rc;
		} else if (len > 17 && strncmp(q, "read_all_wait_ms=", 17) == 0) {
			if (number(q + 17, len - 17, 0, 86400000, &v) != 0) {
				snprintf(err, errlen,
				         "postgres journal URI: read_all_wait_ms must be a number "
				         "of "
				         "milliseconds from 0 to 86400000");
				return SKALD_EURI;
			}
			u->wait_ms = v;
		} else if (len > 0) {
			rest[used++] = first ? '?' : '&';
			memcpy(rest + used, q, len);
			used += len;
			first = 0;
		}
		q += len;
		if (*q == '&')
			q++;
	}
	rest[used] = '\0';
	return 0;
}

int skald__pg_uri_parse(const char *uri, skald__pg_uri_t *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	if (strncmp(uri, "postgres://", 11) != 0 && strncmp(uri, "postgresql://", 13) != 0) {
		snprintf(err, errlen,
		         "postgres journal URI must look like "
		         "postgres://USER:PASSWORD@HOST:PORT/DATABASE (or postgresql://...)");
		return SKALD_EURI;
	}
	skald__pg_uri_t u = {.batch = SKALD__BATCH_DEFAULT,
	                     .wait_ms = SKALD__PG_DEFAULT_WAIT_MS,
	                     .connect_ms = SKALD__PG_DEFAULT_CONNECT};
	char *rest = malloc(strlen(uri) + 1);
	if (rest == NULL)
		return SKALD_ENOMEM;
	int rc = take_store_options(uri, &u, rest, err, errlen);
	if (rc != 0) {
		free(rest);
		return rc;
	}
	char *perr = NULL;
	PQconninfoOption *opts = PQconninfoParse(rest, &perr);
	/* The raw user information, to keep it out of libpq's message. */
	char secret[256] = "";
	const char *at = strchr(rest, '@'), *colon = strchr(rest + 11, ':');
	if (at && colon && colon < at && (size_t)(at - colon - 1) < sizeof secret)
		snprintf(secret, sizeof secret, "%.*s", (int)(at - colon - 1), colon + 1);
	free(rest);
	if (opts == NULL) {
		/* libpq names the bad part; it could be next to the password,
		 * which the message then must not show. */
		char msg[256];
		skald__pg_scrub(msg, sizeof msg, perr ? perr : "out of memory", secret);
		snprintf(err, errlen,
		         "postgres journal URI: %s (store options: batch=N, "
		         "read_all_wait_ms=N; others go to libpq)",
		         msg);
		PQfreemem(perr);
		return perr ? SKALD_EURI : SKALD_ENOMEM;
	}
	rc = 0;
	for (PQconninfoOption *o = opts; o->keyword && rc == 0; o++)
		if (o->val != NULL)
			rc = skald__pg_uri_set(&u, o->keyword, o->val);
	PQconninfoFree(opts);
	/* Events are UTF-8 JSON; the server converts if its encoding differs. */
	if (rc == 0)
		rc = skald__pg_uri_set(&u, "client_encoding", "UTF8");
	if (rc == 0 && get(&u, "application_name") == NULL)
		rc = skald__pg_uri_set(&u, "application_name", "skald");
	if (rc != 0) {
		skald__pg_uri_free(&u);
		return rc;
	}
	const char *ct = get(&u, "connect_timeout");
	uint64_t secs;
	if (ct != NULL && number(ct, strlen(ct), 0, 86400, &secs) == 0 && secs > 0)
		u.connect_ms = secs * 1000;
	/* One host name, not an address nor a socket directory, and no address
	 * given: the store resolves it off the loop (libpq would block). */
	const char *host = get(&u, "host");
	if (host != NULL && *host != '\0' && *host != '/' && *host != '@' &&
	    strchr(host, ',') == NULL && get(&u, "hostaddr") == NULL)
		u.host = host;
	u.password = get(&u, "password");
	*out = u;
	return 0;
}
