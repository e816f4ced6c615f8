/*
 * tests/remote/test_errors.c - mistakes of a new user get a code that
 * names them: nobody listening, an address without tcp://, a call before
 * the network started.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <stdio.h>
#include <unistd.h>
#include <uv.h>

#include "harness.h"

TestSuite(errors, .init = fixture_setup, .fini = fixture_teardown, .timeout = 60);

/* A loopback port that was free a moment ago, and nobody listens on. */
static int closed_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_geq(fd, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	socklen_t len = sizeof sa;
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

Test(errors, nobody_listening_is_econnrefused)
{
	skald_system_t *x = sys_start(NULL);
	char addr[64];
	snprintf(addr, sizeof addr, "tcp://127.0.0.1:%d", closed_port());
	int rc = skald_node_wait(x, addr, 500, NULL);
	cr_assert_eq(rc, UV_ECONNREFUSED, "node_wait: %s", skald_err_name(rc));
	skald_ref_t r;
	rc = skald_system_lookup(x, addr, "echo", 500, &r);
	cr_assert_eq(rc, UV_ECONNREFUSED, "lookup: %s", skald_err_name(rc));
	sys_stop(x);
}

Test(errors, an_address_without_its_scheme_is_eaddr)
{
	skald_system_t *x = sys_start(NULL);
	cr_assert_eq(skald_connect(x, "127.0.0.1:7000"), SKALD_EADDR);
	cr_assert_eq(skald_node_wait(x, "localhost:7000", 100, NULL), SKALD_EADDR);
	cr_assert_eq(skald_listen(x, "tcp://127.0.0.1", NULL), SKALD_EADDR);
	skald_ref_t r;
	cr_assert_eq(skald_system_lookup(x, "127.0.0.1:7000", "echo", 100, &r), SKALD_EADDR);
	sys_stop(x);
}

Test(errors, a_call_before_the_network_started_is_enonet)
{
	skald_system_t *sys;
	cr_assert_eq(skald_system_new(&(skald_config_t){.threads = 1}, &sys), 0);
	cr_assert_eq(skald_listen(sys, "tcp://127.0.0.1:0", NULL), SKALD_ENONET);
	cr_assert_eq(skald_connect(sys, "tcp://127.0.0.1:7000"), SKALD_ENONET);
	cr_assert_eq(skald_node_wait(sys, "tcp://127.0.0.1:7000", 100, NULL), SKALD_ENONET);
	skald_ref_t r;
	cr_assert_eq(skald_system_lookup(sys, "tcp://127.0.0.1:7000", "echo", 100, &r),
	             SKALD_ENONET);
	cr_assert_eq(skald_publish(sys, "echo", (skald_ref_t){skald_system_node(sys), 1, 1}),
	             SKALD_ENONET);
	skald_system_stop(sys);
}
