/*
 * stores/postgres/statements.c - the statements every connection prepares, and
 * what goes in and out of them: messages, encodings, binary array parameters.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal/journal_int.h"
#include "stores/postgres/engine.h"

/* ------------------------------------------------------------------------ */
/* Statements, prepared on every new connection                              */

const char skald__pg_schema_check_sql[] =
        "SELECT coalesce(max(version), 0) FROM skald.schema_migrations";

/*
 * The append statement, in two forms with the same parameters: one write per
 * element of $1..$3 (persistence id, expected_seq, number of events), one
 * event per element of $4..$10 (its write's index from 1, seq, type,
 * version, data, timestamp, writer). In both, w checks each write's highest
 * seq once, before anything is inserted, and an event's offset is its
 * transaction id shifted left 20 bits, or'ed with its index.
 *
 * skald_append, the common case, inserts with a plain INSERT: a sequence
 * number that a concurrent writer took fails the whole statement
 * (unique_violation), so when it succeeds every write that passed the check
 * was stored entirely, and the answer needs only the transaction id (first
 * row, index 0) and the writes that failed the check, with the highest
 * found. Counting what was inserted would cost as much again.
 *
 * skald_append_safe, sent only after such a failure, inserts with ON
 * CONFLICT DO NOTHING (which probes every unique index before inserting)
 * and answers every write with how many of its events went in; a write with
 * some but not all makes the statement raise, and so roll back.
 */
#define APPEND_W                                                                                   \
	"WITH w AS ("                                                                              \
	" SELECT t.i, t.pid, t.expected, t.n,"                                                     \
	"  coalesce((SELECT max(e.seq) FROM skald.events e WHERE e.persistence_id = t.pid), 0)"    \
	"   AS highest"                                                                            \
	" FROM unnest($1, $2, $3) WITH ORDINALITY AS t(pid, expected, n, i)"                       \
	"), ins AS ("                                                                              \
	" INSERT INTO skald.events AS e"                                                           \
	"  (persistence_id, seq, type, version, data, timestamp, writer, global_offset)"           \
	" SELECT w.pid, ev.seq, ev.type, ev.version, ev.data::jsonb, ev.ts, ev.writer,"            \
	"  (pg_current_xact_id()::text::int8 << 20) | (ev.ord - 1)"                                \
	" FROM unnest($4, $5, $6, $7, $8, $9, $10)"                                                \
	"  WITH ORDINALITY AS ev(wi, seq, type, version, data, ts, writer, ord)"                   \
	" JOIN w ON w.i = ev.wi"                                                                   \
	" WHERE w.highest = w.expected"
#define APPEND_PARAMS                                                                              \
	"(text[], int8[], int4[], int4[], int8[], text[], int4[], text[], int8[], int8[])"

