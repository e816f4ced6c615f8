/*
 * tests/packaging/store_probe.c - a user's program built against an installed
 * Skald by scripts/packaging.sh, with nothing but the flags pkg-config gives.
 * It never calls a store: it proves that linking a store's library is enough
 * for its URI scheme to open journals, and that without it the scheme is
 * unknown.
 *
 *   store_probe URI ERROR_NAME TEXT
 *
 * Opens a journal on URI and passes (exit 0) when the open fails with the
 * error named ERROR_NAME (e.g. SKALD_EURI) and a message containing TEXT.
 * The URIs it is given are refused before any connection is tried, so no
 * server is needed: an invalid option makes the store's own URI parser
 * answer, which only a registered store can do.
 */
#include <stdio.h>
#include <string.h>

#include <uv.h>

#include <skald/journal.h>

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: store_probe URI ERROR_NAME TEXT\n");
		return 2;
	}
	uv_loop_t loop;
	if (uv_loop_init(&loop) != 0)
		return 2;
	skald_journal_t *j = NULL;
	int rc = skald_journal_open(&loop, argv[1], &j);
	const char *msg = rc == 0 ? "" : skald_journal_open_errmsg();
	int ok = rc != 0 && strcmp(skald_err_name(rc), argv[2]) == 0 && strstr(msg, argv[3]);
	printf("%s: %s %s\n", argv[1], rc == 0 ? "opened" : skald_err_name(rc), msg);
	if (rc == 0) {
		skald_journal_close(j, NULL, NULL);
		uv_run(&loop, UV_RUN_DEFAULT);
	}
	uv_loop_close(&loop);
	return ok ? 0 : 1;
}
