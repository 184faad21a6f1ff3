// The Dialogue's AUTH on mailtap's side: authenticating on the client's behalf (--auth-user),
// assisted typing (--assist-auth), and the tokens both ask the session for. See docs/auth.md.
#include <algorithm>
#include <utility>

#include "proxy/common/terminal_escape.hpp"
#include "proxy/smtp/auth_explanation.hpp"
#include "proxy/smtp/capabilities.hpp"
#include "proxy/smtp/command.hpp"
#include "proxy/smtp/dialogue.hpp"
#include "proxy/smtp/dialogue_internal.hpp"

namespace mailtap::smtp {

namespace {
// Printable ASCII only, for text that came from outside (a token command's error).
std::string printable(std::string_view s, std::size_t max = 300) {
  std::string out;
  for (char c : s.substr(0, max)) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(u >= 0x20 && u < 0x7f ? c : '?');
  }
  return out;
}

// RFC 4954: "AUTH" SP mechanism [SP initial-response]. A second argument after the mechanism
// makes a line no server takes (Postfix: 501 5.5.4 Syntax: AUTH mechanism); typed by hand it is
// most often a user name and a password in clear.
bool more_than_one_argument_after_mechanism(const Command& cmd) {
  const Word mechanism = first_word(cmd.args);
  return !first_word(mechanism.rest).rest.empty();
}

// What mailtap answers such a line: what to do instead, for the person who typed it.
std::string too_many_auth_arguments_reply(bool assisting) {
  std::string reply =
      "501 5.5.4 mailtap: AUTH takes one argument after the mechanism, in base64 (RFC 4954), so "
      "no server takes this line; not forwarded. ";
  reply += assisting ? "With --assist-auth type AUTH PLAIN USER PASSWORD, or AUTH LOGIN and then "
                       "the user name and the password at its prompts"
                     : "To type the user name and password as they are, restart mailtap proxy "
                       "with --assist-auth; or type what mailtap encode plain USER prints";
  return reply + "\r\n";
}
}  // namespace

std::string Dialogue::auth_user() const {
  if (login_state_ == LoginState::succeeded) {
    const bool withheld = options_.redaction.redact_users ||
                          user_holds_password(login_->user(), options_.login->password.get());
    return withheld ? std::string{} : login_->user();
  }
  return redactor_.authenticated() ? redactor_.user() : std::string{};
}

std::string Dialogue::auth_mechanism() const {
  if (login_state_ == LoginState::succeeded) return login_mechanism_;
  return redactor_.authenticated() ? redactor_.mechanism() : std::string{};
}

// Escaped as the relayed AUTH's notes quote a name (\xHH), so the note is lossless and the
// reply that quotes it stays printable ASCII; a reply quotes it cut (login_user_label(true)),
// as the explanations of a failed AUTH do, so that it stays one reply line.
std::string Dialogue::login_user_label(bool in_reply) const {
  const std::string user = shown_login_user(login_->user(), options_.login->password.get(),
                                            options_.redaction.redact_users);
  return in_reply ? quoted_user_name(user) : escaped_value(user);
}

void Dialogue::note_rewrite(std::string verb, std::string note) {
  record(note_event(EventKind::rewrite, verb, std::move(note)));
}

// ---- EHLO: what the client is told -------------------------------------------------------

std::string Dialogue::client_ehlo_reply(const Reply& reply, bool& removed) const {
  return with_greeting_warning(client_ehlo_extensions(reply, removed), removed);
}

// A HELO reply lists no extensions: only the warning, if any, changes it.
std::string Dialogue::client_helo_reply(const Reply& reply, bool& changed) const {
  return with_greeting_warning(reply.raw, changed);
}

std::string Dialogue::with_greeting_warning(std::string to_client, bool& changed) const {
  const std::string& warning = options_.greeting_warning;
  if (warning.empty()) return to_client;
  std::size_t first_end = to_client.find('\n');
  if (first_end == std::string::npos) first_end = to_client.size();
  if (first_end > 0 && to_client[first_end - 1] == '\r') --first_end;
  to_client.insert(first_end, " [" + warning + "]");
  changed = true;
  return to_client;
}