const char skald__pg_prepare_sql[] =
        "PREPARE skald_append" APPEND_PARAMS " AS " APPEND_W ")"
        " SELECT 0, 0, pg_current_xact_id()::text"
        " UNION ALL"
        " SELECT w.i, w.highest, NULL FROM w WHERE w.highest <> w.expected;"

        "PREPARE skald_append_safe" APPEND_PARAMS " AS " APPEND_W " ON CONFLICT DO NOTHING"
        " RETURNING e.persistence_id"
        "), got AS ("
        " SELECT persistence_id, count(*) AS cnt FROM ins GROUP BY persistence_id"
        ")"
        " SELECT w.i, w.highest, pg_current_xact_id_if_assigned()::text, coalesce(got.cnt, 0),"
        "  CASE WHEN got.cnt > 0 AND got.cnt < w.n THEN skald.append_race(w.pid) END"
        " FROM w LEFT JOIN got ON got.persistence_id = w.pid;"

        "PREPARE skald_read(text, int8, int8, int8) AS "
        "SELECT seq, type, version, data, timestamp, writer, global_offset,"
        " (SELECT max(seq) FROM skald.events WHERE persistence_id = $1)"
        " FROM skald.events"
        " WHERE persistence_id = $1 AND seq >= $2 AND seq <= $3 AND NOT deleted"
        " ORDER BY seq LIMIT $4;"

        "PREPARE skald_read_all(int8, int8) AS "
        "SELECT s.xmin, s.xmax, e.persistence_id, e.seq, e.type, e.version, e.data,"
        " e.timestamp, e.writer, e.global_offset"
        " FROM (SELECT pg_snapshot_xmin(c)::text::int8 AS xmin,"
        "  pg_snapshot_xmax(c)::text::int8 AS xmax FROM pg_current_snapshot() AS c) AS s"
        " LEFT JOIN LATERAL (SELECT * FROM skald.events"
        "  WHERE global_offset > $1 AND global_offset < (s.xmin << 20) AND NOT deleted"
        "  ORDER BY global_offset LIMIT $2) AS e ON true;"

        "PREPARE skald_highest(text) AS "
        "SELECT coalesce(max(seq), 0) FROM skald.events WHERE persistence_id = $1;"

        /* The highest row stays, marked deleted and emptied, so that the
         * highest seq survives. */
        "PREPARE skald_delete_to(text, int8) AS "
        "WITH h AS (SELECT max(seq) AS hi FROM skald.events WHERE persistence_id = $1),"
        " d AS (DELETE FROM skald.events e USING h"
        "  WHERE e.persistence_id = $1 AND e.seq <= $2 AND e.seq < h.hi)"
        " UPDATE skald.events e SET deleted = true, data = '{}'"
        " FROM h WHERE e.persistence_id = $1 AND e.seq = h.hi AND h.hi <= $2"
        " AND NOT e.deleted;"

        "PREPARE skald_list_ids(text, text, int8) AS "
        "SELECT persistence_id, max(seq) FROM skald.events"
        " WHERE persistence_id > $1 AND persistence_id >= $2"
        " GROUP BY persistence_id ORDER BY persistence_id LIMIT $3;"

        "PREPARE skald_list_ids_below(text, text, int8, text) AS "
        "SELECT persistence_id, max(seq) FROM skald.events"
        " WHERE persistence_id > $1 AND persistence_id >= $2 AND persistence_id < $4"
        " GROUP BY persistence_id ORDER BY persistence_id LIMIT $3;"

        "PREPARE skald_snapshot_save(text, int8, int4, text, int8) AS "
        "INSERT INTO skald.snapshots (persistence_id, seq, version, data, timestamp)"
        " VALUES ($1, $2, $3, $4::jsonb, $5)"
        " ON CONFLICT (persistence_id, seq) DO UPDATE SET version = EXCLUDED.version,"
        " data = EXCLUDED.data, timestamp = EXCLUDED.timestamp;"

        "PREPARE skald_snapshot_load(text, int8) AS "
        "SELECT seq, version, data, timestamp FROM skald.snapshots"
        " WHERE persistence_id = $1 AND seq <= $2 ORDER BY seq DESC LIMIT 1;"

        "PREPARE skald_snapshot_delete(text, int8) AS "
        "DELETE FROM skald.snapshots WHERE persistence_id = $1 AND seq = $2;"

        "PREPARE skald_snapshot_delete_to(text, int8) AS "
        "DELETE FROM skald.snapshots WHERE persistence_id = $1 AND seq <= $2;";

/* ------------------------------------------------------------------------ */
/* Small helpers                                                             */

/* Sets op's final status and message (printf-style; NULL: none). */

void skald__pg_op_finish(op_t *op, int status, const char *fmt, ...)
{
	op->finished = true;
	op->status = status;
	if (fmt != NULL && op->msg == NULL) {
		char buf[512];
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(buf, sizeof buf, fmt, ap);
		va_end(ap);
		op->msg = strdup(buf);
	}
}

/* The message of the connection, scrubbed, on one line. */
void skald__pg_conn_message(pg_t *pg, char *buf, size_t len)
{
	const char *m = pg->conn ? PQerrorMessage(pg->conn) : "";
	skald__pg_scrub(buf, len, *m ? m : "no further detail from libpq", pg->uri.password);
}

const char *skald__pg_sqlstate_of(const PGresult *res)
{
	const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	return s ? s : "";
}

