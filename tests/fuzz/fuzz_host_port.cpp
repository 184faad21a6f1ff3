// Addresses as users type them (proxy/net/endpoint.hpp): --upstream's host:port, --listen's
// (and mock's, web's) ADDR:PORT, --tls-name and --ehlo-name. What parse_host_port reads is a
// host the resolver can look up and, written back as host_port_label writes it, reads the same;
// an unbracketed IPv6 address with a port is refused with its bracketed form, which reads as
// that address and port; --listen takes loopback only unless --allow-remote, and the address it
// takes, shown as endpoint_label shows it, is taken again as the same. A --tls-name or an EHLO name
// is a host (an EHLO address literal once unbracketed).
//
// Input: the text as typed.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "proxy/net/endpoint.hpp"

namespace {

using namespace mailtap::net;

// An unbracketed IPv6 address and port ("::1:2525") is refused with the bracketed form, which
// reads as that address and port.
void check_refusal(std::string_view text) {
  const std::string refusal = unbracketed_ipv6_refusal(text);
  if (refusal.empty()) return;
  const std::size_t colon = text.rfind(':');
  const std::string bracketed =
      "[" + std::string(text.substr(0, colon)) + "]" + std::string(text.substr(colon));
  const auto parsed = parse_host_port(bracketed);
  if (!parsed || !parsed->port || refusal.find(bracketed) == std::string::npos) std::abort();
  if (parsed->host != text.substr(0, colon)) std::abort();
}

void check_host_port(std::string_view text) {
  const auto parsed = parse_host_port(text);
  if (!parsed) return;
  if (!is_host(parsed->host)) std::abort();
  const std::string again = parsed->port ? host_port_label(parsed->host, *parsed->port)
                                         : host_port_label(parsed->host, 25);
  const auto reread = parse_host_port(again);
  if (!reread || reread->host != parsed->host || reread->port != parsed->port.value_or(25))
    std::abort();
}

void check_listen(std::string_view text) {
  asio::ip::tcp::endpoint local;
  const std::string local_error =
      parse_listen_address(text, false, "--listen", "it carries passwords", local);
  asio::ip::tcp::endpoint any;
  const std::string any_error = parse_listen_address(text, true, "--listen", "", any);
  if (local_error.empty()) {
    if (!local.address().is_loopback()) std::abort();
    if (!any_error.empty() || any != local) std::abort();  // --allow-remote only widens
  } else if (!local_error.starts_with("--listen ") && !local_error.starts_with("refusing")) {
    std::abort();  // the error names the option
  }
  if (!any_error.empty()) return;
  // Port 0 (any free port) is a listener's only: a server's host:port refuses it.
  if (any.port() != 0 && !parse_host_port(text)) std::abort();
  if (!unbracketed_ipv6_refusal(text, true).empty()) std::abort();
  asio::ip::tcp::endpoint reread;
  if (!parse_listen_address(endpoint_label(any), true, "--listen", "", reread).empty() ||
      reread != any)
    std::abort();
}

void check_names(std::string_view text) {
  // A --tls-name may end in the dot of an absolute name, which the host it names is without.
  if (is_tls_name(text) && !is_host(text) &&
      !(text.ends_with('.') && is_host(text.substr(0, text.size() - 1))))
    std::abort();
  if (!is_ehlo_name(text)) return;
  if (text.starts_with('[')) {
    std::string_view literal = text.substr(1, text.size() - 2);
    if (literal.size() > 5 && literal[4] == ':') literal.remove_prefix(5);  // the IPv6: tag
    if (!is_host(literal)) std::abort();
  } else if (!is_tls_name(text)) {
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  check_refusal(text);
  check_host_port(text);
  check_listen(text);
  check_names(text);
  return 0;
}
