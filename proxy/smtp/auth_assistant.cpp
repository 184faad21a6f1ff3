#include "proxy/smtp/auth_assistant.hpp"

#include <utility>

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
  if (!mech) return {};
  const std::string prefix = "AUTH " + std::string(to_string(*mech)) + " ";
  switch (*mech) {
    case Mechanism::plain: {
      const auto [user, password] = first_word(rest);
      if (user.empty()) {
        state_ = State::plain_prompt;
        return {};
      }
      if (password.empty()) return {};  // "AUTH PLAIN <base64>", as the tutorials type it
      const Secret response = plain_response("", user, password);
      return encoded(prefix, response.view(),
                     "AUTH PLAIN typed as user name and password in clear; sent as base64 "
                     "(--assist-auth)");
    }
    case Mechanism::login: {
      const auto [user, more] = first_word(rest);
      if (user.empty()) {
        state_ = State::login_user;
        return {};
      }
      if (!more.empty()) return {};
      state_ = State::login_password;
      return encoded(prefix, user,
                     "AUTH LOGIN user name typed in clear; sent as base64 (--assist-auth)");
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

std::optional<std::string> AuthAssistant::challenge(const Reply& reply) {
  if (reply.code != 334 || reply.lines.size() != 1) return std::nullopt;
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
  return "334 " + *decoded + std::string(kCrlf);
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
                     "(--assist-auth)");
    }
    case State::login_user:
      state_ = State::login_password;
      return encoded("", line, "user name typed in clear; sent as base64 (--assist-auth)");
    case State::login_password:
      state_ = State::passthrough;
      return encoded("", line, "password typed in clear; sent as base64 (--assist-auth)");
    default:
      return {};
  }
}

}  // namespace mailtap::smtp
