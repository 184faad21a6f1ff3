#include "proxy/options/upstream_options.hpp"

#include <algorithm>

#include "proxy/net/ca_file.hpp"
#include "proxy/options/vocabulary_option.hpp"

namespace mailtap::options {

void UpstreamOptions::add_to(CLI::App& app, const Help& help) {
  add_vocabulary_option<net::TlsMode>(
      app, "--tls", tls,
      "starttls | implicit | none (default: implicit for port 465, else starttls)");
  app.add_option("--ca-file", ca_file,
                 "PEM file of CAs to trust instead of the system store (SSL_CERT_FILE, "
                 "/etc/ssl/certs); a file that is missing or holds no certificate is refused "
                 "at start");
  app.add_option("--tls-name", tls_name,
                 "Name for SNI and certificate verification (default: " + help.host + ")");
  app.add_flag("--insecure", insecure, help.insecure);
  app.add_option("--ehlo-name", ehlo_name, help.ehlo_name + " (default: host name)");
}

std::string UpstreamOptions::apply_to(net::UpstreamTarget& target) const {
  target.mode = tls.value_or(net::default_tls_mode(target.port));
  target.tls_name = tls_name.empty() ? target.host : tls_name;
  target.ehlo_name = ehlo_name.empty() ? net::default_ehlo_name() : ehlo_name;
  // A space or any control character (a NUL or an escape from a MAILTAP_EHLO_NAME) would make
  // the EHLO line say something else than a name.
  const bool one_word = !target.ehlo_name.empty() &&
                        std::none_of(target.ehlo_name.begin(), target.ehlo_name.end(), [](char c) {
                          return static_cast<unsigned char>(c) <= 0x20 || c == 0x7F;
                        });
  if (!one_word) return "--ehlo-name must be a single word";
  // A domain is at most 255 octets (RFC 1035); a longer name makes an EHLO line the server
  // may refuse mid-session (lines are limited to 512 octets), so it is refused here.
  if (target.ehlo_name.size() > 255) return "--ehlo-name is longer than a domain name (255)";
  target.insecure = insecure;
  // Even under --insecure, which would not read it: a file named but unusable is a mistake.
  if (!ca_file.empty())
    if (std::string why = net::ca_file_refusal(ca_file); !why.empty()) return why;
  target.trust_source = net::describe_trust_source({ca_file, false});
  return {};
}

}  // namespace mailtap::options
