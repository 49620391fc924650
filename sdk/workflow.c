/*
 * workflow.c — workflows (trellis_workflow.h): the registry of functions
 * and its service address, the set of gids running forward here, and
 * trellis_workflow_execute (the run itself is workflow_run.c's).
 *
 * Invariants:
 *   - one forward run per gid at a time in this process (running[], under
 *     the lock); phase-2 re-runs (an undo, the hooks) replay only, change
 *     nothing in trellisd and need no such guard — they must not wait for
 *     it either, since trellisd calls them while an execute may still wait
 *     for the outcome it is driving;
 *   - entries are never removed, so a copy of one stays valid while the
 *     registry lives.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trellis_target.h"
#include "workflow_impl.h"

#define NAME_MAX_LEN 128

/* ---- the registry ---------------------------------------------------- */

trellis_rc_t trellis_workflows_new(trellis_client_t *c,
                                   trellis_workflows_t **out, char *err,
                                   size_t errlen)
{
    tr_err_clear(err, errlen);
    if (out == NULL || c == NULL)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen, "%s is NULL",
                       out == NULL ? "out" : "client");
    *out = NULL;
    trellis_workflows_t *w = calloc(1, sizeof *w);
    if (w == NULL)
        return tr_errf(TRELLIS_RESOURCE_EXHAUSTED, err, errlen,
                       "out of memory for a workflow registry");
    w->client = c;
    pthread_mutex_init(&w->lock, NULL);
    *out = w;
    return TRELLIS_OK;
}

void trellis_workflows_free(trellis_workflows_t *w)
{
    if (w == NULL)
        return;
    for (size_t i = 0; i < w->n_entries; i++)
        free(w->entries[i].name);
    free(w->entries);
    for (size_t i = 0; i < w->n_running; i++)
        free(w->running[i]);
    free(w->running);
    free(w->resume_target);
    pthread_mutex_destroy(&w->lock);
    free(w);
}

/* 1..NAME_MAX_LEN of the characters trellisd allows in ids. */
static trellis_rc_t check_name(const char *name, char *err, size_t errlen)
{
    if (name == NULL || name[0] == '\0')
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "workflow name is empty");
    size_t n = strlen(name);
    if (n > NAME_MAX_LEN)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "workflow name is %zu characters long; at most %d", n,
                       NAME_MAX_LEN);
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                 (ch >= '0' && ch <= '9') || strchr("_.:-", ch) != NULL;
        if (!ok)
            return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                           "workflow name has character 0x%02x at offset "
                           "%zu; allowed are letters, digits and _ . : -",
                           (unsigned char)ch, i);
    }
    return TRELLIS_OK;
}

/* The entry of name; the caller holds the lock. */
static wf_entry_t *find_locked(trellis_workflows_t *w, const char *name)
{
    for (size_t i = 0; i < w->n_entries; i++)
        if (strcmp(w->entries[i].name, name) == 0)
            return &w->entries[i];
    return NULL;
}

trellis_rc_t trellis_workflows_register(trellis_workflows_t *w,
                                        const char *name, trellis_wf_fn fn,
                                        void *user, char *err, size_t errlen)
{
    tr_err_clear(err, errlen);
    if (w == NULL || fn == NULL)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen, "%s is NULL",
                       w == NULL ? "registry" : "function");
    trellis_rc_t rc = check_name(name, err, errlen);
    if (rc != TRELLIS_OK)
        return rc;
    char *copy = strdup(name);
    if (copy == NULL)
        return tr_errf(TRELLIS_RESOURCE_EXHAUSTED, err, errlen,
                       "out of memory registering workflow %s", name);
    pthread_mutex_lock(&w->lock);
    if (find_locked(w, name) != NULL) {
        rc = tr_errf(TRELLIS_ALREADY_EXISTS, err, errlen,
                     "workflow %s is already registered", name);
    } else if (w->n_entries == w->cap_entries) {
        size_t cap = w->cap_entries ? 2 * w->cap_entries : 8;
        wf_entry_t *grown = realloc(w->entries, cap * sizeof *grown);
        if (grown == NULL) {
            rc = tr_errf(TRELLIS_RESOURCE_EXHAUSTED, err, errlen,
                         "out of memory registering workflow %s", name);
        } else {
            w->entries = grown;
            w->cap_entries = cap;
        }
    }
    if (rc == TRELLIS_OK) {
        w->entries[w->n_entries++] = (wf_entry_t){copy, fn, user};
        copy = NULL;
    }
    pthread_mutex_unlock(&w->lock);
    free(copy);
    return rc;
}

