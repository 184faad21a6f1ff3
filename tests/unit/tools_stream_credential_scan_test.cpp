// A credential that crosses from one stored piece of a body into the next is found once, and
// said to begin where it begins; what lies inside one piece is left to the scan of that piece.
#include <gtest/gtest.h>

#include <string>
#include <type_traits>

#include "proxy/smtp/base64.hpp"
#include "tools/stream_credential_scan.hpp"

namespace mailtap::tools {
namespace {

using namespace std::string_literals;

// The scan holds the caller's options, password included, rather than a copy of them.
static_assert(!std::is_constructible_v<StreamCredentialScan, CredentialScanOptions&&>);

CredentialScanOptions with_password(std::string pw) {
  CredentialScanOptions o;
  o.known_password = std::move(pw);
  return o;
}

TEST(StreamCredentialScan, APasswordSplitBetweenTwoPiecesIsFoundWhereItBegins) {
  const CredentialScanOptions options = with_password("alice-secret-1");
  StreamCredentialScan scan(options);
  const std::string first = std::string(1000, 'x') + "\r\npassword: alice-sec";
  EXPECT_TRUE(scan.add(20, first).empty());
  const auto found = scan.add(21, "ret-1 and more\r\n" + std::string(1000, 'y'));
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].piece, 20u);
  EXPECT_EQ(found[0].offset, first.size() - "alice-sec"s.size());
  EXPECT_EQ(found[0].what, "the --password-env password, in clear");
  EXPECT_TRUE(scan.add(22, "nothing here\r\n").empty());
}

TEST(StreamCredentialScan, ABase64BlobAcrossThreePiecesIsFoundOnce) {
  const CredentialScanOptions options{};
  StreamCredentialScan scan(options);
  const std::string blob = smtp::base64_encode("\0alice-with-a-long-name\0hunter2"s);
  ASSERT_GT(blob.size(), 30u);
  EXPECT_TRUE(scan.add(5, "line one\r\nblob " + blob.substr(0, 10)).empty());
  EXPECT_TRUE(scan.add(6, blob.substr(10, 6)).empty());  // still the same line: carried on
  const auto found = scan.add(7, blob.substr(16) + "\r\nlast line\r\n");
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].piece, 5u);
  EXPECT_EQ(found[0].offset, "line one\r\nblob "s.size());
  EXPECT_NE(found[0].what.find("PLAIN"), std::string::npos) << found[0].what;
}

TEST(StreamCredentialScan, WhatLiesInsideOnePieceIsNotRepeated) {
  const CredentialScanOptions options = with_password("hunter2");
  StreamCredentialScan scan(options);
  EXPECT_TRUE(scan.add(1, "the password hunter2 is in here, then a line without end").empty());
  EXPECT_TRUE(scan.add(2, " and the rest\r\n").empty());
}

TEST(StreamCredentialScan, AResetStartsAnotherStream) {
  const CredentialScanOptions options = with_password("hunter2");
  StreamCredentialScan scan(options);
  EXPECT_TRUE(scan.add(1, "hunt").empty());
  scan.reset();
  EXPECT_TRUE(scan.add(9, "er2\r\n").empty());
}

TEST(StreamCredentialScan, TheTailKeptIsBounded) {
  const CredentialScanOptions options = with_password("hunter2");
  StreamCredentialScan scan(options);
  // One line longer than the tail: its start is forgotten, the password's halves are not.
  EXPECT_TRUE(
      scan.add(1, std::string(3 * StreamCredentialScan::kMostCarried, 'a') + "hun").empty());
  const auto found = scan.add(2, "ter2");
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].offset, 3 * StreamCredentialScan::kMostCarried);
}

}  // namespace
}  // namespace mailtap::tools
