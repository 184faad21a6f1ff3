#include "tools/web/change_watcher.hpp"

namespace mailtap::tools::web {

ChangeWatcher::ChangeWatcher(Probe probe, std::chrono::milliseconds interval)
    : probe_(std::move(probe)), interval_(interval) {
  if (auto first = probe_()) snapshot_.state = std::move(*first);
  thread_ = std::thread([this] { run(); });
}

ChangeWatcher::~ChangeWatcher() {
  stop();
  if (thread_.joinable()) thread_.join();
}

void ChangeWatcher::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
}

ChangeWatcher::Snapshot ChangeWatcher::current() const {
  std::lock_guard lock(mutex_);
  return snapshot_;
}

bool ChangeWatcher::wait_for_change(std::uint64_t seen, std::chrono::milliseconds timeout,
                                    Snapshot& out) {
  std::unique_lock lock(mutex_);
  changed_.wait_for(lock, timeout, [&] { return stopping_ || snapshot_.generation != seen; });
  out = snapshot_;
  return !stopping_;
}

void ChangeWatcher::run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    if (changed_.wait_for(lock, interval_, [&] { return stopping_; })) break;
    lock.unlock();
    auto state = probe_();  // outside the lock: waiters read snapshots meanwhile
    lock.lock();
    if (state && *state != snapshot_.state) {
      snapshot_.state = std::move(*state);
      ++snapshot_.generation;
      changed_.notify_all();
    }
  }
}

}  // namespace mailtap::tools::web
