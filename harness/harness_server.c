/*
 * harness_server.c: servers that announce their port in a port file —
 * trellisd, the test participants and the example services — started,
 * waited for, killed and restarted on the same port and data (see
 * harness.h for the contract). Processes themselves are harness.c's.
 */
#include "harness.h"
#include "harness_internal.h"
#include "trellis_portfile.h"

#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- servers that announce their port in a port file ------------------ */

/* Wait for the port file; -1 if the process exits first or time runs out. */
static int server_wait_ready(harness_server_t *s, int64_t timeout_ms)
{
    int64_t deadline = harness_mono_ms() + timeout_ms;
    for (;;) {
        int port = trellis_portfile_read(s->port_file);
        if (port > 0) {
            s->port = port;
            snprintf(s->addr, sizeof s->addr, "127.0.0.1:%d", port);
            return 0;
        }
        if (!harness_proc_running(s->proc)) {
            fprintf(stderr,
                    "harness: %s exited (wait status 0x%x) before it was "
                    "ready\n",
                    s->proc->name, (unsigned)s->proc->status);
            break;
        }
        if (harness_mono_ms() >= deadline) {
            fprintf(stderr, "harness: %s not ready after %lld ms\n",
                    s->proc->name, (long long)timeout_ms);
            harness_proc_kill(s->proc);
            break;
        }
        harness_sleep_ms(10);
    }
    harness_proc_log_tail(s->proc, 40);
    return -1;
}

/* argv = bin --listen LISTEN --port-file FILE [--data-dir D] extra... */
static int server_argv(const harness_server_t *s, const char *bin,
                       const char *listen, const char *const *extra,
                       const char **argv, size_t cap)
{
    size_t n = 0;
    argv[n++] = bin;
    argv[n++] = "--listen";
    argv[n++] = listen;
    argv[n++] = "--port-file";
    argv[n++] = s->port_file;
    if (s->data_dir[0]) {
        argv[n++] = "--data-dir";
        argv[n++] = s->data_dir;
    }
    for (size_t i = 0; extra && extra[i]; i++) {
        if (n + 1 >= cap) {
            fprintf(stderr, "harness: too many server arguments\n");
            return -1;
        }
        argv[n++] = extra[i];
    }
    argv[n] = NULL;
    return 0;
}

static harness_server_t *server_start(harness_t *h, const char *name,
                                      const char *bin, const char *data_dir,
                                      const char *const *extra)
{
    harness_server_t *s = calloc(1, sizeof *s);
    char leaf[80];
    const char *argv[HARNESS_MAX_ARGS + 1];
    if (!s)
        return NULL;
    snprintf(leaf, sizeof leaf, "%s.port", name);
    if (!harness_path(h, leaf, s->port_file, sizeof s->port_file))
        goto err;
    if (data_dir)
        snprintf(s->data_dir, sizeof s->data_dir, "%s", data_dir);
    unlink(s->port_file);
    if (server_argv(s, bin, "127.0.0.1:0", extra, argv, HARNESS_MAX_ARGS + 1) !=
        0)
        goto err;
    if (!(s->proc = harness_spawn(h, name, argv)))
        goto err;
    s->next = h->servers;
    h->servers = s; /* owned by h from here, even if not ready */
    return server_wait_ready(s, HARNESS_READY_TIMEOUT_MS) == 0 ? s : NULL;
err:
    free(s);
    return NULL;
}

harness_server_t *harness_server_start(harness_t *h, const char *name,
                                       const char *bin,
                                       const char *const *extra_args)
{
    return server_start(h, name, bin, NULL, extra_args);
}

static const char *bin_path(const char *env, const char *leaf, char *buf,
                            size_t len)
{
    const char *e = getenv(env);
    if (e && *e)
        return e;
    snprintf(buf, len, "%s/bin/%s", harness_build_dir(), leaf);
    return buf;
}

