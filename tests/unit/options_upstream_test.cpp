// --ca-file, --client-cert and --client-key are checked with the other options, before anything
// listens or connects: a file that cannot serve is a usage error in words (exit status 2), not a
// TLS library's error at the first connection.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "permission_checks_for_tests.hpp"
#include "proxy/net/local_certificate.hpp"
#include "proxy/options/upstream_options.hpp"
#include "temp_dir.hpp"

namespace mailtap::options {
namespace {

using test_support::TempDir;

// apply_to's refusal for `ca_file`, on an upstream whose other options are all fine.
std::string refusal_of(const std::string& ca_file, bool insecure = false) {
  UpstreamOptions options;
  options.ca_file = ca_file;
  options.insecure = insecure;
  options.ehlo_name = "client.test";
  net::UpstreamTarget target;
  target.host = "mx.example.test";
  target.port = 587;
  return options.apply_to(target);
}

// The refusal of a --tls-name names what a name is made of, the '_' it takes among it.
TEST(TlsNameOption, TheRefusalNamesEveryCharacterANameMayHold) {
  net::UpstreamTarget target;
  target.host = "mx.example.test";
  target.port = 587;
  UpstreamOptions options;
  options.ehlo_name = "client.test";
  options.tls_name = "a_b-c.example";
  EXPECT_EQ(options.apply_to(target), "");
  options.tls_name = "a..b";
  EXPECT_EQ(options.apply_to(target),
            "--tls-name a..b: expected a host name (labels of ASCII letters, digits, '-' and '_' "
            "between single dots) or an IP address");
}

void write(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

class CaFileTest : public ::testing::Test {
 protected:
  TempDir tmp_;
};

TEST_F(CaFileTest, APemCertificateIsAccepted) {
  std::string error;
  const auto made = net::ensure_local_certificate(tmp_.file("pki"), error);
  ASSERT_TRUE(made) << error;
  EXPECT_EQ(refusal_of(made->cert_path), "");
  EXPECT_EQ(refusal_of(""), "") << "no --ca-file: the system store";
}

TEST_F(CaFileTest, AMissingFileIsRefusedByName) {
  const std::string path = tmp_.file("no-such-ca.pem");
  EXPECT_EQ(refusal_of(path), "--ca-file " + path + ": No such file or directory");
  EXPECT_EQ(refusal_of(path, /*insecure=*/true),
            "--ca-file " + path + ": No such file or directory")
      << "a file named but missing is a typo, --insecure or not";
}

TEST_F(CaFileTest, ADirectoryIsRefusedAsNotAFile) {
  const std::string path = tmp_.file("certs");
  std::filesystem::create_directory(path);
  const std::string e = refusal_of(path);
  EXPECT_EQ(e.rfind("--ca-file " + path + ": a directory, not a file", 0), 0u) << e;
  EXPECT_NE(e.find("SSL_CERT_DIR"), std::string::npos) << "says how a directory is given: " << e;
}

TEST_F(CaFileTest, AFileWithoutACertificateIsRefused) {
  const std::string cases[] = {"", "not a certificate\n",
                               "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"};
  for (const std::string& text : cases) {
    const std::string path = tmp_.file("empty.pem");
    write(path, text);
    EXPECT_EQ(refusal_of(path), "--ca-file " + path +
                                    ": no certificate in it (a PEM file of CA certificates, "
                                    "each from -----BEGIN CERTIFICATE-----)")
        << text;
  }
  std::string error;
  const auto made = net::ensure_local_certificate(tmp_.file("pki"), error);
  ASSERT_TRUE(made) << error;
  EXPECT_EQ(refusal_of(made->key_path), "--ca-file " + made->key_path +
                                            ": no certificate in it (a PEM file of CA "
                                            "certificates, each from -----BEGIN CERTIFICATE-----)")
      << "a key given for the certificate";
}

TEST_F(CaFileTest, ABrokenCertificateIsRefused) {
  const std::string path = tmp_.file("broken.pem");
  write(path, "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n");
  const std::string e = refusal_of(path);
  EXPECT_EQ(e.rfind("--ca-file " + path + ": not a PEM file of certificates (", 0), 0u) << e;
}

TEST_F(CaFileTest, AnUnreadableFileIsRefused) {
  std::string error;
  const auto made = net::ensure_local_certificate(tmp_.file("pki"), error);
  ASSERT_TRUE(made) << error;
  ASSERT_EQ(::chmod(made->cert_path.c_str(), 0), 0);
  const test_support::PermissionChecksForRoot as_anyone;
  if (!as_anyone.active()) GTEST_SKIP() << "cannot drop CAP_DAC_OVERRIDE";
  EXPECT_EQ(refusal_of(made->cert_path), "--ca-file " + made->cert_path + ": Permission denied");
}

// A pair of mailtap's own making (a P-256 key, 0600, and its certificate) serves as a client
// certificate here: what matters is what the options do with the files.
class ClientCertOptionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    const auto made = net::ensure_local_certificate(tmp_.file("pki"), error);
    ASSERT_TRUE(made) << error;
    options_.client_cert = made->cert_path;
    options_.client_key = made->key_path;
    options_.ehlo_name = "client.test";
    target_.host = "mx.example.test";
    target_.port = 587;
  }

