/*
 * tests/soak/check.c - the verdict of the soak (scripts/soak.sh): reads the
 * journal as `skald export --prefix soak-` writes it (stdin) and the nodes'
 * records of acknowledged events (the files named on the command line), and
 * checks what the journal promises:
 *   - no seq twice and no gap: each history is seq 1, 2, 3... in order;
 *   - no forked history: every event holds v equal to its seq (each
 *     incarnation writes v = the seq it recovered to, plus one);
 *   - nothing acknowledged lost: every "PID SEQ" line of the records is in
 *     the journal.
 * Prints what it counted and every broken promise (the first 20 of each
 * kind); exits 0 when all hold, 1 otherwise, 2 on bad input.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#define MAX_REPORTS 20

typedef struct {
	unsigned long long highest; /* contiguous from 1 */
	unsigned long long events;
} hist_t;

static hist_t *hist;
static size_t nhist;
static long problems;

static void problem(const char *fmt, const char *pid, unsigned long long a, unsigned long long b)
{
	if (problems++ < MAX_REPORTS) {
		printf("soak-check: ");
		printf(fmt, pid, a, b);
		printf("\n");
	}
}

/* The index N of "soak-N", or -1. */
static long index_of(const char *pid)
{
	if (strncmp(pid, "soak-", 5) != 0 || pid[5] == '\0')
		return -1;
	char *end;
	long n = strtol(pid + 5, &end, 10);
	return *end == '\0' && n >= 0 && n < 100000000 ? n : -1;
}

static hist_t *hist_of(long n)
{
	if ((size_t)n >= nhist) {
		size_t cap = nhist ? nhist : 1024;
		while (cap <= (size_t)n)
			cap *= 2;
		hist = realloc(hist, cap * sizeof *hist);
		if (hist == NULL)
			abort();
		memset(hist + nhist, 0, (cap - nhist) * sizeof *hist);
		nhist = cap;
	}
	return &hist[n];
}

int main(int argc, char **argv)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	unsigned long long events = 0, acks = 0, entities = 0, beyond = 0;
	while ((len = getline(&line, &cap, stdin)) > 0) {
		json_error_t err;
		json_t *e = json_loadb(line, (size_t)len, 0, &err);
		const char *pid = json_string_value(json_object_get(e, "persistence_id"));
		json_int_t seq = json_integer_value(json_object_get(e, "seq"));
		json_t *v = json_object_get(json_object_get(e, "data"), "v");
		long n = pid ? index_of(pid) : -1;
		if (e == NULL || n < 0 || seq < 1) {
			fprintf(stderr, "soak-check: not an event of the soak: %.200s\n", line);
			return 2;
		}
		hist_t *h = hist_of(n);
		if (h->events == 0)
			entities++;
		h->events++;
		events++;
		if ((unsigned long long)seq != h->highest + 1)
			problem("%s: seq %llu follows seq %llu (a seq twice, or a gap)", pid,
			        (unsigned long long)seq, h->highest);
		else
			h->highest = (unsigned long long)seq;
		if (!json_is_integer(v) || json_integer_value(v) != seq)
			problem("%s: seq %llu holds v %lld (a forked history)", pid,
			        (unsigned long long)seq,
			        (unsigned long long)(json_is_integer(v) ? json_integer_value(v)
			                                                : -1));
		json_decref(e);
	}
	for (int i = 1; i < argc; i++) {
		FILE *f = fopen(argv[i], "r");
		if (f == NULL) {
			perror(argv[i]);
			return 2;
		}
		char pid[128];
		unsigned long long seq;
		while (fscanf(f, "%127s %llu", pid, &seq) == 2) {
			acks++;
			long n = index_of(pid);
			if (n < 0) {
				fprintf(stderr, "soak-check: %s: not a soak entity: %s\n", argv[i],
				        pid);
				return 2;
			}
			if (seq > hist_of(n)->highest)
				problem("%s: seq %llu was acknowledged, the journal has %llu", pid,
				        seq, hist_of(n)->highest);
		}
		fclose(f);
	}
	for (size_t n = 0; n < nhist; n++)
		beyond += hist[n].events;
	printf("soak-check: %llu events of %llu entities in the journal, %llu acknowledged "
	       "(%llu were stored without an acknowledgement: in flight at a kill or a failure)\n",
	       events, entities, acks, beyond > acks ? beyond - acks : 0);
	if (problems > 0) {
		printf("soak-check: FAILED: %ld broken promises\n", problems);
		return 1;
	}
	printf("soak-check: every acknowledged event is there, no seq twice, no forked "
	       "history\n");
	free(line);
	free(hist);
	return 0;
}
