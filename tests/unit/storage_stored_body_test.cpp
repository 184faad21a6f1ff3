// A message read as where its body is stored (Reader::stored_message) and its body passed on in
// bounded chunks (StoredBodyReader): the same octets load_session assembles, with no more than a
// chunk in hand, from the database and the body file alike.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "storage/body_files.hpp"
#include "storage/database.hpp"
#include "storage/reader.hpp"
#include "storage/recorder.hpp"
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

// One body event: client to upstream, in transaction `transaction`.
SessionEvent body_event(SessionKey key, std::uint64_t seq, std::uint64_t transaction,
                        smtp::EventKind kind, std::string bytes) {
  SessionEvent r{key, seq, test_support::recorded()};
  auto& e = test_support::edit(r.event);
  e.direction = smtp::Direction::client_to_upstream;
  e.phase = smtp::Phase::tls;
  e.kind = kind;
  e.verb = kind == smtp::EventKind::data ? "DATA" : "BDAT";
  e.transaction = transaction;
  e.wire_size = bytes.size();
  e.bytes = std::move(bytes);
  e.time = Clock::now();
  return r;
}

SessionMessage message(SessionKey key, std::uint64_t seq, std::uint64_t transaction, bool via_bdat,
                       std::string rcpt) {
  SessionMessage m;
  m.key = key;
  m.seq = seq;
  m.message.mail_from = "MAIL FROM:<a@example.org>";
  m.message.recipients = {{std::move(rcpt), 250, "250 2.1.5 Ok"}};
  m.message.transaction = transaction;
  m.message.via_bdat = via_bdat;
  m.message.final_code = 250;
  m.message.final_reply = "250 2.0.0 queued";
  return m;
}

// DATA text of about `n` octets as the client sends it: CRLF lines, some with a stuffed dot.
std::string data_text(std::size_t n) {
  std::string s;
  for (int i = 0; s.size() < n; ++i)
    s += (i % 7 == 0 ? ".." : "") + std::string("line ") + std::to_string(i) + " of the body\r\n";
  return s;
}

// DATA text as the server stores it: without the stuffed dots.
std::string unstuffed(const std::string& text) {
  std::string out;
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t end = text.find("\r\n", i) + 2;
    out += text.substr(text[i] == '.' ? i + 1 : i, end - (text[i] == '.' ? i + 1 : i));
    i = end;
  }
  return out;
}

std::vector<std::string> cut(const std::string& s, std::size_t each) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < s.size(); i += each) out.push_back(s.substr(i, each));
  return out;
}

struct Recorded {
  TempDir dir;
  std::string path = dir.file("m.db");
  std::int64_t session = 0;
};

// Session 1: message 1 by DATA (`data` cut into reads of 100 KiB, then the terminator), and
// message 2 by BDAT (`bdat` in chunks of 300 KiB).
void record(Recorded& r, const std::string& data, const std::string& bdat) {
  RecorderOptions o;
  o.path = r.path;
  std::string error;
  auto rec = Recorder::open(o, error);
  ASSERT_NE(rec, nullptr) << error;
  const SessionKey key = rec->new_session_key();
  std::vector<std::vector<Record>> batches;
  batches.push_back(batch(test_support::session_opened(key)));
  std::uint64_t seq = 0;
  for (const std::string& piece : cut(data + ".\r\n", 100 * 1024))
    batches.push_back(batch(body_event(key, ++seq, 1, smtp::EventKind::data, piece)));
  batches.push_back(batch(message(key, 1, 1, false, "RCPT TO:<b@example.net>")));
  for (const std::string& piece : cut(bdat, 300 * 1024))
    batches.push_back(batch(body_event(key, ++seq, 2, smtp::EventKind::bdat_chunk, piece)));
  batches.push_back(batch(message(key, 2, 2, true, "RCPT TO:<c@example.net>")));
  batches.push_back(batch(test_support::session_closed(key)));
  test_support::record_batches(*rec, std::move(batches));
  rec->stop();
  ASSERT_FALSE(rec->failed()) << rec->failure_reason();
  auto reader = Reader::open(r.path, error);
  ASSERT_NE(reader, nullptr) << error;
  std::vector<SessionRow> rows;
  ASSERT_TRUE(reader->list_sessions({}, rows, error)) << error;
  ASSERT_EQ(rows.size(), 1u);
  r.session = rows[0].id;
}

