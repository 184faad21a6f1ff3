#include "tools/auth_line_decoder.hpp"

#include <algorithm>

#include "proxy/common/text.hpp"
#include "proxy/smtp/base64.hpp"
#include "proxy/smtp/command.hpp"
#include "proxy/smtp/credential_shape.hpp"
#include "proxy/smtp/oauth_error.hpp"
#include "tools/terminal_text.hpp"

namespace mailtap::tools {

namespace {

using smtp::AuthRedactor;
using smtp::RedactedLine;
using smtp::RedactionPolicy;

bool is_reply_line(std::string_view s) {
  return s.size() >= 3 && s[0] >= '2' && s[0] <= '5' && s[1] >= '0' && s[1] <= '9' && s[2] >= '0' &&
         s[2] <= '9' && (s.size() == 3 || s[3] == ' ' || s[3] == '-');
}

// What an OAuth error challenge means, when the decoded challenge is one.
std::string oauth_meaning(std::string_view decoded_b64_payload) {
  const std::optional<std::string> json = smtp::base64_decode(decoded_b64_payload);
  if (!json) return {};
  const std::optional<smtp::OAuthError> e = smtp::parse_oauth_error(*json);
  if (!e || e->status.empty()) return {};
  std::string out = " = OAuth error (" + e->summary() + "): ";
  switch (e->meaning()) {
    case smtp::OAuthError::Meaning::invalid_token:
      out += "the token has expired or was revoked";
      break;
    case smtp::OAuthError::Meaning::wrong_scope:
      out += "the token lacks the scope" + (e->scope.empty() ? std::string() : " " + e->scope) +
             ", or is for another account";
      break;
    case smtp::OAuthError::Meaning::other:
      out += "the token was refused";
      break;
  }
  return out + "; the client answers with an empty line (XOAUTH2) or AQ== (OAUTHBEARER)";
}

RedactionPolicy policy(bool show_secret) {
  RedactionPolicy p;
  p.display = show_secret ? RedactionPolicy::Display::reveal : RedactionPolicy::Display::describe;
  return p;
}

std::string shown(const RedactedLine& r, std::string_view if_empty) {
  if (!r.decoded.empty()) return r.decoded;
  // A line the redactor could not read, rendered as a token. The text keeps the AUTH line's
  // separators as the client sent them (HTAB, VT, FF): escaped, as every line decode prints.
  if (r.redacted) return escape_line(r.text);
  return if_empty.empty() ? "\"\"" : std::string(if_empty);
}

// What a credential the recorder keeps out of the record and no response form reads is, by
// the shape smtp::is_encoded_credential found in `decoded`.
std::string malformed_credential(std::string_view decoded) {
  std::size_t at = 0;
  if (smtp::find_bearer_token(decoded, at))
    return "a bearer token (auth=Bearer), not in an XOAUTH2 or OAUTHBEARER response, kept out of "
           "the record";
  const auto nuls = std::count(decoded.begin(), decoded.end(), '\0');
  if (nuls == 2)  // a shape the PLAIN response form refused
    return "PLAIN response kept out of the record whole (a name in it gives the password away, "
           "or is no text)";
  std::string why = std::to_string(nuls) + " NUL" + (nuls == 1 ? "" : "s") +
                    " where RFC 4616 has 2: authzid NUL authcid NUL password";
  if (nuls == 1 && decoded.front() != '\0') why += "; the leading NUL left out?";
  return "PLAIN response, malformed (" + why + "), kept out of the record whole";
}

}  // namespace

AuthLineDecoder::AuthLineDecoder(bool show_secret)
    : policy_(policy(show_secret)), redactor_(policy_) {}

std::optional<std::string> AuthLineDecoder::line(std::string_view raw) {
  const std::string_view s = trim_blanks(raw);
  if (!s.empty() && s.front() == '#') return std::nullopt;
  if (s.empty()) {
    if (!redactor_.in_progress()) return std::nullopt;
    return "response: " + shown(redactor_.client_response(""),
                                after_error_ ? "\"\" (acknowledges the error; the failure follows)"
                                             : "\"\" (empty)");
  }
  if (smtp::parse_command(s).id == smtp::Verb::auth) return auth(s);
  if (s.substr(0, 3) == "334" && (s.size() == 3 || s[3] == ' ')) return challenge(s);
  if (is_reply_line(s)) {
    redactor_.finish((s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0'));
    return "reply " + escape_line(s.substr(0, 3)) + ": " +
           escape_line(trim_blanks(s.size() > 3 ? s.substr(4) : std::string_view()));
  }
  if (s == "*") {
    if (!redactor_.in_progress()) return "\"*\" cancels an AUTH exchange (none is under way)";
    return "response: " + shown(redactor_.client_response(s), "cancel");
  }
  if (redactor_.in_progress()) return "response: " + shown(redactor_.client_response(s), "");
  return bare(s);
}

std::string AuthLineDecoder::auth(std::string_view s) {
  const RedactedLine r = redactor_.begin(s);
  std::string head = "AUTH";
  if (!redactor_.mechanism().empty()) head += " " + redactor_.mechanism();
  if (r.decoded.empty() && !r.redacted) {
    const smtp::Word mech = smtp::first_word(smtp::first_word(s).rest);
    const bool has_response = !smtp::trim_trailing_separators(mech.rest).empty();
    return head + (has_response ? ": \"\" (empty initial response)"
                                : " (no initial response: the server answers 334)");
  }
  return head + ": " + shown(r, "");
}

std::string AuthLineDecoder::challenge(std::string_view s) {
  if (!redactor_.in_progress()) {
    // A prompt copied on its own: read it as the prompts of LOGIN, the only mechanism whose
    // challenges are plain text; an OAuth error is recognised below whatever the mechanism.
    redactor_.begin("AUTH LOGIN");
  }
  const RedactedLine r = redactor_.server_challenge(s);
  const std::string_view payload = s.size() > 4 ? trim_blanks(s.substr(4)) : std::string_view();
  std::string out = "334 challenge: ";
  if (r.redacted) {
    out += shown(r, "");
  } else {
    out += r.decoded.empty() ? "\"\" (go ahead)" : "\"" + r.decoded + "\"";
  }
  const std::string meaning = oauth_meaning(payload);
  after_error_ = !meaning.empty();
  return out + meaning;
}

std::string AuthLineDecoder::bare(std::string_view s) {
  // Base64, or a credential as the recorder reads a line without a verb (smtp::credential_shape):
  // a word in either base64 alphabet, padded or not.
  std::optional<smtp::Secret> decoded = smtp::base64_decode_secret(s);
  if (!decoded && smtp::is_encoded_credential(s)) decoded = smtp::decode_base64_word(s);
  if (!decoded) {
    if (smtp::line_holds_credential(s))
      return "not one base64 word, but it holds an AUTH credential (a blob with blanks or junk "
             "around it, or a bearer token): the recorder keeps the line out of the record (" +
             std::to_string(s.size()) + " characters)";
    return "not an AUTH line, a 334 challenge, a reply or base64 (" + std::to_string(s.size()) +
           " characters)";
  }
  // The standard spelling, as the redactor reads an AUTH line.
  smtp::Secret standard(smtp::base64_encoded_size(decoded->size()));
  smtp::base64_encode_append(decoded->view(), standard);
  for (const char* mech : {"PLAIN", "XOAUTH2", "OAUTHBEARER"}) {
    AuthRedactor guess(policy_);
    const RedactedLine r =
        guess.begin("AUTH " + std::string(mech) + " " + std::string(standard.view()));
    if (r.redacted && !r.decoded.empty()) return std::string(mech) + " response: " + r.decoded;
  }
  AuthRedactor text(policy_);  // a LOGIN prompt is kept as escaped text
  text.begin("AUTH LOGIN");
  const RedactedLine r = text.server_challenge("334 " + std::string(standard.view()));
  const std::string as_text = r.decoded.empty() ? std::string("nothing") : "\"" + r.decoded + "\"";
  // What the recorder keeps out of the record whole, as a line without a verb, and no response
  // above took: secret as a well-formed response's password is.
  if (smtp::is_encoded_credential(s)) {
    return malformed_credential(decoded->view()) + ": " +
           (policy_.display == RedactionPolicy::Display::reveal
                ? as_text
                : "<secret, " + std::to_string(decoded->size()) + " bytes>");
  }
  std::string meaning = oauth_meaning(standard.view());
  if (!meaning.empty()) return "base64 of JSON" + meaning;
  return "base64 of " + as_text;
}

}  // namespace mailtap::tools
