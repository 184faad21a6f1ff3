// A stop signal (SIGINT, SIGTERM, SIGHUP) that comes while mailtap starts, before the command
// that handles it has its handler in place, would kill it with the default action: no
// "stopped" line, a death by signal for a service manager, a database left half opened. So a
// command that handles them blocks them once its command line is read, before any thread exists
// (threads inherit the mask: none of them takes one either), and ends the deferral once its
// handler is in place: a signal that came meanwhile is delivered then. Reading the config file
// can wait without end (`--config FIFO` that nobody writes): it waits under a WaitWatch, which
// takes a stop signal during the wait, and the command then stops as it would once started.
// Every other command runs with the mask mailtap was started with, and dies of them as before.
#pragma once

#include <signal.h>

namespace mailtap::stop_signals {

// Blocks the stop signals in the calling thread, keeping the mask mailtap was started with.
// Called once, before any thread exists.
void defer();

// The mask mailtap was started with back in the calling thread, plus `kept_blocked` (the
// signals a command waits for with sigwait): a stop signal blocked meanwhile arrives now.
void end_deferral(const sigset_t* kept_blocked = nullptr);

// While deferred: a stop signal caught (noted, not acted on) while wait_readable waits, or taken
// by stopped() when it came at another moment. One that comes after the last check stays
// deferred, for the command's own handler. A signal inherited ignored (nohup) stays ignored.
class WaitWatch {
 public:
  WaitWatch();
  ~WaitWatch();
  WaitWatch(const WaitWatch&) = delete;
  WaitWatch& operator=(const WaitWatch&) = delete;

  // Waits until `fd` has something to read (or its end), the stop signals let through only
  // meanwhile (ppoll: none is lost between a check and the wait). False once a stop signal came.
  bool wait_readable(int fd);
  // Takes a stop signal that is held meanwhile: true once one came.
  bool stopped();
  // The stop signal that came during a watch, or 0.
  static int caught();
};

}  // namespace mailtap::stop_signals