// The body as StoredBodyReader hands it out, checking every chunk's size.
std::string read_all(const StoredMessage& m) {
  StoredBodyReader body(m);
  std::string out;
  std::string error;
  EXPECT_TRUE(body.read(
      [&](std::string_view chunk) {
        EXPECT_GT(chunk.size(), 0u);
        EXPECT_LE(chunk.size(), StoredBodyReader::kChunkOctets);
        out.append(chunk);
        return true;
      },
      error))
      << error;
  std::uint64_t size = 0;
  EXPECT_TRUE(body.size(size, error)) << error;
  EXPECT_EQ(size, out.size());
  return out;
}

TEST(StoredBody, ReadsWhatLoadSessionAssemblesInBoundedChunks) {
  Recorded r;
  const std::string data = data_text(1024 * 1024);
  std::string bdat(900 * 1024, '\0');
  for (std::size_t i = 0; i < bdat.size(); ++i) bdat[i] = static_cast<char>(i * 131 % 251);
  record(r, data, bdat);
  std::string error;
  auto reader = Reader::open(r.path, error);
  ASSERT_NE(reader, nullptr) << error;
  std::optional<SessionDetail> d;
  ASSERT_TRUE(reader->load_session(r.session, d, error)) << error;
  ASSERT_TRUE(d);
  ASSERT_EQ(d->messages.size(), 2u);

  for (std::uint64_t seq : {1u, 2u}) {
    SCOPED_TRACE(seq);
    std::optional<StoredMessage> m;
    ASSERT_TRUE(reader->stored_message(r.session, seq, m, error)) << error;
    ASSERT_TRUE(m);
    EXPECT_EQ(m->session_id, r.session);
    EXPECT_EQ(m->row.seq, seq);
    EXPECT_TRUE(m->row.message.body.empty());
    // The database holds a message's first 64 KiB; the rest is read from the file.
    std::size_t inline_octets = 0;
    for (const StoredBodyPiece& p : m->pieces) inline_octets += p.bytes.size();
    EXPECT_LE(inline_octets, kInlineBodyOctets);
    EXPECT_TRUE(m->pieces.back().file_offset);
    const smtp::Message& loaded = d->messages[seq - 1].message;
    EXPECT_EQ(m->row.message.recipients.size(), 1u);
    EXPECT_EQ(m->row.message.recipients[0].command, loaded.recipients[0].command);
    EXPECT_EQ(m->row.message.via_bdat, loaded.via_bdat);
    const std::string body = read_all(*m);
    EXPECT_EQ(body.size(), loaded.body.size());
    EXPECT_TRUE(body == loaded.body);
    EXPECT_TRUE(body == (seq == 1 ? unstuffed(data) : bdat));
  }
}

TEST(StoredBody, NoSuchMessage) {
  Recorded r;
  record(r, data_text(1000), "chunk");
  std::string error;
  auto reader = Reader::open(r.path, error);
  ASSERT_NE(reader, nullptr) << error;
  std::optional<StoredMessage> m;
  ASSERT_TRUE(reader->stored_message(r.session, 3, m, error)) << error;
  EXPECT_FALSE(m);
  ASSERT_TRUE(reader->stored_message(r.session + 1, 1, m, error)) << error;
  EXPECT_FALSE(m);
}

TEST(StoredBody, StopsWhenTheReceiverStops) {
  Recorded r;
  record(r, data_text(2 * 1024 * 1024), "chunk");
  std::string error;
  auto reader = Reader::open(r.path, error);
  ASSERT_NE(reader, nullptr) << error;
  std::optional<StoredMessage> m;
  ASSERT_TRUE(reader->stored_message(r.session, 1, m, error)) << error;
  ASSERT_TRUE(m);
  StoredBodyReader body(*m);
  int calls = 0;
  EXPECT_TRUE(body.read([&](std::string_view) { return ++calls < 2; }, error)) << error;
  EXPECT_EQ(calls, 2);
}

