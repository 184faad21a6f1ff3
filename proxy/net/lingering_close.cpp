#include "proxy/net/lingering_close.hpp"

#include <algorithm>
#include <array>
#include <asio/experimental/as_tuple.hpp>
#include <asio/post.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <utility>

#include "proxy/net/deadline.hpp"

namespace mailtap::net {

namespace {

constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);

// Reads and throws away what the connection holds now, without waiting. True once there is
// no more to wait for: the client closed or reset, the socket failed, or `limit` octets are read.
bool discard_waiting_input(const ReadNow& read_now, std::size_t limit, Lingered& out) {
  std::array<char, 4096> sink;  // on the thread's stack, not in the coroutine's frame
  for (;;) {
    if (out.discarded >= limit) {
      out.octet_limit = true;
      return true;
    }
    std::error_code ec;
    const std::size_t want = std::min(sink.size(), limit - out.discarded);
    out.discarded += read_now(asio::buffer(sink.data(), want), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) return false;
    if (ec) {
      out.client_reset = ec == asio::error::connection_reset;
      out.client_closed = ec == asio::error::eof || out.client_reset;
      return true;
    }
  }
}

}  // namespace

asio::awaitable<Lingered> linger_then_close(asio::ip::tcp::socket& socket, LingerLimits limits,
                                            ReadNow read_now, CloseSocket close) {
  Lingered out;
  if (!socket.is_open()) {
    out.closed_before = true;
    co_return out;
  }
  if (!read_now)
    read_now = [&socket](asio::mutable_buffer buffer, std::error_code& ec) {
      return socket.read_some(buffer, ec);
    };
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
    while (!discard_waiting_input(read_now, limits.octets, out) && may_wait) {
      auto [wait_ec] = co_await socket.async_wait(asio::socket_base::wait_read, use_tuple);
      // Cancelled (the time is up, or a shutdown): what came meanwhile is read, no more.
      if (wait_ec) {
        discard_waiting_input(read_now, limits.octets, out);
        break;
      }
    }
    out.time_limit = !out.client_closed && !out.octet_limit && deadline.expired();
  }
  if (close) {
    close(socket);
  } else {
    socket.close(ec);
  }
  co_return out;
}

LingerGroup::Place::Place(Place&& other) noexcept
    : group_(std::exchange(other.group_, nullptr)), member_(other.member_) {}

LingerGroup::Place::~Place() {
  if (group_ != nullptr) group_->leave(member_);
}

LingerGroup::Place LingerGroup::admit(const std::shared_ptr<asio::ip::tcp::socket>& socket) {
  std::lock_guard lock(mutex_);
  if (cut_ || members_.size() >= capacity_) return {};
  return {*this, members_.insert(members_.end(), Member{socket->get_executor(), socket})};
}

void LingerGroup::leave(std::list<Member>::iterator member) {
  std::lock_guard lock(mutex_);
  members_.erase(member);
  wake_waiter();
}

asio::awaitable<Lingered> LingerGroup::close(Place place,
                                             std::shared_ptr<asio::ip::tcp::socket> socket,
                                             LingerLimits limits, CloseSocket close_socket) {
  bool cut = false;
  {
    std::lock_guard lock(mutex_);
    cut = cut_;
  }
  // A cut that came between admit() and now found no wait to cancel.
  if (!place || cut) limits.time = std::chrono::steady_clock::duration::zero();
  co_return co_await linger_then_close(*socket, limits, {}, std::move(close_socket));
}

asio::awaitable<Lingered> LingerGroup::close(std::shared_ptr<asio::ip::tcp::socket> socket,
                                             LingerLimits limits) {
  Place place = admit(socket);
  co_return co_await close(std::move(place), std::move(socket), limits);
}

asio::awaitable<void> LingerGroup::wait_for_room(std::function<bool()> needed) {
  const auto executor = co_await asio::this_coro::executor;
  for (;;) {
    // Asked without mutex_ held: `needed` takes the caller's own lock.
    if (needed && !needed()) co_return;
    auto timer = std::make_shared<asio::steady_timer>(executor);
    {
      std::lock_guard lock(mutex_);
      if (cut_ || members_.size() < capacity_) co_return;
      if (std::exchange(look_again_, false)) continue;
      timer->expires_at(asio::steady_timer::time_point::max());
      waiter_ = timer;
    }
    // Woken (cancelled) by a place given back, a look_again() or a cut, posted to this
    // executor: it runs after this wait has begun, the executor having one thread.
    co_await timer->async_wait(use_tuple);
  }
}

void LingerGroup::look_again() {
  std::lock_guard lock(mutex_);
  if (waiter_ != nullptr) {
    wake_waiter();
  } else {
    look_again_ = true;
  }
}

void LingerGroup::wake_waiter() {
  if (auto timer = std::exchange(waiter_, nullptr))
    asio::post(timer->get_executor(), [timer] { timer->cancel(); });
}

void LingerGroup::cut() {
  std::lock_guard lock(mutex_);
  cut_ = true;
  wake_waiter();
  for (const Member& m : members_)
    asio::post(m.executor, [weak = m.socket] {
      if (auto socket = weak.lock()) {
        std::error_code ignored;
        socket->cancel(ignored);
      }
    });
}

}  // namespace mailtap::net
