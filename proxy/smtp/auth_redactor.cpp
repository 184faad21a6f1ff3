#include "proxy/smtp/auth_redactor.hpp"

#include <openssl/digest.h>
#include <openssl/hmac.h>
#include <openssl/mem.h>

#include <cstddef>
#include <utility>
#include <vector>

#include "proxy/common/hex.hpp"
#include "proxy/common/terminal_escape.hpp"
#include "proxy/common/text.hpp"
#include "proxy/smtp/base64.hpp"
#include "proxy/smtp/command.hpp"
#include "proxy/smtp/credential_shape.hpp"
#include "proxy/smtp/piece_search.hpp"
#include "proxy/smtp/secret.hpp"

namespace mailtap::smtp {
namespace {

// Counters only distinguish the first few messages; saturating keeps a client that never ends
// its exchange from overflowing them.
constexpr int kMaxSteps = 16;

bool is_alpha(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_hex(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// SCRAM attribute values shown verbatim must be printable and free of the ',' separator
// (RFC 5802 "printable"; also covers base64 and nonces).
bool scram_printable(std::string_view v) {
  for (char c : v) {
    if (c < 0x21 || c > 0x7e || c == ',') return false;
  }
  return true;
}

std::string quoted(std::string_view s) {
  std::string out = "\"";
  append_escaped_value(out, s);
  out += '"';
  return out;
}

// RFC 5802 saslname: ',' and '=' only appear as "=2C" / "=3D". `out` needs room for in.size()
// bytes (decoding never grows).
bool decode_saslname(std::string_view in, Secret& out) {
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == ',') return false;
    if (in[i] != '=') {
      out.push_back(in[i]);
      continue;
    }
    const std::string_view esc = in.substr(i, 3);
    if (esc == "=2C") {
      out.push_back(',');
    } else if (esc == "=3D") {
      out.push_back('=');
    } else {
      return false;
    }
    i += 2;
  }
  return true;
}

std::string ascii_lower(std::string_view s) {
  std::string lower(s);
  for (char& c : lower) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return lower;
}

// Case-insensitive search that copies nothing: `hay` may hold a secret.
bool icontains(std::string_view hay, std::string_view needle) {
  for (std::size_t i = 0; i + needle.size() <= hay.size(); ++i) {
    if (iequals(hay.substr(i, needle.size()), needle)) return true;
  }
  return false;
}

// The bearer tokens a decoded response carries: what follows each "auth=Bearer " (the scheme in
// any case), as find_bearer_token and bearer_token_at read it.
PieceSearch bearer_tokens(std::string_view d) {
  constexpr std::size_t kKey = 5;  // "auth="
  std::vector<std::string_view> tokens;
  std::size_t at = 0;
  for (std::string_view rest = d; find_bearer_token(rest, at); rest.remove_prefix(at + kKey)) {
    const std::string_view value = rest.substr(at + kKey);
    tokens.push_back(bearer_token_at(value.substr(bearer_scheme_length(value))));
  }
  return PieceSearch(d, tokens);
}

// Whether `field`, a part of a decoded response that would be kept in clear (a user name, an
// OAUTHBEARER host or port), carries an OAuth credential: an "auth=" key, a Bearer scheme, or any
// of the bearer `tokens` the response holds. A response whose separators went missing (an XOAUTH2
// ^A typed as a space) runs its user field on into the token, and a bearer response pasted at
// another mechanism's prompt puts it where the user name goes: either way, nothing of it is kept.
bool holds_credential(std::string_view field, const PieceSearch& tokens) {
  return icontains(field, "auth=") || icontains(field, "bearer ") || icontains(field, "bearer\t") ||
         tokens.any_in(field);
}

// The same for a field of an OAuth response, where a control octet can only be a mangled ^A.
bool oauth_field_holds_credential(std::string_view field, const PieceSearch& tokens) {
  return has_control(field) || holds_credential(field, tokens);
}

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!is_digit(c)) return false;
  }
  return true;
}