// A body file gone while its rows are there (removed by hand, or prune between its commit and
// the removal): said, naming the file.
TEST(StoredBody, ABodyFileGoneIsAnError) {
  Recorded r;
  record(r, data_text(512 * 1024), "chunk");
  std::string error;
  auto reader = Reader::open(r.path, error);
  ASSERT_NE(reader, nullptr) << error;
  std::filesystem::remove(body_file(r.path, r.session));
  std::optional<StoredMessage> m;
  ASSERT_TRUE(reader->stored_message(r.session, 1, m, error)) << error;
  ASSERT_TRUE(m);
  StoredBodyReader body(*m);
  std::string got;
  EXPECT_FALSE(body.read(
      [&](std::string_view chunk) {
        got.append(chunk);
        return true;
      },
      error));
  EXPECT_NE(error.find(body_file(r.path, r.session)), std::string::npos) << error;
  EXPECT_LE(got.size(), kInlineBodyOctets);  // what the database held came first
  std::uint64_t size = 0;
  EXPECT_FALSE(body.size(size, error));
}

// Puts another file, longer and of other octets, where the session's body file is: as prune
// removing it and a new session with the same id writing its own.
void replace_body_file(const std::string& path) {
  const auto original_size = std::filesystem::file_size(path);
  std::filesystem::remove(path);
  std::ofstream(path, std::ios::binary) << std::string(original_size + 4096, 'X');
}

// The web page's download announces size() and then sends read(): should prune remove the body
// file between the two and a new session with the same id put its own there, the reader keeps
// the octets of the file it opened first, never the new session's mail.
TEST(StoredBody, KeepsTheBodyFileItFirstOpenedWhenAnotherTakesItsPath) {
  Recorded r;
  const std::string data = data_text(512 * 1024);
  record(r, data, "chunk");
  std::string error;
  auto reader = Reader::open(r.path, error);
  ASSERT_NE(reader, nullptr) << error;
  std::optional<StoredMessage> m;
  ASSERT_TRUE(reader->stored_message(r.session, 1, m, error)) << error;
  ASSERT_TRUE(m);
  StoredBodyReader body(*m);
  std::uint64_t size = 0;
  ASSERT_TRUE(body.size(size, error)) << error;
  EXPECT_EQ(size, unstuffed(data).size());

  replace_body_file(body_file(r.path, r.session));

  std::string got;
  ASSERT_TRUE(body.read(
      [&](std::string_view chunk) {
        got.append(chunk);
        return true;
      },
      error))
      << error;
  EXPECT_EQ(got.size(), size);
  EXPECT_TRUE(got == unstuffed(data));
  EXPECT_EQ(got.find('X'), std::string::npos);
}

// The web page reads the message's rows, then opens its body file: should prune remove the
// file between the two and a new session with the same id put its own there, the octets are
// still those of the message read, never the new session's mail.
TEST(StoredBody, ABodyFileReplacedAfterItsRowsWereReadIsNotTheOneRead) {
  Recorded r;
  const std::string data = data_text(512 * 1024);
  record(r, data, "chunk");
  std::string error;
  auto reader = Reader::open(r.path, error);
  ASSERT_NE(reader, nullptr) << error;
  std::optional<StoredMessage> m;
  ASSERT_TRUE(reader->stored_message(r.session, 1, m, error)) << error;
  ASSERT_TRUE(m);
  replace_body_file(body_file(r.path, r.session));
  StoredBodyReader body(*m);
  std::string got;
  const bool read = body.read(
      [&](std::string_view chunk) {
        got.append(chunk);
        return true;
      },
      error);
  EXPECT_EQ(got.find('X'), std::string::npos) << "the new session's file was read";
  EXPECT_TRUE(read) << error;
  EXPECT_TRUE(got == unstuffed(data));
}

