// `mailtap proxy`, and what it borrows from the layer above it: the explanations of
// --transcript --explain and the page of --web live with the tools, so main hands them in
// and the proxy command never includes tools/.
#pragma once

#include <CLI/CLI.hpp>
#include <asio/ip/tcp.hpp>
#include <functional>
#include <memory>
#include <string>

#include "proxy/cli/command.hpp"
#include "proxy/net/local_user_policy.hpp"
#include "proxy/session/transcript.hpp"

namespace mailtap::cli {

// The page --web started; destroying it stops it.
class WebPage {
 public:
  virtual ~WebPage() = default;
  // "http://127.0.0.1:8025/" with the port actually bound.
  virtual const std::string& url() const = 0;
};

struct ProxyCommandServices {
  // --transcript --explain: the lines printed under a reply.
  ReplyExplainer explain;
  // --web: serves the page over `db_path` on `listen` (already checked) to the local users
  // `local_users` admits (the proxy's --allow-local-user); nullptr with `error` set when it cannot.
  std::function<std::unique_ptr<WebPage>(
      const asio::ip::tcp::endpoint& listen, const std::string& db_path,
      const net::LocalUserPolicy& local_users, std::string& error)>
      start_web;
  // --web: why the page cannot be served on `listen` at all (empty if it can), asked with the
  // other options so that such a --web is a usage error, before anything starts.
  std::function<std::string(const asio::ip::tcp::endpoint& listen)> web_listen_problem;
};

Subcommand add_proxy_command(CLI::App& parent, ProxyCommandServices services);

}  // namespace mailtap::cli
