// The connection to the upstream server: a TCP socket that may be upgraded to TLS in place
// (STARTTLS), or that is TLS from the first byte (implicit), or stays plain (--tls none).
#pragma once

#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ssl/context.hpp>
#include <asio/ssl/stream.hpp>
#include <cstddef>
#include <system_error>
#include <tuple>

namespace mailtap::net {

class UpstreamLink {
 public:
  using TlsStream = asio::ssl::stream<asio::ip::tcp::socket>;

  UpstreamLink(const asio::any_io_executor& ex, asio::ssl::context& ctx) : stream_(ex, ctx) {}

  TlsStream& tls() { return stream_; }
  asio::ip::tcp::socket& socket() { return stream_.next_layer(); }
  bool tls_active() const { return tls_active_; }
  void set_tls_active() { tls_active_ = true; }

  asio::awaitable<std::tuple<std::error_code, std::size_t>> read_some(asio::mutable_buffer buf);
  asio::awaitable<std::tuple<std::error_code, std::size_t>> write(asio::const_buffer buf);
  // Sends TLS close_notify (not waiting long for the peer's), then closes the socket.
  asio::awaitable<void> close_gracefully();
  void close();

 private:
  TlsStream stream_;
  bool tls_active_ = false;
};

}  // namespace mailtap::net
