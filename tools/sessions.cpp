// `mailtap sessions` (placeholder until implemented).
#include "proxy/session/log.hpp"
#include "tools/commands.hpp"

namespace mailtap::tools {

cli::Subcommand add_sessions_command(CLI::App& parent) {
  CLI::App* app = parent.add_subcommand("sessions", "(not implemented yet)");
  return {app, [] {
            log::error("sessions: not implemented yet");
            return 1;
          }};
}

}  // namespace mailtap::tools
