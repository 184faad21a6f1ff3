// Everything `mailtap proxy` was told on its command line, already validated.
#pragma once

#include <asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "proxy/net/local_user_policy.hpp"
#include "proxy/net/tls_client_context.hpp"
#include "proxy/net/upstream_connector.hpp"
#include "proxy/secrets/token_provider.hpp"
#include "proxy/smtp/secret.hpp"

namespace mailtap {

enum class RecordFailurePolicy { stop, continue_relaying };

struct ProxyConfig {
  asio::ip::tcp::endpoint listen{asio::ip::make_address("127.0.0.1"), 2525};
  bool allow_remote = false;
  // Who of this machine's users may connect (--allow-local-user): mailtap's own by default.
  net::LocalUserPolicy local_users;
  // --local-tls: TLS on the client's side, with --local-cert/--local-key or mailtap's own
  // self-signed certificate for localhost (docs/proxy.md).
  net::TlsMode local_tls = net::TlsMode::none;
  std::string local_cert;
  std::string local_key;

  std::string upstream_host = "smtp.gmail.com";
  std::uint16_t upstream_port = 587;
  net::TlsMode tls_mode = net::TlsMode::starttls;
  net::TrustSettings trust;
  std::string tls_name;   // defaults to upstream_host
  std::string ehlo_name;  // defaults to the host name
  // --client-cert/--client-key, read at start (null: none, or --print-config).
  std::shared_ptr<const net::ClientCertificate> client_certificate;

  bool transcript = false;
  int verbosity = 1;  // 0 --quiet, 1 default, 2 -v

  std::optional<std::string> db_path;  // empty optional: recording off (--no-record)
  bool db_is_default = false;          // db_path is the default: no --db, MAILTAP_DB or db
  RecordFailurePolicy record_failure = RecordFailurePolicy::stop;
  std::size_t max_body = 64u << 20;
  bool redact_users = false;
  bool fingerprint_secrets = false;

  std::chrono::steady_clock::duration timeout_connect = std::chrono::seconds(30);
  std::chrono::steady_clock::duration timeout_command = std::chrono::minutes(5);
  std::chrono::steady_clock::duration timeout_data = std::chrono::minutes(10);
  std::chrono::steady_clock::duration grace = std::chrono::seconds(30);
  unsigned threads = 0;  // 0: one per core
  unsigned max_sessions = 512;

  // --auth-user: mailtap authenticates each session itself (docs/auth.md).
  std::string auth_user;
  std::shared_ptr<const smtp::Secret> auth_password;  // the one copy, read at start
  std::string oauth2_token_cmd;
  // --timeout-token-cmd: how long one run of oauth2_token_cmd may take.
  std::chrono::milliseconds oauth2_token_timeout = secrets::kTokenCommandTimeout;
  bool assist_auth = false;
};

}  // namespace mailtap