// RFC 7628 §3.1 kvpairs: *(key "=" value ^A) ^A, key 1*ALPHA. Calls each(key, value) in turn; false
// if the text is not exactly that or `each` refuses a pair.
template <class Each>
bool for_each_kvpair(std::string_view kvpairs, Each&& each) {
  while (kvpairs != "\x01") {
    const std::size_t end = kvpairs.find('\x01');
    if (end == std::string_view::npos) return false;
    const std::string_view pair = kvpairs.substr(0, end);
    kvpairs.remove_prefix(end + 1);
    const std::size_t eq = pair.find('=');
    if (eq == 0 || eq == std::string_view::npos) return false;
    const std::string_view key = pair.substr(0, eq);
    for (char c : key) {
      if (!is_alpha(c)) return false;
    }
    if (!each(key, pair.substr(eq + 1))) return false;
  }
  return true;
}

// GS2 header shared by SCRAM (RFC 5802 §7) and OAUTHBEARER (RFC 7628 §3.1):
// cbind-flag "," [ "a=" saslname ] ","
struct Gs2 {
  std::string_view flag;
  bool has_authzid = false;
  std::string_view authzid;  // still saslname-encoded
  std::string_view rest;
};

std::optional<Gs2> parse_gs2(std::string_view s) {
  Gs2 g;
  const std::size_t c1 = s.find(',');
  if (c1 == std::string_view::npos) return std::nullopt;
  g.flag = s.substr(0, c1);
  if (g.flag != "n" && g.flag != "y") {
    if (g.flag.size() < 3 || g.flag.substr(0, 2) != "p=") return std::nullopt;
    for (char c : g.flag.substr(2)) {
      if (!is_alpha(c) && !is_digit(c) && c != '.' && c != '-') return std::nullopt;
    }
  }
  s.remove_prefix(c1 + 1);
  const std::size_t c2 = s.find(',');
  if (c2 == std::string_view::npos) return std::nullopt;
  const std::string_view az = s.substr(0, c2);
  if (!az.empty()) {
    if (az.substr(0, 2) != "a=") return std::nullopt;
    g.has_authzid = true;
    g.authzid = az.substr(2);
  }
  g.rest = s.substr(c2 + 1);
  return g;
}

}  // namespace

AuthRedactor::AuthRedactor(RedactionPolicy policy) : policy_(policy) {}

std::string AuthRedactor::token(std::string_view secret) const {
  if (policy_.display == RedactionPolicy::Display::describe)
    return "<secret, " + std::to_string(secret.size()) + " bytes>";
  if (policy_.display == RedactionPolicy::Display::reveal) return quoted(secret);
  std::string out = "<redacted " + std::to_string(secret.size()) + " bytes";
  if (policy_.fingerprint_key) {
    std::uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned mac_len = 0;
    const auto& key = *policy_.fingerprint_key;
    if (HMAC(EVP_sha256(), key.data(), key.size(),
             reinterpret_cast<const std::uint8_t*>(secret.data()), secret.size(), mac,
             &mac_len) != nullptr &&
        mac_len >= 8) {
      out += " fp=";
      for (std::size_t i = 0; i < 8; ++i) append_hex(out, mac[i]);
    }
    OPENSSL_cleanse(mac, sizeof mac);
  }
  out += '>';
  return out;
}

std::string AuthRedactor::user_field(std::string_view user) const {
  return policy_.redact_users ? token(user) : quoted(user);
}

void AuthRedactor::learn_user(std::string_view user) {
  if (!policy_.redact_users && !authenticated_) user_.assign(user);
}

AuthRedactor::Rendering AuthRedactor::deny(std::string_view wire) const {
  return {Payload::deny, token(wire)};
}

