// --color auto|always|never: one spelling and one help text for every command that colours
// its output (show, sessions, audit, proxy --transcript).
#pragma once

#include <CLI/CLI.hpp>

#include "proxy/common/terminal_style.hpp"

namespace mailtap::cli {

CLI::Option* add_color_option(CLI::App& app, ColorChoice& out);

}  // namespace mailtap::cli
