#include "proxy/smtp/oauth_error.hpp"

#include "proxy/smtp/command.hpp"
#include "proxy/smtp/json_object.hpp"

namespace mailtap::smtp {
namespace {

constexpr std::size_t kMaxValue = 200;

std::string printable_value(const JsonMember& m) {
  std::string v;
  if (m.type == JsonMember::Type::string) {
    if (!json_unescape(m.value, v)) v = std::string(m.value);
  } else {
    v = std::string(m.value);
  }
  if (v.size() > kMaxValue) v.resize(kMaxValue);
  for (char& c : v) {
    if (c < 0x20 || c > 0x7e) c = '?';
  }
  return v;
}

}  // namespace

std::optional<OAuthError> parse_oauth_error(std::string_view json) {
  const auto members = parse_json_object(json);
  if (!members) return std::nullopt;
  OAuthError e;
  const struct {
    std::string_view key;
    std::string* out;
  } fields[] = {{"status", &e.status},
                {"schemes", &e.schemes},
                {"scope", &e.scope},
                {"openid-configuration", &e.openid_configuration}};
  for (const auto& f : fields) {
    if (const JsonMember* m = find_member(*members, f.key)) *f.out = printable_value(*m);
  }
  return e;
}

OAuthError::Meaning OAuthError::meaning() const {
  if (status == "401" || iequals(status, "invalid_token")) return Meaning::invalid_token;
  if (status == "403" || iequals(status, "insufficient_scope")) return Meaning::wrong_scope;
  if (status == "400" && !scope.empty()) return Meaning::wrong_scope;
  return Meaning::other;
}

std::string OAuthError::summary() const {
  std::string out;
  const struct {
    const char* name;
    const std::string& value;
  } parts[] = {{"status", status}, {"schemes", schemes}, {"scope", scope}};
  for (const auto& p : parts) {
    if (p.value.empty()) continue;
    if (!out.empty()) out += ", ";
    out += p.name;
    out += ' ';
    out += p.value;
  }
  return out.empty() ? "no details" : out;
}

}  // namespace mailtap::smtp
