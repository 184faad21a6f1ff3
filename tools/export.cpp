// `mailtap export` (placeholder until implemented).
#include "proxy/session/log.hpp"
#include "tools/commands.hpp"

namespace mailtap::tools {

cli::Subcommand add_export_command(CLI::App& parent) {
  CLI::App* app = parent.add_subcommand("export", "(not implemented yet)");
  return {app, [] {
            log::error("export: not implemented yet");
            return 1;
          }};
}

}  // namespace mailtap::tools
