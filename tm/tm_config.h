/*
 * tm_config: trellisd's command line. Every setting has a default, a flag
 * and a line of --help; a bad value fails at start with a message that
 * names the flag.
 */
#ifndef TM_CONFIG_H
#define TM_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include "tm_engine_config.h"
#include "tm_store.h"
#include "tm_log.h"

/* A cluster id: 1..64 characters of [A-Za-z0-9_.:-] (it goes into XA
 * XIDs unquoted: MySQL's bqual limit is 64 bytes). */
#define TM_CLUSTER_ID_MAX 64

typedef struct {
    char listen[256];
    char data_dir[1024];
    char port_file[1024];
    int threads;
    tm_log_level_t log_level;
    tm_engine_config_t engine;
    /* storage (tm_config_store turns these into a tm_store_config_t) */
    char store[16];
    char mysql_host[256];
    uint32_t mysql_port;
    char mysql_socket[1024];
    char mysql_user[128];
    char mysql_password[256];
    char mysql_database[128];
    char node_id[64];
    char cluster_id[TM_CLUSTER_ID_MAX + 1]; /* "": derived (below) */
    uint32_t lease_ms;
    uint32_t retention_s;
    /* config file, security and limits (engine.limits.allow and
     * engine.max_inflight are set by their rows too) */
    char config_file[1024];         /* --config: the file that was read */
    uint32_t max_message_bytes;     /* 0: derived from max-steps, max-payload */
    uint32_t shutdown_grace_ms;     /* SIGTERM: wait this long for live ones */
    char tls_cert[1024];            /* serve TLS with this chain (PEM) */
    char tls_key[1024];             /* and this key */
    char tls_client_ca[1024];       /* require client certs signed by these */
    char part_tls_ca[1024];         /* call participants over TLS */
    char part_tls_cert[1024];       /* with this client chain (mTLS) */
    char part_tls_key[1024];        /* and key */
    char part_tls_server_name[256]; /* name expected in their certs */
    /* observability */
    char metrics_listen[256];    /* "": no metrics endpoint */
    char http_listen[256];       /* "": no web console */
    char http_token_file[1024];  /* "": the console is read-only */
    char http_allow_hosts[1024]; /* names the console answers to, besides
                                    IP literals and localhost */
    char log_format[16];         /* "kv" (also ""), "json" */
} tm_config_t;

void tm_config_default(tm_config_t *c);

/* Parse argv. With --config FILE (anywhere), FILE is read first and the
 * other flags override it, whatever their order. Returns 0 to run, 1 when
 * --help or --version was printed, -1 on a bad flag or file (err names the
 * flag, or the file, line and setting). */
int tm_config_parse(tm_config_t *c, int argc, char **argv, char *err,
                    size_t errlen);

/* Apply a config file's text: one `key = value` per line, keys being the
 * long flag names without "--"; blank lines and `#` comments (a line
 * starting with '#', or '#' after whitespace) are skipped. text need not
 * be NUL-terminated and may hold any bytes (a NUL is an error). source
 * names the file in messages ("FILE:LINE: key: what is wrong"). Returns 0,
 * or -1 with err filled; c may then be partly changed. Pure: no I/O, no
 * global state, so it is safe to fuzz. */
int tm_config_parse_text(tm_config_t *c, const char *text, size_t len,
                         const char *source, char *err, size_t errlen);

/* Read path and apply it with tm_config_parse_text. */
int tm_config_load_file(tm_config_t *c, const char *path, char *err,
                        size_t errlen);

/* The storage settings of c as a store config; its strings point into c.
 * Returns 0, or -1 with err naming the bad setting. */
int tm_config_store(const tm_config_t *c, tm_store_config_t *out, char *err,
                    size_t errlen);

/* The identity of the TM cluster this node belongs to (all trellisd
 * nodes sharing one store) into out[outlen] (at least
 * TM_CLUSTER_ID_MAX + 1): --cluster-id when given; else, for the sqlite
 * store, "sqlite-" and 16 random hex digits kept in <data-dir>/cluster-id
 * (made at the first start; the data dir must exist), and for the mysql
 * store "mysql-" and a 64-bit hash of the store's address (socket, or
 * host and port) and database, the same on every node that names the
 * store the same way. *how says which ("flag", "file", "store"). Returns
 * 0, or -1 with err. */
int tm_config_cluster_id(const tm_config_t *c, char *out, size_t outlen,
                         const char **how, char *err, size_t errlen);

/* The --help text. */
void tm_config_usage(FILE *out);

/* ---- the flag table (read-only; for tests and tools) ------------------ */

/* What a flag sets: a string of at most size - 1 bytes, a whole number
 * from min to max (a uint32_t or an int field), a log level, an allow-list
 * (tm_allowlist_t), or --config (the file to read; command line only). */
typedef enum {
    TM_CONFIG_STRING,
    TM_CONFIG_U32,
    TM_CONFIG_INT,
    TM_CONFIG_LEVEL,
    TM_CONFIG_ALLOW,
    TM_CONFIG_FILE,
} tm_config_kind_t;

typedef struct {
    const char *name; /* "--listen"; a config file key drops the "--" */
    tm_config_kind_t kind;
    size_t offset;          /* of the field it sets in tm_config_t */
    size_t size;            /* strings: the field's size */
    unsigned long min, max; /* numbers */
    const char *help;
} tm_config_flag_t;

/* The rows of the table of flags that drives parsing and --help: how
 * many, and a copy of row i (i < the count; its strings are static). The
 * table never changes: safe from any thread. */
size_t tm_config_flag_count(void);
void tm_config_flag(size_t i, tm_config_flag_t *out);

#endif /* TM_CONFIG_H */
