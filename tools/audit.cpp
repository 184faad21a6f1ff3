// `mailtap audit` (placeholder until implemented).
#include "proxy/session/log.hpp"
#include "tools/commands.hpp"

namespace mailtap::tools {

cli::Subcommand add_audit_command(CLI::App& parent) {
  CLI::App* app = parent.add_subcommand("audit", "(not implemented yet)");
  return {app, [] {
            log::error("audit: not implemented yet");
            return 1;
          }};
}

}  // namespace mailtap::tools
