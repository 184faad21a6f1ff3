#include "proxy/net/tls_session_cache.hpp"

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
  SSL_SESSION* session = kept.back().get();
  SSL_set_session(ssl, session);  // takes its own reference
  if (SSL_SESSION_should_be_single_use(session)) kept.pop_back();
}

// BoringSSL calls this when the server hands out a session (for TLS 1.3, a ticket after the
// handshake). Returning 1 takes ownership of `session`.
int TlsSessionCache::on_new_session(SSL* ssl, SSL_SESSION* session) {
  auto* cache =
      static_cast<TlsSessionCache*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), cache_index()));
  const auto* upstream = static_cast<const std::string*>(SSL_get_ex_data(ssl, upstream_index()));
  if (cache == nullptr || upstream == nullptr) return 0;
  cache->keep(*upstream, session);
  return 1;
}

void TlsSessionCache::keep(const std::string& upstream, SSL_SESSION* session) {
  std::lock_guard lock(mutex_);
  auto& kept = sessions_[upstream];
  kept.emplace_back(session);
  while (kept.size() > per_upstream_) kept.pop_front();
}

}  // namespace mailtap::net
