/*
 * tm_fault: the store wrapper, the SQLite shim VFS and the control socket
 * of trellisd-faults (see tm_fault.h). Test-only code: it is linked into no
 * binary that is installed.
 */
#include "tm_fault.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "tm_store_impl.h"
#include "tm_timer.h"

/* ---- state shared by the wrapper and the control thread ---------------- */

static pthread_mutex_t fault_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t fault_cv = PTHREAD_COND_INITIALIZER;
static int holding;               /* commit groups wait while set */
static int held_now;              /* a group is waiting right now */
static unsigned long held_seq;    /* groups that were held, ever */
static unsigned long stepped_seq; /* "step": groups up to this one pass */
static char held_gids[1024];      /* its gids, for wait-held */
static int fail_transient;        /* next N commits fail, nothing stored */
static int fail_permanent;        /* next N groups: every write refused */
static int lose_answer;           /* next N groups: committed, answer lost */
static int stalling_reads;
static unsigned long commits;
static atomic_int disk_full;

static tm_server_t *server;
static tm_engine_t *engine;
static char refused_method[200]; /* fail-call-start; "": none */
static unsigned long starts_refused;
static const tm_store_ops_t *real_ops;
static tm_store_ops_t fault_ops;

/* ---- the store wrapper --------------------------------------------------- */

static void note_held_gids(const tm_write_t *group)
{
    size_t n = 0;
    held_gids[0] = '\0';
    for (const tm_write_t *w = group; w && n + 2 < sizeof(held_gids);
         w = w->next) {
        int k = snprintf(held_gids + n, sizeof(held_gids) - n, "%s%s:%s%s",
                         n ? " " : "", w->gid, tm_tx_status_name(w->status),
                         w->insert ? ":insert" : "");
        if (k < 0 || (size_t)k >= sizeof(held_gids) - n)
            break;
        n += (size_t)k;
    }
}

/* Wait while the test holds commits (until "release", or "step" lets
 * this one group through and holds the next). fault_mu held. */
static void wait_while_holding(const tm_write_t *group)
{
    if (!holding)
        return;
    note_held_gids(group);
    unsigned long seq = ++held_seq;
    held_now = 1;
    pthread_cond_broadcast(&fault_cv);
    while (holding && stepped_seq < seq)
        pthread_cond_wait(&fault_cv, &fault_mu);
    if (held_seq == seq)
        held_now = 0;
}

/* A group that committed, but whose answer is "lost" (the connection
 * dropped after COMMIT reached the database): it is held until released,
 * as an outage would, then reported failed so the store applies it again.
 * fault_mu held. Returns 0, or -1 with err. */
static int lose_the_answer(tm_write_t *group, char *err, size_t errlen)
{
    if (lose_answer <= 0)
        return 0;
    lose_answer--;
    holding = 1;
    wait_while_holding(group);
    snprintf(err, errlen, "injected: the answer to a committed group was lost");
    return -1;
}

static int fault_commit_group(tm_store_t *s, tm_write_t *group, int attempt,
                              char *err, size_t errlen)
{
    pthread_mutex_lock(&fault_mu);
    wait_while_holding(group);
    if (fail_transient > 0) {
        fail_transient--;
        pthread_mutex_unlock(&fault_mu);
        snprintf(err, errlen, "injected transient failure (attempt %d)",
                 attempt);
        return -1;
    }
    if (fail_permanent > 0) {
        fail_permanent--;
        pthread_mutex_unlock(&fault_mu);
        for (tm_write_t *w = group; w; w = w->next)
            w->result = TM_WRITE_FAILED;
        return 0;
    }
    pthread_mutex_unlock(&fault_mu);
    int rc = real_ops->commit_group(s, group, attempt, err, errlen);
    if (rc == 0) {
        pthread_mutex_lock(&fault_mu);
        commits++;
        rc = lose_the_answer(group, err, errlen);
        pthread_mutex_unlock(&fault_mu);
    }
    return rc;
}

static void wait_while_stalling(void)
{
    pthread_mutex_lock(&fault_mu);
    while (stalling_reads)
        pthread_cond_wait(&fault_cv, &fault_mu);
    pthread_mutex_unlock(&fault_mu);
}

static int fault_peek(tm_store_t *s, const char *gid, tm_tx_status_t *status,
                      uint64_t *submit_hash, char *err, size_t errlen)
{
    wait_while_stalling();
    return real_ops->peek(s, gid, status, submit_hash, err, errlen);
}

