// Unfinished messages (Reader::unfinished_messages): a transaction whose body events have no
// message row (a session cut inside its body, a body the client or server left), read back from
// the events with its number, whether the record holds its end of data, and its body as far as
// it was recorded; and what the tools say of one (tools/unfinished_message.hpp).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "storage/reader.hpp"
#include "storage/recorder.hpp"
#include "storage/stored_body.hpp"
#include "tests/unit/recorded_event_for_tests.hpp"
#include "tests/unit/storage_records_for_tests.hpp"
#include "tests/unit/temp_dir.hpp"
#include "tools/unfinished_message.hpp"

namespace mailtap::storage {
namespace {

using test_support::batch;
using test_support::TempDir;

SessionEvent event(SessionKey key, std::uint64_t seq, smtp::EventKind kind, std::string verb,
                   std::string bytes, std::uint64_t transaction = 0,
                   smtp::Direction direction = smtp::Direction::client_to_upstream) {
  SessionEvent r{key, seq, test_support::recorded()};
  auto& e = test_support::edit(r.event);
  e.direction = direction;
  e.phase = smtp::Phase::tls;
  e.kind = kind;
  e.verb = std::move(verb);
  e.transaction = transaction;
  e.wire_size = bytes.size();
  e.bytes = std::move(bytes);
  e.time = Clock::now();
  return r;
}

SessionEvent mail(SessionKey key, std::uint64_t seq, const std::string& from) {
  return event(key, seq, smtp::EventKind::command, "MAIL", "MAIL FROM:<" + from + ">\r\n");
}

SessionEvent data(SessionKey key, std::uint64_t seq, std::uint64_t transaction, std::string text) {
  return event(key, seq, smtp::EventKind::data, "DATA", std::move(text), transaction);
}

SessionMessage finished(SessionKey key, std::uint64_t seq, std::uint64_t transaction) {
  SessionMessage m;
  m.key = key;
  m.seq = seq;
  m.message.mail_from = "MAIL FROM:<done@example.org>";
  m.message.recipients = {{"RCPT TO:<b@example.net>", 250, "250 2.1.5 Ok"}};
  m.message.transaction = transaction;
  m.message.final_code = 250;
  m.message.final_reply = "250 2.0.0 queued";
  return m;
}

// DATA text of `lines` lines, every third with a stuffed dot.
std::string text(int lines) {
  std::string s;
  for (int i = 0; i < lines; ++i)
    s += (i % 3 == 0 ? ".." : "") + std::string("line ") + std::to_string(i) + " of the body\r\n";
  return s;
}

// `text` as the server stores it: the stuffed dots removed.
std::string unstuffed(const std::string& t) {
  std::string out;
  for (std::size_t i = 0; i < t.size();) {
    std::size_t end = t.find("\r\n", i);
    end = end == std::string::npos ? t.size() : end + 2;
    const std::size_t from = t[i] == '.' ? i + 1 : i;
    out += t.substr(from, end - from);
    i = end;
  }
  return out;
}

struct Db {
  TempDir dir;
  std::string path = dir.file("m.db");
  std::unique_ptr<Reader> reader;
  std::int64_t id = 0;

  // One session of `records` (each its own batch), left without an end unless one is among them.
  void record(const std::vector<Record>& records) {
    RecorderOptions o;
    o.path = path;
    std::string error;
    auto rec = Recorder::open(o, error);
    ASSERT_NE(rec, nullptr) << error;
    std::vector<std::vector<Record>> batches;
    for (const Record& r : records) batches.push_back({r});
    test_support::record_batches(*rec, std::move(batches));
    rec->stop();
    ASSERT_FALSE(rec->failed()) << rec->failure_reason();
    reader = Reader::open(path, error);
    ASSERT_NE(reader, nullptr) << error;
    std::vector<SessionRow> rows;
    ASSERT_TRUE(reader->list_sessions({}, rows, error)) << error;
    ASSERT_EQ(rows.size(), 1u);
    id = rows[0].id;
  }

