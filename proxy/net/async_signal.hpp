// A wake-up between coroutines of one session (all on the same strand): wait() suspends until
// notify(). Waiters re-check their condition after waking; because nothing runs between that
// check and the wait on a strand, no notification is lost.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

namespace mailtap::net {

class AsyncSignal {
 public:
  explicit AsyncSignal(const asio::any_io_executor& ex) : timer_(ex) {
    timer_.expires_at(asio::steady_timer::time_point::max());
  }
  asio::awaitable<void> wait() {
    co_await timer_.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
    timer_.expires_at(asio::steady_timer::time_point::max());
  }
  void notify() { timer_.cancel(); }

 private:
  asio::steady_timer timer_;
};

}  // namespace mailtap::net