std::string Dialogue::client_ehlo_extensions(const Reply& reply, bool& removed) const {
  // --local-tls starttls, before the client's TLS: mailtap offers its own STARTTLS, and AUTH
  // waits until the client is inside TLS (as Gmail's is offered only after STARTTLS).
  if (client_tls_ == ClientTlsState::offered) {
    std::string offered =
        append_extension(remove_extensions(reply, {"STARTTLS", "AUTH"}, removed), "STARTTLS");
    removed = true;  // changed, in any case
    return offered;
  }
  // Authenticated by mailtap, the session needs no AUTH from the client: it is not offered.
  if (login_state_ == LoginState::succeeded)
    return remove_extensions(reply, {"STARTTLS", "AUTH"}, removed);
  return remove_starttls(reply, removed);
}

std::string Dialogue::ehlo_rewrite_note() const {
  const std::string warned = options_.greeting_warning.empty()
                                 ? std::string()
                                 : "; its first line ends [" + options_.greeting_warning + "]";
  return ehlo_extensions_note() + warned;
}

std::string Dialogue::helo_rewrite_note() const {
  return "HELO reply: its first line ends [" + options_.greeting_warning + "]";
}

std::string Dialogue::ehlo_extensions_note() const {
  if (client_tls_ == ClientTlsState::offered)
    return "EHLO reply: STARTTLS is mailtap's own offer for the client's side (--local-tls "
           "starttls); AUTH is withheld until the client's TLS is up";
  if (login_state_ == LoginState::succeeded)
    return "STARTTLS and AUTH removed from the EHLO reply: mailtap holds the TLS link upstream "
           "and has authenticated as " +
           login_user_label();
  // With --tls none there is no TLS link: mailtap answers a STARTTLS itself (502), so the
  // session stays the plain text it was asked to be.
  if (options_.phase == Phase::plain)
    return "STARTTLS removed from the EHLO reply (--tls none): " +
           starttls_offered_under_tls_none();
  return "STARTTLS removed from the EHLO reply: mailtap holds the TLS link upstream";
}

// ---- --auth-user ---------------------------------------------------------------------------

bool Dialogue::hold_for_login(const Pending& p, const Reply& reply, bool positive) {
  if (login_state_ != LoginState::waiting || !positive) return false;
  held_reply_ = reply;
  held_command_ = p.command;
  return true;
}

// Right after the client's EHLO (or HELO) was accepted over TLS: its own capabilities are real
// now, and nothing the client sends next is read until mailtap's AUTH has ended.
void Dialogue::start_login(const Pending& p) {
  if (p.command == Verb::ehlo) {
    login_state_ = LoginState::exchanging;
    apply_login_step(login_->start(parse_capabilities(*held_reply_).auth_mechanisms));
    return;
  }
  // A HELO lists no mechanisms: ask with an EHLO of the same name, as the client would have.
  std::string name(parse_command(p.line).args);
  name = name.substr(0, name.find_first_of(" \t"));
  if (name.empty()) name = "localhost";
  login_state_ = LoginState::own_ehlo;
  send_own_line("EHLO " + name + "\r\n", EventKind::command,
                "mailtap's EHLO after the client's HELO, to learn the AUTH mechanisms "
                "(--auth-user)",
                Expect::own_ehlo, /*sync=*/true);
}

void Dialogue::on_own_reply(const Pending& p, const Reply& reply, Event e) {
  e.direction = Direction::upstream_to_mailtap;
  bytes_from_upstream_ -= reply.raw.size();  // mailtap's own exchange: not relayed
  if (p.kind == Expect::own_auth) {
    if (reply.code == 334) {
      RedactedLine r = own_redactor_.server_challenge(strip_crlf(reply.raw));
      e.kind = EventKind::auth;
      if (r.redacted) {
        e.bytes = r.text + "\r\n";
        e.redacted = true;
      }
      e.note = std::move(r.decoded);
    } else {
      own_redactor_.finish(reply.code);
    }
  }
  record(std::move(e));
  if (reply.closes_session()) {
    finish(Ending::Kind::upstream_closed, "upstream: " + first_line(reply));
    return;
  }
  if (p.kind == Expect::own_auth) {
    apply_login_step(login_->on_reply(reply));
  } else if (reply.positive_completion()) {
    login_state_ = LoginState::exchanging;
    apply_login_step(login_->start(parse_capabilities(reply).auth_mechanisms));
  } else {
    finish_login(false, std::string(kOwnAuthFailureCode) + " mailtap: " + options_.upstream_host +
                            " refused mailtap's EHLO, so mailtap could not authenticate: " +
                            printable(first_line(reply)));
  }
}

