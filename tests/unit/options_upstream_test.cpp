// --ca-file is checked with the other options, before anything listens or connects: a file
// that cannot serve as a trust store is a usage error in words (exit status 2), not a TLS
// library's error at the first connection.
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

}  // namespace
}  // namespace mailtap::options
