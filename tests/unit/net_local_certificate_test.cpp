// The --local-tls pair mailtap makes for itself under the config directory: made private, and
// never used (nor silently replaced) when someone else could have read or planted its key.
#include "proxy/net/local_certificate.hpp"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "temp_dir.hpp"

namespace mailtap::net {
namespace {

using test_support::TempDir;

mode_t mode_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

std::string contents(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// A pair as an older mailtap made it: self-signed, O=mailtap local TLS, for localhost and
// 127.0.0.1 only.
void write_older_pair(const std::string& dir, const std::string& cert, const std::string& key) {
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  bssl::UniquePtr<EVP_PKEY_CTX> pctx(EVP_PKEY_CTX_new_id(EVP_PKEY_EC, nullptr));
  EVP_PKEY* raw = nullptr;
  ASSERT_EQ(EVP_PKEY_keygen_init(pctx.get()), 1);
  ASSERT_EQ(EVP_PKEY_CTX_set_ec_paramgen_curve_nid(pctx.get(), NID_X9_62_prime256v1), 1);
  ASSERT_EQ(EVP_PKEY_keygen(pctx.get(), &raw), 1);
  bssl::UniquePtr<EVP_PKEY> k(raw);
  bssl::UniquePtr<X509> c(X509_new());
  X509_set_version(c.get(), X509_VERSION_3);
  ASN1_INTEGER_set(X509_get_serialNumber(c.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(c.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(c.get()), 30 * 86400);
  X509_NAME* name = X509_get_subject_name(c.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>("mailtap local TLS"), -1, -1,
                             0);
  X509_set_issuer_name(c.get(), name);
  X509_set_pubkey(c.get(), k.get());
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, c.get(), c.get(), nullptr, nullptr, 0);
  bssl::UniquePtr<X509_EXTENSION> san(X509V3_EXT_nconf_nid(
      nullptr, &ctx, NID_subject_alt_name, const_cast<char*>("DNS:localhost,IP:127.0.0.1")));
  ASSERT_TRUE(san);
  X509_add_ext(c.get(), san.get(), -1);
  ASSERT_GT(X509_sign(c.get(), k.get(), EVP_sha256()), 0);
  bssl::UniquePtr<BIO> cert_out(BIO_new_file(cert.c_str(), "w"));
  ASSERT_EQ(PEM_write_bio_X509(cert_out.get(), c.get()), 1);
  bssl::UniquePtr<BIO> key_out(BIO_new_file(key.c_str(), "w"));
  ASSERT_EQ(PEM_write_bio_PrivateKey(key_out.get(), k.get(), nullptr, nullptr, 0, nullptr, nullptr),
            1);
  ASSERT_EQ(::chmod(key.c_str(), 0600), 0);
}

class LocalCertificateTest : public ::testing::Test {
 protected:
  std::optional<LocalCertificate> ensure(bool need_ipv6_loopback = false) {
    error_.clear();
    return ensure_local_certificate(dir_, error_, nullptr, need_ipv6_loopback);
  }

  TempDir tmp_;
  std::string dir_ = tmp_.file("mailtap");
  std::string cert_ = dir_ + "/local-tls-cert.pem";
  std::string key_ = dir_ + "/local-tls-key.pem";
  std::string error_;
};

TEST_F(LocalCertificateTest, MadeOnceWithAPrivateKeyInAPrivateDirectoryThenReused) {
  const auto made = ensure();
  ASSERT_TRUE(made) << error_;
  EXPECT_TRUE(made->created);
  EXPECT_EQ(made->cert_path, cert_);
  EXPECT_EQ(made->key_path, key_);
  EXPECT_EQ(mode_of(dir_), 0700u);
  EXPECT_EQ(mode_of(key_), 0600u);
  EXPECT_EQ(mode_of(cert_), 0644u);  // public: it is what clients are told to trust
  const auto again = ensure();
  ASSERT_TRUE(again) << error_;
  EXPECT_FALSE(again->created);
  EXPECT_EQ(again->sha256_fingerprint, made->sha256_fingerprint);
}

// Clients of --listen [::1] connect by that address, which they check against the
// certificate's IP address entries alone: mailtap's names ::1 as well as 127.0.0.1.
TEST_F(LocalCertificateTest, MadeForLocalhostAnd127001AndIpv6Loopback) {
  const auto made = ensure();
  ASSERT_TRUE(made) << error_;
  EXPECT_EQ(made->dns_names, std::vector<std::string>{"localhost"});
  EXPECT_EQ(made->ip_addresses, (std::vector<std::string>{"127.0.0.1", "::1"}));
  EXPECT_TRUE(made->self_signed);
  EXPECT_TRUE(made->made_by_mailtap);
  const auto reused = ensure();
  ASSERT_TRUE(reused) << error_;
  EXPECT_TRUE(reused->made_by_mailtap);
  EXPECT_EQ(reused->ip_addresses, made->ip_addresses);
}

// An older mailtap's pair lacks ::1: kept (its fingerprint may be pinned) until clients are to
// connect to ::1, then made anew, as on expiry; where no new one can be made, kept still.
TEST_F(LocalCertificateTest, AnOlderPairWithoutIpv6LoopbackIsMadeAnewWhenClientsNeedIt) {
  write_older_pair(dir_, cert_, key_);
  const auto reused = ensure();
  ASSERT_TRUE(reused) << error_;
  EXPECT_FALSE(reused->created);
  EXPECT_TRUE(reused->made_by_mailtap);
  EXPECT_EQ(reused->ip_addresses, std::vector<std::string>{"127.0.0.1"});

  // No new one can be made (the lock cannot be opened, as in a read-only directory).
  ASSERT_EQ(::mkdir((dir_ + "/local-tls.lock").c_str(), 0700), 0);
  const auto kept = ensure(true);
  ASSERT_TRUE(kept) << error_;
  EXPECT_FALSE(kept->created);
  EXPECT_EQ(kept->sha256_fingerprint, reused->sha256_fingerprint);
  ASSERT_EQ(::rmdir((dir_ + "/local-tls.lock").c_str()), 0);

  const auto renewed = ensure(true);
  ASSERT_TRUE(renewed) << error_;
  EXPECT_TRUE(renewed->created);
  EXPECT_NE(renewed->sha256_fingerprint, reused->sha256_fingerprint);
  EXPECT_EQ(renewed->ip_addresses, (std::vector<std::string>{"127.0.0.1", "::1"}));
  const auto again = ensure(true);
  ASSERT_TRUE(again) << error_;
  EXPECT_FALSE(again->created);
}

TEST_F(LocalCertificateTest, ReuseWritesNothingSoAReadOnlyDirectoryWillDo) {
  // The systemd unit's home is read-only: a start that finds a valid pair must not need to
  // write (it used to create and lock local-tls.lock first, and failed).
  const auto made = ensure();
  ASSERT_TRUE(made) << error_;
  ASSERT_EQ(::unlink((dir_ + "/local-tls.lock").c_str()), 0);
  const auto reused = ensure();
  ASSERT_TRUE(reused) << error_;
  EXPECT_FALSE(reused->created);
  EXPECT_EQ(reused->sha256_fingerprint, made->sha256_fingerprint);
  EXPECT_NE(::access((dir_ + "/local-tls.lock").c_str(), F_OK), 0) << "nothing was written";
}

TEST_F(LocalCertificateTest, AKeyOthersCanAccessIsRefusedNotUsedNorReplaced) {
  ASSERT_TRUE(ensure()) << error_;
  const std::string key_pem = contents(key_);
  ::chmod(key_.c_str(), 0644);
  EXPECT_FALSE(ensure());
  EXPECT_EQ(error_, "the key " + key_ +
                        ": permissions 0644 are too open; a private key must not be accessible "
                        "by group or others (chmod 600 " +
                        key_ + ", or delete it and " + cert_ + " for a new pair)");
  for (mode_t m : {0640, 0604, 0620, 0602, 0610, 0601}) {
    ::chmod(key_.c_str(), m);
    EXPECT_FALSE(ensure()) << std::oct << m;
  }
  EXPECT_EQ(contents(key_), key_pem);

  // What the message says to do works.
  ::chmod(key_.c_str(), 0600);
  const auto fixed = ensure();
  ASSERT_TRUE(fixed) << error_;
  EXPECT_FALSE(fixed->created);
  ::chmod(key_.c_str(), 0644);
  ::unlink(key_.c_str());
  ::unlink(cert_.c_str());
  const auto renewed = ensure();
  ASSERT_TRUE(renewed) << error_;
  EXPECT_TRUE(renewed->created);
  EXPECT_EQ(mode_of(key_), 0600u);
}

TEST_F(LocalCertificateTest, AKeySomeoneElseOwnsIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "giving a file to another user needs root";
  ASSERT_TRUE(ensure()) << error_;
  ASSERT_EQ(::chown(key_.c_str(), 65534, 65534), 0);
  ASSERT_EQ(::chown(cert_.c_str(), 65534, 65534), 0);
  EXPECT_FALSE(ensure());
  EXPECT_EQ(error_, "the key " + key_ +
                        ": owned by uid 65534, not by the user running mailtap (chown it to "
                        "yourself, or delete it and " +
                        cert_ + " for a new pair)");
}

// A key that is there but cannot be opened (another user's 0600 key; here a link to itself,
// which even root cannot open) or is no file is left alone: no new pair is written over it.
TEST_F(LocalCertificateTest, AKeyThatCannotBeReadIsRefusedNotReplaced) {
  ASSERT_EQ(::mkdir(dir_.c_str(), 0700), 0);
  ASSERT_EQ(::symlink(key_.c_str(), key_.c_str()), 0);
  EXPECT_FALSE(ensure());
  EXPECT_EQ(error_, "the key " + key_ + ": " + std::strerror(ELOOP) + " (delete it and " + cert_ +
                        " for a new pair)");
  struct stat st {};
  ASSERT_EQ(::lstat(key_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_NE(::access(cert_.c_str(), F_OK), 0);  // no pair made beside it

  ASSERT_EQ(::unlink(key_.c_str()), 0);
  ASSERT_EQ(::mkdir(key_.c_str(), 0700), 0);
  EXPECT_FALSE(ensure());
  EXPECT_EQ(error_, "the key " + key_ + ": a directory, not a file (delete it and " + cert_ +
                        " for a new pair)");
}

TEST_F(LocalCertificateTest, ADirectoryOthersCanWriteIsTightened) {
  ASSERT_EQ(::mkdir(dir_.c_str(), 0700), 0);
  ASSERT_EQ(::chmod(dir_.c_str(), 0777), 0);
  ASSERT_TRUE(ensure()) << error_;
  EXPECT_EQ(mode_of(dir_), 0755u);
  ASSERT_EQ(::chmod(dir_.c_str(), 0770), 0);
  ASSERT_TRUE(ensure()) << error_;
  EXPECT_EQ(mode_of(dir_), 0750u);
  ASSERT_EQ(::chmod(dir_.c_str(), 0750), 0);  // readable is fine: the key itself is 0600
  ASSERT_TRUE(ensure()) << error_;
  EXPECT_EQ(mode_of(dir_), 0750u);
}

}  // namespace
}  // namespace mailtap::net