static int fault_get(tm_store_t *s, const char *gid, tm_trans_t **out,
                     char *err, size_t errlen)
{
    wait_while_stalling();
    return real_ops->get(s, gid, out, err, errlen);
}

static int fault_list(tm_store_t *s, const tm_store_filter_t *f,
                      tm_trans_t ***out, size_t *n, char *err, size_t errlen)
{
    wait_while_stalling();
    return real_ops->list(s, f, out, n, err, errlen);
}

/* ---- the SQLite shim VFS: SQLITE_FULL on command ------------------------ */

typedef struct {
    sqlite3_file base; /* pMethods: shim_io */
    sqlite3_file *real;
} shim_file_t;

static sqlite3_vfs *real_vfs;
static sqlite3_vfs shim_vfs;
static sqlite3_io_methods shim_io;

static sqlite3_file *real_of(sqlite3_file *f)
{
    return ((shim_file_t *)f)->real;
}

static int shim_close(sqlite3_file *f)
{
    sqlite3_file *r = real_of(f);
    int rc = r->pMethods ? r->pMethods->xClose(r) : SQLITE_OK;
    sqlite3_free(r);
    return rc;
}

static int shim_read(sqlite3_file *f, void *buf, int n, sqlite3_int64 off)
{
    sqlite3_file *r = real_of(f);
    return r->pMethods->xRead(r, buf, n, off);
}

static int shim_write(sqlite3_file *f, const void *buf, int n,
                      sqlite3_int64 off)
{
    if (atomic_load(&disk_full))
        return SQLITE_FULL;
    sqlite3_file *r = real_of(f);
    return r->pMethods->xWrite(r, buf, n, off);
}

static int shim_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    sqlite3_file *r = real_of(f);
    return r->pMethods->xTruncate(r, size);
}

static int shim_sync(sqlite3_file *f, int flags)
{
    if (atomic_load(&disk_full))
        return SQLITE_FULL;
    sqlite3_file *r = real_of(f);
    return r->pMethods->xSync(r, flags);
}

static int shim_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    sqlite3_file *r = real_of(f);
    return r->pMethods->xFileSize(r, size);
}

static int shim_lock(sqlite3_file *f, int level)
{
    sqlite3_file *r = real_of(f);
    return r->pMethods->xLock(r, level);
}

static int shim_unlock(sqlite3_file *f, int level)
{
    sqlite3_file *r = real_of(f);
    return r->pMethods->xUnlock(r, level);
}

static int shim_check_reserved(sqlite3_file *f, int *out)
{
    sqlite3_file *r = real_of(f);
    return r->pMethods->xCheckReservedLock(r, out);
}

static int shim_file_control(sqlite3_file *f, int op, void *arg)
{
    sqlite3_file *r = real_of(f);
    return r->pMethods->xFileControl(r, op, arg);
}

static int shim_sector_size(sqlite3_file *f)
{
    sqlite3_file *r = real_of(f);
    return r->pMethods->xSectorSize(r);
}

static int shim_device_characteristics(sqlite3_file *f)
{
    sqlite3_file *r = real_of(f);
    return r->pMethods->xDeviceCharacteristics(r);
}

static int shim_shm_map(sqlite3_file *f, int pg, int pgsz, int extend,
                        void volatile **pp)
{
    sqlite3_file *r = real_of(f);
    return r->pMethods->xShmMap(r, pg, pgsz, extend, pp);
}

static int shim_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
    sqlite3_file *r = real_of(f);
    return r->pMethods->xShmLock(r, offset, n, flags);
}

static void shim_shm_barrier(sqlite3_file *f)
{
    sqlite3_file *r = real_of(f);
    r->pMethods->xShmBarrier(r);
}

static int shim_shm_unmap(sqlite3_file *f, int del)
{
    sqlite3_file *r = real_of(f);
    return r->pMethods->xShmUnmap(r, del);
}

static int shim_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f,
                     int flags, int *out_flags)
{
    (void)vfs;
    shim_file_t *sf = (shim_file_t *)f;
    sf->base.pMethods = NULL;
    sf->real = sqlite3_malloc(real_vfs->szOsFile);
    if (!sf->real)
        return SQLITE_NOMEM;
    memset(sf->real, 0, (size_t)real_vfs->szOsFile);
    int rc = real_vfs->xOpen(real_vfs, name, sf->real, flags, out_flags);
    if (rc != SQLITE_OK) {
        sqlite3_free(sf->real);
        sf->real = NULL;
        return rc;
    }
    sf->base.pMethods = &shim_io;
    return SQLITE_OK;
}

