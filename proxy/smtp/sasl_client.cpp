#include "proxy/smtp/sasl_client.hpp"

#include <algorithm>
#include <utility>

#include "proxy/common/text.hpp"
#include "proxy/smtp/auth_redactor.hpp"
#include "proxy/smtp/base64.hpp"
#include "proxy/smtp/sasl_responses.hpp"

namespace mailtap::smtp {
namespace {

constexpr std::string_view kCrlf = "\r\n";

SaslStep send_step(Secret line) {
  return {SaslStep::Kind::send, std::move(line)};
}

}  // namespace

SaslClient::SaslClient(SaslClientOptions options) : options_(std::move(options)) {}

Secret SaslClient::initial_bytes() const {
  const std::string_view secret = options_.secret.view();
  switch (options_.mechanism) {
    case Mechanism::plain:
      return plain_response(options_.authzid, options_.user, secret);
    case Mechanism::xoauth2:
      return xoauth2_response(options_.user, secret);
    case Mechanism::oauthbearer:
      return oauthbearer_response(
          options_.user, options_.host,
          options_.port != 0 ? std::optional<std::uint16_t>(options_.port) : std::nullopt, secret);
    case Mechanism::login:
    case Mechanism::cram_md5:
      break;
  }
  return Secret();
}

SaslStep SaslClient::start() {
  if (state_ != State::idle) return fail(SaslFailure::Kind::protocol, "AUTH was already sent");
  const Mechanism m = options_.mechanism;
  if (std::string problem = credentials_problem(m, options_.user, options_.secret.view());
      !problem.empty()) {
    return fail(SaslFailure::Kind::unusable, std::move(problem));
  }
  if (has_control(options_.host)) {
    return fail(SaslFailure::Kind::unusable, "the host name contains control characters");
  }
  if (has_control(options_.authzid)) {
    return fail(SaslFailure::Kind::unusable,
                "the authorization identity contains control characters");
  }
  const std::string_view name = to_string(m);
  const std::size_t bare_auth = 5 + name.size() + kCrlf.size();  // "AUTH " MECH CRLF

  Secret initial = initial_bytes();
  std::size_t largest_response = initial.size();
  if (m == Mechanism::login) {
    largest_response = std::max(options_.user.size(), options_.secret.size());
  } else if (m == Mechanism::cram_md5) {
    largest_response = options_.user.size() + 1 + 32;
  }
  const std::size_t encoded = base64_encoded_size(largest_response);
  if (encoded + kCrlf.size() > options_.max_line || bare_auth > options_.max_line) {
    return fail(SaslFailure::Kind::too_long,
                "the " + std::string(name) + " response would be " + std::to_string(encoded) +
                    " octets of base64, over the " + std::to_string(options_.max_line) +
                    "-octet line limit of RFC 4954");
  }

  const bool with_initial_response =
      !initial.empty() && bare_auth + 1 + encoded <= options_.max_line;
  Secret line(bare_auth + (with_initial_response ? 1 + encoded : 0));
  line.append("AUTH ");
  line.append(name);
  if (with_initial_response) {
    line.push_back(' ');
    base64_encode_append(initial.view(), line);
  }
  line.append(kCrlf);

  switch (m) {
    case Mechanism::login:
      state_ = State::login;
      break;
    case Mechanism::cram_md5:
      state_ = State::cram_challenge;
      break;
    default:
      state_ = with_initial_response ? State::awaiting_result : State::awaiting_go_ahead;
  }
  return send_step(std::move(line));
}

SaslStep SaslClient::on_reply(const Reply& reply) {
  switch (state_) {
    case State::succeeded:
      return {SaslStep::Kind::succeeded, {}};
    case State::failed:
      return {SaslStep::Kind::failed, {}};
    case State::idle:
      return fail_with(SaslFailure::Kind::protocol, reply, "a reply came before AUTH was sent");
    default:
      break;
  }
  if (reply.code == 235) {
    state_ = State::succeeded;
    return {SaslStep::Kind::succeeded, {}};
  }
  if (state_ == State::cancelling) {
    if (reply.code == 334)
      return fail_with(SaslFailure::Kind::protocol, reply,
                       failure_detail_ + "; the server then ignored the cancel");
    return fail_with(SaslFailure::Kind::protocol, reply, failure_detail_);
  }
  if (reply.code == 334) return on_challenge(reply);
  if (reply.code >= 400 && reply.code < 600) {
    return fail_with(SaslFailure::Kind::refused, reply, {});
  }
  return fail_with(SaslFailure::Kind::protocol, reply,
                   "the server answered AUTH with " + std::to_string(reply.code) +
                       ", which is neither 235, 334 nor a failure");
}

SaslStep SaslClient::on_challenge(const Reply& reply) {
  if (reply.lines.size() != 1) return cancel("the server sent a multi-line 334 challenge");
  const std::string_view payload = reply.lines.front();
  const Mechanism m = options_.mechanism;
  switch (state_) {
    case State::awaiting_go_ahead: {
      // RFC 4954: the server's first challenge for these mechanisms is empty; whatever it
      // holds, the answer is the initial response that did not fit on the AUTH line.
      state_ = State::awaiting_result;
      return send_encoded(initial_bytes().view());
    }
    case State::login:
      return answer_login(payload);
    case State::cram_challenge: {
      const std::optional<std::string> challenge = base64_decode(payload);
      if (!challenge || challenge->empty()) {
        return cancel("the CRAM-MD5 challenge is not base64 of a challenge string");
      }
      const Secret response = cram_md5_response(options_.user, options_.secret.view(), *challenge);
      if (response.empty()) return cancel("HMAC-MD5 is not available");
      state_ = State::awaiting_result;
      return send_encoded(response.view());
    }
    case State::awaiting_result:
      if (takes_token(m)) {
        // RFC 7628 §3.2.2 (and Google's XOAUTH2): an error in a challenge; the client answers
        // with a dummy response and the server then sends the failure.
        error_challenge_ = reply;
        if (const std::optional<std::string> json = base64_decode(payload)) {
          oauth_error_ = parse_oauth_error(*json);
        }
        state_ = State::after_error;
        return send_step(Secret::copy_of(m == Mechanism::xoauth2 ? "\r\n" : "AQ==\r\n"));
      }
      return cancel("the server sent another challenge after the credentials");
    case State::after_error:
      return cancel("the server sent another challenge after the token error");
    default:
      return cancel("the server sent an unexpected challenge");
  }
}

SaslStep SaslClient::answer_login(std::string_view prompt_b64) {
  // Servers prompt "Username:" then "Password:", a few the other way round: the prompt decides
  // when it says which, read as the record's redactor reads it (so the record labels each
  // answer as what was sent), the order otherwise.
  bool wants_password = sent_user_;
  if (const std::optional<std::string> prompt = base64_decode(prompt_b64)) {
    if (login_prompt_asks_for_password(*prompt)) {
      wants_password = true;
    } else if (login_prompt_asks_for_user(*prompt)) {
      wants_password = false;
    }
  }
  if (wants_password ? sent_password_ : sent_user_) {
    return cancel(wants_password ? "the server asked for the password twice"
                                 : "the server asked for the user name twice");
  }
  (wants_password ? sent_password_ : sent_user_) = true;
  if (sent_user_ && sent_password_) state_ = State::awaiting_result;
  return send_encoded(wants_password ? options_.secret.view() : std::string_view(options_.user));
}

SaslStep SaslClient::send_encoded(std::string_view bytes) {
  Secret line(base64_encoded_size(bytes.size()) + kCrlf.size());
  base64_encode_append(bytes, line);
  line.append(kCrlf);
  return send_step(std::move(line));
}

SaslStep SaslClient::cancel(std::string detail) {
  failure_detail_ = std::move(detail);
  state_ = State::cancelling;
  return send_step(Secret::copy_of("*\r\n"));
}

SaslStep SaslClient::fail(SaslFailure::Kind kind, std::string detail) {
  SaslFailure f;
  f.kind = kind;
  f.detail = std::move(detail);
  f.error_challenge = error_challenge_;
  f.oauth_error = oauth_error_;
  failure_ = std::move(f);
  state_ = State::failed;
  return {SaslStep::Kind::failed, {}};
}

SaslStep SaslClient::fail_with(SaslFailure::Kind kind, const Reply& reply, std::string detail) {
  SaslStep step = fail(kind, std::move(detail));
  failure_->reply = reply;
  failure_->token_rejected = kind == SaslFailure::Kind::refused &&
                             takes_token(options_.mechanism) &&
                             (error_challenge_.has_value() || reply.code == 535);
  return step;
}

}  // namespace mailtap::smtp
