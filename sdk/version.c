/*
 * version.c — trellis_version(): the version this build of libtrellis
 * was made from, as the generated trellis/trellis_version.h says. Kept
 * apart from the headers' macro so a program can tell which library it
 * actually runs with.
 */
#include "trellis/trellis.h"

const char *trellis_version(void)
{
    return TRELLIS_VERSION_STRING;
}
