#include "tools/reply_codes.hpp"

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
};

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
    CombinedEntry{550, "5.7.1", "refused by policy (relaying denied or not authorized)"},
    CombinedEntry{554, "5.7.1", "refused by policy (relaying denied or not authorized)"},
    CombinedEntry{552, "5.3.4", "message too big for the server"},
    CombinedEntry{250, "2.1.0", "sender accepted"},
    CombinedEntry{250, "2.1.5", "recipient accepted"},
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

std::string explain_reply(int code, std::string_view enhanced) {
  for (const auto& e : kCombined)
    if (e.code == code && enhanced == e.status) return e.meaning;
  std::string out = basic_code_meaning(code);
  if (enhanced.empty()) return out;
  const auto m = enhanced_status_meaning(enhanced);
  if (!m.valid) return out;
  if (!out.empty()) out += "; ";
  out += m.detail;
  return out;
}

}  // namespace mailtap::tools
