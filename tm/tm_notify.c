/*
 * tm_notify: the service manager's notification socket (see tm_notify.h).
 * The address rules follow systemd's documented sd_notify protocol: an
 * absolute path is a socket file; a leading '@' stands for the NUL that
 * starts an abstract-namespace name, whose length is the address's
 * length (no terminating NUL). Anything else is refused rather than
 * guessed at, so a misconfigured unit fails loudly in the log.
 */
#include "tm_notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* The socket address for name; its length in *len. 0, or -1 with err. */
static int notify_address(const char *name, struct sockaddr_un *addr,
                          socklen_t *len, char *err, size_t errlen)
{
    size_t n = strlen(name);
    memset(addr, 0, sizeof(*addr));
    addr->sun_family = AF_UNIX;
    if (name[0] != '/' && name[0] != '@') {
        snprintf(err, errlen,
                 "NOTIFY_SOCKET \"%s\" is neither an absolute path nor an "
                 "abstract name starting with @",
                 name);
        return -1;
    }
    if (n >= sizeof(addr->sun_path)) {
        snprintf(err, errlen,
                 "NOTIFY_SOCKET is %zu bytes long; a socket address holds "
                 "at most %zu",
                 n, sizeof(addr->sun_path) - 1);
        return -1;
    }
    memcpy(addr->sun_path, name, n);
    if (name[0] == '@') {
        addr->sun_path[0] = '\0';
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    } else {
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    }
    return 0;
}

int tm_notify_send(const char *state, char *err, size_t errlen)
{
    const char *name = getenv("NOTIFY_SOCKET");
    if (!name || !*name)
        return 0;
    struct sockaddr_un addr;
    socklen_t len;
    if (notify_address(name, &addr, &len, err, errlen) != 0)
        return -1;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket for NOTIFY_SOCKET: %s", strerror(errno));
        return -1;
    }
    size_t n = strlen(state);
    ssize_t sent =
        sendto(fd, state, n, MSG_NOSIGNAL, (const struct sockaddr *)&addr, len);
    int saved = errno;
    close(fd);
    if (sent < 0 || (size_t)sent != n) {
        snprintf(err, errlen, "send \"%s\" to NOTIFY_SOCKET %s: %s", state,
                 name, sent < 0 ? strerror(saved) : "short send");
        return -1;
    }
    return 1;
}
