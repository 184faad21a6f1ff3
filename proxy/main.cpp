// mailtap: talk SMTP by hand to a TLS-only server, and keep an honest record of it.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <exception>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "proxy/cli/command.hpp"
#include "proxy/cli/command_word.hpp"
#include "proxy/cli/config_option.hpp"
#include "proxy/cli/empty_option_value.hpp"
#include "proxy/cli/option_values.hpp"
#include "proxy/cli/usage_errors.hpp"
#include "proxy/command/proxy_command.hpp"
#include "proxy/common/log.hpp"
#include "proxy/common/terminal_escape.hpp"
#include "tools/commands.hpp"
#include "tools/reply_explanation.hpp"
#include "tools/tool_options.hpp"
#include "tools/web/web_server.hpp"

namespace {
// proxy --web: the tools' page, behind the interface the proxy command knows.
class ToolsWebPage final : public mailtap::cli::WebPage {
 public:
  explicit ToolsWebPage(std::unique_ptr<mailtap::tools::web::WebServer> server)
      : server_(std::move(server)) {}
  const std::string& url() const override { return server_->url(); }

 private:
  std::unique_ptr<mailtap::tools::web::WebServer> server_;
};

mailtap::cli::ProxyCommandServices proxy_services() {
  mailtap::cli::ProxyCommandServices services;
  services.explain = mailtap::tools::explanation_lines;
  services.start_web = [](const asio::ip::tcp::endpoint& listen, const std::string& db_path,
                          const mailtap::net::LocalUserPolicy& local_users,
                          std::string& error) -> std::unique_ptr<mailtap::cli::WebPage> {
    auto server = mailtap::tools::web::WebServer::start({listen, db_path, local_users}, error);
    if (!server) return nullptr;
    return std::make_unique<ToolsWebPage>(std::move(server));
  };
  services.web_listen_problem = mailtap::tools::web::unsupported_listen_address;
  return services;
}

int run(int argc, char** argv) {
  CLI::App app{
      "mailtap: talk SMTP by hand (telnet, nc) to TLS-only mail servers, and record "
      "every exchange",
      "mailtap"};
  app.set_version_flag("--version", std::string("mailtap ") + MAILTAP_VERSION);
  app.require_subcommand(1);
  // CLI11's refusals in the form of mailtap's own (docs/tools/*.md): "mailtap: --max-body: 5GiB:
  // too large ...", and a tool's with its name, "mailtap: export: ...", as its other messages.
  // They quote the argument refused, so its control characters are escaped as in mailtap's
  // own stderr lines (log.hpp): a pasted ESC cannot recolour or retitle the terminal.
  // Its terser texts ("The following argument was not expected") in words that say what to
  // do instead (usage_errors.hpp).
  app.failure_message([](const CLI::App* root, const CLI::Error& e) {
    std::string prefix = "mailtap: ";
    const CLI::App* command = root;
    for (const CLI::App* sub : root->get_subcommands()) {
      if (sub->get_name() != "proxy") prefix += sub->get_name() + ": ";
      command = sub;
    }
    std::string what = mailtap::cli::usage_error_text(*command, e);
    if (what.empty()) what = e.what();
    return prefix + mailtap::escape_text(what) + "\nRun with --help for more information.\n";
  });
  std::vector<mailtap::cli::Subcommand> commands;
  commands.push_back(mailtap::cli::add_proxy_command(app, proxy_services()));
  for (auto add :
       {mailtap::tools::add_sessions_command, mailtap::tools::add_show_command,
        mailtap::tools::add_export_command, mailtap::tools::add_replay_command,
        mailtap::tools::add_mock_command, mailtap::tools::add_audit_command,
        mailtap::tools::add_prune_command, mailtap::tools::add_explain_command,
        mailtap::tools::add_probe_command, mailtap::tools::add_encode_command,
        mailtap::tools::add_decode_command, mailtap::tools::add_web_command,
        mailtap::tools::add_generate_docs_command, mailtap::tools::add_upstream_names_command}) {
    commands.push_back(add(app));
    mailtap::cli::layer_common_options(commands.back());  // --db, --color from env and file
  }
  commands.push_back(mailtap::cli::add_help_command(app));
  mailtap::cli::check_option_values(app);  // after every command has added its options
  // CLI11 takes the arguments last first.
  std::vector<std::string> arguments =
      mailtap::cli::help_command_arguments({argv + 1, argv + argc});
  if (const std::string unknown = mailtap::cli::unknown_first_word(app, arguments);
      !unknown.empty()) {
    mailtap::log::error(unknown);
    return 2;
  }
  arguments = mailtap::cli::spell_out_empty_values(app, std::move(arguments));
  std::reverse(arguments.begin(), arguments.end());
  try {
    app.parse(arguments);
  } catch (const CLI::ParseError& e) {
    // CLI11 prints help or the version, and says what is wrong: that is written here, a line
    // at a time as mailtap's others are (timed in a file, docs/proxy.md). Bad usage is status
    // 2 for every command (docs/tools/*.md), whatever CLI11's own code for the kind of mistake.
    std::ostringstream wrong;
    if (app.exit(e, std::cout, wrong) != 0) {
      mailtap::log::error_lines(wrong.str());
      return 2;
    }
    // --help or --version: one that cannot be written is said, as every tool's output is.
    std::cout.flush();
    if (std::fflush(stdout) != 0 || std::ferror(stdout) != 0 || !std::cout) {
      mailtap::log::error(std::string("stdout: ") + std::strerror(errno));
      return 1;
    }
    return 0;
  }
  for (auto& cmd : commands) {
    if (!cmd.app->parsed()) continue;
    mailtap::tools::set_stdout_tool(cmd.app->get_name());  // "mailtap: show: stdout: ..."
    return cmd.run();
  }
  return 2;
}
}  // namespace

int main(int argc, char** argv) {
  // Errors are reported at the boundaries as results; anything that still escapes (out of
  // memory, a broken reactor) ends the process with a message instead of std::terminate.
  try {
    mailtap::log::detect_destination();
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mailtap: fatal: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "mailtap: fatal: unknown error\n");
  }
  return 1;
}
