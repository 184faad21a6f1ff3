// A `mailtap` subcommand: its CLI11 parser and what runs when it was chosen.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace mailtap::cli {

struct Subcommand {
  CLI::App* app = nullptr;
  std::function<int()> run;  // the process exit code
  // Whether run() handles SIGINT, SIGTERM and SIGHUP itself: once its command line and config
  // file are read it holds them (stop_signals::defer), and lets them in (end_deferral) once its
  // handler is in place. The others run with the signal mask mailtap was started with.
  bool handles_stop_signals = false;
};

}  // namespace mailtap::cli
