// `mailtap replay` (placeholder until implemented).
#include "proxy/session/log.hpp"
#include "tools/commands.hpp"

namespace mailtap::tools {

cli::Subcommand add_replay_command(CLI::App& parent) {
  CLI::App* app = parent.add_subcommand("replay", "(not implemented yet)");
  return {app, [] {
            log::error("replay: not implemented yet");
            return 1;
          }};
}

}  // namespace mailtap::tools