/* One MariaDB per test process for every TRELLIS_TEST_STORE=mysql
 * trellisd: installing one takes seconds, a database in it takes
 * milliseconds. It lives in a harness of its own until the process exits. */
static harness_t *shared_store_harness;
static harness_mariadb_t *shared_store_db;

static void free_shared_store(void)
{
    harness_mariadb_kill(shared_store_db);
    harness_free(shared_store_harness, 1);
    shared_store_harness = NULL;
    shared_store_db = NULL;
}

static harness_mariadb_t *shared_tm_store(void)
{
    if (shared_store_db)
        return shared_store_db;
    if (!shared_store_harness &&
        !(shared_store_harness = harness_new("tmstore")))
        return NULL;
    shared_store_db = harness_mariadb_start(shared_store_harness, "tmstore");
    if (shared_store_db)
        atexit(free_shared_store);
    return shared_store_db;
}

harness_mariadb_t *harness_shared_mariadb(void)
{
    return shared_tm_store();
}

harness_mariadb_t *harness_tm_store_db(harness_t *h)
{
    return h->tm_store_db;
}

char *harness_tm_store_database(const harness_t *h, const char *tm_name,
                                char *buf, size_t len)
{
    const char *base = strrchr(h->dir, '/');
    snprintf(buf, len, "trellis_%.24s_%.24s", base ? base + 1 : h->dir,
             tm_name);
    for (char *c = buf; *c; c++)
        if (!isalnum((unsigned char)*c))
            *c = '_';
    return buf;
}

static int wants_mysql_store(const char *const *extra_args)
{
    const char *env = getenv("TRELLIS_TEST_STORE");
    if (!env || strcmp(env, "mysql") != 0)
        return 0;
    for (size_t i = 0; extra_args && extra_args[i]; i++)
        if (strncmp(extra_args[i], "--store", 7) == 0)
            return 0;
    return 1;
}

/* The MySQL store flags for trellisd `name`, then extra_args (so the
 * caller's own --lease-ms and the like win), in argv (room for
 * HARNESS_MAX_ARGS) with strings in bufs. Returns 0 or -1. */
static int add_mysql_store_args(harness_t *h, const char *name,
                                const char *const *extra_args,
                                const char **argv, char bufs[3][PATH_MAX])
{
    if (!h->tm_store_db && !(h->tm_store_db = shared_tm_store()))
        return -1;
    snprintf(bufs[0], PATH_MAX, "%s", harness_mariadb_socket(h->tm_store_db));
    harness_tm_store_database(h, name, bufs[1], PATH_MAX);
    snprintf(bufs[2], PATH_MAX, "%s", name);
    const char *more[] = {"--store",
                          "mysql",
                          "--mysql-socket",
                          bufs[0],
                          "--mysql-database",
                          bufs[1],
                          "--node-id",
                          bufs[2],
                          "--lease-ms",
                          "2000",
                          NULL};
    size_t n = 0;
    for (size_t i = 0; more[i]; i++)
        argv[n++] = more[i];
    for (size_t i = 0; extra_args && extra_args[i]; i++) {
        if (n + 1 >= HARNESS_MAX_ARGS - 8)
            return -1;
        argv[n++] = extra_args[i];
    }
    argv[n] = NULL;
    return 0;
}

/* out = "--shutdown-grace-ms 0" then args: a test's SIGTERM stops
 * trellisd at once (a test that passes its own value wins, being later).
 * Returns 0, or -1 if it does not fit. */
static int prepend_no_grace(const char *const *args, const char **out)
{
    size_t n = 0;
    out[n++] = "--shutdown-grace-ms";
    out[n++] = "0";
    for (size_t i = 0; args && args[i]; i++) {
        if (n + 1 >= HARNESS_MAX_ARGS - 8)
            return -1;
        out[n++] = args[i];
    }
    out[n] = NULL;
    return 0;
}

