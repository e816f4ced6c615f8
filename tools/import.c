/*
 * tools/import.c - `skald import [--force] < histories.jsonl`: writes the
 * histories that `skald export` wrote into another store, keeping each
 * event's seq, type, version, data, timestamp and writer.
 *
 * Two passes. The first reads stdin to its end, checks every line, checks
 * that the events of each persistence id follow each other without a gap,
 * and keeps the lines in a temporary file. Then the destination is asked for
 * the highest seq of every persistence id of the input, and the import is
 * refused as a whole, before anything is written, if any of them does not
 * fit (see the usage). The second pass writes the events in chunks, each
 * chunk one journal call.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "tools/commands.h"
#include "tools/common.h"
#include "base/hash.h"

const char cmd_import_usage[] =
        "usage: skald import [--force] [--store URI] [--json] < histories.jsonl\n"
        "\n"
        "Reads envelopes from stdin, one JSON object per line, as `skald export`\n"
        "writes them, and appends them to the journal with the same persistence\n"
        "id, seq, type, version, data, timestamp and writer (the destination\n"
        "gives them offsets of its own). Required keys: persistence_id, seq,\n"
        "type, data; version defaults to 1, timestamp to now, writer to 0;\n"
        "offset is ignored. The events of one persistence id must come in\n"
        "sequence order, without gaps, but may be interleaved with others.\n"
        "\n"
        "Every line is checked before anything is written: a malformed line\n"
        "exits with 1, naming it. Then every persistence id of the input is\n"
        "looked up in the destination; without --force, one that already has\n"
        "events there (even deleted ones: its highest seq survives) stops the\n"
        "import before anything is written (exit 3). So does a history that does\n"
        "not start at seq 1 in an empty destination (its first events were\n"
        "deleted in the source).\n"
        "\n"
        "  --force      take a destination history as a prefix of the imported\n"
        "               one: skip the input's events with seq <= its highest seq\n"
        "               (they are NOT compared with what is stored) and append\n"
        "               the rest. This finishes an import that was interrupted,\n"
        "               and imports what was added to the source since. Still\n"
        "               refused (exit 3): input that would leave a gap after the\n"
        "               destination's highest seq.\n"
        "  --store URI  the journal (default: the environment variable SKALD_JOURNAL)\n"
        "  --json       print {\"imported\",\"persistence_ids\",\"skipped\"} at the end\n";

/* Events per journal call. */
#define CHUNK 1000
/* Conflicting persistence ids listed before "and N more". */
#define MAX_LISTED 10

/* One persistence id of the input. */
typedef struct hist_s {
	char *pid;
	uint64_t first, last; /* seqs of its first and last events in the input */
	size_t last_line;
	uint64_t highest;  /* in the destination */
	uint64_t imported; /* events written */
} hist_t;

typedef struct {
	tool_t t;
	int force;
	FILE *spool; /* the checked lines, for the second pass */
	size_t lines;

	/* The persistence ids: in input order, and a hash table over them
	 * (open addressing, at most half full). */
	hist_t **order;
	size_t nhist, order_cap;
	hist_t **slots;
	size_t nslots;
	size_t checked; /* highest seqs received */

	/* The chunk being written. */
	skald_event_t ev[CHUNK];
	json_t *line[CHUNK];
	hist_t *hist_of[CHUNK];
	skald_write_t w[CHUNK];
	size_t nev, nw;
	char *buf;
	size_t bufcap;
	size_t lineno;

	uint64_t imported, skipped;
	int failed; /* a write failed: report once the chunk's statuses are read */
} import_t;

/* ------------------------------------------------------------------------ */
/* Persistence ids                                                           */

static hist_t **slot_of(hist_t **slots, size_t nslots, const char *pid)
{
	size_t i = skald__hash_str(pid) & (nslots - 1);
	while (slots[i] != NULL && strcmp(slots[i]->pid, pid) != 0)
		i = (i + 1) & (nslots - 1);
	return &slots[i];
}

static hist_t *find(import_t *c, const char *pid)
{
	return c->nslots ? *slot_of(c->slots, c->nslots, pid) : NULL;
}