void Dialogue::apply_login_step(LoginStep step) {
  switch (step.kind) {
    case LoginStep::Kind::send:
      login_state_ = LoginState::exchanging;
      send_login_line(std::move(step.line));
      return;
    case LoginStep::Kind::need_token: {
      login_state_ = LoginState::token;
      token_need_ = step.fresh ? TokenNeed::fresh : TokenNeed::cached;
      if (step.fresh) {
        record(note_event(EventKind::note, "AUTH",
                          "the server refused the access token; mailtap runs "
                          "--oauth2-token-cmd again for a fresh one and retries once"));
      }
      return;
    }
    case LoginStep::Kind::succeeded:
      finish_login(true, {});
      return;
    case LoginStep::Kind::failed:
      finish_login(false, std::move(step.reply_line));
      return;
  }
}

void Dialogue::send_login_line(Secret line) {
  const std::string_view text = strip_crlf(line.view());
  RedactedLine r =
      login_->sent_auth_command() ? own_redactor_.begin(text) : own_redactor_.client_response(text);
  record(auth_line_event(Direction::mailtap_to_upstream, std::move(r), line.size()));
  to_upstream_.append_own(std::move(line));  // mailtap's own: not counted as relayed
  Pending p;
  p.kind = Expect::own_auth;
  p.verb = "AUTH";
  p.command = Verb::auth;
  p.sync = true;
  push_pending(std::move(p));
}

void Dialogue::finish_login(bool succeeded, std::string reply_line) {
  Event e = make_event(Direction::mailtap_note, EventKind::note);
  e.verb = "AUTH";
  if (succeeded) {
    login_state_ = LoginState::succeeded;
    login_mechanism_ = std::string(to_string(*login_->mechanism()));
    e.note = "authenticated by mailtap as " + login_user_label() + " (" + login_mechanism_ + ")";
  } else {
    login_state_ = LoginState::failed;
    login_failure_ = std::move(reply_line);
    login_failure_pending_ = true;
    e.note = "mailtap could not authenticate; the client's next MAIL gets: " + login_failure_;
  }
  record(std::move(e));
  release_held_reply();
}

void Dialogue::release_held_reply() {
  paused_ = false;
  if (!held_reply_) return;
  const Reply reply = std::move(*held_reply_);
  held_reply_.reset();
  std::string to_client = reply.raw;
  bool removed = false;
  if (held_command_ == Verb::ehlo) {
    to_client = client_ehlo_reply(reply, removed);
    if (removed) record(rewrite_event("EHLO", to_client, ehlo_rewrite_note()));
  } else {
    to_client = client_helo_reply(reply, removed);
    if (removed) record(rewrite_event("HELO", to_client, helo_rewrite_note()));
  }
  // The reply's own event carries the time the server sent it; a rewrite's event the time the
  // client got it. Unchanged, only this note says how long the client waited for it.
  if (!removed) {
    const std::string_view verb = held_command_ == Verb::ehlo ? "EHLO" : "HELO";
    record(note_event(EventKind::note, verb,
                      "the " + std::string(verb) +
                          " reply above, held while mailtap authenticated, reaches the client "
                          "only now, unchanged"));
  }
  emit_reply(to_client, reply.raw.size());
  flush_local_replies();
}

// ---- the client's commands that mailtap answers because of AUTH -----------------------------

bool Dialogue::intercept_command(const Command& cmd, std::string_view line) {
  if (cmd.id == Verb::auth && login_state_ == LoginState::succeeded) {
    refuse_auth_line(line, "503 5.5.1 mailtap: already authenticated as " +
                               login_user_label(/*in_reply=*/true) + " (by mailtap)\r\n");
    return true;
  }
  if (cmd.id == Verb::mail && login_failure_pending_ && !redactor_.authenticated()) {
    login_failure_pending_ = false;
    record(client_line_event(Direction::client_to_mailtap, cmd, line));
    queue_local_reply(login_failure_ + "\r\n");
    return true;
  }
  if (cmd.id == Verb::auth && assistant_ && assist_command(line)) return true;
  // Never forwarded: the line may hold a password in clear, and the server would only refuse it.
  if (cmd.id == Verb::auth && more_than_one_argument_after_mechanism(cmd)) {
    if (assistant_) assistant_->finish();
    refuse_auth_line(line, too_many_auth_arguments_reply(assistant_.has_value()));
    return true;
  }
  return false;
}

