// Whether clients can accept mailtap's certificate (--local-tls) by the address it listens on:
// a client that connects by an IP address checks it against the certificate's IP address
// entries alone (RFC 6125), so the certificate made for localhost, 127.0.0.1 and ::1 fails a
// client of [192.0.2.2]:2525, and one of the user's for mail.example.test fails a client of
// [::1]:2525 that is not told to connect by that name.
#pragma once

#include <asio/ip/tcp.hpp>
#include <string>
#include <vector>

#include "proxy/net/local_certificate.hpp"

namespace mailtap::net {

// Whether `ip_addresses` (subjectAltName IP entries, as text) hold `address` (a v4-mapped one
// counts as its IPv4 address, as it reaches a dual-stack listener).
bool names_address(const std::vector<std::string>& ip_addresses, const asio::ip::address& address);

// The start-up warning when clients connecting to `listen` by its address would refuse
// `certificate` for its names, with what to do; "" when they would not. On every address
// (0.0.0.0, [::]) it warns only for a certificate that names loopback alone.
std::string listen_address_warning(const LocalCertificate& certificate,
                                   const asio::ip::tcp::endpoint& listen);

// Its subjectAltName entries, DNS then IP, for a message: "localhost, 127.0.0.1, ::1".
std::string certificate_names(const LocalCertificate& certificate);

}  // namespace mailtap::net