RedactedLine AuthRedactor::begin(std::string_view line) {
  in_progress_ = true;
  family_ = MechanismFamily::opaque;
  step_ = 0;
  challenges_ = 0;
  login_prompt_ = LoginPrompt::none;
  cancelled_ = oauth_error_ = false;
  scram_server_first_ = scram_server_final_ = false;
  if (!authenticated_) {
    mechanism_.clear();
    user_.clear();
  }

  // Words as the dialogue reads the line (and the server): any run of separators, leading ones
  // too. Splitting otherwise would record a line the server took as AUTH as something else.
  RedactedLine out;
  const Word verb = first_word(line);
  if (!iequals(verb.word, "AUTH")) {
    out.text = "[" + token(line) + "]";
    out.redacted = true;
    return out;
  }
  if (verb.rest.empty()) {  // bare "AUTH": nothing to hide, the server will 501
    out.text = std::string(line);
    return out;
  }
  const std::size_t rest_at = static_cast<std::size_t>(verb.rest.data() - line.data());
  // The word after AUTH is kept in clear only when it is a registered SASL mechanism name.
  const Word mech = first_word(verb.rest);
  const RegisteredMechanism* registered = find_registered_mechanism(mech.word);
  if (registered == nullptr) {
    out.text = std::string(line.substr(0, rest_at)) + "[" + token(verb.rest) + "]";
    out.redacted = true;
    return out;
  }
  if (!authenticated_) mechanism_ = registered->name;
  family_ = registered->family;

  // "AUTH LOGIN " with a trailing space carries no initial response (RFC 4954 spells an empty
  // one "="); counting it as one would shift the LOGIN user/password positions. A trailing
  // separator after a response is not part of it, as for the server.
  const std::string_view initial = trim_trailing_separators(mech.rest);
  if (initial.empty()) {
    out.text = std::string(line);
    return out;
  }
  const Rendering r = respond(initial, /*initial=*/true);
  if (r.kind == Payload::keep) {
    out.text = std::string(line);
    out.decoded = r.body;
  } else {
    const std::size_t mech_end = rest_at + mech.word.size();
    out.text = std::string(line.substr(0, mech_end)) + " [" + r.body + "]";
    out.redacted = true;
    if (r.kind == Payload::fields) out.decoded = r.body;
  }
  return out;
}

RedactedLine AuthRedactor::client_response(std::string_view line) {
  RedactedLine out;
  if (line == "*" && in_progress_) {
    cancelled_ = true;
    out.text = "*";
    out.decoded = "cancel";
    return out;
  }
  // Out of sequence or after a cancel nothing is expected, so nothing is understood.
  const Rendering r = in_progress_ && !cancelled_ ? respond(line, /*initial=*/false) : deny(line);
  if (r.kind == Payload::keep) {
    out.text = std::string(line);
    out.decoded = r.body;
  } else {
    out.text = "[" + r.body + "]";
    out.redacted = true;
    if (r.kind == Payload::fields) out.decoded = r.body;
  }
  return out;
}

bool login_prompt_asks_for_password(std::string_view decoded_prompt) {
  return ascii_lower(decoded_prompt).find("pass") != std::string::npos;
}

bool login_prompt_asks_for_user(std::string_view decoded_prompt) {
  const std::string lower = ascii_lower(decoded_prompt);
  return lower.find("pass") == std::string::npos &&
         (lower.find("user") != std::string::npos || lower.find("name") != std::string::npos);
}

RedactedLine AuthRedactor::server_challenge(std::string_view line) {
  RedactedLine out;
  std::string_view payload;
  const bool is_334 = line == "334" || line.substr(0, 4) == "334 ";
  if (!in_progress_ || !is_334) {
    out.text = "[" + token(line) + "]";
    out.redacted = true;
    return out;
  }
  if (line.size() > 4) payload = line.substr(4);
  if (challenges_ < kMaxSteps) ++challenges_;

  const std::optional<Secret> data = base64_decode_secret(payload);
  Rendering r = data ? challenge(data->view()) : Rendering{};
  if (r.kind == Payload::deny) r = deny(payload);
  if (r.kind == Payload::keep) {
    out.text = std::string(line);
    out.decoded = std::move(r.body);
  } else {
    out.text = "334 [" + r.body + "]";
    out.redacted = true;
    if (r.kind == Payload::fields) out.decoded = std::move(r.body);
  }
  return out;
}

void AuthRedactor::finish(int reply_code) {
  if (!in_progress_) return;
  in_progress_ = false;
  if (reply_code == 235) authenticated_ = true;
}

AuthRedactor::Rendering AuthRedactor::challenge(std::string_view data) {
  switch (family_) {
    case MechanismFamily::plain:
    case MechanismFamily::cram_md5:
      break;
    case MechanismFamily::login:
      login_prompt_ = login_prompt_asks_for_password(data) ? LoginPrompt::password
                      : login_prompt_asks_for_user(data)   ? LoginPrompt::user
                                                           : LoginPrompt::other;
      break;
    case MechanismFamily::xoauth2:
    case MechanismFamily::oauthbearer:
      // After the token, a 334 can only be the RFC 7628 §3.2.2 error (JSON, not a secret).
      if (step_ > 0) oauth_error_ = true;
      break;
    case MechanismFamily::scram:
      return scram_challenge(data);
    case MechanismFamily::opaque:
      // Unknown mechanisms (GSSAPI, NTLM...) can carry ticket or hash material either way.
      if (!data.empty()) return {};
      break;
  }
  return {Payload::keep, escaped_value(data)};
}

