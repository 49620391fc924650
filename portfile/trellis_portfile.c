/*
 * trellis_portfile.c: writing and reading the port file (format and the
 * atomic rename in trellis_portfile.h).
 */
#include "trellis_portfile.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int trellis_portfile_write(const char *path, int port, char *err, size_t errlen)
{
    char tmp[PATH_MAX];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp) {
        snprintf(err, errlen, "port file %s: path too long", path);
        return -1;
    }
    FILE *f = fopen(tmp, "w");
    if (!f) {
        snprintf(err, errlen, "port file %s: %s", tmp, strerror(errno));
        return -1;
    }
    int bad = fprintf(f, "%d\n", port) < 0;
    if (fclose(f) != 0)
        bad = 1;
    if (bad || rename(tmp, path) != 0) {
        snprintf(err, errlen, "port file %s: %s", bad ? tmp : path,
                 strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

int trellis_portfile_read(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int port = -1;
    if (fscanf(f, "%d", &port) != 1 || port <= 0 || port > 65535)
        port = -1;
    fclose(f);
    return port;
}
