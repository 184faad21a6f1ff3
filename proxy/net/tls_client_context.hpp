// The TLS client context for upstream links: TLS 1.2 or later, peer verification against the
// system trust store (or --ca-file), unless --insecure; mailtap's client certificate
// (--client-cert) for servers that ask for one.
#pragma once

#include <asio/ssl/context.hpp>
#include <optional>
#include <string>

#include "proxy/net/client_certificate.hpp"

#if !defined(OPENSSL_IS_BORINGSSL)
#error "mailtap must be built against BoringSSL (android-libboringssl-dev), not OpenSSL"
#endif

namespace mailtap::net {

struct TrustSettings {
  std::string ca_file;  // --ca-file; empty: SSL_CERT_FILE, SSL_CERT_DIR, then Debian's bundle
  bool insecure = false;
};

// Where certificates are trusted from, for messages ("/etc/ssl/certs/ca-certificates.crt").
std::string describe_trust_source(const TrustSettings& trust);

// nullopt and `error` set when the trust store cannot be loaded. `client_certificate` (may be
// null): presented to every server that asks for a client certificate.
std::optional<asio::ssl::context> make_tls_client_context(
    const TrustSettings& trust, std::string& error,
    const ClientCertificate* client_certificate = nullptr);

}  // namespace mailtap::net
