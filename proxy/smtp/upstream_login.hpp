// mailtap authenticating to the upstream on the client's behalf (`--auth-user`): which mechanism,
// when a token is needed, the exchange itself (SaslClient), one retry with a fresh token after a
// rejected one, and the reply that explains a failure. Sans-IO: the Dialogue sends the lines it
// is given, feeds the replies back, and the session fetches tokens when asked.
//
//   start(offered) -> send AUTH ... | need a token | failed
//   on_token(...)  -> send AUTH ...
//   on_reply(...)  -> send the next response | succeeded | need a fresh token (once) | failed
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/smtp/reply_parser.hpp"
#include "proxy/smtp/sasl_client.hpp"
#include "proxy/smtp/sasl_mechanism.hpp"
#include "proxy/smtp/secret.hpp"

namespace mailtap::smtp {

struct UpstreamLoginOptions {
  std::string user;
  // --password-*: the one copy, shared by the sessions (each exchange clones it while it runs).
  std::shared_ptr<const Secret> password;
  bool token_command = false;  // --oauth2-token-cmd: tokens are asked for when needed
  std::string host;            // the upstream, for OAUTHBEARER and the explanations
  std::uint16_t port = 0;
  // --redact-users: a failure's explanation names the user <redacted>, as the success path's
  // note and 503 do, for it is recorded (the note, the reply to MAIL). A user name that holds
  // the password is withheld in any case (shown_login_user).
  bool redact_user = false;
};

// mailtap's own user name as the record and the log lines name it. One that holds the password
// (most often: is it) would give the password away, as a PLAIN client's does (auth_redactor.cpp):
// it is withheld, and the label says why. Under --redact-users (`redact_users`) "<redacted>".
inline constexpr std::string_view kUserWithheld = "<withheld: the user name contains the password>";
bool user_holds_password(std::string_view user, const Secret* password);
std::string shown_login_user(std::string_view user, const Secret* password, bool redact_users);

struct LoginStep {
  enum class Kind : std::uint8_t { send, need_token, succeeded, failed };
  Kind kind = Kind::failed;
  Secret line;             // send: the next line for the server, CRLF included
  bool fresh = false;      // need_token: the cached token was refused; run the command again
  std::string reply_line;  // failed: the reply for the client, without CRLF (never a secret)
};

class UpstreamLogin {
 public:
  explicit UpstreamLogin(UpstreamLoginOptions options);

  // `offered`: Capabilities::auth_mechanisms of the EHLO reply after TLS.
  LoginStep start(const std::vector<std::string>& offered);
  LoginStep on_token(Secret token, bool fresh);
  LoginStep on_token_error(const std::string& error);
  LoginStep on_reply(const Reply& reply);

  const std::string& user() const { return options_.user; }
  std::optional<Mechanism> mechanism() const { return mechanism_; }
  // The line in flight is the AUTH command (not a response to a 334).
  bool sent_auth_command() const { return sent_auth_command_; }

 private:
  LoginStep begin_exchange(Secret secret);
  LoginStep from_sasl(SaslStep step);
  LoginStep fail(const SaslFailure& failure);

  UpstreamLoginOptions options_;
  std::optional<Mechanism> mechanism_;
  std::optional<SaslClient> client_;
  bool retried_ = false;      // a fresh token was asked for after a rejection
  bool token_fresh_ = false;  // the token in use came from a run made for this session
  bool sent_auth_command_ = false;
};

}  // namespace mailtap::smtp