static int shim_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
    (void)vfs;
    return real_vfs->xDelete(real_vfs, name, sync_dir);
}

static int shim_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
    (void)vfs;
    return real_vfs->xAccess(real_vfs, name, flags, out);
}

static int shim_full_pathname(sqlite3_vfs *vfs, const char *name, int n,
                              char *out)
{
    (void)vfs;
    return real_vfs->xFullPathname(real_vfs, name, n, out);
}

static int shim_randomness(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    return real_vfs->xRandomness(real_vfs, n, out);
}

static int shim_sleep(sqlite3_vfs *vfs, int us)
{
    (void)vfs;
    return real_vfs->xSleep(real_vfs, us);
}

static int shim_current_time(sqlite3_vfs *vfs, double *out)
{
    (void)vfs;
    return real_vfs->xCurrentTime(real_vfs, out);
}

static int shim_last_error(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    return real_vfs->xGetLastError(real_vfs, n, out);
}

static int shim_current_time_int64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
    (void)vfs;
    return real_vfs->xCurrentTimeInt64(real_vfs, out);
}

int tm_fault_vfs_register(char *err, size_t errlen)
{
    real_vfs = sqlite3_vfs_find(NULL);
    if (!real_vfs || real_vfs->iVersion < 2) {
        snprintf(err, errlen, "no default SQLite VFS to wrap");
        return -1;
    }
    shim_io = (sqlite3_io_methods){
        .iVersion = 2,
        .xClose = shim_close,
        .xRead = shim_read,
        .xWrite = shim_write,
        .xTruncate = shim_truncate,
        .xSync = shim_sync,
        .xFileSize = shim_file_size,
        .xLock = shim_lock,
        .xUnlock = shim_unlock,
        .xCheckReservedLock = shim_check_reserved,
        .xFileControl = shim_file_control,
        .xSectorSize = shim_sector_size,
        .xDeviceCharacteristics = shim_device_characteristics,
        .xShmMap = shim_shm_map,
        .xShmLock = shim_shm_lock,
        .xShmBarrier = shim_shm_barrier,
        .xShmUnmap = shim_shm_unmap,
    };
    shim_vfs = (sqlite3_vfs){
        .iVersion = 2,
        .szOsFile = (int)sizeof(shim_file_t),
        .mxPathname = real_vfs->mxPathname,
        .zName = "trellis-fault",
        .xOpen = shim_open,
        .xDelete = shim_delete,
        .xAccess = shim_access,
        .xFullPathname = shim_full_pathname,
        .xRandomness = shim_randomness,
        .xSleep = shim_sleep,
        .xCurrentTime = shim_current_time,
        .xGetLastError = shim_last_error,
        .xCurrentTimeInt64 = shim_current_time_int64,
    };
    if (sqlite3_vfs_register(&shim_vfs, 1) != SQLITE_OK) {
        snprintf(err, errlen, "cannot register the fault VFS");
        return -1;
    }
    return 0;
}

/* ---- the control socket ------------------------------------------------- */

static int on_off(const char *arg)
{
    return strcmp(arg, "on") == 0;
}

/* wait-held: until a group is held or ms passed. */
static void command_wait_held(long ms, char *reply, size_t len)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&fault_mu);
    while (!held_now &&
           pthread_cond_timedwait(&fault_cv, &fault_mu, &until) == 0) {
    }
    if (held_now)
        snprintf(reply, len, "ok %s", held_gids);
    else
        snprintf(reply, len, "err timeout");
    pthread_mutex_unlock(&fault_mu);
}

/* fail-call-start METHOD|off */
static void command_fail_call_start(const char *arg)
{
    if (strcmp(arg, "off") == 0)
        refused_method[0] = '\0';
    else
        snprintf(refused_method, sizeof(refused_method), "%s", arg);
}

