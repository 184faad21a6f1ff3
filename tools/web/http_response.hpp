// One HTTP response of `mailtap web`, and the security headers every response carries: the page
// shows mail and who authenticated, so nothing may frame it, sniff it, cache it, leak its
// address in a Referer, or load anything from elsewhere; and no CORS header is ever sent.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mailtap::tools::web {

// The page's policy: its own script and style only, data: images, fetch/EventSource to itself,
// no frames (a message's HTML part is read with fetch and shown as text and structure).
inline constexpr std::string_view kPageCsp =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-src 'none'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'";

// A message's HTML part at its own URL, sent as an attachment: should a browser render it anyway,
// no script, no remote loads (images, fonts, styles from the sender's servers would tell them the
// mail was read), no forms, and in no frame.
inline constexpr std::string_view kMessagePartCsp =
    "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'";

// A body passed on as it is read rather than held (a message's source): Content-Length says
// `length`, and `write` hands the octets to `sink` in bounded pieces after the head. `sink`
// returns false once the connection is gone; `write` returns false if it could not supply all
// `length` octets (a body file removed meanwhile), and the response then ends short.
// A body sent as it is read: `write` hands `sink` its octets in order, and returns false with
// `error` set if it could not supply them all. The server counts what it sends against `length`
// (announced as Content-Length): a body that comes out shorter or longer ends the connection
// there, never padded or sent past its length.
struct StreamedBody {
  using Sink = std::function<bool(std::string_view)>;
  std::uint64_t length = 0;
  std::function<bool(const Sink& sink, std::string& error)> write;
};

// body.write with what it throws (out of memory; a system error) taken as a failure said in
// `error`: a streamed body is sent on a thread of its own, where an exception would end the
// process, and with `proxy --web` the relay with it.
bool write_streamed_body(const StreamedBody& body, const StreamedBody::Sink& sink,
                         std::string& error);

struct Response {
  int status = 200;
  std::string content_type = "application/json; charset=utf-8";
  std::string body;
  std::optional<StreamedBody> streamed;                      // set: sent instead of `body`
  std::vector<std::pair<std::string, std::string>> headers;  // besides the standard ones
  std::string_view csp = kPageCsp;
};

// "Not Found" for 404; "Unknown" for codes mailtap does not send.
std::string_view status_text(int status);

// A JSON error body {"error": "...", "status": N}.
Response error_response(int status, std::string_view message);

// The reply to any method but GET and HEAD (RFC 9110 section 9.1: a general-purpose server
// supports both): 405 with Allow: GET, HEAD for a method HTTP defines (RFC 9110's, and
// PATCH), which mailtap knows and refuses (the page is read-only); 501 for any other, which it
// does not know (FOO, PROPFIND, M-SEARCH; methods are case-sensitive: "get" too). Neither says
// anything of the record or echoes the method.
Response method_refusal(std::string_view method);

// The reply to a request CivetWeb could not read (its http_error callback): `status` as CivetWeb
// chose it (400 malformed, 413 head too large, 505 HTTP version), 400 for a code not in
// status_text. A fixed text: nothing of the request is in it.
Response unreadable_request_response(int status);

// Status line and headers (ending with the empty line), with Content-Length of the body (or of
// the streamed body) unless `streaming` (server-sent events: no length, the connection closes at
// the end).
std::string serialize_head(const Response& r, bool streaming = false);

}  // namespace mailtap::tools::web
