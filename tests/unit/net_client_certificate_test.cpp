// --client-cert and --client-key read and checked at start: a usable pair (a chain with its key
// apart or in the same file) is loaded with the facts the record keeps, and every file a user can
// get wrong is refused in words that name the option, the file and the fix: missing, not PEM, no
// certificate, no key, an encrypted key, a key that is not the certificate's, a key others may
// read or another user owns. An expired certificate is loaded, with its problem told.
#include "proxy/net/client_certificate.hpp"

#include <openssl/bn.h>
#include <openssl/digest.h>
#include <openssl/ec_key.h>
#include <openssl/evp.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <ctime>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "proxy/common/hex.hpp"
#include "proxy/net/local_certificate.hpp"
#include "temp_dir.hpp"

namespace mailtap::net {
namespace {

using test_support::TempDir;

bssl::UniquePtr<EVP_PKEY> new_key() {
  bssl::UniquePtr<EVP_PKEY_CTX> pctx(EVP_PKEY_CTX_new_id(EVP_PKEY_EC, nullptr));
  EVP_PKEY* key = nullptr;
  EXPECT_EQ(EVP_PKEY_keygen_init(pctx.get()), 1);
  EXPECT_EQ(EVP_PKEY_CTX_set_ec_paramgen_curve_nid(pctx.get(), NID_X9_62_prime256v1), 1);
  EXPECT_EQ(EVP_PKEY_keygen(pctx.get(), &key), 1);
  return bssl::UniquePtr<EVP_PKEY>(key);
}

// A certificate for `key` with subject CN=`cn`, signed by `issuer_key` under `issuer_cn`, valid
// from `from` to `until` seconds from now.
bssl::UniquePtr<X509> new_certificate(EVP_PKEY* key, const std::string& cn, EVP_PKEY* issuer_key,
                                      const std::string& issuer_cn, long from = -3600,
                                      long until = 30 * 86400) {
  bssl::UniquePtr<X509> cert(X509_new());
  X509_set_version(cert.get(), X509_VERSION_3);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 7);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), from);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), until);
  const auto name = [](const std::string& value) {
    bssl::UniquePtr<X509_NAME> n(X509_NAME_new());
    X509_NAME_add_entry_by_txt(n.get(), "CN", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(value.c_str()), -1, -1, 0);
    return n;
  };
  X509_set_subject_name(cert.get(), name(cn).get());
  X509_set_issuer_name(cert.get(), name(issuer_cn).get());
  X509_set_pubkey(cert.get(), key);
  EXPECT_GT(X509_sign(cert.get(), issuer_key, EVP_sha256()), 0);
  return cert;
}

std::string pem_of(X509* cert) {
  bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), cert);
  const std::uint8_t* data = nullptr;
  std::size_t len = 0;
  BIO_mem_contents(bio.get(), &data, &len);
  return std::string(reinterpret_cast<const char*>(data), len);
}

std::string pem_of(EVP_PKEY* key, bool encrypted = false) {
  bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  if (encrypted)
    PEM_write_bio_PKCS8PrivateKey(bio.get(), key, EVP_aes_128_cbc(), const_cast<char*>("secret"), 6,
                                  nullptr, nullptr);
  else
    PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  const std::uint8_t* data = nullptr;
  std::size_t len = 0;
  BIO_mem_contents(bio.get(), &data, &len);
  return std::string(reinterpret_cast<const char*>(data), len);
}

void write(const std::string& path, const std::string& text, mode_t mode) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
  ASSERT_EQ(::chmod(path.c_str(), mode), 0);
}

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

class ClientCertificateTest : public ::testing::Test {
 protected:
  std::shared_ptr<const ClientCertificate> load(const std::string& cert,
                                                const std::string& key = "") {
    error_.clear();
    return load_client_certificate(cert, key, error_);
  }

  TempDir tmp_;
  bssl::UniquePtr<EVP_PKEY> ca_key_ = new_key();
  bssl::UniquePtr<EVP_PKEY> key_ = new_key();
  bssl::UniquePtr<X509> intermediate_ =
      new_certificate(ca_key_.get(), "client CA", ca_key_.get(), "client CA");
  bssl::UniquePtr<X509> leaf_ =
      new_certificate(key_.get(), "relay client", ca_key_.get(), "client CA");
  std::string chain_ = tmp_.file("client.pem");
  std::string key_file_ = tmp_.file("client.key");
  std::string error_;

