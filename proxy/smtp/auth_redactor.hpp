// Decodes one SASL exchange (RFC 4954) and renders it for the record with every secret removed.
// Default deny: a mechanism or line it does not understand is rendered fully redacted.
//
// Rendering grammar (what lands in RedactedLine::text / ::decoded):
//   * Every removed value is the token `<redacted N bytes>` (N = octets removed, always
//     "bytes"), or `<redacted N bytes fp=XXXXXXXXXXXXXXXX>` when a fingerprint key is set
//     (for `mailtap decode` only: `<secret, N bytes>`, or the quoted value; see Display).
//   * A line that carries no secret keeps its wire text (redacted=false) and `decoded` holds a
//     printable view of its base64 content. A line that carries one is rendered as `[fields]`
//     (after the kept "AUTH <mech>" for an initial response, after "334 " for a challenge) and
//     `decoded` holds the same fields without brackets. A line that cannot be understood is
//     `[<redacted N bytes>]` with empty `decoded`.
//   * Quoted values are escaped: `"` and `\` get a backslash, bytes outside 0x20..0x7e become
//     \xHH. So text and decoded are always printable ASCII: no log or terminal injection. The
//     one exception: the AUTH line's words are split as the dialogue splits a command line
//     (first_word: any run of SP/HTAB/VT/FF, leading ones too), and the separators before and
//     after the verb are kept in text as the client sent them; those between the mechanism and
//     a rendered initial response become one space ("AUTH\vPLAIN [...]").
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "proxy/smtp/sasl_mechanism.hpp"

namespace mailtap::smtp {

// Whether a decoded AUTH LOGIN prompt asks for the password ("Password:", "password", and every
// variant servers send hold "pass", in any case). The record's redaction and replay's check of a
// live prompt against the recorded one must decide this the same way: both call this.
bool login_prompt_asks_for_password(std::string_view decoded_prompt);
// Whether it asks for the user name instead ("Username:", "User Name": "user" or "name", in any
// case, and no "pass"). A prompt that asks for neither says nothing: its answer is labelled by
// position. Shared with mailtap's own LOGIN client, which answers by these two.
bool login_prompt_asks_for_user(std::string_view decoded_prompt);

struct RedactionPolicy {
  // --redact-users: user names are secrets too. They are rendered as redaction tokens and never
  // kept in memory: user() stays empty, so nothing that flows to storage can carry them.
  bool redact_users = false;
  // When set, each secret is summarised as a keyed fingerprint (HMAC-SHA-256, truncated) so an
  // audit can tell that two sessions used the same password without storing it.
  std::optional<std::array<std::uint8_t, 32>> fingerprint_key;
  // How a removed value is rendered. The record always uses `redact`. `mailtap decode` shows a
  // person what they pasted: `describe` is "<secret, N bytes>", `reveal` the value itself,
  // quoted and escaped like any other (--show-secret). Nothing that records may set these.
  enum class Display : std::uint8_t { redact, describe, reveal };
  Display display = Display::redact;
};

struct RedactedLine {
  std::string text;       // what may be recorded/printed in place of the wire line (no CRLF)
  bool redacted = false;  // text differs from the wire line because something was removed
  // Human view of base64 content with secrets removed ("Username:"), may be empty.
  std::string decoded;
};

// Sans-IO and exception-free apart from allocation failure; work is linear in the line length.
// Decoded secrets are wiped (OPENSSL_cleanse) before each call returns. The caller still owns the
// wire bytes it passes in and must wipe its own buffers.
class AuthRedactor {
 public:
  explicit AuthRedactor(RedactionPolicy policy = {});

  // The client's "AUTH <mech> [initial-response]" line, without CRLF. Starts an exchange (even
  // when the line is malformed: the server's reply still has to be passed to finish()).
  RedactedLine begin(std::string_view auth_line);
  // A "334 ..." challenge line from the server, without CRLF. Any other reply ends the exchange:
  // pass its code to finish() instead.
  RedactedLine server_challenge(std::string_view reply_line);
  // Any client line while the exchange is in progress (a response, or "*" to cancel), no CRLF.
  RedactedLine client_response(std::string_view line);
  // The exchange ended with this reply code (235 success, 5xx/4xx failure, or after a cancel).
  // Ignored when no exchange is in progress.
  void finish(int reply_code);

  bool in_progress() const { return in_progress_; }
  // The user name learned from the exchange (authcid / LOGIN user / CRAM user / OAuth user /
  // SCRAM n=), decoded. Empty if none was learned, and always empty under redact_users.
  // Once authenticated() it is frozen: a later AUTH (which servers refuse with 503) cannot
  // change who the session is recorded as.
  const std::string& user() const { return user_; }
  // True once an exchange finished with 235. Sticky for the life of the object.
  bool authenticated() const { return authenticated_; }
  // Upper-cased mechanism of the current/last exchange ("PLAIN"), empty if the AUTH line had no
  // registered SASL mechanism name (any other word is taken for a secret). Frozen once
  // authenticated(), like user().
  const std::string& mechanism() const { return mechanism_; }

 private:
  enum class Payload : std::uint8_t { keep, fields, deny };
  struct Rendering {
    Payload kind = Payload::deny;
    std::string body;  // decoded view (keep) or bracket contents (fields, deny)
  };

  // LOGIN: what the 334 that the next response answers asked for.
  enum class LoginPrompt : std::uint8_t { none, user, password, other };

  // Sub-parsers return a default Rendering (deny, empty body) for anything they do not accept;
  // respond()/server_challenge() turn that into a redaction of the wire bytes.
  Rendering respond(std::string_view wire, bool initial);
  Rendering dispatch(int k, bool after_oauth_error, LoginPrompt prompt, std::string_view data);
  Rendering login_answer(int k, LoginPrompt prompt, std::string_view data);
  Rendering respond_plain(std::string_view data);
  Rendering respond_login(std::string_view data);
  Rendering respond_cram(std::string_view data);
  Rendering respond_oauth(std::string_view data);
  Rendering respond_oauthbearer(std::string_view data);
  Rendering respond_scram_first(std::string_view data);
  Rendering respond_scram_final(std::string_view data);
  Rendering challenge(std::string_view data);
  Rendering scram_challenge(std::string_view data);
  std::string oauth_field(std::string_view key, std::string_view value) const;
  Rendering deny(std::string_view wire) const;
  std::string token(std::string_view secret) const;
  std::string user_field(std::string_view user) const;
  void learn_user(std::string_view user);

  RedactionPolicy policy_;
  bool in_progress_ = false;
  bool authenticated_ = false;
  std::string mechanism_;
  std::string user_;
  // How this exchange's messages are read: opaque until an AUTH line names a mechanism mailtap
  // reads, and under any name it does not.
  MechanismFamily family_ = MechanismFamily::opaque;
  // LOGIN: what the last 334 asked for; none once a response has answered it.
  LoginPrompt login_prompt_ = LoginPrompt::none;
  int step_ = 0;                     // client responses seen in this exchange, initial included
  int challenges_ = 0;               // 334 lines seen in this exchange
  bool cancelled_ = false;           // the client sent "*"
  bool oauth_error_ = false;         // OAuth: the last 334 was an error, expecting the dummy reply
  bool scram_server_first_ = false;  // SCRAM: server-first-message seen
  bool scram_server_final_ = false;  // SCRAM: server-final-message seen
};

}  // namespace mailtap::smtp
