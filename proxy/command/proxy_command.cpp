// `mailtap proxy`: options, validation, start-up messages, and the run loop with signals.
#include <signal.h>
#include <sys/resource.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/signal_set.hpp>
#include <asio/strand.hpp>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "proxy/cli/command.hpp"
#include "proxy/cli/config_option.hpp"
#include "proxy/cli/option_values.hpp"
#include "proxy/cli/parse.hpp"
#include "proxy/cli/unknown_variables.hpp"
#include "proxy/command/auth_options.hpp"
#include "proxy/command/print_config.hpp"
#include "proxy/command/proxy_command.hpp"
#include "proxy/command/proxy_settings.hpp"
#include "proxy/command/transcript_options.hpp"
#include "proxy/common/installed_docs.hpp"
#include "proxy/common/log.hpp"
#include "proxy/common/stop_signal_deferral.hpp"
#include "proxy/net/endpoint.hpp"
#include "proxy/net/io_pool.hpp"
#include "proxy/net/local_certificate.hpp"
#include "proxy/net/local_certificate_names.hpp"
#include "proxy/net/tls_server_context.hpp"
#include "proxy/options/database_path_option.hpp"
#include "proxy/options/listen_options.hpp"
#include "proxy/options/local_user_options.hpp"
#include "proxy/options/size_option.hpp"
#include "proxy/options/timeout_options.hpp"
#include "proxy/options/upstream_options.hpp"
#include "proxy/options/vocabulary_option.hpp"
#include "proxy/secrets/core_dumps.hpp"
#include "proxy/secrets/stop_signals.hpp"
#include "proxy/secrets/token_provider.hpp"
#include "proxy/session/proxy_config.hpp"
#include "proxy/session/server.hpp"
#include "proxy/session/session_record.hpp"
#include "storage/default_path.hpp"
#include "storage/directory_access.hpp"
#include "storage/recorder.hpp"

