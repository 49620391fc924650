#!/usr/bin/env bash
# The install test (ctest: install_sdk): Trellis as a user gets it.
#
#  1. `cmake --install` with DESTDIR and a prefix puts every file under
#     DESTDIR/prefix: nothing escapes the prefix (config, unit included).
#  2. Installed into a staging prefix under the build tree, the versions
#     agree: trellisd --version, trellisctl --version, the pkg-config files
#     and the CMake package all say the project's version.
#  3. The installed trellisd starts from the installed example config (with
#     a throwaway data dir and a free port over it), and the small programs
#     of tests/install, built OUTSIDE the tree against the installed SDK —
#     with plain cc and pkg-config, and with find_package(Trellis), shared
#     and static — each serve their own saga steps and run sagas through
#     it (saga_check.c says what they check); xa_check links the barrier
#     and the XA adapter.
#     The installed trellis-bench runs a short saga load with the trellisd
#     installed beside it, its scratch under $TMPDIR.
#  4. trellisd stops cleanly on SIGTERM.
#
# Usage: run.sh BUILD_DIR SOURCE_DIR VERSION. Scratch under
# BUILD_DIR/test-data/install-<pid>, removed when everything passed.
set -euo pipefail

build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
version=$3
work=$build/test-data/install-$$
stage=$work/stage
here=$src/tests/install
tm_pid=""

fail() {
    echo "install test FAILED: $*" >&2
    [ -f "$work/trellisd.log" ] && sed 's/^/  trellisd: /' "$work/trellisd.log" >&2
    echo "scratch kept: $work" >&2
    exit 1
}

stop_tm() {
    if [ -n "$tm_pid" ] && kill -0 "$tm_pid" 2>/dev/null; then
        kill -KILL "$tm_pid" 2>/dev/null || true
    fi
}
trap stop_tm EXIT

rm -rf "$work"
mkdir -p "$work"

# ---- 1. nothing outside the prefix -----------------------------------------
echo "== DESTDIR install: every file under the prefix"
DESTDIR=$work/destdir cmake --install "$build" --prefix /opt/trellis-check \
    >"$work/destdir.log"
escaped=$(cd "$work/destdir" && find . -mindepth 1 \( -type f -o -type l \) |
    grep -v '^\./opt/trellis-check/' || true)
[ -z "$escaped" ] || fail "installed outside the prefix: $escaped"
grep -q '^ExecStart=/opt/trellis-check/bin/trellisd --config /opt/trellis-check/etc/trellis/trellisd.conf$' \
    "$work/destdir/opt/trellis-check/lib/systemd/system/trellisd.service" ||
    fail "the unit does not name the prefix's trellisd and config"

# ---- 2. the staging prefix, and its versions --------------------------------
echo "== install into $stage"
cmake --install "$build" --prefix "$stage" >"$work/install.log"
for f in bin/trellisd bin/trellisctl bin/trellis-bench bin/trellis-bench-part \
    include/trellis/trellis.h include/trellis/trellis_version.h \
    include/trellis/barrier.h include/trellis/mysql_xa.h \
    lib/libtrellis.a lib/libtrellis_barrier.a lib/libtrellis_mysql_xa.a \
    lib/cmake/Trellis/TrellisConfig.cmake \
    lib/cmake/Trellis/TrellisConfigVersion.cmake \
    etc/trellis/trellisd.conf lib/systemd/system/trellisd.service \
    share/doc/trellis/LICENSE; do
    [ -e "$stage/$f" ] || fail "not installed: $f"
done
for lib in trellis trellis_barrier trellis_mysql_xa; do
    so=$stage/lib/lib$lib.so
    [ "$(readlink "$so")" = "lib$lib.so.${version%%.*}" ] ||
        fail "lib$lib.so does not lead to the soname lib$lib.so.${version%%.*}"
    [ -f "$so.$version" ] || fail "no lib$lib.so.$version"
done

export PKG_CONFIG_PATH=$stage/lib/pkgconfig
[ "$("$stage/bin/trellisd" --version)" = "trellisd $version" ] ||
    fail "trellisd --version: $("$stage/bin/trellisd" --version)"
[ "$("$stage/bin/trellisctl" --version)" = "trellisctl $version" ] ||
    fail "trellisctl --version: $("$stage/bin/trellisctl" --version)"
for pc in trellis trellis-barrier trellis-mysql-xa; do
    [ "$(pkg-config --modversion $pc)" = "$version" ] ||
        fail "pkg-config --modversion $pc: $(pkg-config --modversion $pc)"
