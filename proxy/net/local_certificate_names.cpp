#include "proxy/net/local_certificate_names.hpp"

#include <algorithm>
#include <filesystem>

#include "proxy/net/endpoint.hpp"

namespace mailtap::net {

namespace {

asio::ip::address unmapped(const asio::ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped())
    return asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
  return a;
}

bool names_loopback_alone(const LocalCertificate& c) {
  const bool dns_loopback = std::all_of(c.dns_names.begin(), c.dns_names.end(),
                                        [](const std::string& n) { return n == "localhost"; });
  const bool ip_loopback =
      std::all_of(c.ip_addresses.begin(), c.ip_addresses.end(), [](const std::string& text) {
        std::error_code ec;
        const asio::ip::address a = asio::ip::make_address(text, ec);
        return !ec && unmapped(a).is_loopback();
      });
  return dns_loopback && ip_loopback;
}

// What to do about it: connect by a name the certificate holds, or present another.
std::string remedy(const LocalCertificate& c, const std::string& for_what) {
  std::string out;
  if (!c.dns_names.empty()) {
    out = "have them connect by a name it holds (" + c.dns_names.front() + ")";
    out += ", or ";
  }
  out += "give --local-cert and --local-key with a certificate for " + for_what;
  return out;
}

}  // namespace

bool names_address(const std::vector<std::string>& ip_addresses, const asio::ip::address& address) {
  const asio::ip::address wanted = unmapped(address);
  return std::any_of(ip_addresses.begin(), ip_addresses.end(), [&](const std::string& text) {
    std::error_code ec;
    const asio::ip::address a = asio::ip::make_address(text, ec);
    return !ec && unmapped(a) == wanted;
  });
}

std::string certificate_names(const LocalCertificate& certificate) {
  std::string out;
  for (const auto* list : {&certificate.dns_names, &certificate.ip_addresses})
    for (const std::string& n : *list) out += (out.empty() ? "" : ", ") + n;
  return out.empty() ? "no name" : out;
}

std::string listen_address_warning(const LocalCertificate& certificate,
                                   const asio::ip::tcp::endpoint& listen) {
  const asio::ip::address address = unmapped(listen.address());
  const std::string head =
      "WARNING: --local-tls: the certificate " + certificate.cert_path + " names ";
  if (address.is_unspecified()) {
    if (!names_loopback_alone(certificate)) return {};
    return head + "only " + certificate_names(certificate) + ", and mailtap listens on every " +
           "address (" + endpoint_label(listen) +
           "): clients that connect by another address or name refuse it; " +
           remedy(certificate, "the address or name they use");
  }
  if (names_address(certificate.ip_addresses, address)) return {};
  const std::string text = address.to_string();
  std::string warning = head + certificate_names(certificate) + ", not " + text +
                        " that mailtap listens on (" + endpoint_label(listen) +
                        "): clients that connect to " + text +
                        " by its address refuse it (a name mismatch); " + remedy(certificate, text);
  // An older mailtap's certificate, kept where no new one could be written.
  if (certificate.made_by_mailtap && address == asio::ip::address_v6::loopback())
    warning += ", or start mailtap once where " +
               std::filesystem::path(certificate.cert_path).parent_path().string() +
               " is writable: it then makes a new one that names ::1 too";
  return warning;
}

}  // namespace mailtap::net