namespace mailtap::cli {

namespace {

struct ProxyArgs {
  std::string upstream_name;  // NAME: the config file's [upstream.NAME]
  std::string config_path;
  bool print_config = false;
  options::ListenOptions listen{"127.0.0.1:2525"};  // --listen, --allow-remote
  options::LocalUserOptions local_users;            // --allow-local-user
  net::TlsMode local_tls = net::TlsMode::none;
  std::string local_cert;
  std::string local_key;
  std::string upstream = "smtp.gmail.com:587";
  options::UpstreamOptions connection;  // --tls, --ca-file, --tls-name, --insecure, --ehlo-name
  bool transcript = false;
  int verbose = 0;
  bool quiet = false;
  std::string db;
  bool no_record = false;
  RecordFailurePolicy record_failure = RecordFailurePolicy::stop;
  std::uint64_t max_body = std::uint64_t{64} << 20;
  bool redact_users = false;
  bool fingerprint_secrets = false;
  // --timeout-connect, --timeout-command, --timeout-data. The data limit is a minute short of
  // the 10 a sender waits for the reply to its end of data (RFC 5321 4.5.3.2; Postfix's
  // smtp_data_done_timeout, Exim's final_timeout), whose clock starts before mailtap's: else it
  // gives up first and never gets mailtap's 421 saying the server may have the message.
  options::TimeoutOptions timeouts{.data = "9m"};
  // --timeout-token-cmd: proxy only (replay shares the three above but runs no token command).
  std::string token_cmd_timeout = std::to_string(secrets::kTokenCommandTimeout.count()) + "s";
  std::string grace = "30s";
  unsigned threads = 0;
  unsigned max_sessions = 512;
  AuthArgs auth;
  std::string web;  // --web ADDR:PORT: serve `mailtap web` from this process
};

constexpr unsigned kMaxThreads = 1024;

// The upstream and how mailtap reaches it, from --upstream and the TLS options; an error
// message, or "". On an error `target` holds what could be worked out before it.
std::string upstream_target(const ProxyArgs& a, net::UpstreamTarget& target, bool read_client_key) {
  if (auto why = net::unbracketed_ipv6_refusal(a.upstream); !why.empty())
    return "--upstream " + why;
  auto upstream = net::parse_host_port(a.upstream);
  if (!upstream) {
    const std::string range = net::port_range_refusal(a.upstream);
    return "--upstream " + a.upstream + ": " + (range.empty() ? "expected HOST[:PORT]" : range);
  }
  target.host = upstream->host;
  target.port = upstream->port.value_or(587);
  return a.connection.apply_to(target, read_client_key);
}

// The database to record to (none under --no-record): --db, else the default path; an error
// message, or "".
std::string database_path(const ProxyArgs& a, std::optional<std::string>& path) {
  if (a.no_record && !a.db.empty()) return "--db and --no-record contradict each other";
  if (a.no_record) return {};
  if (!a.db.empty()) {
    path = a.db;
    return {};
  }
  std::string error;
  path = storage::default_database_path_to_write(error);
  if (path->empty()) return error + " (give --db PATH or --no-record)";
  return {};
}

// Returns an error message, or "" when `cfg` was filled. Without `read_password` no secret is
// read (--print-config).
std::string build_config(const ProxyArgs& a, ProxyConfig& cfg, bool read_password) {
  if (auto e = a.listen.endpoint("the plain-text side carries passwords and mail", cfg.listen);
      !e.empty())
    return e;
  cfg.allow_remote = a.listen.allow_remote;
  if (auto e = a.local_users.policy(cfg.local_users); !e.empty()) return e;

  cfg.local_tls = a.local_tls;
  if (a.local_cert.empty() != a.local_key.empty())
    return "--local-cert and --local-key go together (a PEM certificate and its PEM key)";
  if (!a.local_cert.empty() && cfg.local_tls == net::TlsMode::none)
    return "--local-cert needs --local-tls starttls or implicit";
  cfg.local_cert = a.local_cert;
  cfg.local_key = a.local_key;

  net::UpstreamTarget target;
  if (auto e = upstream_target(a, target, read_password); !e.empty()) return e;
  cfg.upstream_host = target.host;
  cfg.upstream_port = target.port;
  cfg.client_certificate = target.client_certificate;
  cfg.tls_mode = target.mode;
  cfg.trust = a.connection.trust();
  cfg.tls_name = target.tls_name;
  cfg.ehlo_name = target.ehlo_name;

  cfg.transcript = a.transcript;
  cfg.verbosity = a.quiet ? 0 : 1 + a.verbose;

  if (auto e = database_path(a, cfg.db_path); !e.empty()) return e;
  cfg.db_is_default = cfg.db_path.has_value() && a.db.empty();
  cfg.record_failure = a.record_failure;
  cfg.max_body = static_cast<std::size_t>(a.max_body);
  cfg.redact_users = a.redact_users;
  cfg.fingerprint_secrets = a.fingerprint_secrets;

  options::TimeoutOptions::Limits limits;
  if (auto e = a.timeouts.parse(limits); !e.empty()) return e;
  cfg.timeout_connect = limits.connect;
  cfg.timeout_command = limits.command;
  cfg.timeout_data = limits.data;
  std::chrono::milliseconds token_timeout{};
  if (auto e = parse_time_limit("--timeout-token-cmd", a.token_cmd_timeout, token_timeout);
      !e.empty())
    return e;
  cfg.oauth2_token_timeout = token_timeout;
  const auto grace = parse_duration(a.grace);  // 0: stop at once, no grace
  if (!grace) return duration_refusal("--grace", a.grace);
  cfg.grace = *grace;
  // An I/O thread serves hundreds of sessions: more threads than this is a typo (threads =
  // 100000), which would otherwise meet the task limit only at start.
  if (a.threads > kMaxThreads)
    return "--threads " + std::to_string(a.threads) + ": at most " + std::to_string(kMaxThreads) +
           " (the default, one per core, is what mailtap is made for)";
  cfg.threads = a.threads;
  if (a.max_sessions == 0) return "--max-sessions must be at least 1";
  cfg.max_sessions = a.max_sessions;
  return build_auth_config(a.auth, cfg, read_password);
}

// What the options left unset amount to, for --print-config: worked out from the options
// themselves, as far as they go, so that a check failing elsewhere (--listen 0.0.0.0:2525)
// does not show them as unset.
std::map<std::string, DerivedDefault> derived_defaults(const ProxyArgs& a) {
  std::map<std::string, DerivedDefault> out;
  net::UpstreamTarget target;
  upstream_target(a, target, false);  // its refusal is build_config's to report
  if (!target.host.empty()) {
    out["tls"] = {std::string(net::to_string(target.mode)), "port " + std::to_string(target.port)};
    out["tls-name"] = {target.tls_name, "the upstream host"};
  }
  out["ehlo-name"] = {target.ehlo_name, "this host's name"};
  out["ca-file"] = {"", "trusting " + net::describe_trust_source(a.connection.trust())};
  out["client-cert"] = {"", "no client certificate"};
  if (!a.connection.client_cert.empty()) out["client-key"] = {"", "the key in client-cert"};
  std::optional<std::string> db;
  if (database_path(a, db).empty() && db) out["db"] = {*db, "the XDG data directory"};
  out["threads"] = {"", "one per core", "one per core"};
  out["auth-user"] = {"", "clients authenticate themselves"};
  return out;
}

std::vector<std::string> other_command_names(const CLI::App& proxy) {
  std::vector<std::string> out;
  if (const CLI::App* parent = proxy.get_parent())
    for (const CLI::App* sub : parent->get_subcommands({}))
      if (sub != &proxy) out.push_back(sub->get_name());
  return out;
}

// Each session holds two descriptors (client and upstream), and a third while the recorder
// writes a large body to its body file: make room for --max-sessions of them. Past those, a
// burst of clients has up to --max-sessions more refused with a session of their own (one
// descriptor each, until the record is committed and their lingering close is done) and as many
// again refused without one lingering in the server's LingerGroup: two more a session. The 64
// are for the process's own (the listening socket, the database and its -wal and -shm, the
// reactor).
void raise_descriptor_limit(unsigned max_sessions) {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return;
  const rlim_t wanted = rlim_t{5} * max_sessions + 64;
  if (lim.rlim_cur < wanted && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = std::min(wanted, lim.rlim_max);
    setrlimit(RLIMIT_NOFILE, &lim);
    getrlimit(RLIMIT_NOFILE, &lim);
  }
  if (lim.rlim_cur < wanted)
    log::warning("WARNING: only " + std::to_string(lim.rlim_cur) +
                 " file descriptors allowed (ulimit -n); --max-sessions " +
                 std::to_string(max_sessions) + " needs " + std::to_string(wanted));
}

// Loads or makes the --local-tls certificate and its server context: 0, or (logged) the exit
// status. 2 for a certificate or key that cannot be used, a configuration error no restart
// mends (the systemd unit does not restart after it); 1 when the system failed to make one
// (ENOSPC, EIO), which a restart may get past.
int make_local_tls(const ProxyConfig& cfg, bssl::UniquePtr<SSL_CTX>& local_tls,
                   std::optional<net::LocalCertificate>& local_certificate) {
  std::string error;
  bool io_failure = false;
  if (!cfg.local_cert.empty()) {
    local_certificate = net::load_local_certificate(cfg.local_cert, cfg.local_key, error);
  } else {
    const std::string dir =
        net::default_config_dir([](const char* name) { return std::getenv(name); }, error);
    // Clients of [::1] (or [::]) need ::1 in it: an older mailtap's certificate lacks it.
    const asio::ip::address listen = cfg.listen.address();
    const bool need_ipv6_loopback =
        listen == asio::ip::address_v6::loopback() || listen == asio::ip::address_v6::any();
    if (!dir.empty())
      local_certificate =
          net::ensure_local_certificate(dir, error, &io_failure, need_ipv6_loopback);
  }
  if (local_certificate) local_tls = net::make_tls_server_context(*local_certificate, error);
  if (!local_tls) {
    log::error("--local-tls: " + error);
    return io_failure ? 1 : 2;
  }
  return 0;
}

void set_upstream_target(const ProxyConfig& cfg, net::UpstreamTarget& target) {
  target.host = cfg.upstream_host;
  target.port = cfg.upstream_port;
  target.mode = cfg.tls_mode;
  target.tls_name = cfg.tls_name;
  target.ehlo_name = cfg.ehlo_name;
  target.insecure = cfg.trust.insecure;
  target.trust_source = net::describe_trust_source(cfg.trust);
  target.client_certificate = cfg.client_certificate;
  target.timeout = cfg.timeout_connect;
  target.connections_flag = "--max-sessions";
  target.target_flag = "--upstream";
}

// The loud warnings for a configuration that exposes mail or credentials.
void warn_about_exposure(const ProxyConfig& cfg, const std::string& listen_label,
                         const std::string& upstream_label) {
  if (cfg.trust.insecure && cfg.tls_mode != net::TlsMode::none)
    log::warning("WARNING: --insecure: the certificate of " + upstream_label +
                 " is not verified; anyone on the path can read and change the session");
  if (cfg.tls_mode == net::TlsMode::none)
    log::warning("WARNING: --tls none: sessions to " + upstream_label +
                 " travel in plain text, passwords included");
  if (!cfg.listen.address().is_loopback())
    log::warning("WARNING: --allow-remote: listening on " + listen_label +
                 "; anyone who can reach it can relay through mailtap");
  options::announce_local_users(cfg.local_users, "relay through mailtap");
}

// What --auth-user authenticates with, and with both a password and a token command, which
// goes to which server (docs/auth.md: OAuth where it is offered, else the password).
std::string auth_means(const ProxyConfig& cfg, bool with_tokens) {
  if (!with_tokens) return " (password)";
  if (cfg.auth_password == nullptr) return " (OAuth token from --oauth2-token-cmd)";
  return " (OAuth token from --oauth2-token-cmd where the server offers XOAUTH2 or OAUTHBEARER, "
         "else the password)";
}

// The --local-tls certificate: where it is, what clients must trust, and a warning when
// clients that connect by the --listen address would refuse it for its names.
void announce_local_certificate(const net::LocalCertificate& certificate,
                                const asio::ip::tcp::endpoint& listen) {
  const std::string trust_target = certificate.self_signed
                                       ? std::string("it")
                                       : "the CA that issued it (" + certificate.issuer + ")";
  log::notice(std::string(certificate.created ? "created" : "using") +
              " the local TLS certificate " + certificate.cert_path + " (SHA-256 " +
              certificate.sha256_fingerprint + ", valid until " + certificate.not_after +
              "); clients must trust " + trust_target + ", e.g. msmtp's tls_trust_file");
  if (const std::string warning = net::listen_address_warning(certificate, listen);
      !warning.empty())
    log::warning(warning);
}

// What clients are offered, for the "listening on" line: with --auth-user they are offered no
// AUTH at all (mailtap authenticates), inside TLS neither.
std::string client_side_words(const ProxyConfig& cfg) {
  switch (cfg.local_tls) {
    case net::TlsMode::none:
      return {};
    case net::TlsMode::starttls:
      return cfg.auth_user.empty() ? " (clients: STARTTLS offered, AUTH only inside TLS)"
                                   : " (clients: STARTTLS offered, no AUTH: mailtap authenticates)";
    case net::TlsMode::implicit:
      break;
  }
  return " (clients: TLS from the first byte)";
}

// What is up, on stderr; the "listening on" line last of the errors.
void announce_start(const ProxyConfig& cfg, const std::string& listen_label,
                    const std::optional<net::LocalCertificate>& local_certificate,
                    const WebPage* web, const std::optional<asio::ip::tcp::endpoint>& web_listen,
                    bool with_tokens, const storage::Recorder* recorder) {
  const std::string upstream_label = net::host_port_label(cfg.upstream_host, cfg.upstream_port);
  std::string mode(net::to_string(cfg.tls_mode));
  std::string verification = cfg.tls_mode == net::TlsMode::none ? "PLAIN TEXT, not encrypted"
                             : cfg.trust.insecure               ? "NOT verified"
                                                                : "verified";
  warn_about_exposure(cfg, listen_label, upstream_label);
  if (const net::ClientCertificate* c = cfg.client_certificate.get()) {
    if (const std::string warning = options::UpstreamOptions::client_certificate_warning(c);
        !warning.empty())
      log::warning(warning);
    log::info("presenting the client certificate " + c->describe() + " to " + upstream_label +
              " when it asks for one (SHA-256 " + c->leaf_facts.sha256_hex + ", " +
              std::to_string(c->intermediates) + " intermediate(s), valid until " +
              c->leaf_facts.not_after + ")");
  }
  if (local_certificate) announce_local_certificate(*local_certificate, cfg.listen);
  const std::string client_side = client_side_words(cfg);
  // Before the "listening on" line, which tells scripts (and the tests) that all is up.
  if (web != nullptr) {
    if (!web_listen->address().is_loopback())
      log::warning("WARNING: --allow-remote: the web page at " + web->url() +
                   " shows mail and who authenticated to anyone who can reach it");
    log::notice("web page at " + web->url());
  }
  log::notice("listening on " + listen_label + client_side + " -> " + upstream_label + " (" + mode +
              ", " + verification + ")");
  if (!cfg.auth_user.empty())
    log::info("authenticating sessions as " +
              smtp::shown_login_user(cfg.auth_user, cfg.auth_password.get(), false) +
              auth_means(cfg, with_tokens));
  if (recorder)
    log::info("recording to " + recorder->path());
  else
    log::info("recording off (--no-record)");
}

// A first start at the default path while an older version's systemd user unit left its record
// in its state directory: this one starts a new record, and says where the old one is.
void warn_about_older_unit_record(const std::string& db_path) {
  const std::string older = storage::older_unit_database_left(db_path);
  if (older.empty()) return;
  log::warning("WARNING: the systemd user unit of an older mailtap recorded to " + older +
               "; mailtap now records to " + db_path +
               ", the default of every command, and starts a new record there. To keep one "
               "record, stop mailtap and move the old one (see " +
               documentation_path("install.md") + ", \"Upgrading\")");
}

// The recorder over `db_path`: 0, or the exit status (logged) if the database cannot be opened:
// 2 when rights keep mailtap from it (another user's file, a directory or file it may not
// write), which a restart does not mend; 1 for what may pass (a lock, a full disk).
int open_recording(const std::string& db_path, std::unique_ptr<storage::Recorder>& recorder) {
  std::string error;
  recorder = open_recorder(db_path, std::string("mailtap ") + MAILTAP_VERSION, error);
  if (!recorder) {
    log::error("cannot record to " + db_path + ": " + error +
               " (choose another --db, or --no-record)");
    return storage::write_access_lacking(db_path) ? 2 : 1;
  }
  return 0;
}

// The recorder when `cfg` records (after warning of an older unit's record left beside the
// default): 0, or open_recording()'s exit status.
int start_recording(const ProxyConfig& cfg, std::unique_ptr<storage::Recorder>& recorder) {
  if (!cfg.db_path) return 0;
  if (cfg.db_is_default) warn_about_older_unit_record(*cfg.db_path);
  return open_recording(*cfg.db_path, recorder);
}

// What runs --oauth2-token-cmd, or nullptr without it.
std::unique_ptr<secrets::TokenProvider> token_provider(const ProxyConfig& cfg) {
  if (cfg.oauth2_token_cmd.empty()) return nullptr;
  secrets::TokenProvider::Options to;
  to.command = cfg.oauth2_token_cmd;
  to.timeout = cfg.oauth2_token_timeout;
  return std::make_unique<secrets::TokenProvider>(std::move(to));
}

// Whether mailtap was started with SIGHUP ignored (`nohup`, `trap '' HUP`): a wish to outlive
// the terminal, which asio's signal_set would override by installing its own handler.
bool started_ignoring_sighup() {
  struct sigaction inherited {};
  return sigaction(SIGHUP, nullptr, &inherited) == 0 && inherited.sa_handler == SIG_IGN;
}

// SIGINT and SIGTERM begin the orderly shutdown (the grace period, then the 421s, the record
// drained). So does SIGHUP: closing the terminal (or the SSH session) that runs mailtap sends it,
// and its default action would cut every session off unrecorded; unless it was inherited ignored
// (nohup), which must stay so. SIGQUIT keeps its default (quit at once, with a core dump): the
// way to stop mailtap without any grace (docs/proxy.md). A second signal ends the grace period
// early. Once every session is gone nothing may keep the pool busy, the signal wait included.
class ShutdownSignals {
 public:
  ShutdownSignals(asio::io_context& io, Server& server, net::IoPool& pool,
                  std::chrono::steady_clock::duration grace, bool with_sighup)
      : strand_(asio::make_strand(io)),
        signals_(strand_, SIGINT, SIGTERM),
        server_(server),
        grace_(grace) {
    if (with_sighup) signals_.add(SIGHUP);
    server.on_drained([this, &pool] {
      asio::post(strand_, [this, &pool] {
        drained_ = true;
        std::error_code ignored;
        signals_.cancel(ignored);
        pool.release();
      });
    });
    wait();
  }
  ShutdownSignals(const ShutdownSignals&) = delete;
  ShutdownSignals& operator=(const ShutdownSignals&) = delete;

