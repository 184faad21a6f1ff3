#include "tools/reply_codes.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <utility>

namespace mailtap::tools {

namespace {

struct BasicEntry {
  int code;
  const char* meaning;
};

// RFC 5321 section 4.2.3 and the codes other standards added to the same registry.
constexpr std::array kBasic{
    BasicEntry{211, "system status, or system help reply"},
    BasicEntry{214, "help message"},
    BasicEntry{220, "service ready"},
    BasicEntry{221, "service closing transmission channel"},
    BasicEntry{235, "authentication succeeded"},
    BasicEntry{250, "requested mail action okay, completed"},
    BasicEntry{251, "user not local; will forward"},
    BasicEntry{252, "cannot verify the user, but will accept the message and attempt delivery"},
    BasicEntry{334, "server challenge: continue the authentication exchange"},
    BasicEntry{354, "start mail input; end with <CRLF>.<CRLF>"},
    BasicEntry{421, "service not available, closing transmission channel"},
    BasicEntry{432, "a password transition is needed"},
    BasicEntry{450, "requested mail action not taken: mailbox unavailable (temporary)"},
    BasicEntry{451, "requested action aborted: local error in processing"},
    BasicEntry{452, "requested action not taken: insufficient system storage"},
    BasicEntry{454, "temporary authentication or TLS failure"},
    BasicEntry{455, "server unable to accommodate parameters"},
    BasicEntry{500, "syntax error, command unrecognized (or line too long)"},
    BasicEntry{501, "syntax error in parameters or arguments"},
    BasicEntry{502, "command not implemented"},
    BasicEntry{503, "bad sequence of commands"},
    BasicEntry{504, "command parameter not implemented"},
    BasicEntry{521, "server does not accept mail"},
    BasicEntry{523, "encryption needed"},
    BasicEntry{530, "authentication required"},
    BasicEntry{534, "authentication mechanism is too weak"},
    BasicEntry{535, "authentication credentials invalid"},
    BasicEntry{538, "encryption required for requested authentication mechanism"},
    BasicEntry{550, "requested action not taken: mailbox unavailable or refused by policy"},
    BasicEntry{551, "user not local; please try the forward-path"},
    BasicEntry{552, "requested mail action aborted: exceeded storage allocation"},
    BasicEntry{553, "requested action not taken: mailbox name not allowed"},
    BasicEntry{554, "transaction failed (or no SMTP service here)"},
    BasicEntry{555, "MAIL FROM/RCPT TO parameters not recognized or not implemented"},
    BasicEntry{556, "domain does not accept mail"},
};

const char* reply_class(int first) {
  switch (first) {
    case 2:
      return "success";
    case 3:
      return "intermediate: send more";
    case 4:
      return "temporary failure: try again later";
    case 5:
      return "permanent failure: do not repeat as is";
    default:
      return nullptr;
  }
}

const char* reply_category(int second) {
  switch (second) {
    case 0:
      return "syntax";
    case 1:
      return "information";
    case 2:
      return "connection";
    case 3:
      return "authentication";
    case 5:
      return "mail system";
    default:
      return "unspecified";
  }
}

struct EnhancedEntry {
  int subject;
  int detail;
  const char* meaning;
};

// RFC 3463 section 3 and the IANA "Enumerated Status Codes" registry.
constexpr std::array kEnhanced{
    EnhancedEntry{0, 0, "other undefined status"},
    EnhancedEntry{1, 0, "other address status"},
    EnhancedEntry{1, 1, "bad destination mailbox address"},
    EnhancedEntry{1, 2, "bad destination system address"},
    EnhancedEntry{1, 3, "bad destination mailbox address syntax"},
    EnhancedEntry{1, 4, "destination mailbox address ambiguous"},
    EnhancedEntry{1, 5, "destination address valid"},
    EnhancedEntry{1, 6, "destination mailbox has moved, no forwarding address"},
    EnhancedEntry{1, 7, "bad sender's mailbox address syntax"},
    EnhancedEntry{1, 8, "bad sender's system address"},
    EnhancedEntry{1, 9, "message relayed to non-compliant mailer"},
    EnhancedEntry{1, 10, "recipient address has null MX"},
    EnhancedEntry{2, 0, "other or undefined mailbox status"},
    EnhancedEntry{2, 1, "mailbox disabled, not accepting messages"},
    EnhancedEntry{2, 2, "mailbox full"},
    EnhancedEntry{2, 3, "message length exceeds administrative limit"},
    EnhancedEntry{2, 4, "mailing list expansion problem"},
    EnhancedEntry{3, 0, "other or undefined mail system status"},
    EnhancedEntry{3, 1, "mail system full"},
    EnhancedEntry{3, 2, "system not accepting network messages"},
    EnhancedEntry{3, 3, "system not capable of selected features"},
    EnhancedEntry{3, 4, "message too big for system"},
    EnhancedEntry{3, 5, "system incorrectly configured"},
    EnhancedEntry{3, 6, "requested priority was changed"},
    EnhancedEntry{4, 0, "other or undefined network or routing status"},
    EnhancedEntry{4, 1, "no answer from host"},
    EnhancedEntry{4, 2, "bad connection"},
    EnhancedEntry{4, 3, "directory server failure"},
    EnhancedEntry{4, 4, "unable to route"},
    EnhancedEntry{4, 5, "mail system congestion"},
    EnhancedEntry{4, 6, "routing loop detected"},
    EnhancedEntry{4, 7, "delivery time expired"},
    EnhancedEntry{5, 0, "other or undefined protocol status"},
    EnhancedEntry{5, 1, "invalid command"},
    EnhancedEntry{5, 2, "syntax error"},
    EnhancedEntry{5, 3, "too many recipients"},
    EnhancedEntry{5, 4, "invalid command arguments"},
    EnhancedEntry{5, 5, "wrong protocol version"},
    EnhancedEntry{5, 6, "authentication exchange line is too long"},
    EnhancedEntry{6, 0, "other or undefined media error"},
    EnhancedEntry{6, 1, "media not supported"},
    EnhancedEntry{6, 2, "conversion required and prohibited"},
    EnhancedEntry{6, 3, "conversion required but not supported"},
    EnhancedEntry{6, 4, "conversion with loss performed"},
    EnhancedEntry{6, 5, "conversion failed"},
    EnhancedEntry{6, 6, "message content not available"},
    EnhancedEntry{6, 7, "non-ASCII addresses not permitted for that sender/recipient"},
    EnhancedEntry{6, 8, "UTF-8 string reply is required, but not permitted by the client"},
    EnhancedEntry{6, 9, "UTF-8 header message cannot be transferred to one or more recipients"},
    EnhancedEntry{6, 10, "UTF-8 message cannot be transferred to one or more recipients"},
    EnhancedEntry{7, 0, "other or undefined security status"},
    EnhancedEntry{7, 1, "delivery not authorized, message refused"},
    EnhancedEntry{7, 2, "mailing list expansion prohibited"},
    EnhancedEntry{7, 3, "security conversion required but not possible"},
    EnhancedEntry{7, 4, "security features not supported"},
    EnhancedEntry{7, 5, "cryptographic failure"},
    EnhancedEntry{7, 6, "cryptographic algorithm not supported"},
    EnhancedEntry{7, 7, "message integrity failure"},
    EnhancedEntry{7, 8, "authentication credentials invalid"},
    EnhancedEntry{7, 9, "authentication mechanism is too weak"},
    EnhancedEntry{7, 10, "encryption needed"},
    EnhancedEntry{7, 11, "encryption required for requested authentication mechanism"},
    EnhancedEntry{7, 12, "a password transition is needed"},
    EnhancedEntry{7, 13, "user account disabled"},
    EnhancedEntry{7, 14, "trust relationship required"},
    EnhancedEntry{7, 15, "priority level is too low"},
    EnhancedEntry{7, 16, "message is too big for the specified priority"},
    EnhancedEntry{7, 17, "mailbox owner has changed"},
    EnhancedEntry{7, 18, "domain owner has changed"},
    EnhancedEntry{7, 19, "RRVS test cannot be completed"},
    EnhancedEntry{7, 20, "no passing DKIM signature found"},
    EnhancedEntry{7, 21, "no acceptable DKIM signature found"},
    EnhancedEntry{7, 22, "no valid author-matched DKIM signature found"},
    EnhancedEntry{7, 23, "SPF validation failed"},
    EnhancedEntry{7, 24, "SPF validation error"},
    EnhancedEntry{7, 25, "reverse DNS validation failed"},
    EnhancedEntry{7, 26, "multiple authentication checks failed"},
    EnhancedEntry{7, 27, "sender address has null MX"},
    EnhancedEntry{7, 28, "mail flood detected"},
    EnhancedEntry{7, 29, "ARC validation failure"},
    EnhancedEntry{7, 30, "REQUIRETLS support required"},
};

const char* subject_meaning(int subject) {
  switch (subject) {
    case 0:
      return "other or undefined status";
    case 1:
      return "addressing status";
    case 2:
      return "mailbox status";
    case 3:
      return "mail system status";
    case 4:
      return "network and routing status";
    case 5:
      return "mail delivery protocol status";
    case 6:
      return "message content or media status";
    case 7:
      return "security or policy status";
    default:
      return nullptr;
  }
}

struct CombinedEntry {
  int code;
  const char* status;
  const char* meaning;
  // The command the meaning is about; nullptr: any. Where the command answered is known, an
  // entry for another one does not match (a 250 2.1.0 to RCPT accepted a recipient, whatever
  // its status's "sender address" says), and where it is not (mailtap explain) the first
  // entry of the pair does.
  const char* verb = nullptr;
};

constexpr const char* kMessageRefused =
    "the message refused by policy (its content, headers or sender; the text says which)";
constexpr const char* kNotAuthorized =
    "refused by policy: delivery not authorized (at RCPT most often relaying denied; at the end "
    "of data the message itself)";
constexpr const char* kChunkAccepted =
    "chunk accepted; the message is not yet: the reply to its LAST chunk says whether it is";

// Pairs whose joint meaning says more than the two halves read separately.
constexpr std::array kCombined{
    CombinedEntry{530, "5.7.0", "authentication or encryption required before this command"},
    CombinedEntry{530, "5.7.11", "encryption required for the requested authentication mechanism"},
    CombinedEntry{535, "5.7.8", "authentication failed: user name or password not accepted"},
    CombinedEntry{235, "2.7.0", "authentication succeeded"},
    CombinedEntry{220, "2.0.0", "ready to start TLS"},
    CombinedEntry{421, "4.7.0", "closing the connection for a security or policy reason"},
    CombinedEntry{454, "4.7.0", "TLS or authentication temporarily unavailable"},
    CombinedEntry{550, "5.1.1", "recipient mailbox does not exist"},
    // RFC 3463 X.7.1, "delivery not authorized, message refused": at RCPT most often relaying
    // denied; in answer to the message (DATA, BDAT) the message itself was refused (a content
    // filter, a header check, the sender's policy), its recipients having been accepted.
    CombinedEntry{550, "5.7.1", "refused by policy (relaying denied or not authorized)", "RCPT"},
    CombinedEntry{554, "5.7.1", "refused by policy (relaying denied or not authorized)", "RCPT"},
    CombinedEntry{550, "5.7.1", kMessageRefused, "DATA"},
    CombinedEntry{554, "5.7.1", kMessageRefused, "DATA"},
    CombinedEntry{550, "5.7.1", kMessageRefused, "BDAT"},
    CombinedEntry{554, "5.7.1", kMessageRefused, "BDAT"},
    CombinedEntry{550, "5.7.1", kNotAuthorized},
    CombinedEntry{554, "5.7.1", kNotAuthorized},
    CombinedEntry{552, "5.3.4", "message too big for the server"},
    CombinedEntry{250, "2.1.0", "sender accepted", "MAIL"},
    CombinedEntry{250, "2.1.5", "recipient accepted", "RCPT"},
    CombinedEntry{250, "2.1.0", "recipient accepted", "RCPT"},
    CombinedEntry{250, "2.1.5", "sender accepted", "MAIL"},
    // A BDAT chunk's 250 accepts the chunk; only the LAST one's accepts the message (RFC 3030).
    CombinedEntry{250, "2.0.0", kChunkAccepted, kBdatChunkVerb},
    CombinedEntry{250, "", kChunkAccepted, kBdatChunkVerb},
    CombinedEntry{250, "2.0.0", "message accepted", kBdatLastVerb},
    CombinedEntry{250, "2.0.0", "message accepted", "DATA"},
    CombinedEntry{250, "2.0.0", "chunk accepted (the message, if it was the LAST chunk)", "BDAT"},
    CombinedEntry{250, "2.0.0", "accepted"},
    CombinedEntry{221, "2.0.0", "closing connection"},
};

bool parse_part(std::string_view s, int& out) {
  if (s.empty() || s.size() > 3) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

std::string basic_code_meaning(int code) {
  if (code < 200 || code > 599) return "";
  for (const auto& e : kBasic)
    if (e.code == code) return e.meaning;
  const char* klass = reply_class(code / 100);
  if (klass == nullptr) return "";
  return std::string(klass) + " (" + reply_category((code / 10) % 10) + ")";
}

std::string basic_code_class(int code) {
  if (code < 200 || code > 599) return "";
  const char* klass = reply_class(code / 100);
  return klass != nullptr ? klass : "";
}

EnhancedStatusMeaning enhanced_status_meaning(std::string_view status) {
  EnhancedStatusMeaning m;
  const auto dot1 = status.find('.');
  if (dot1 == std::string_view::npos) return m;
  const auto dot2 = status.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos) return m;
  int klass = 0, subject = 0, detail = 0;
  if (!parse_part(status.substr(0, dot1), klass) ||
      !parse_part(status.substr(dot1 + 1, dot2 - dot1 - 1), subject) ||
      !parse_part(status.substr(dot2 + 1), detail))
    return m;
  switch (klass) {
    case 2:
      m.klass = "success";
      break;
    case 4:
      m.klass = "persistent transient failure";
      break;
    case 5:
      m.klass = "permanent failure";
      break;
    default:
      return m;
  }
  m.valid = true;
  const char* subj = subject_meaning(subject);
  m.subject = subj != nullptr ? subj : "unregistered subject";
  for (const auto& e : kEnhanced) {
    if (e.subject == subject && e.detail == detail) {
      m.detail = e.meaning;
      return m;
    }
  }
  m.detail = subj != nullptr ? std::string(subj) + ", unregistered detail"
                             : std::string("unregistered status");
  return m;
}

namespace {

// An entry for BDAT is one for either chunk (kBdatChunkVerb, kBdatLastVerb) too.
bool answers(const CombinedEntry& e, std::string_view verb) {
  if (e.verb == nullptr) return false;
  const std::string_view own = e.verb;
  return own == verb || (own == "BDAT" && verb.substr(0, 5) == "BDAT ");
}

const CombinedEntry* combined_entry(int code, std::string_view enhanced, std::string_view verb) {
  auto find = [&](auto&& fits) -> const CombinedEntry* {
    for (const auto& e : kCombined)
      if (e.code == code && enhanced == e.status && fits(e)) return &e;
    return nullptr;
  };
  // The entry for the command answered, then one for any command; where the command is not
  // known, the first entry of the pair.
  if (const CombinedEntry* e = find([&](const CombinedEntry& c) { return answers(c, verb); }))
    return e;
  if (const CombinedEntry* e = find([](const CombinedEntry& c) { return c.verb == nullptr; }))
    return e;
  // (A code without a status keeps its own meaning then.)
  if (verb.empty()) return find([](const CombinedEntry& c) { return *c.status != '\0'; });
  return nullptr;
}

}  // namespace

std::string explain_reply(int code, std::string_view enhanced, std::string_view verb) {
  if (const CombinedEntry* e = combined_entry(code, enhanced, verb)) return e->meaning;
  std::string out = basic_code_meaning(code);
  if (enhanced.empty()) return out;
  const auto m = enhanced_status_meaning(enhanced);
  if (!m.valid) return out;
  if (!out.empty()) out += "; ";
  out += m.detail;
  return out;
}

namespace {

// A reply a known server words in its own way: matched by code (0: any), enhanced status
// ("": any) and a phrase of its text (case-insensitive; "": the code and status alone are
// that server's, so they match without any text).
struct WordingEntry {
  int code;
  const char* status;
  const char* phrase;
  const char* server;
  const char* meaning;  // nullptr: the generic meaning
  const char* fix;
};

constexpr const char* kGmailBadCredentials =
    "Gmail did not accept the user name and password (or the OAuth token)";
constexpr const char* kGmailBadCredentialsFix =
    "Use the full address as user name and an app password (Google refuses the account password "
    "for SMTP); for XOAUTH2, use a fresh access token with the scope https://mail.google.com/ (a "
    "gcloud token has no Gmail scope).";
// mailtap's own AUTH (--auth-user) failed, and the client's next MAIL is told so: whatever the
// server answered (quoted in the text), mailtap's 454, so that a relaying MTA defers its mail.
constexpr const char* kOwnAuthFailed =
    "mailtap could not authenticate the session itself (--auth-user), so it answered the "
    "client's MAIL with this temporary failure; the text says why (quoting the server's reply "
    "when it refused) and what to change";
constexpr const char* kOwnAuthFailedFix =
    "Fix what the text names: the user name or the password (read at start: then restart the "
    "proxy), or the --oauth2-token-cmd (it runs again for the next session). The message was "
    "not refused: a relaying MTA keeps it queued and delivers it on a later try. To go on in "
    "this session, type AUTH yourself.";

constexpr const char* kMockPlainTextFix =
    "Point the client at the mock without STARTTLS (swaks: no --tls; smtplib: no starttls(); "
    "msmtp: tls off; curl: no --ssl-reqd). A session whose client used STARTTLS to mailtap "
    "(proxy --local-tls) cannot be served by the mock: mailtap replay plays it.";

constexpr const char* kUndeclaredSmtputf8Fix =
    "Add SMTPUTF8 to MAIL FROM (MAIL FROM:<jörg@example.org> SMTPUTF8) when the server lists "
    "SMTPUTF8 in its EHLO reply; if it does not, use an ASCII address (RFC 6531 section 3.4).";

constexpr const char* kBetweenChunksFix =
    "Send the rest of the message as BDAT <size> chunks and end it with BDAT <size> LAST (BDAT 0 "
    "LAST ends it with no more text), or drop it with RSET and start again; send other commands "
    "(VRFY, MAIL, RCPT, EHLO, AUTH) before the first chunk or after the last.";

constexpr const char* kAfterRefusedChunkFix =
    "Send RSET (the message cannot be ended now: a BDAT would end the session), then send the "
    "message again: smaller, or with DATA, if mailtap refused the chunk past the server's SIZE.";

constexpr const char* kPastServerSizeFix =
    "Send RSET (the server still has the transaction open), then send the message smaller: "
    "without its largest attachments, or as a link; the chunks of a message may together come "
    "to the server's SIZE (from its EHLO reply) less mailtap's margin (8 KiB, or 1/64 of SIZE "
    "when larger).";

constexpr const char* kUnreadableServerSizeFix =
    "Send RSET (the server still has the transaction open), then send the message with DATA "
    "instead of BDAT; or have the server's SIZE line fixed to SIZE and a number (RFC 1870).";

constexpr const char* kNoRoomForBdatFix =
    "Send RSET (the server still has the transaction open), then send the message with DATA "
    "instead of BDAT: mailtap relays it as it came, and the server judges its size.";

constexpr const char* kSendAsFix =
    "Use the mailbox's own address in MAIL FROM and From:, or have the admin grant Send As "
    "permission.";

// Wordings from Google's and Microsoft's documentation of their submission servers
// (smtp.gmail.com:587/465, smtp.office365.com:587), Postfix's smtpd, Exim, and mailtap's own
// replies.
constexpr std::array kWordings{
    // mailtap's restatement of a server's refusal of its own AUTH comes first: the server's
    // words it quotes (Gmail's 454 4.7.0 rate limit) are not the reply's.
    WordingEntry{454, "4.7.0", " refused auth ", "mailtap", kOwnAuthFailed, kOwnAuthFailedFix},
    WordingEntry{454, "4.7.0", " broke off auth ", "mailtap", kOwnAuthFailed, kOwnAuthFailedFix},
    WordingEntry{454, "4.7.0", ": cannot auth ", "mailtap", kOwnAuthFailed, kOwnAuthFailedFix},
    WordingEntry{454, "4.7.0", "so mailtap could not authenticate", "mailtap", kOwnAuthFailed,
                 kOwnAuthFailedFix},
    WordingEntry{534, "5.7.9", "application-specific password", "Gmail",
                 "Gmail needs an app password: 2-Step Verification is on for this account",
                 "Create an app password (https://myaccount.google.com/apppasswords) and use it "
                 "instead of the account password, or authenticate with OAuth 2.0 (AUTH XOAUTH2, "
                 "scope https://mail.google.com/)."},
    WordingEntry{534, "5.7.14", "", "Gmail",
                 "Gmail blocked the sign-in as suspicious (\"Please log in with your web "
                 "browser\")",
                 "Sign in once at https://mail.google.com from the same network and confirm the "
                 "security alert, then use an app password or OAuth 2.0 (XOAUTH2)."},
    WordingEntry{535, "5.7.8", "badcredentials", "Gmail", kGmailBadCredentials,
                 kGmailBadCredentialsFix},
    WordingEntry{535, "5.7.8", "username and password not accepted", "Gmail", kGmailBadCredentials,
                 kGmailBadCredentialsFix},
    WordingEntry{454, "4.7.0", "too many login attempts", "Gmail",
                 "Gmail is rate-limiting failed logins for this account or address",
                 "Stop retrying for a while (an hour or so), fix the credentials first, then try "
                 "once."},
    WordingEntry{530, "5.7.0", "authentication required", "Gmail",
                 "Gmail relays mail only for an authenticated user",
                 "AUTH before MAIL FROM (after STARTTLS: Gmail offers AUTH only over TLS)."},
    WordingEntry{550, "5.4.5", "sending limit", "Gmail",
                 "the account reached Gmail's daily sending limit",
                 "Wait up to 24 hours; Google Workspace has higher limits."},
    WordingEntry{550, "5.7.26", "unauthenticated", "Gmail",
                 "refused because the sender domain's SPF/DKIM/DMARC checks failed",
                 "Send from an address of a domain whose SPF, DKIM and DMARC records authorise "
                 "this server."},
    WordingEntry{535, "5.7.139", "smtpclientauthentication is disabled", "Microsoft 365",
                 "SMTP AUTH is disabled for the tenant (or for this mailbox)",
                 "A tenant admin enables it: Set-TransportConfig -SmtpClientAuthenticationDisabled "
                 "$false, or per mailbox Set-CASMailbox USER -SmtpClientAuthenticationDisabled "
                 "$false; or authenticate with OAuth 2.0 (AUTH XOAUTH2, scope "
                 "https://outlook.office.com/SMTP.Send)."},
    WordingEntry{535, "5.7.139", "basic authentication is disabled", "Microsoft 365",
                 "the tenant blocks password (Basic) authentication, e.g. by security defaults",
                 "Authenticate with OAuth 2.0 (AUTH XOAUTH2, scope "
                 "https://outlook.office.com/SMTP.Send offline_access), or ask the admin for an "
                 "exception."},
    WordingEntry{535, "5.7.139", "credentials were incorrect", "Microsoft 365",
                 "Microsoft 365 did not accept the user name and password",
                 "Use the full address (UPN) as user name and check the password; with MFA on, "
                 "password AUTH fails: use OAuth 2.0 (XOAUTH2)."},
    WordingEntry{535, "5.7.3", "authentication unsuccessful", "Microsoft 365",
                 "Microsoft 365 refused the authentication",
                 "Check the user name (the full address) and password, and that SMTP AUTH is "
                 "enabled for the mailbox (Set-CASMailbox -SmtpClientAuthenticationDisabled "
                 "$false); Microsoft 365 offers only LOGIN and XOAUTH2."},
    WordingEntry{535, "5.7.139", "", "Microsoft 365",
                 "Microsoft 365 refused the authentication (its text says why: SMTP AUTH "
                 "disabled, Basic authentication disabled, or wrong credentials)",
                 "Check the user name (the full address) and password; if SMTP AUTH or Basic "
                 "authentication is disabled, authenticate with OAuth 2.0 (AUTH XOAUTH2, scope "
                 "https://outlook.office.com/SMTP.Send) or ask the admin to enable SMTP AUTH."},
    WordingEntry{550, "5.7.30", "basic authentication is not supported", "Microsoft 365",
                 "Microsoft 365 no longer accepts password (Basic) AUTH for client submission",
                 "Authenticate with OAuth 2.0: AUTH XOAUTH2 with a token for "
                 "https://outlook.office.com/SMTP.Send (offline_access for a refresh token)."},
    WordingEntry{530, "5.7.57", "", "Microsoft 365",
                 "Microsoft 365 relays mail only for an authenticated user",
                 "AUTH before MAIL FROM (Microsoft 365 offers AUTH only after STARTTLS)."},
    WordingEntry{550, "5.7.60", "", "Microsoft 365",
                 "the mailbox has no permission to send as this sender address", kSendAsFix},
    WordingEntry{554, "5.2.252", "", "Microsoft 365",
                 "the mailbox may not send as this sender address (SendAsDenied)", kSendAsFix},
    // mailtap's own timeouts of the client (docs/dialogue.md, Timeouts): the client went quiet
    // or was too slow, not a fault of the connection (X.4.2's "bad connection").
    WordingEntry{421, "4.4.2", "waiting for the client", "mailtap",
                 "mailtap closed the connection: the client sent nothing within its idle "
                 "limit (--timeout-command, or --timeout-data inside a message)",
                 "The client went quiet: have it send its next command (or QUIT) sooner, or "
                 "raise the limit."},
    WordingEntry{421, "4.4.2", "line was not complete within", "mailtap",
                 "mailtap closed the connection: a line the client had begun was not complete "
                 "within its limit (--timeout-command, or --timeout-data inside a message)",
                 "The client sent too slowly or stopped mid-line: end each line with CRLF, or "
                 "raise the limit."},
    WordingEntry{421, "", "does not offer starttls", "mailtap",
                 "mailtap refused to continue in plain text: the server offers no STARTTLS",
                 "Check the port: 587 offers STARTTLS, 465 is implicit TLS (--tls implicit); "
                 "`mailtap probe HOST:PORT` shows what the server offers."},
    WordingEntry{421, "", "possible starttls command injection", "mailtap",
                 "the server (or something on the path) sent bytes between its 220 to STARTTLS "
                 "and the TLS handshake",
                 "Do not trust this path: a man in the middle can inject commands into the "
                 "encrypted session. Try another network."},
    WordingEntry{421, "", "before mailtap's handshake began", "mailtap",
                 "the server's own TLS stack ended the link right behind its 220 to STARTTLS, "
                 "before mailtap's handshake began: its TLS set-up cannot start a handshake",
                 "Tell the server's administrator: its TLS configuration is broken (its log "
                 "says why)."},
    // Before "self-signed" and "not for": these quote CA names the server chose, which may say
    // anything, and the server's own words.
    WordingEntry{421, "", "the server's own certificate, not a ca", "mailtap",
                 "the CAs mailtap trusts (--ca-file) hold the server's own certificate, which is "
                 "no CA and not self-signed, so it cannot be the end of a chain",
                 "Put the root CA that issued it in --ca-file; a server's certificate works as a "
                 "pin only when it is self-signed."},
    WordingEntry{421, "", "but that certificate is not a ca", "mailtap",
                 "the server sent the certificate its own names as issuer, but that one is no "
                 "CA, so it cannot have issued it",
                 "Tell the server's administrator: its certificate must come from a CA; "
                 "--insecure only for tests."},
    WordingEntry{421, "", "stale intermediate", "mailtap",
                 "the server's certificate does not verify with the intermediate CA found for "
                 "it: most often the server sends an old one of that name, after its CA re-keyed",
                 "Tell the server's administrator to send its CA's current intermediate; "
                 "--insecure only for tests."},
    WordingEntry{421, "", "partial-label wildcard", "mailtap",
                 "the server's certificate names the host only with a wildcard in part of a "
                 "label (m*.example.com), which mailtap, like browsers, does not accept",
                 "Its issuer must name the host, or use a whole-label wildcard (*.example.com); "
                 "--insecure only for tests."},
    WordingEntry{421, "", "not a root", "mailtap",
                 "the CAs mailtap trusts (--ca-file or the system store) hold an intermediate CA "
                 "of the server's chain, not the root CA it leads to, and mailtap trusts a chain "
                 "only up to a root",
                 "Put the root CA the reply names in --ca-file (the intermediate may stay)."},
    WordingEntry{421, "", "did not send and", "mailtap",
                 "the server sent its certificate without the CA certificate that issued it, "
                 "and mailtap does not trust that CA",
                 "Most often the server's chain lacks its intermediate CA: its administrator "
                 "must fix it there; a --ca-file holding the intermediate and its root works "
                 "around it on this machine. If it is your own root CA, give it with --ca-file."},
    WordingEntry{421, "", "self-signed", "mailtap",
                 "the server's certificate is self-signed, so mailtap could not verify it",
                 "Give the certificate (or its CA) with --ca-file; --insecure only for tests."},
    WordingEntry{421, "", "untrusted ca", "mailtap",
                 "the server's certificate is issued by a CA mailtap does not trust",
                 "Give that CA with --ca-file, or install it in the system store; --insecure "
                 "only for tests."},
    WordingEntry{421, "", "expired on", "mailtap",
                 "the server's certificate has expired, so mailtap refused the link",
                 "Tell the server's administrator; --insecure only for tests."},
    WordingEntry{421, "", "not for", "mailtap",
                 "the server's certificate is for another name than the one mailtap connected to",
                 "Connect by the name the certificate lists, or give it with --tls-name."},
    WordingEntry{421, "", "timed out", "mailtap", "mailtap gave up waiting for the server",
                 "Check host and port (`mailtap probe HOST:PORT`), firewalls, and "
                 "--timeout-connect."},
    // mailtap's refusals of what the client sent: the generic advice for their codes would
    // send the user to fix the order of commands, or to use the proxy they are already using.
    WordingEntry{503, "5.5.1", "already authenticated as", "mailtap",
                 "mailtap authenticated this session itself (--auth-user or "
                 "--oauth2-token-cmd), so it refused the client's own AUTH",
                 "Turn the client's own AUTH off (msmtp: auth off; swaks: no --auth; curl: no "
                 "--user; smtplib: no login(); s-nail: smtp-auth=none; git send-email: no "
                 "--smtp-user; PHPMailer: SMTPAuth = false), or run the proxy without "
                 "--auth-user so that the client authenticates."},
    // mailtap's refusals between the chunks of a BDAT message (dialogue.md, BDAT): the generic
    // 503/504 advice ("commands out of order", "use a parameter the EHLO reply lists") would
    // not say that the message is still open and how to end or drop it.
    // The same after a chunk of the message was refused (by the server, or by mailtap past its
    // SIZE): a BDAT now ends the session, so only RSET is the way on.
    WordingEntry{503, "5.5.1", "a chunk of this message was refused, so drop it with rset",
                 "mailtap",
                 "mailtap answered this command itself, not forwarded: it came between the "
                 "chunks of a BDAT message after one of its chunks was refused, so the server "
                 "holds the message without that chunk; a BDAT now would end the session",
                 kAfterRefusedChunkFix},
    WordingEntry{503, "5.5.1", "may come between the chunks of a message", "mailtap",
                 "mailtap answered this command itself, not forwarded: it came between the "
                 "chunks of a BDAT message, where only BDAT, RSET, NOOP and QUIT may come (some "
                 "servers, Exim, would then take the next chunk's text as commands); the "
                 "message is still open",
                 kBetweenChunksFix},
    WordingEntry{504, "5.5.4", "bdat 0 without last between the chunks", "mailtap",
                 "mailtap answered this BDAT 0 itself, not forwarded: an empty chunk that does "
                 "not end the message, between its chunks (Exim refuses it and then takes the "
                 "next chunk's text as commands); the message is still open",
                 kBetweenChunksFix},
    WordingEntry{503, "5.5.1", "data after bdat in one transaction", "mailtap",
                 "mailtap answered this DATA itself, not forwarded: the message was begun with "
                 "BDAT, and RFC 3030 does not let DATA add to it; the message is still open",
                 kBetweenChunksFix},
    // mailtap's refusal of a chunk that would take the message past the server's SIZE: the
    // generic 552 advice (a mailbox or message too large at the server) would not say that the
    // server never saw the chunk, nor that its transaction is still open.
    WordingEntry{552, "5.3.4", "past the server's size", "mailtap",
                 "mailtap answered this BDAT itself and discarded its chunk, not forwarded: the "
                 "chunk would have taken the message past the SIZE the server advertised (less "
                 "a margin for the header fields the server adds), and a server at its size "
                 "limit may stop reading a chunk there and take the rest as commands (Exim "
                 "4.96 does); the server's transaction is still open",
                 kPastServerSizeFix},
    // The same refusal where the server's SIZE gives no number mailtap can read ("SIZE none").
    WordingEntry{552, "5.3.4", "size that mailtap cannot read", "mailtap",
                 "mailtap answered this BDAT itself and discarded its chunk, not forwarded: the "
                 "server's EHLO reply has a SIZE line without a number mailtap can read, so any "
                 "chunk might cross the server's limit, and a server at its size limit may stop "
                 "reading a chunk there and take the rest as commands (Exim 4.96 does); the "
                 "server's transaction is still open",
                 kUnreadableServerSizeFix},
    // The same refusal where the server's SIZE is no larger than mailtap's margin: no chunk can
    // pass, so a smaller message is no way on.
    WordingEntry{552, "5.3.4", "leaves no room for bdat through mailtap", "mailtap",
                 "mailtap answered this BDAT itself and discarded its chunk, not forwarded: the "
                 "server's SIZE is no larger than the margin mailtap keeps below it for the "
                 "header fields the server adds, so no chunk can go through mailtap; the "
                 "server's transaction is still open",
                 kNoRoomForBdatFix},
    // mailtap's refusals of a client's line it would not relay: the generic 500 ("syntax error,
    // command unrecognized") would send the user to the server's command set.
    WordingEntry{500, "5.5.2", "nul byte in command line", "mailtap",
                 "mailtap refused this command line itself, not forwarded: it holds a NUL byte, "
                 "which ends a C string in many servers, so what mailtap records and what the "
                 "server acts on could differ",
                 "Send the command again without the NUL byte."},
    WordingEntry{500, "5.5.2", "line too long (limit", "mailtap",
                 "mailtap refused this command line itself, not forwarded: it is longer than the "
                 "limit the text names (RFC 5321 allows a command line 512 octets)",
                 "Send the command in a shorter line."},
    // mailtap's refusal of an AUTH line with a user name and password typed in clear: the
    // generic 501 ("fix the command's arguments") would not say how to type them.
    WordingEntry{501, "5.5.4", "auth takes one argument after the mechanism", "mailtap",
                 "mailtap refused this AUTH line itself, not forwarded: it has more than one "
                 "argument after the mechanism (most often a user name and a password typed in "
                 "clear), and RFC 4954 allows only the initial response, in base64, so no server "
                 "takes it",
                 "Run the proxy with --assist-auth and type AUTH PLAIN USER PASSWORD (or AUTH "
                 "LOGIN, then the user name and the password at its prompts); or type the line "
                 "mailtap encode plain USER prints."},
    WordingEntry{530, "5.7.0", "--local-tls", "mailtap",
                 "mailtap runs with --local-tls starttls: the client must start TLS to mailtap "
                 "before it may AUTH",
                 "Make the client issue STARTTLS to mailtap (msmtp: tls on and tls_starttls on; "
                 "swaks: --tls; curl: --ssl-reqd; smtplib: starttls()) and trust mailtap's local "
                 "certificate, or run the proxy without --local-tls."},
    // Older records say "STARTTLS is not needed: mailtap already encrypts the link to ...".
    WordingEntry{502, "5.5.1", "encrypts the link to", "mailtap",
                 "mailtap answered the client's STARTTLS itself: without --local-tls it offers "
                 "the client no TLS (its side is plain text on this machine) and encrypts the "
                 "link to the server itself",
                 "For a client that requires TLS (msmtp tls on, mutt ssl_force_tls, s-nail "
                 "smtp-use-starttls, PHPMailer SMTPSecure), run mailtap with --local-tls "
                 "starttls (or implicit) and make the client trust mailtap's local certificate."},
    // With --tls none (older records end at "(--tls none)").
    WordingEntry{502, "5.5.1", "relayed in plain text (--tls none)", "mailtap",
                 "mailtap answered the client's STARTTLS itself: with --tls none it relays in "
                 "plain text and, without --local-tls, offers the client no TLS either",
                 "For a client that requires TLS, run mailtap with --local-tls starttls (or "
                 "implicit) and make the client trust mailtap's local certificate (the link to "
                 "the server stays plain text under --tls none)."},
    // mailtap mock's refusals of a client's STARTTLS: its 502 where the recorded client got
    // mailtap's, its 421 where the recording has another command (older mocks: "answers in
    // plain text", no more).
    WordingEntry{502, "5.5.1", "mailtap mock answers in plain text", "mailtap",
                 "mailtap mock answered the client's STARTTLS itself: the mock speaks plain text "
                 "only, as the proxy did to the recorded client",
                 kMockPlainTextFix},
    WordingEntry{421, "4.3.0", "mailtap mock answers in plain text", "mailtap",
                 "mailtap mock closed the connection: the client sent STARTTLS where the "
                 "recording has another command, and the mock speaks plain text only",
                 kMockPlainTextFix},
    WordingEntry{454, "4.7.0", "no access token", "mailtap",
                 "mailtap's --oauth2-token-cmd gave no usable access token, so mailtap did not "
                 "authenticate",
                 "Run the token command by hand as the proxy's user: its error is quoted after "
                 "\"no access token for AUTH:\" and in mailtap's log; fix it (an expired refresh "
                 "token needs a new sign-in) and connect again."},
    // Postfix's own words (smtpd), for the two refusals of text that is not ASCII.
    WordingEntry{553, "5.6.7", "must declare smtputf8", "Postfix",
                 "the address holds characters that are not ASCII, and MAIL FROM was sent "
                 "without the SMTPUTF8 parameter that allows them (RFC 6531)",
                 kUndeclaredSmtputf8Fix},
    WordingEntry{500, "5.5.2", "bad utf-8 syntax", "Postfix",
                 "the command holds octets that are not UTF-8 (often Latin-1 typed in a "
                 "terminal that is not set to UTF-8), which this server refuses",
                 "Send the command in valid UTF-8: set the terminal (or the client) to UTF-8, "
                 "or type the address in ASCII; a non-ASCII address also needs SMTPUTF8 on "
                 "MAIL FROM."},
    // Exim 4.96 refuses a BDAT message whose header lines end in a bare LF (DATA it takes).
    WordingEntry{552, "", "not crlf terminated", "Exim",
                 "the server refused the message because its lines end in a bare LF, not CRLF "
                 "(Exim checks a BDAT message's header lines); mailtap passes the message's line "
                 "ends as the client sent them",
                 "End every line of the message with CRLF (\\r\\n): fix the program that "
                 "writes it (a file with Unix line ends sent as BDAT chunks as it is); the size is "
                 "not the problem."},
    WordingEntry{421, "4.3.0", "recording failed", "mailtap",
                 "mailtap's recording failed (a full disk, a lost database), so it accepts no new "
                 "sessions and ends the running ones, saying what the server has that the record "
                 "lacks",
                 "Free the disk or fix the database (the reason is in the reply and mailtap's "
                 "log), then restart the proxy; --record-failure=continue relays unrecorded "
                 "instead."},
};

struct AdviceEntry {
  int code;            // 0: any code
  const char* status;  // "": the code's advice, whatever its status
  const char* fix;
  const char* verb = nullptr;  // the command it answers ("BDAT": either chunk); nullptr: any
};

bool answers(const AdviceEntry& e, std::string_view verb) {
  if (e.verb == nullptr) return true;
  const std::string_view own = e.verb;
  return own == verb || (own == "BDAT" && verb.substr(0, 5) == "BDAT ");
}

constexpr const char* kContentRefusedFix =
    "The server accepted the recipients but refused the message itself: its text says what "
    "(a content filter, a header, the sender); change that before sending it again.";

constexpr const char* kRelayFix =
    "The server does not relay this for you: authenticate (AUTH) before MAIL FROM, or use an "
    "address the account may send from and to.";
constexpr const char* kSmallerFix =
    "Send a smaller message: EHLO's SIZE line gives the server's limit in octets.";
constexpr const char* kMailboxFullFix =
    "The recipient's mailbox is full: try later or another address.";
constexpr const char* kParametersFix =
    "Remove the MAIL/RCPT parameters the server did not list in its EHLO reply.";

// Generic advice, most specific first: a code with its status, a status alone, a code alone.
constexpr std::array kAdvice{
    AdviceEntry{530, "5.7.0",
                "Authenticate first (AUTH, after STARTTLS); if the server asks for STARTTLS, "
                "connect through mailtap proxy, which encrypts the link for you."},
    AdviceEntry{550, "5.7.1", kContentRefusedFix, "DATA"},
    AdviceEntry{554, "5.7.1", kContentRefusedFix, "DATA"},
    AdviceEntry{550, "5.7.1", kContentRefusedFix, "BDAT"},
    AdviceEntry{554, "5.7.1", kContentRefusedFix, "BDAT"},
    AdviceEntry{550, "5.7.1", kRelayFix},
    AdviceEntry{554, "5.7.1", kRelayFix},
    AdviceEntry{550, "5.7.30",
                "From Microsoft 365 this means password (Basic) AUTH is no longer accepted: "
                "use OAuth 2.0 (AUTH XOAUTH2, scope https://outlook.office.com/SMTP.Send). "
                "Elsewhere: the message asked for REQUIRETLS, which a server on the way lacks."},
    AdviceEntry{0, "5.1.1", "Check the recipient address: the mailbox does not exist."},
    AdviceEntry{0, "5.1.3",
                "Check the address syntax: MAIL FROM:<user@example.com>, with angle brackets."},
    AdviceEntry{0, "5.1.7",
                "Check the sender address syntax: MAIL FROM:<user@example.com>, with angle "
                "brackets."},
    AdviceEntry{0, "5.2.2", kMailboxFullFix},
    AdviceEntry{0, "4.2.2", kMailboxFullFix},
    AdviceEntry{0, "5.3.4", kSmallerFix},
    AdviceEntry{0, "5.6.7", kUndeclaredSmtputf8Fix},
    AdviceEntry{0, "5.2.3", kSmallerFix},
    AdviceEntry{0, "5.5.4", kParametersFix},
    AdviceEntry{0, "5.7.8",
                "Check the user name (often the full address) and the password or token; many "
                "providers want an app password or OAuth 2.0 for SMTP."},
    AdviceEntry{0, "5.7.9",
                "Use another AUTH mechanism from the EHLO reply, or an app password / OAuth 2.0."},
    AdviceEntry{0, "5.7.11", "Start TLS (STARTTLS) before this AUTH mechanism."},
    AdviceEntry{0, "5.7.10", "Start TLS (STARTTLS) before this command."},
    AdviceEntry{0, "5.7.13", "The account is disabled: ask its provider or administrator."},
    AdviceEntry{0, "5.7.23",
                "The sender domain's SPF record does not authorise this server: send from an "
                "address the server may send for."},
    AdviceEntry{0, "5.7.25",
                "The sending address needs reverse DNS (a PTR record): not something a "
                "submission client can fix; use your provider's submission server."},
    AdviceEntry{0, "5.7.26",
                "Send from a domain whose SPF, DKIM and DMARC records authorise this server."},
    AdviceEntry{0, "4.7.0", "Try again later; if it persists, the server's policy refuses you."},
    AdviceEntry{0, "5.7.0", "The server's policy refuses this; read the text for the reason."},
    AdviceEntry{334, "",
                "Answer with the base64 the mechanism asks for (a line alone), or \"*\" to "
                "cancel."},
    AdviceEntry{354, "", "Send the message, then a line with a single \".\" to end it."},
    AdviceEntry{421, "",
                "The server is closing the connection: reconnect later; the text says why."},
    AdviceEntry{450, "", "Temporary: try again later (greylisting answers so the first time)."},
    AdviceEntry{451, "", "Temporary: try again later."},
    AdviceEntry{452, "",
                "Temporary: try again later, or with fewer recipients in one transaction."},
    AdviceEntry{454, "", "Temporary: try again later; TLS or authentication is not available now."},
    AdviceEntry{500, "",
                "Check the command's spelling and length (lines end with CRLF, at most 512 "
                "octets)."},
    AdviceEntry{501, "",
                "Check the arguments: MAIL FROM:<address>, RCPT TO:<address>, base64 where AUTH "
                "expects it."},
    AdviceEntry{502, "", "The server does not know this command: check its EHLO reply."},
    AdviceEntry{503, "",
                "Commands out of order: EHLO, (STARTTLS, EHLO,) AUTH, MAIL FROM, RCPT TO, DATA."},
    AdviceEntry{504, "", "Use a parameter or AUTH mechanism the EHLO reply lists."},
    AdviceEntry{530, "", "Authenticate (AUTH) before this command."},
    AdviceEntry{534, "", "Use a stronger AUTH mechanism, an app password, or OAuth 2.0."},
    AdviceEntry{535, "", "Check the user name (often the full address) and the password or token."},
    AdviceEntry{538, "", "Start TLS (STARTTLS) before this AUTH mechanism."},
    AdviceEntry{550, "", "Permanent: the text says whether the mailbox or a policy refused it."},
    AdviceEntry{551, "", "The recipient is not here: use the address the text gives."},
    AdviceEntry{552, "", "Send a smaller message, or fewer recipients."},
    AdviceEntry{553, "", "Use a valid address the account may use: <user@example.com>."},
    AdviceEntry{554, "", "Permanent: read the text for the reason; do not resend unchanged."},
    AdviceEntry{555, "", kParametersFix},
    AdviceEntry{556, "", "The recipient's domain accepts no mail: check the address."},
};

bool contains_ignoring_case(std::string_view text, std::string_view phrase) {
  if (phrase.empty()) return true;
  if (phrase.size() > text.size()) return false;
  auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
  for (std::size_t i = 0; i + phrase.size() <= text.size(); ++i) {
    std::size_t k = 0;
    while (k < phrase.size() && lower(text[i + k]) == lower(phrase[k])) ++k;
    if (k == phrase.size()) return true;
  }
  return false;
}

// The wording a known server (or mailtap) uses for this reply, if the text has it.
const WordingEntry* known_wording(int code, std::string_view enhanced, std::string_view text,
                                  ReplyFrom from) {
  for (const auto& w : kWordings) {
    if ((w.code != 0 && w.code != code) || (*w.status != '\0' && enhanced != w.status) ||
        !contains_ignoring_case(text, w.phrase))
      continue;
    // mailtap's own reasons are recognised only in its own replies.
    if (std::string_view(w.server) == "mailtap" &&
        (from == ReplyFrom::server ||
         (from == ReplyFrom::unknown && !contains_ignoring_case(text, "mailtap:") &&
          !contains_ignoring_case(text, "mailtap mock:"))))
      continue;
    return &w;
  }
  return nullptr;
}

// The most specific advice for the code and enhanced status: both, then the status alone, then
// the code alone; nullptr when none is listed.
const char* listed_fix(int code, std::string_view enhanced, std::string_view verb = {}) {
  if (!enhanced.empty()) {
    for (const auto& e : kAdvice)
      if (e.code == code && enhanced == e.status && answers(e, verb)) return e.fix;
    for (const auto& e : kAdvice)
      if (e.code == 0 && enhanced == e.status) return e.fix;
  }
  for (const auto& e : kAdvice)
    if (e.code == code && *e.status == '\0') return e.fix;
  return nullptr;
}

// 552 is "exceeded storage allocation" (RFC 5321), and most servers send it for a message too
// big; some use it for other refusals (Exim's "552 Message header not CRLF terminated"), where
// size advice would mislead. Without text, the usual meaning stands.
constexpr const char* kOther552Fix =
    "Permanent: the text names what the server refused, which is not the message's size; change "
    "that before trying again.";

bool text_speaks_of_size(std::string_view text) {
  if (text.find_first_not_of("0123456789-. \r\n\t") == std::string_view::npos) return true;
  constexpr std::array kSizeWords{
      "size",  "big",    "large", "limit",    "exceed",   "quota",     "storage",    "full",
      "space", "octets", "bytes", "too many", "too much", "recipient", "allocation", "length"};
  return std::any_of(kSizeWords.begin(), kSizeWords.end(),
                     [text](const char* w) { return contains_ignoring_case(text, w); });
}

// What any unlisted failure of its class calls for.
std::string generic_fix(int code) {
  if (code / 100 == 4) return "Temporary: try again later.";
  if (code / 100 == 5) return "Permanent: change what the text points at before trying again.";
  return {};
}

}  // namespace

ReplyAdvice advise_reply(int code, std::string_view enhanced, std::string_view text, ReplyFrom from,
                         std::string_view verb) {
  ReplyAdvice a;
  a.meaning = explain_reply(code, enhanced, verb);
  if (const WordingEntry* w = known_wording(code, enhanced, text, from)) {
    a.server = w->server;
    if (w->meaning != nullptr) a.meaning = w->meaning;
    a.fix = w->fix;
    return a;
  }
  if (code / 100 == 2) return a;  // nothing to fix
  const char* fix = listed_fix(code, enhanced, verb);
  // The size advice 552 has alone, where its text names another cause.
  if (code == 552 && fix == listed_fix(552, {}) && !text_speaks_of_size(text)) fix = kOther552Fix;
  a.fix = fix != nullptr ? std::string(fix) : generic_fix(code);
  return a;
}

}  // namespace mailtap::tools
