// Tells the page's live feed when the record changed. One thread polls a cheap probe (the
// database's PRAGMA data_version and newest session id) every `interval`; every server-sent
// events connection waits on the same condition instead of polling the database itself.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace mailtap::tools::web {

class ChangeWatcher {
 public:
  // Returns the current state as a short text (JSON for the event's data), nullopt when it
  // could not be read this time (the next poll tries again).
  using Probe = std::function<std::optional<std::string>()>;

  struct Snapshot {
    std::uint64_t generation = 0;  // increases each time the probe's text changed
    std::string state;
  };

  ChangeWatcher(Probe probe, std::chrono::milliseconds interval);
  ~ChangeWatcher();  // stops and joins the thread
  ChangeWatcher(const ChangeWatcher&) = delete;
  ChangeWatcher& operator=(const ChangeWatcher&) = delete;

  Snapshot current() const;
  // Blocks until the generation differs from `seen` (true, `out` set), or `timeout` passed
  // (true, `out` is the unchanged current state), or the watcher is stopping (false).
  bool wait_for_change(std::uint64_t seen, std::chrono::milliseconds timeout, Snapshot& out);
  // Wakes every waiter with false; idempotent.
  void stop();

 private:
  void run();

  Probe probe_;
  std::chrono::milliseconds interval_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  Snapshot snapshot_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace mailtap::tools::web
