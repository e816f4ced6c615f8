/*
 * tests/sharding/nodes.c - cluster members inside the test's process
 * (sh.h).
 */
#include <stdlib.h>
#include <string.h>

#include "sh.h"

#define SECRET "sharding-tests-shared-secret"

tnode_t *tnode_start(const char *uri, const tnode_t *seed, const skald_sharding_config_t *cfg)
{
	tnode_t *n = calloc(1, sizeof *n);
	cr_assert_not_null(n);
	skald_config_t sc = {.threads = 2, .name = "shtest", .journal = uri};
	int rc = skald_system_new(&sc, &n->sys);
	cr_assert_eq(rc, 0, "system: %s", skald_strerror(rc));
	rc = skald_remote_start(n->sys, &(skald_remote_config_t){.secret = SECRET});
	cr_assert_eq(rc, 0, "remote: %s", skald_strerror(rc));
	rc = skald_listen(n->sys, "tcp://127.0.0.1:0", &n->port);
	cr_assert_eq(rc, 0, "listen: %s", skald_strerror(rc));
	snprintf(n->addr, sizeof n->addr, "tcp://127.0.0.1:%d", n->port);
	const char *seeds[1] = {seed != NULL ? seed->addr : n->addr};
	rc = skald_cluster_start(n->sys, &(skald_cluster_config_t){.seeds = seeds, .nseeds = 1});
	cr_assert_eq(rc, 0, "cluster: %s", skald_strerror(rc));
	skald_sharding_config_t c = cfg != NULL ? *cfg : ctr_config();
	rc = skald_sharding_start(n->sys, &c, &n->sh);
	cr_assert_eq(rc, 0, "sharding: %s", skald_strerror(rc));
	char why[256] = "";
	rc = skald_cluster_wait(n->sys, WAIT_MS, why, sizeof why);
	cr_assert_eq(rc, 0, "join: %s (%s)", why, skald_strerror(rc));
	n->id = skald_system_node(n->sys);
	return n;
}

void tnode_stop(tnode_t *n)
{
	if (n == NULL)
		return;
	skald_sharding_stop(n->sh);
	skald_system_stop(n->sys);
	free(n);
}

uint64_t owner_of(tnode_t *via, const char *id)
{
	uint64_t node = 0;
	cr_assert_eq(skald_sharding_owner(via->sh, id, &node), 0);
	return node;
}

tnode_t *node_by_id(tnode_t **n, int k, uint64_t node)
{
	for (int i = 0; i < k; i++)
		if (n[i] != NULL && n[i]->id == node)
			return n[i];
	return NULL;
}

/* Whether every member has the same k up members and places a sample of
 * ids the same way, on one of them. */
static bool converged(tnode_t **n, int k)
{
	skald_member_t first[16], m[16];
	size_t nf = 0, nm = 0;
	if (skald_cluster_members(n[0]->sys, first, 16, &nf) < 0 || nf != (size_t)k)
		return false;
	for (int i = 1; i < k; i++) {
		if (skald_cluster_members(n[i]->sys, m, 16, &nm) < 0 || nm != nf)
			return false;
		for (size_t j = 0; j < nm; j++)
			if (m[j].node != first[j].node)
				return false;
	}
	for (int s = 0; s < 64; s++) {
		char id[16];
		snprintf(id, sizeof id, "probe%d", s);
		uint64_t o = owner_of(n[0], id);
		if (node_by_id(n, k, o) == NULL)
			return false;
		for (int i = 1; i < k; i++)
			if (owner_of(n[i], id) != o)
				return false;
	}
	return true;
}

void await_members(tnode_t **n, int k)
{
	AWAIT(converged(n, k), WAIT_MS);
}

int ctr_ask(skald_sharding_t *sh, const char *id, uint32_t type, uint64_t v, uint64_t timeout_ms,
            uint64_t *out)
{
	uint32_t rt = 0;
	void *rp = NULL;
	int rc = skald_sharding_system_ask(sh, id, type, U(v), timeout_ms, &rt, &rp);
	if (rc == 0) {
		cr_assert_eq(rt, t_val, "reply of type %u", rt);
		*out = V(rp);
	}
	return rc;
}

uint64_t ctr_ask_ok(skald_sharding_t *sh, const char *id, uint32_t type, uint64_t v)
{
	uint64_t out = 0;
	int rc = ctr_ask(sh, id, type, v, WAIT_MS, &out);
	cr_assert_eq(rc, 0, "ask %s: %s", id, skald_err_name(rc));
	return out;
}

void ctr_read(jloop_t *l, const char *id, ctr_history_t *h)
{
	char pid[256];
	snprintf(pid, sizeof pid, "ctr-%s", id);
	int rc = ctr_history(l->j, &l->loop, pid, h);
	cr_assert_eq(rc, 0, "read %s: %s (%s)", pid, skald_strerror(rc),
	             skald_journal_errmsg(l->j));
}
