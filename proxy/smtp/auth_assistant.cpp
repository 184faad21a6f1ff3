#include "proxy/smtp/auth_assistant.hpp"

#include <utility>

#include "proxy/smtp/backspace_octet.hpp"
#include "proxy/smtp/base64.hpp"
#include "proxy/smtp/command.hpp"
#include "proxy/smtp/sasl_responses.hpp"

namespace mailtap::smtp {
namespace {

constexpr std::string_view kCrlf = "\r\n";

bool printable_text(std::string_view s) {
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u > 0x7e) return false;
  }
  return true;
}

// What the tutorials type after AUTH XOAUTH2/OAUTHBEARER: an encoded response, not a name.
bool is_encoded_oauth(std::string_view word) {
  const auto decoded = base64_decode(word);
  return decoded && (decoded->rfind("user=", 0) == 0 || decoded->rfind("n,", 0) == 0);
}

// Whether the one word typed after AUTH PLAIN could be the tutorials' base64 initial response:
// RFC 4954's "=" (an empty one), or a length that is a multiple of 4 in the base64 alphabet.
// Anything else cannot be base64 at all: a user name typed in clear, the password forgotten.
bool could_be_base64(std::string_view word) {
  if (word == "=") return true;
  if (word.size() % 4 != 0) return false;
  for (char c : word) {
    const bool alphabet = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                          (c >= '0' && c <= '9') || c == '+' || c == '/' || c == '=';
    if (!alphabet) return false;
  }
  return true;
}

// The password is the rest of the line, a space at its end included: nothing on the screen
// shows one, so the rewrite note says it was there (only that), for a 535 that follows.
std::string trailing_space_note(std::string_view password) {
  if (password.empty()) return {};
  if (password.back() == ' ') return "; the password ends in a space, sent as part of it";
  if (password.back() == '\t') return "; the password ends in a tab, sent as part of it";
  return {};
}

// A Backspace typed in raw mode or telnet's mode character goes as an octet: the name or password
// the screen showed corrected is not the one sent. The note says so (not where: it is a secret's
// octet), for the 535 that follows.
std::string backspace_note(std::string_view what, std::string_view typed) {
  const std::optional<BackspaceOctet> b = first_backspace(typed);
  if (!b) return {};
  return "; the " + std::string(what) + " holds " + backspace_name(b->octet) +
         ", sent as part of it (" + std::string(backspace_cause()) + ")";
}

}  // namespace

AuthAssistant::AuthAssistant(std::string host, std::uint16_t port)
    : host_(std::move(host)), port_(port) {}

AssistedLine AuthAssistant::encoded(std::string_view prefix, std::string_view clear,
                                    std::string note) {
  AssistedLine out;
  out.changed = true;
  out.line = Secret(prefix.size() + base64_encoded_size(clear.size()) + kCrlf.size());
  out.line.append(prefix);
  base64_encode_append(clear, out.line);
  out.line.append(kCrlf);
  out.note = std::move(note);
  return out;
}

AssistedLine AuthAssistant::command(std::string_view line) {
  const Command cmd = parse_command(line);
  const auto [mech_word, rest] = first_word(cmd.args);
  const std::optional<Mechanism> mech = parse_mechanism(mech_word);
  state_ = State::passthrough;
  plain_user_ = Secret();
  if (!mech) return {};
  const std::string prefix = "AUTH " + std::string(to_string(*mech)) + " ";
  switch (*mech) {
    case Mechanism::plain:
      return plain_command(prefix, rest);
    case Mechanism::login: {
      const auto [user, more] = first_word(rest);
      if (user.empty()) {
        state_ = State::login_user;
        return {};
      }
      if (!more.empty()) return {};
      state_ = State::login_password;
      return encoded(prefix, user,
                     "AUTH LOGIN user name typed in clear; sent as base64 (--assist-auth)" +
                         backspace_note("user name", user));
    }
    case Mechanism::xoauth2:
    case Mechanism::oauthbearer: {
      const auto [user, more] = first_word(rest);
      if (user.empty() || !more.empty() || is_encoded_oauth(user)) return {};
      state_ = State::oauth_token;
      oauth_mechanism_ = *mech;
      oauth_user_ = std::string(user);
      AssistedLine out;
      out.needs_token = true;
      return out;
    }
    case Mechanism::cram_md5:
      break;
  }
  return {};
}