  void SetUp() override {
    write(chain_, pem_of(leaf_.get()) + pem_of(intermediate_.get()), 0644);
    write(key_file_, pem_of(key_.get()), 0600);
  }
};

TEST_F(ClientCertificateTest, AChainWithItsKeyApartIsLoadedWithTheFactsTheRecordKeeps) {
  const auto c = load(chain_, key_file_);
  ASSERT_TRUE(c) << error_;
  EXPECT_EQ(c->cert_path, chain_);
  EXPECT_EQ(c->key_path, key_file_);
  EXPECT_EQ(c->intermediates, 1u);
  EXPECT_EQ(c->leaf_facts.subject, "CN=relay client");
  EXPECT_EQ(c->leaf_facts.issuer, "CN=client CA");
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  ASSERT_EQ(X509_digest(leaf_.get(), EVP_sha256(), md, &len), 1);
  EXPECT_EQ(c->leaf_facts.sha256_hex, to_hex(md, len));
  EXPECT_EQ(c->validity_problem, "");
  EXPECT_EQ(c->describe(), chain_ + " (CN=relay client)");
  // What the TLS context is given: the leaf, its key and the intermediate.
  bssl::UniquePtr<SSL_CTX> ctx(SSL_CTX_new(TLS_method()));
  ASSERT_TRUE(use_client_certificate(ctx.get(), *c, error_)) << error_;
  EXPECT_EQ(X509_cmp(SSL_CTX_get0_certificate(ctx.get()), leaf_.get()), 0);
  STACK_OF(X509)* chain = nullptr;
  ASSERT_EQ(SSL_CTX_get0_chain_certs(ctx.get(), &chain), 1);
  ASSERT_EQ(sk_X509_num(chain), 1u);
  EXPECT_EQ(X509_cmp(sk_X509_value(chain, 0), intermediate_.get()), 0);
  EXPECT_EQ(SSL_CTX_check_private_key(ctx.get()), 1);
}

TEST_F(ClientCertificateTest, TheKeyMayBeInTheCertificateFileWhichMustThenBePrivate) {
  const std::string both = tmp_.file("both.pem");
  write(both, pem_of(key_.get()) + pem_of(leaf_.get()), 0600);
  const auto c = load(both);
  ASSERT_TRUE(c) << error_;
  EXPECT_EQ(c->key_path, both);
  EXPECT_EQ(c->intermediates, 0u);

  ::chmod(both.c_str(), 0644);
  EXPECT_FALSE(load(both));
  EXPECT_EQ(error_, "--client-cert " + both +
                        " (it holds a private key): permissions 0644 are too open; a private key "
                        "must not be accessible by group or others (chmod 600 " +
                        both + ")");
  // Even when --client-key names another key: the file holds one all the same.
  EXPECT_FALSE(load(both, key_file_));
  EXPECT_TRUE(has(error_, "(it holds a private key): permissions 0644")) << error_;
}

TEST_F(ClientCertificateTest, NoKeyAnywhereSaysWhereToGiveIt) {
  EXPECT_FALSE(load(chain_));
  EXPECT_EQ(error_, "--client-cert " + chain_ +
                        " holds no private key: give its key with --client-key FILE, or append "
                        "the key to " +
                        chain_);
}

TEST_F(ClientCertificateTest, FilesThatAreNotThereOrNotFilesAreNamed) {
  EXPECT_FALSE(load(tmp_.file("missing.pem"), key_file_));
  EXPECT_EQ(error_, "--client-cert " + tmp_.file("missing.pem") + ": No such file or directory");
  EXPECT_FALSE(load(tmp_.file(""), key_file_));
  EXPECT_TRUE(has(error_, ": a directory, not a file")) << error_;
  EXPECT_FALSE(load(chain_, tmp_.file("missing.key")));
  EXPECT_EQ(error_, "--client-key " + tmp_.file("missing.key") + ": No such file or directory");
}

// A FIFO where a file was given (or swapped in after a check by path) would hold an open
// without O_NONBLOCK, and mailtap's start with it, until something wrote to it: refused at once,
// from what the opened descriptor is.
TEST_F(ClientCertificateTest, AFifoIsRefusedWithoutWaitingForAWriter) {
  const std::string fifo = tmp_.file("fifo.pem");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_FALSE(load(fifo, key_file_));
  EXPECT_EQ(error_, "--client-cert " + fifo + ": not a regular file");
  EXPECT_FALSE(load(chain_, fifo));
  EXPECT_EQ(error_, "--client-key " + fifo + ": not a regular file");
}