static void run_command(char *line, char *reply, size_t len)
{
    char verb[32] = "", arg[200] = "";
    sscanf(line, "%31s %199s", verb, arg);
    long n = strtol(arg, NULL, 10);
    snprintf(reply, len, "ok");
    pthread_mutex_lock(&fault_mu);
    if (strcmp(verb, "hold") == 0) {
        holding = 1;
    } else if (strcmp(verb, "release") == 0) {
        holding = 0;
    } else if (strcmp(verb, "step") == 0) {
        stepped_seq = held_seq; /* the held group goes; the next one waits */
        held_now = 0;
    } else if (strcmp(verb, "fail-transient") == 0) {
        fail_transient = (int)n;
    } else if (strcmp(verb, "fail-permanent") == 0) {
        fail_permanent = (int)n;
    } else if (strcmp(verb, "lose-answer") == 0) {
        lose_answer = (int)n;
    } else if (strcmp(verb, "stall-reads") == 0) {
        stalling_reads = on_off(arg);
    } else if (strcmp(verb, "disk-full") == 0) {
        atomic_store(&disk_full, on_off(arg));
    } else if (strcmp(verb, "wall-offset") == 0) {
        tm_wall_set_offset_ms(n);
    } else if (strcmp(verb, "live-calls") == 0) {
        snprintf(reply, len, "ok %ld",
                 server ? tm_server_live_calls(server) : -1L);
    } else if (strcmp(verb, "waiters") == 0) {
        snprintf(reply, len, "ok %ld",
                 engine ? (long)tm_engine_waiters(engine) : -1L);
    } else if (strcmp(verb, "fail-call-start") == 0) {
        command_fail_call_start(arg);
    } else if (strcmp(verb, "call-starts-refused") == 0) {
        snprintf(reply, len, "ok %lu", starts_refused);
    } else if (strcmp(verb, "commits") == 0) {
        snprintf(reply, len, "ok %lu", commits);
    } else if (strcmp(verb, "wait-held") == 0) {
        pthread_mutex_unlock(&fault_mu);
        command_wait_held(n, reply, len);
        return;
    } else {
        snprintf(reply, len, "err unknown command '%s'", verb);
    }
    pthread_cond_broadcast(&fault_cv);
    pthread_mutex_unlock(&fault_mu);
}

static void serve_client(int fd)
{
    char line[256];
    size_t n = 0;
    while (n + 1 < sizeof(line)) {
        ssize_t k = read(fd, line + n, 1);
        if (k <= 0 || line[n] == '\n')
            break;
        n++;
    }
    line[n] = '\0';
    char reply[1200];
    run_command(line, reply, sizeof(reply));
    size_t len = strlen(reply);
    reply[len++] = '\n';
    ssize_t w = write(fd, reply, len);
    (void)w;
}

static void *control_main(void *arg)
{
    int lfd = (int)(intptr_t)arg;
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR)
                continue;
            return NULL;
        }
        serve_client(fd);
        close(fd);
    }
}

static int start_control(const char *path, char *err, size_t errlen)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(addr.sun_path)) {
        snprintf(err, errlen, "fault socket path too long: %s", path);
        return -1;
    }
    strcpy(addr.sun_path, path);
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
        listen(fd, 16) != 0) {
        snprintf(err, errlen, "fault socket %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    pthread_t t;
    if (pthread_create(&t, NULL, control_main, (void *)(intptr_t)fd) != 0) {
        snprintf(err, errlen, "cannot start the fault thread");
        close(fd);
        return -1;
    }
    pthread_detach(t);
    return 0;
}

void tm_fault_set_server(tm_server_t *srv)
{
    pthread_mutex_lock(&fault_mu);
    server = srv;
    pthread_mutex_unlock(&fault_mu);
}

void tm_fault_set_engine(tm_engine_t *eng)
{
    pthread_mutex_lock(&fault_mu);
    engine = eng;
    pthread_mutex_unlock(&fault_mu);
}

/* The caller's start gate: refuse the calls of the method named by
 * fail-call-start. */
static int gate_call_start(void *user, const char *host_port,
                           const char *method, char *err, size_t errlen)
{
    (void)user;
    pthread_mutex_lock(&fault_mu);
    int refuse = refused_method[0] && strcmp(method, refused_method) == 0;
    if (refuse)
        starts_refused++;
    pthread_mutex_unlock(&fault_mu);
    if (refuse)
        snprintf(err, errlen, "injected: cannot start a call to %s%s",
                 host_port, method);
    return refuse;
}

void tm_fault_set_caller(tm_caller_t *caller)
{
    tm_caller_set_start_gate(caller, gate_call_start, NULL);
}

int tm_fault_install(tm_store_t *store, const char *socket_path, char *err,
                     size_t errlen)
{
    const char *offset = getenv("TRELLIS_FAULT_WALL_OFFSET_MS");
    if (offset && *offset)
        tm_wall_set_offset_ms(strtoll(offset, NULL, 10));
    real_ops = store->ops;
    fault_ops = *real_ops;
    fault_ops.commit_group = fault_commit_group;
    fault_ops.peek = fault_peek;
    fault_ops.get = fault_get;
    fault_ops.list = fault_list;
    store->ops = &fault_ops;
    if (socket_path && *socket_path)
        return start_control(socket_path, err, errlen);
    return 0;
}
