#include "proxy/net/ssl_error.hpp"

#include <openssl/err.h>

namespace mailtap::net {

std::string ssl_error() {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

}  // namespace mailtap::net
