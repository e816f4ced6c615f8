/*
 * tests/packaging/http_probe.c - a program built outside the tree against
 * skald-http alone (scripts/packaging.sh): it serves one route on a thread
 * of the server's own, asks it over loopback, and checks the answer.
 * Exits 0 on success.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <skald/http.h>

static void hello(const skald_http_request_t *req, skald_http_res_t *res, void *arg)
{
	skald_http_respond(res, 200, "text/plain", "hello", 5);
}

int main(void)
{
	skald_http_server_t *srv;
	if (skald_http_server_new(&srv, NULL) != 0 ||
	    skald_http_route(srv, "GET", "/hello", hello, NULL) != 0 ||
	    skald_http_start_thread(srv) != 0) {
		fprintf(stderr, "http_probe: the server did not start\n");
		return 1;
	}
	struct sockaddr_in sa = {.sin_family = AF_INET,
	                         .sin_port = htons((uint16_t)skald_http_port(srv))};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	char buf[512] = {0};
	size_t got = 0;
	const char req[] = "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
	    write(fd, req, sizeof req - 1) == (ssize_t)(sizeof req - 1)) {
		ssize_t n;
		while (got < sizeof buf - 1 && (n = read(fd, buf + got, sizeof buf - 1 - got)) > 0)
			got += (size_t)n;
	}
	if (fd >= 0)
		close(fd);
	skald_http_stop(srv);
	skald_http_server_free(srv);
	if (strncmp(buf, "HTTP/1.1 200", 12) != 0 || strstr(buf, "\r\n\r\nhello") == NULL) {
		fprintf(stderr, "http_probe: unexpected answer: %s\n", buf);
		return 1;
	}
	return 0;
}
