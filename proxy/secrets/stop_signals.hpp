// While a secret helper runs at start (--password-cmd), SIGINT, SIGTERM and SIGHUP would kill
// mailtap at once and leave the helper behind, an orphan holding a pinentry or an agent request
// open with nobody to read what it prints. For the helper's run they are caught instead: the
// caller ends the helper (CommandOptions::cancel) and says which signal stopped it. A signal
// inherited ignored (nohup) stays ignored.
#pragma once

#include <atomic>

namespace mailtap::secrets {

class StopSignalsCaught {
 public:
  StopSignalsCaught();
  ~StopSignalsCaught();
  StopSignalsCaught(const StopSignalsCaught&) = delete;
  StopSignalsCaught& operator=(const StopSignalsCaught&) = delete;

  // Set once one of the signals came: what run_command watches to end the helper.
  const std::atomic<bool>& stop_requested() const;
};

// The signal that stopped a secret helper while StopSignalsCaught was in force, or 0: the
// process was asked to stop, which is not a failure of the helper or the configuration.
int stop_signal_caught();

// Counts `signo` as a stop caught (stop_signal_caught) although it reached only the helper: its
// Ctrl-C, while it held the terminal, is the person stopping mailtap.
void count_as_stop(int signo);

}  // namespace mailtap::secrets
