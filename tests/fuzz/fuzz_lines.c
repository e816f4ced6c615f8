/*
 * tests/fuzz/fuzz_lines.c - libFuzzer target for the tool's JSON-lines
 * input (`skald append` reads events, `skald import` reads envelopes:
 * tools/common.c, tool_event_of_line).
 *
 * Each line of the input is read as the tool reads it (jansson, duplicate
 * keys refused) and checked as an event and as an envelope; a line refused
 * must be refused with a message, never crash. An envelope accepted must
 * survive the way back: written as `skald export` writes it, read again,
 * it gives the same persistence id, seq, type, version, data, timestamp and
 * writer; and its data is either kept by every store or refused by every
 * store (skald__data_check), never half.
 *
 * tool_fail explains every refusal on stderr: scripts/fuzz.sh runs this
 * target with -close_fd_mask=2 (libFuzzer and sanitizer reports keep their
 * own copy of stderr).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal/journal_int.h"
#include "tools/common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_line(const char *p, size_t len)
{
	json_error_t err;
	json_t *line = json_loadb(p, len, JSON_REJECT_DUPLICATES, &err);
	if (line == NULL)
		return;
	tool_t t = {.cmd = "fuzz"};
	skald_event_t ev;
	(void)tool_event_of_line(&t, TOOL_LINE_EVENT, 1, line, &ev);
	tool_t t2 = {.cmd = "fuzz"};
	if (tool_event_of_line(&t2, TOOL_LINE_ENVELOPE, 1, line, &ev) == 0) {
		char why[160];
		(void)skald__data_check(ev.data, why, sizeof why);
		json_t *out = tool_event_json(&ev);
		char *text = out ? json_dumps(out, JSON_COMPACT) : NULL;
		json_t *back = text ? json_loads(text, JSON_REJECT_DUPLICATES, &err) : NULL;
		skald_event_t ev2;
		tool_t t3 = {.cmd = "fuzz"};
		if (back == NULL || tool_event_of_line(&t3, TOOL_LINE_ENVELOPE, 1, back, &ev2) != 0)
			abort(); /* what import read, export must write readably */
		if (strcmp(ev.persistence_id, ev2.persistence_id) != 0 || ev.seq != ev2.seq ||
		    strcmp(ev.type, ev2.type) != 0 || ev.version != ev2.version ||
		    !json_equal(ev.data, ev2.data) || ev.timestamp != ev2.timestamp ||
		    ev.writer != ev2.writer)
			abort();
		json_decref(back);
		free(text);
		json_decref(out);
	}
	json_decref(line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Lines as getline gives them, each in an exact-size buffer. */
	size_t start = 0;
	while (start < size) {
		const uint8_t *nl = memchr(data + start, '\n', size - start);
		size_t end = nl ? (size_t)(nl - data) + 1 : size;
		char *line = malloc(end - start);
		if (line == NULL)
			return 0;
		memcpy(line, data + start, end - start);
		check_line(line, end - start);
		free(line);
		start = end;
	}
	return 0;
}
