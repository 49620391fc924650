/*
 * mysql_xa_recover.c: the XA adapter's recovery sweep (trellis_myxa_recover).
 *
 * It owns the listing of the prepared xids this cluster may touch, asking
 * trellisd how each global transaction ended, and the XA COMMIT or XA
 * ROLLBACK that follows; what it leaves to the operator is said at the
 * top of mysql_xa.c (Limits).
 */
#include "mysql_xa_impl.h"

#include <stdlib.h>
#include <string.h>

/* The gid of an xid of our shape into gid[TRELLIS_MYXA_XID_MAX + 1]; -1 if the
 * xid is not ours. */
static int xid_gid(const char *xid, char *gid)
{
    const char *dash = strrchr(xid, '-');
    if (!dash || dash == xid || !dash[1] || strlen(xid) > TRELLIS_MYXA_XID_MAX)
        return -1;
    size_t n = (size_t)(dash - xid);
    memcpy(gid, xid, n);
    gid[n] = '\0';
    if (myxa_check_part("gid", gid, 1, NULL, 0) != 0 ||
        myxa_check_part("branch_id", dash + 1, 0, NULL, 0) != 0)
        return -1;
    return 0;
}

/* A prepared xid the sweep may resolve. */
typedef struct {
    myxa_xid_t xid;
    int own; /* 1: of this cluster; 0: the legacy form (no cluster id) */
} sweep_xid_t;

typedef struct {
    size_t n;
    sweep_xid_t *x;
} xid_list_t;

/* The xids XA RECOVER lists that this sweep may touch: the cluster form
 * with our cluster id (own), and the legacy form with a gtrid of our
 * shape. Every other row (another cluster's, another application's) is
 * left out. With cluster "" (a trellisd that names none) the legacy form
 * is the TM's own. */
static int list_ours(MYSQL *conn, const char *cluster, xid_list_t *l)
{
    if (mysql_query(conn, "XA RECOVER") != 0)
        return -1;
    MYSQL_RES *r = mysql_store_result(conn);
    if (!r)
        return -1;
    size_t rows = (size_t)mysql_num_rows(r);
    l->x = calloc(rows ? rows : 1, sizeof *l->x);
    if (!l->x) {
        mysql_free_result(r);
        return -1;
    }
    MYSQL_ROW row;
    char gid[TRELLIS_MYXA_XID_MAX + 1];
    while ((row = mysql_fetch_row(r))) {
        sweep_xid_t *s = &l->x[l->n];
        if (myxa_xid_of_row(row, mysql_fetch_lengths(r), &s->xid) != 0 ||
            xid_gid(s->xid.gtrid, gid) != 0)
            continue;
        if (s->xid.bqual[0] && strcmp(s->xid.bqual, cluster) != 0)
            continue; /* another TM cluster's */
        s->own = strcmp(s->xid.bqual, cluster) == 0;
        l->n++;
    }
    mysql_free_result(r);
    return 0;
}

/* What trellisd's view of gid asks for: "COMMIT", "ROLLBACK" or NULL
 * (leave it: unfinished, the TM will decide; or a legacy xid of a gid
 * trellisd does not know). -1 with err if trellisd could not say. */
static int decide(trellis_client_t *client, const char *gid, int own,
                  const char **verb, char *err, size_t errlen)
{
    trellis_trans_info_t *info = NULL;
    char qerr[256] = "";
    trellis_rc_t rc = trellis_query(client, gid, &info, qerr, sizeof qerr);
    *verb = NULL;
    if (rc == TRELLIS_NOT_FOUND) {
        /* Never registered with this cluster: nothing will ever commit it.
         * A legacy xid names no cluster: it may be another TM's. */
        *verb = own ? "ROLLBACK" : NULL;
        return 0;
    }
    if (rc != TRELLIS_OK) {
        myxa_say(err, errlen, "xa: recover: query %s: %s (%d)", gid, qerr, rc);
        return -1;
    }
    if (info->status == TRELLIS_TRANS_SUCCEEDED)
        *verb = "COMMIT";
    else if (info->status == TRELLIS_TRANS_FAILED)
        *verb = "ROLLBACK";
    trellis_trans_info_free(info);
    return 0;
}

/* Resolve one xid; counts what it did. 0, or -1 with err. */
static int resolve(MYSQL *conn, trellis_client_t *client, const sweep_xid_t *s,
                   unsigned *committed, unsigned *rolled_back, char *err,
                   size_t errlen)
{
    char gid[TRELLIS_MYXA_XID_MAX + 1];
    const char *verb;
    if (xid_gid(s->xid.gtrid, gid) != 0 ||
        decide(client, gid, s->own, &verb, err, errlen) != 0)
        return -1;
    if (!verb)
        return 0;
    if (myxa_sql(conn, verb, &s->xid) != 0) {
        if (mysql_errno(conn) == ER_XAER_NOTA)
            return 0; /* attached to a live session, or just finished */
        myxa_say_db(err, errlen, conn,
                    strcmp(verb, "COMMIT") ? "rollback" : "commit",
                    s->xid.show);
        return -1;
    }
    (*(strcmp(verb, "COMMIT") == 0 ? committed : rolled_back))++;
    return 0;
}

int trellis_myxa_recover(MYSQL *conn, trellis_client_t *client,
                         unsigned *committed, unsigned *rolled_back, char *err,
                         size_t errlen)
{
    unsigned c = 0, r = 0;
    int rc = 0;
    xid_list_t l = {0};
    char cluster[TRELLIS_CLUSTER_ID_MAX + 1] = "", qerr[256] = "";
    if (!conn || !client) {
        myxa_say(err, errlen, "xa: recover: no connection or no client");
        rc = -1;
    } else if (myxa_in_trans(conn)) {
        myxa_say(err, errlen,
                 "xa: a transaction is already open on the connection");
        rc = -1;
    } else if (trellis_client_cluster_id(client, cluster, sizeof cluster, qerr,
                                         sizeof qerr) != TRELLIS_OK) {
        myxa_say(err, errlen, "xa: recover: which TM cluster: %s", qerr);
        rc = -1;
    } else if (list_ours(conn, cluster, &l) != 0) {
        myxa_say(err, errlen, "xa: recover: %s (%u)", mysql_error(conn),
                 mysql_errno(conn));
        rc = -1;
    }
    /* One failure does not stop the pass; the first one is reported. */
    char one[256];
    for (size_t i = 0; i < l.n; i++) {
        one[0] = '\0';
        if (resolve(conn, client, &l.x[i], &c, &r, one, sizeof one) != 0 &&
            rc == 0) {
            myxa_say(err, errlen, "%s", one);
            rc = -1;
        }
    }
    free(l.x);
    if (committed)
        *committed = c;
    if (rolled_back)
        *rolled_back = r;
    return rc;
}
