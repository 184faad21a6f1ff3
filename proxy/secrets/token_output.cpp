#include "proxy/secrets/token_output.hpp"

#include <algorithm>
#include <charconv>

#include "proxy/common/text.hpp"
#include "proxy/smtp/json_object.hpp"
#include "proxy/smtp/sasl_responses.hpp"

namespace mailtap::secrets {
namespace {

// A day is more than any access token lives; anything larger is a mistake, not a promise.
constexpr std::int64_t kMaxLifetime = 24 * 3600;

// `text` without the blank lines (nothing but spaces, tabs and a CR) it starts and ends with,
// and without the blanks around what is left: the lines a helper printed.
std::string_view without_blank_lines_around(std::string_view text) {
  while (!text.empty()) {
    const std::size_t nl = text.find('\n');
    if (nl == std::string_view::npos || !trim_blanks(text.substr(0, nl)).empty()) break;
    text.remove_prefix(nl + 1);
  }
  while (!text.empty()) {
    const std::size_t nl = text.rfind('\n');
    const std::size_t start = nl == std::string_view::npos ? 0 : nl + 1;
    if (!trim_blanks(text.substr(start)).empty()) break;
    text = text.substr(0, nl == std::string_view::npos ? 0 : nl);
  }
  return trim_blanks(text);
}

std::optional<std::chrono::seconds> seconds_of(std::string_view digits) {
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (ec != std::errc() || end != digits.data() + digits.size() || v < 0) return std::nullopt;
  return std::chrono::seconds(std::min(v, kMaxLifetime));
}

TokenParse failed(std::string error) {
  TokenParse p;
  p.error = std::move(error);
  return p;
}

std::string printable(std::string_view s) {
  std::string out(s.substr(0, 200));
  for (char& c : out) {
    if (c < 0x20 || c > 0x7e) c = '?';
  }
  return out;
}

TokenParse from_json(std::string_view text) {
  const auto members = smtp::parse_json_object(text);
  if (!members) return failed("printed something that starts like JSON but is not an object");
  if (const smtp::JsonMember* e = smtp::find_member(*members, "error")) {
    // RFC 6749 §5.2: error codes and descriptions are meant to be shown; they hold no token.
    std::string what = "error " + printable(e->value);
    if (const smtp::JsonMember* d = smtp::find_member(*members, "error_description"))
      what += ": " + printable(d->value);
    return failed("printed a token endpoint error (" + what + ")");
  }
  const smtp::JsonMember* token = smtp::find_member(*members, "access_token");
  if (token == nullptr || token->type != smtp::JsonMember::Type::string)
    return failed("printed JSON without an \"access_token\" string");
  TokenOutput out;
  out.token = smtp::Secret(token->value.size());
  if (!smtp::json_unescape_into(token->value, out.token))
    return failed("printed an \"access_token\" with a malformed escape");
  if (const smtp::JsonMember* exp = smtp::find_member(*members, "expires_in")) {
    out.expires_in = seconds_of(exp->value);
    if (!out.expires_in) return failed("printed an \"expires_in\" that is not a number of seconds");
  }
  TokenParse p;
  p.value = std::move(out);
  return p;
}

TokenParse from_lines(std::string_view text) {
  const std::size_t nl = text.find('\n');
  // Blanks around the token (a CRLF line end, an echo with a trailing space) are no part of it,
  // whether or not lines follow; a blank or control character inside it is (a message).
  const std::string_view first = trim_blanks(text.substr(0, nl));
  TokenOutput out;
  out.token = smtp::Secret::copy_of(first);
  for (std::string_view rest = nl == std::string_view::npos ? "" : text.substr(nl + 1);
       !rest.empty();) {
    const std::size_t end = rest.find('\n');
    const std::string_view line = trim_blanks(rest.substr(0, end));
    rest = end == std::string_view::npos ? "" : rest.substr(end + 1);
    constexpr std::string_view kKey = "expires_in=";
    if (line.substr(0, kKey.size()) != kKey) continue;  // other lines are the helper's business
    out.expires_in = seconds_of(line.substr(kKey.size()));
    if (!out.expires_in) return failed("printed an expires_in= line that is not a number");
  }
  TokenParse p;
  p.value = std::move(out);
  return p;
}

}  // namespace

TokenParse parse_token_output(std::string_view output) {
  const std::string_view text = without_blank_lines_around(output);
  if (text.empty()) return failed("printed nothing");
  TokenParse p = text.front() == '{' ? from_json(text) : from_lines(text);
  if (p.value && !smtp::is_bearer_token(p.value->token.view())) {
    const std::size_t n = p.value->token.size();
    return failed("printed something that is not an access token (" + std::to_string(n) +
                  " bytes with a space, a control character or another character a bearer "
                  "token cannot have; is it an error message?)");
  }
  return p;
}

}  // namespace mailtap::secrets
