#include "proxy/net/tls_session_cache.hpp"

#include "proxy/net/tls_stream.hpp"

namespace mailtap::net {

namespace {
int cache_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}
int upstream_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}
// Set (to the SSL itself) when the session offered for resumption was authenticated with the
// client certificate. Kept on the SSL because BoringSSL resumes a copy of the session offered,
// without its ex_data.
int offered_with_certificate_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}
}  // namespace

TlsSessionCache::TlsSessionCache(SSL_CTX* ctx, std::size_t per_upstream)
    : per_upstream_(per_upstream) {
  SSL_CTX_set_ex_data(ctx, cache_index(), this);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT);
  SSL_CTX_sess_set_new_cb(ctx, &TlsSessionCache::on_new_session);
}

void TlsSessionCache::prepare(SSL* ssl, const std::string& upstream) {
  std::lock_guard lock(mutex_);
  auto& [key, kept] = *sessions_.try_emplace(upstream).first;
  SSL_set_ex_data(ssl, upstream_index(), const_cast<std::string*>(&key));
  if (kept.empty()) return;
  const Kept& offered = kept.back();
  SSL_set_session(ssl, offered.session.get());  // takes its own reference
  SSL_set_ex_data(ssl, offered_with_certificate_index(),
                  offered.client_certificate ? ssl : nullptr);
  if (SSL_SESSION_should_be_single_use(offered.session.get())) kept.pop_back();
}

bool TlsSessionCache::resumed_with_client_certificate(const SSL* ssl) {
  return SSL_session_reused(ssl) != 0 &&
         SSL_get_ex_data(ssl, offered_with_certificate_index()) != nullptr;
}

// BoringSSL calls this when the server hands out a session (for TLS 1.3, a ticket after the
// handshake). Returning 1 takes ownership of `session`.
int TlsSessionCache::on_new_session(SSL* ssl, SSL_SESSION* session) {
  auto* cache =
      static_cast<TlsSessionCache*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), cache_index()));
  const auto* upstream = static_cast<const std::string*>(SSL_get_ex_data(ssl, upstream_index()));
  if (cache == nullptr || upstream == nullptr) return 0;
  // BoringSSL presents the context's certificate whenever the server asks for one.
  const bool presented =
      resumed_with_client_certificate(ssl) ||
      (TlsStream::certificate_requested(ssl) && SSL_CTX_get0_certificate(SSL_get_SSL_CTX(ssl)));
  cache->keep(*upstream, session, presented);
  return 1;
}

void TlsSessionCache::keep(const std::string& upstream, SSL_SESSION* session,
                           bool client_certificate) {
  std::lock_guard lock(mutex_);
  auto& kept = sessions_[upstream];
  kept.push_back(Kept{bssl::UniquePtr<SSL_SESSION>(session), client_certificate});
  while (kept.size() > per_upstream_) kept.pop_front();
}

}  // namespace mailtap::net
