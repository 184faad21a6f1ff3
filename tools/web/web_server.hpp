// The HTTP server behind `mailtap web` and `mailtap proxy --web`: CivetWeb (Debian's
// libcivetweb, plain HTTP only: no TLS library is ever loaded) held by RAII. Every request is
// checked (GET or HEAD only, Host header naming this server) before a route answers it; the live
// feed is server-sent events fed by one ChangeWatcher.
#pragma once

#include <asio/ip/tcp.hpp>
#include <memory>
#include <string>

#include "proxy/net/local_user_policy.hpp"

namespace mailtap::tools::web {

struct WebServerOptions {
  asio::ip::tcp::endpoint listen;  // checked by the caller (loopback unless --allow-remote)
  std::string db_path;             // an existing mailtap database, read-only
  // Who of this machine's users may read the page (--allow-local-user): mailtap's own by default.
  net::LocalUserPolicy local_users;
};

// Why the page cannot be served on `listen` with the CivetWeb mailtap runs on (an IPv6 address
// when the library is built without IPv6, as Debian's is); empty when it can. Checked with the
// other options, before anything starts.
std::string unsupported_listen_address(const asio::ip::tcp::endpoint& listen);

class WebServer {
 public:
  // Listening when it returns; nullptr with `error` set otherwise (port in use, no database).
  static std::unique_ptr<WebServer> start(const WebServerOptions& options, std::string& error);
  ~WebServer();  // ends the event streams, then stops CivetWeb and waits for its threads
  WebServer(const WebServer&) = delete;
  WebServer& operator=(const WebServer&) = delete;

  // "http://127.0.0.1:8025/" with the port actually bound.
  const std::string& url() const;

  struct Impl;

 private:
  explicit WebServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mailtap::tools::web
