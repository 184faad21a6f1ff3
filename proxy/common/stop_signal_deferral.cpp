#include "proxy/common/stop_signal_deferral.hpp"

#include <poll.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <ctime>

namespace mailtap::stop_signals {
namespace {

constexpr std::array<int, 3> kStopSignals{SIGINT, SIGTERM, SIGHUP};

// Written once before any thread exists, read after: no lock needed.
sigset_t g_inherited_mask;
bool g_deferred = false;

std::atomic<int> g_caught{0};  // lock-free: what a signal handler may touch
std::array<struct sigaction, kStopSignals.size()> g_previous{};
sigset_t g_watched;  // the stop signals the WaitWatch has its handler for

extern "C" void note_caught(int signo) {
  g_caught.store(signo);
}

}  // namespace

void defer() {
  sigset_t stop;
  sigemptyset(&stop);
  for (int s : kStopSignals) sigaddset(&stop, s);
  g_deferred = pthread_sigmask(SIG_BLOCK, &stop, &g_inherited_mask) == 0;
}

void end_deferral(const sigset_t* kept_blocked) {
  if (!g_deferred) return;
  sigset_t mask = g_inherited_mask;
  if (kept_blocked != nullptr) {
    for (int s : kStopSignals)
      if (sigismember(kept_blocked, s) == 1) sigaddset(&mask, s);
  }
  pthread_sigmask(SIG_SETMASK, &mask, nullptr);
}

WaitWatch::WaitWatch() {
  static_assert(std::atomic<int>::is_always_lock_free);
  sigemptyset(&g_watched);
  struct sigaction catcher {};
  catcher.sa_handler = note_caught;
  sigemptyset(&catcher.sa_mask);
  for (std::size_t i = 0; i < kStopSignals.size(); ++i) {
    if (sigaction(kStopSignals[i], nullptr, &g_previous[i]) != 0) continue;
    if (g_previous[i].sa_handler == SIG_IGN) continue;  // nohup: the caller meant it
    if (sigaction(kStopSignals[i], &catcher, nullptr) == 0) sigaddset(&g_watched, kStopSignals[i]);
  }
}

WaitWatch::~WaitWatch() {
  for (std::size_t i = 0; i < kStopSignals.size(); ++i)
    if (sigismember(&g_watched, kStopSignals[i]) == 1)
      sigaction(kStopSignals[i], &g_previous[i], nullptr);
}

bool WaitWatch::stopped() {
  const timespec now{};
  for (int signo; g_deferred && (signo = sigtimedwait(&g_watched, nullptr, &now)) > 0;)
    g_caught.store(signo);
  return g_caught.load() != 0;
}

bool WaitWatch::wait_readable(int fd) {
  sigset_t during;
  pthread_sigmask(SIG_SETMASK, nullptr, &during);
  for (int s : kStopSignals)
    if (sigismember(&g_watched, s) == 1) sigdelset(&during, s);
  pollfd p{fd, POLLIN, 0};
  while (g_caught.load() == 0) {
    if (ppoll(&p, 1, nullptr, &during) > 0) return true;
    if (errno != EINTR && errno != EAGAIN) return true;  // the read says what is wrong
  }
  return false;
}

int WaitWatch::caught() {
  return g_caught.load();
}

}  // namespace mailtap::stop_signals