 private:
  void wait() {
    signals_.async_wait([this](const std::error_code& ec, int) {
      if (ec || drained_) return;
      wait();  // a second signal ends the grace period early
      server_.begin_shutdown(grace_);
    });
  }

  asio::strand<asio::io_context::executor_type> strand_;
  asio::signal_set signals_;
  Server& server_;
  std::chrono::steady_clock::duration grace_;
  bool drained_ = false;
};

// Once the shutdown is done, ShutdownSignals goes first as run_proxy returns, and asio puts a
// signal's default action back when its last signal_set lets go of it: a stop signal during the
// rest of the teardown (the server, the pool's threads, the recorder) would kill mailtap (exit
// 143/130), and a repeated Ctrl-C or a supervisor repeating its TERM take that for a failure
// (docs/proxy.md, "Exit status"). A second set, made while the first still holds them and kept
// to the process's exit on a context nobody runs, keeps asio's handler installed: a signal then
// only queues for nobody. Never destroyed, on purpose: its destructor would bring the default
// action back.
void keep_stop_signals_handled_until_exit(bool with_sighup) {
  struct Kept {
    asio::io_context io;
    asio::signal_set signals{io, SIGINT, SIGTERM};
  };
  static Kept* const kept = [with_sighup] {
    auto* k = new Kept;
    if (with_sighup) k->signals.add(SIGHUP);
    return k;
  }();
  (void)kept;
}

// Under --insecure the trust store is loaded all the same where it can be, so that each
// session records what verification would have said (a certificate swapped on the path leaves
// a trace); where it cannot be, sessions go on unchecked as --insecure asks (`checked` false).
std::optional<asio::ssl::context> upstream_tls_context(const ProxyConfig& cfg, std::string& error,
                                                       bool& checked_when_insecure) {
  if (cfg.trust.insecure && cfg.tls_mode != net::TlsMode::none) {
    std::string unused;
    std::optional<asio::ssl::context> tls = net::make_tls_client_context(
        {cfg.trust.ca_file, false}, unused, cfg.client_certificate.get());
    checked_when_insecure = tls.has_value();
    if (tls) return tls;
  }
  return net::make_tls_client_context(cfg.trust, error, cfg.client_certificate.get());
}

int run_proxy(const ProxyConfig& cfg, const std::optional<asio::ip::tcp::endpoint>& web_listen,
              const ProxyCommandServices& services) {
  // Read before anything installs a handler for it.
  const bool keep_ignoring_sighup = started_ignoring_sighup();
  log::set_verbosity(cfg.verbosity);
  // A client vanishing mid-write must be an error code, not a process-killing signal.
  std::signal(SIGPIPE, SIG_IGN);
  raise_descriptor_limit(cfg.max_sessions);

  std::string error;
  bool checked_when_insecure = false;
  std::optional<asio::ssl::context> tls = upstream_tls_context(cfg, error, checked_when_insecure);
  if (!tls) {
    log::error(error);
    return 1;
  }

  // --local-tls: the certificate, and what a client must be told to trust it.
  bssl::UniquePtr<SSL_CTX> local_tls;
  std::optional<net::LocalCertificate> local_certificate;
  if (cfg.local_tls != net::TlsMode::none) {
    if (const int status = make_local_tls(cfg, local_tls, local_certificate); status != 0)
      return status;
  }

  std::unique_ptr<storage::Recorder> recorder;
  if (const int status = start_recording(cfg, recorder); status != 0) return status;
  // --web: the page over the database being recorded, on CivetWeb's own threads.
  std::unique_ptr<WebPage> web;
  if (web_listen) {
    web = services.start_web(*web_listen, *cfg.db_path, cfg.local_users, error);
    if (!web) {
      log::error(error);
      return 1;
    }
  }

  net::IoPool pool(cfg.threads ? cfg.threads : std::max(1u, std::thread::hardware_concurrency()));
  if (!pool.start(error)) {
    log::error(error + ": lower --threads or raise the task limit (ulimit -u, systemd's TasksMax)");
    return 1;
  }
  asio::io_context& io = pool.main();
  // Declared after the pool: its waiters hold work on the contexts, so it must go first.
  std::unique_ptr<secrets::TokenProvider> tokens = token_provider(cfg);
  const std::string listen_label = net::endpoint_label(cfg.listen);
  SessionContext ctx{cfg,          *tls,         recorder.get(),  {}, listen_label,
                     std::nullopt, tokens.get(), local_tls.get(), {}};
  if (local_certificate) ctx.local_certificate = *local_certificate;
  set_upstream_target(cfg, ctx.target);
  ctx.target.check_when_insecure = checked_when_insecure;
  // Resumed handshakes to the same upstream: as stunnel does, and shown in each session's record.
  net::TlsSessionCache tls_sessions(tls->native_handle());
  ctx.target.session_cache = &tls_sessions;
  std::atomic<bool> upstream_greeted_before{false};
  ctx.target.greeted_before = &upstream_greeted_before;
  if (recorder && cfg.fingerprint_secrets) ctx.fingerprint_key = recorder->fingerprint_key();

  Server server(io, ctx, [&pool] { return pool.next(); });
  if (!server.listen(cfg.listen, error)) {
    log::error(error);
    return server.listen_refused_for_good() ? 2 : 1;
  }

  ShutdownSignals shutdown_signals(io, server, pool, cfg.grace, !keep_ignoring_sighup);
  // Only now, with asio's handler in place: a stop signal that came since main began is
  // delivered here and begins the shutdown. The pool's threads, started with the signals
  // blocked, keep them so; the handler runs on this thread.
  stop_signals::end_deferral();

  announce_start(cfg, ctx.listen_label, local_certificate, web.get(), web_listen, tokens != nullptr,
                 recorder.get());

  asio::co_spawn(io, server.accept_loop(), asio::detached);
  pool.run();
  keep_stop_signals_handled_until_exit(!keep_ignoring_sighup);
  if (recorder && !stop_recorder(*recorder)) return 1;
  log::info("stopped");
  return 0;
}

// Where mailtap listens and which upstream it relays to, and how.
void add_listen_and_upstream_options(CLI::App& app, ProxyArgs& args) {
  app.add_option("NAME", args.upstream_name,
                 "Use the upstream named NAME: the [upstream.NAME] table of the config file "
                 "(its host, TLS and AUTH settings)");
  args.listen.add_to(app, "to listen on", "the plain side carries credentials");
  args.local_users.add_to(app, "relay through mailtap (and read --web's page)");
  options::add_vocabulary_option<net::TlsMode>(
      app, "--local-tls", args.local_tls,
      "TLS towards clients: none (plain text), starttls (offer STARTTLS; AUTH only inside TLS) "
      "or implicit (TLS from the first byte, as on port 465)");
  app.add_option("--local-cert", args.local_cert,
                 "PEM certificate (chain) for --local-tls (default: a self-signed one for "
                 "localhost, 127.0.0.1 and ::1, made once in $XDG_CONFIG_HOME/mailtap or "
                 "~/.config/mailtap)");
  app.add_option("--local-key", args.local_key,
                 "PEM private key of --local-cert; it must be private (mode 0600, owned by you), "
                 "or mailtap refuses it");
  app.add_option("--upstream", args.upstream,
                 "HOST[:PORT] of the SMTP server (port 587 if omitted; an IPv6 address in "
                 "brackets: [::1]:587)")
      ->capture_default_str();
  args.connection.add_to(app, {"the upstream host",
                               "Do not verify the upstream certificate (loudly); refused with "
                               "--auth-user or --oauth2-token-cmd, whose secret anyone on the path "
                               "could take"});
}

// What is recorded, and what happens when recording fails.
void add_recording_options(CLI::App& app, ProxyArgs& args) {
  app.add_option("--db", args.db,
                 "SQLite database to record to, with the bodies of large messages in "
                 "<database>-bodies/ beside it (default: $MAILTAP_DB, else db in the config file, "
                 "else $XDG_DATA_HOME/mailtap/mailtap.db, else ~/.local/share/mailtap/mailtap.db; "
                 "an empty path, or one that begins with '-' or '~', is refused)")
      ->check(options::database_path_validator("--no-record"));
  app.add_flag("--no-record", args.no_record, "Do not record sessions");
  options::add_choice_option(
      app, "--record-failure", args.record_failure,
      {{"stop", RecordFailurePolicy::stop}, {"continue", RecordFailurePolicy::continue_relaying}},
      "When recording fails: stop (refuse new sessions and messages, and end running ones with "
      "a 421 that says so) or continue (relay unrecorded)");
  options::add_size_option(app, "--max-body", args.max_body, "64MiB",
                           "Largest message body recorded per message (at most 4GiB)");
  app.add_flag("--redact-users", args.redact_users, "Redact AUTH user names too");
  app.add_flag("--fingerprint-secrets", args.fingerprint_secrets,
               "Record a keyed HMAC fingerprint of each redacted secret, so audits can match "
               "reused passwords (the key is in the database: a stolen database allows "
               "offline guessing of weak passwords)");
}

// The limits in time, and the I/O threads.
void add_time_and_thread_options(CLI::App& app, ProxyArgs& args) {
  args.timeouts.add_to(app, {"Limit for each client command line (partial lines do not restart "
                             "it), for each upstream reply from when the server has the command "
                             "(until then for each 64 KiB it takes), for the server to take what "
                             "is still queued for it once a session has ended, and for the "
                             "client to take what mailtap writes to it (then it is reset)",
                             "Limit for each line (or 64 KiB) of a message body, for the "
                             "server to take each 64 KiB of one while mailtap stops reading the "
                             "client for it, and for the reply to its end from when the server "
                             "has it (until then for each 64 KiB it takes); a minute short of the "
                             "10 a relaying sender waits, so that mailtap's 421 reaches it"});
  app.add_option("--timeout-token-cmd", args.token_cmd_timeout,
                 "Limit for each run of --oauth2-token-cmd (then it is killed, with what it "
                 "started); a client's EHLO reply may wait for it")
      ->capture_default_str();
  app.add_option("--grace", args.grace,
                 "On SIGINT/SIGTERM/SIGHUP, how long sessions may take to finish")
      ->capture_default_str();
  app.add_option("--threads", args.threads,
                 "I/O threads, at most 1024 (default, or 0: one per core), all started "
                 "before mailtap listens");
}

// --web's address into `web`; an error message if it is wrong, the page cannot be served
// there, or there is no record to show.
std::string web_listen_address(const ProxyArgs& args, const ProxyConfig& cfg,
                               const ProxyCommandServices& services,
                               std::optional<asio::ip::tcp::endpoint>& web) {
  if (!cfg.db_path) return "--web shows the record: it cannot go with --no-record";
  web.emplace();
  std::string error = net::parse_listen_address(args.web, args.listen.allow_remote, "--web",
                                                "the page shows mail and who authenticated", *web);
  // One socket cannot take both: said here, not as "Address already in use" once started. Port 0
  // gives each its own free port.
  if (error.empty() && *web == cfg.listen && web->port() != 0)
    error = "--web " + args.web + " and --listen " + args.listen.address +
            " are the same address: give the web page another port";
  if (error.empty() && services.web_listen_problem) error = services.web_listen_problem(*web);
  return error;
}

// `mailtap proxy` once parsed: the configuration from every layer, then --print-config or a run.
int run_proxy_command(ProxyArgs& args, const TranscriptOptions& transcript, CLI::App& app,
                      const ProxyCommandServices& services) {
  const auto getenv = [](const char* name) -> const char* { return std::getenv(name); };
  std::string error;
  // Before the config file (its password) or a password source is read; core dumps come
  // back below when the proxy turns out to hold no secret of its own.
  const std::optional<secrets::CoreDumpSettings> core_dumps = secrets::forbid_core_dumps(error);
  if (!core_dumps) {
    log::error(error);
    return 1;
  }
  // From the file on, a stop signal is held for the handler run_proxy installs (command.hpp),
  // or ends the wait for the file.
  bool stopped = false;
  auto file = load_chosen_config_deferring_stops(args.config_path, getenv, error, stopped);
  if (stopped) {
    log::notice(error);
    return 0;
  }
  // Built after parsing, so options other commands' code adds to proxy are layered too.
  OptionLayers layers(app, {}, {"print-config"});
  if (file) {
    error =
        apply_proxy_settings(layers, *file, args.upstream_name, other_command_names(app), getenv);
    if (const Setting* pw = layers.find("password"); pw != nullptr && pw->is_set())
      args.auth.configured_password = pw->entry;
  }
  if (!error.empty()) {
    log::error(error);
    return 2;
  }
  // CLI11 adds up every -v and --verbose=N; an explicit count sets the level instead.
  args.verbose = static_cast<int>(flag_count(*app.get_option("--verbose")));
  warn_about_unknown_variables(app, {args.auth.secrets.password_env});
  transcript.apply(services.explain);
  // The same checks for --print-config as for the start, without reading a secret.
  ProxyConfig cfg;
  std::optional<asio::ip::tcp::endpoint> web;
  error = build_config(args, cfg, !args.print_config);
  if (error.empty() && !args.web.empty()) error = web_listen_address(args, cfg, services, web);
  error = layers.with_source(error);
  if (args.print_config) {
    const std::string text =
        format_effective_config("proxy", *file, default_config_path(getenv), args.upstream_name,
                                layers, derived_defaults(args));
    std::fwrite(text.data(), 1, text.size(), stdout);
    // `--print-config > saved.toml` on a full disk: a cut file must not pass for the whole.
    const bool written = std::fflush(stdout) == 0 && std::ferror(stdout) == 0;
    if (!written) log::error(std::string("stdout: ") + std::strerror(errno));
    if (!error.empty()) {
      log::error(error);
      return 2;
    }
    return written ? 0 : 1;
  }
  if (!error.empty()) {
    // Stopped while --password-cmd ran: a stop asked for, as after a run (exit status 0).
    if (secrets::stop_signal_caught() != 0) {
      log::notice(error);
      return 0;
    }
    log::error(error);
    return 2;
  }
  // A client's AUTH only passes through: the password, token, client key or --local-tls key
  // (read from --local-key or made by mailtap) kept for the whole run is what a crash would
  // leave on disk.
  if (cfg.auth_password == nullptr && cfg.oauth2_token_cmd.empty() && !cfg.client_certificate &&
      cfg.local_tls == net::TlsMode::none)
    secrets::allow_core_dumps(*core_dumps);
  return run_proxy(cfg, web, services);
}

}  // namespace

Subcommand add_proxy_command(CLI::App& parent, ProxyCommandServices services) {
  auto args = std::make_shared<ProxyArgs>();
  CLI::App* app = parent.add_subcommand(
      "proxy",
      "Listen for SMTP from telnet, nc or a mail client (plain text, or TLS with --local-tls) "
      "and relay it to a TLS-only server, recording every exchange");
  add_listen_and_upstream_options(*app, *args);
  app->add_flag("--transcript", args->transcript,
                "Print every session's dialogue on stdout (C:/S: lines, secrets redacted)");
  auto transcript_options = add_transcript_options(*app);  // --color, --explain
  app->add_flag("-v,--verbose", args->verbose,
                "More detail on stderr; each -v adds one, --verbose=N sets the level");
  app->add_flag("-q,--quiet", args->quiet,
                "Only errors, warnings and the ready lines (listening on, web page at) on stderr");
  add_recording_options(*app, *args);
  add_time_and_thread_options(*app, *args);
  add_auth_options(*app, args->auth);
  app->add_option("--max-sessions", args->max_sessions,
                  "Sessions relayed at once; beyond it new clients get a 421 (recorded; in a "
                  "burst, past as many again waiting for their record, counted in the log)")
      ->capture_default_str();
  app->add_option("--web", args->web,
                  "Also serve the web page of the record (as `mailtap web`) on ADDR:PORT, e.g. "
                  "127.0.0.1:8025 (loopback unless --allow-remote)");
  add_config_option(*app, args->config_path);
  app->add_flag("--print-config", args->print_config,
                "Print the effective configuration, where each value came from (flag, "
                "environment, config file, default) with secrets masked, and exit; runs no "
                "command and reads no password");
  app->footer(
      "Example: mailtap proxy --upstream smtp.gmail.com:587, then: telnet localhost 2525\n"
      "Every option can also be set in the config file ([proxy] or [upstream.NAME]: "
      "listen = \"127.0.0.1:2525\") or as MAILTAP_OPTION_NAME in the environment "
      "(MAILTAP_UPSTREAM, MAILTAP_AUTH_USER); a flag beats the environment, which beats the "
      "file (see docs/config.md and --print-config)\n"
      "  mailtap proxy --upstream smtp.gmail.com:587 --local-tls starttls, then msmtp with\n"
      "  tls_starttls on and tls_trust_file set to the certificate printed at start");

  Subcommand cmd;
  cmd.app = app;
  cmd.handles_stop_signals = true;
  cmd.run = [args, transcript_options, app, services = std::move(services)] {
    return run_proxy_command(*args, *transcript_options, *app, services);
  };
  return cmd;
}

}  // namespace mailtap::cli
