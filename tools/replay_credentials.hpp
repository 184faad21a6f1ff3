// Fills the secrets the record left out of a session's AUTH exchanges, so `mailtap replay` can
// send them again: PLAIN (RFC 4616) and LOGIN lines are rebuilt from the user name and the
// password the person running the replay supplies. Other mechanisms are refused: their
// responses depend on server challenges that will differ.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "tools/recorded_dialogue.hpp"

namespace mailtap::tools {

struct AuthNeeds {
  bool password = false;  // some redacted step holds a password
  bool user = false;      // some step needs a user name the record does not hold: --auth-user
  std::string user_why;   // why, for the first such step ("event 7: ...")
  std::string mechanism;  // the (last) mechanism whose lines need filling, e.g. "PLAIN"
  std::string refusal;    // non-empty: the recording cannot be replayed, and why (also for a
                          // redacted line outside AUTH, which nothing can fill in)
};

// Only the AUTH exchanges that went upstream count: an AUTH line mailtap answered itself
// (client_to_mailtap) is sent again as recorded, and the replay's mailtap answers it again.
AuthNeeds auth_needs(const RecordedDialogue& dialogue);

// A session mailtap authenticated itself (proxy --auth-user) is authenticated again by the
// replay's Dialogue, with the proxy's own code. Empty, or why that cannot be done: the
// mechanism took an OAuth token (replay has no --oauth2-token-cmd), the replay has no TLS
// (mailtap sends credentials only inside TLS), or no user name is known (`auth_user` empty
// and none recorded).
std::string mailtap_login_refusal(const RecordedDialogue& dialogue, std::string_view auth_user,
                                  bool tls);

// Replaces every redacted SASL step's bytes with wire bytes built from `user` (empty: the
// recorded user name) and `password`; an AUTH line mailtap answered itself stays as recorded. False
// with `error` set if a step cannot be rebuilt. The filled lines go to ClientStep::filled (Secrets,
// wiped with the dialogue). A LOGIN answer gets what its recorded prompt asked for: the recorded
// field, except that an answer recorded as a password at a prompt that asked for the user name
// (recordings made before each answer was labelled by its own prompt) gets the user name, never the
// password.
bool fill_secrets(RecordedDialogue& dialogue, std::string_view user, std::string_view password,
                  std::string& error);

// The mechanism of the AUTH exchange in progress at event `seq` of the recording (a 334
// challenge's), upper-cased; "" if no exchange is.
std::string auth_mechanism_at(const RecordedDialogue& dialogue, std::uint64_t seq);

// Whether a 334 challenge from the server being replayed to asks what the recorded one asked,
// before the recorded answer (a filled-in secret, maybe) goes out to it. Lines without CRLF.
// LOGIN compares meaning: a user name or a password, told apart by the decoded prompt as the
// record's redactor tells them (an answer sent to the wrong prompt is recorded as the wrong
// field, so a password would be kept as a user name). Any other mechanism's response answers
// exactly its challenge, so any difference counts. "" when they agree, else what differs
// ("the server asked for a password where the recording asked for a user name"), never
// quoting a challenge.
std::string challenge_mismatch(std::string_view mechanism, std::string_view recorded_line,
                               std::string_view replay_line);

// Fields of a redacted rendering such as `authzid="" authcid="alice" password=<redacted 12
// bytes>`: quoted values unescaped; a redaction token gives `redacted` with its octet count.
struct RenderedField {
  std::string key;
  std::string value;
  bool redacted = false;
  std::size_t redacted_size = 0;
};
bool parse_rendered_fields(std::string_view text, std::vector<RenderedField>& out);

}  // namespace mailtap::tools