// An AUTH line mailtap answers itself: recorded as redacted as any AUTH line (it may carry a
// secret all the same), never forwarded. Every refusal of an AUTH by mailtap comes here.
void Dialogue::refuse_auth_line(std::string_view line, std::string reply_line) {
  record_unsent_auth_line(line);
  end_auth_exchange_locally(std::move(reply_line));
}

// A client's AUTH line that never went upstream, recorded through a redactor of its own.
void Dialogue::record_unsent_auth_line(std::string_view line) {
  AuthRedactor scratch(options_.redaction);
  record(
      auth_line_event(Direction::client_to_mailtap, scratch.begin(strip_crlf(line)), line.size()));
}

// The session ends while the client's AUTH line waits for its token (a shutdown, a timeout,
// the client leaving): the line was still received, and is recorded as a refused one is.
void Dialogue::record_auth_line_awaiting_token() {
  if (awaiting_token_auth_line_.empty()) return;
  record_unsent_auth_line(std::exchange(awaiting_token_auth_line_, {}));
}

// mailtap's own reply ends the client's AUTH exchange (a refusal, a token command that failed
// or timed out): the client may have pipelined its SASL responses behind the AUTH, and those
// are read as commands from here on, as after a refusal by the server (distrust_early_lines).
// Every reply of mailtap's that ends an AUTH exchange goes out here, so none can forget that.
void Dialogue::end_auth_exchange_locally(std::string reply_line) {
  queue_local_reply(std::move(reply_line));
  distrust_early_lines();
}

bool Dialogue::assist_command(std::string_view line) {
  AssistedLine a = assistant_->command(strip_crlf(line));
  if (a.needs_token) {
    if (!options_.token_command) {
      assistant_->finish();
      refuse_auth_line(line,
                       "504 5.5.4 mailtap: AUTH XOAUTH2/OAUTHBEARER USER needs a token: start "
                       "mailtap with --oauth2-token-cmd\r\n");
      return true;
    }
    // Nothing is read or sent until the token is there (provide_token sends the AUTH line);
    // without one, mailtap refuses the line as it refuses any AUTH (token_unavailable).
    token_need_ = assist_token_refused_ ? TokenNeed::fresh : TokenNeed::cached;
    awaiting_token_auth_line_ = std::string(line);
    paused_ = true;
    return true;
  }
  if (!a.changed) return false;
  send_assisted_auth(std::move(a), /*response=*/false);
  return true;
}

// ---- tokens --------------------------------------------------------------------------------

void Dialogue::provide_token(Secret token, bool fresh) {
  if (ending_ || token_need_ == TokenNeed::none) return;
  token_need_ = TokenNeed::none;
  if (login_state_ == LoginState::token) {
    apply_login_step(login_->on_token(std::move(token), fresh));
  } else if (assistant_ && assistant_->awaiting_token()) {
    awaiting_token_auth_line_.clear();  // the line sent, with the token, is recorded instead
    AssistedLine a = assistant_->token_line(token.view());
    paused_ = false;
    send_assisted_auth(std::move(a), /*response=*/false);
  }
  process_client();
}

void Dialogue::token_unavailable(const std::string& error) {
  if (ending_ || token_need_ == TokenNeed::none) return;
  token_need_ = TokenNeed::none;
  if (login_state_ == LoginState::token) {
    apply_login_step(login_->on_token_error(error));
  } else if (assistant_ && assistant_->awaiting_token()) {
    assistant_->finish();
    paused_ = false;
    refuse_auth_line(std::exchange(awaiting_token_auth_line_, {}),
                     "454 4.7.0 mailtap: no access token for AUTH: " + printable(error) + "\r\n");
  }
  process_client();
}

}  // namespace mailtap::smtp
