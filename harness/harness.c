/*
 * harness.c: scratch directories, child processes and port-file servers for
 * the tests (see harness.h for the contract).
 *
 * The registry: every running child's process group id sits in a fixed
 * array that the atexit hook and the fatal-signal handler walk to SIGKILL
 * each group. Only kill(2) and _exit(2) run in the signal handler, so it
 * stays async-signal-safe. fork happens in processes that may already run
 * gRPC threads, so the child does only async-signal-safe work between fork
 * and exec: every path and fd is prepared in the parent.
 */
#include "harness.h"
#include "harness_internal.h"
#include "trellis_portfile.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef TRELLIS_BUILD_DIR
#error "TRELLIS_BUILD_DIR must name the build tree (set by CMake)"
#endif

/* ---- time ------------------------------------------------------------ */

static int64_t clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t harness_now_ms(void)
{
    return clock_ms(CLOCK_REALTIME);
}

int64_t harness_mono_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}

void harness_sleep_ms(int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {.tv_sec = ms / 1000,
                          .tv_nsec = (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int harness_poll(int (*pred)(void *arg), void *arg, int64_t timeout_ms,
                 int64_t interval_ms)
{
    int64_t deadline = harness_mono_ms() + timeout_ms;
    if (interval_ms <= 0)
        interval_ms = 10;
    for (;;) {
        if (pred(arg))
            return 1;
        if (harness_mono_ms() >= deadline)
            return 0;
        harness_sleep_ms(interval_ms);
    }
}

/* ---- the registry of live process groups ----------------------------- */

static volatile pid_t live_pgids[HARNESS_MAX_LIVE];
static int registry_ready;

static void kill_all_live(void)
{
    for (int i = 0; i < HARNESS_MAX_LIVE; i++) {
        pid_t pg = live_pgids[i];
        if (pg > 0)
            kill(-pg, SIGKILL);
    }
}

static void reap_all_live(void)
{
    kill_all_live();
    for (int i = 0; i < HARNESS_MAX_LIVE; i++) {
        pid_t pg = live_pgids[i];
        if (pg > 0) {
            waitpid(pg, NULL, 0);
            live_pgids[i] = 0;
        }
    }
}

static void on_fatal_signal(int sig)
{
    kill_all_live();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void registry_init(void)
{
    if (registry_ready)
        return;
    registry_ready = 1;
    atexit(reap_all_live);
    int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_fatal_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(sigs[i], &sa, NULL);
    }
}

static int registry_add(pid_t pg)
{
    for (int i = 0; i < HARNESS_MAX_LIVE; i++) {
        if (live_pgids[i] == 0) {
            live_pgids[i] = pg;
            return 0;
        }
    }
    fprintf(stderr, "harness: more than %d live processes\n", HARNESS_MAX_LIVE);
    return -1;
}

static void registry_remove(pid_t pg)
{
    for (int i = 0; i < HARNESS_MAX_LIVE; i++)
        if (live_pgids[i] == pg)
            live_pgids[i] = 0;
}

/* ---- scratch directory ----------------------------------------------- */

const char *harness_build_dir(void)
{
    const char *env = getenv("TRELLIS_BUILD_DIR");
    return env && *env ? env : TRELLIS_BUILD_DIR;
}

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    int rc = flag == FTW_DP ? rmdir(path) : unlink(path);
    if (rc != 0 && errno != ENOENT)
        fprintf(stderr, "harness: remove %s: %s\n", path, strerror(errno));
    return 0;
}

static void rm_tree(const char *dir)
{
    nftw(dir, rm_entry, 32, FTW_DEPTH | FTW_PHYS);
}

int harness_mkdir_p(const char *path)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return -1;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(buf, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

static int valid_name(const char *name)
{
    if (!name || !*name || strlen(name) > 48)
        return 0;
    for (const char *c = name; *c; c++)
        if (!(*c == '_' || *c == '-' || *c == '.' || (*c >= '0' && *c <= '9') ||
              (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z')))
            return 0;
    return 1;
}

harness_t *harness_new(const char *name)
{
    if (!valid_name(name)) {
        fprintf(stderr, "harness: bad test name '%s'\n", name ? name : "");
        return NULL;
    }
    registry_init();
    harness_t *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    int n = snprintf(h->dir, sizeof h->dir, "%s/test-data/%s-%d",
                     harness_build_dir(), name, (int)getpid());
    if (n >= (int)sizeof h->dir)
        goto err;
    rm_tree(h->dir);
    if (harness_mkdir_p(h->dir) != 0) {
        fprintf(stderr, "harness: mkdir %s: %s\n", h->dir, strerror(errno));
        goto err;
    }
    return h;
err:
    free(h);
    return NULL;
}

const char *harness_dir(const harness_t *h)
{
    return h->dir;
}

char *harness_path(const harness_t *h, const char *leaf, char *buf, size_t len)
{
    if ((size_t)snprintf(buf, len, "%s/%s", h->dir, leaf) >= len) {
        fprintf(stderr, "harness: path %s/%s too long\n", h->dir, leaf);
        return NULL;
    }
    return buf;
}

int harness_own(harness_t *h, void *ptr)
{
    for (int i = 0; i < HARNESS_MAX_OWNED; i++) {
        if (!h->owned[i]) {
            h->owned[i] = ptr;
            return 0;
        }
    }
    fprintf(stderr, "harness: more than %d owned objects\n", HARNESS_MAX_OWNED);
    return -1;
}

static void proc_free(harness_proc_t *p);

static int exited_cleanly(int status)
{
    return status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void report_exit(const harness_proc_t *p, const char *how)
{
    if (WIFSIGNALED(p->status))
        fprintf(stderr, "harness: %s %s: killed by signal %d\n", p->name, how,
                WTERMSIG(p->status));
    else
        fprintf(stderr, "harness: %s %s: exit code %d\n", p->name, how,
                WIFEXITED(p->status) ? WEXITSTATUS(p->status) : -1);
    harness_proc_log_tail(p, 20);
}

int harness_stop_all(harness_t *h)
{
    int bad = 0;
    for (harness_proc_t *p = h->procs; p; p = p->next) {
        if (p->pid > 0) {
            harness_proc_stop(p, 5000);
            if (!exited_cleanly(p->status)) {
                report_exit(p, "did not stop cleanly on SIGTERM");
                bad++;
            }
        } else if (!p->signalled && !exited_cleanly(p->status)) {
            report_exit(p, "exited on its own");
            bad++;
        }
    }
    return bad;
}

void harness_free(harness_t *h, int passed)
{
    if (!h)
        return;
    harness_stop_all(h);
    while (h->procs) {
        harness_proc_t *next = h->procs->next;
        proc_free(h->procs);
        h->procs = next;
    }
    while (h->servers) {
        harness_server_t *next = h->servers->next;
        free(h->servers);
        h->servers = next;
    }
    for (int i = 0; i < HARNESS_MAX_OWNED; i++)
        free(h->owned[i]);
    const char *keep = getenv("TRELLIS_KEEP_SCRATCH");
    if (passed && !(keep && strcmp(keep, "1") == 0))
        rm_tree(h->dir);
    else
        fprintf(stderr, "harness: kept scratch dir %s\n", h->dir);
    free(h);
}

/* ---- processes ------------------------------------------------------- */

/* Resolve argv[0] like execvp would, in the parent (the child must not
 * allocate). */
static int resolve_exe(const char *arg0, char *out, size_t len)
{
    if (strchr(arg0, '/')) {
        snprintf(out, len, "%s", arg0);
        return access(out, X_OK) == 0 ? 0 : -1;
    }
    const char *path = getenv("PATH");
    char dirs[4096];
    snprintf(dirs, sizeof dirs, "%s:/usr/sbin:/sbin",
             path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
    char *save = NULL;
    for (char *d = strtok_r(dirs, ":", &save); d;
         d = strtok_r(NULL, ":", &save)) {
        if ((size_t)snprintf(out, len, "%s/%s", d, arg0) < len &&
            access(out, X_OK) == 0)
            return 0;
    }
    return -1;
}

static void free_argv(char **argv)
{
    for (int i = 0; argv[i]; i++) {
        free(argv[i]);
        argv[i] = NULL;
    }
}

static int copy_argv(char **dst, const char *const *src)
{
    char *tmp[HARNESS_MAX_ARGS + 1] = {0};
    int i = 0;
    for (; src[i]; i++) {
        if (i == HARNESS_MAX_ARGS || !(tmp[i] = strdup(src[i]))) {
            free_argv(tmp);
            fprintf(stderr, "harness: argv too long or out of memory\n");
            return -1;
        }
    }
    free_argv(dst);
    memcpy(dst, tmp, sizeof tmp);
    return 0;
}

/* Append a line naming what starts, so a log of many runs reads well. */
static void log_banner(int fd, char *const *argv)
{
    dprintf(fd, "=== harness %lld: start", (long long)harness_now_ms());
    for (int i = 0; argv[i]; i++)
        dprintf(fd, " %s", argv[i]);
    dprintf(fd, "\n");
}

/* In the child: only async-signal-safe calls from here to exec. */
static void child_exec(const char *exe, char *const *argv, int log_fd,
                       int null_fd, pid_t parent)
{
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(126);
    dup2(null_fd, 0);
    dup2(log_fd, 1);
    dup2(log_fd, 2);
    /* Ignored signals stay ignored across exec (gRPC ignores SIGPIPE). */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigaction(SIGPIPE, &dfl, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execv(exe, argv);
    static const char msg[] = "harness: exec failed\n";
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
    _exit(127);
}

static int proc_launch(harness_proc_t *p)
{
    char exe[PATH_MAX];
    if (resolve_exe(p->argv[0], exe, sizeof exe) != 0) {
        fprintf(stderr, "harness: %s: not found or not executable\n",
                p->argv[0]);
        return -1;
    }
    int log_fd = open(p->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (log_fd < 0 || null_fd < 0) {
        fprintf(stderr, "harness: open %s: %s\n", p->log, strerror(errno));
        goto err;
    }
    log_banner(log_fd, p->argv);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "harness: fork: %s\n", strerror(errno));
        goto err;
    }
    if (pid == 0)
        child_exec(exe, p->argv, log_fd, null_fd, parent);
    setpgid(pid, pid); /* also in the child: whichever runs first wins */
    p->pid = pid;
    p->signalled = 0;
    registry_add(pid);
    close(log_fd);
    close(null_fd);
    return 0;
err:
    if (log_fd >= 0)
        close(log_fd);
    if (null_fd >= 0)
        close(null_fd);
    return -1;
}

harness_proc_t *harness_spawn(harness_t *h, const char *name,
                              const char *const *argv)
{
    if (!valid_name(name) || !argv || !argv[0]) {
        fprintf(stderr, "harness: spawn: bad name or empty argv\n");
        return NULL;
    }
    harness_proc_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->pid = -1;
    p->owner = h;
    snprintf(p->name, sizeof p->name, "%s", name);
    char leaf[80];
    snprintf(leaf, sizeof leaf, "%s.log", name);
    if (!harness_path(h, leaf, p->log, sizeof p->log) ||
        copy_argv(p->argv, argv) != 0 || proc_launch(p) != 0) {
        proc_free(p);
        return NULL;
    }
    p->next = h->procs;
    h->procs = p;
    return p;
}

static void proc_free(harness_proc_t *p)
{
    if (p->pid > 0)
        harness_proc_kill(p);
    free_argv(p->argv);
    free(p);
}

int harness_proc_pid(const harness_proc_t *p)
{
    return p->pid;
}

const char *harness_proc_log(const harness_proc_t *p)
{
    return p->log;
}

/* Reap without blocking. Returns 1 and fills *status if it exited. */
static int proc_reap(harness_proc_t *p, int *status)
{
    int st = 0;
    pid_t r = waitpid(p->pid, &st, WNOHANG);
    if (r == 0)
        return 0;
    if (r < 0 && errno != ECHILD)
        return 0;
    /* Its group may hold children of its own: leave none behind. */
    kill(-p->pid, SIGKILL);
    registry_remove(p->pid);
    p->pid = -1;
    p->status = r < 0 ? -1 : st;
    if (status)
        *status = p->status;
    return 1;
}

int harness_proc_running(harness_proc_t *p)
{
    return p->pid > 0 && !proc_reap(p, NULL);
}

int harness_proc_signal(harness_proc_t *p, int sig)
{
    if (p->pid <= 0)
        return -1;
    if (sig == SIGKILL || sig == SIGTERM || sig == SIGINT)
        p->signalled = 1;
    return kill(-p->pid, sig) == 0 ? 0 : -1;
}

int harness_proc_wait(harness_proc_t *p, int64_t timeout_ms, int *status)
{
    if (p->pid <= 0)
        return -1;
    int64_t deadline = harness_mono_ms() + timeout_ms;
    for (;;) {
        if (proc_reap(p, status))
            return 0;
        if (harness_mono_ms() >= deadline)
            return -1;
        harness_sleep_ms(5);
    }
}

int harness_proc_kill(harness_proc_t *p)
{
    if (harness_proc_signal(p, SIGKILL) != 0)
        return -1;
    if (harness_proc_wait(p, 10000, NULL) != 0) {
        fprintf(stderr, "harness: %s (pid %d) survived SIGKILL\n", p->name,
                p->pid);
        return -1;
    }
    return 0;
}

int harness_proc_stop(harness_proc_t *p, int64_t timeout_ms)
{
    int st = 0;
    if (harness_proc_signal(p, SIGTERM) != 0)
        return -1;
    if (harness_proc_wait(p, timeout_ms, &st) == 0)
        return st;
    fprintf(stderr, "harness: %s ignored SIGTERM for %lld ms; SIGKILL\n",
            p->name, (long long)timeout_ms);
    harness_proc_signal(p, SIGKILL);
    harness_proc_wait(p, 10000, &st);
    return st;
}

int harness_proc_restart(harness_proc_t *p, const char *const *argv)
{
    if (harness_proc_running(p)) {
        fprintf(stderr, "harness: restart of running %s\n", p->name);
        return -1;
    }
    if (argv && copy_argv(p->argv, argv) != 0)
        return -1;
    return proc_launch(p);
}

void harness_proc_log_tail(const harness_proc_t *p, int nlines)
{
    FILE *f = fopen(p->log, "r");
    if (!f) {
        fprintf(stderr, "harness: no log %s\n", p->log);
        return;
    }
    /* Read the last 16 KiB at most and print its last nlines lines. */
    static char buf[16384];
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    long from = size > (long)sizeof buf - 1 ? size - (long)sizeof buf + 1 : 0;
    fseek(f, from, SEEK_SET);
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = '\0';
    size_t start = len;
    int seen = 0;
    while (start > 0) {
        if (buf[start - 1] == '\n' && start != len && ++seen == nlines)
            break;
        start--;
    }
    fprintf(stderr, "---- last lines of %s ----\n%s", p->log, buf + start);
    fprintf(stderr, "---- end of %s ----\n", p->log);
}

static void unlink_proc(harness_t *h, harness_proc_t *p)
{
    for (harness_proc_t **pp = &h->procs; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            return;
        }
    }
}

int harness_run(harness_t *h, const char *name, const char *const *argv,
                int64_t timeout_ms)
{
    harness_proc_t *p = harness_spawn(h, name, argv);
    if (!p)
        return -1;
    int st = 0, rc = -1;
    if (harness_proc_wait(p, timeout_ms, &st) != 0)
        fprintf(stderr, "harness: %s timed out after %lld ms\n", name,
                (long long)timeout_ms);
    else if (WIFEXITED(st))
        rc = WEXITSTATUS(st);
    if (rc != 0)
        harness_proc_log_tail(p, 30);
    unlink_proc(h, p);
    proc_free(p);
    return rc;
}
