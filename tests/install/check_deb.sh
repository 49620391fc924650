#!/usr/bin/env bash
# The package test (ctest: package_deb): `cpack -G DEB` from the build
# tree makes trellis_<VERSION>_<arch>.deb, and the package holds what a
# machine needs: the programs, the shared libraries under their soname,
# the static ones, the headers, the pkg-config files, the CMake package,
# the systemd unit naming /usr/bin/trellisd and /etc/trellis/trellisd.conf,
# that config as a conffile, and the maintainer scripts (postinst makes the
# trellis user). Exit 77 (skipped) when cpack or dpkg-deb is missing.
#
# Usage: check_deb.sh BUILD_DIR VERSION. Scratch under
# BUILD_DIR/test-data/package-<pid>, removed when everything passed.
set -euo pipefail

build=$(cd "$1" && pwd)
version=$2
work=$build/test-data/package-$$

for tool in cpack dpkg-deb dpkg-shlibdeps; do
    command -v "$tool" >/dev/null || { echo "skipped: no $tool"; exit 77; }
done

fail() {
    echo "package test FAILED: $*" >&2
    echo "scratch kept: $work" >&2
    exit 1
}

rm -rf "$work"
mkdir -p "$work"
(cd "$build" && cpack -G DEB -B "$work") >"$work/cpack.log" 2>&1 ||
    { cat "$work/cpack.log" >&2; fail "cpack -G DEB"; }
deb=$(ls "$work"/trellis_"$version"_*.deb 2>/dev/null | head -n 1 || true)
[ -n "$deb" ] || fail "no trellis_${version}_*.deb in $work"
echo "built $(basename "$deb")"

[ "$(dpkg-deb -f "$deb" Package)" = trellis ] || fail "package name"
[ "$(dpkg-deb -f "$deb" Version)" = "$version" ] || fail "package version"
depends=$(dpkg-deb -f "$deb" Depends)
for dep in adduser libgrpc libprotobuf-c libsqlite3 libmariadb; do
    [[ "$depends" == *"$dep"* ]] || fail "Depends lacks $dep: $depends"
done

dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|' >"$work/files"
so=${version%%.*}
for f in /usr/bin/trellisd /usr/bin/trellisctl /usr/bin/trellis-bench \
    /usr/bin/trellis-bench-part \
    /usr/lib/libtrellis.so.$version /usr/lib/libtrellis.so.$so \
    /usr/lib/libtrellis_barrier.so.$so /usr/lib/libtrellis_mysql_xa.so.$so \
    /usr/lib/libtrellis.a /usr/lib/libtrellis_barrier.a \
    /usr/lib/libtrellis_mysql_xa.a \
    /usr/include/trellis/trellis.h /usr/include/trellis/trellis_version.h \
    /usr/include/trellis/trellis_participant.h /usr/include/trellis/barrier.h \
    /usr/include/trellis/mysql_xa.h \
    /usr/lib/pkgconfig/trellis.pc /usr/lib/pkgconfig/trellis-barrier.pc \
    /usr/lib/pkgconfig/trellis-mysql-xa.pc \
    /usr/lib/cmake/Trellis/TrellisConfig.cmake \
    /usr/lib/systemd/system/trellisd.service \
    /etc/trellis/trellisd.conf /usr/share/doc/trellis/LICENSE; do
    grep -qx "$f" "$work/files" || fail "not in the package: $f"
done
escaped=$(grep -v '^/usr/\|^/etc/$\|^/etc/trellis/' "$work/files" | grep -v '^/$' || true)
[ -z "$escaped" ] || fail "files outside /usr and /etc/trellis: $escaped"

dpkg-deb --fsys-tarfile "$deb" |
    tar -xO ./usr/lib/systemd/system/trellisd.service >"$work/unit"
grep -qx 'ExecStart=/usr/bin/trellisd --config /etc/trellis/trellisd.conf' \
    "$work/unit" || fail "the unit's ExecStart: $(grep ExecStart "$work/unit")"
for line in Type=notify User=trellis StateDirectory=trellis \
    Restart=on-failure NoNewPrivileges=yes ProtectSystem=strict; do
    grep -qx "$line" "$work/unit" || fail "the unit lacks $line"
done

dpkg-deb -e "$deb" "$work/control"
grep -qx /etc/trellis/trellisd.conf "$work/control/conffiles" ||
    fail "the config is not a conffile"
grep -q 'adduser .*--system' "$work/control/postinst" ||
    fail "postinst makes no trellis user"
[ -x "$work/control/postinst" ] || fail "postinst is not executable"
grep -q '^Version: '"$version"'$' <(dpkg-deb --fsys-tarfile "$deb" |
    tar -xO ./usr/lib/pkgconfig/trellis.pc) ||
    fail "trellis.pc does not say version $version"

rm -rf "$work"
echo "package test passed"