// Reader::stored_message opens the body file before it reads the rows, and reads them again if
// another file has taken its path by the time they are read.
TEST(StoredBody, AFileOpenedBeforeTheRowsIsKnownToBeReplacedAfter) {
  Recorded r;
  record(r, data_text(512 * 1024), "chunk");
  const std::string path = body_file(r.path, r.session);
  BodyFileReader file(r.path, /*pinned=*/true);
  file.open_now(r.session);
  EXPECT_TRUE(file.still_at_path());
  replace_body_file(path);
  EXPECT_FALSE(file.still_at_path());

  BodyFileReader none(r.path, /*pinned=*/true);
  none.open_now(r.session + 1);
  EXPECT_TRUE(none.still_at_path()) << "still no file";
  std::ofstream(body_file(r.path, r.session + 1), std::ios::binary) << "new";
  EXPECT_FALSE(none.still_at_path()) << "a file was put where there was none";
}

// Pinned, a reader never opens a second file: not another session's, nor one after a failed open.
TEST(StoredBody, APinnedBodyFileReaderOpensOneFileOnly) {
  Recorded r;
  record(r, data_text(512 * 1024), "chunk");
  const std::string path = body_file(r.path, r.session);
  {
    BodyFileReader files(r.path, /*pinned=*/true);
    std::string got;
    ASSERT_TRUE(files.read(r.session, 0, 4, got).ok());
    EXPECT_FALSE(files.read(r.session + 1, 0, 4, got).ok());
  }
  std::filesystem::rename(path, path + ".away");
  BodyFileReader files(r.path, /*pinned=*/true);
  std::string got;
  EXPECT_FALSE(files.read(r.session, 0, 4, got).ok());
  std::filesystem::rename(path + ".away", path);
  EXPECT_FALSE(files.read(r.session, 0, 4, got).ok());  // not opened again by its path
}

// A session loaded without its body file (BodyOctets::leave_in_file) and its octets read by
// SessionOctets: the same events and bodies as the session loaded whole, holding only what the
// database holds; and written as JSON a piece at a time, the same document.
TEST(SessionOctets, LeftInTheFileReadsAsTheSessionLoadedWhole) {
  Recorded r;
  const std::string data = data_text(1024 * 1024);
  std::string bdat(900 * 1024, '\0');
  for (std::size_t i = 0; i < bdat.size(); ++i) bdat[i] = static_cast<char>(i * 131 % 251);
  record(r, data, bdat);
  std::string error;
  auto reader = Reader::open(r.path, error);
  ASSERT_NE(reader, nullptr) << error;
  std::optional<SessionDetail> whole, outline;
  ASSERT_TRUE(reader->load_session(r.session, whole, error)) << error;
  ASSERT_TRUE(reader->load_session(r.session, outline, error, Reader::BodyOctets::leave_in_file))
      << error;
  ASSERT_TRUE(whole && outline);
  ASSERT_EQ(outline->events.size(), whole->events.size());
  std::size_t held = 0;
  SessionOctets octets(*outline);
  const auto all = [&](auto&& read) {
    std::string out;
    EXPECT_TRUE(read(
        [&](std::string_view piece) {
          EXPECT_LE(piece.size(), StoredBodyReader::kChunkOctets);
          out.append(piece);
          return true;
        },
        error))
        << error;
    return out;
  };
  for (std::size_t i = 0; i < outline->events.size(); ++i) {
    const EventRow& e = outline->events[i];
    held += e.event.bytes.size();
    EXPECT_EQ(e.file_offset.has_value(), e.event.bytes.empty() && e.file_length > 0);
    const std::string bytes =
        all([&](const auto& emit, std::string& why) { return octets.event_bytes(e, emit, why); });
    EXPECT_TRUE(bytes == whole->events[i].event.bytes) << "event " << e.seq;
  }
  EXPECT_LE(held, 2 * kInlineBodyOctets + 1024);  // two messages' first 64 KiB, and the dialogue
  for (std::size_t i = 0; i < outline->messages.size(); ++i) {
    const MessageRow& m = outline->messages[i];
    EXPECT_TRUE(m.message.body.empty());
    const std::string body =
        all([&](const auto& emit, std::string& why) { return octets.message_body(m, emit, why); });
    EXPECT_TRUE(body == whole->messages[i].message.body) << "message " << m.seq;
    bool complete = true;
    const std::string preview = all([&](const auto& emit, std::string& why) {
      return octets.message_body_preview(m, emit, complete, why);
    });
    EXPECT_FALSE(complete);
    EXPECT_LE(preview.size(), kInlineBodyOctets);
    EXPECT_TRUE(whole->messages[i].message.body.starts_with(preview)) << "message " << m.seq;
  }

  tools::JsonWriter expected;
  tools::write_session_detail(expected, *whole);
  std::string streamed;
  tools::JsonWriter w;
  w.stream_to([&](std::string_view piece) {
    streamed.append(piece);
    return true;
  });
  ASSERT_TRUE(tools::write_session_detail(w, *outline, octets, error)) << error;
  ASSERT_TRUE(w.flush());
  EXPECT_EQ(streamed.size(), expected.str().size());
  EXPECT_TRUE(streamed == expected.str());
}

