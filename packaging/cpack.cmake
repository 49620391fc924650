# The Debian package (`make package`, or `cpack -G DEB` in the build dir):
# one package, trellis, with everything `cmake --install` installs, for the
# prefix /usr (so the config is /etc/trellis/trellisd.conf and the unit
# /usr/lib/systemd/system/trellisd.service), the maintainer scripts of
# packaging/debian/ (the trellis system user, the data directory, the
# service enabled and started where systemd runs), and the library
# dependencies dpkg-shlibdeps finds.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME trellis)
set(CPACK_PACKAGE_VENDOR "Trellis")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
  "transaction manager for microservices (Saga, TCC, XA over gRPC)")
set(CPACK_PACKAGE_DESCRIPTION
  "trellisd drives global transactions across services: saga steps with
compensations, TCC try/confirm/cancel and MySQL XA branches, workflows and
2-phase messages, with durable state in an embedded SQLite store or a
shared MySQL/MariaDB store. The package holds trellisd with its systemd
unit and example config, trellisctl, trellis-bench, and the C SDK
(libtrellis, the branch barrier, the XA adapter) with headers, pkg-config
files and a CMake package.")
set(CPACK_RESOURCE_FILE_LICENSE ${PROJECT_SOURCE_DIR}/LICENSE)
# Install with DESTDIR and the real prefix /usr (whatever prefix the build
# was configured with), so install_system_files.cmake sees /usr and puts
# the config under /etc.
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES OFF)

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "Trellis developers <trellis@localhost>")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
# adduser: postinst makes the user. Building against the SDK also needs
# what the pkg-config files and the barrier's headers name.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS
  "libgrpc-dev, libprotobuf-c-dev, libmariadb-dev, pkg-config")
configure_file(${CMAKE_CURRENT_SOURCE_DIR}/debian/conffiles.in
  ${CMAKE_CURRENT_BINARY_DIR}/debian/conffiles @ONLY)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${CMAKE_CURRENT_SOURCE_DIR}/debian/postinst
  ${CMAKE_CURRENT_SOURCE_DIR}/debian/prerm
  ${CMAKE_CURRENT_SOURCE_DIR}/debian/postrm
  ${CMAKE_CURRENT_SOURCE_DIR}/debian/triggers
  ${CMAKE_CURRENT_BINARY_DIR}/debian/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
