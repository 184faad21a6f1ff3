// The TLS server context for the client's side (--local-tls): mailtap's certificate and key,
// TLS 1.2 or later, no client certificates asked for.
#pragma once

#include <openssl/ssl.h>

#include <string>

#include "proxy/net/local_certificate.hpp"

namespace mailtap::net {

// Null, with `error` set, if the certificate or key cannot be loaded.
bssl::UniquePtr<SSL_CTX> make_tls_server_context(const LocalCertificate& certificate,
                                                 std::string& error);

}  // namespace mailtap::net
