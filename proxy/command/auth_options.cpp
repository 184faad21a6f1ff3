#include "proxy/command/auth_options.hpp"

#include <unistd.h>

#include <memory>

#include "proxy/secrets/secret_source.hpp"

namespace mailtap::cli {

namespace {
// The way on from --insecure when mailtap holds a secret: have the certificate verified.
constexpr const char* kVerifyInstead =
    "Drop --insecure and give the server's certificate, or the CA that issued it, with "
    "--ca-file FILE (and --tls-name NAME if the certificate names the server otherwise)";

// A secret mailtap holds (a token from the command, whether --auth-user or an assisted `AUTH
// XOAUTH2 USER` line sends it; --auth-user's credentials) goes only inside TLS with a verified
// certificate: --tls none sends it in plain text, and --insecure takes any certificate, an
// attacker's on the path too, so it would go to whoever presents one.
std::string unverified_link_refusal(const AuthArgs& args, const ProxyConfig& cfg) {
  const bool none = cfg.tls_mode == net::TlsMode::none;
  if (!args.secrets.oauth2_token_cmd.empty()) {
    if (none)
      return "--oauth2-token-cmd with --tls none would send the token in plain text; refusing";
    if (cfg.trust.insecure)
      return "--oauth2-token-cmd with --insecure would send the token to a server whose "
             "certificate is not verified: anyone on the path can take it; refusing. " +
             std::string(kVerifyInstead);
  }
  if (args.user.empty()) return {};
  if (none) return "--auth-user with --tls none would send credentials in plain text; refusing";
  if (cfg.trust.insecure)
    return "--auth-user with --insecure would send credentials to a server whose certificate "
           "is not verified: anyone on the path can take them; refusing. " +
           std::string(kVerifyInstead);
  return {};
}
}  // namespace

void add_auth_options(CLI::App& app, AuthArgs& args) {
  app.add_option("--auth-user", args.user,
                 "Authenticate to the upstream as USER once the client's EHLO is answered over "
                 "TLS, so the client types no AUTH; the password comes from --password-env, "
                 "--password-file or --password-cmd (else a prompt without echo at start), or "
                 "a token from --oauth2-token-cmd for XOAUTH2/OAUTHBEARER (started as a client "
                 "connects, unless one is cached); holding either, "
                 "mailtap leaves no core file and only root may read its memory")
      ->type_name("USER");
  args.secrets.add_password_options(app, "--auth-user password");
  args.secrets.add_token_option(app, /*exclusive=*/false);
  app.add_flag("--assist-auth", args.assist,
               "Let a person type AUTH in clear: AUTH PLAIN user password, AUTH LOGIN with the "
               "prompts decoded, AUTH XOAUTH2 user (token from --oauth2-token-cmd, not with --tls "
               "none); mailtap sends the base64 (the terminal echoes the password)");
}

std::string build_auth_config(const AuthArgs& args, ProxyConfig& cfg, bool read_password) {
  const SecretOptions& s = args.secrets;
  const bool has_password = s.has_password_source() || args.configured_password != nullptr;
  cfg.assist_auth = args.assist;
  cfg.oauth2_token_cmd = s.oauth2_token_cmd;
  if (std::string refusal = unverified_link_refusal(args, cfg); !refusal.empty()) return refusal;
  if (args.user.empty()) {
    if (s.has_password_source())
      return "--password-env/--password-file/--password-cmd need --auth-user USER";
    if (args.configured_password != nullptr)
      return "the config file's password needs auth-user USER";
    if (!s.oauth2_token_cmd.empty() && !args.assist)
      return "--oauth2-token-cmd needs --auth-user USER (or --assist-auth, for AUTH XOAUTH2 "
             "USER typed by hand)";
    return {};
  }
  if (args.user.find_first_of("\r\n") != std::string::npos) return "--auth-user must be one line";
  cfg.auth_user = args.user;
  // Without a password, tokens are fetched as a session starts (Session::start_token_prefetch);
  // a password given beside the token command is for servers that take no token.
  if (!s.oauth2_token_cmd.empty() && !has_password) return {};
  // Without `read_password` every check below that reads no secret still runs: --print-config
  // must refuse what the start refuses.
  if (args.configured_password != nullptr) {
    const std::string& value = args.configured_password->value;
    if (value.empty() || value.find_first_of("\r\n") != std::string::npos)
      return "the config file's password must be one non-empty line";
    if (read_password)
      cfg.auth_password = std::make_shared<const smtp::Secret>(smtp::Secret::copy_of(value));
    return {};
  }
  if (!s.has_password_source() && !isatty(STDIN_FILENO))
    return "--auth-user " + args.user +
           " needs a password: --password-env VAR, --password-file PATH or --password-cmd CMD "
           "(or run on a terminal to be asked), or --oauth2-token-cmd CMD for OAuth";
  const secrets::SecretSource source = s.password_source("Password for " + args.user + ": ");
  if (!read_password) return secrets::check_secret_source(source);
  secrets::SecretRead read = secrets::read_secret(source);
  if (!read.secret) return read.error;
  cfg.auth_password = std::make_shared<const smtp::Secret>(std::move(*read.secret));
  return {};
}

}  // namespace mailtap::cli
