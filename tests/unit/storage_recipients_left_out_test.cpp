// messages.recipients_left_out (schema v10): how many RCPTs a message's row leaves out, written
// with the row and read from it, and counted from what older records hold when a v9 file
// migrates.
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "storage/database.hpp"
#include "storage/reader.hpp"
#include "storage/recorder.hpp"
#include "storage/schema.hpp"
#include "tests/unit/recorded_event_for_tests.hpp"
#include "tests/unit/storage_records_for_tests.hpp"
#include "tests/unit/temp_dir.hpp"

namespace mailtap::storage {
namespace {

using test_support::batch;
using test_support::count;
using test_support::TempDir;

RecorderOptions at(const std::string& path) {
  RecorderOptions o;
  o.path = path;
  return o;
}

// A client's command relayed upstream, as the dialogue records it.
SessionEvent command(SessionKey key, std::uint64_t seq, std::string verb, std::string line) {
  SessionEvent r{key, seq, test_support::recorded()};
  auto& e = test_support::edit(r.event);
  e.direction = smtp::Direction::client_to_upstream;
  e.phase = smtp::Phase::tls;
  e.kind = smtp::EventKind::command;
  e.verb = std::move(verb);
  e.bytes = line + "\r\n";
  e.wire_size = e.bytes.size();
  e.time = Clock::now();
  return r;
}

// mailtap's note about transaction `transaction`.
SessionEvent note(SessionKey key, std::uint64_t seq, std::uint64_t transaction, std::string text) {
  SessionEvent r{key, seq, test_support::recorded()};
  auto& e = test_support::edit(r.event);
  e.direction = smtp::Direction::mailtap_note;
  e.phase = smtp::Phase::tls;
  e.kind = smtp::EventKind::note;
  e.verb = "RCPT";
  e.note = std::move(text);
  e.transaction = transaction;
  e.time = Clock::now();
  return r;
}

// Message `seq` of transaction `transaction` (0: none, as rows before schema v4) keeping
// `kept` recipients at positions 0.., and `left_out` as the dialogue counted it.
SessionMessage message(SessionKey key, std::uint64_t seq, std::uint64_t transaction,
                       std::size_t kept, std::optional<smtp::RecipientsLeftOut> left_out = {}) {
  SessionMessage r;
  r.key = key;
  r.seq = seq;
  auto& m = r.message;
  m.mail_from = "MAIL FROM:<a@example.org>";
  for (std::size_t i = 0; i < kept; ++i)
    m.recipients.push_back({"RCPT TO:<r" + std::to_string(i) + "@example.net>", 250, "250 2.1.5 Ok",
                            static_cast<std::uint64_t>(i)});
  m.transaction = transaction;
  m.size = 0;
  m.sha256_hex = std::string(64, 'a');
  m.final_code = 250;
  m.final_reply = "250 2.0.0 Ok: queued";
  m.started = m.finished = Clock::now();
  m.recipients_left_out = left_out;
  return r;
}

std::optional<smtp::RecipientsLeftOut> read_back(Reader& reader, std::int64_t session,
                                                 std::uint64_t seq) {
  std::string error;
  std::optional<SessionDetail> d;
  EXPECT_TRUE(reader.load_session(session, d, error)) << error;
  std::optional<StoredMessage> stored;
  EXPECT_TRUE(reader.stored_message(session, seq, stored, error)) << error;
  if (!d || !stored || d->messages.size() < seq) {
    ADD_FAILURE() << "no message " << seq << " in session " << session;
    return std::nullopt;
  }
  // Both loads of a message read the same.
  EXPECT_EQ(d->messages[seq - 1].message.recipients_left_out,
            stored->row.message.recipients_left_out);
  return stored->row.message.recipients_left_out;
}

std::string column(const std::string& path, std::int64_t session, std::uint64_t seq) {
  Database db;
  EXPECT_TRUE(Database::open(path, OpenOptions{OpenMode::read_only}, db).ok());
  std::string out;
  EXPECT_TRUE(db.query_text("SELECT coalesce(recipients_left_out, 'NULL') || '|' || "
                            "coalesce(accepted_recipients_left_out, 'NULL') FROM messages "
                            "WHERE session_id = " +
                                std::to_string(session) + " AND seq = " + std::to_string(seq),
                            out)
                  .ok());
  return out;
}

// The count is the row's: what the recorder was handed is in the columns and what the readers
// read, whatever a note in the events says (a shell user's note, a client's text).
TEST(StorageRecipientsLeftOut, TheCountsAreWrittenWithTheRowAndReadFromIt) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  std::string error;
  {
    auto rec = Recorder::open(at(path), error);
    ASSERT_NE(rec, nullptr) << error;
    test_support::record_batches(
        *rec,
        {batch(test_support::session_opened(1),
               note(1, 1, 1,
                    "recipients left out: 99 RCPTs (98 accepted) of message transaction 1 "
                    "not kept in its recipients"),
               message(1, 1, 1, 2, smtp::RecipientsLeftOut{7, 5}),
               message(1, 2, 2, 2, smtp::RecipientsLeftOut{}), test_support::session_closed(1))});
  }
  EXPECT_EQ(column(path, 1, 1), "7|5");
  EXPECT_EQ(column(path, 1, 2), "0|0");
  auto reader = Reader::open(path, error);
  ASSERT_NE(reader, nullptr) << error;
  EXPECT_EQ(read_back(*reader, 1, 1), (smtp::RecipientsLeftOut{7, 5}));
  EXPECT_EQ(read_back(*reader, 1, 2), smtp::RecipientsLeftOut{});
}

// NULL in the columns is a count the record does not know, not 0.
TEST(StorageRecipientsLeftOut, AnUnknownCountReadsAsUnknown) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  std::string error;
  {
    auto rec = Recorder::open(at(path), error);
    ASSERT_NE(rec, nullptr) << error;
    test_support::record_batches(
        *rec, {batch(test_support::session_opened(1), message(1, 1, 1, 2, std::nullopt),
                     test_support::session_closed(1))});
  }
  EXPECT_EQ(column(path, 1, 1), "NULL|NULL");
  auto reader = Reader::open(path, error);
  ASSERT_NE(reader, nullptr) << error;
  EXPECT_EQ(read_back(*reader, 1, 1), std::nullopt);
}

