// The subcommands besides the proxy: the ones that work on the record, the ones that answer a
// user's questions about replies and servers, and the AUTH encode/decode helpers. One file
// each in tools/.
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
cli::Subcommand add_explain_command(CLI::App& parent);
cli::Subcommand add_probe_command(CLI::App& parent);
cli::Subcommand add_generate_docs_command(CLI::App& parent);   // hidden, for the build
cli::Subcommand add_upstream_names_command(CLI::App& parent);  // hidden, for the completion
cli::Subcommand add_encode_command(CLI::App& parent);
cli::Subcommand add_decode_command(CLI::App& parent);
cli::Subcommand add_web_command(CLI::App& parent);  // tools/web/

}  // namespace mailtap::tools
