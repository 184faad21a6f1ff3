#include "proxy/smtp/auth_explanation.hpp"

#include <algorithm>
#include <optional>

#include "proxy/common/hex.hpp"
#include "proxy/common/terminal_escape.hpp"

namespace mailtap::smtp {
namespace {

constexpr std::string_view kGmailScope = "https://mail.google.com/";
constexpr std::string_view kMicrosoftScope = "https://outlook.office.com/SMTP.Send";
constexpr std::size_t kMaxSummary = 220;
constexpr std::size_t kMaxName = 100;

enum class Provider : std::uint8_t { google, microsoft, other };

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool contains_ci(std::string_view haystack, std::string_view needle) {
  return std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end(),
                     [](char a, char b) { return lower(a) == lower(b); }) != haystack.end();
}

bool ends_with_ci(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && contains_ci(s.substr(s.size() - suffix.size()), suffix);
}

// Printable ASCII only (the server's text ends up in a reply and a log): other octets as
// \xHH, runs of spaces folded, at most `max` octets (an escape is never cut).
std::string printable(std::string_view s, std::size_t max) {
  std::string out;
  std::size_t fits = 0;  // where the output is cut if it grows past max: after whole escapes
  for (const char c : s) {
    if (c == ' ' && (out.empty() || out.back() == ' ')) continue;
    if (c >= 0x20 && c <= 0x7e) {
      out += c;
    } else {
      append_hex_escape(out, static_cast<unsigned char>(c));
    }
    if (out.size() <= max - 3) fits = out.size();
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  if (out.size() > max) out = out.substr(0, fits) + "...";
  return out;
}

Provider provider_of(std::string_view host, const SaslFailure& f) {
  if (ends_with_ci(host, "gmail.com") || ends_with_ci(host, "google.com") ||
      ends_with_ci(host, "googlemail.com"))
    return Provider::google;
  if (ends_with_ci(host, "office365.com") || ends_with_ci(host, "outlook.com") ||
      ends_with_ci(host, "office.com"))
    return Provider::microsoft;
  if (f.reply && !f.reply->lines.empty()) {
    const std::string_view last = f.reply->lines.back();
    if (ends_with_ci(last, "gsmtp")) return Provider::google;
    if (contains_ci(last, ".outlook.com")) return Provider::microsoft;
  }
  return Provider::other;
}

// The scope a token for this server needs, as far as mailtap knows.
std::string needed_scope(Provider p, const SaslFailure& f) {
  if (p == Provider::google) return std::string(kGmailScope);
  if (p == Provider::microsoft) return std::string(kMicrosoftScope);
  if (f.oauth_error && !f.oauth_error->scope.empty()) return f.oauth_error->scope;
  return {};
}

// "534-5.7.9 Application-specific password required (see https://...)": the first line as the
// server wrote it, without the boilerplate that points at the next line, and the first URL of
// the reply.
std::string server_summary(const Reply& r) {
  std::string first = r.lines.empty() ? std::string() : r.lines.front();
  for (std::string_view tail : {" For more information, go to", " For more information go to"}) {
    if (first.size() >= tail.size() && ends_with_ci(first, tail)) {
      first.resize(first.size() - tail.size());
    }
  }
  while (!first.empty() && (first.back() == '.' || first.back() == ' ')) first.pop_back();
  std::string out = std::to_string(r.code) + (r.lines.size() > 1 ? "-" : " ") + first;
  if (first.find("https://") == std::string::npos) {
    for (std::size_t i = 1; i < r.lines.size(); ++i) {
      const std::size_t at = r.lines[i].find("https://");
      if (at == std::string::npos) continue;
      const std::size_t end = r.lines[i].find(' ', at);
      out += " (see " + r.lines[i].substr(at, end == std::string::npos ? end : end - at) + ")";
      break;
    }
  }
  return printable(out, kMaxSummary);
}

std::string token_advice(const AuthAttempt& a, const SaslFailure& f, Provider p) {
  const OAuthError& e = *f.oauth_error;
  const std::string scope = needed_scope(p, f);
  switch (e.meaning()) {
    case OAuthError::Meaning::invalid_token:
      if (a.fresh_token) {
        return "a token the token command printed for this session was refused as expired or "
               "revoked: authorize it again (for example oama authorize, or restart pizauth)";
      }
      return "the token has expired or was revoked: --oauth2-token-cmd must print a fresh one";
    case OAuthError::Meaning::wrong_scope:
      return "the token lacks the scope this needs" +
             (scope.empty() ? std::string() : " (" + scope + ")") +
             ", or it is for another account than " + quoted_user_name(a.user) +
             ": request a token with that scope for that account";
    case OAuthError::Meaning::other:
      break;
  }
  return "the server refused the token: check that it is for " + quoted_user_name(a.user) +
         (scope.empty() ? std::string() : " with scope " + scope) + " and not expired";
}

// Microsoft 365's 5.7.139 refusals say which policy refused the sign-in.
std::string microsoft_5_7_139_advice(const std::string& text) {
  if (contains_ci(text, "SmtpClientAuthentication is disabled")) {
    return "SMTP AUTH is switched off for this tenant or mailbox: an Exchange Online "
           "administrator must enable authenticated SMTP for the mailbox (Set-CASMailbox "
           "-SmtpClientAuthenticationDisabled $false); XOAUTH2 needs it too";
  }
  if (contains_ci(text, "basic authentication is disabled")) {
    return "Microsoft 365 takes no passwords here: use XOAUTH2 with --oauth2-token-cmd and a "
           "token for " +
           std::string(kMicrosoftScope);
  }
  if (contains_ci(text, "credentials were incorrect")) {
    return "the user name (the full address) or the password is wrong";
  }
  return "Microsoft refused the sign-in: check the account's sign-in policy, or use "
         "--oauth2-token-cmd";
}

// Advice a reply gives whatever the secret was (a password or a token), if any.
std::optional<std::string> reply_advice(const Reply& r, const std::string& text) {
  const std::string_view enhanced = r.enhanced_status;
  if (r.code == 534 && enhanced == "5.7.9") {
    return "create an app password at your Google account's security page "
           "(https://myaccount.google.com/apppasswords) and give it with --password-cmd, or "
           "use --oauth2-token-cmd";
  }
  if (r.code == 534 && enhanced == "5.7.14") {
    return "Google blocked a sign-in it found suspicious: sign in once with a web browser at "
           "https://accounts.google.com, then try again";
  }
  if (r.code == 454 && contains_ci(text, "too many login")) {
    return "the server is limiting sign-in attempts: wait several minutes before trying again";
  }
  if (r.code == 530 && contains_ci(text, "starttls")) {
    return "the server wants TLS before AUTH: do not use --tls none";
  }
  if (r.code == 530) return "the server requires authentication: check the user and the secret";
  if (enhanced == "5.7.139") return microsoft_5_7_139_advice(text);
  if (r.code == 550 && enhanced == "5.7.30") {
    return "Microsoft no longer accepts passwords for SMTP: use --oauth2-token-cmd with a token "
           "for " +
           std::string(kMicrosoftScope);
  }
  return std::nullopt;
}

std::string refusal_advice(const AuthAttempt& a, const SaslFailure& f, Provider p) {
  const bool token = a.mechanism && takes_token(*a.mechanism);
  if (token && f.oauth_error) return token_advice(a, f, p);
  if (!f.reply) return "check the user name and the secret";
  const Reply& r = *f.reply;
  const std::string_view enhanced = r.enhanced_status;
  std::string text;
  for (const std::string& line : r.lines) text += line + " ";

  if (std::optional<std::string> advice = reply_advice(r, text)) return std::move(*advice);
  if (token) {
    const std::string scope = needed_scope(p, f);
    std::string advice =
        "the server refused the token: it must be for " + quoted_user_name(a.user) +
        (scope.empty() ? std::string() : " with scope " + scope) + " and not expired";
    if (p == Provider::microsoft) advice += ", and SMTP AUTH must be enabled for the mailbox";
    return advice;
  }
  if (r.code == 535 && enhanced == "5.7.3") {
    return "the password is wrong, or Microsoft blocks passwords for this account (Security "
           "Defaults): check it, or use --oauth2-token-cmd";
  }
  if (r.code == 535) {
    if (p == Provider::google) {
      return "the user name or password is wrong (Gmail wants the full address, and an app "
             "password when 2-Step Verification is on)";
    }
    return "the user name or the password is wrong";
  }
  if (r.code / 100 == 4) return "a temporary failure: try again later";
  return "check the user name and the secret";
}

}  // namespace

namespace {

struct Explanation {
  std::string head;     // what failed
  std::string summary;  // what the server said
  std::string advice;   // what to do
};

// The server refused the AUTH, or broke off the exchange.
Explanation server_refusal(const AuthAttempt& a, const SaslFailure& f, const std::string& mech) {
  using Kind = SaslFailure::Kind;
  const std::string host = printable(a.upstream_host, kMaxName);
  const std::string user = quoted_user_name(a.user);
  Explanation x;
  if (f.kind != Kind::refused) {
    x.head = host + " broke off " + mech + " as " + user;
    x.summary = printable(f.detail, kMaxSummary);
    if (f.reply) x.summary += ", then answered " + server_summary(*f.reply);
    return x;
  }
  x.head = host + " refused " + mech + " as " + user;
  if (f.reply) x.summary = server_summary(*f.reply);
  if (f.oauth_error) {
    x.summary += (x.summary.empty() ? "" : " ") + std::string("(error challenge: ") +
                 f.oauth_error->summary() + ")";
  } else if (f.error_challenge) {
    x.summary += x.summary.empty() ? "(an error challenge)" : " (after an error challenge)";
  }
  x.advice = refusal_advice(a, f, provider_of(a.upstream_host, f));
  return x;
}

// mailtap could not even try (or finish) the AUTH.
Explanation local_failure(const AuthAttempt& a, const SaslFailure& f, const std::string& mech) {
  using Kind = SaslFailure::Kind;
  const std::string host = printable(a.upstream_host, kMaxName);
  const std::string user = quoted_user_name(a.user);
  Explanation x;
  x.head = "cannot " + mech + " as " + user + " to " + host;
  x.summary = printable(f.detail, kMaxSummary);
  switch (f.kind) {
    case Kind::unusable:
      x.advice = "fix the user name or the secret mailtap was given";
      break;
    case Kind::too_long:
      break;
    case Kind::no_mechanism:
      x.head = "cannot AUTH as " + user + " to " + host;
      x.summary = printable(f.detail, kMaxSummary * 2);
      break;
    case Kind::no_token:
      x.advice =
          "run the token command yourself to see what it prints (its error output is in "
          "mailtap's log)";
      break;
    case Kind::refused:
    case Kind::protocol:
      break;  // server_refusal
  }
  return x;
}

// At most `max` octets of `text`, cut between escapes (\xHH from printable and escaped_value,
// \" and \\ from escaped_value): a cut escape would read as other text. A backslash the
// server's text had of its own may cost a few octets more than needed.
std::string_view cut_between_escapes(std::string_view text, std::size_t max) {
  std::size_t at = 0;
  while (at < text.size() && at < max) {
    std::size_t length = 1;
    if (text[at] == '\\' && at + 1 < text.size()) length = text[at + 1] == 'x' ? 4 : 2;
    if (at + length > max) break;
    at += length;
  }
  return text.substr(0, at);
}

// One reply line of at most kMaxExplanation octets.
std::string render(const Explanation& x) {
  const std::string code(kOwnAuthFailureCode);
  std::string out = code + " mailtap: " + x.head;
  if (!x.summary.empty()) out += ": " + x.summary;
  if (!x.advice.empty()) out += "; " + x.advice;
  if (out.size() <= kMaxExplanation) return out;
  // Keep the advice whole if it fits: it is the part that tells the person what to do.
  const std::string tail = x.advice.empty() ? std::string() : "; " + x.advice;
  const std::string front = code + " mailtap: " + x.head + ": ";
  if (front.size() + tail.size() + 8 < kMaxExplanation) {
    const std::size_t room = kMaxExplanation - front.size() - tail.size();
    return front + std::string(cut_between_escapes(x.summary, room - 3)) + "..." + tail;
  }
  return std::string(cut_between_escapes(out, kMaxExplanation - 3)) + "...";
}

}  // namespace

// Cut before escaping, so never inside an escape: at most 4 * (kMaxName - 3) + 3 octets.
std::string quoted_user_name(std::string_view user) {
  return user.size() > kMaxName ? escaped_value(user.substr(0, kMaxName - 3)) + "..."
                                : escaped_value(user);
}

std::string explain_auth_failure(const AuthAttempt& a, const SaslFailure& f) {
  const std::string mech =
      a.mechanism ? "AUTH " + std::string(to_string(*a.mechanism)) : std::string("AUTH");
  const bool from_server =
      f.kind == SaslFailure::Kind::refused || f.kind == SaslFailure::Kind::protocol;
  return render(from_server ? server_refusal(a, f, mech) : local_failure(a, f, mech));
}

}  // namespace mailtap::smtp
