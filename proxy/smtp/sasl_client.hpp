// mailtap's own side of an SMTP AUTH exchange (RFC 4954), for one mechanism: the AUTH line, the
// answer to each 334 challenge, and the outcome. Sans-IO, like the Dialogue: the owner writes
// each SaslStep::line to the upstream, feeds every complete reply back, and stops at
// succeeded/failed. No exceptions on any input; every byte sequence a server can send ends in a
// SaslStep.
//
//   PLAIN, XOAUTH2, OAUTHBEARER  "AUTH <MECH> <base64>" (initial response) -> 235
//   LOGIN                        "AUTH LOGIN" -> 334 Username: -> user -> 334 Password: -> pw
//   CRAM-MD5                     "AUTH CRAM-MD5" -> 334 <challenge> -> user SP hmac-md5-hex
//   XOAUTH2/OAUTHBEARER refused  -> 334 <base64 error JSON> -> "" (XOAUTH2) / "AQ==" -> 535
//
// An initial response that would make the AUTH line longer than RFC 4954's 12288 octets is
// sent after the server's empty "334 " instead. A 334 the mechanism cannot answer is cancelled
// with "*" (RFC 4954 §4) and the exchange fails once the server has replied to the cancel.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "proxy/smtp/oauth_error.hpp"
#include "proxy/smtp/reply_parser.hpp"
#include "proxy/smtp/sasl_mechanism.hpp"
#include "proxy/smtp/secret.hpp"

namespace mailtap::smtp {

struct SaslClientOptions {
  Mechanism mechanism = Mechanism::plain;
  std::string user;
  std::string authzid;  // PLAIN only: act as this identity (RFC 4616); usually empty
  Secret secret;        // the password, or the OAuth access token for XOAUTH2/OAUTHBEARER
  // OAUTHBEARER's host=/port=: the upstream mailtap connected to. Empty/0 leaves them out.
  std::string host;
  std::uint16_t port = 0;
  std::size_t max_line = 12288;  // RFC 4954 §4, CRLF included
};

struct SaslFailure {
  enum class Kind : std::uint8_t {
    refused,       // the server answered 4xx/5xx (after an OAuth error challenge, perhaps)
    protocol,      // the server answered out of turn (mailtap cancelled, or it was over)
    unusable,      // the user or secret cannot be sent with this mechanism; nothing was sent
    too_long,      // the response cannot fit RFC 4954's line limit; nothing was sent
    no_mechanism,  // set by the owner: the server offers nothing mailtap can use
    no_token,      // set by the owner: the token command gave no token
  };
  Kind kind = Kind::refused;
  std::optional<Reply> reply;             // the server's reply that ended the exchange
  std::optional<Reply> error_challenge;   // XOAUTH2/OAUTHBEARER: the 334 that carried the error
  std::optional<OAuthError> oauth_error;  // its decoded JSON, when it was JSON
  std::string detail;  // mailtap's own reason (all kinds but refused); printable, no secret
  // XOAUTH2/OAUTHBEARER refused in a way a fresh token may fix (an error challenge, or a 535):
  // the owner invalidates the cached token and tries once more with a new one.
  bool token_rejected = false;
};

struct SaslStep {
  enum class Kind : std::uint8_t { send, succeeded, failed };
  Kind kind = Kind::failed;
  Secret line;  // send: the next line for the server, CRLF included (it may hold credentials)
};

class SaslClient {
 public:
  explicit SaslClient(SaslClientOptions options);

  // The AUTH line, or failed (unusable / too_long) when there is nothing that can be sent.
  SaslStep start();
  // Each complete reply of the server after a sent line.
  SaslStep on_reply(const Reply& reply);

  Mechanism mechanism() const { return options_.mechanism; }
  const std::string& user() const { return options_.user; }
  bool succeeded() const { return state_ == State::succeeded; }
  bool done() const { return state_ == State::succeeded || state_ == State::failed; }
  // Set once the exchange failed.
  const std::optional<SaslFailure>& failure() const { return failure_; }

 private:
  enum class State : std::uint8_t {
    idle,
    awaiting_go_ahead,  // AUTH sent without its initial response: expecting "334 "
    awaiting_result,    // the credentials went out
    login,              // LOGIN: answering prompts
    cram_challenge,     // CRAM-MD5: expecting the challenge
    after_error,        // OAuth: error answered, expecting the final failure
    cancelling,         // "*" sent, expecting the server's reply to it
    succeeded,
    failed,
  };

  SaslStep on_challenge(const Reply& reply);
  SaslStep answer_login(std::string_view prompt_b64);
  SaslStep send_encoded(std::string_view bytes);
  SaslStep cancel(std::string detail);
  SaslStep fail(SaslFailure::Kind kind, std::string detail);
  SaslStep fail_with(SaslFailure::Kind kind, const Reply& reply, std::string detail);
  Secret initial_bytes() const;

  SaslClientOptions options_;
  State state_ = State::idle;
  bool sent_user_ = false;      // LOGIN
  bool sent_password_ = false;  // LOGIN
  std::optional<SaslFailure> failure_;
  std::string failure_detail_;  // why mailtap cancelled, for the failure after the cancel
  std::optional<Reply> error_challenge_;
  std::optional<OAuthError> oauth_error_;
};

}  // namespace mailtap::smtp