/* Adds pid (copied); NULL on ENOMEM. */
static hist_t *add(import_t *c, const char *pid)
{
	if (2 * (c->nhist + 1) > c->nslots) {
		size_t n = c->nslots ? 2 * c->nslots : 64;
		hist_t **slots = calloc(n, sizeof *slots);
		if (slots == NULL)
			return NULL;
		for (size_t i = 0; i < c->nhist; i++)
			*slot_of(slots, n, c->order[i]->pid) = c->order[i];
		free(c->slots);
		c->slots = slots;
		c->nslots = n;
	}
	if (c->nhist == c->order_cap) {
		size_t n = c->order_cap ? 2 * c->order_cap : 64;
		hist_t **order = realloc(c->order, n * sizeof *order);
		if (order == NULL)
			return NULL;
		c->order = order;
		c->order_cap = n;
	}
	hist_t *h = calloc(1, sizeof *h);
	if (h == NULL || (h->pid = strdup(pid)) == NULL) {
		free(h);
		return NULL;
	}
	c->order[c->nhist++] = h;
	*slot_of(c->slots, c->nslots, pid) = h;
	return h;
}

/* ------------------------------------------------------------------------ */
/* Lines                                                                     */

/*
 * Reads the next non-blank line of f into c->buf and parses it. Returns 1
 * with *line (owned) and *ev filled, 0 at the end, or -1 after reporting a
 * failure (an exit code would be ambiguous: TOOL_EUSAGE is 1). lineno counts
 * the lines read.
 */
static int next_line(import_t *c, FILE *f, json_t **line, skald_event_t *ev)
{
	ssize_t len;
	while ((len = getline(&c->buf, &c->bufcap, f)) >= 0) {
		c->lineno++;
		while (len > 0 && (c->buf[len - 1] == '\n' || c->buf[len - 1] == '\r'))
			c->buf[--len] = '\0';
		if (strspn(c->buf, " \t") == (size_t)len)
			continue;
		json_error_t err;
		*line = json_loadb(c->buf, (size_t)len, JSON_REJECT_DUPLICATES, &err);
		if (*line == NULL) {
			tool_fail(&c->t, TOOL_EUSAGE, "stdin line %zu: not JSON: %s (column %d)",
			          c->lineno, err.text, err.column);
			return -1;
		}
		if (tool_event_of_line(&c->t, TOOL_LINE_ENVELOPE, c->lineno, *line, ev) != 0) {
			json_decref(*line);
			*line = NULL;
			return -1;
		}
		return 1;
	}
	if (ferror(f)) {
		tool_fail(&c->t, TOOL_ESTORE, "reading %s failed",
		          f == stdin ? "stdin" : "the temporary copy of stdin");
		return -1;
	}
	return 0;
}

/* The first pass: checks stdin and keeps its lines in c->spool. */
static int check_input(import_t *c)
{
	c->spool = tmpfile();
	if (c->spool == NULL)
		return tool_fail(&c->t, TOOL_ESTORE, "cannot make a temporary file for the input");
	json_t *line;
	skald_event_t ev;
	int rc;
	while ((rc = next_line(c, stdin, &line, &ev)) == 1) {
		hist_t *h = find(c, ev.persistence_id);
		if (h == NULL) {
			if ((h = add(c, ev.persistence_id)) == NULL) {
				json_decref(line);
				return tool_fail(&c->t, TOOL_ESTORE,
				                 "out of memory at stdin line %zu", c->lineno);
			}
			h->first = ev.seq;
		} else if (ev.seq != h->last + 1) {
			rc = tool_fail(
			        &c->t, TOOL_EUSAGE,
			        "stdin line %zu: seq %" PRIu64 " of \"%s\" does not follow seq "
			        "%" PRIu64 " (line %zu): the events of a persistence id must "
			        "come in sequence order, without gaps",
			        c->lineno, ev.seq, ev.persistence_id, h->last, h->last_line);
			json_decref(line);
			return rc;
		}
		h->last = ev.seq;
		h->last_line = c->lineno;
		json_decref(line);
		/* The line as given: it passed the checks, and the second pass
		 * reads it back with the same code. */
		fputs(c->buf, c->spool);
		fputc('\n', c->spool);
		c->lines++;
	}
	if (rc != 0)
		return c->t.exit_code;
	if (fflush(c->spool) != 0 || ferror(c->spool))
		return tool_fail(&c->t, TOOL_ESTORE, "writing the temporary copy of stdin failed");
	return 0;
}

