// How mailtap reaches an SMTP server, the same for every command that connects to one
// (`mailtap proxy`, `replay`, `probe`): --tls, --ca-file, --tls-name, --insecure, --ehlo-name
// and the client certificate (--client-cert, --client-key), their defaults and their checks.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>

#include "proxy/net/tls_client_context.hpp"
#include "proxy/net/upstream_connector.hpp"

namespace mailtap::options {

struct UpstreamOptions {
  std::optional<net::TlsMode> tls;  // --tls; nullopt: by the port (net::default_tls_mode)
  std::string ca_file;              // --ca-file
  std::string tls_name;             // --tls-name; "": the host
  bool insecure = false;            // --insecure
  std::string ehlo_name;            // --ehlo-name; "": this machine's name
  std::string client_cert;          // --client-cert; "": none
  std::string client_key;           // --client-key; "": the key is in client_cert

  // What differs between the commands' help texts.
  struct Help {
    std::string host;      // what --tls-name defaults to: "the upstream host", "HOST"
    std::string insecure;  // --insecure's whole text
    std::string ehlo_name =
        "Name mailtap gives in its own EHLO before STARTTLS: an ASCII domain (xn-- for others) "
        "or an address literal such as [192.0.2.1]";
  };
  // Adds the seven options to `app`, in that order, writing into this object.
  void add_to(CLI::App& app, const Help& help);

  net::TrustSettings trust() const { return {ca_file, insecure}; }
  // Fills what the options say of `target`, whose host and port are set: mode, TLS name,
  // EHLO name, --insecure, the trust source and the client certificate. Returns an error
  // message, or "": a --ca-file that cannot be read as PEM certificates, and a --client-cert or
  // --client-key that cannot be used, are refused here, with the other options, before any
  // command listens or connects. Without `read_client_key` (--print-config) the key is not
  // read: only what can be told of the files without reading it is checked, and
  // target.client_certificate stays null.
  std::string apply_to(net::UpstreamTarget& target, bool read_client_key = true) const;

  // A key is named, so the command will hold one (and must keep it out of core files).
  bool holds_client_key() const { return !client_cert.empty(); }

  // What to say at start of `certificate` (may be null): a warning when it is out of its
  // validity ("WARNING: --client-cert F: it expired on ...; ..."); "" otherwise.
  static std::string client_certificate_warning(const net::ClientCertificate* certificate);
};

}  // namespace mailtap::options