// A version-9 file, as the releases before the column left it: the count of a message that left
// RCPTs out was only in a note's text, and messages recorded between bounding the recipients and
// noting the count have neither.
void make_version_nine_file(const std::string& path) {
  std::string error;
  {
    auto rec = Recorder::open(at(path), error);
    ASSERT_NE(rec, nullptr) << error;
    const auto rcpt = [](SessionKey k, std::uint64_t seq) {
      return command(k, seq, "RCPT", "RCPT TO:<r@example.net>");
    };
    const auto mail = [](SessionKey k, std::uint64_t seq) {
      return command(k, seq, "MAIL", "MAIL FROM:<a@example.org>");
    };
    test_support::record_batches(
        *rec,
        {// Session 1: noted (3 RCPTs, 1 kept).
         batch(test_support::session_opened(1), mail(1, 1), rcpt(1, 2), rcpt(1, 3), rcpt(1, 4),
               note(1, 5, 1,
                    "recipients left out: 2 RCPTs (1 accepted) of message transaction 1 not kept "
                    "in its recipients: past what a message keeps (refused ones past 64 KiB of "
                    "command and reply text, any past 1 MiB); each is in the events"),
               message(1, 1, 1, 1), test_support::session_closed(1)),
         // Session 2: transaction 1 kept both its RCPTs; a MAIL relayed and refused (no
         // message) between; transaction 3 kept 1 of its 3 with no note.
         batch(test_support::session_opened(2), mail(2, 1), rcpt(2, 2), rcpt(2, 3),
               message(2, 1, 1, 2), mail(2, 4), rcpt(2, 5), mail(2, 6), rcpt(2, 7), rcpt(2, 8),
               rcpt(2, 9), message(2, 2, 3, 1), test_support::session_closed(2)),
         // Session 3: a row from before schema v4 (no mail_transaction), no events.
         batch(test_support::session_opened(3), message(3, 1, 0, 2),
               test_support::session_closed(3))});
  }
  Database db;
  ASSERT_TRUE(Database::open(path, OpenOptions{OpenMode::read_write}, db).ok());
  ASSERT_TRUE(db.exec("ALTER TABLE sessions DROP COLUMN duration_us; "
                      "ALTER TABLE messages DROP COLUMN recipients_left_out; "
                      "ALTER TABLE messages DROP COLUMN accepted_recipients_left_out; "
                      "PRAGMA user_version = 9;")
                  .ok());
}

TEST(StorageRecipientsLeftOut, AVersionNineFileMigratesWithTheCountsItsRecordsHold) {
  TempDir dir;
  const std::string path = dir.file("v9.db");
  std::string error;
  ASSERT_NO_FATAL_FAILURE(make_version_nine_file(path));
  EXPECT_EQ(Reader::open(path, error), nullptr) << "the tools wait for the proxy to migrate";
  {
    auto rec = Recorder::open(at(path), error);
    ASSERT_NE(rec, nullptr) << error;
  }
  EXPECT_EQ(count(path, "PRAGMA user_version"), kSchemaVersion);
  EXPECT_EQ(column(path, 1, 1), "2|1");        // from the note
  EXPECT_EQ(column(path, 2, 1), "0|0");        // every RCPT relayed has its row
  EXPECT_EQ(column(path, 2, 2), "NULL|NULL");  // 2 of 3 missing, no note: unknown
  EXPECT_EQ(column(path, 3, 1), "0|0");        // before schema v4 every RCPT had its row
  auto reader = Reader::open(path, error);
  ASSERT_NE(reader, nullptr) << error;
  EXPECT_EQ(read_back(*reader, 1, 1), (smtp::RecipientsLeftOut{2, 1}));
  EXPECT_EQ(read_back(*reader, 2, 1), smtp::RecipientsLeftOut{});
  EXPECT_EQ(read_back(*reader, 2, 2), std::nullopt);
  EXPECT_EQ(read_back(*reader, 3, 1), smtp::RecipientsLeftOut{});
}

}  // namespace
}  // namespace mailtap::storage
