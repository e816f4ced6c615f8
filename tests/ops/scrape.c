/*
 * tests/ops/scrape.c - see scrape.h.
 */
#define SKALD_TEST_DEFINE
#include "scrape.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "skald/metrics.h"

double sample(const char *text, const char *series)
{
	size_t n = strlen(series);
	for (const char *line = text; line != NULL && *line != '\0';) {
		if (strncmp(line, series, n) == 0 && line[n] == ' ')
			return strtod(line + n + 1, NULL);
		line = strchr(line, '\n');
		if (line != NULL)
			line++;
	}
	return NAN;
}

char *render(void)
{
	char *text;
	size_t len;
	int rc = skald_metrics_render(&text, &len);
	cr_assert_eq(rc, 0, "skald_metrics_render: %s", skald_strerror(rc));
	cr_assert_eq(strlen(text), len);
	return text;
}

double metric_now(const char *series)
{
	char *text = render();
	double v = sample(text, series);
	free(text);
	return v;
}

bool promtool_accepts(const char *text, char *out, size_t len)
{
	char in_path[] = "/tmp/skald-ops-metrics-XXXXXX";
	int fd = mkstemp(in_path);
	cr_assert_geq(fd, 0);
	size_t n = strlen(text);
	cr_assert_eq(write(fd, text, n), (ssize_t)n);
	close(fd);
	char cmd[256];
	snprintf(cmd, sizeof cmd, "promtool check metrics < %s 2>&1", in_path);
	FILE *p = popen(cmd, "r");
	cr_assert_not_null(p, "promtool could not be run (scripts/deps.sh installs it)");
	size_t got = fread(out, 1, len - 1, p);
	out[got] = '\0';
	int status = pclose(p);
	unlink(in_path);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) != 127,
	          "promtool is missing (Debian package prometheus, scripts/deps.sh): %s", out);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 && got == 0;
}