AuthRedactor::Rendering AuthRedactor::scram_challenge(std::string_view data) {
  const Rendering keep{Payload::keep, escaped_value(data)};
  if (step_ == 0 && data.empty()) return keep;
  if (step_ == 1 && !scram_server_first_) {
    // r=nonce,s=salt,i=count[,ext]: salt and count are public parameters.
    if (data.substr(0, 2) != "r=" || data.find(",s=") == std::string_view::npos ||
        data.find(",i=") == std::string_view::npos) {
      return {};
    }
    for (char c : data) {
      if (c < 0x21 || c > 0x7e) return {};
    }
    scram_server_first_ = true;
    return keep;
  }
  if (step_ == 2 && scram_server_first_ && !scram_server_final_) {
    // The verifier lets an observer with the transcript test password guesses offline.
    if (data.substr(0, 2) == "v=") {
      scram_server_final_ = true;
      return {Payload::fields, "v=" + token(data.substr(2))};
    }
    if (data.substr(0, 2) == "e=" && scram_printable(data.substr(2))) {
      scram_server_final_ = true;
      return keep;
    }
  }
  return {};
}

AuthRedactor::Rendering AuthRedactor::respond(std::string_view wire, bool initial) {
  // "=" is RFC 4954's empty initial response; continuation lines send empty as "".
  const bool empty_initial = initial && wire == "=";
  const std::optional<Secret> data =
      empty_initial ? std::optional<Secret>(Secret()) : base64_decode_secret(wire);
  const bool ok = data.has_value();
  const bool after_oauth_error = std::exchange(oauth_error_, false);
  const LoginPrompt prompt = std::exchange(login_prompt_, LoginPrompt::none);
  const int k = step_;
  if (step_ < kMaxSteps) ++step_;  // saturate: only "first", "second", "later" matter
  Rendering r = ok ? dispatch(k, after_oauth_error, prompt, data->view()) : Rendering{};
  // Denials measure and fingerprint the wire bytes: the decoded ones may not mean anything.
  if (r.kind == Payload::deny) return deny(wire);
  return r;
}

AuthRedactor::Rendering AuthRedactor::dispatch(int k, bool after_oauth_error, LoginPrompt prompt,
                                               std::string_view d) {
  if (d.empty()) return {Payload::keep, ""};  // zero bytes cannot hold a secret
  switch (family_) {
    case MechanismFamily::plain:
      if (k == 0) return respond_plain(d);
      break;
    case MechanismFamily::login:
      return login_answer(k, prompt, d);
    case MechanismFamily::cram_md5:
      // Server-first (RFC 2195): a response before the challenge is not CRAM-MD5.
      if (k == 0 && challenges_ > 0) return respond_cram(d);
      break;
    case MechanismFamily::xoauth2:
    case MechanismFamily::oauthbearer:
      if (after_oauth_error) {
        if (d == "\x01") return {Payload::keep, "\\x01"};  // RFC 7628 §3.2.3 dummy response
        break;
      }
      if (k == 0) return respond_oauth(d);
      break;
    case MechanismFamily::scram:
      if (k == 0) return respond_scram_first(d);
      if (k == 1 && scram_server_first_ && !scram_server_final_) return respond_scram_final(d);
      break;
    case MechanismFamily::opaque:
      break;
  }
  return {};
}

// RFC 4616: [authzid] NUL authcid NUL passwd. A user name that holds the password (most often:
// is the password) gives it away, with the redacted password's length beside it, in as many
// guesses as it has substrings of that length: such a response is no user's, it is redacted whole.
// A password found nowhere in the names leaves them kept, so no ordinary account is hidden.
AuthRedactor::Rendering AuthRedactor::respond_plain(std::string_view d) {
  const std::size_t n1 = d.find('\0');
  if (n1 == std::string_view::npos) return {};
  const std::size_t n2 = d.find('\0', n1 + 1);
  if (n2 == std::string_view::npos || d.find('\0', n2 + 1) != std::string_view::npos) {
    return {};
  }
  const std::string_view authzid = d.substr(0, n1);
  const std::string_view authcid = d.substr(n1 + 1, n2 - n1 - 1);
  const std::string_view passwd[] = {d.substr(n2 + 1)};
  const PieceSearch tokens = bearer_tokens(d);
  const PieceSearch password(d, passwd);
  if (holds_credential(authzid, tokens) || holds_credential(authcid, tokens) ||
      password.any_in(authzid) || password.any_in(authcid)) {
    return {};
  }
  learn_user(authcid);
  return {Payload::fields, "authzid=" + user_field(authzid) + " authcid=" + user_field(authcid) +
                               " password=" + token(passwd[0])};
}

