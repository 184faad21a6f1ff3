// The upstream context offers what current clients offer: no 3DES suite (SWEET32), with or
// without --insecure.
#include "proxy/net/tls_client_context.hpp"

#include <openssl/ssl.h>

#include <gtest/gtest.h>

#include <string>

namespace mailtap::net {
namespace {

TEST(TlsClientContext, OffersNo3desSuite) {
  for (const bool insecure : {false, true}) {
    std::string error;
    auto ctx = make_tls_client_context(TrustSettings{"", insecure}, error);
    ASSERT_TRUE(ctx) << error;
    STACK_OF(SSL_CIPHER)* ciphers = SSL_CTX_get_ciphers(ctx->native_handle());
    ASSERT_NE(ciphers, nullptr);
    EXPECT_GT(sk_SSL_CIPHER_num(ciphers), 0u);
    for (std::size_t i = 0; i < sk_SSL_CIPHER_num(ciphers); ++i) {
      const std::string name = SSL_CIPHER_standard_name(sk_SSL_CIPHER_value(ciphers, i));
      EXPECT_EQ(name.find("3DES"), std::string::npos) << name;
    }
  }
}

}  // namespace
}  // namespace mailtap::net
