# Installed like a real tool: the binary, man pages and bash completion generated from the
# binary's own option definitions (so they cannot drift from --help), a systemd user unit,
# the docs; and `cpack -G DEB` for a Debian 12 package whose dependencies dpkg-shlibdeps finds.
include(GNUInstallDirs)

install(TARGETS mailtap RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# Man pages and completion: `mailtap generate-docs` writes them from the CLI11 tree. The pages
# name the installed docs, whose directory is known at install time: cmake/install_man.cmake
# puts it in, and gzips them.
set(MAILTAP_GENERATED ${CMAKE_BINARY_DIR}/generated)
if(NOT CMAKE_CROSSCOMPILING)
  add_custom_command(
    OUTPUT ${MAILTAP_GENERATED}/docs.stamp
    COMMAND ${CMAKE_COMMAND} -E rm -rf ${MAILTAP_GENERATED}/man
    COMMAND $<TARGET_FILE:mailtap> generate-docs --man-dir ${MAILTAP_GENERATED}/man
            --bash-completion ${MAILTAP_GENERATED}/completion/mailtap
            --doc-dir __MAILTAP_DOCDIR__
    COMMAND ${CMAKE_COMMAND} -E touch ${MAILTAP_GENERATED}/docs.stamp
    DEPENDS mailtap
    COMMENT "Generating man pages and bash completion from mailtap's options"
    VERBATIM)
  add_custom_target(mailtap_docs ALL DEPENDS ${MAILTAP_GENERATED}/docs.stamp)
  install(CODE "
    set(MAILTAP_MAN_SOURCE \"${MAILTAP_GENERATED}/man\")
    set(MAILTAP_MAN_WORK \"${CMAKE_BINARY_DIR}/install-man\")
    set(MAILTAP_DOCDIR \"${CMAKE_INSTALL_DOCDIR}\")
    set(MAILTAP_MANDIR \"${CMAKE_INSTALL_MANDIR}\")
    include(\"${CMAKE_CURRENT_SOURCE_DIR}/cmake/install_man.cmake\")
  ")
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

# The maintainer named by the .deb and its changelog (lintian refuses a made-up address such as
# @localhost): -DMAILTAP_PACKAGE_MAINTAINER="Name <address>", else Debian's DEBFULLNAME and
# DEBEMAIL, else the identity set in the checkout's own git config (git config --local
# user.name / user.email): never the builder's global one, which would put whoever builds into
# the package unasked and make two builds of one commit differ.
set(_mailtap_maintainer "")
if(DEFINED ENV{DEBFULLNAME} AND DEFINED ENV{DEBEMAIL})
  set(_mailtap_maintainer "$ENV{DEBFULLNAME} <$ENV{DEBEMAIL}>")
else()
  find_package(Git QUIET)
  if(GIT_FOUND)
    execute_process(COMMAND ${GIT_EXECUTABLE} -C ${CMAKE_CURRENT_SOURCE_DIR} config --local user.name
                    OUTPUT_VARIABLE _name OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
    execute_process(COMMAND ${GIT_EXECUTABLE} -C ${CMAKE_CURRENT_SOURCE_DIR} config --local user.email
                    OUTPUT_VARIABLE _email OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
    if(_name AND _email)
      set(_mailtap_maintainer "${_name} <${_email}>")
    endif()
  endif()
endif()
set(MAILTAP_PACKAGE_MAINTAINER "${_mailtap_maintainer}" CACHE STRING
    "Maintainer of the .deb, \"Name <address>\" (default: DEBFULLNAME/DEBEMAIL, or the checkout's local git user)")
# Given but not "Name <address>" (docs/install.md's recipe fills it from `git config`, which
# gives " <>" when no identity is set): refused, rather than a package lintian rejects.
if(MAILTAP_PACKAGE_MAINTAINER AND
   NOT MAILTAP_PACKAGE_MAINTAINER MATCHES "^[^<>]+ <[^@<> ]+@[^@<> ]+\\.[^@<> ]+>$")
  message(FATAL_ERROR "MAILTAP_PACKAGE_MAINTAINER is \"${MAILTAP_PACKAGE_MAINTAINER}\", not "
                      "\"Name <address>\" with a real mail domain: lintian would reject the "
                      ".deb (bogus-mail-host). Give -DMAILTAP_PACKAGE_MAINTAINER=\"Your Name "
                      "<you@your.domain>\", or set git config user.name and user.email for "
                      "the recipe in docs/install.md.")
endif()
if(NOT MAILTAP_PACKAGE_MAINTAINER MATCHES "^[^<>]+ <[^@<> ]+@[^@<> ]+\\.[^@<> ]+>$")
  message(WARNING "MAILTAP_PACKAGE_MAINTAINER is \"${MAILTAP_PACKAGE_MAINTAINER}\", not "
                  "\"Name <address>\": the .deb names a placeholder maintainer (lintian: "
                  "bogus-mail-host). Set it with -DMAILTAP_PACKAGE_MAINTAINER=...")
  set(MAILTAP_PACKAGE_MAINTAINER "mailtap developers <mailtap@localhost>")
endif()

# Debian's changelog, which every non-native package carries (lintian: no-changelog): one entry
# for this build, dated by its commit (not by the clock: reproducible), gzipped without a name
# or time stamp.
set(MAILTAP_DEB_RELEASE 1)
if(MAILTAP_VERSION MATCHES "\\+git.*\\.([0-9a-f]+)$")
  set(_mailtap_change "Build of git commit ${CMAKE_MATCH_1}.")
else()
  set(_mailtap_change "Build of mailtap ${MAILTAP_VERSION}.")
endif()
file(CONFIGURE OUTPUT ${MAILTAP_GENERATED}/changelog.Debian CONTENT
"mailtap (${MAILTAP_VERSION}-${MAILTAP_DEB_RELEASE}) unstable; urgency=medium

  * ${_mailtap_change}

 -- ${MAILTAP_PACKAGE_MAINTAINER}  ${MAILTAP_VERSION_DATE}
")
add_custom_command(
  OUTPUT ${MAILTAP_GENERATED}/changelog.Debian.gz
  COMMAND sh -c "gzip -9nc '${MAILTAP_GENERATED}/changelog.Debian' > '${MAILTAP_GENERATED}/changelog.Debian.gz'"
  DEPENDS ${MAILTAP_GENERATED}/changelog.Debian
  COMMENT "Compressing the Debian changelog" VERBATIM)
add_custom_target(mailtap_changelog ALL DEPENDS ${MAILTAP_GENERATED}/changelog.Debian.gz)
install(FILES ${MAILTAP_GENERATED}/changelog.Debian.gz DESTINATION ${CMAKE_INSTALL_DOCDIR})
# What lintian reports that is intended (the RUNPATH to BoringSSL, no ITP bug to close).
install(FILES cmake/lintian-overrides DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/lintian/overrides
        RENAME mailtap)

set(CPACK_PACKAGE_NAME mailtap)
set(CPACK_PACKAGE_VERSION ${MAILTAP_VERSION})
set(CPACK_PACKAGE_VENDOR mailtap)
set(CPACK_PACKAGE_CONTACT "${MAILTAP_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "talk SMTP by hand to TLS-only mail servers, and record every exchange")
# Lines of at most 80 columns with the leading space the control file adds (lintian:
# extended-description-line-too-long).
string(CONCAT CPACK_PACKAGE_DESCRIPTION
       "mailtap proxy listens on loopback for plain-text SMTP (telnet, nc, a mail\n"
       "client) and relays it to a TLS-only server over a verified STARTTLS or\n"
       "implicit-TLS link. Every exchange is recorded in SQLite with AUTH secrets\n"
       "redacted; tools show, export, replay, mock and audit the record, explain\n"
       "replies and probe servers.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION mail)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_RELEASE ${MAILTAP_DEB_RELEASE})
# dpkg-shlibdeps adds libc6, libstdc++6, libgcc-s1, libsqlite3-0, libcivetweb1 and
# android-libboringssl (found through the binary's RUNPATH to BoringSSL's directory); the CA
# bundle is needed to verify upstreams. docs/install.md lists them (tests/install checks).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "ca-certificates")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "bash-completion, man-db")
include(CPack)
