// Text of a recorded message as UTF-8 for the web page: a MIME part's body in the charset its
// Content-Type names, and RFC 2047 encoded words (=?charset?B?...?=, =?charset?Q?...?=) in
// header fields. The conversions are glibc's iconv; nothing here is mailtap's own table.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace mailtap::tools::web {

// `text` in `charset` (a MIME charset name, any case) as UTF-8; a byte sequence the charset
// does not define becomes U+FFFD. nullopt when iconv does not know the charset, or the name is
// not a plain token. ISO-8859-1 is read as windows-1252, its superset, as mail programs and
// browsers do (C1 control characters in mail are windows-1252 text mislabelled).
std::optional<std::string> convert_to_utf8(std::string_view text, std::string_view charset);

// As convert_to_utf8, but `text` unchanged when no charset was given, it is UTF-8 or US-ASCII,
// or the charset is unknown (the caller then sends the bytes as they are, base64 unless UTF-8).
std::string to_utf8(std::string_view text, std::string_view charset);

// `octets`, the start of a longer text in `charset`, without the partial character it may end
// in when that charset is UTF-8 (or none is given, or US-ASCII): a text cut anywhere stays valid
// UTF-8, so it is still sent as text rather than as base64. Other charsets are left as they are
// (iconv turns a partial character at the end into one U+FFFD).
void drop_partial_character(std::string& octets, std::string_view charset);

// A header field's value as UTF-8, with its RFC 2047 encoded words decoded (white space
// between two adjacent encoded words dropped). A word in an unknown charset, or malformed,
// stays as written. The octets around the words stay as they are when the value is UTF-8
// (RFC 6532); otherwise their charset is undeclared, and they are read as windows-1252, as mail
// programs read them (a byte it does not define becomes U+FFFD), so the result is UTF-8
// throughout. For where text is needed whatever the octets (the name a part is saved under): a
// guess, which the page does not show as the field (decode_encoded_words_only).
std::string decode_encoded_words(std::string_view value);

// As decode_encoded_words, but the octets around the words are left as they are, UTF-8 or not:
// what the page shows of a field whose octets are not UTF-8, its UTF-8 as characters and every
// other octet as \xHH, marked, as it shows a text part that declares no charset. A word's text
// is whole UTF-8 characters (convert_to_utf8), and no UTF-8 character starts with a continuation
// octet, so reading the result as UTF-8 reads each word as its text and each octet beside it as
// it was sent: no character is made of a word's octets and the octets beside it.
std::string decode_encoded_words_only(std::string_view value);

}  // namespace mailtap::tools::web
