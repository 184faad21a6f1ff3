# FindBoringSSL: locates BoringSSL as Debian ships it (android-libboringssl-dev).
#
# Debian installs BoringSSL beside, not instead of, OpenSSL: headers under
# /usr/include/android/openssl and libraries under /usr/lib/<triplet>/android.
# Neither is on the default search path, and /usr/include/openssl may hold
# OpenSSL 3 headers (libssl-dev). We therefore search only the BoringSSL
# locations and refuse a header set that is not BoringSSL.
#
# Override for other installs: -DBORINGSSL_ROOT=/opt/boringssl (expects
# include/ and lib/ below it), or BORINGSSL_INCLUDE_DIR / BORINGSSL_SSL_LIBRARY
# / BORINGSSL_CRYPTO_LIBRARY directly.
#
# Defines the imported targets BoringSSL::SSL and BoringSSL::Crypto.

set(_boringssl_hint_include /usr/include/android)
set(_boringssl_hint_lib /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/android /usr/lib/x86_64-linux-gnu/android)
if(BORINGSSL_ROOT)
  set(_boringssl_hint_include ${BORINGSSL_ROOT}/include)
  set(_boringssl_hint_lib ${BORINGSSL_ROOT}/lib ${BORINGSSL_ROOT}/lib64)
endif()

find_path(BORINGSSL_INCLUDE_DIR openssl/ssl.h
  PATHS ${_boringssl_hint_include} NO_DEFAULT_PATH)
find_library(BORINGSSL_SSL_LIBRARY NAMES ssl
  PATHS ${_boringssl_hint_lib} NO_DEFAULT_PATH)
find_library(BORINGSSL_CRYPTO_LIBRARY NAMES crypto
  PATHS ${_boringssl_hint_lib} NO_DEFAULT_PATH)

if(BORINGSSL_INCLUDE_DIR AND EXISTS ${BORINGSSL_INCLUDE_DIR}/openssl/base.h)
  file(STRINGS ${BORINGSSL_INCLUDE_DIR}/openssl/base.h _boringssl_marker
       REGEX "#define OPENSSL_IS_BORINGSSL")
  if(NOT _boringssl_marker)
    message(FATAL_ERROR "${BORINGSSL_INCLUDE_DIR}/openssl is not BoringSSL (no OPENSSL_IS_BORINGSSL)")
  endif()
endif()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(BoringSSL
  REQUIRED_VARS BORINGSSL_INCLUDE_DIR BORINGSSL_SSL_LIBRARY BORINGSSL_CRYPTO_LIBRARY)

if(BoringSSL_FOUND AND NOT TARGET BoringSSL::Crypto)
  add_library(BoringSSL::Crypto SHARED IMPORTED)
  set_target_properties(BoringSSL::Crypto PROPERTIES
    IMPORTED_LOCATION ${BORINGSSL_CRYPTO_LIBRARY}
    IMPORTED_NO_SONAME FALSE)
  # BEFORE + not SYSTEM-after-/usr/include: these headers must shadow OpenSSL's.
  target_include_directories(BoringSSL::Crypto BEFORE INTERFACE ${BORINGSSL_INCLUDE_DIR})
  add_library(BoringSSL::SSL SHARED IMPORTED)
  set_target_properties(BoringSSL::SSL PROPERTIES IMPORTED_LOCATION ${BORINGSSL_SSL_LIBRARY})
  target_link_libraries(BoringSSL::SSL INTERFACE BoringSSL::Crypto)
  get_filename_component(BORINGSSL_LIBRARY_DIR ${BORINGSSL_SSL_LIBRARY} DIRECTORY)
endif()
mark_as_advanced(BORINGSSL_INCLUDE_DIR BORINGSSL_SSL_LIBRARY BORINGSSL_CRYPTO_LIBRARY)
