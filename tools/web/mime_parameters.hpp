// The parameters of a MIME header field (Content-Type's charset=, name=, boundary=;
// Content-Disposition's filename=: RFC 2045 section 5.1, RFC 2183) as mail programs write them.
// A value is a token or a quoted-string, whose quoted-pairs (`\"`, `\\`) stand for the octet
// after the backslash (RFC 5322 section 3.2.4). A file name that is not ASCII comes in RFC
// 2231's forms (Thunderbird, Outlook, Apple Mail, Python's email package): `filename*=UTF-8''
// %E2%82%AC.txt`, or cut into sections `filename*0*=...; filename*1*=...`. One pass over the
// field, whatever it holds.
#pragma once

#include <string>
#include <string_view>

namespace mailtap::tools::web {

// The value of the parameter `name` (lower case) in `field_value` (all after the field's
// colon), its quoted-pairs undone; "" when the field has none. The first of two wins.
std::string mime_parameter(std::string_view field_value, std::string_view name);

struct MimeParameterText {
  std::string value;
  // From RFC 2231's forms: text already, not a field's octets with RFC 2047 encoded words.
  bool extended = false;
};

// As mime_parameter, but RFC 2231's forms of the parameter win when the field has them:
// `name*` (charset'language'percent-encoded octets), or the sections name*0, name*1, ...
// (those written name*K* percent-encoded), joined from 0 up to the first missing one and
// converted to UTF-8 from the charset the first names (charset.hpp's iconv, as a part's text).
// No charset: the octets when they are UTF-8. Other octets without one, or a charset iconv does
// not know: the plain parameter when there is one, else the octets, `extended` only if they are
// UTF-8 (others are read as a plain value's octets are).
MimeParameterText mime_text_parameter(std::string_view field_value, std::string_view name);

}  // namespace mailtap::tools::web
