#include "proxy/options/upstream_options.hpp"

#include <algorithm>

#include "proxy/common/terminal_escape.hpp"
#include "proxy/net/ca_file.hpp"
#include "proxy/net/endpoint.hpp"
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
  app.add_option("--client-cert", client_cert,
                 "PEM certificate to present to a server that asks for one (mutual TLS), "
                 "followed by its intermediates (all sent); the file may hold the key too")
      ->type_name("FILE");
  app.add_option("--client-key", client_key,
                 "PEM private key of --client-cert (default: the key in that file); refused if "
                 "group or others may access it, another user owns it, or a passphrase protects "
                 "it")
      ->type_name("FILE");
}

namespace {

// --client-cert and --client-key into `target`: read and checked, or without `read_key` only
// checked as far as that needs no key read.
std::string apply_client_certificate(const UpstreamOptions& o, net::UpstreamTarget& target,
                                     bool read_key) {
  if (o.client_cert.empty()) {
    if (!o.client_key.empty())
      return "--client-key needs --client-cert (the certificate it is the key of)";
    return {};
  }
  if (target.mode == net::TlsMode::none)
    return "--client-cert needs TLS to present it in: not with --tls none";
  if (!read_key) return net::client_certificate_refusal(o.client_cert, o.client_key);
  std::string error;
  target.client_certificate = net::load_client_certificate(o.client_cert, o.client_key, error);
  return error;
}

}  // namespace

namespace {

// Without TLS nothing is verified and no name is sent: a TLS option there would be dropped in
// silence, and whoever typed --tls none for --tls starttls would get plain text believing
// otherwise. Refused as --client-cert is.
std::string tls_option_without_tls(const UpstreamOptions& o) {
  if (o.insecure)
    return "--insecure has no effect with --tls none: without TLS there is no certificate to "
           "verify, and the link is plain text; drop one of them (--tls starttls or implicit "
           "to encrypt it)";
  if (!o.ca_file.empty())
    return "--ca-file has no effect with --tls none: without TLS there is no certificate to "
           "verify; drop one of them (--tls starttls or implicit to encrypt the link)";
  if (!o.tls_name.empty())
    return "--tls-name has no effect with --tls none: without TLS no name is sent or checked; "
           "drop one of them (--tls starttls or implicit to encrypt the link)";
  return {};
}

}  // namespace

std::string UpstreamOptions::apply_to(net::UpstreamTarget& target, bool read_client_key) const {
  target.mode = tls.value_or(net::default_tls_mode(target.port));
  if (target.mode == net::TlsMode::none)
    if (std::string why = tls_option_without_tls(*this); !why.empty()) return why;
  target.tls_name = tls_name.empty() ? target.host : tls_name;
  // "." or "a..": no certificate can be issued for it, and it would go out as SNI.
  if (!tls_name.empty() && !net::is_tls_name(tls_name))
    return "--tls-name " + escape_line(tls_name) +
           ": expected a host name (labels of ASCII letters, digits, '-' and '_' between single "
           "dots) or an IP address";
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
  // Non-ASCII text, a bare IPv6 address or "a..b" is no EHLO argument: a strict server refuses
  // it (501), only after the user has typed the first command.
  if (!net::is_ehlo_name(target.ehlo_name))
    return (ehlo_name.empty()
                ? "this host's name " + escape_line(target.ehlo_name) + " (the default --ehlo-name)"
                : "--ehlo-name " + escape_line(target.ehlo_name)) +
           ": expected a domain (labels of ASCII letters, digits, '-' and '_', not starting "
           "or ending with '-', between single dots; an internationalised name in its xn-- "
           "form) or an address literal such as [192.0.2.1] or [IPv6:2001:db8::1] (RFC 5321 "
           "4.1.3)";
  target.insecure = insecure;
  // Even under --insecure, which would not read it: a file named but unusable is a mistake.
  if (!ca_file.empty())
    if (std::string why = net::ca_file_refusal(ca_file); !why.empty()) return why;
  target.trust_source = net::describe_trust_source({ca_file, false});
  return apply_client_certificate(*this, target, read_client_key);
}

std::string UpstreamOptions::client_certificate_warning(const net::ClientCertificate* c) {
  if (c == nullptr || c->validity_problem.empty()) return {};
  return "WARNING: --client-cert " + c->cert_path + ": " + c->validity_problem +
         "; it is presented all the same (a server may know it by its fingerprint), but one "
         "that checks its dates will refuse it";
}

}  // namespace mailtap::options
