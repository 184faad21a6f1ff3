// One io_context per I/O thread, each run by exactly that thread, with sessions spread over them
// round robin. A session then lives on one thread: no strand, no lock contention on a shared
// scheduler, and no thread waking another for every hand-off (the cost profiling found in one
// io_context shared by all threads, as tests/bench/profile.sh shows). The threads are started
// (start()) before the listener is announced, and joined on destruction whatever happened.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
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

  ~IoPool() {
    release();
    join();
  }

  // Starts a thread for each context but the first, before mailtap says it listens: a task
  // limit (ulimit -u, systemd's TasksMax, a container's pids.max) that allows fewer threads is
  // a start-up failure with its cause, not a crash once running. False, with `error` set
  // ("cannot start I/O thread 5 of 8: Resource temporarily unavailable") and the threads
  // already started ended, when one cannot be made.
  bool start(std::string& error) {
    for (std::size_t i = 1; i < contexts_.size(); ++i) {
      try {
        threads_.emplace_back([c = contexts_[i].get()] { c->run(); });
      } catch (const std::system_error& e) {
        error = "cannot start I/O thread " + std::to_string(i + 1) + " of " +
                std::to_string(contexts_.size()) + ": " + e.code().message();
        release();
        join();
        return false;
      }
    }
    return true;
  }
  // Runs context 0 on the calling thread, with the others on the threads start() made, until
  // all of them run out of work after release().
  void run() {
    contexts_.front()->run();
    join();
  }
  // Lets the contexts finish once their sessions have: call when shutting down (any thread).
  void release() {
    for (auto& g : guards_) g.reset();
  }

 private:
  std::vector<std::unique_ptr<asio::io_context>> contexts_;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards_;
  std::atomic<std::size_t> next_{0};
  std::vector<std::thread> threads_;

  void join() {
    for (auto& t : threads_)
      if (t.joinable()) t.join();
    threads_.clear();
  }
};

}  // namespace mailtap::net