// AUTH PLAIN with what follows the mechanism (`rest`).
AssistedLine AuthAssistant::plain_command(std::string_view prefix, std::string_view rest) {
  const auto [user, password] = first_word(rest);
  if (user.empty()) {
    state_ = State::plain_prompt;
    return {};
  }
  if (password.empty()) {
    // "AUTH PLAIN <base64>", as the tutorials type it
    if (could_be_base64(user)) return {};
    // A user name alone: AUTH PLAIN goes alone, and its 334 asks the client for the password
    // (challenge()), which response() sends with this name.
    state_ = State::plain_password;
    plain_user_ = Secret::copy_of(user);
    AssistedLine out;
    out.changed = true;
    out.line = Secret::copy_of(std::string(trim_trailing_separators(prefix)) + std::string(kCrlf));
    out.note =
        "AUTH PLAIN typed with a user name and no password; sent as AUTH PLAIN alone, the "
        "password asked for at its 334 (--assist-auth)";
    return out;
  }
  const Secret response = plain_response("", user, password);
  return encoded(prefix, response.view(),
                 "AUTH PLAIN typed as user name and password in clear; sent as base64 "
                 "(--assist-auth)" +
                     trailing_space_note(password) + backspace_note("user name", user) +
                     backspace_note("password", password));
}

AssistedLine AuthAssistant::token_line(std::string_view token) {
  const std::string prefix = "AUTH " + std::string(to_string(oauth_mechanism_)) + " ";
  const Secret response = oauth_mechanism_ == Mechanism::xoauth2
                              ? xoauth2_response(oauth_user_, token)
                              : oauthbearer_response(oauth_user_, host_, port_, token);
  state_ = State::oauth_sent;
  return encoded(prefix, response.view(),
                 "AUTH " + std::string(to_string(oauth_mechanism_)) +
                     " USER completed with the token of --oauth2-token-cmd (--assist-auth)");
}

std::optional<AssistedChallenge> AuthAssistant::challenge(const Reply& reply) {
  if (reply.code != 334 || reply.lines.size() != 1) return std::nullopt;
  if (state_ == State::plain_password) {
    // PLAIN's challenge is empty: the client would not know what to type at a bare "334 ".
    return AssistedChallenge{"334 Password:" + std::string(kCrlf),
                             "334 to AUTH PLAIN shown as a password prompt, for the user name "
                             "typed on the AUTH line (--assist-auth)",
                             /*password_prompt=*/true};
  }
  switch (state_) {
    case State::login_user:
    case State::login_password:
    case State::oauth_sent:
      break;
    default:
      return std::nullopt;
  }
  auto decoded = base64_decode(reply.lines.front());
  if (!decoded) return std::nullopt;
  while (!decoded->empty() && (decoded->back() == '\n' || decoded->back() == '\r'))
    decoded->pop_back();  // Google's error JSON may end in a newline
  if (decoded->empty() || !printable_text(*decoded)) return std::nullopt;
  return AssistedChallenge{"334 " + *decoded + std::string(kCrlf),
                           "334 challenge decoded for the client (--assist-auth)",
                           /*password_prompt=*/state_ == State::login_password};
}

AssistedLine AuthAssistant::response(std::string_view line) {
  if (line == "*") return {};  // the cancel, as typed
  switch (state_) {
    case State::plain_prompt: {
      state_ = State::passthrough;
      const auto [user, password] = first_word(line);
      if (user.empty() || password.empty()) return {};
      const Secret response = plain_response("", user, password);
      return encoded("", response.view(),
                     "PLAIN response typed as user name and password in clear; sent as base64 "
                     "(--assist-auth)" +
                         trailing_space_note(password) + backspace_note("user name", user) +
                         backspace_note("password", password));
    }
    case State::plain_password: {
      state_ = State::passthrough;
      const Secret user = std::exchange(plain_user_, Secret());
      const Secret response = plain_response("", user.view(), line);
      return encoded("", response.view(),
                     "password typed in clear at the 334 of AUTH PLAIN USER; sent as base64 with "
                     "that user name (--assist-auth)" +
                         trailing_space_note(line) + backspace_note("user name", user.view()) +
                         backspace_note("password", line));
    }
    case State::login_user:
      state_ = State::login_password;
      return encoded("", line,
                     "user name typed in clear; sent as base64 (--assist-auth)" +
                         backspace_note("user name", line));
    case State::login_password:
      state_ = State::passthrough;
      return encoded("", line,
                     "password typed in clear; sent as base64 (--assist-auth)" +
                         trailing_space_note(line) + backspace_note("password", line));
    default:
      return {};
  }
}

}  // namespace mailtap::smtp