  TempDir tmp_;
  UpstreamOptions options_;
  net::UpstreamTarget target_;
};

TEST_F(ClientCertOptionsTest, TheCertificateIsReadAtStartForTheConnection) {
  EXPECT_TRUE(options_.holds_client_key());
  EXPECT_EQ(options_.apply_to(target_), "");
  ASSERT_TRUE(target_.client_certificate);
  EXPECT_EQ(target_.client_certificate->leaf_facts.subject, "CN=localhost,O=mailtap local TLS");
  EXPECT_EQ(UpstreamOptions::client_certificate_warning(target_.client_certificate.get()), "");
}

TEST_F(ClientCertOptionsTest, PrintConfigChecksTheFilesWithoutReadingTheKey) {
  net::UpstreamTarget checked = target_;
  EXPECT_EQ(options_.apply_to(checked, /*read_client_key=*/false), "");
  EXPECT_FALSE(checked.client_certificate);
  ::chmod(options_.client_key.c_str(), 0644);
  const std::string refusal = options_.apply_to(checked, false);
  EXPECT_EQ(refusal, options_.apply_to(target_)) << "the start refuses it in the same words";
  EXPECT_EQ(refusal.rfind("--client-key " + options_.client_key + ": permissions 0644", 0), 0u)
      << refusal;
}

TEST_F(ClientCertOptionsTest, OptionsThatCannotGoTogetherAreRefused) {
  UpstreamOptions key_alone = options_;
  key_alone.client_cert.clear();
  EXPECT_EQ(key_alone.apply_to(target_),
            "--client-key needs --client-cert (the certificate it is the key of)");
  UpstreamOptions plain = options_;
  plain.tls = net::TlsMode::none;
  EXPECT_EQ(plain.apply_to(target_),
            "--client-cert needs TLS to present it in: not with --tls none");
}

TEST(UpstreamOptionsTest, TlsOptionsWithoutTlsAreRefused) {
  net::UpstreamTarget target;
  target.host = "127.0.0.1";
  target.port = 25;
  UpstreamOptions plain;
  plain.tls = net::TlsMode::none;
  EXPECT_EQ(plain.apply_to(target), "");
  UpstreamOptions insecure = plain;
  insecure.insecure = true;
  EXPECT_EQ(insecure.apply_to(target).rfind("--insecure has no effect with --tls none: ", 0), 0u);
  UpstreamOptions ca = plain;
  ca.ca_file = "/nonexistent/ca.pem";  // not read: refused for being there at all
  EXPECT_EQ(ca.apply_to(target).rfind("--ca-file has no effect with --tls none: ", 0), 0u);
  UpstreamOptions name = plain;
  name.tls_name = "mx.example.test";
  EXPECT_EQ(name.apply_to(target).rfind("--tls-name has no effect with --tls none: ", 0), 0u);
  name.tls = net::TlsMode::starttls;
  EXPECT_EQ(name.apply_to(target), "");
}

TEST_F(ClientCertOptionsTest, AnUnreadableCertificateIsRefused) {
  ASSERT_EQ(::chmod(options_.client_cert.c_str(), 0), 0);
  const test_support::PermissionChecksForRoot as_anyone;
  if (!as_anyone.active()) GTEST_SKIP() << "cannot drop CAP_DAC_OVERRIDE";
  const std::string expected = "--client-cert " + options_.client_cert + ": Permission denied";
  EXPECT_EQ(options_.apply_to(target_), expected);
  net::UpstreamTarget checked = target_;
  EXPECT_EQ(options_.apply_to(checked, false), expected);
}

}  // namespace
}  // namespace mailtap::options