// Each answer is labelled by what its prompt asked, so that `mailtap replay` sends each field
// where the server asks for it. Only the first answer can be kept as the user name: a client
// that answers by position (Python's smtplib does) sends the password second whatever the
// prompt says, so a second answer is hidden even when the server asked it for the user name.
AuthRedactor::Rendering AuthRedactor::login_answer(int k, LoginPrompt prompt, std::string_view d) {
  if (k == 0 && prompt != LoginPrompt::password) return respond_login(d);
  if (k == 1 && prompt == LoginPrompt::user) return {Payload::fields, "user=" + token(d)};
  // When in doubt (a prompt that says neither, no prompt), the password.
  if (k <= 1) return {Payload::fields, "password=" + token(d)};
  return {};
}

// A "user name" with a control octet is not one: most often it is an AUTH PLAIN response (NUL,
// user, NUL, password) pasted at the Username: prompt, so it is treated as the secret; so is one
// that holds an OAuth credential.
AuthRedactor::Rendering AuthRedactor::respond_login(std::string_view d) {
  if (has_control(d) || holds_credential(d, bearer_tokens(d))) return {};
  learn_user(d);
  if (policy_.redact_users) return {Payload::fields, "user=" + token(d)};
  return {Payload::keep, "user=" + quoted(d)};
}

// RFC 2195: user SP 32 hex digits. The digest is keyed by the password and the challenge is in
// the transcript, so it would allow an offline dictionary attack.
AuthRedactor::Rendering AuthRedactor::respond_cram(std::string_view d) {
  const std::size_t sp = d.rfind(' ');
  if (sp == std::string_view::npos || sp == 0) return {};
  const std::string_view digest = d.substr(sp + 1);
  if (digest.size() != 32) return {};
  for (char c : digest) {
    if (!is_hex(c)) return {};
  }
  // The user takes all that stands before the digest: only a plain name is kept.
  const std::string_view user = d.substr(0, sp);
  if (has_control(user) || holds_credential(user, bearer_tokens(d))) return {};
  learn_user(user);
  return {Payload::fields, "user=" + user_field(user) + " digest=" + token(digest)};
}

// XOAUTH2 (Google's specification), exactly: "user=" u ^A "auth=" v ^A ^A. Anything else, a
// separator missing or another in its place, is not understood, so it is denied whole.
AuthRedactor::Rendering AuthRedactor::respond_oauth(std::string_view d) {
  if (family_ == MechanismFamily::oauthbearer) return respond_oauthbearer(d);
  constexpr std::string_view kUser = "user=";
  constexpr std::string_view kAuth = "auth=";
  if (d.substr(0, kUser.size()) != kUser) return {};
  const std::size_t user_end = d.find('\x01', kUser.size());
  if (user_end == std::string_view::npos) return {};
  const std::string_view user = d.substr(kUser.size(), user_end - kUser.size());
  const std::string_view rest = d.substr(user_end + 1);
  if (rest.substr(0, kAuth.size()) != kAuth) return {};
  const std::size_t auth_end = rest.find('\x01', kAuth.size());
  if (auth_end == std::string_view::npos || rest.substr(auth_end) != "\x01\x01") return {};
  if (oauth_field_holds_credential(user, bearer_tokens(d))) return {};
  learn_user(user);
  return {Payload::fields,
          "user=" + user_field(user) + " " +
              oauth_field("auth", rest.substr(kAuth.size(), auth_end - kAuth.size()))};
}

