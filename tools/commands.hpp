// The subcommands that work on the record, and the AUTH encode/decode helpers: one file each
// in tools/.
#pragma once

#include "proxy/cli/command.hpp"

namespace mailtap::tools {

cli::Subcommand add_sessions_command(CLI::App& parent);
cli::Subcommand add_show_command(CLI::App& parent);
cli::Subcommand add_export_command(CLI::App& parent);
cli::Subcommand add_replay_command(CLI::App& parent);
cli::Subcommand add_mock_command(CLI::App& parent);
cli::Subcommand add_audit_command(CLI::App& parent);
cli::Subcommand add_prune_command(CLI::App& parent);
cli::Subcommand add_encode_command(CLI::App& parent);
cli::Subcommand add_decode_command(CLI::App& parent);

}  // namespace mailtap::tools
