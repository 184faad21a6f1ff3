#include "proxy/smtp/upstream_login.hpp"

#include <utility>

#include "proxy/smtp/auth_explanation.hpp"

namespace mailtap::smtp {

bool user_holds_password(std::string_view user, const Secret* password) {
  return password != nullptr && !password->empty() &&
         user.find(password->view()) != std::string_view::npos;
}

std::string shown_login_user(std::string_view user, const Secret* password, bool redact_users) {
  if (user_holds_password(user, password)) return std::string(kUserWithheld);
  if (redact_users) return "<redacted>";
  return std::string(user);
}

UpstreamLogin::UpstreamLogin(UpstreamLoginOptions options) : options_(std::move(options)) {}

LoginStep UpstreamLogin::start(const std::vector<std::string>& offered) {
  const MechanismChoice choice =
      choose_mechanism(offered, options_.password != nullptr, options_.token_command);
  if (!choice.mechanism) {
    SaslFailure f;
    f.kind = SaslFailure::Kind::no_mechanism;
    f.detail = choice.refusal;
    return fail(f);
  }
  mechanism_ = choice.mechanism;
  if (takes_token(*mechanism_)) return {LoginStep::Kind::need_token, {}, false, {}};
  return begin_exchange(options_.password->clone());
}

LoginStep UpstreamLogin::on_token(Secret token, bool fresh) {
  token_fresh_ = fresh;
  return begin_exchange(std::move(token));
}

LoginStep UpstreamLogin::on_token_error(const std::string& error) {
  SaslFailure f;
  f.kind = SaslFailure::Kind::no_token;
  f.detail = error;
  return fail(f);
}

LoginStep UpstreamLogin::begin_exchange(Secret secret) {
  SaslClientOptions o;
  o.mechanism = *mechanism_;
  o.user = options_.user;
  o.secret = std::move(secret);
  o.host = options_.host;
  o.port = options_.port;
  client_.emplace(std::move(o));
  sent_auth_command_ = true;
  return from_sasl(client_->start());
}

LoginStep UpstreamLogin::on_reply(const Reply& reply) {
  sent_auth_command_ = false;
  if (!client_) {
    SaslFailure f;
    f.kind = SaslFailure::Kind::protocol;
    f.reply = reply;
    f.detail = "a reply arrived while mailtap had nothing to authenticate";
    return fail(f);
  }
  return from_sasl(client_->on_reply(reply));
}

LoginStep UpstreamLogin::from_sasl(SaslStep step) {
  switch (step.kind) {
    case SaslStep::Kind::send:
      return {LoginStep::Kind::send, std::move(step.line), false, {}};
    case SaslStep::Kind::succeeded:
      return {LoginStep::Kind::succeeded, {}, false, {}};
    case SaslStep::Kind::failed:
      break;
  }
  const SaslFailure& f = *client_->failure();
  // A cached token may have expired or been revoked since it was fetched, and the command may
  // have a fresh one: once. A token the command made for this session was fresh already: a
  // second run would keep the client waiting for the same refusal.
  if (f.token_rejected && options_.token_command && !retried_ && !token_fresh_) {
    retried_ = true;
    return {LoginStep::Kind::need_token, {}, true, {}};
  }
  return fail(f);
}

LoginStep UpstreamLogin::fail(const SaslFailure& failure) {
  AuthAttempt attempt;
  attempt.mechanism = mechanism_;
  const std::string user =
      shown_login_user(options_.user, options_.password.get(), options_.redact_user);
  attempt.user = user;
  attempt.upstream_host = options_.host;
  attempt.fresh_token = token_fresh_;
  LoginStep s;
  s.kind = LoginStep::Kind::failed;
  s.reply_line = explain_auth_failure(attempt, failure);
  return s;
}

}  // namespace mailtap::smtp
