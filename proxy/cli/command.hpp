// A `mailtap` subcommand: its CLI11 parser and what runs when it was chosen.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace mailtap::cli {

struct Subcommand {
  CLI::App* app = nullptr;
  std::function<int()> run;  // the process exit code
};

}  // namespace mailtap::cli