// A user meets a key file's refusal through the option that named it: --client-key, --local-key
// (and --print-config, which opens nothing) say each refusal in the same words, the option's
// name and the file's path first.
TEST_F(ClientCertificateTest, EachRefusalOfAKeyFileIsWordedAlikeForEveryOption) {
  const std::string fifo = tmp_.file("fifo.key");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const std::string open_key = tmp_.file("open.key");
  write(open_key, pem_of(key_.get()), 0640);
  std::vector<std::pair<std::string, std::string>> refusals = {
      {tmp_.file("missing.key"), ": No such file or directory"},
      {tmp_.file(""), ": a directory, not a file"},
      {fifo, ": not a regular file"},
      {open_key,
       ": permissions 0640 are too open; a private key must not be accessible by group or "
       "others (chmod 600 " +
           open_key + ")"},
  };
  if (::geteuid() == 0) {
    const std::string foreign = tmp_.file("foreign.key");
    write(foreign, pem_of(key_.get()), 0600);
    ASSERT_EQ(::chown(foreign.c_str(), 65534, 65534), 0);
    refusals.emplace_back(foreign,
                          ": owned by uid 65534, not by the user running mailtap (chown it to "
                          "yourself)");
  }
  for (const auto& [key, reason] : refusals) {
    SCOPED_TRACE(key);
    EXPECT_FALSE(load(chain_, key));
    EXPECT_EQ(error_, "--client-key " + key + reason);
    EXPECT_EQ(client_certificate_refusal(chain_, key), error_);
    std::string error;
    EXPECT_FALSE(load_local_certificate(chain_, key, error));
    EXPECT_EQ(error, "--local-key " + key + reason);
  }
}

// The same files as --local-cert/--local-key: a leaf a CA issued is told apart from a
// self-signed one (clients must trust its issuer, named by subject), and the path, given
// relative, is kept absolute, as clients in other directories must be told it.
TEST_F(ClientCertificateTest, ALocalCertIssuedByACaNamesItsIssuerAndAnAbsolutePath) {
  char cwd[4096] = {};
  ASSERT_NE(::getcwd(cwd, sizeof cwd), nullptr);
  const std::string dir = tmp_.file("");
  ASSERT_EQ(::chdir(dir.c_str()), 0);
  std::string error;
  const auto issued = load_local_certificate("client.pem", "client.key", error);
  ASSERT_EQ(::chdir(cwd), 0);
  ASSERT_TRUE(issued) << error;
  EXPECT_EQ(issued->cert_path, chain_);
  EXPECT_EQ(issued->key_path, key_file_);
  EXPECT_FALSE(issued->self_signed);
  EXPECT_EQ(issued->issuer, "CN=client CA");

  const std::string own = tmp_.file("own.pem");
  write(own, pem_of(new_certificate(key_.get(), "own", key_.get(), "own").get()), 0644);
  const auto self_signed = load_local_certificate(own, key_file_, error);
  ASSERT_TRUE(self_signed) << error;
  EXPECT_TRUE(self_signed->self_signed);
}

TEST_F(ClientCertificateTest, AFileThatIsNotPemOrHoldsNoCertificateIsRefused) {
  const std::string der = tmp_.file("client.der");
  unsigned char* bytes = nullptr;
  const int len = i2d_X509(leaf_.get(), &bytes);
  write(der, std::string(reinterpret_cast<char*>(bytes), static_cast<std::size_t>(len)), 0644);
  OPENSSL_free(bytes);
  EXPECT_FALSE(load(der, key_file_));
  EXPECT_TRUE(has(error_, "--client-cert " + der +
                              ": not a PEM file (no -----BEGIN line); "
                              "convert a DER certificate with openssl x509"))
      << error_;

  EXPECT_FALSE(load(key_file_, key_file_));  // the key given as the certificate
  EXPECT_EQ(error_, "--client-cert " + key_file_ +
                        ": no certificate in it (a PEM file with the certificate, -----BEGIN "
                        "CERTIFICATE-----, then its intermediates)");

  const std::string broken = tmp_.file("broken.pem");
  write(broken, "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n",
        0644);
  EXPECT_FALSE(load(broken, key_file_));
  EXPECT_TRUE(has(error_, "--client-cert " + broken + ": a PEM block in it cannot be read ("))
      << error_;
}

