// `mailtap encode plain|login|xoauth2|oauthbearer USER`: the AUTH lines to type by hand, built by
// the same SASL client mailtap uses itself, so they are byte for byte what mailtap would send.
// The lines go to stdout, one per line; a comment before each, saying where it goes, goes to
// stderr as "# ..." lines: a terminal shows both in order, and `2>/dev/null` or a pipe into
// `mailtap decode -` gets the lines alone.
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>

#include "proxy/cli/secret_options.hpp"
#include "proxy/common/log.hpp"
#include "proxy/secrets/core_dumps.hpp"
#include "proxy/secrets/secret_source.hpp"
#include "proxy/secrets/token_provider.hpp"
#include "proxy/smtp/base64.hpp"
#include "proxy/smtp/reply_parser.hpp"
#include "proxy/smtp/sasl_client.hpp"
#include "tools/commands.hpp"
#include "tools/number_options.hpp"
#include "tools/tool_options.hpp"

namespace mailtap::tools {

namespace {

using smtp::Mechanism;

struct EncodeArgs {
  std::string mechanism;
  std::string user;
  std::string authzid;
  std::string host;
  std::uint16_t port = 0;
  cli::SecretOptions secret;
};

void comment(const std::string& text) {
  const std::string line = "# " + text + "\n";
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

// The step's line as typed: without the CRLF, which the terminal's Enter supplies.
bool print_line(const smtp::SaslStep& step) {
  std::string_view line = step.line.view();
  if (line.size() >= 2 && line.substr(line.size() - 2) == "\r\n") line.remove_suffix(2);
  return write_stdout(line) && write_stdout("\n");
}

smtp::Reply challenge(std::string_view text) {
  smtp::Reply r;
  r.code = 334;
  r.lines.emplace_back(text);
  r.raw = "334 " + std::string(text) + "\r\n";
  return r;
}

std::optional<smtp::Secret> read_secret(const EncodeArgs& a, Mechanism m) {
  // A crash while the secret is held must not write it into a core file (docs/auth.md).
  std::string error;
  if (!secrets::forbid_core_dumps(error)) {
    log::error("encode: " + error);
    return std::nullopt;
  }
  if (smtp::takes_token(m) && !a.secret.oauth2_token_cmd.empty()) {
    secrets::TokenParse t =
        secrets::run_token_command(a.secret.oauth2_token_cmd, secrets::kTokenCommandTimeout);
    if (!t.value) {
      log::error("encode: " + t.error);
      return std::nullopt;
    }
    return std::move(t.value->token);
  }
  const std::string prompt =
      (smtp::takes_token(m) ? "Access token for " : "Password for ") + a.user + ": ";
  secrets::SecretRead r = secrets::read_secret(a.secret.password_source(prompt));
  if (!r.secret) {
    log::error("encode: " + r.error);
    return std::nullopt;
  }
  return std::move(r.secret);
}

smtp::SaslClientOptions client_options(const EncodeArgs& a, Mechanism m, smtp::Secret secret) {
  smtp::SaslClientOptions options;
  options.mechanism = m;
  options.user = a.user;
  options.authzid = a.authzid;
  options.secret = std::move(secret);
  options.host = a.host;
  options.port = a.port;
  return options;
}

// Why the AUTH lines cannot be made with `secret`, or empty.
std::string encoding_problem(const EncodeArgs& a, Mechanism m, smtp::Secret secret) {
  smtp::SaslClient client(client_options(a, m, std::move(secret)));
  if (client.start().kind == smtp::SaslStep::Kind::send) return {};
  return client.failure()->detail;
}

int run_encode(const EncodeArgs& a) {
  const std::optional<Mechanism> m = smtp::parse_mechanism(a.mechanism);
  if (!m) {
    log::error("encode: unknown mechanism \"" + a.mechanism +
               "\" (plain, login, xoauth2 or oauthbearer)");
    return 2;
  }
  if (*m == Mechanism::cram_md5) {
    log::error(
        "encode: CRAM-MD5 answers a challenge the server makes up during the session; it "
        "cannot be prepared in advance (let mailtap authenticate, or use PLAIN or LOGIN)");
    return 2;
  }
  if (!smtp::takes_token(*m) && !a.secret.oauth2_token_cmd.empty()) {
    log::error("encode: --oauth2-token-cmd is for xoauth2 and oauthbearer");
    return 2;
  }
  if (*m != Mechanism::oauthbearer && (!a.host.empty() || a.port != 0)) {
    log::error("encode: --host and --port are for oauthbearer");
    return 2;
  }
  if (*m != Mechanism::plain && !a.authzid.empty()) {
    log::error("encode: --authzid is for plain");
    return 2;
  }

  const std::string name(smtp::to_string(*m));
  // The user, --authzid and --host are checked with a stand-in secret that passes every
  // check, before the real one is asked for: what fails then is an option (exit 2); what
  // fails with the real secret is that secret (exit 1).
  if (std::string problem = encoding_problem(a, *m, smtp::Secret::copy_of("x")); !problem.empty()) {
    log::error("encode: cannot encode AUTH " + name + ": " + problem);
    return 2;
  }
  std::optional<smtp::Secret> secret = read_secret(a, *m);
  if (!secret) return 1;
  smtp::SaslClient client(client_options(a, *m, std::move(*secret)));
  smtp::SaslStep step = client.start();
  if (step.kind != smtp::SaslStep::Kind::send) {
    log::error("encode: cannot encode AUTH " + name + ": " + client.failure()->detail);
    return 1;
  }
  // PLAIN, XOAUTH2, OAUTHBEARER carry the credentials on the AUTH line unless it would be over
  // RFC 4954's 12288 octets.
  const bool whole = step.line.view().find(' ', 5) != std::string_view::npos;
  comment("after EHLO, type:");
  if (!print_line(step)) return 1;

  if (*m == Mechanism::login) {
    comment("at the prompt 334 VXNlcm5hbWU6 (Username:), type:");
    if (!print_line(client.on_reply(challenge(smtp::base64_encode("Username:"))))) return 1;
    comment("at the prompt 334 UGFzc3dvcmQ6 (Password:), type:");
    if (!print_line(client.on_reply(challenge(smtp::base64_encode("Password:"))))) return 1;
  } else if (!whole) {
    comment("at the prompt \"334 \", type:");
    if (!print_line(client.on_reply(challenge("")))) return 1;
  }
  if (smtp::takes_token(*m)) {
    comment(std::string("the server answers 235 when it takes the token; if it answers 334 "
                        "with base64 instead, the token was refused: type ") +
            (*m == Mechanism::xoauth2 ? "an empty line" : "AQ==") +
            ", and see why with mailtap decode '334 ...'");
  } else {
    comment("the server answers 235 when it accepts; 535 when it does not");
  }
  return 0;
}

}  // namespace

cli::Subcommand add_encode_command(CLI::App& parent) {
  auto args = std::make_shared<EncodeArgs>();
  CLI::App* app = parent.add_subcommand(
      "encode", "Print the AUTH lines to type by hand for a user and a password or token");
  app->add_option("MECHANISM", args->mechanism, "plain, login, xoauth2 or oauthbearer")->required();
  app->add_option("USER", args->user, "User name (for Gmail and Microsoft 365: the address)")
      ->required();
  args->secret.add_password_options(*app, "password (or, for xoauth2/oauthbearer, the token)");
  args->secret.add_token_option(*app);
  app->add_option("--authzid", args->authzid, "plain: act as this identity (RFC 4616)");
  app->add_option("--host", args->host,
                  "oauthbearer: host= to send, the server you will type to (e.g. smtp.gmail.com)");
  const NumberKind port{"a port", "a number from 1 to 65535, such as 587", 1, 65535};
  add_number_option(*app, "--port", port, args->port, "oauthbearer: port= to send (e.g. 587)");
  app->footer(
      "Without --password-env, --password-file, --password-cmd or --oauth2-token-cmd the secret "
      "is asked for on the terminal without echo. The lines to type go to stdout; the comments "
      "saying where each goes go to stderr as '# ...' lines.\n"
      "Example: mailtap encode plain alice@gmail.com --password-cmd 'pass show mail/gmail'");
  return {app, [args] { return run_encode(*args); }};
}

}  // namespace mailtap::tools