// OAUTHBEARER (RFC 7628 §3.1): gs2-header ^A *(key "=" value ^A) ^A, with exactly one auth. The
// authzid, host and port are kept only when they are nothing more than that.
AuthRedactor::Rendering AuthRedactor::respond_oauthbearer(std::string_view d) {
  const std::optional<Gs2> gs2 = parse_gs2(d);
  if (!gs2 || (gs2->flag != "n" && gs2->flag != "y") || gs2->rest.substr(0, 1) != "\x01") {
    return {};
  }
  const std::string_view kvpairs = gs2->rest.substr(1);
  const PieceSearch tokens = bearer_tokens(d);
  int auths = 0;
  const bool understood =
      for_each_kvpair(kvpairs, [&](std::string_view key, std::string_view value) {
        if (key == "auth") ++auths;
        if (key == "port" && !all_digits(value)) return false;
        return (key != "host" && key != "port") || !oauth_field_holds_credential(value, tokens);
      });
  if (!understood || auths != 1) return {};
  std::string body;
  if (gs2->has_authzid) {
    Secret user(gs2->authzid.size());
    if (!decode_saslname(gs2->authzid, user) || oauth_field_holds_credential(user.view(), tokens)) {
      return {};
    }
    learn_user(user.view());
    body = "user=" + user_field(user.view());
  }
  for_each_kvpair(kvpairs, [&](std::string_view key, std::string_view value) {
    if (!body.empty()) body += ' ';
    body += oauth_field(key, value);
    return true;
  });
  return {Payload::fields, std::move(body)};
}

// One key=value pair of an OAuth initial response, as recorded.
std::string AuthRedactor::oauth_field(std::string_view key, std::string_view value) const {
  if (key == "host" || key == "port") return std::string(key) + "=" + quoted(value);
  const std::size_t scheme = key == "auth" ? bearer_scheme_length(value) : 0;
  if (scheme != 0 && value.size() > scheme) return "bearer=" + token(value.substr(scheme));
  // "auth" with another scheme, or an extension key: values of unknown meaning are denied.
  return std::string(key) + "=" + token(value);
}

// RFC 5802 client-first-message: gs2-header "n=" saslname ",r=" c-nonce. Nothing secret
// unless user names are; extensions (m= or trailing attributes) are not understood, so denied.
AuthRedactor::Rendering AuthRedactor::respond_scram_first(std::string_view d) {
  const std::optional<Gs2> gs2 = parse_gs2(d);
  if (!gs2 || gs2->rest.substr(0, 2) != "n=") return {};
  const std::string_view bare = gs2->rest;
  const std::size_t comma = bare.find(',');
  if (comma == std::string_view::npos) return {};
  const std::string_view user_enc = bare.substr(2, comma - 2);
  const std::string_view after = bare.substr(comma + 1);
  if (after.substr(0, 2) != "r=") return {};
  const std::string_view nonce = after.substr(2);
  if (nonce.empty() || !scram_printable(nonce)) return {};
  Secret authzid(gs2->authzid.size());
  Secret user(user_enc.size());
  const PieceSearch tokens = bearer_tokens(d);
  if ((gs2->has_authzid && !decode_saslname(gs2->authzid, authzid)) ||
      !decode_saslname(user_enc, user) || holds_credential(authzid.view(), tokens) ||
      holds_credential(user.view(), tokens)) {
    return {};
  }
  learn_user(user.view());
  if (!policy_.redact_users) return {Payload::keep, escaped_value(d)};
  std::string body = std::string(gs2->flag) + ",";
  if (gs2->has_authzid) body += "a=" + token(authzid.view());
  body += ",n=" + token(user.view()) + ",r=" + std::string(nonce);
  return {Payload::fields, std::move(body)};
}

// RFC 5802 client-final-message: "c=" cbind ",r=" nonce ",p=" proof. The proof, with the
// transcript's salt and nonces, allows offline password guessing.
AuthRedactor::Rendering AuthRedactor::respond_scram_final(std::string_view d) {
  const std::size_t c1 = d.find(',');
  if (c1 == std::string_view::npos) return {};
  const std::size_t c2 = d.find(',', c1 + 1);
  if (c2 == std::string_view::npos) return {};
  const std::string_view cbind = d.substr(0, c1);
  const std::string_view nonce = d.substr(c1 + 1, c2 - c1 - 1);
  const std::string_view proof = d.substr(c2 + 1);
  if (cbind.substr(0, 2) != "c=" || nonce.substr(0, 2) != "r=" || proof.substr(0, 2) != "p=" ||
      !scram_printable(cbind.substr(2)) || !scram_printable(nonce.substr(2))) {
    return {};
  }
  return {Payload::fields,
          std::string(cbind) + "," + std::string(nonce) + ",p=" + token(proof.substr(2))};
}

}  // namespace mailtap::smtp
