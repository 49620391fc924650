/*
 * tm_store_mysql: the storage engine many trellisd nodes share, on
 * MySQL/MariaDB through libmariadb (see tm_store.h for the contract and
 * docs/architecture.md for the schema and the lease rules).
 *
 * Connections:
 *  - the writer, used only by the store thread. A group of writes costs two
 *    round trips: (1) its statements, a few multi-row ones, betting that
 *    this node still owns every transaction and that no insert finds its
 *    gid stored (tm_store_mysql_batch.c); (2) COMMIT. When the bet is lost
 *    the group is rolled back and applied write by write, also in two
 *    round trips: the inserts and fenced header updates, whose row counts
 *    say which writes apply, then the rows of those and COMMIT. If the
 *    connection fails the group is applied again on a new connection; every
 *    statement is idempotent, so a commit whose answer was lost is harmless.
 *  - a few readers (peek, get, list, subscriptions), each under its own
 *    mutex;
 *  - the lease connection, used only by the lease thread: it holds the node
 *    lock (GET_LOCK, so two live processes cannot share a node id), renews
 *    this node's leases, claims expired ones from other nodes and deletes
 *    old finished transactions.
 *
 * Times that decide ownership (lease_ms) come from the database's clock, so
 * nodes never compare their own clocks. Values go into SQL as hex literals:
 * no escaping, no character-set surprises.
 *
 * This file owns the engine's settings, open and close, and its function
 * table; the work is in tm_store_mysql_{conn,write,read,lease}.c (see
 * tm_store_mysql_impl.h for which file owns what).
 */
#include "tm_clock.h"
#include "tm_exit.h"
#include "tm_log.h"
#include "tm_store_mysql_impl.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- open / close ----------------------------------------------------- */

static const tm_store_ops_t my_ops;

static void free_store(my_store_t *m)
{
    if (m->wdb)
        mysql_close(m->wdb);
    my_bulk_drop(m);
    if (m->ldb)
        mysql_close(m->ldb);
    if (m->pdb)
        mysql_close(m->pdb);
    for (int i = 0; i < N_READERS; i++) {
        if (m->readers[i].db)
            mysql_close(m->readers[i].db);
        pthread_mutex_destroy(&m->readers[i].mu);
    }
    pthread_mutex_destroy(&m->lmu);
    pthread_cond_destroy(&m->lcv);
    free(m->wsql.p);
    free(m);
}

static int copy_setting(char *dst, size_t cap, const char *src,
                        const char *name, char *err, size_t errlen)
{
    if (!src)
        src = "";
    if (strlen(src) >= cap) {
        snprintf(err, errlen, "mysql store: %s is too long", name);
        return -1;
    }
    snprintf(dst, cap, "%s", src);
    return 0;
}

static int copy_settings(my_store_t *m, const tm_store_config_t *c, char *err,
                         size_t errlen)
{
    if (copy_setting(m->host, sizeof(m->host), c->mysql_host, "--mysql-host",
                     err, errlen) != 0 ||
        copy_setting(m->socket, sizeof(m->socket), c->mysql_socket,
                     "--mysql-socket", err, errlen) != 0 ||
        copy_setting(m->user, sizeof(m->user), c->mysql_user, "--mysql-user",
                     err, errlen) != 0 ||
        copy_setting(m->password, sizeof(m->password), c->mysql_password,
                     "--mysql-password", err, errlen) != 0 ||
        copy_setting(m->database, sizeof(m->database), c->mysql_database,
                     "--mysql-database", err, errlen) != 0 ||
        copy_setting(m->node_id, sizeof(m->node_id), c->node_id, "--node-id",
                     err, errlen) != 0)
        return -1;
    if (!m->node_id[0] || !m->database[0] || strchr(m->database, '`')) {
        snprintf(err, errlen,
                 "mysql store: --node-id and --mysql-database must be "
                 "non-empty (and the database name without backquotes)");
        return -1;
    }
    if (c->lease_ms < 500) {
        snprintf(err, errlen, "mysql store: --lease-ms must be at least 500");
        return -1;
    }
    m->port = c->mysql_port;
    m->lease_ms = c->lease_ms;
    return 0;
}

int tm_store_mysql_open(tm_store_t *store, const tm_store_config_t *cfg,
                        char *err, size_t errlen)
{
    my_store_t *m = calloc(1, sizeof(*m));
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    m->store = store;
    pthread_mutex_init(&m->lmu, NULL);
    tm_cond_init_monotonic(&m->lcv);
    for (int i = 0; i < N_READERS; i++)
        pthread_mutex_init(&m->readers[i].mu, NULL);
    int64_t next;
    if (copy_settings(m, cfg, err, errlen) != 0 ||
        my_ensure_database(m, err, errlen) != 0 ||
        !(m->ldb = my_connect(m, 1, err, errlen)) ||
        my_take_node_lock(m, m->ldb, 10, err, errlen) != 0 ||
        my_create_schema(m, m->ldb, err, errlen) != 0 ||
        !(m->wdb = my_connect(m, 0, err, errlen)))
        goto fail;
    my_read_packet_limit(m);
    if (my_renew_leases(m, &next) != 0) {
        snprintf(err, errlen, "mysql store: cannot renew this node's leases");
        goto fail;
    }
    atomic_store(&m->valid_until, next);
    if (pthread_create(&m->lease_thread, NULL, my_lease_thread_main, m) != 0) {
        snprintf(err, errlen, "cannot start the lease thread");
        goto fail;
    }
    m->lease_thread_started = 1;
    if (store->retention_ms) {
        /* Not recoverable in a process that already has threads. */
        if (pthread_create(&m->purge_thread, NULL, my_purge_thread_main, m) !=
            0)
            tm_exit_os_error("cannot start the purge thread");
        m->purge_thread_started = 1;
    }
    store->ops = &my_ops;
    store->kind_name = "mysql";
    store->impl = m;
    tm_log(
        TM_LOG_INFO,
        "event=store_open engine=mysql database=%s node=%s lease_ms=%" PRId64,
        m->database, m->node_id, m->lease_ms);
    return 0;
fail:
    free_store(m);
    return -1;
}

static void my_close(tm_store_t *store)
{
    my_store_t *m = store->impl;
    pthread_mutex_lock(&m->lmu);
    m->stopping = 1;
    pthread_cond_broadcast(&m->lcv); /* the lease and purge threads */
    pthread_mutex_unlock(&m->lmu);
    if (m->lease_thread_started)
        pthread_join(m->lease_thread, NULL);
    if (m->purge_thread_started)
        pthread_join(m->purge_thread, NULL);
    free_store(m);
}

static const tm_store_ops_t my_ops = {
    .commit_group = my_commit_group,
    .maintain = NULL,
    .peek = my_peek,
    .get = my_get,
    .load_unfinished = my_load_unfinished,
    .list = my_list,
    .subscribe = my_subscribe,
    .unsubscribe = my_unsubscribe,
    .subscriptions = my_subscriptions,
    .start_ownership = my_start_ownership,
    .lease_ok = my_lease_ok,
    .max_payload = my_max_payload,
    .release_leases = my_release_leases,
    .close = my_close,
};
