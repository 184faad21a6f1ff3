#include "proxy/net/tls_server_context.hpp"

#include "proxy/net/ssl_error.hpp"

namespace mailtap::net {

bssl::UniquePtr<SSL_CTX> make_tls_server_context(const LocalCertificate& certificate,
                                                 std::string& error) {
  bssl::UniquePtr<SSL_CTX> ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx || SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION) != 1) {
    error = "cannot make a TLS server context: " + ssl_error();
    return nullptr;
  }
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), certificate.cert_path.c_str()) != 1) {
    error = "cannot use the certificate " + certificate.cert_path + ": " + ssl_error();
    return nullptr;
  }
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), certificate.key_path.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx.get()) != 1) {
    error = "cannot use the key " + certificate.key_path + ": " + ssl_error();
    return nullptr;
  }
  // Sessions are short and local: no tickets or cache to keep keys for.
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_TICKET);
  return ctx;
}

}  // namespace mailtap::net
