// A session loaded without its commands, replies and notes (Reader::EventRows::bodies_only) and
// its events handed on a batch at a time (for_each_session_event): the same events, in the same
// order, as load_session gives whole, so the same JSON; and a session removed or replaced while
// it is read is an error, never a document of other events.
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "storage/database.hpp"
#include "storage/reader.hpp"
#include "storage/recorder.hpp"
#include "storage/session_events.hpp"
#include "storage/stored_body.hpp"
#include "tests/unit/recorded_event_for_tests.hpp"
#include "tests/unit/storage_records_for_tests.hpp"
#include "tests/unit/temp_dir.hpp"
#include "tools/json_writer.hpp"
#include "tools/session_json.hpp"

namespace mailtap::storage {
namespace {

using test_support::batch;
using test_support::TempDir;

SessionEvent event(SessionKey key, std::uint64_t seq, smtp::EventKind kind, std::string bytes,
                   std::uint64_t transaction = 1) {
  SessionEvent r{key, seq, test_support::recorded()};
  auto& e = test_support::edit(r.event);
  const bool reply = kind == smtp::EventKind::reply;
  e.direction = reply ? smtp::Direction::upstream_to_client : smtp::Direction::client_to_upstream;
  e.phase = smtp::Phase::tls;
  e.kind = kind;
  e.verb = kind == smtp::EventKind::data ? "DATA" : "RCPT";
  e.reply_code = reply ? 250 : 0;
  e.transaction = transaction;
  e.wire_size = bytes.size();
  e.bytes = std::move(bytes);
  e.time = Clock::now();
  return r;
}

constexpr int kRcpts = 400;  // 800 events: batches of kSessionEventBatch, and one cut short

// Session 1: RCPT and reply, kRcpts times, a DATA body of 300 KiB (most in the body file) among
// them, then a message.
std::string record(const TempDir& dir) {
  const std::string path = dir.file("m.db");
  RecorderOptions o;
  o.path = path;
  std::string error;
  auto rec = Recorder::open(o, error);
  EXPECT_NE(rec, nullptr) << error;
  const SessionKey key = rec->new_session_key();
  std::vector<std::vector<Record>> batches;
  batches.push_back(batch(test_support::session_opened(key)));
  std::uint64_t seq = 0;
  for (int i = 0; i < kRcpts; ++i) {
    seq += 2;
    batches.push_back(batch(
        event(key, seq - 1, smtp::EventKind::command, "RCPT TO:<r" + std::to_string(i) + "@x>\r\n"),
        event(key, seq, smtp::EventKind::reply, "250 2.1.5 Ok\r\n")));
    if (i == kRcpts / 2)
      batches.push_back(
          batch(event(key, ++seq, smtp::EventKind::data, std::string(300 * 1024, 'x') + "\r\n")));
  }
  SessionMessage m;
  m.key = key;
  m.seq = 1;
  m.message.mail_from = "MAIL FROM:<a@x>";
  m.message.recipients = {{"RCPT TO:<r0@x>", 250, "250 2.1.5 Ok"}};
  m.message.transaction = 1;
  m.message.final_code = 250;
  m.message.final_reply = "250 2.0.0 queued";
  batches.push_back(batch(std::move(m)));
  batches.push_back(batch(test_support::session_closed(key)));
  test_support::record_batches(*rec, std::move(batches));
  rec->stop();
  EXPECT_FALSE(rec->failed()) << rec->failure_reason();
  return path;
}

struct Loaded {
  std::unique_ptr<Reader> reader;
  std::optional<SessionDetail> detail;
};

Loaded load(const std::string& path, Reader::EventRows rows) {
  Loaded l;
  std::string error;
  l.reader = Reader::open(path, error);
  EXPECT_NE(l.reader, nullptr) << error;
  EXPECT_TRUE(
      l.reader->load_session(1, l.detail, error, Reader::BodyOctets::leave_past_inline, rows))
      << error;
  EXPECT_TRUE(l.detail);
  return l;
}

EventBatchReader batches_of(Loaded& l, int* reads = nullptr) {
  return [&l, reads](std::uint64_t after, std::vector<EventRow>& out, InlineBodyBudget& budget,
                     std::string& error) {
    if (reads != nullptr) ++*reads;
    return l.reader->session_events(1, *l.detail->events_left, after, kSessionEventBatch, out,
                                    error, &budget);
  };
}

// The session's JSON as mailtap show --json writes it, its events from `events` if given.
std::string json(Loaded& l, const tools::EventSource& events = {}) {
  SessionOctets octets(*l.detail);
  tools::JsonWriter w;
  std::string error;
  EXPECT_TRUE(tools::write_session_detail(w, *l.detail, octets, error, events)) << error;
  return w.take();
}

// The events `events` hands on: their seqs, each checked against `whole`'s event at its place.
std::vector<std::uint64_t> handed_on(const tools::EventSource& events, const SessionDetail& whole) {
  std::vector<std::uint64_t> seqs;
  std::string error;
  const bool read = events(
      [&](const EventRow& row) {
        const EventRow& loaded = whole.events.at(seqs.size());
        EXPECT_EQ(row.seq, loaded.seq);
        EXPECT_EQ(row.event.bytes, loaded.event.bytes);
        seqs.push_back(row.seq);
        return true;
      },
      error);
  EXPECT_TRUE(read) << error;
  return seqs;
}

TEST(SessionEvents, LoadsOnlyTheBodiesAndCountsTheRest) {
  TempDir dir;
  Loaded l = load(record(dir), Reader::EventRows::bodies_only);
  ASSERT_EQ(l.detail->events.size(), 1u);  // the body's, which SessionOctets needs
  ASSERT_TRUE(l.detail->events_left);
  EXPECT_EQ(l.detail->events_left->count, 2 * kRcpts);
  EXPECT_EQ(l.detail->events_left->last_seq, 2u * kRcpts + 1);
}

// EventRows::none: nothing loaded but the session and how many events and messages it has;
// the events (the body's among them, most of it in the body file), the message and its body's
// pieces read back as the JSON is written, which is `mailtap show --json`'s.
TEST(SessionEvents, LoadsNoEventNorMessageAndWritesTheSameJson) {
  TempDir dir;
  const std::string path = record(dir);
  Loaded whole = load(path, Reader::EventRows::all);
  Loaded streamed = load(path, Reader::EventRows::none);
  const SessionDetail& d = *streamed.detail;
  EXPECT_TRUE(d.events.empty());
  EXPECT_TRUE(d.messages.empty());
  ASSERT_TRUE(d.events_left && d.messages_left);
  EXPECT_EQ(d.events_left->count, 2 * kRcpts + 1);
  EXPECT_TRUE(d.events_left->bodies);
  EXPECT_TRUE(d.events_left->in_body_file);
  EXPECT_EQ(d.messages_left->count, 1);
  const auto batches = batches_of(streamed);
  const tools::EventSource events = [&](const auto& fn, std::string& error) {
    return for_each_session_event(d, batches, fn, error);
  };
  const tools::MessageSource messages = [&](const auto& fn, std::string& error) {
    return for_each_session_message(
        d,
        [&](std::uint64_t after, std::vector<MessageRow>& out, std::string& e) {
          return streamed.reader->session_messages(1, *d.messages_left, after, kSessionMessageBatch,
                                                   out, e);
        },
        fn, error);
  };
  InlineBodyBudget budget;
  SessionOctets octets(d, [&](const MessageRow& m, std::uint64_t after,
                              std::vector<StoredBodyPiece>& out, std::string& error) {
    if (after == 0) budget = {};
    return streamed.reader->message_body_pieces(1, d.events_left->started_at, m, after,
                                                kBodyPieceBatch, budget, out, error);
  });
  tools::JsonWriter w;
  std::string error;
  EXPECT_TRUE(tools::write_session_detail(w, d, octets, error, events, messages)) << error;
  EXPECT_EQ(w.take(), json(whole));
}

TEST(SessionEvents, HandsOnEveryEventInOrderABatchAtATime) {
  TempDir dir;
  const std::string path = record(dir);
  Loaded whole = load(path, Reader::EventRows::all);
  Loaded streamed = load(path, Reader::EventRows::bodies_only);
  ASSERT_EQ(whole.detail->events.size(), 2u * kRcpts + 1);
  int reads = 0;
  const auto batches = batches_of(streamed, &reads);
  const tools::EventSource events = [&](const auto& fn, std::string& error) {
    return for_each_session_event(*streamed.detail, batches, fn, error);
  };
  EXPECT_EQ(handed_on(events, *whole.detail).size(), whole.detail->events.size());
  EXPECT_EQ(reads, (2 * kRcpts + kSessionEventBatch - 1) / kSessionEventBatch);
  // The JSON `mailtap show --json` writes, whichever way the events came.
  EXPECT_EQ(json(streamed, events), json(whole));
}

TEST(SessionEvents, StopsWhenTheReceiverStops) {
  TempDir dir;
  Loaded l = load(record(dir), Reader::EventRows::bodies_only);
  int reads = 0;
  int handed = 0;
  std::string error;
  EXPECT_TRUE(for_each_session_event(
      *l.detail, batches_of(l, &reads), [&](const EventRow&) { return ++handed < 3; }, error));
  EXPECT_EQ(handed, 3);
  EXPECT_EQ(reads, 1);
}

// Session 1 loaded, `change` made to the record, then its events read: false with `error` set
// when they could not all be; `handed` counts those handed on.
bool read_after(const std::string& change, std::string& error, int& handed) {
  TempDir dir;
  const std::string path = record(dir);
  Loaded l = load(path, Reader::EventRows::bodies_only);
  {
    Database db;
    EXPECT_TRUE(Database::open(path, OpenOptions{OpenMode::read_write}, db).ok());
    EXPECT_TRUE(db.exec(change).ok());
  }
  return for_each_session_event(
      *l.detail, batches_of(l),
      [&](const EventRow&) {
        ++handed;
        return true;
      },
      error);
}

// prune removing the session, or a new session taking its id after that (ids are reused once
// the newest is gone), between the load and the batches: an error, never other events.
TEST(SessionEvents, ASessionRemovedOrReplacedMeanwhileIsAnError) {
  for (const char* change :
       {"DELETE FROM events WHERE session_id = 1 AND seq > 300",
        "UPDATE sessions SET started_at = '2030-01-01T00:00:00.000000Z' WHERE id = 1"}) {
    SCOPED_TRACE(change);
    std::string error;
    int handed = 0;
    EXPECT_FALSE(read_after(change, error, handed));
    EXPECT_NE(error.find("session 1 lost events while it was being read"), std::string::npos)
        << error;
    EXPECT_LT(handed, 2 * kRcpts + 1);
  }
}

// A started_at stored as something other than text (a damaged file: a BLOB, a number) is the
// same started_at in the batches as in the load: its events are read, the session shown as
// unreadable, not reported as having lost them.
TEST(SessionEvents, AStartedAtStoredAsNoTextStillMatchesItself) {
  for (const char* damage : {"UPDATE sessions SET started_at = X'6869' WHERE id = 1",
                             "UPDATE sessions SET started_at = 0 WHERE id = 1"}) {
    SCOPED_TRACE(damage);
    TempDir dir;
    const std::string path = record(dir);
    {
      Database db;
      ASSERT_TRUE(Database::open(path, OpenOptions{OpenMode::read_write}, db).ok());
      ASSERT_TRUE(db.exec(damage).ok());
    }
    Loaded l = load(path, Reader::EventRows::bodies_only);
    EXPECT_TRUE(l.detail->session.started_unreadable);
    int handed = 0;
    std::string error;
    EXPECT_TRUE(for_each_session_event(
        *l.detail, batches_of(l),
        [&](const EventRow&) {
          ++handed;
          return true;
        },
        error))
        << error;
    EXPECT_EQ(handed, 2 * kRcpts + 1);  // the RCPTs, their replies and the DATA body
  }
}

// Session 1: a DATA message whose body is mostly in the body file (its first 5 KiB in the
// database), a BDAT transaction of '~' aborted after two chunks of 8 KiB (no message: RSET), its
// octets in the database, then a BDAT message whose first chunk (8 KiB) is in the database and
// its second in the body file.
std::string record_aborted_bdat_between(const TempDir& dir) {
  const std::string path = dir.file("aborted.db");
  RecorderOptions o;
  o.path = path;
  std::string error;
  auto rec = Recorder::open(o, error);
  EXPECT_NE(rec, nullptr) << error;
  const SessionKey key = rec->new_session_key();
  std::vector<std::vector<Record>> batches;
  batches.push_back(batch(test_support::session_opened(key)));
  const auto message = [&](std::uint64_t seq, std::uint64_t transaction, bool via_bdat) {
    SessionMessage m;
    m.key = key;
    m.seq = seq;
    m.message.mail_from = "MAIL FROM:<a@x>";
    m.message.recipients = {{"RCPT TO:<r@x>", 250, "250 2.1.5 Ok"}};
    m.message.transaction = transaction;
    m.message.via_bdat = via_bdat;
    m.message.final_code = 250;
    m.message.final_reply = "250 2.0.0 queued";
    return m;
  };
  batches.push_back(
      batch(event(key, 1, smtp::EventKind::data, std::string(5 * 1024, 'a'), 1),
            event(key, 2, smtp::EventKind::data, std::string(95 * 1024, 'a') + "\r\n.\r\n", 1)));
  batches.push_back(batch(message(1, 1, false)));
  batches.push_back(
      batch(event(key, 3, smtp::EventKind::bdat_chunk, std::string(8 * 1024, '~'), 2),
            event(key, 4, smtp::EventKind::bdat_chunk, std::string(8 * 1024, '~'), 2)));
  batches.push_back(
      batch(event(key, 5, smtp::EventKind::bdat_chunk, std::string(8 * 1024, 'c'), 3),
            event(key, 6, smtp::EventKind::bdat_chunk, std::string(70 * 1024, 'd'), 3)));
  batches.push_back(batch(message(2, 3, true)));
  batches.push_back(batch(test_support::session_closed(key)));
  test_support::record_batches(*rec, std::move(batches));
  rec->stop();
  EXPECT_FALSE(rec->failed()) << rec->failure_reason();
  return path;
}

// left_in_record's cursor (each message's body found past the one before) over bodies in the
// body file with an aborted BDAT transaction's chunks between two messages: every body is its
// own octets, and the JSON, written twice as the web page writes it (counted, then sent), is
// `mailtap show --json`'s.
TEST(SessionEvents, TheBodyCursorSkipsAnAbortedBdatTransactionBetweenMessages) {
  TempDir dir;
  const std::string path = record_aborted_bdat_between(dir);
  Loaded whole = load(path, Reader::EventRows::all);
  Loaded streamed = load(path, Reader::EventRows::none);
  const SessionDetail& d = *streamed.detail;
  ASSERT_TRUE(d.events_left && d.messages_left);
  EXPECT_TRUE(d.events_left->in_body_file);
  ASSERT_EQ(d.messages_left->count, 2);
  const LeftInRecord left = left_in_record(*streamed.reader, d);
  const tools::EventSource events = [&](const auto& fn, std::string& error) {
    return for_each_session_event(d, left.events, fn, error);
  };
  const tools::MessageSource messages = [&](const auto& fn, std::string& error) {
    return for_each_session_message(d, left.messages, fn, error);
  };
  SessionOctets octets(d, left.body_pieces);
  std::vector<std::string> bodies;
  std::string error;
  EXPECT_TRUE(messages(
      [&](const MessageRow& m) {
        std::string body;
        EXPECT_TRUE(octets.message_body(
            m,
            [&body](std::string_view piece) {
              body.append(piece);
              return true;
            },
            error))
            << error;
        bodies.push_back(std::move(body));
        return true;
      },
      error))
      << error;
  ASSERT_EQ(bodies.size(), 2u);
  EXPECT_EQ(bodies[0], std::string(100 * 1024, 'a') + "\r\n");
  EXPECT_EQ(bodies[1], std::string(8 * 1024, 'c') + std::string(70 * 1024, 'd'));
  const std::string expected = json(whole);
  for (int writing = 0; writing < 2; ++writing) {
    tools::JsonWriter w;
    EXPECT_TRUE(tools::write_session_detail(w, d, octets, error, events, messages)) << error;
    EXPECT_EQ(w.take(), expected) << "writing " << writing;
  }
  // The page's view: each body's first octets, those the database holds.
  SessionOctets whole_octets(*whole.detail);
  tools::JsonWriter preview;
  EXPECT_TRUE(tools::write_session_preview(preview, *whole.detail, whole_octets, error)) << error;
  const std::string expected_preview = preview.take();
  EXPECT_NE(expected_preview.find(std::string(1000, 'a')), std::string::npos);
  EXPECT_NE(expected_preview.find(std::string(1000, 'c')), std::string::npos);
  for (int writing = 0; writing < 2; ++writing) {
    tools::JsonWriter w;
    EXPECT_TRUE(tools::write_session_preview(w, d, octets, error, events, messages)) << error;
    EXPECT_EQ(w.take(), expected_preview) << "writing " << writing;
  }
  // Each message's preview: its own first octets, none of the aborted transaction's.
  std::vector<std::string> previews;
  EXPECT_TRUE(messages(
      [&](const MessageRow& m) {
        std::string preview_of;
        bool complete = true;
        EXPECT_TRUE(octets.message_body_preview(
            m,
            [&preview_of](std::string_view piece) {
              preview_of.append(piece);
              return true;
            },
            complete, error))
            << error;
        EXPECT_FALSE(complete);
        previews.push_back(std::move(preview_of));
        return true;
      },
      error))
      << error;
  ASSERT_EQ(previews.size(), 2u);
  EXPECT_EQ(previews[0], std::string(5 * 1024, 'a'));
  EXPECT_EQ(previews[1], std::string(8 * 1024, 'c'));
  for (const std::string& p : previews) EXPECT_EQ(p.find('~'), std::string::npos);
}

// Session 1: one DATA message of body events `pieces` (the recorder puts them in the database
// while its first kInlineBodyOctets fit, in the body file after).
std::string record_data_pieces(const TempDir& dir, const std::vector<std::string>& pieces) {
  const std::string path = dir.file("data-pieces.db");
  RecorderOptions o;
  o.path = path;
  std::string error;
  auto rec = Recorder::open(o, error);
  EXPECT_NE(rec, nullptr) << error;
  const SessionKey key = rec->new_session_key();
  std::vector<std::vector<Record>> batches;
  batches.push_back(batch(test_support::session_opened(key)));
  for (std::uint64_t seq = 1; seq <= pieces.size(); ++seq)
    batches.push_back(batch(event(key, seq, smtp::EventKind::data, pieces[seq - 1])));
  SessionMessage m;
  m.key = key;
  m.seq = 1;
  m.message.mail_from = "MAIL FROM:<a@x>";
  m.message.transaction = 1;
  m.message.final_code = 250;
  batches.push_back(batch(std::move(m)));
  batches.push_back(batch(test_support::session_closed(key)));
  test_support::record_batches(*rec, std::move(batches));
  rec->stop();
  EXPECT_FALSE(rec->failed()) << rec->failure_reason();
  return path;
}

// The one message of the session at `path`, read through left_in_record a batch at a time:
// its body is `expected_body`, its preview the whole load's (`expected_preview`, complete or
// not as `preview_complete`), and the session's JSON and preview JSON the whole load's.
void expect_read_in_batches_as_whole(const std::string& path, const std::string& expected_body,
                                     const std::string& expected_preview, bool preview_complete) {
  Loaded whole = load(path, Reader::EventRows::all);
  Loaded streamed = load(path, Reader::EventRows::none);
  const SessionDetail& d = *streamed.detail;
  const LeftInRecord left = left_in_record(*streamed.reader, d);
  SessionOctets octets(d, left.body_pieces);
  const tools::EventSource events = [&](const auto& fn, std::string& e) {
    return for_each_session_event(d, left.events, fn, e);
  };
  const tools::MessageSource messages = [&](const auto& fn, std::string& e) {
    return for_each_session_message(d, left.messages, fn, e);
  };
  std::string error;
  std::string body, preview;
  bool complete = !preview_complete;
  ASSERT_TRUE(messages(
      [&](const MessageRow& row) {
        const auto into = [](std::string& s) {
          return [&s](std::string_view piece) {
            s.append(piece);
            return true;
          };
        };
        return octets.message_body(row, into(body), error) &&
               octets.message_body_preview(row, into(preview), complete, error);
      },
      error))
      << error;
  EXPECT_EQ(body.size(), expected_body.size());
  EXPECT_TRUE(body == expected_body);
  EXPECT_EQ(preview.size(), expected_preview.size());
  EXPECT_TRUE(preview == expected_preview);
  EXPECT_EQ(complete, preview_complete);
  tools::JsonWriter w;
  EXPECT_TRUE(tools::write_session_detail(w, d, octets, error, events, messages)) << error;
  EXPECT_TRUE(w.take() == json(whole));
  SessionOctets whole_octets(*whole.detail);
  tools::JsonWriter whole_preview, streamed_preview;
  EXPECT_TRUE(tools::write_session_preview(whole_preview, *whole.detail, whole_octets, error))
      << error;
  EXPECT_TRUE(tools::write_session_preview(streamed_preview, d, octets, error, events, messages))
      << error;
  EXPECT_TRUE(streamed_preview.take() == whole_preview.take());
}

// A DATA body of more pieces than a batch (one per read of the client), its dots stuffed: read
// a batch at a time, it is the body the whole load gives, its dots unstuffed across batches.
TEST(SessionEvents, ABodyOfMoreThanABatchOfPiecesIsReadWhole) {
  TempDir dir;
  const std::size_t pieces = 2 * kBodyPieceBatch + 3;
  std::vector<std::string> sent(pieces - 1, "..ab\r\n");
  sent.emplace_back(".\r\n");
  std::string expected;
  for (std::size_t i = 1; i < pieces; ++i) expected += ".ab\r\n";
  expect_read_in_batches_as_whole(record_data_pieces(dir, sent), expected, expected,
                                  /*preview_complete=*/true);
}

// A body of exactly kBodyPieceBatch pieces: the second batch asked for is empty.
TEST(SessionEvents, ABodyOfExactlyABatchOfPiecesIsReadWhole) {
  TempDir dir;
  std::vector<std::string> pieces(kBodyPieceBatch - 1, "xy\r\n");
  pieces.emplace_back(".\r\n");
  std::string expected;
  for (std::size_t i = 1; i < kBodyPieceBatch; ++i) expected += "xy\r\n";
  expect_read_in_batches_as_whole(record_data_pieces(dir, pieces), expected, expected,
                                  /*preview_complete=*/true);
}

// A body whose pieces go to the body file only after the first batch (its first 4,096 pieces
// hold 40 KiB, the next three 10 KiB each, the third of them past kInlineBodyOctets): read
// whole, and its preview stops at that piece, in the second batch.
TEST(SessionEvents, BodyFilePiecesAfterTheFirstBatchAndAPreviewThatStopsAtOne) {
  TempDir dir;
  std::vector<std::string> pieces(kBodyPieceBatch, "abcdefgh\r\n");
  for (const char c : {'p', 'q', 'r', 's'})
    pieces.push_back(std::string(10 * 1024 - 2, c) + "\r\n");
  pieces.emplace_back(".\r\n");
  std::string body;
  for (std::size_t i = 0; i + 1 < pieces.size(); ++i) body += pieces[i];
  const std::string preview = body.substr(0, kBodyPieceBatch * 10 + 2 * 10 * 1024);
  expect_read_in_batches_as_whole(record_data_pieces(dir, pieces), body, preview,
                                  /*preview_complete=*/false);
}

// The pieces past a batch asked for twice (a StoredBodyReader read twice: its size, then its
// octets) are the same pieces: the second ask starts from the budget the first batch left, not
// the one the first read ended with, which would leave octets the database holds in their rows
// (where a session loaded without a row reader cannot read them).
TEST(SessionEvents, TheSameBatchOfBodyPiecesAskedAgainIsTheSame) {
  TempDir dir;
  std::vector<std::string> pieces(kBodyPieceBatch + 200,
                                  "abcdefghijklm\r\n");  // 15 octets each, all in the database
  pieces.emplace_back(".\r\n");
  Loaded streamed = load(record_data_pieces(dir, pieces), Reader::EventRows::none);
  const SessionDetail& d = *streamed.detail;
  const LeftInRecord left = left_in_record(*streamed.reader, d);
  std::optional<MessageRow> message;
  std::string error;
  ASSERT_TRUE(for_each_session_message(
      d, left.messages,
      [&message](const MessageRow& m) {
        message = m;
        return true;
      },
      error))
      << error;
  ASSERT_TRUE(message);
  std::vector<StoredBodyPiece> first, second, again;
  ASSERT_TRUE(left.body_pieces(*message, 0, first, error)) << error;
  ASSERT_EQ(first.size(), kBodyPieceBatch);
  for (int read = 0; read < 2; ++read) {
    std::vector<StoredBodyPiece>& out = read == 0 ? second : again;
    ASSERT_TRUE(left.body_pieces(*message, first.back().seq, out, error)) << error;
    ASSERT_EQ(out.size(), 201u) << "read " << read;
  }
  for (std::size_t i = 0; i < second.size(); ++i) {
    EXPECT_EQ(again[i].bytes, second[i].bytes) << "piece " << i;
    EXPECT_EQ(again[i].row_id.has_value(), second[i].row_id.has_value()) << "piece " << i;
    EXPECT_EQ(again[i].bytes, pieces[kBodyPieceBatch + i]) << "piece " << i;
  }
}

}  // namespace
}  // namespace mailtap::storage