harness_server_t *harness_tm_start(harness_t *h, const char *name,
                                   const char *const *extra_args)
{
    char bin[PATH_MAX], data[PATH_MAX], leaf[80];
    snprintf(leaf, sizeof leaf, "%s.data", name);
    if (!harness_path(h, leaf, data, sizeof data) || harness_mkdir_p(data) != 0)
        return NULL;
    const char *argv[HARNESS_MAX_ARGS + 1];
    static char bufs[3][PATH_MAX];
    if (wants_mysql_store(extra_args)) {
        if (add_mysql_store_args(h, name, extra_args, argv, bufs) != 0)
            return NULL;
        extra_args = argv;
    }
    const char *with_grace[HARNESS_MAX_ARGS + 1];
    if (prepend_no_grace(extra_args, with_grace) != 0)
        return NULL;
    return server_start(
        h, name, bin_path("TRELLIS_TRELLISD", "trellisd", bin, sizeof bin),
        data, with_grace);
}

harness_server_t *harness_testpart_start(harness_t *h, const char *name,
                                         const char *const *extra_args)
{
    char bin[PATH_MAX], journal[PATH_MAX], leaf[80];
    const char *argv[HARNESS_MAX_ARGS + 1];
    size_t n = 0;
    snprintf(leaf, sizeof leaf, "%s.journal", name);
    if (!harness_path(h, leaf, journal, sizeof journal))
        return NULL;
    argv[n++] = "--journal";
    argv[n++] = journal;
    for (size_t i = 0; extra_args && extra_args[i]; i++) {
        if (n + 1 >= HARNESS_MAX_ARGS - 8)
            return NULL;
        argv[n++] = extra_args[i];
    }
    argv[n] = NULL;
    return server_start(
        h, name,
        bin_path("TRELLIS_TESTPART", "trellis-testpart", bin, sizeof bin), NULL,
        argv);
}

const char *harness_server_addr(const harness_server_t *s)
{
    return s->addr;
}

int harness_server_port(const harness_server_t *s)
{
    return s->port;
}

harness_proc_t *harness_server_proc(harness_server_t *s)
{
    return s->proc;
}

const char *harness_server_data_dir(const harness_server_t *s)
{
    return s->data_dir[0] ? s->data_dir : NULL;
}

int harness_server_kill(harness_server_t *s)
{
    return harness_proc_kill(s->proc);
}

/* The arguments after "--listen ADDR --port-file FILE [--data-dir D]" in the
 * process's current argv: the caller's extra arguments. */
static const char *const *server_extra(const harness_server_t *s)
{
    int skip = s->data_dir[0] ? 7 : 5;
    return (const char *const *)&s->proc->argv[skip];
}

int harness_server_restart(harness_server_t *s)
{
    return harness_server_restart_within(s, HARNESS_READY_TIMEOUT_MS);
}

int harness_server_restart_within(harness_server_t *s, int64_t timeout_ms)
{
    char listen[64];
    const char *argv[HARNESS_MAX_ARGS + 1];
    if (harness_proc_running(s->proc)) {
        fprintf(stderr, "harness: restart of running %s\n", s->proc->name);
        return -1;
    }
    snprintf(listen, sizeof listen, "127.0.0.1:%d", s->port);
    unlink(s->port_file);
    /* argv borrows the old strings; harness_proc_restart copies them
     * before it frees the old ones. */
    if (server_argv(s, s->proc->argv[0], listen, server_extra(s), argv,
                    HARNESS_MAX_ARGS + 1) != 0 ||
        harness_proc_restart(s->proc, argv) != 0)
        return -1;
    if (server_wait_ready(s, timeout_ms) != 0)
        return -1;
    if (trellis_portfile_read(s->port_file) != s->port) {
        fprintf(stderr, "harness: %s came back on another port\n",
                s->proc->name);
        return -1;
    }
    return 0;
}

int harness_server_crash_restart(harness_server_t *s)
{
    if (harness_server_kill(s) != 0)
        return -1;
    return harness_server_restart(s);
}