/* ------------------------------------------------------------------------ */
/* The destination                                                           */

static void write_chunk(import_t *c);

static void finish(import_t *c)
{
	tool_close_journal(&c->t);
	uint64_t ids = 0;
	for (size_t i = 0; i < c->nhist; i++)
		ids += c->order[i]->imported > 0;
	if (c->t.json) {
		json_t *o = json_pack("{s:I, s:I, s:I}", "imported", (json_int_t)c->imported,
		                      "persistence_ids", (json_int_t)ids, "skipped",
		                      (json_int_t)c->skipped);
		tool_print_json(o);
		json_decref(o);
		return;
	}
	printf("imported %" PRIu64 " event%s of %" PRIu64 " persistence id%s", c->imported,
	       c->imported == 1 ? "" : "s", ids, ids == 1 ? "" : "s");
	if (c->skipped > 0)
		printf("; skipped %" PRIu64 " events the destination already had (--force)",
		       c->skipped);
	printf("\n");
}

/* Decides, once every highest seq is known, whether the input fits. */
static void decide(import_t *c)
{
	size_t bad = 0;
	for (size_t i = 0; i < c->nhist; i++) {
		const hist_t *h = c->order[i];
		char why[512] = "";
		if (h->highest == 0 && h->first != 1)
			snprintf(
			        why, sizeof why,
			        "has no events in the destination (highest seq 0), and the input's "
			        "start at seq %" PRIu64
			        " (were the first ones deleted in the source?)",
			        h->first);
		else if (h->highest > 0 && !c->force)
			snprintf(why, sizeof why,
			         "already has events up to seq %" PRIu64 " in the destination "
			         "(--force would import only the input's events after it)",
			         h->highest);
		else if (h->highest > 0 && h->first > h->highest + 1)
			snprintf(why, sizeof why,
			         "has events up to seq %" PRIu64
			         " in the destination, and the input's "
			         "start at seq %" PRIu64 ": that would leave a gap",
			         h->highest, h->first);
		if (why[0] == '\0')
			continue;
		if (bad++ < MAX_LISTED)
			fprintf(stderr, "skald import: \"%s\" %s\n", h->pid, why);
	}
	if (bad > 0) {
		if (bad > MAX_LISTED)
			fprintf(stderr, "skald import: ... and %zu more\n", bad - MAX_LISTED);
		tool_fail(&c->t, TOOL_ECONFLICT,
		          "nothing imported: %zu persistence id%s of the input conflict%s with the "
		          "destination",
		          bad, bad == 1 ? "" : "s", bad == 1 ? "s" : "");
		return;
	}
	rewind(c->spool);
	c->lineno = 0;
	write_chunk(c);
}

static void check_next(import_t *c);

static void on_highest(skald_journal_t *j, int status, uint64_t seq, void *arg)
{
	import_t *c = arg;
	hist_t *h = c->order[c->checked];
	if (status < 0) {
		char what[256];
		snprintf(what, sizeof what, "reading the highest seq of \"%s\"", h->pid);
		tool_fail_rc(&c->t, status, what);
		return;
	}
	h->highest = seq;
	c->checked++;
	check_next(c);
}

/* Asks for the highest seq of each persistence id in turn: one in flight
 * at a time keeps this simple, and costs one round trip per id. */
static void check_next(import_t *c)
{
	if (c->checked == c->nhist) {
		decide(c);
		return;
	}
	int rc = skald_journal_highest(c->t.j, c->order[c->checked]->pid, on_highest, c);
	if (rc < 0)
		tool_fail_rc(&c->t, rc, "reading a highest seq");
}

static void release_chunk(import_t *c)
{
	for (size_t i = 0; i < c->nev; i++)
		json_decref(c->line[i]);
	c->nev = c->nw = 0;
}

