// What SMTP reply codes mean, from a table built into mailtap: every basic code of RFC 5321
// (plus RFC 4954 AUTH, RFC 7504 null MX, RFC 3207 STARTTLS uses) and the RFC 3463 enhanced
// status codes with the later IANA registrations (RFC 4954, 5248, 7372, 7505, 8601, 8689).
// Used by `mailtap show` to explain each reply, by `mailtap audit` to label failures, by
// `mailtap explain` and by the proxy's --transcript --explain.
#pragma once

#include <string>
#include <string_view>

namespace mailtap::tools {

// Meaning of a three-digit reply code; a generic meaning from its first two digits when the
// code is not registered; "" when it is not a reply code at all.
std::string basic_code_meaning(int code);
// "permanent failure: do not repeat as is" for 5yz; "" when it is not a reply code.
std::string basic_code_class(int code);

struct EnhancedStatusMeaning {
  bool valid = false;   // "x.y.z" with x in {2,4,5}, y and z 0..999
  std::string klass;    // "permanent failure"
  std::string subject;  // "security or policy status"
  std::string detail;   // "delivery not authorized, message refused"; generic if unregistered
};
EnhancedStatusMeaning enhanced_status_meaning(std::string_view status);

// One line for a reply: a combined explanation when the pair has a well-known meaning
// (530 5.7.0 -> "authentication or encryption required before this command"), else the
// basic meaning followed by the enhanced detail. `enhanced` may be "". `verb`, the command the
// reply answers ("RCPT") where it is known, else "": a meaning that speaks of a command follows
// the one answered (250 2.1.0 to RCPT: "recipient accepted").
// A reply to BDAT is told apart by the chunk it answers where the reader knows it (the record,
// read in order: AnsweredCommands): these verbs for the last chunk and one before it; "BDAT"
// where that is not known.
inline constexpr const char* kBdatLastVerb = "BDAT LAST";
inline constexpr const char* kBdatChunkVerb = "BDAT (not LAST)";
std::string explain_reply(int code, std::string_view enhanced, std::string_view verb = {});

// What a reply means and what usually fixes it. `text` is the reply's text (any lines, with or
// without the code): where it carries the wording of a well-known server (Gmail, Microsoft
// 365), the meaning and the advice are that server's.
struct ReplyAdvice {
  std::string meaning;  // one line, as explain_reply() (or the server's specific meaning)
  std::string fix;      // what usually fixes it, what to send next for 334 and 354; "" for success
  std::string
      server;  // "Gmail", "Microsoft 365", "Postfix", "mailtap" when `text` matched its wording
};
// Who sent the reply, where the caller knows it (a recorded event's direction): a server's reply
// is never given mailtap's own meaning, whatever its text says; typed-in text (`mailtap
// explain`) is taken as mailtap's only when it carries mailtap's "mailtap:" prefix.
enum class ReplyFrom { unknown, server, mailtap };
ReplyAdvice advise_reply(int code, std::string_view enhanced, std::string_view text = {},
                         ReplyFrom from = ReplyFrom::unknown, std::string_view verb = {});

}  // namespace mailtap::tools