TEST_F(ClientCertificateTest, AKeyThatIsNotTheCertificatesIsRefused) {
  const auto other = new_key();
  const std::string other_file = tmp_.file("other.key");
  write(other_file, pem_of(other.get()), 0600);
  EXPECT_FALSE(load(chain_, other_file));
  EXPECT_EQ(error_, "--client-key " + other_file + " is not the key of --client-cert " + chain_ +
                        " (the certificate names another public key)");
  const std::string no_key = tmp_.file("no-key.pem");
  write(no_key, pem_of(leaf_.get()), 0600);
  EXPECT_FALSE(load(chain_, no_key));
  EXPECT_TRUE(has(error_, "--client-key " + no_key + ": no private key in it")) << error_;
}

TEST_F(ClientCertificateTest, AnEncryptedKeyIsRefusedWithHowToDecryptIt) {
  write(key_file_, pem_of(key_.get(), /*encrypted=*/true), 0600);
  ASSERT_TRUE(has(pem_of(key_.get(), true), "ENCRYPTED PRIVATE KEY"));
  EXPECT_FALSE(load(chain_, key_file_));
  EXPECT_EQ(error_, "--client-key " + key_file_ +
                        ": the private key is encrypted (protected by a passphrase), and mailtap "
                        "asks for none: write a copy without the passphrase, private to you, and "
                        "give that one as --client-key: (umask 077; openssl pkey -in " +
                        key_file_ + " -out KEY.pem)");
  // The legacy OpenSSL form too.
  write(key_file_,
        "-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\n"
        "AAAA\n-----END EC PRIVATE KEY-----\n",
        0600);
  EXPECT_FALSE(load(chain_, key_file_));
  EXPECT_TRUE(has(error_, "is encrypted")) << error_;
}

TEST_F(ClientCertificateTest, AKeyOthersMayReadOrAnotherUserOwnsIsRefused) {
  ::chmod(key_file_.c_str(), 0640);
  EXPECT_FALSE(load(chain_, key_file_));
  EXPECT_EQ(error_, "--client-key " + key_file_ +
                        ": permissions 0640 are too open; a private key must not be accessible "
                        "by group or others (chmod 600 " +
                        key_file_ + ")");
  EXPECT_EQ(client_certificate_refusal(chain_, key_file_), error_)
      << "--print-config refuses it in the same words, without reading it";
  ::chmod(key_file_.c_str(), 0600);
  if (::geteuid() != 0) GTEST_SKIP() << "giving the key to another user needs root";
  ASSERT_EQ(::chown(key_file_.c_str(), 65534, 65534), 0);
  EXPECT_FALSE(load(chain_, key_file_));
  EXPECT_EQ(error_, "--client-key " + key_file_ +
                        ": owned by uid 65534, not by the user running mailtap (chown it to "
                        "yourself)");
  EXPECT_EQ(client_certificate_refusal(chain_, key_file_), error_);
}

TEST_F(ClientCertificateTest, TheChecksWithoutTheKeyPassAUsablePair) {
  EXPECT_EQ(client_certificate_refusal(chain_, key_file_), "");
  EXPECT_EQ(client_certificate_refusal(chain_, ""), "");
  EXPECT_EQ(client_certificate_refusal(tmp_.file("missing.pem"), key_file_),
            "--client-cert " + tmp_.file("missing.pem") + ": No such file or directory");
}

TEST_F(ClientCertificateTest, ACertificateOutOfItsDatesIsLoadedAndSaysSo) {
  const auto expired =
      new_certificate(key_.get(), "relay client", ca_key_.get(), "client CA", -86400 * 10, -86400);
  write(chain_, pem_of(expired.get()), 0644);
  const auto c = load(chain_, key_file_);
  ASSERT_TRUE(c) << error_;
  EXPECT_EQ(c->validity_problem.rfind("it expired on ", 0), 0u) << c->validity_problem;
  EXPECT_EQ(c->validity_problem, "it expired on " + c->leaf_facts.not_after);

  const auto future =
      new_certificate(key_.get(), "relay client", ca_key_.get(), "client CA", 86400, 86400 * 9);
  write(chain_, pem_of(future.get()), 0644);
  const auto d = load(chain_, key_file_);
  ASSERT_TRUE(d) << error_;
  EXPECT_EQ(d->validity_problem, "it is not valid before " + d->leaf_facts.not_before);
}

}  // namespace
}  // namespace mailtap::net
