/*
 * harness_mariadb.c: a throwaway MariaDB server per test, for the barrier,
 * XA and MySQL-storage tests.
 *
 * Recipe (Debian 12, MariaDB 10.11, works as root and as a user):
 *   mariadb-install-db --no-defaults --datadir=D --skip-test-db
 *                      --auth-root-authentication-method=normal [--user=U]
 *   mariadbd --no-defaults --datadir=D --socket=S --port=P
 *            --bind-address=127.0.0.1 --skip-log-bin
 *            --innodb-buffer-pool-size=32M [--user=root]
 * "normal" root authentication leaves root@localhost, root@127.0.0.1 and
 * root@::1 without a password, so both the socket and TCP work with user
 * root and no password; grants stay on. mariadbd refuses to run as root
 * without --user=root. The server logs to stderr, i.e. the harness log.
 * Install takes ~1 s and start ~0.3 s on the reference machine.
 *
 * The TCP port is found by binding port 0 and closing it: another process
 * could take it in between, which mariadbd then reports in its log.
 */
#include "harness.h"
#include "harness_internal.h"

#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define MARIADB_START_TIMEOUT_MS 60000

struct harness_mariadb {
    harness_t *h;
    harness_proc_t *proc;
    char name[64];
    char datadir[PATH_MAX];
    char tmpdir[PATH_MAX]; /* its own: parallel installs collide in /tmp */
    char socket[sizeof(((struct sockaddr_un *)0)->sun_path)];
    char pid_file[PATH_MAX];
    int port;
};

static int free_tcp_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = -1;
    if (fd < 0)
        return -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* The socket lives in the scratch dir unless that path is too long for
 * sun_path; then in /tmp. */
static int choose_socket(harness_mariadb_t *m, const char *dir)
{
    static int counter;
    if ((size_t)snprintf(m->socket, sizeof m->socket, "%s/mysqld.sock", dir) <
        sizeof m->socket)
        return 0;
    return (size_t)snprintf(m->socket, sizeof m->socket,
                            "/tmp/trellis-mariadb-%d-%d.sock", (int)getpid(),
                            ++counter) < sizeof m->socket
               ? 0
               : -1;
}

/* 1 when the server sent its handshake (protocol version 10) on the
 * socket: it accepts connections. */
static int accepts_connections(void *arg)
{
    harness_mariadb_t *m = arg;
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    unsigned char hdr[5];
    int ok = 0;
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0)
        return 0;
    snprintf(a.sun_path, sizeof a.sun_path, "%s", m->socket);
    struct timeval tv = {.tv_sec = 2};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        recv(fd, hdr, sizeof hdr, MSG_WAITALL) == (ssize_t)sizeof hdr)
        ok = hdr[4] == 10;
    close(fd);
    return ok;
}

static const char *user_name(void)
{
    struct passwd *pw = getpwuid(geteuid());
    return pw ? pw->pw_name : "root";
}

static int install_db(harness_mariadb_t *m)
{
    char datadir[PATH_MAX + 16], user[64], name[80];
    char tmpdir[PATH_MAX + 16];
    snprintf(datadir, sizeof datadir, "--datadir=%s", m->datadir);
    snprintf(tmpdir, sizeof tmpdir, "--tmpdir=%s", m->tmpdir);
    snprintf(user, sizeof user, "--user=%s", user_name());
    snprintf(name, sizeof name, "%s-install", m->name);
    const char *argv[] = {"mariadb-install-db",
                          "--no-defaults",
                          datadir,
                          "--auth-root-authentication-method=normal",
                          "--skip-test-db",
                          tmpdir,
                          user,
                          NULL};
    return harness_run(m->h, name, argv, MARIADB_START_TIMEOUT_MS);
}

