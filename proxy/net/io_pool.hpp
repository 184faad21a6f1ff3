// One io_context per I/O thread, each run by exactly that thread, with sessions spread over them
// round robin. A session then lives on one thread: no strand, no lock contention on a shared
// scheduler, and no thread waking another for every hand-off (the cost profiling found in one
// io_context shared by all threads, as tests/bench/profile.sh shows).
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <atomic>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

namespace mailtap::net {

class IoPool {
 public:
  explicit IoPool(unsigned threads) {
    if (threads == 0) threads = 1;
    for (unsigned i = 0; i < threads; ++i) {
      // Hint 1: run by one thread (other threads may still post to it).
      contexts_.push_back(std::make_unique<asio::io_context>(1));
      guards_.emplace_back(contexts_.back()->get_executor());
    }
  }
  IoPool(const IoPool&) = delete;
  IoPool& operator=(const IoPool&) = delete;

  // The context the calling thread runs: the listener, signals and timers live here.
  asio::io_context& main() { return *contexts_.front(); }
  // Where the next session runs.
  asio::any_io_executor next() {
    const std::size_t i = next_.fetch_add(1, std::memory_order_relaxed) % contexts_.size();
    return contexts_[i]->get_executor();
  }
  std::size_t size() const { return contexts_.size(); }

  // Runs context 0 on the calling thread and each other one on a thread of its own, until all
  // of them run out of work after release().
  void run() {
    std::vector<std::thread> threads;
    for (std::size_t i = 1; i < contexts_.size(); ++i)
      threads.emplace_back([c = contexts_[i].get()] { c->run(); });
    contexts_.front()->run();
    for (auto& t : threads) t.join();
  }
  // Lets the contexts finish once their sessions have: call when shutting down (any thread).
  void release() {
    for (auto& g : guards_) g.reset();
  }

 private:
  std::vector<std::unique_ptr<asio::io_context>> contexts_;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards_;
  std::atomic<std::size_t> next_{0};
};

}  // namespace mailtap::net
