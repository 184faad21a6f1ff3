// How mailtap reaches an SMTP server, the same for every command that connects to one
// (`mailtap proxy`, `replay`, `probe`): --tls, --ca-file, --tls-name, --insecure and
// --ehlo-name, their defaults and their checks.
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

  // What differs between the commands' help texts.
  struct Help {
    std::string host;      // what --tls-name defaults to: "the upstream host", "HOST"
    std::string insecure;  // --insecure's whole text
    std::string ehlo_name = "Name mailtap gives in its own EHLO before STARTTLS";
  };
  // Adds the five options to `app`, in that order, writing into this object.
  void add_to(CLI::App& app, const Help& help);

  net::TrustSettings trust() const { return {ca_file, insecure}; }
  // Fills what the options say of `target`, whose host and port are set: mode, TLS name,
  // EHLO name, --insecure and the trust source. Returns an error message, or "": a --ca-file
  // that cannot be read as PEM certificates is refused here, with the other options, before
  // any command listens or connects.
  std::string apply_to(net::UpstreamTarget& target) const;
};

}  // namespace mailtap::options
