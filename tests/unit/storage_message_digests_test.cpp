// messages.sha256 is computed on the storage thread from the body pieces it is given: DATA text
// as mailtap sent it (dots doubled, the terminator), BDAT payloads, and what --max-body cut. The
// digest is the SHA-256 of the body the server stored, however the pieces were cut.
#include "storage/message_digests.hpp"

#include <gtest/gtest.h>
#include <openssl/sha.h>

#include <string>
#include <vector>

#include "proxy/common/hex.hpp"
#include "storage/reader.hpp"
#include "storage/recorder.hpp"
#include "tests/unit/recorded_event_for_tests.hpp"
#include "tests/unit/storage_records_for_tests.hpp"
#include "tests/unit/temp_dir.hpp"

namespace mailtap::storage {
namespace {

using smtp::EventKind;

std::string sha256_of(std::string_view s) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), md);
  return to_hex(md, sizeof md);
}

// DATA text as mailtap sends it, and the body the server stores from it.
const std::string kWire = "Subject: hi\r\n\r\n..dot\r\n...two\r\n..\r\nend .\r\n.\r\n";
const std::string kBody = "Subject: hi\r\n\r\n.dot\r\n..two\r\n.\r\nend .\r\n";

std::string digest_of_pieces(const std::vector<std::string_view>& pieces, EventKind kind) {
  MessageDigests d;
  for (std::string_view p : pieces) d.add(1, 1, kind, p);
  return d.finish(1, 1);
}

TEST(StorageMessageDigests, DataTextIsHashedAsStoredHoweverItIsCut) {
  const std::string want = sha256_of(kBody);
  EXPECT_EQ(digest_of_pieces({kWire}, EventKind::data), want);
  std::vector<std::string_view> bytes;
  for (std::size_t i = 0; i < kWire.size(); ++i)
    bytes.push_back(std::string_view(kWire).substr(i, 1));
  EXPECT_EQ(digest_of_pieces(bytes, EventKind::data), want) << "byte by byte";
  for (std::size_t cut = 0; cut <= kWire.size(); ++cut) {
    const std::string_view w = kWire;
    EXPECT_EQ(digest_of_pieces({w.substr(0, cut), w.substr(cut)}, EventKind::data), want)
        << "cut at " << cut;
  }
}

TEST(StorageMessageDigests, AgreesWithTheReadersBodyForTextCutAnywhere) {
  // Cut off inside a line after a transparency dot (the session ended there): the reader keeps
  // what was sent, and so does the digest.
  for (const std::string wire : {"a\r\n.", "a\r\n..b", "a\r\n.\r", "a\r\n.\r\n", ".\r\n"}) {
    smtp::MessageBodyAssembler reader(/*via_bdat=*/false);
    reader.append(wire);
    EXPECT_EQ(digest_of_pieces({wire}, EventKind::data), sha256_of(reader.take())) << wire;
  }
}

TEST(StorageMessageDigests, BdatChunksCountAsTheyAre) {
  const std::string chunk = std::string("..\r\n.\r\n\0x", 9);
  EXPECT_EQ(digest_of_pieces({chunk.substr(0, 4), chunk.substr(4)}, EventKind::bdat_chunk),
            sha256_of(chunk));
}

TEST(StorageMessageDigests, TransactionsAndSessionsKeepTheirOwnDigests) {
  MessageDigests d;
  d.add(1, 1, EventKind::data, "one\r\n");
  d.add(1, 2, EventKind::bdat_chunk, "two");  // pipelined behind the first
  d.add(2, 1, EventKind::data, "other session\r\n");
  d.add(1, 1, EventKind::data, ".\r\n");
  d.add(1, 0, EventKind::bdat_chunk, "no transaction: nobody's");
  EXPECT_EQ(d.finish(1, 1), sha256_of("one\r\n"));
  EXPECT_EQ(d.finish(1, 2), sha256_of("two"));
  EXPECT_EQ(d.finish(1, 1), sha256_of("")) << "finished once";
  d.forget(2);
  EXPECT_EQ(d.finish(2, 1), sha256_of("")) << "forgotten with its session";
}

// Through the recorder: a message row's sha256 covers its body events and what --max-body cut.
TEST(StorageMessageDigests, TheRecorderFillsMessagesSha256FromTheBodyItWasGiven) {
  test_support::TempDir dir;
  const std::string path = dir.file("m.db");
  RecorderOptions o;
  o.path = path;
  std::string error;
  auto rec = Recorder::open(o, error);
  ASSERT_NE(rec, nullptr) << error;
  const std::string_view wire = kWire;
  SessionEvent head{1, 1, test_support::recorded()};
  auto& e = test_support::edit(head.event);
  e.direction = smtp::Direction::client_to_upstream;
  e.kind = EventKind::data;
  e.verb = "DATA";
  e.transaction = 1;
  e.bytes = std::string(wire.substr(0, 20));
  e.wire_size = e.bytes.size();
  SessionBodyTail tail{1, {1, EventKind::data, std::string(wire.substr(20))}};
  SessionMessage m{1, 1, {}};
  m.message.mail_from = "MAIL FROM:<a@example.org>";
  m.message.transaction = 1;
  m.message.size = kBody.size();
  m.message.body_truncated = true;
  test_support::record_batches(*rec,
                               {test_support::batch(test_support::session_opened(1)),
                                test_support::batch(std::move(head), std::move(tail), std::move(m)),
                                test_support::batch(test_support::session_closed(1))});
  rec.reset();
  auto reader = Reader::open(path, error);
  ASSERT_NE(reader, nullptr) << error;
  std::optional<SessionDetail> detail;
  ASSERT_TRUE(reader->load_session(1, detail, error)) << error;
  ASSERT_TRUE(detail);
  ASSERT_EQ(detail->messages.size(), 1u);
  EXPECT_EQ(detail->messages[0].message.sha256_hex, sha256_of(kBody));
}

}  // namespace
}  // namespace mailtap::storage
