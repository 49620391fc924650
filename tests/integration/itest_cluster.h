/*
 * itest_cluster: what the multinode tests share (test_multinode.c,
 * test_multinode_items.c) — several trellisd nodes on one MariaDB (the
 * MySQL store, leases of LEASE_MS), a client per node, and the waits and
 * checks on what the cluster did.
 *
 * The fixture's own trellisd ("trellisd", node id trellisd) is node 0, A;
 * cluster_start adds nodes on the same database ("node-b", "node-c").
 * Effects are counted by trellis-testpart, whose in-memory barrier
 * journals each call's effect. All of it runs on the test's thread, and
 * fails the test (cmocka) when something does not come as awaited.
 */
#ifndef ITEST_CLUSTER_H
#define ITEST_CLUSTER_H

#include "itest.h"

#define LEASE_MS "1500"

typedef struct {
    itest_t *t;
    harness_server_t *node[3]; /* [0] is the fixture's trellisd */
    trellis_client_t *client[3];
} cluster_t;

/* The fixture on the MySQL store with leases of LEASE_MS. */
itest_t *start_fixture(void **state, const char *name);
/* The same with its trellisd on trellisd-faults; the nodes added next are
 * plain trellisd. */
itest_t *start_faulty_fixture(void **state, const char *name);
/* A client of node (the caller frees it). */
trellis_client_t *client_for(harness_server_t *node);
/* Another node on the fixture's database, extra (NULL-terminated, may be
 * NULL, two flags at most) added to its flags. */
harness_server_t *add_node_with(itest_t *t, const char *node_id,
                                const char *const *extra);
harness_server_t *add_node(itest_t *t, const char *node_id);
/* n nodes (3 at most): the fixture's and n - 1 added, each with a client. */
void cluster_start(cluster_t *c, itest_t *t, int n);
/* Queries go to node i from now on (the fixture's client is node 0's). */
void query_through(cluster_t *c, int i);
/* Free the added nodes' clients; queries go to node 0 again. */
void cluster_free_clients(cluster_t *c);

/* Submit without waiting, retrying while the node is unreachable. */
void submit_to(cluster_t *c, int node, const char *gid,
               const char *const *payloads, size_t n);
/* A saga that ends with `fail` at its last step when failing, else
 * succeeds; every step is slow so work is in flight when a node dies. */
void submit_saga(cluster_t *c, int node, const char *gid, int failing,
                 const char *slow);
/* gid (a submit_saga saga) is final with the expected outcome, and every
 * effect happened exactly once. */
void check_exactly_once(itest_t *t, const char *gid, int failing);

/* How many lines of node's log contain both needles (needle2 may be
 * NULL). */
int log_count(harness_server_t *node, const char *needle, const char *needle2);
/* Wait up to 10 s until every node in nodes[n] logged more lines with
 * needle than before[i]; fail naming what was awaited otherwise. */
void wait_log_grows(harness_server_t *const *nodes, const int *before, int n,
                    const char *needle, const char *what);
/* Until a line of node's log holds both needles (15 s at most). */
void wait_log(harness_server_t *node, const char *needle, const char *needle2);
/* Until node's durable state of gid says want (15 s at most). */
void wait_status(cluster_t *c, int node, const char *gid,
                 trellis_trans_status_t want);

/* One Control command to trellis-testpart (see harness/testpart.c). */
void part_cmd(itest_t *t, const char *cmd);
/* 1 when the participant has had a call of every gid in args (a
 * NULL-terminated array: [0] the itest_t *, then gids); for
 * harness_poll. */
int each_gid_called(void *arg);

#endif
