// Whether clients that connect to --listen's address accept mailtap's certificate for its
// names (a client that connects by an address checks the IP address entries alone), and the
// start-up warning when they would not: [::1] or a LAN address against the certificate for
// localhost and 127.0.0.1, every address against a certificate for loopback alone.
#include "proxy/net/local_certificate_names.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace mailtap::net {
namespace {

asio::ip::tcp::endpoint at(const char* address, unsigned short port = 2525) {
  return {asio::ip::make_address(address), port};
}

LocalCertificate with_names(std::vector<std::string> dns, std::vector<std::string> ip) {
  LocalCertificate c;
  c.cert_path = "/home/me/.config/mailtap/local-tls-cert.pem";
  c.dns_names = std::move(dns);
  c.ip_addresses = std::move(ip);
  return c;
}

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(LocalCertificateNames, AnAddressIsMatchedAgainstTheIpEntriesAsAddresses) {
  const std::vector<std::string> ips = {"127.0.0.1", "0:0:0:0:0:0:0:1"};
  EXPECT_TRUE(names_address(ips, asio::ip::make_address("127.0.0.1")));
  EXPECT_TRUE(names_address(ips, asio::ip::make_address("::1")));  // however it is written
  EXPECT_TRUE(names_address(ips, asio::ip::make_address("::ffff:127.0.0.1")));
  EXPECT_FALSE(names_address(ips, asio::ip::make_address("127.0.0.2")));
  EXPECT_FALSE(names_address({"127.0.0.1"}, asio::ip::make_address("::1")));
  EXPECT_FALSE(names_address({"IP address 0102"}, asio::ip::make_address("::1")));
  EXPECT_FALSE(names_address({}, asio::ip::make_address("127.0.0.1")));
}

TEST(LocalCertificateNames, NoWarningWhenTheCertificateNamesTheListenAddress) {
  const LocalCertificate self_made = with_names({"localhost"}, {"127.0.0.1", "::1"});
  EXPECT_EQ(listen_address_warning(self_made, at("127.0.0.1")), "");
  EXPECT_EQ(listen_address_warning(self_made, at("::1")), "");
}

TEST(LocalCertificateNames, Ipv6LoopbackWithoutIt) {
  const LocalCertificate c = with_names({"localhost"}, {"127.0.0.1"});
  EXPECT_EQ(listen_address_warning(c, at("::1")),
            "WARNING: --local-tls: the certificate /home/me/.config/mailtap/local-tls-cert.pem "
            "names localhost, 127.0.0.1, not ::1 that mailtap listens on ([::1]:2525): clients "
            "that connect to ::1 by its address refuse it (a name mismatch); have them connect "
            "by a name it holds (localhost), or give --local-cert and --local-key with a "
            "certificate for ::1");
}

TEST(LocalCertificateNames, AnOlderMailtapsCertificateKeptInAReadOnlyDirectorySaysHowToRenewIt) {
  LocalCertificate c = with_names({"localhost"}, {"127.0.0.1"});
  c.made_by_mailtap = true;
  const std::string w = listen_address_warning(c, at("::1"));
  EXPECT_TRUE(has(w,
                  ", or start mailtap once where /home/me/.config/mailtap is writable: it "
                  "then makes a new one that names ::1 too"))
      << w;
  // For a LAN address a new one would not help.
  EXPECT_FALSE(has(listen_address_warning(c, at("192.0.2.2")), "start mailtap once")) << w;
}

TEST(LocalCertificateNames, ALanAddressAgainstTheSelfMadeCertificate) {
  const LocalCertificate c = with_names({"localhost"}, {"127.0.0.1", "::1"});
  const std::string w = listen_address_warning(c, at("192.0.2.2", 2616));
  EXPECT_TRUE(has(w,
                  "names localhost, 127.0.0.1, ::1, not 192.0.2.2 that mailtap listens on "
                  "(192.0.2.2:2616)"))
      << w;
  EXPECT_TRUE(has(w, "a certificate for 192.0.2.2")) << w;
}

TEST(LocalCertificateNames, ACertificateWithoutDnsNamesLeavesOnlyAnotherCertificate) {
  const std::string w = listen_address_warning(with_names({}, {"10.0.0.1"}), at("::1"));
  EXPECT_FALSE(has(w, "a name it holds")) << w;
  EXPECT_TRUE(has(w, "give --local-cert and --local-key with a certificate for ::1")) << w;
}

TEST(LocalCertificateNames, EveryAddressWarnsOnlyForACertificateForLoopbackAlone) {
  const LocalCertificate self_made = with_names({"localhost"}, {"127.0.0.1", "::1"});
  const std::string w = listen_address_warning(self_made, at("0.0.0.0"));
  EXPECT_TRUE(has(w,
                  "names only localhost, 127.0.0.1, ::1, and mailtap listens on every "
                  "address (0.0.0.0:2525): clients that connect by another address or name "
                  "refuse it"))
      << w;
  EXPECT_FALSE(listen_address_warning(self_made, at("::")).empty());
  const LocalCertificate lan = with_names({"mail.example.test"}, {});
  EXPECT_EQ(listen_address_warning(lan, at("0.0.0.0")), "");
}

}  // namespace
}  // namespace mailtap::net
