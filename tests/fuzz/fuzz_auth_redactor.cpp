// Drives AuthRedactor with arbitrary exchanges. Beyond not crashing, it checks the rendering
// invariant the transcript relies on: text and decoded are printable ASCII (no CR/LF/NUL or
// terminal escapes can reach a log; text keeps the AUTH line's separators), and the bookkeeping
// stays consistent. And no bearer token a client line carries ("auth=Bearer <token>" in its
// decoded base64, whatever surrounds it) is rendered in clear: such a line is redacted, and no
// quoted value (a user name, a host) holds the token; only `mailtap decode --show-secret`
// (Display::reveal) may show it.
//
// Input: byte 0 selects the policy (bits 0-1: users, fingerprint; bits 2-3: the display modes
// of mailtap decode, which must keep the same invariant); the rest is '\n'-separated lines. The
// first line is the AUTH line. Later lines starting with "S:" are server challenges, "F:" finishes
// with the following number, "B:" begins a new exchange, anything else is a client response.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "proxy/smtp/auth_redactor.hpp"
#include "proxy/smtp/base64.hpp"
#include "proxy/smtp/credential_shape.hpp"
#include "proxy/smtp/secret.hpp"

namespace {

using mailtap::smtp::AuthRedactor;
using mailtap::smtp::RedactedLine;
using mailtap::smtp::RedactionPolicy;
using mailtap::smtp::Secret;

bool printable(char c) {
  return c >= 0x20 && c <= 0x7e;
}

// The AUTH line's own separators (HTAB, VT, FF between or before its words, as the dialogue
// reads them) are kept in `text` as the client sent them: before the rendering's first '[', or
// anywhere when the text is the input line unchanged. Nothing else outside printable ASCII.
void check(const RedactedLine& line, std::string_view input) {
  const bool as_sent = line.text == input;
  const std::size_t rendering = line.text.find('[');
  for (std::size_t i = 0; i < line.text.size(); ++i) {
    const char c = line.text[i];
    const bool separator = c == '\t' || c == '\v' || c == '\f';
    if (!printable(c) && !(separator && (as_sent || i < rendering))) std::abort();
  }
  for (char c : line.decoded) {
    if (!printable(c)) std::abort();
  }
}

bool separator(char c) {
  return c == ' ' || c == '\t' || c == '\v' || c == '\f';
}

// The base64 a client line carries: an AUTH line's initial response (its third word and what
// follows), a whole response.
std::string_view carried_base64(std::string_view line, bool auth_line) {
  if (!auth_line) return line;
  for (int word = 0; word < 2; ++word) {
    while (!line.empty() && separator(line.front())) line.remove_prefix(1);
    while (!line.empty() && !separator(line.front())) line.remove_prefix(1);
  }
  while (!line.empty() && separator(line.front())) line.remove_prefix(1);
  while (!line.empty() && separator(line.back())) line.remove_suffix(1);
  return line;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return 0;
}

// Whether a quoted field of the rendering holds `token` once unescaped (the redactor's \" \\
// \xHH).
bool quoted_value_holds(std::string_view text, std::string_view token) {
  std::string value;
  bool inside = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '"') {
      if (inside && value.find(token) != std::string::npos) return true;
      inside = !inside;
      value.clear();
    } else if (!inside) {
      continue;
    } else if (c == '\\' && i + 3 < text.size() && text[i + 1] == 'x') {
      value += static_cast<char>(hex_value(text[i + 2]) * 16 + hex_value(text[i + 3]));
      i += 3;
    } else if (c == '\\' && i + 1 < text.size()) {
      value += text[++i];
    } else {
      value += c;
    }
  }
  return false;
}

// Every bearer token the line's base64 carries stays out of the rendering's clear text.
void check_no_bearer_token(std::string_view wire, const RedactedLine& line) {
  const std::optional<Secret> decoded = mailtap::smtp::base64_decode_secret(wire);
  if (!decoded) return;
  std::size_t at = 0;
  for (std::string_view rest = decoded->view(); mailtap::smtp::find_bearer_token(rest, at);
       rest.remove_prefix(at + 5)) {
    const std::string_view value = rest.substr(at + 5);
    const std::string_view token =
        mailtap::smtp::bearer_token_at(value.substr(mailtap::smtp::bearer_scheme_length(value)));
    if (!line.redacted) std::abort();
    if (!token.empty() &&
        (quoted_value_holds(line.text, token) || quoted_value_holds(line.decoded, token))) {
      std::abort();
    }
  }
}

RedactionPolicy policy_of(std::uint8_t selector) {
  RedactionPolicy policy;
  policy.redact_users = (selector & 1) != 0;
  if ((selector & 2) != 0) {
    policy.fingerprint_key.emplace();
    policy.fingerprint_key->fill(selector);
  }
  if ((selector & 4) != 0) policy.display = RedactionPolicy::Display::describe;
  if ((selector & 8) != 0) policy.display = RedactionPolicy::Display::reveal;
  return policy;
}

// "F:" with a reply code: the exchange ends, and authenticated() only ever becomes true.
void check_finish(AuthRedactor& redactor, std::string_view digits) {
  int code = 0;
  for (char c : digits.substr(0, 3)) code = code * 10 + (c >= '0' && c <= '9' ? c - '0' : 0);
  const bool was_authenticated = redactor.authenticated();
  const bool was_in_progress = redactor.in_progress();
  redactor.finish(code);
  if (redactor.in_progress()) std::abort();
  if (was_authenticated && !redactor.authenticated()) std::abort();
  if (!was_in_progress && redactor.authenticated() != was_authenticated) std::abort();
}

// A client line: the AUTH line that begins an exchange, or a response.
void check_client_line(AuthRedactor& redactor, std::string_view line, bool auth_line, bool reveal) {
  const RedactedLine r = auth_line ? redactor.begin(line) : redactor.client_response(line);
  check(r, line);
  if (!reveal) check_no_bearer_token(carried_base64(line, auth_line), r);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const RedactionPolicy policy = policy_of(data[0]);
  const bool reveal = policy.display == RedactionPolicy::Display::reveal;
  AuthRedactor redactor(policy);
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);

  bool first = true;
  while (!in.empty() || first) {
    const std::size_t nl = in.find('\n');
    const std::string_view line = in.substr(0, nl);
    in.remove_prefix(nl == std::string_view::npos ? in.size() : nl + 1);
    if (first) {
      check_client_line(redactor, line, true, reveal);
      first = false;
    } else if (line.substr(0, 2) == "S:") {
      check(redactor.server_challenge(line.substr(2)), line.substr(2));
    } else if (line.substr(0, 2) == "B:") {
      check_client_line(redactor, line.substr(2), true, reveal);
    } else if (line.substr(0, 2) == "F:") {
      check_finish(redactor, line.substr(2));
    } else {
      check_client_line(redactor, line, false, reveal);
    }
    if (policy.redact_users && !redactor.user().empty()) std::abort();
  }
  return 0;
}
