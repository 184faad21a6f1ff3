// A deadline over a sequence of asynchronous steps: if it expires before cancel(), the expiry
// action runs (typically closing a socket, which makes the pending step fail). Safer than
// racing each operation with a timer: nothing depends on per-operation cancellation support.
#pragma once

#include <asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <memory>

namespace mailtap::net {

class Deadline {
 public:
  template <typename Executor>
  Deadline(const Executor& ex, std::chrono::steady_clock::duration after,
           std::function<void()> on_expiry)
      : state_(std::make_shared<State>()), timer_(ex, after) {
    start(std::move(on_expiry));
  }
  // At `at` (one already past expires at once): for a limit on a whole exchange made of
  // several steps, each under its own Deadline.
  template <typename Executor>
  Deadline(const Executor& ex, std::chrono::steady_clock::time_point at,
           std::function<void()> on_expiry)
      : state_(std::make_shared<State>()), timer_(ex, at) {
    start(std::move(on_expiry));
  }
  ~Deadline() {
    // Timer cancellation only fails if the reactor itself is broken; a destructor must not
    // throw, and the `done` flag already keeps the expiry action from running.
    try {
      cancel();
    } catch (...) {
    }
  }
  Deadline(const Deadline&) = delete;
  Deadline& operator=(const Deadline&) = delete;

  void cancel() {
    if (state_->done) return;
    state_->done = true;
    state_->on_expiry = nullptr;
    timer_.cancel();
  }
  bool expired() const { return state_->expired; }

 private:
  void start(std::function<void()> on_expiry) {
    state_->on_expiry = std::move(on_expiry);
    timer_.async_wait([state = state_](const std::error_code& ec) {
      if (ec || state->done) return;
      state->expired = true;
      state->on_expiry();
      state->on_expiry = nullptr;
    });
  }

  struct State {
    bool done = false;
    bool expired = false;
    std::function<void()> on_expiry;
  };
  std::shared_ptr<State> state_;
  asio::steady_timer timer_;
};

}  // namespace mailtap::net
