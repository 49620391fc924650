/*
 * tm_exit: leaving trellisd when it cannot go on (see tm_exit.h).
 */
#include "tm_exit.h"

#include <unistd.h>

#include "tm_log.h"

void tm_exit_oom(const char *what)
{
    tm_log(TM_LOG_ERROR,
           "event=oom what=\"%s\" msg=\"exiting; a restart recovers from "
           "storage\"",
           what);
    _exit(TM_EXIT_OS_ERROR);
}

void tm_exit_os_error(const char *what)
{
    tm_log(TM_LOG_ERROR,
           "event=os_error what=\"%s\" msg=\"exiting; a restart recovers "
           "from storage\"",
           what);
    _exit(TM_EXIT_OS_ERROR);
}
