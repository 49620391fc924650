/*
 * harness_fault: the test side of trellisd-faults (tests/faults/tm_fault.h):
 * where its control socket is, and sending it one command.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "harness.h"

static int connect_fault_socket(const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(addr.sun_path))
        return -1;
    strcpy(addr.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int harness_fault_cmd(const char *socket_path, const char *cmd, char *reply,
                      size_t len)
{
    int fd = connect_fault_socket(socket_path);
    if (fd < 0) {
        fprintf(stderr, "harness: cannot reach the fault socket %s\n",
                socket_path);
        return -1;
    }
    char line[300];
    int n = snprintf(line, sizeof(line), "%s\n", cmd);
    if (n < 0 || (size_t)n >= sizeof(line) || write(fd, line, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    size_t got = 0;
    while (got + 1 < len) {
        ssize_t k = read(fd, reply + got, len - 1 - got);
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    close(fd);
    reply[got] = '\0';
    char *nl = strchr(reply, '\n');
    if (nl)
        *nl = '\0';
    if (strncmp(reply, "ok", 2) != 0) {
        fprintf(stderr, "harness: fault command '%s' answered '%s'\n", cmd,
                reply);
        return -1;
    }
    return 0;
}

char *harness_fault_socket_path(const char *name, char *buf, size_t len)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(buf, len, "%s/trellis-fault-%s-%d.sock",
             tmp && *tmp ? tmp : "/tmp", name, (int)getpid());
    return buf;
}