static int start_server(harness_mariadb_t *m)
{
    char datadir[PATH_MAX + 16], sock[128], port[32], pid[PATH_MAX + 16];
    char tmpdir[PATH_MAX + 16];
    snprintf(datadir, sizeof datadir, "--datadir=%s", m->datadir);
    snprintf(tmpdir, sizeof tmpdir, "--tmpdir=%s", m->tmpdir);
    snprintf(sock, sizeof sock, "--socket=%s", m->socket);
    snprintf(port, sizeof port, "--port=%d", m->port);
    snprintf(pid, sizeof pid, "--pid-file=%s", m->pid_file);
    const char *argv[] = {"mariadbd",
                          "--no-defaults",
                          datadir,
                          tmpdir,
                          sock,
                          port,
                          pid,
                          "--bind-address=127.0.0.1",
                          "--skip-log-bin",
                          "--innodb-buffer-pool-size=32M",
                          "--skip-name-resolve",
                          geteuid() == 0 ? "--user=root" : NULL,
                          NULL};
    m->proc = harness_spawn(m->h, m->name, argv);
    if (!m->proc)
        return -1;
    int64_t deadline = harness_mono_ms() + MARIADB_START_TIMEOUT_MS;
    while (!accepts_connections(m)) {
        if (!harness_proc_running(m->proc) || harness_mono_ms() > deadline) {
            fprintf(stderr, "harness: mariadbd %s did not start\n", m->name);
            harness_proc_log_tail(m->proc, 40);
            harness_proc_kill(m->proc);
            return -1;
        }
        harness_sleep_ms(20);
    }
    return 0;
}

harness_mariadb_t *harness_mariadb_start(harness_t *h, const char *name)
{
    harness_mariadb_t *m = calloc(1, sizeof *m);
    char dir[PATH_MAX], leaf[80];
    if (!m || harness_own(h, m) != 0) {
        free(m);
        return NULL;
    }
    m->h = h;
    snprintf(m->name, sizeof m->name, "%s", name);
    snprintf(leaf, sizeof leaf, "%s.mariadb", name);
    if (!harness_path(h, leaf, dir, sizeof dir) || mkdir(dir, 0755) != 0 ||
        choose_socket(m, dir) != 0)
        return NULL;
    if ((size_t)snprintf(m->datadir, sizeof m->datadir, "%s/data", dir) >=
            sizeof m->datadir ||
        (size_t)snprintf(m->pid_file, sizeof m->pid_file, "%s/mysqld.pid",
                         dir) >= sizeof m->pid_file ||
        (size_t)snprintf(m->tmpdir, sizeof m->tmpdir, "%s/tmp", dir) >=
            sizeof m->tmpdir ||
        mkdir(m->tmpdir, 0755) != 0)
        return NULL;
    unlink(m->socket);
    if ((m->port = free_tcp_port()) < 0 || install_db(m) != 0 ||
        start_server(m) != 0)
        return NULL;
    return m;
}

const char *harness_mariadb_socket(const harness_mariadb_t *m)
{
    return m->socket;
}

int harness_mariadb_port(const harness_mariadb_t *m)
{
    return m->port;
}

int harness_mariadb_exec(harness_mariadb_t *m, const char *sql)
{
    char sock[128], name[80];
    snprintf(sock, sizeof sock, "--socket=%s", m->socket);
    snprintf(name, sizeof name, "%s-sql", m->name);
    const char *argv[] = {
        "mariadb", "--no-defaults", sock, "--user=root", "--batch", "-e", sql,
        NULL};
    return harness_run(m->h, name, argv, 60000);
}

void harness_mariadb_stop(harness_mariadb_t *m)
{
    if (m && m->proc && harness_proc_running(m->proc))
        harness_proc_stop(m->proc, 20000);
    if (m && strncmp(m->socket, "/tmp/", 5) == 0)
        unlink(m->socket);
}

void harness_mariadb_kill(harness_mariadb_t *m)
{
    if (m && m->proc && harness_proc_running(m->proc))
        harness_proc_kill(m->proc);
}

int harness_mariadb_restart(harness_mariadb_t *m)
{
    if (!m || (m->proc && harness_proc_running(m->proc)))
        return -1;
    unlink(m->socket);
    return start_server(m);
}
