// `mailtap prune` (placeholder until implemented).
#include "proxy/session/log.hpp"
#include "tools/commands.hpp"

namespace mailtap::tools {

cli::Subcommand add_prune_command(CLI::App& parent) {
  CLI::App* app = parent.add_subcommand("prune", "(not implemented yet)");
  return {app, [] {
            log::error("prune: not implemented yet");
            return 1;
          }};
}

}  // namespace mailtap::tools
