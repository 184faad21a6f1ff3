// Octets behind the 220 to STARTTLS: the server's TLS alert is told apart from an injection,
// and the record keeps the octets.
#include "proxy/net/octets_after_starttls.hpp"

#include <gtest/gtest.h>

#include <string>

namespace mailtap::net {
namespace {

using namespace std::string_literals;

TEST(OctetsAfterStarttls, ATlsAlertIsTheServersTlsStackNotAnInjection) {
  const auto got = describe_octets_after_starttls("\x15\x03\x01\x00\x02\x02\x28"s, "mx:25");
  EXPECT_EQ(got.reason,
            "mx:25 sent a TLS alert (\"handshake failure\") before mailtap's handshake began: its "
            "TLS configuration cannot start a handshake at all (its TLS library refused before "
            "reading mailtap's ClientHello, as OpenSSL does when its TLS versions, ciphers or "
            "certificate do not fit its settings); its administrator must fix it (the server's "
            "log says why)");
  EXPECT_EQ(got.note,
            "7 octets followed the 220 reply to STARTTLS before the handshake: "
            "\"\\x15\\x03\\x01\\x00\\x02\\x02(\"");
  // Another record type is the server's TLS stack too.
  EXPECT_EQ(describe_octets_after_starttls("\x16\x03\x03\x00\x10"s, "mx:25").reason,
            "mx:25 sent a TLS record before mailtap's handshake began, where it must wait for "
            "mailtap's ClientHello: its TLS set-up is broken; its administrator must fix it (the "
            "server's log says why)");
}

TEST(OctetsAfterStarttls, AnInjectionIsKeptAsEvidenceBounded) {
  const auto got = describe_octets_after_starttls("250-AUTH PLAIN\r\n", "mx:25");
  EXPECT_EQ(got.reason,
            "mx:25 sent 16 unexpected octets after its 220 reply to STARTTLS: possible STARTTLS "
            "command injection; closing");
  EXPECT_EQ(got.note,
            "16 octets followed the 220 reply to STARTTLS before the handshake: "
            "\"250-AUTH PLAIN\\r\\n\"");
  const std::string many(1000, 'A');
  EXPECT_EQ(describe_octets_after_starttls(many, "mx:25").note,
            "1000 octets followed the 220 reply to STARTTLS before the handshake: \"" +
                std::string(kQuotedOctetsAfterStarttls, 'A') + "\" (the first 256)");
}

}  // namespace
}  // namespace mailtap::net