int tr_wf_lookup(trellis_workflows_t *w, const char *name, wf_entry_t *out)
{
    pthread_mutex_lock(&w->lock);
    const wf_entry_t *e = find_locked(w, name);
    if (e != NULL)
        *out = *e;
    pthread_mutex_unlock(&w->lock);
    return e != NULL ? 0 : -1;
}

trellis_rc_t trellis_workflows_set_address(trellis_workflows_t *w,
                                           const char *host_port, char *err,
                                           size_t errlen)
{
    tr_err_clear(err, errlen);
    if (w == NULL || host_port == NULL)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen, "%s is NULL",
                       w == NULL ? "registry" : "host_port");
    size_t n = strlen(host_port) + sizeof WF_RESUME_METHOD;
    char *target = malloc(n);
    if (target == NULL)
        return tr_errf(TRELLIS_RESOURCE_EXHAUSTED, err, errlen,
                       "out of memory for the resume target");
    snprintf(target, n, "%s" WF_RESUME_METHOD, host_port);
    if (strchr(host_port, '/') != NULL ||
        trellis_target_parse(target, NULL) != TRELLIS_TARGET_OK) {
        free(target);
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "address \"%.200s\" is not host:port", host_port);
    }
    pthread_mutex_lock(&w->lock);
    free(w->resume_target);
    w->resume_target = target;
    pthread_mutex_unlock(&w->lock);
    return TRELLIS_OK;
}

char *tr_wf_resume_target(trellis_workflows_t *w)
{
    pthread_mutex_lock(&w->lock);
    char *t = w->resume_target != NULL ? strdup(w->resume_target) : NULL;
    pthread_mutex_unlock(&w->lock);
    return t;
}

/* ---- gids running here ----------------------------------------------- */

int tr_wf_running_add(trellis_workflows_t *w, const char *gid)
{
    int rc = 0;
    char *copy = strdup(gid);
    pthread_mutex_lock(&w->lock);
    for (size_t i = 0; i < w->n_running && rc == 0; i++)
        if (strcmp(w->running[i], gid) == 0)
            rc = -1;
    if (rc == 0 && w->n_running == w->cap_running) {
        size_t cap = w->cap_running ? 2 * w->cap_running : 8;
        char **grown = realloc(w->running, cap * sizeof *grown);
        if (grown != NULL) {
            w->running = grown;
            w->cap_running = cap;
        }
    }
    /* Out of memory: refused too, as "busy"; the caller tries later. */
    if (rc == 0 && (copy == NULL || w->n_running == w->cap_running))
        rc = -1;
    if (rc == 0) {
        w->running[w->n_running++] = copy;
        copy = NULL;
    }
    pthread_mutex_unlock(&w->lock);
    free(copy);
    return rc;
}

void tr_wf_running_remove(trellis_workflows_t *w, const char *gid)
{
    pthread_mutex_lock(&w->lock);
    for (size_t i = 0; i < w->n_running; i++) {
        if (strcmp(w->running[i], gid) == 0) {
            free(w->running[i]);
            w->running[i] = w->running[--w->n_running];
            break;
        }
    }
    pthread_mutex_unlock(&w->lock);
}
/* ---- execute --------------------------------------------------------- */

trellis_rc_t trellis_workflow_execute(trellis_workflows_t *w, const char *name,
                                      const char *gid, const void *input,
                                      size_t len, const trellis_options_t *o,
                                      trellis_trans_status_t *status,
                                      char *reason, size_t reasonlen, char *err,
                                      size_t errlen)
{
    tr_err_clear(err, errlen);
    tr_err_clear(reason, reasonlen);
    if (status != NULL)
        *status = TRELLIS_TRANS_PREPARED;
    if (w == NULL || name == NULL || gid == NULL)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen, "%s is NULL",
                       w == NULL      ? "registry"
                       : name == NULL ? "name"
                                      : "gid");
    if (input == NULL && len > 0)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "input is NULL but len is %zu", len);
    wf_entry_t e;
    if (tr_wf_lookup(w, name, &e) != 0)
        return tr_errf(TRELLIS_NOT_FOUND, err, errlen,
                       "workflow %.200s is not registered", name);
    if (tr_wf_running_add(w, gid) != 0)
        return tr_errf(TRELLIS_FAILED_PRECONDITION, err, errlen,
                       "workflow %.200s is running in this process now", gid);
    int stopped = 0;
    trellis_rc_t rc =
        tr_wf_forward(w, &e, gid, input, len, o, o != NULL && o->wait_result,
                      status, reason, reasonlen, &stopped, err, errlen);
    tr_wf_running_remove(w, gid);
    return rc;
}