static void on_conflict_highest(skald_journal_t *j, int status, uint64_t seq, void *arg)
{
	import_t *c = arg;
	/* The write that conflicted is the first failed one of the chunk. */
	const skald_write_t *w = NULL;
	for (size_t i = 0; i < c->nw && w == NULL; i++)
		if (c->w[i].status == SKALD_ECONFLICT)
			w = &c->w[i];
	char actual[64] = "unknown";
	if (status == 0)
		snprintf(actual, sizeof actual, "%" PRIu64, seq);
	tool_fail(&c->t, TOOL_ECONFLICT,
	          "another writer changed \"%s\" during the import: expected its highest seq to be "
	          "%" PRIu64 ", but it is %s; %" PRIu64 " events were imported before (`skald "
	          "import --force` with the same input imports the rest)",
	          w != NULL ? w->persistence_id : "?", w != NULL ? w->expected_seq : 0, actual,
	          c->imported);
	release_chunk(c);
}

static void on_written(skald_journal_t *j, int status, skald_write_t *w, size_t nw, void *arg)
{
	import_t *c = arg;
	const skald_write_t *failed = NULL;
	for (size_t i = 0; i < nw; i++) {
		if (w[i].status == 0) {
			c->imported += w[i].nevents;
			c->hist_of[&w[i].events[0] - c->ev]->imported += w[i].nevents;
		} else if (failed == NULL) {
			failed = &w[i];
		}
	}
	if (failed != NULL && failed->status == SKALD_ECONFLICT) {
		if (skald_journal_highest(j, failed->persistence_id, on_conflict_highest, c) < 0)
			on_conflict_highest(j, SKALD_ECLOSED, 0, c);
		return;
	}
	if (failed != NULL) {
		char what[512];
		snprintf(what, sizeof what,
		         "writing the events of \"%s\" (%" PRIu64 " events were imported before; "
		         "`skald import --force` with the same input imports the rest)",
		         failed->persistence_id, c->imported);
		tool_fail_rc(&c->t, failed->status, what);
		release_chunk(c);
		return;
	}
	release_chunk(c);
	write_chunk(c);
}

/* Fills the next chunk from the spool and writes it; at the end of the
 * spool, reports. */
static void write_chunk(import_t *c)
{
	json_t *line;
	skald_event_t ev;
	int rc = 0;
	while (c->nev < CHUNK && (rc = next_line(c, c->spool, &line, &ev)) == 1) {
		hist_t *h = find(c, ev.persistence_id);
		if (ev.seq <= h->highest) {
			c->skipped++;
			json_decref(line);
			continue;
		}
		size_t i = c->nev++;
		c->ev[i] = ev;
		c->line[i] = line;
		c->hist_of[i] = h;
		/* A run of lines of one persistence id is one atomic write; runs
		 * of the same id in one call chain, each expecting the one
		 * before. */
		skald_write_t *last = c->nw ? &c->w[c->nw - 1] : NULL;
		if (last != NULL && c->hist_of[i - 1] == h) {
			last->nevents++;
		} else {
			c->w[c->nw++] = (skald_write_t){h->pid, ev.seq - 1, &c->ev[i], 1, 0};
		}
	}
	if (rc < 0) {
		release_chunk(c);
		return;
	}
	if (c->nw == 0) {
		finish(c);
		return;
	}
	rc = skald_journal_append(c->t.j, c->w, c->nw, on_written, c);
	if (rc < 0) {
		tool_fail_rc(&c->t, rc, "writing events");
		release_chunk(c);
	}
}

int cmd_import(int argc, char **argv)
{
	import_t *c = calloc(1, sizeof *c);
	if (c == NULL) {
		fprintf(stderr, "skald import: out of memory\n");
		return TOOL_ESTORE;
	}
	c->t = (tool_t){.cmd = "import", .usage = cmd_import_usage};
	const tool_opt_t opts[] = {{"--force", TOOL_OPT_FLAG, &c->force, NULL}};
	int code = tool_args(&c->t, argc, argv, opts, 1, NULL, 0, NULL);
	if (code == 0) {
		if (check_input(c) == 0 && tool_open(&c->t) == 0)
			check_next(c);
		code = tool_close(&c->t);
	}
	if (c->spool != NULL)
		fclose(c->spool);
	for (size_t i = 0; i < c->nhist; i++) {
		free(c->order[i]->pid);
		free(c->order[i]);
	}
	free(c->order);
	free(c->slots);
	free(c->buf);
	free(c);
	return code;
}
