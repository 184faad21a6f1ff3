// `mailtap web`: the record in a browser, beside the telnet window. Serves the page and its
// JSON API from a read-only view of the database until SIGINT/SIGTERM.
#include <csignal>
#include <memory>

#include "proxy/common/log.hpp"
#include "proxy/options/listen_options.hpp"
#include "tools/commands.hpp"
#include "tools/tool_options.hpp"
#include "tools/web/web_server.hpp"

namespace mailtap::tools {

namespace {

struct WebArgs {
  ToolOptions common;
  options::ListenOptions listen{"127.0.0.1:8025"};  // --listen, --allow-remote
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
  if (!e.empty()) {
    log::error("web: " + e);
    return 2;
  }
  // Block the stop signals before CivetWeb starts its threads (they inherit the mask), so they
  // reach sigwait below and nothing else.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  auto server = web::WebServer::start(options, error);
  if (!server) {
    log::error("web: " + error);
    return 1;
  }
  if (!options.listen.address().is_loopback())
    log::warning("WARNING: --allow-remote: the web page at " + server->url() +
                 " shows mail and who authenticated to anyone who can reach it");
  log::notice("web page at " + server->url() + " (reading " + options.db_path + ")");
  int signal = 0;
  sigwait(&stop_signals, &signal);
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
  app->footer("Example: mailtap web, then open http://127.0.0.1:8025/");
  return {app, [args] { return run_web(*args); }};
}

}  // namespace mailtap::tools
