/*
 * xa_check: built OUTSIDE the Trellis tree against the installed barrier
 * and XA adapter (trellis-mysql-xa.pc, Trellis::xa), to show that their
 * headers compile with the flags the package gives (MariaDB's <mysql.h>
 * included) and that the libraries link and load together with libtrellis.
 * It needs no database: it checks the pure parts, the barrier's table-name
 * rule and the adapter's xid form. Exit 0 when both hold, 1 otherwise.
 */
#include <stdio.h>
#include <string.h>

#include "trellis/barrier.h"
#include "trellis/mysql_xa.h"

int main(void)
{
    char err[256], xid[TRELLIS_MYXA_XID_MAX + 1];
    int failures = 0;
    if (trellis_barrier_check_table_name("trellis_barrier", err, sizeof(err)) !=
            0 ||
        trellis_barrier_check_table_name("no;such", err, sizeof(err)) == 0) {
        printf("FAILED: the barrier's table-name rule\n");
        failures++;
    }
    if (trellis_myxa_make_xid("order-1", "01", xid, sizeof(xid), err,
                              sizeof(err)) != 0 ||
        strcmp(xid, "order-1-01") != 0) {
        printf("FAILED: the XA adapter's xid (%s)\n", err);
        failures++;
    }
    printf("xa_check (libtrellis %s): %s\n", trellis_version(),
           failures ? "FAILED" : "passed");
    return failures ? 1 : 0;
}
