// `mailtap show` (placeholder until implemented).
#include "proxy/session/log.hpp"
#include "tools/commands.hpp"

namespace mailtap::tools {

cli::Subcommand add_show_command(CLI::App& parent) {
  CLI::App* app = parent.add_subcommand("show", "(not implemented yet)");
  return {app, [] {
            log::error("show: not implemented yet");
            return 1;
          }};
}

}  // namespace mailtap::tools
