// `mailtap web`: the record in a browser, beside the telnet window. Serves the page and its
// JSON API from a read-only view of the database until SIGINT/SIGTERM.
#include <csignal>
#include <memory>

#include "proxy/common/log.hpp"
#include "proxy/common/stop_signal_deferral.hpp"
#include "proxy/options/listen_options.hpp"
#include "proxy/options/local_user_options.hpp"
#include "tools/commands.hpp"
#include "tools/tool_options.hpp"
#include "tools/web/web_server.hpp"

namespace mailtap::tools {

namespace {

struct WebArgs {
  ToolOptions common;
  options::ListenOptions listen{"127.0.0.1:8025"};  // --listen, --allow-remote
  options::LocalUserOptions local_users;            // --allow-local-user
};

int run_web(const WebArgs& a) {
  // No database yet, or one that cannot be read: said in the words every tool reading the
  // record uses (with where the systemd unit records when the default is missing).
  int failure_status = 1;
  if (!a.common.open_reader("web", failure_status)) return failure_status;
  std::string error;
  web::WebServerOptions options;
  options.db_path = a.common.database_path(error);
  std::string e = a.listen.endpoint("the page shows mail and who authenticated", options.listen);
  if (e.empty()) e = web::unsupported_listen_address(options.listen);
  if (e.empty()) e = a.local_users.policy(options.local_users);
  if (!e.empty()) {
    log::error("web: " + e);
    return 2;
  }
  // The stop signals stay blocked (main blocked them) while CivetWeb starts its threads (they
  // inherit the mask), so they reach sigwait below and nothing else; SIGHUP gets the
  // disposition and mask mailtap was started with.
  sigset_t awaited;
  sigemptyset(&awaited);
  sigaddset(&awaited, SIGINT);
  sigaddset(&awaited, SIGTERM);
  stop_signals::end_deferral(&awaited);
  std::signal(SIGPIPE, SIG_IGN);

  auto server = web::WebServer::start(options, error);
  if (!server) {
    log::error("web: " + error);
    return 1;
  }
  if (!options.listen.address().is_loopback())
    log::warning("WARNING: --allow-remote: the web page at " + server->url() +
                 " shows mail and who authenticated to anyone who can reach it");
  mailtap::options::announce_local_users(options.local_users, "read the web page");
  log::notice("web page at " + server->url() + " (reading " + options.db_path + ")");
  int signal = 0;
  sigwait(&awaited, &signal);
  server.reset();
  log::info("stopped");
  return 0;
}

}  // namespace

cli::Subcommand add_web_command(CLI::App& parent) {
  auto args = std::make_shared<WebArgs>();
  CLI::App* app = parent.add_subcommand(
      "web", "Serve the record as a web page (sessions, transcripts, messages, audit), live");
  args->common.add_to(*app, false);
  args->listen.add_to(*app, "to serve the page on", "the page shows mail and user names");
  args->local_users.add_to(*app, "read the web page");
  app->footer("Example: mailtap web, then open http://127.0.0.1:8025/");
  cli::Subcommand cmd{app, [args] { return run_web(*args); }};
  cmd.handles_stop_signals = true;
  return cmd;
}

}  // namespace mailtap::tools
