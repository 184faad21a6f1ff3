// `--assist-auth`: a person types AUTH by hand without base64. The client's AUTH line and SASL
// responses are typed in clear and sent encoded; the server's 334 prompts reach the client
// decoded. Sans-IO; the Dialogue records the encoded lines through its redactor (so the record
// is that of an ordinary exchange, secrets removed) plus a rewrite note that never holds one.
//
//   AUTH PLAIN user password      -> AUTH PLAIN base64(\0user\0password)
//   AUTH PLAIN user (no base64)    -> AUTH PLAIN, the server's 334 reaches the client as
//                                     "334 Password:", and the password typed there goes as
//                                     base64(\0user\0password)
//   AUTH PLAIN, then "user password" at the 334
//   AUTH LOGIN [user], then the user / password at "334 Username:" / "334 Password:"
//   AUTH XOAUTH2 user, AUTH OAUTHBEARER user   -> the token command's token, encoded
//
// Anything else (a base64 initial response as the tutorials type it, "*", other mechanisms)
// passes unchanged. A single word after AUTH PLAIN that could be base64 (length a multiple of
// 4, only the base64 alphabet) is taken for the tutorials' initial response, never for a name.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "proxy/smtp/reply_parser.hpp"
#include "proxy/smtp/sasl_mechanism.hpp"
#include "proxy/smtp/secret.hpp"

namespace mailtap::smtp {

struct AssistedLine {
  bool changed = false;
  Secret line;       // when changed: what goes upstream, CRLF included
  std::string note;  // when changed: for the rewrite note (no secret)
  // AUTH XOAUTH2/OAUTHBEARER USER: nothing is sent until token_line() has the token.
  bool needs_token = false;
};

// A 334 the client gets instead of the server's.
struct AssistedChallenge {
  std::string line;  // CRLF included
  std::string note;  // for the rewrite note
  // The client's next line is a password (334 Password:), typed in clear.
  bool password_prompt = false;
};

class AuthAssistant {
 public:
  // host/port: the upstream, for OAUTHBEARER's host=/port=.
  AuthAssistant(std::string host, std::uint16_t port);

  // The client's AUTH command line, without CRLF.
  AssistedLine command(std::string_view line);
  // A 334 from the server: the line the client gets instead, or nullopt to relay it unchanged.
  std::optional<AssistedChallenge> challenge(const Reply& reply);
  // The client's answer to a 334, without CRLF.
  AssistedLine response(std::string_view line);
  // The AUTH line for a pending XOAUTH2/OAUTHBEARER command, with the token.
  AssistedLine token_line(std::string_view token);
  // The exchange ended (any final reply).
  void finish() {
    state_ = State::none;
    plain_user_ = Secret();
  }

  bool awaiting_token() const { return state_ == State::oauth_token; }
  // An assisted OAuth exchange is in progress: a refusal means the token was rejected.
  bool oauth_in_progress() const { return state_ == State::oauth_sent; }

 private:
  enum class State : std::uint8_t {
    none,
    plain_prompt,    // AUTH PLAIN sent alone: "user password" expected at the 334
    plain_password,  // AUTH PLAIN USER sent as AUTH PLAIN: the password expected at the 334
    login_user,      // AUTH LOGIN sent alone: the user name is next
    login_password,  // the password is next
    oauth_token,     // AUTH XOAUTH2/OAUTHBEARER USER: waiting for the token
    oauth_sent,      // the token went out; an error 334 may come, answered by the client
    passthrough,     // an exchange mailtap does not assist
  };

  AssistedLine plain_command(std::string_view prefix, std::string_view rest);
  AssistedLine encoded(std::string_view prefix, std::string_view clear, std::string note);

  std::string host_;
  std::uint16_t port_ = 0;
  State state_ = State::none;
  Mechanism oauth_mechanism_ = Mechanism::xoauth2;
  std::string oauth_user_;
  // AUTH PLAIN USER: the user name, until the password comes (it may be a secret mistyped).
  Secret plain_user_;
};

}  // namespace mailtap::smtp
