// `mailtap mock` (placeholder until implemented).
#include "proxy/session/log.hpp"
#include "tools/commands.hpp"

namespace mailtap::tools {

cli::Subcommand add_mock_command(CLI::App& parent) {
  CLI::App* app = parent.add_subcommand("mock", "(not implemented yet)");
  return {app, [] {
            log::error("mock: not implemented yet");
            return 1;
          }};
}

}  // namespace mailtap::tools