// A session loaded with its octets left in the body file holds that file: should prune remove
// it and a new session with the same id put its own there, what is written is still the
// session's own mail.
TEST(SessionOctets, KeepsTheBodyFileItsRowsDescribe) {
  Recorded r;
  const std::string data = data_text(512 * 1024);
  record(r, data, "chunk");
  std::string error;
  auto reader = Reader::open(r.path, error);
  ASSERT_NE(reader, nullptr) << error;
  std::optional<SessionDetail> d;
  ASSERT_TRUE(reader->load_session(r.session, d, error, Reader::BodyOctets::leave_in_file))
      << error;
  ASSERT_TRUE(d && d->body_file);
  const std::string path = body_file(r.path, r.session);
  const auto original_size = std::filesystem::file_size(path);
  std::filesystem::remove(path);
  std::ofstream(path, std::ios::binary) << std::string(original_size + 4096, 'X');
  SessionOctets octets(*d);
  std::string got;
  ASSERT_TRUE(octets.message_body(
      d->messages[0],
      [&](std::string_view piece) {
        got.append(piece);
        return true;
      },
      error))
      << error;
  EXPECT_TRUE(got == unstuffed(data));
}

// The page's view of a session reads no body file: it is the same with the file gone, and says
// what it left out; the whole document needs the file.
TEST(SessionOctets, ThePreviewReadsNoBodyFile) {
  Recorded r;
  record(r, data_text(512 * 1024), "chunk");
  std::string error;
  auto reader = Reader::open(r.path, error);
  ASSERT_NE(reader, nullptr) << error;
  std::filesystem::remove(body_file(r.path, r.session));
  std::optional<SessionDetail> d;
  ASSERT_TRUE(reader->load_session(r.session, d, error, Reader::BodyOctets::leave_in_file))
      << error;
  ASSERT_TRUE(d);
  SessionOctets octets(*d);
  tools::JsonWriter w;
  ASSERT_TRUE(tools::write_session_preview(w, *d, octets, error)) << error;
  const std::string json = w.take();
  EXPECT_NE(json.find("\"bytes_omitted\":"), std::string::npos);
  EXPECT_NE(json.find("\"body_preview\":true"), std::string::npos);
  EXPECT_LT(json.size(), 2 * kInlineBodyOctets);

  // The whole document needs the file: an error naming it.
  tools::JsonWriter all;
  EXPECT_FALSE(tools::write_session_detail(all, *d, octets, error));
  EXPECT_NE(error.find(body_file(r.path, r.session)), std::string::npos) << error;
}

}  // namespace
}  // namespace mailtap::storage

