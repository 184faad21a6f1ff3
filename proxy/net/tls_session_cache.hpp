// TLS sessions to resume with the same upstream, as stunnel does: a resumed handshake skips the
// certificate exchange and its verification, the costliest part of opening a session. Keyed by
// host, port and the name verified, so a session is only resumed with the server it was verified
// for. TLS 1.3 tickets are single use: each is handed out once, and each handshake brings new ones.
// A resumed handshake exchanges no client certificate either: each session kept remembers
// whether mailtap's (--client-cert) was presented in the handshake that made it, or in the one
// that one resumed, so the record of a resumed session still says which certificate stands
// behind it.
#pragma once

#include <openssl/ssl.h>

#include <cstddef>
#include <deque>
#include <map>
#include <mutex>
#include <string>

namespace mailtap::net {

class TlsSessionCache {
 public:
  // Installs the new-session callback on `ctx`, which must outlive neither this cache nor be
  // shared with another cache.
  explicit TlsSessionCache(SSL_CTX* ctx, std::size_t per_upstream = 16);
  TlsSessionCache(const TlsSessionCache&) = delete;
  TlsSessionCache& operator=(const TlsSessionCache&) = delete;

  // Before the handshake: tie `ssl` to `upstream` and offer a session to resume, if one is kept.
  void prepare(SSL* ssl, const std::string& upstream);

  // After the handshake: `ssl` resumed a session whose authentication included the context's
  // client certificate.
  static bool resumed_with_client_certificate(const SSL* ssl);

 private:
  struct Kept {
    bssl::UniquePtr<SSL_SESSION> session;
    bool client_certificate = false;  // presented in the handshake that authenticated it
  };
  static int on_new_session(SSL* ssl, SSL_SESSION* session);
  void keep(const std::string& upstream, SSL_SESSION* session, bool client_certificate);

  const std::size_t per_upstream_;
  std::mutex mutex_;
  // std::map: the address of a key never changes, so SSL objects can point at it.
  std::map<std::string, std::deque<Kept>> sessions_;
};

}  // namespace mailtap::net
