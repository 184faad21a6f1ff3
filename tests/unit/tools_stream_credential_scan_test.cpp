// A credential that crosses from one stored piece of a body into the next is found once, and
// said to begin where it begins; a piece is scanned after what comes before it in the body.
#include <gtest/gtest.h>

#include <random>
#include <set>
#include <string>
#include <type_traits>

#include "proxy/smtp/base64.hpp"
#include "tests/unit/plain_shaped_octets_for_tests.hpp"
#include "tools/stream_credential_scan.hpp"

namespace mailtap::tools {
namespace {

using namespace std::string_literals;
using mailtap::testing::attachment_body;
using mailtap::testing::string_table;
using mailtap::testing::wrapped_base64;

// The scan holds the caller's options, password included, rather than a copy of them.
static_assert(!std::is_constructible_v<StreamCredentialScan, CredentialScanOptions&&>);

CredentialScanOptions with_password(std::string_view pw) {
  return CredentialScanOptions(smtp::Secret::copy_of(pw));
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

TEST(StreamCredentialScan, WhatLiesInsideOnePieceIsFoundThereAndNotRepeated) {
  const CredentialScanOptions options = with_password("hunter2");
  StreamCredentialScan scan(options);
  const auto found = scan.add(1, "the password hunter2 is in here, then a line without end");
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].piece, 1u);
  EXPECT_EQ(found[0].offset, "the password "s.size());
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

// Every split of `body` into pieces of `size` octets.
std::vector<StreamFinding> scan_in_pieces(std::string_view body, std::size_t size,
                                          const CredentialScanOptions& options = {}) {
  StreamCredentialScan scan(options);
  std::vector<StreamFinding> found;
  for (std::uint64_t piece = 0; piece * size < body.size(); ++piece)
    for (StreamFinding& f : scan.add(piece, body.substr(piece * size, size)))
      found.push_back(std::move(f));
  return found;
}

TEST(StreamCredentialScan, TheLinesOfAWrappedAttachmentAreNoPlainBlobWhereverThePiecesEnd) {
  const std::string table = string_table(64 * 1024);
  // Such lines alone would be taken for PLAIN blobs: what the test is about.
  std::size_t alone = 0;
  for (std::size_t i = 0; i + 57 <= table.size(); i += 57)
    alone += scan_for_credentials(smtp::base64_encode(table.substr(i, 57)), {}).size();
  ASSERT_GT(alone, 100u);
  const std::string body = attachment_body(table);
  for (std::size_t size : {body.size(), std::size_t{65536}, std::size_t{4096}, std::size_t{78},
                           std::size_t{77}, std::size_t{1000}, std::size_t{13}}) {
    SCOPED_TRACE(size);
    EXPECT_TRUE(scan_in_pieces(body, size).empty());
  }
}

TEST(StreamCredentialScan, APlainBlobOnALineOfItsOwnIsFoundWhereverThePiecesEnd) {
  const std::string blob = smtp::base64_encode("\0alice\0pässwörd"s);
  const std::string head = "Subject: pasted\r\n\r\nmy login is\r\n";
  const std::string body = head + blob + "\r\nthanks\r\n";
  for (std::size_t size = 1; size <= body.size(); ++size) {
    SCOPED_TRACE(size);
    const auto found = scan_in_pieces(body, size);
    ASSERT_EQ(found.size(), 1u);
    EXPECT_EQ(found[0].piece * size + found[0].offset, head.size());
    EXPECT_EQ(found[0].what, "base64 SASL PLAIN blob (user \"alice\")");
  }
}

// However the body is cut into pieces, the stream finds what a scan of the whole body finds.
TEST(StreamCredentialScan, PiecesFindWhatTheWholeBodyHas) {
  std::mt19937 rng(7);
  const std::string plain = smtp::base64_encode("\0bob\0s3cret"s);
  const std::string lines[] = {"AUTH PLAIN " + plain + "\r\n",
                               plain + "\r\n",
                               "some text\r\n",
                               "\r\n",
                               wrapped_base64(string_table(600)),
                               wrapped_base64(string_table(57)),
                               smtp::base64_encode("user=a\x01"
                                                   "auth=Bearer ya29.x\x01\x01") +
                                   "\r\n"};
  for (int round = 0; round < 200; ++round) {
    std::string body;
    for (int n = 0; n < 12; ++n) body += lines[rng() % std::size(lines)];
    std::set<std::pair<std::uint64_t, std::string>> whole;
    for (const CredentialFinding& f : scan_for_credentials(body, {}))
      whole.emplace(f.offset, f.what);
    const std::size_t size = 1 + rng() % 200;
    std::set<std::pair<std::uint64_t, std::string>> pieces;
    for (const StreamFinding& f : scan_in_pieces(body, size))
      EXPECT_TRUE(pieces.emplace(f.piece * size + f.offset, f.what).second) << "repeated";
    EXPECT_EQ(pieces, whole) << "pieces of " << size << ":\n" << body;
    if (pieces != whole) break;
  }
}

// A body holding each secret twice, cut into two pieces at every offset: the findings are the
// whole body's, however the cut falls. A password (in clear or base64-encoded) or a bearer token
// in clear is reported once, at its first place, as the scan of the whole body reports it; a
// cut between two copies does not make the later one a finding of its own.
TEST(StreamCredentialScan, TwoCopiesOfASecretGiveTheSameFindingsWhereverTheBodyIsCut) {
  const CredentialScanOptions options = with_password("hunter2-pw");
  const std::string plain = smtp::base64_encode("\0bob\0s3cret"s);
  const std::string copy = "pw: hunter2-pw\r\n" + smtp::base64_encode("hunter2-pw") +
                           "\r\nauth=Bearer ya29.tok\r\n" + plain + "\r\nsome text\r\n";
  const std::string body = "Subject: twice\r\n\r\n" + copy + "between\r\n" + copy;
  std::multiset<std::pair<std::uint64_t, std::string>> whole;
  for (const CredentialFinding& f : scan_for_credentials(body, options, 0, /*message_body=*/true))
    whole.emplace(f.offset, f.what);
  ASSERT_EQ(whole.size(), 5u);  // the three once, the PLAIN blob at both places
  for (std::size_t cut = 0; cut <= body.size(); ++cut) {
    SCOPED_TRACE(cut);
    StreamCredentialScan scan(options);
    std::multiset<std::pair<std::uint64_t, std::string>> pieces;
    const std::size_t starts[] = {0, cut};
    auto take = [&](std::vector<StreamFinding> found) {
      for (StreamFinding& f : found) pieces.emplace(starts[f.piece] + f.offset, f.what);
    };
    take(scan.add(0, std::string_view(body).substr(0, cut)));
    take(scan.add(1, std::string_view(body).substr(cut)));
    take(scan.finish());
    ASSERT_EQ(pieces, whole);
  }
}

}  // namespace
}  // namespace mailtap::tools
