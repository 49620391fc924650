/*
 * svc_mysql: connections and start-up schema of the test services over
 * MariaDB (see svc_mysql.h).
 */
#include "svc_mysql.h"

#include <stdio.h>

#include "trellis/barrier.h"

MYSQL *svc_mysql_connect(const char *socket, const char *database, char *err,
                         size_t errlen)
{
    MYSQL *c = mysql_init(NULL);
    if (c && mysql_real_connect(c, NULL, "root", NULL, database, 0, socket, 0))
        return c;
    snprintf(err, errlen, "connect: %s", c ? mysql_error(c) : "out of memory");
    if (c)
        mysql_close(c);
    return NULL;
}

int svc_mysql_schema(const char *socket, const char *database, const char *ddl,
                     char *err, size_t errlen)
{
    MYSQL *c = svc_mysql_connect(socket, NULL, err, errlen);
    if (!c)
        return -1;
    char sql[256];
    snprintf(sql, sizeof sql, "CREATE DATABASE IF NOT EXISTS `%s`", database);
    int rc = mysql_query(c, sql) || mysql_select_db(c, database) ||
                     mysql_query(c, ddl)
                 ? -1
                 : 0;
    if (rc != 0)
        snprintf(err, errlen, "schema: %s", mysql_error(c));
    else
        rc = trellis_barrier_create_table(c, NULL, err, errlen);
    mysql_close(c);
    return rc;
}
