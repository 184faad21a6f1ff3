# FindCivetWeb: locates the CivetWeb HTTP server library as Debian ships it (libcivetweb-dev).
#
# Only the C library is used (not libcivetweb-cpp). Debian's build links no TLS library: it
# would dlopen libssl/libcrypto only for an https listening port, which mailtap never
# configures, so the process never maps OpenSSL beside BoringSSL (a test checks
# /proc/PID/maps). Debian's own civetweb-config.cmake pulls in extra Find modules and
# targets; this module looks for the header and library directly.
#
# Override: -DCIVETWEB_INCLUDE_DIR=... -DCIVETWEB_LIBRARY=...
# Defines the imported target CivetWeb::CivetWeb.

find_path(CIVETWEB_INCLUDE_DIR civetweb.h)
find_library(CIVETWEB_LIBRARY NAMES civetweb)

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(CivetWeb REQUIRED_VARS CIVETWEB_INCLUDE_DIR CIVETWEB_LIBRARY)

if(CivetWeb_FOUND AND NOT TARGET CivetWeb::CivetWeb)
  add_library(CivetWeb::CivetWeb UNKNOWN IMPORTED)
  set_target_properties(CivetWeb::CivetWeb PROPERTIES
    IMPORTED_LOCATION ${CIVETWEB_LIBRARY}
    INTERFACE_INCLUDE_DIRECTORIES ${CIVETWEB_INCLUDE_DIR})
endif()
mark_as_advanced(CIVETWEB_INCLUDE_DIR CIVETWEB_LIBRARY)
