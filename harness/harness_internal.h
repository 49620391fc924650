/*
 * harness_internal.h: what the harness's own source files share and tests
 * do not use.
 */
#ifndef TRELLIS_HARNESS_INTERNAL_H
#define TRELLIS_HARNESS_INTERNAL_H

#include "harness.h"

#include <limits.h>
#include <sys/types.h>

#define HARNESS_MAX_ARGS 64
#define HARNESS_MAX_LIVE 256

struct harness_proc {
    harness_t *owner;
    harness_proc_t *next; /* in owner's list */
    char name[64];
    char log[PATH_MAX];
    char *argv[HARNESS_MAX_ARGS + 1]; /* malloc'd strings */
    pid_t pid;                        /* -1 when not running */
    int status;                       /* wait status of the last exit */
    int signalled; /* the harness sent SIGTERM, SIGKILL or SIGINT */
};

#define HARNESS_MAX_OWNED 64

struct harness {
    char dir[PATH_MAX];
    harness_proc_t *procs;
    harness_server_t *servers;
    void *owned[HARNESS_MAX_OWNED]; /* freed by harness_free */
    harness_mariadb_t *tm_store_db; /* TRELLIS_TEST_STORE=mysql */
};

struct harness_server {
    harness_server_t *next;
    harness_proc_t *proc;
    char port_file[PATH_MAX];
    char data_dir[PATH_MAX]; /* "" when none */
    char addr[64];
    int port;
};

/* Hand ptr (malloc'd) to h: harness_free frees it. Returns 0, or -1 (ptr
 * not taken) when h holds too many. */
int harness_own(harness_t *h, void *ptr);

/* mkdir -p path (mode 0755): 0, or -1 when a part cannot be made or the
 * path is too long. */
int harness_mkdir_p(const char *path);

#endif /* TRELLIS_HARNESS_INTERNAL_H */
