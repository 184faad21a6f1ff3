#include "proxy/net/tls_client_context.hpp"

#include <openssl/ssl.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <iterator>

#include "proxy/net/ca_file.hpp"
#include "proxy/net/ssl_error.hpp"

namespace mailtap::net {

namespace {
// BoringSSL's compiled-in default is /etc/ssl/cert.pem, which Debian does not ship; use what
// OpenSSL tools on Debian use, honouring the same environment variables.
constexpr const char* debian_bundle = "/etc/ssl/certs/ca-certificates.crt";
constexpr const char* debian_dir = "/etc/ssl/certs";

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}
}  // namespace

std::string describe_trust_source(const TrustSettings& trust) {
  if (!trust.ca_file.empty()) return trust.ca_file;
  std::string file = env("SSL_CERT_FILE");
  if (!file.empty()) return file;
  std::string dir = env("SSL_CERT_DIR");
  if (!dir.empty()) return dir;
  return debian_bundle;
}

std::optional<asio::ssl::context> make_tls_client_context(
    const TrustSettings& trust, std::string& error, const ClientCertificate* client_certificate) {
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  SSL_CTX* native = ctx.native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  // Secure by default, as current clients are (OpenSSL 3 at its default security level 2, as
  // curl, swaks and Python use it): for the server's handshake signature every algorithm they
  // accept that BoringSSL can verify, SHA-1 not among them (the certificates' own keys and
  // signatures are checked as they are verified, weakness_of); a server whose certificate has
  // a P-521 or Ed25519 key can sign with nothing else. BoringSSL has no rsa_pss_pss_* (keys of
  // type id-RSASSA-PSS): the handshake_failure alert's words name that limit. No 3DES suite
  // (64-bit blocks: SWEET32). TLS 1.2 suites without forward secrecy or with CBC stay on
  // offer, after every ECDHE AEAD one: old servers still need them, and the session's tls note
  // says so when one is taken (smtp::cipher_caveat).
  static constexpr std::uint16_t signature_algorithms[] = {
      SSL_SIGN_ECDSA_SECP256R1_SHA256, SSL_SIGN_RSA_PSS_RSAE_SHA256,
      SSL_SIGN_RSA_PKCS1_SHA256,       SSL_SIGN_ECDSA_SECP384R1_SHA384,
      SSL_SIGN_RSA_PSS_RSAE_SHA384,    SSL_SIGN_RSA_PKCS1_SHA384,
      SSL_SIGN_RSA_PSS_RSAE_SHA512,    SSL_SIGN_RSA_PKCS1_SHA512,
      SSL_SIGN_ECDSA_SECP521R1_SHA512, SSL_SIGN_ED25519};
  // P-521 after BoringSSL's own groups, as OpenSSL 3 offers it: over TLS 1.2 a server may
  // sign with a P-521 key only for a client that lists the curve (RFC 8422 5.1).
  if (SSL_CTX_set_verify_algorithm_prefs(native, signature_algorithms,
                                         std::size(signature_algorithms)) != 1 ||
      SSL_CTX_set1_curves_list(native, "X25519:P-256:P-384:P-521") != 1 ||
      SSL_CTX_set_strict_cipher_list(native, "ALL:!3DES") != 1) {
    error = "cannot configure TLS: " + ssl_error();
    return std::nullopt;
  }
  if (client_certificate != nullptr && !use_client_certificate(native, *client_certificate, error))
    return std::nullopt;
  if (trust.insecure) {
    ctx.set_verify_mode(asio::ssl::verify_none);
    return ctx;
  }
  ctx.set_verify_mode(asio::ssl::verify_peer);
  if (!trust.ca_file.empty()) {
    // The options refused an unusable file already; this names what changed since.
    if (std::string why = ca_file_refusal(trust.ca_file); !why.empty()) {
      error = why;
      return std::nullopt;
    }
    if (SSL_CTX_load_verify_locations(native, trust.ca_file.c_str(), nullptr) != 1) {
      error = "--ca-file " + trust.ca_file + ": no PEM certificates could be loaded (" +
              ssl_error() + ")";
      return std::nullopt;
    }
    return ctx;
  }
  std::string file = env("SSL_CERT_FILE");
  std::string dir = env("SSL_CERT_DIR");
  if (file.empty() && dir.empty()) {
    file = debian_bundle;
    dir = debian_dir;
  }
  bool file_ok = !file.empty() && std::filesystem::is_regular_file(file);
  bool dir_ok = !dir.empty() && std::filesystem::is_directory(dir);
  if (!file_ok && !dir_ok) {
    error = "no system trust store found (" + (file.empty() ? dir : file) +
            "); install ca-certificates, or give --ca-file";
    return std::nullopt;
  }
  if (SSL_CTX_load_verify_locations(native, file_ok ? file.c_str() : nullptr,
                                    dir_ok ? dir.c_str() : nullptr) != 1) {
    error = "cannot load the trust store " + file + ": " + ssl_error();
    return std::nullopt;
  }
  return ctx;
}

}  // namespace mailtap::net
