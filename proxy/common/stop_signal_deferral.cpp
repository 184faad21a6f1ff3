#include "proxy/common/stop_signal_deferral.hpp"

#include <array>

namespace mailtap::stop_signals {
namespace {

constexpr std::array<int, 3> kStopSignals{SIGINT, SIGTERM, SIGHUP};

// Written once before any thread exists, read after: no lock needed.
sigset_t g_inherited_mask;
bool g_deferred = false;

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

}  // namespace mailtap::stop_signals
