#include "proxy/net/upstream_link.hpp"

#include <asio/experimental/as_tuple.hpp>
#include <asio/read.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <chrono>

#include "proxy/net/deadline.hpp"

namespace mailtap::net {

namespace {
constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);
}

asio::awaitable<std::tuple<std::error_code, std::size_t>> UpstreamLink::read_some(
    asio::mutable_buffer buf) {
  if (tls_active_) co_return co_await stream_.async_read_some(buf, use_tuple);
  co_return co_await socket().async_read_some(buf, use_tuple);
}

asio::awaitable<std::tuple<std::error_code, std::size_t>> UpstreamLink::write(
    asio::const_buffer buf) {
  if (tls_active_) co_return co_await asio::async_write(stream_, buf, use_tuple);
  co_return co_await asio::async_write(socket(), buf, use_tuple);
}

asio::awaitable<void> UpstreamLink::close_gracefully() {
  if (tls_active_ && socket().is_open()) {
    // async_shutdown writes close_notify and then waits for the peer's; a peer that never
    // answers must not hold the session open.
    Deadline deadline(stream_.get_executor(), std::chrono::seconds(2), [this] { close(); });
    co_await stream_.async_shutdown(use_tuple);
  }
  close();
}

void UpstreamLink::close() {
  std::error_code ignored;
  socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket().close(ignored);
}

}  // namespace mailtap::net
