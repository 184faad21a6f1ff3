#include "tools/web/http_response.hpp"

#include <algorithm>
#include <iterator>
#include <new>

#include "tools/json_writer.hpp"

namespace mailtap::tools::web {

std::string_view status_text(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 413:
      return "Content Too Large";
    case 421:
      return "Misdirected Request";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
  }
  return "Unknown";
}

bool write_streamed_body(const StreamedBody& body, const StreamedBody::Sink& sink,
                         std::string& error) {
  try {
    return body.write(sink, error);
  } catch (const std::bad_alloc&) {
    error = "out of memory";
  } catch (const std::exception& e) {
    error = e.what();
  }
  return false;
}

Response error_response(int status, std::string_view message) {
  Response r;
  r.status = status;
  JsonWriter w;
  w.begin_object().key("error").value(message).key("status").value(status).end_object();
  r.body = w.take() + "\n";
  return r;
}

Response method_refusal(std::string_view method) {
  static constexpr std::string_view kKnown[] = {"POST",    "PUT",   "DELETE", "CONNECT",
                                                "OPTIONS", "TRACE", "PATCH"};
  const bool known = std::find(std::begin(kKnown), std::end(kKnown), method) != std::end(kKnown);
  Response r = known ? error_response(405, "read-only: only GET and HEAD are served")
                     : error_response(501, "unknown method: only GET and HEAD are served");
  r.headers.emplace_back("Allow", "GET, HEAD");
  return r;
}

Response unreadable_request_response(int status) {
  switch (status) {
    case 413:
      return error_response(413, "the request's head is too large");
    case 505:
      return error_response(505, "only HTTP/1.0 and HTTP/1.1 are served");
    case 500:
      return error_response(500, "the request could not be read");
  }
  return error_response(400, "malformed request");
}

namespace {
// A header value without line breaks: nothing from a recording can add a header or a body.
std::string header_value(std::string_view v) {
  std::string out;
  for (char c : v)
    if (c != '\r' && c != '\n' && c != '\0') out += c;
  return out;
}
}  // namespace

std::string serialize_head(const Response& r, bool streaming) {
  std::string head = "HTTP/1.1 " + std::to_string(r.status) + " ";
  head += status_text(r.status);
  head += "\r\nContent-Type: " + header_value(r.content_type) + "\r\n";
  if (!streaming) {
    const std::uint64_t length = r.streamed ? r.streamed->length : r.body.size();
    head += "Content-Length: " + std::to_string(length) + "\r\n";
  }
  head += "Content-Security-Policy: ";
  head += r.csp;
  head += "\r\nX-Content-Type-Options: nosniff\r\n";
  head += "Referrer-Policy: no-referrer\r\n";
  head += "X-Frame-Options: DENY\r\n";
  head += "Cross-Origin-Opener-Policy: same-origin\r\n";
  head += "Cross-Origin-Resource-Policy: same-origin\r\n";
  head += "Cache-Control: no-store\r\n";
  for (const auto& [name, value] : r.headers) head += name + ": " + header_value(value) + "\r\n";
  head += "Connection: close\r\n\r\n";
  return head;
}

}  // namespace mailtap::tools::web
