/*
 * stores/mongo/uri.c - mongodb:// URIs: the store's options, and libmongoc's
 * with Skald's defaults.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "journal/journal_int.h"
#include "stores/mongo/engine.h"

#define DEFAULT_GAP_MS 5000

/* ------------------------------------------------------------------------ */
/* URIs                                                                      */

/* Options libmongoc takes that its option_is_* functions do not report. */
static int mongoc_special_option(const char *key)
{
	static const char *const special[] = {"readpreferencetags",
	                                      "authmechanismproperties",
	                                      "authsource",
	                                      "authmechanism",
	                                      "appname",
	                                      "compressors",
	                                      "replicaset",
	                                      "readpreference",
	                                      "readconcernlevel",
	                                      "w",
	                                      "gssapiservicename"};
	for (size_t i = 0; i < sizeof special / sizeof *special; i++)
		if (strcasecmp(key, special[i]) == 0)
			return 1;
	return 0;
}

static int parse_number(const char *v, size_t len, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char buf[24];
	if (len == 0 || len >= sizeof buf)
		return -1;
	memcpy(buf, v, len);
	buf[len] = '\0';
	char *end;
	unsigned long long n = strtoull(buf, &end, 10);
	if (*end != '\0' || buf[0] == '-' || n < lo || n > hi)
		return -1;
	*out = n;
	return 0;
}

/*
 * Splits uri into the URI libmongoc gets (in *mongo_uri, malloc'ed, Skald's
 * options removed) and Skald's options. Writes a message naming the mistake
 * into err on failure (SKALD_EURI). Never quotes the part before the host,
 * where a password may be.
 */
static int split_uri(const char *uri, char **mongo_uri, uri_opts_t *o, char *err, size_t errlen)
{
	o->batch = SKALD__BATCH_DEFAULT;
	o->gap_ms = DEFAULT_GAP_MS;
	*mongo_uri = NULL;
	const char *q = strchr(uri, '?');
	size_t base = q ? (size_t)(q - uri) : strlen(uri);
	size_t cap = strlen(uri) + 1;
	char *out = malloc(cap);
	if (out == NULL)
		return SKALD_ENOMEM;
	memcpy(out, uri, base);
	size_t used = base;
	int first = 1;
	for (const char *p = q ? q + 1 : NULL; p && *p;) {
		const char *amp = strchr(p, '&');
		size_t len = amp ? (size_t)(amp - p) : strlen(p);
		const char *eq = memchr(p, '=', len);
		size_t klen = eq ? (size_t)(eq - p) : len;
		const char *v = eq ? eq + 1 : "";
		size_t vlen = eq ? len - klen - 1 : 0;
		char key[64];
		if (len == 0)
			goto next;
		if (klen == 0 || klen >= sizeof key) {
			snprintf(err, errlen, "MongoDB journal URI: malformed option \"%.*s\"",
			         (int)(len > 64 ? 64 : len), p);
			free(out);
			return SKALD_EURI;
		}
		memcpy(key, p, klen);
		key[klen] = '\0';
		if (strcmp(key, "batch") == 0) {
			if (skald__uri_batch("MongoDB", v, vlen, &o->batch, err, errlen) != 0) {
				free(out);
				return SKALD_EURI;
			}
		} else if (strcasecmp(key, "gapTimeoutMS") == 0) {
			uint64_t n;
			if (parse_number(v, vlen, 1, 3600000, &n) != 0) {
				snprintf(err, errlen,
				         "MongoDB journal URI: gapTimeoutMS must be a number of "
				         "milliseconds from 1 to 3600000");
				free(out);
				return SKALD_EURI;
			}
			o->gap_ms = (int64_t)n;
		} else if (mongoc_uri_option_is_int32(key) || mongoc_uri_option_is_int64(key) ||
		           mongoc_uri_option_is_bool(key) || mongoc_uri_option_is_utf8(key) ||
		           mongoc_special_option(key)) {
			out[used++] = first ? '?' : '&';
			memcpy(out + used, p, len);
			used += len;
			first = 0;
		} else {
			snprintf(err, errlen,
			         "MongoDB journal URI: unknown option \"%s\"; Skald's options are "
			         "batch=N and gapTimeoutMS=N, and libmongoc's are listed in its "
			         "connection string documentation",
			         key);
			free(out);
			return SKALD_EURI;
		}
	next:
		p = amp ? amp + 1 : NULL;
	}
	out[used] = '\0';
	*mongo_uri = out;
	return 0;
}

/* Parses uri for libmongoc, with Skald's defaults for the timeouts. On
 * failure writes a message into err and returns SKALD_EURI. */
int skald__mg_make_uri(const char *uri, uri_opts_t *o, mongoc_uri_t **out, char **key, char *err,
                       size_t errlen)
{
	char *text;
	int rc = split_uri(uri, &text, o, err, errlen);
	if (rc != 0)
		return rc;
	bson_error_t berr;
	mongoc_uri_t *u = mongoc_uri_new_with_error(text, &berr);
	if (u == NULL) {
		/* libmongoc's messages name the part that is wrong without
		 * quoting the credentials. */
		snprintf(err, errlen,
		         "malformed MongoDB journal URI (%s); expected "
		         "mongodb://HOST[:PORT]/DATABASE[?OPTIONS]",
		         berr.message);
		free(text);
		return SKALD_EURI;
	}
	const char *db = mongoc_uri_get_database(u);
	if (db == NULL || *db == '\0') {
		snprintf(err, errlen,
		         "MongoDB journal URI names no database: write it after the host, as in "
		         "mongodb://HOST:PORT/DATABASE");
		mongoc_uri_destroy(u);
		free(text);
		return SKALD_EURI;
	}
	if (!mongoc_uri_has_option(u, MONGOC_URI_SERVERSELECTIONTIMEOUTMS))
		mongoc_uri_set_option_as_int32(u, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 5000);
	if (!mongoc_uri_has_option(u, MONGOC_URI_SOCKETTIMEOUTMS))
		mongoc_uri_set_option_as_int32(u, MONGOC_URI_SOCKETTIMEOUTMS, 60000);
	*out = u;
	*key = text;
	return 0;
}