done
echo "versions: $version everywhere"

# ---- 3. the installed trellisd, and programs built against the SDK ---------
echo "== start the installed trellisd"
"$stage/bin/trellisd" --config "$stage/etc/trellis/trellisd.conf" \
    --data-dir "$work/data" --listen 127.0.0.1:0 --port-file "$work/port" \
    >"$work/trellisd.log" 2>&1 &
tm_pid=$!
# The port file appears (written whole, then renamed) once trellisd serves.
for _ in $(seq 1 600); do
    [ -s "$work/port" ] && break
    kill -0 "$tm_pid" 2>/dev/null || fail "trellisd exited at start"
    sleep 0.1
done
[ -s "$work/port" ] || fail "trellisd wrote no port file in 60 s"
tm=127.0.0.1:$(cat "$work/port")
echo "trellisd at $tm"

echo "== pkg-config: cc against the installed SDK"
cc=${CC:-cc}
# shellcheck disable=SC2046 # the flags are words
"$cc" -std=c11 -Wall -Wextra -Werror -o "$work/saga_check_pc" \
    "$here/saga_check.c" $(pkg-config --cflags --libs trellis) ||
    fail "cc with pkg-config trellis"
# shellcheck disable=SC2046
"$cc" -std=c11 -Wall -Wextra -Werror -o "$work/xa_check_pc" \
    "$here/xa_check.c" $(pkg-config --cflags --libs trellis-mysql-xa) ||
    fail "cc with pkg-config trellis-mysql-xa"
LD_LIBRARY_PATH=$stage/lib "$work/saga_check_pc" "$tm" pc ||
    fail "saga_check built with pkg-config"
LD_LIBRARY_PATH=$stage/lib "$work/xa_check_pc" ||
    fail "xa_check built with pkg-config"

echo "== find_package(Trellis): a CMake project against the installed SDK"
cmake -S "$here" -B "$work/consumer" -DCMAKE_PREFIX_PATH="$stage" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$work/consumer.log" ||
    fail "configure tests/install with find_package(Trellis)"
cmake --build "$work/consumer" >>"$work/consumer.log" ||
    fail "build tests/install"
grep -q "Trellis $version from $stage/lib/cmake/Trellis" "$work/consumer.log" ||
    fail "find_package(Trellis) did not find version $version in $stage"
# No LD_LIBRARY_PATH: CMake's run path finds the installed libraries, and
# the static build carries libtrellis inside it.
so=${version%%.*}
libs=$(ldd "$work/consumer/saga_check")
[[ "$libs" == *"libtrellis.so.$so => $stage/lib/"* ]] ||
    fail "saga_check does not load the installed libtrellis: $libs"
libs=$(ldd "$work/consumer/xa_check")
[[ "$libs" == *"libtrellis_mysql_xa.so.$so => $stage/lib/"* ]] ||
    fail "xa_check does not load the installed XA adapter: $libs"
libs=$(ldd "$work/consumer/saga_check_static")
[[ "$libs" != *libtrellis* ]] ||
    fail "saga_check_static loads a shared libtrellis: $libs"
"$work/consumer/saga_check" "$tm" cmake || fail "saga_check (find_package)"
"$work/consumer/saga_check_static" "$tm" cmake-static ||
    fail "saga_check_static (find_package)"
"$work/consumer/xa_check" || fail "xa_check (find_package)"

echo "== the installed trellis-bench: a short run with the trellisd beside it"
TMPDIR=$work "$stage/bin/trellis-bench" --duration 0.3 --warmup 0 \
    --concurrency 2 >"$work/bench.log" 2>&1 ||
    { cat "$work/bench.log" >&2; fail "installed trellis-bench"; }
grep -q '^RESULT mode=saga2 store=sqlite nodes=1 tps=[1-9]' "$work/bench.log" ||
    fail "installed trellis-bench: no RESULT line with sagas"
[ -d "$work/trellis-bench-$(id -u)/test-data" ] ||
    fail "installed trellis-bench kept no scratch under \$TMPDIR"

# ---- 4. a clean stop ------------------------------------------------------
kill -TERM "$tm_pid"
rc=0
wait "$tm_pid" || rc=$?
tm_pid=""
[ "$rc" -eq 0 ] || fail "trellisd exited $rc on SIGTERM"

rm -rf "$work"
echo "install test passed"
