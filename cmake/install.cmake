# Installed like a real tool: the binary, man pages and bash completion generated from the
# binary's own option definitions (so they cannot drift from --help), a systemd user unit,
# the docs; and `cpack -G DEB` for a Debian 12 package whose dependencies dpkg-shlibdeps finds.
include(GNUInstallDirs)

install(TARGETS mailtap RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# Man pages and completion: `mailtap generate-docs` writes them from the CLI11 tree; the man
# pages are gzipped as Debian ships them (-n: no name or time stamp, reproducible).
set(MAILTAP_GENERATED ${CMAKE_BINARY_DIR}/generated)
if(NOT CMAKE_CROSSCOMPILING)
  add_custom_command(
    OUTPUT ${MAILTAP_GENERATED}/docs.stamp
    COMMAND ${CMAKE_COMMAND} -E rm -rf ${MAILTAP_GENERATED}/man
    COMMAND $<TARGET_FILE:mailtap> generate-docs --man-dir ${MAILTAP_GENERATED}/man
            --bash-completion ${MAILTAP_GENERATED}/completion/mailtap
    COMMAND sh -c "gzip -9nf '${MAILTAP_GENERATED}'/man/*.1"
    COMMAND ${CMAKE_COMMAND} -E touch ${MAILTAP_GENERATED}/docs.stamp
    DEPENDS mailtap
    COMMENT "Generating man pages and bash completion from mailtap's options"
    VERBATIM)
  add_custom_target(mailtap_docs ALL DEPENDS ${MAILTAP_GENERATED}/docs.stamp)
  install(DIRECTORY ${MAILTAP_GENERATED}/man/ DESTINATION ${CMAKE_INSTALL_MANDIR}/man1
          FILES_MATCHING PATTERN "*.1.gz")
  install(FILES ${MAILTAP_GENERATED}/completion/mailtap
          DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/bash-completion/completions)
endif()

# The user unit names the installed binary, whose path is known only at install time
# (cmake --install --prefix, or CPack's /usr): configure it then.
install(CODE "
  set(MAILTAP_BINARY \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}/mailtap\")
  configure_file(\"${CMAKE_CURRENT_SOURCE_DIR}/cmake/mailtap@.service.in\"
                 \"${CMAKE_BINARY_DIR}/install-unit/mailtap@.service\" @ONLY)
  file(INSTALL DESTINATION \"\${CMAKE_INSTALL_PREFIX}/lib/systemd/user\" TYPE FILE
       FILES \"${CMAKE_BINARY_DIR}/install-unit/mailtap@.service\")
")

# The README's links name docs/...: the docs keep that place beside it. The copyright file is
# the one Debian policy (12.5) asks of every package.
install(FILES README.md cmake/copyright DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/docs)

set(CPACK_PACKAGE_NAME mailtap)
set(CPACK_PACKAGE_VENDOR mailtap)
set(CPACK_PACKAGE_CONTACT "mailtap developers <mailtap@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "talk SMTP by hand to TLS-only mail servers, and record every exchange")
string(CONCAT CPACK_PACKAGE_DESCRIPTION
       "mailtap proxy listens on loopback for plain-text SMTP (telnet, nc, a mail client)\n"
       "and relays it to a TLS-only server over a verified STARTTLS or implicit-TLS link.\n"
       "Every exchange is recorded in SQLite with AUTH secrets redacted; tools show,\n"
       "export, replay, mock and audit the record, explain replies and probe servers.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION mail)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
# dpkg-shlibdeps adds libc6, libstdc++6, libgcc-s1, libsqlite3-0, libcivetweb1 and
# android-libboringssl (found through the binary's RUNPATH to BoringSSL's directory); the CA
# bundle is needed to verify upstreams. docs/install.md lists them (tests/install checks).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "ca-certificates")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "bash-completion, man-db")
include(CPack)
