// What a negotiated TLS 1.2 suite lacks, as the record's tls note, the log and probe say it.
#include "proxy/smtp/cipher_caveat.hpp"

#include <gtest/gtest.h>

namespace mailtap::smtp {
namespace {

TEST(CipherCaveat, StaticRsaAndCbcAreNamed) {
  EXPECT_EQ(cipher_caveat("TLS_RSA_WITH_AES_128_CBC_SHA"),
            "no forward secrecy: RSA key exchange; CBC");
  EXPECT_EQ(cipher_caveat("TLS_RSA_WITH_AES_256_GCM_SHA384"),
            "no forward secrecy: RSA key exchange");
  EXPECT_EQ(cipher_caveat("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"), "CBC");
}

TEST(CipherCaveat, CurrentSuitesHaveNone) {
  EXPECT_EQ(cipher_caveat("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"), "");
  EXPECT_EQ(cipher_caveat("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"), "");
  EXPECT_EQ(cipher_caveat("TLS_AES_128_GCM_SHA256"), "");
  EXPECT_EQ(cipher_caveat(""), "");
}

}  // namespace
}  // namespace mailtap::smtp
