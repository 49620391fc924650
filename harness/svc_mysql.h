/*
 * svc_mysql: the MariaDB side the test services over a database share
 * (trellis-msgsvc, trellis-dtm-xasvc): a root connection over the
 * harness's unix socket, and the schema a service creates at start — its
 * database, its own table, and the default barrier table. Test-only.
 *
 * Threads: any; each call uses its own connection.
 */
#ifndef TRELLIS_SVC_MYSQL_H
#define TRELLIS_SVC_MYSQL_H

#include <stddef.h>

#include <mysql.h>

/* A connection as root over socket to database (NULL: none selected).
 * The caller's (mysql_close); NULL with err filled. */
MYSQL *svc_mysql_connect(const char *socket, const char *database, char *err,
                         size_t errlen);

/* CREATE DATABASE database if it is missing, run ddl (one statement) in
 * it, and create the default barrier table there. 0, or -1 with err. */
int svc_mysql_schema(const char *socket, const char *database, const char *ddl,
                     char *err, size_t errlen);

#endif /* TRELLIS_SVC_MYSQL_H */
