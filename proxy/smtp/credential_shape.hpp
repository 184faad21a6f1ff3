// What a SASL credential looks like once it has left its AUTH exchange: a line a person pasted
// where the server reads a command (the dialogue keeps it out of the record), or bytes already
// in the record (`mailtap audit` reports them). Pure functions over bytes.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proxy/smtp/secret.hpp"

namespace mailtap::smtp {

// True if `decoded` is an RFC 4616 PLAIN message: authzid NUL authcid NUL passwd, each UTF-8
// text without control characters (C0, DEL, C1), authcid and passwd not empty. `user` gets the
// authcid. What `mailtap audit` calls a PLAIN blob: a record holds many base64 lines of
// attachments, and about one line of random octets in 70,000 has the byte shape below.
bool is_plain_message(std::string_view decoded, std::string& user);

// The byte shape of a PLAIN message, whatever the encoding of its texts: two NULs, authcid and
// passwd not empty, no ASCII control character; octets >= 0x80 as they come (a client may send
// a password in Latin-1). Wider than is_plain_message on purpose: the dialogue redacts by it.
bool has_plain_message_shape(std::string_view decoded);

// Wider still, for a line without a verb only: a PLAIN message built by hand and slightly wrong
// ("alice NUL pw" without the leading NUL, "NUL NUL pw" without the user, a third NUL and more
// after the password): one to three NULs, something after the last, no other ASCII control
// character. A person who pasted it meant a password all the same.
bool has_hand_made_plain_shape(std::string_view decoded);

// The length of the Bearer scheme and its space at the start of an XOAUTH2/OAUTHBEARER `auth=`
// value ("Bearer ", in any case: RFC 7235 §2.1, which RFC 6750 uses), 0 if it does not start
// so. The redactor removes what follows; audit and the dialogue's check of a pasted line look
// for it by this one rule.
std::size_t bearer_scheme_length(std::string_view auth_value);

// The RFC 6750 §2.1 b64token at the start of `after_scheme` (what follows "Bearer "), after any
// run of spaces, as find_bearer_token reads it: the run of ALPHA DIGIT "-" "." "_" "~" "+" "/"
// and then of "=". What the redactor and its fuzz target
// take as the token when they look for it elsewhere in a response.
std::string_view bearer_token_at(std::string_view after_scheme);

// True if `s` holds an OAuth bearer token in clear ("auth=Bearer ", the scheme in any case,
// followed by something other than a redaction or the end of the field); `at` gets where the
// marker starts.
bool find_bearer_token(std::string_view s, std::size_t& at);

// The base64 alphabet (RFC 4648 §4, padding included), by octet: a table, as audit asks it of
// every octet of the record.
inline constexpr std::array<bool, 256> kBase64Alphabet = [] {
  std::array<bool, 256> table{};
  for (unsigned char c :
       std::string_view("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="))
    table[c] = true;
  return table;
}();

// A base64 alphabet character (RFC 4648 §4, padding included).
constexpr bool is_base64_char(char c) {
  return kBase64Alphabet[static_cast<unsigned char>(c)];
}

// A character of the URL-safe base64 alphabet (RFC 4648 §5) that the standard one lacks: "-" for
// "+", "_" for "/". A token copied from a web page or a JWT tool may come so.
constexpr bool is_base64url_only_char(char c) {
  return c == '-' || c == '_';
}

// A character of a base64 word in either alphabet: the standard one (padding included) or the
// URL-safe one.
constexpr bool is_base64_word_char(char c) {
  return is_base64_char(c) || is_base64url_only_char(c);
}

// `word` decoded as a word a person pasted is read: the standard or the URL-safe alphabet (or
// both), padded or not; nullopt if it is no base64. Into a Secret: it may hold a password.
std::optional<Secret> decode_base64_word(std::string_view word);

// A base64 word of a text that decodes to a well-formed credential (find_credential_words).
struct CredentialWord {
  std::size_t at = 0;    // where the word starts in the text
  std::size_t size = 0;  // its length, padding included
  bool plain = false;    // decodes to a PLAIN message's byte shape (has_plain_message_shape)
  std::string user;      // then its authcid
  bool bearer = false;   // decodes to a response with a bearer token (find_bearer_token)
};

// The base64 words of `text` that decode (decode_base64_word) to a well-formed credential: the
// byte shape of a PLAIN message, or a bearer token. A word is a run of is_base64_word_char
// ended by its padding ("AUTH=<blob>" is "AUTH=", then the blob), of 7 characters or more,
// that stands_alone. The one rule by which the dialogue keeps such a word of a line
// with a verb out of the record ("VRFY <blob>", "MAIL FROM:<a@b> AUTH=<blob>") and `mailtap
// audit` reports one outside a message body. Narrower than is_encoded_credential (a line
// without a verb), as a verb's arguments are base64-shaped words far more often than a pasted
// line is.
std::vector<CredentialWord> find_credential_words(std::string_view text);

// The word [at, at + size) of `text` stands as an argument of its own: at the start or after
// white space, a line end, "<", ":", "=", "(", a quote, "," or ";", and at the end or before
// white space, a line end, ">", ")", a quote, "," or ";". A credential is pasted so ("VRFY
// <blob>", "AUTH=<blob>"); a run of base64 letters inside a longer word ("bounce-AC176ACB@",
// "DESKTOP-ALNQAHE") decodes to a PLAIN shape now and then by chance and is no secret.
bool stands_alone(std::string_view text, std::size_t at, std::size_t size);

// What of a client's line with a verb (no CRLF) is kept out of the record, as [begin, end)
// spans in order, not overlapping: each find_credential_words word, and each bearer token in
// clear (find_bearer_token) from its "auth=" to the next space, tab or ^A. Nothing of what
// `mailtap audit` reports as a leak in a record is left outside them.
std::vector<std::pair<std::size_t, std::size_t>> credential_spans(std::string_view line);

// True if `word` is one base64 token, in the standard or the URL-safe alphabet, padded or not,
// that decodes to the shape of a PLAIN message (has_hand_made_plain_shape, which takes the
// well-formed ones too) or to XOAUTH2/OAUTHBEARER with a bearer token: a
// credential whatever its position. Unknown means secret: a line of an attachment read as a
// command that happens to have the shape is redacted too, which costs the record nothing it
// needs.
bool is_encoded_credential(std::string_view word);

// True if `line` (one client line without its CRLF, one without an SMTP verb) holds a SASL
// credential outside an AUTH exchange, as a person pastes or mistypes one: an OAuth bearer
// token in clear (find_bearer_token), a word of it (between spaces and tabs) that
// is_encoded_credential ("  <blob> ", "<blob> junk", "AUHT PLAIN <blob>"), its words joined
// (a blob with a space typed into it), or a find_credential_words word ("x=<blob>"). The dialogue's
// rule for what it keeps out of the record; audit's scan looks at the same words (runs of base64
// characters) by the same shapes.
bool line_holds_credential(std::string_view line);

}  // namespace mailtap::smtp
