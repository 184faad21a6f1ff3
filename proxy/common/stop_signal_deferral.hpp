// A stop signal (SIGINT, SIGTERM, SIGHUP) that comes while mailtap starts, before the command
// that handles it has its handler in place, would kill it with the default action: no
// "stopped" line, a death by signal for a service manager, a database left half opened. So a
// command that handles them blocks them once its command line and config file are read, before
// any thread exists (threads inherit the mask: none of them takes one either), and ends the
// deferral once its handler is in place: a signal that came meanwhile is delivered then.
// Not before: reading the file can wait without end (`--config FIFO` that nobody writes), and
// a stop signal must still end it then, with nothing yet to clean up. Every other command runs
// with the mask mailtap was started with, and dies of them as before.
#pragma once

#include <signal.h>

namespace mailtap::stop_signals {

// Blocks the stop signals in the calling thread, keeping the mask mailtap was started with.
// Called once, before any thread exists.
void defer();

// The mask mailtap was started with back in the calling thread, plus `kept_blocked` (the
// signals a command waits for with sigwait): a stop signal blocked meanwhile arrives now.
void end_deferral(const sigset_t* kept_blocked = nullptr);

}  // namespace mailtap::stop_signals
