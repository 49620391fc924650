/*
 * harness_http: what tests need to look at trellisd's HTTP side — the
 * ports its ready line names, a plain-socket HTTP/1.0 client (one request
 * per connection, read to EOF), and a headless Chromium that loads a page,
 * runs its scripts and hands back the DOM or a screenshot (see harness.h).
 *
 * The browser runs through harness_run (its own process group, killed on
 * timeout), with a profile directory in the scratch dir; its DOM goes to
 * <scratch>/<name>.html, its chatter to <scratch>/<name>.log.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define BROWSER_TIMEOUT_MS 60000
#define BROWSER_VIRTUAL_TIME "--virtual-time-budget=5000"

/* The whole file at path, NUL-terminated (malloc'd), or NULL. */
static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n - 1, f);
        if (n + 1 < cap)
            break;
        char *b = realloc(buf, cap *= 2);
        if (!b)
            free(buf);
        buf = b;
    }
    fclose(f);
    if (buf)
        buf[n] = '\0';
    return buf;
}

int harness_ready_port(const harness_proc_t *p, const char *name)
{
    char *log = read_all(harness_proc_log(p));
    if (!log)
        return -1;
    char key[64];
    snprintf(key, sizeof key, " %s=", name);
    const char *last = NULL;
    for (const char *r = log; (r = strstr(r, "trellisd ready")); r++) {
        const char *eol = strchr(r, '\n');
        const char *k = strstr(r, key);
        if (k && (!eol || k < eol))
            last = k + strlen(key);
    }
    int port = -1;
    const char *colon = last ? strchr(last, ':') : NULL;
    if (colon)
        port = atoi(colon + 1);
    free(log);
    return port;
}

static int connect_local(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Read fd to EOF into a NUL-terminated buffer (malloc'd), or NULL. */
static char *read_to_eof(int fd)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            char *b = realloc(buf, cap *= 2);
            if (!b)
                free(buf);
            buf = b;
            continue;
        }
        ssize_t r = read(fd, buf + n, cap - n - 1);
        if (r < 0) {
            free(buf);
            return NULL;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (buf)
        buf[n] = '\0';
    return buf;
}

int harness_http(int port, const char *request, size_t len, char **head,
                 char **body)
{
    int fd = connect_local(port);
    if (fd < 0) {
        fprintf(stderr, "harness: http: cannot connect to port %d\n", port);
        return -1;
    }
    ssize_t w = write(fd, request, len);
    char *all = w == (ssize_t)len ? read_to_eof(fd) : NULL;
    close(fd);
    int code = 0;
    char *sep = all ? strstr(all, "\r\n\r\n") : NULL;
    if (!sep || sscanf(all, "HTTP/1.%*d %d", &code) != 1) {
        fprintf(stderr, "harness: http: no answer from port %d\n", port);
        free(all);
        return -1;
    }
    *sep = '\0';
    if (body)
        *body = strdup(sep + 4);
    if (head)
        *head = strdup(all);
    free(all);
    return code;
}

const char *harness_browser(void)
{
    static char found[1024];
    const char *env = getenv("TRELLIS_CHROMIUM");
    if (env && *env)
        return access(env, X_OK) == 0 ? env : NULL;
    const char *path = getenv("PATH");
    char dirs[4096];
    snprintf(dirs, sizeof dirs, "%s", path ? path : "/usr/bin:/bin");
    for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d;
         d = strtok_r(NULL, ":", &save)) {
        snprintf(found, sizeof found, "%s/chromium", d);
        if (access(found, X_OK) == 0)
            return found;
    }
    return NULL;
}

/* Run the browser with its common flags, then extra, then url; stdout to
 * out_path when not NULL. */
static int run_browser(harness_t *h, const char *name, const char *url,
                       const char *const *extra, const char *out_path)
{
    const char *browser = harness_browser();
    if (!browser) {
        fprintf(stderr, "harness: no chromium (TRELLIS_CHROMIUM or PATH)\n");
        return -1;
    }
    char profile[1024], profile_flag[1100];
    harness_path(h, "browser-profile", profile, sizeof profile);
    mkdir(profile, 0700);
    snprintf(profile_flag, sizeof profile_flag, "--user-data-dir=%s", profile);
    /* sh only redirects stdout: the arguments reach the browser as given. */
    const char *argv[32] = {"/bin/sh",
                            "-c",
                            "out=$1; shift; exec \"$@\" >\"$out\"",
                            "sh",
                            out_path ? out_path : "/dev/null",
                            browser,
                            "--headless",
                            "--disable-gpu",
                            "--no-sandbox",
                            "--no-first-run",
                            "--disable-extensions",
                            "--hide-scrollbars",
                            profile_flag,
                            BROWSER_VIRTUAL_TIME};
    size_t n = 14;
    for (size_t i = 0; extra && extra[i] && n < 30; i++)
        argv[n++] = extra[i];
    argv[n++] = url;
    argv[n] = NULL;
    int rc = harness_run(h, name, argv, BROWSER_TIMEOUT_MS);
    if (rc != 0)
        fprintf(stderr, "harness: %s exited %d on %s\n", browser, rc, url);
    return rc == 0 ? 0 : -1;
}

int harness_browser_dom(harness_t *h, const char *name, const char *url,
                        char **dom)
{
    char leaf[256], out[1024];
    snprintf(leaf, sizeof leaf, "%s.html", name);
    harness_path(h, leaf, out, sizeof out);
    const char *extra[] = {"--dump-dom", NULL};
    if (run_browser(h, name, url, extra, out) != 0)
        return -1;
    *dom = read_all(out);
    if (!*dom || !**dom) {
        fprintf(stderr, "harness: the browser gave no DOM for %s\n", url);
        free(*dom);
        *dom = NULL;
        return -1;
    }
    return 0;
}

int harness_browser_screenshot(harness_t *h, const char *name, const char *url,
                               const char *path, int width, int height)
{
    char shot[1100], size[64];
    snprintf(shot, sizeof shot, "--screenshot=%s", path);
    snprintf(size, sizeof size, "--window-size=%d,%d", width, height);
    const char *extra[] = {shot, size, NULL};
    if (run_browser(h, name, url, extra, NULL) != 0)
        return -1;
    if (access(path, R_OK) != 0) {
        fprintf(stderr, "harness: no screenshot at %s\n", path);
        return -1;
    }
    return 0;
}
