#include "proxy/secrets/stop_signals.hpp"

#include <signal.h>

#include <array>

namespace mailtap::secrets {
namespace {

constexpr std::array<int, 3> kStopSignals{SIGINT, SIGTERM, SIGHUP};

// Lock-free atomics: the only state a signal handler may touch.
std::atomic<bool> g_stop_requested{false};
std::atomic<int> g_stop_signal{0};
std::array<struct sigaction, kStopSignals.size()> g_previous{};
std::array<bool, kStopSignals.size()> g_installed{};
sigset_t g_mask_before{};

extern "C" void note_stop_signal(int signo) {
  g_stop_signal.store(signo);
  g_stop_requested.store(true);
}

}  // namespace

StopSignalsCaught::StopSignalsCaught() {
  static_assert(std::atomic<int>::is_always_lock_free && std::atomic<bool>::is_always_lock_free);
  struct sigaction catcher {};
  catcher.sa_handler = note_stop_signal;
  sigemptyset(&catcher.sa_mask);
  catcher.sa_flags = SA_RESTART;
  for (std::size_t i = 0; i < kStopSignals.size(); ++i) {
    g_installed[i] = false;
    if (sigaction(kStopSignals[i], nullptr, &g_previous[i]) != 0) continue;
    if (g_previous[i].sa_handler == SIG_IGN) continue;  // nohup: the caller meant it
    g_installed[i] = sigaction(kStopSignals[i], &catcher, nullptr) == 0;
  }
  // The proxy holds the stop signals blocked until a handler takes them: the catcher is that
  // handler for the helper's run, and one that came before is caught now, ending the helper
  // before it starts.
  sigset_t caught;
  sigemptyset(&caught);
  for (std::size_t i = 0; i < kStopSignals.size(); ++i)
    if (g_installed[i]) sigaddset(&caught, kStopSignals[i]);
  pthread_sigmask(SIG_UNBLOCK, &caught, &g_mask_before);
}

StopSignalsCaught::~StopSignalsCaught() {
  // Blocked again before the default action is back: one that comes after the run waits for
  // the proxy's own handler.
  pthread_sigmask(SIG_SETMASK, &g_mask_before, nullptr);
  for (std::size_t i = 0; i < kStopSignals.size(); ++i)
    if (g_installed[i]) sigaction(kStopSignals[i], &g_previous[i], nullptr);
}

const std::atomic<bool>& StopSignalsCaught::stop_requested() const {
  return g_stop_requested;
}

int stop_signal_caught() {
  return g_stop_signal.load();
}

void count_as_stop(int signo) {
  note_stop_signal(signo);
}

}  // namespace mailtap::secrets
