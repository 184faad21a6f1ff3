#include "proxy/net/lingering_close.hpp"

#include <algorithm>
#include <array>
#include <asio/experimental/as_tuple.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>
#include <utility>

#include "proxy/net/deadline.hpp"

namespace mailtap::net {

namespace {

constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);

// Reads and throws away what the socket holds now, without waiting. True once there is no
// more to wait for: the client closed or reset, the socket failed, or `limit` octets are read.
bool discard_waiting_input(asio::ip::tcp::socket& socket, std::size_t limit, Lingered& out) {
  std::array<char, 4096> sink;  // on the thread's stack, not in the coroutine's frame
  for (;;) {
    if (out.discarded >= limit) {
      out.octet_limit = true;
      return true;
    }
    std::error_code ec;
    const std::size_t want = std::min(sink.size(), limit - out.discarded);
    out.discarded += socket.read_some(asio::buffer(sink.data(), want), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) return false;
    if (ec) {
      out.client_reset = ec == asio::error::connection_reset;
      out.client_closed = ec == asio::error::eof || out.client_reset;
      return true;
    }
  }
}

}  // namespace

asio::awaitable<Lingered> linger_then_close(asio::ip::tcp::socket& socket, LingerLimits limits) {
  Lingered out;
  if (!socket.is_open()) co_return out;
  std::error_code ec;
  socket.non_blocking(true, ec);
  // Fails when the client is gone already (reset): then there is nothing to wait for.
  if (!ec) {
    socket.shutdown(asio::ip::tcp::socket::shutdown_send, ec);
    out.client_reset = out.client_closed = static_cast<bool>(ec);
  }
  if (!ec) {
    const bool may_wait = limits.time > std::chrono::steady_clock::duration::zero();
    Deadline deadline(socket.get_executor(), limits.time, [&socket] {
      std::error_code ignored;
      socket.cancel(ignored);
    });
    while (!discard_waiting_input(socket, limits.octets, out) && may_wait) {
      auto [wait_ec] = co_await socket.async_wait(asio::socket_base::wait_read, use_tuple);
      // Cancelled (the time is up, or a shutdown): what came meanwhile is read, no more.
      if (wait_ec) {
        discard_waiting_input(socket, limits.octets, out);
        break;
      }
    }
    out.time_limit = !out.client_closed && !out.octet_limit && deadline.expired();
  }
  socket.close(ec);
  co_return out;
}

asio::awaitable<Lingered> LingerGroup::close(std::shared_ptr<asio::ip::tcp::socket> socket,
                                             LingerLimits limits) {
  std::list<Member>::iterator self;
  bool member = false;
  {
    std::lock_guard lock(mutex_);
    if (cut_ || members_.size() >= capacity_) {
      limits.time = std::chrono::steady_clock::duration::zero();
    } else {
      self = members_.insert(members_.end(), Member{socket->get_executor(), socket});
      member = true;
    }
  }
  const Lingered out = co_await linger_then_close(*socket, limits);
  if (member) {
    std::lock_guard lock(mutex_);
    members_.erase(self);
  }
  co_return out;
}

void LingerGroup::cut() {
  std::lock_guard lock(mutex_);
  cut_ = true;
  for (const Member& m : members_)
    asio::post(m.executor, [weak = m.socket] {
      if (auto socket = weak.lock()) {
        std::error_code ignored;
        socket->cancel(ignored);
      }
    });
}

}  // namespace mailtap::net