namespace mailtap::storage {
namespace {

// The layout mailtap wrote before schema v6: every body octet in its event's row, no body file.
void put_bodies_back_in_rows(const Recorded& r) {
  const std::string file = body_file(r.path, r.session);
  std::ifstream in(file, std::ios::binary);
  const std::string octets((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Database db;
  ASSERT_TRUE(Database::open(r.path, {}, db).ok());
  struct Moved {
    std::int64_t id, offset, length;
  };
  std::vector<Moved> moved;
  Statement st;
  ASSERT_TRUE(db.prepare("SELECT id, file_offset, file_length FROM events WHERE file_offset IS "
                         "NOT NULL",
                         st)
                  .ok());
  while (st.step() == Statement::Step::row)
    moved.push_back({st.column_int(0), st.column_int(1), st.column_int(2)});
  st.reset();
  ASSERT_FALSE(moved.empty());
  for (const Moved& m : moved) {
    Statement up;
    ASSERT_TRUE(db.prepare("UPDATE events SET bytes = ?1, file_offset = NULL, file_length = NULL "
                           "WHERE id = ?2",
                           up)
                    .ok());
    const std::string bytes =
        octets.substr(static_cast<std::size_t>(m.offset), static_cast<std::size_t>(m.length));
    up.bind_blob(1, bytes).bind_int(2, m.id);
    ASSERT_EQ(up.step(), Statement::Step::done);
  }
  std::filesystem::remove(file);
}

// A body recorded before schema v6 is wholly in the rows: read as one in the body file is, its
// first kInlineBodyOctets with the rows and the rest a chunk at a time.
TEST(StoredBody, ABodyInTheRowsIsReadInChunksAsFromTheBodyFile) {
  Recorded r;
  const std::string data = data_text(3 * 1024 * 1024);
  const std::string bdat(700 * 1024, 'b');
  record(r, data, bdat);
  put_bodies_back_in_rows(r);
  std::string error;
  auto reader = Reader::open(r.path, error);
  ASSERT_NE(reader, nullptr) << error;
  for (std::uint64_t seq : {1u, 2u}) {
    SCOPED_TRACE(seq);
    std::optional<StoredMessage> m;
    ASSERT_TRUE(reader->stored_message(r.session, seq, m, error)) << error;
    ASSERT_TRUE(m);
    std::size_t held = 0;
    for (const StoredBodyPiece& p : m->pieces) held += p.bytes.size();
    EXPECT_LE(held, kInlineBodyOctets);
    EXPECT_TRUE(read_all(*m) == (seq == 1 ? unstuffed(data) : bdat));
  }

  std::optional<SessionDetail> d;
  ASSERT_TRUE(reader->load_session(r.session, d, error, Reader::BodyOctets::leave_past_inline))
      << error;
  ASSERT_TRUE(d);
  std::size_t held = 0;
  for (const EventRow& e : d->events) held += e.event.bytes.size();
  EXPECT_LE(held, 2 * kInlineBodyOctets);
  SessionOctets octets(*d);
  std::string wire;
  std::size_t chunks = 0;
  for (const EventRow& e : d->events) {
    if (e.event.transaction != 1) continue;
    if (!e.row_id) wire += e.event.bytes;
    if (e.row_id) {
      EXPECT_TRUE(octets.event_bytes(
          e,
          [&](std::string_view chunk) {
            EXPECT_LE(chunk.size(), StoredBodyReader::kChunkOctets);
            ++chunks;
            wire.append(chunk);
            return true;
          },
          error))
          << error;
    }
  }
  EXPECT_GT(chunks, 3u);
  EXPECT_TRUE(wire == data + ".\r\n");
  std::string body;
  ASSERT_TRUE(octets.message_body(
      d->messages[0],
      [&](std::string_view chunk) {
        EXPECT_LE(chunk.size(), StoredBodyReader::kChunkOctets);
        body.append(chunk);
        return true;
      },
      error))
      << error;
  EXPECT_TRUE(body == unstuffed(data));
  std::string preview;
  bool complete = true;
  ASSERT_TRUE(octets.message_body_preview(
      d->messages[0],
      [&](std::string_view chunk) {
        preview.append(chunk);
        return true;
      },
      complete, error))
      << error;
  EXPECT_FALSE(complete);
  EXPECT_LE(preview.size(), kInlineBodyOctets);
  EXPECT_TRUE(unstuffed(data).starts_with(preview));
}

// While it lives, the default VFS, which counts the reads of every file opened through it (a
// database, its -wal): how many pages SQLite read.
class CountingVfs {
 public:
  CountingVfs() {
    real_ = sqlite3_vfs_find(nullptr);
    vfs_ = *real_;
    vfs_.zName = "mailtap-test-counting-reads";
    vfs_.pNext = nullptr;
    vfs_.xOpen = open;
    registered_ = sqlite3_vfs_register(&vfs_, 1) == SQLITE_OK;
    reads_ = 0;
  }
  ~CountingVfs() {
    if (registered_) sqlite3_vfs_unregister(&vfs_);
  }
  CountingVfs(const CountingVfs&) = delete;
  CountingVfs& operator=(const CountingVfs&) = delete;

  bool registered() const { return registered_; }
  static std::int64_t reads() { return reads_; }

 private:
  // The default VFS's file as it is, its methods those of the default's but xRead.
  static int open(sqlite3_vfs* /*vfs*/, sqlite3_filename name, sqlite3_file* file, int flags,
                  int* out_flags) {
    const int rc = real_->xOpen(real_, name, file, flags, out_flags);
    if (rc != SQLITE_OK || file->pMethods == nullptr) return rc;
    if (real_methods_ == nullptr) {
      real_methods_ = file->pMethods;
      counting_ = *file->pMethods;
      counting_.xRead = read;
    }
    if (file->pMethods == real_methods_) file->pMethods = &counting_;
    return rc;
  }
  static int read(sqlite3_file* file, void* out, int amount, sqlite3_int64 offset) {
    ++reads_;
    return real_methods_->xRead(file, out, amount, offset);
  }

  static inline sqlite3_vfs* real_ = nullptr;
  static inline const sqlite3_io_methods* real_methods_ = nullptr;
  static inline sqlite3_io_methods counting_{};
  static inline std::atomic<std::int64_t> reads_{0};
  sqlite3_vfs vfs_{};
  bool registered_ = false;
};

// A body of 16 MiB in its message's row (recorded before schema v4) is read in chunks of 256
// KiB, each in a transaction of its own, and each read of the value from an offset walks its
// overflow pages from the first: chunk by chunk, that was 64 walks, SQLite reading 131,000
// pages, 32 times the body's 4,096 (64 MiB took 6 s). The reads take what a read before read
// ahead, so the walks stay about as long as the body: 11,000 pages.
TEST(StoredBody, ABodyInItsMessageRowIsReadInPagesLinearInItsSize) {
  Recorded r;
  record(r, data_text(1000), std::string(1000, 'b'));
  const std::int64_t size = 16 * 1024 * 1024;
  std::string body;
  for (int i = 0; static_cast<std::int64_t>(body.size()) < size; ++i)
    body += "line " + std::to_string(i) + " of a body in its message's row\r\n";
  body.resize(static_cast<std::size_t>(size));
  std::int64_t page = 0;
  {
    Database db;
    ASSERT_TRUE(Database::open(r.path, {}, db).ok());
    Statement up;
    ASSERT_TRUE(
        db.prepare("UPDATE messages SET body = ?1, mail_transaction = NULL WHERE seq = 1", up)
            .ok());
    up.bind_blob(1, body);
    ASSERT_EQ(up.step(), Statement::Step::done);
    ASSERT_TRUE(db.exec("UPDATE events SET mail_transaction = NULL").ok());
    ASSERT_TRUE(db.exec("PRAGMA wal_checkpoint(TRUNCATE)").ok());
    ASSERT_TRUE(db.query_int("PRAGMA page_size", page).ok());
  }
  std::string error;
  auto reader = Reader::open(r.path, error);
  ASSERT_NE(reader, nullptr) << error;
  std::optional<StoredMessage> m;
  ASSERT_TRUE(reader->stored_message(r.session, 1, m, error)) << error;
  ASSERT_TRUE(m);
  ASSERT_EQ(m->row.body_left_in_row, size);

  const CountingVfs counting;  // the rows' reader opens its connection at its first read
  ASSERT_TRUE(counting.registered());
  std::string got;
  std::size_t chunks = 0;
  ASSERT_TRUE(StoredBodyReader(*m).read(
      [&](std::string_view chunk) {
        EXPECT_LE(chunk.size(), StoredBodyReader::kChunkOctets);
        ++chunks;
        got.append(chunk);
        return true;
      },
      error))
      << error;
  EXPECT_TRUE(got == body);
  EXPECT_EQ(chunks, static_cast<std::size_t>(size) / StoredBodyReader::kChunkOctets);
  const std::int64_t pages = size / page;
  EXPECT_LE(CountingVfs::reads(), 4 * pages)
      << "SQLite read " << CountingVfs::reads() << " pages for a body of " << pages;
}

}  // namespace
}  // namespace mailtap::storage