/* "MESSAGE (SQLSTATE XXXXX)" of a failed result. */
void skald__pg_result_message(pg_t *pg, const PGresult *res, char *buf, size_t len)
{
	const char *m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	char tmp[320];
	skald__pg_scrub(tmp, sizeof tmp, m ? m : PQresultErrorMessage(res), pg->uri.password);
	snprintf(buf, len, "%s (SQLSTATE %s)", tmp, skald__pg_sqlstate_of(res));
}

/* The Skald code for a failed statement: a missing table, schema or function
 * means the schema is not there (or not complete). */
int skald__pg_status_of(const PGresult *res)
{
	const char *s = skald__pg_sqlstate_of(res);
	if (strcmp(s, "42P01") == 0 || strcmp(s, "3F000") == 0 || strcmp(s, "42883") == 0)
		return SKALD_ESCHEMA;
	return SKALD_EBACKEND;
}

uint64_t skald__pg_u64_of(const PGresult *res, int row, int col)
{
	return strtoull(PQgetvalue(res, row, col), NULL, 10);
}

int64_t skald__pg_i64_of(const PGresult *res, int row, int col)
{
	return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

/* A uint64 bound for a bigint parameter: the store never holds more. */
void skald__pg_bound_text(char *buf, size_t len, uint64_t v)
{
	snprintf(buf, len, "%llu", (unsigned long long)(v > INT64_MAXU ? INT64_MAXU : v));
}

int skald__pg_utf8_valid(const unsigned char *s)
{
	while (*s) {
		unsigned c = *s;
		size_t n;
		unsigned cp;
		if (c < 0x80) {
			s++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			n = 1;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			n = 2;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			n = 3;
			cp = c & 0x07;
		} else {
			return 0;
		}
		for (size_t i = 1; i <= n; i++) {
			if ((s[i] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i] & 0x3f);
		}
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		s += n + 1;
	}
	return 1;
}

/* Encodes data for the journal: compact JSON of an object that every store
 * keeps (skald__data_check). NULL when it cannot be stored; *why says why
 * (a phrase after "event ... ", valid until the next call on this thread). */
char *skald__pg_encode(const json_t *data, size_t *len, const char **why)
{
	static _Thread_local char rule[192];
	char reason[160];
	if (skald__data_check(data, reason, sizeof reason) != 0) {
		snprintf(rule, sizeof rule, "has data that %s", reason);
		*why = rule;
		return NULL;
	}
	char *text = skald__pg_json_text(data, len);
	if (text == NULL)
		*why = "cannot be encoded as JSON (invalid UTF-8?)";
	return text;
}

/* ------------------------------------------------------------------------ */
/* Binary array parameters                                                   */

static void buf_u32(skald__pg_buf_t *b, uint32_t v)
{
	unsigned char x[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
	                      (unsigned char)(v >> 8), (unsigned char)v};
	skald__pg_buf_put(b, x, 4);
}

static void buf_u64(skald__pg_buf_t *b, uint64_t v)
{
	buf_u32(b, (uint32_t)(v >> 32));
	buf_u32(b, (uint32_t)v);
}

/* The header of a one-dimensional array of n elements of type oid
 * (PostgreSQL's array_send format). */
void skald__pg_arr_start(skald__pg_buf_t *b, uint32_t oid, size_t n)
{
	b->len = 0;
	buf_u32(b, 1); /* dimensions */
	buf_u32(b, 0); /* no NULLs */
	buf_u32(b, oid);
	buf_u32(b, (uint32_t)n);
	buf_u32(b, 1); /* lower bound */
}

void skald__pg_arr_int8(skald__pg_buf_t *b, uint64_t v)
{
	buf_u32(b, 8);
	buf_u64(b, v);
}

void skald__pg_arr_int4(skald__pg_buf_t *b, uint32_t v)
{
	buf_u32(b, 4);
	buf_u32(b, v);
}

void skald__pg_arr_text(skald__pg_buf_t *b, const char *s, size_t len)
{
	buf_u32(b, (uint32_t)len);
	skald__pg_buf_put(b, s, len);
}
