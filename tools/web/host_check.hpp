// DNS rebinding defence: a page on evil.example whose name later resolves to 127.0.0.1 reaches
// mailtap's web server with "Host: evil.example:8025". Only requests naming the listening
// address, a loopback address or a localhost name are served.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mailtap::tools::web {

struct HostPolicy {
  std::string listen_address;  // IP literal the server listens on, without brackets
  std::uint16_t port = 0;      // the listening port
};

// True if the Host header value names this server: "localhost", a loopback
// IP literal, or the listening address (any IP literal when listening on 0.0.0.0 or ::, which
// only --allow-remote permits: a literal cannot be rebound), with no port or the listening port.
// False for a missing or malformed value.
bool host_allowed(std::string_view host_header, const HostPolicy& policy);

enum class HostVerdict {
  serve,
  misdirected,  // 421: names another server, or nothing names one
  bad_request,  // 400: more than one Host header (RFC 9112 section 3.2)
};

// Whether a request names this server: `request_target` as on the request line, `host_headers`
// the value of every Host header it has. An absolute-form target ("http://127.0.0.1:8025/...")
// names the server by its authority, which must pass host_allowed as a Host header would (an
// authority without a port names its scheme's default port: 80, 443), and so must a Host header
// beside it; an origin-form target ("/...") by its one Host header.
HostVerdict check_request_host(std::string_view request_target,
                               const std::vector<std::string_view>& host_headers,
                               const HostPolicy& policy);

}  // namespace mailtap::tools::web