  std::vector<UnfinishedMessage> unfinished() {
    std::vector<UnfinishedMessage> out;
    std::string error;
    EXPECT_TRUE(reader->unfinished_messages(id, out, error)) << error;
    return out;
  }

  // The unfinished message's body as `show --message N` reads it.
  std::string body(const UnfinishedMessage& u) {
    std::optional<SessionDetail> d;
    std::string error;
    EXPECT_TRUE(reader->load_session(id, d, error, Reader::BodyOctets::leave_in_file)) << error;
    if (!d) return "";
    SessionOctets octets(*d);
    std::string out;
    EXPECT_TRUE(octets.message_body(
        u.row,
        [&out](std::string_view piece) {
          out.append(piece);
          return true;
        },
        error))
        << error;
    return out;
  }
};

constexpr SessionKey kKey = 1;

TEST(UnfinishedMessage, ABodyCutWithoutItsEndIsReadBackAsFarAsRecorded) {
  Db db;
  // Past 64 KiB, so that the last pieces are in the body file; the last line cut in the middle.
  const std::string first = text(3000);
  const std::string second = text(1000) + "a line cut in the midd";
  db.record({test_support::session_opened(kKey), mail(kKey, 1, "a@example.org"),
             data(kKey, 2, 1, first), data(kKey, 3, 1, second)});
  const auto u = db.unfinished();
  ASSERT_EQ(u.size(), 1u);
  EXPECT_EQ(u[0].row.seq, 1u);
  EXPECT_EQ(u[0].row.message.transaction, 1u);
  EXPECT_FALSE(u[0].row.message.via_bdat);
  EXPECT_EQ(u[0].row.message.mail_from, "MAIL FROM:<a@example.org>");
  EXPECT_EQ(u[0].row.message.final_code, 0);
  EXPECT_EQ(u[0].first_seq, 2u);
  EXPECT_EQ(u[0].last_seq, 3u);
  EXPECT_EQ(u[0].wire_octets, first.size() + second.size());
  EXPECT_FALSE(u[0].end_of_data);
  EXPECT_TRUE(db.body(u[0]) == unstuffed(first + second));
}

TEST(UnfinishedMessage, ATerminatorInTheRecordIsItsEndOfDataWhereverItsOctetsAre) {
  // The terminator split over two events, the last ones in the body file.
  Db db;
  const std::string body = text(4000);
  db.record({test_support::session_opened(kKey), mail(kKey, 1, "a@example.org"),
             data(kKey, 2, 1, body.substr(0, body.size() - 1)), data(kKey, 3, 1, "\n.\r\n")});
  const auto u = db.unfinished();
  ASSERT_EQ(u.size(), 1u);
  EXPECT_TRUE(u[0].end_of_data);
  EXPECT_TRUE(db.body(u[0]) == unstuffed(body));

  // Held in the rows, the terminator alone in the last event.
  Db small;
  small.record({test_support::session_opened(kKey), mail(kKey, 1, "a@example.org"),
                data(kKey, 2, 1, "Subject: s\r\n\r\nhi\r\n"), data(kKey, 3, 1, ".\r\n")});
  ASSERT_EQ(small.unfinished().size(), 1u);
  EXPECT_TRUE(small.unfinished()[0].end_of_data);

  // A line that begins with a stuffed dot is no terminator.
  Db stuffed;
  stuffed.record({test_support::session_opened(kKey), mail(kKey, 1, "a@example.org"),
                  data(kKey, 2, 1, "a\r\n..\r\n")});
  ASSERT_EQ(stuffed.unfinished().size(), 1u);
  EXPECT_FALSE(stuffed.unfinished()[0].end_of_data);
}

TEST(UnfinishedMessage, NumberedAfterTheMessagesAndOnlyWithoutARow) {
  Db db;
  SessionEvent unsent =
      event(kKey, 6, smtp::EventKind::data, "DATA", "", 2, smtp::Direction::client_to_mailtap);
  test_support::edit(unsent.event).note = "not sent upstream: 12 octets";
  test_support::edit(unsent.event).wire_size = 12;
  db.record({test_support::session_opened(kKey), mail(kKey, 1, "done@example.org"),
             data(kKey, 2, 1, "one\r\n.\r\n"), finished(kKey, 1, 1),
             mail(kKey, 4, "cut@example.org"), data(kKey, 5, 2, "two\r\nand th"), unsent,
             test_support::session_closed(kKey, Clock::now(), Outcome::client_closed)});
  const auto u = db.unfinished();
  ASSERT_EQ(u.size(), 1u);
  EXPECT_EQ(u[0].row.seq, 2u);
  EXPECT_EQ(u[0].row.message.transaction, 2u);
  EXPECT_EQ(u[0].row.message.mail_from, "MAIL FROM:<cut@example.org>");
  EXPECT_EQ(u[0].wire_octets, 11u);  // the note's octets are not the body's
  EXPECT_EQ(u[0].last_seq, 5u);
  EXPECT_EQ(db.body(u[0]), "two\r\nand th");

  Db whole;  // every transaction has its row: none
  whole.record({test_support::session_opened(kKey), mail(kKey, 1, "done@example.org"),
                data(kKey, 2, 1, "one\r\n.\r\n"), finished(kKey, 1, 1)});
  EXPECT_TRUE(whole.unfinished().empty());
}

TEST(UnfinishedMessage, ABdatBodyEndsWithAWholeLastChunk) {
  const auto bdat = [](const std::string& command, const std::string& chunk) {
    Db db;
    db.record({test_support::session_opened(kKey), mail(kKey, 1, "a@example.org"),
               event(kKey, 2, smtp::EventKind::command, "BDAT", "BDAT 3\r\n"),
               event(kKey, 3, smtp::EventKind::bdat_chunk, "BDAT", "abc", 1),
               event(kKey, 4, smtp::EventKind::command, "BDAT", command),
               event(kKey, 5, smtp::EventKind::bdat_chunk, "BDAT", chunk, 1)});
    auto u = db.unfinished();
    EXPECT_EQ(u.size(), 1u);
    if (!u.empty()) {
      EXPECT_TRUE(u[0].row.message.via_bdat);
      EXPECT_EQ(db.body(u[0]), "abc" + chunk);
    }
    return !u.empty() && u[0].end_of_data;
  };
  EXPECT_TRUE(bdat("BDAT 4 LAST\r\n", "defg"));
  EXPECT_TRUE(bdat("bdat 4 last\r\n", "defg"));
  EXPECT_FALSE(bdat("BDAT 4 LAST\r\n", "de"));  // cut inside the last chunk
  EXPECT_FALSE(bdat("BDAT 4\r\n", "defg"));     // not the last
}

TEST(UnfinishedMessage, WhatTheToolsSayFollowsWhatTheRecordCanTell) {
  UnfinishedMessage u;
  u.row.seq = 3;
  SessionRow s;
  s.record = RecordState::cut;
  EXPECT_EQ(tools::unfinished_text(s, u, 120).rfind("message 3 not finished: session cut after "
                                                    "120 octets of its body (no end of data",
                                                    0),
            0u);
  u.end_of_data = true;
  EXPECT_NE(tools::unfinished_text(s, u, 120).find("the server may have accepted it"),
            std::string::npos);
  s.record = RecordState::ended;
  s.ended = Clock::now();
  s.outcome = Outcome::client_closed;
  EXPECT_NE(tools::unfinished_text(s, u, 120).find("never reached the server"), std::string::npos);
  u.end_of_data = false;
  EXPECT_NE(tools::unfinished_text(s, u, 120).find("the server never accepted it"),
            std::string::npos);
  s.ended.reset();
  s.record = RecordState::recording;
  EXPECT_EQ(tools::unfinished_text(s, u, 120),
            "message 3 in progress: 120 octets of its body so far, no end of data yet");
}

}  // namespace
}  // namespace mailtap::storage
