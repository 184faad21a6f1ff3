// The record end to end: a Dialogue (and mailtap's own lines, as the connector and the session
// make them) -> a real Recorder -> the file -> storage::Reader -> the tools a user runs
// (show, show --raw, export, audit, and mock's MockSession). Tool tests elsewhere build their
// rows by hand; this is the path where a name written one way and read back another (the
// client_to_mailtap direction, the --insecure verification) slipped through.
#include <gtest/gtest.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <set>
#include <string>
#include <vector>

#include "proxy/smtp/base64.hpp"
#include "proxy/smtp/dialogue.hpp"
#include "proxy/smtp/reply_parser.hpp"
#include "storage/reader.hpp"
#include "storage/recorder.hpp"
#include "tests/unit/temp_dir.hpp"
#include "tools/commands.hpp"
#include "tools/mock_session.hpp"
#include "tools/recorded_dialogue.hpp"

namespace mailtap {
namespace {

using namespace std::string_literals;
using smtp::Direction;
using smtp::EventKind;
using smtp::Phase;

smtp::Reply reply(std::string_view text) {
  smtp::ReplyParser p;
  p.feed(text);
  return *p.next();
}

// mailtap's own line, built the way the connector builds its exchange with the upstream.
smtp::RecordedEvent own(Direction d, EventKind k, std::string bytes, std::string verb = {},
                        int code = 0, std::string note = {}) {
  smtp::Event e;
  e.direction = d;
  e.phase = Phase::pre_tls;
  e.kind = k;
  e.verb = std::move(verb);
  e.reply_code = code;
  e.wire_size = bytes.size();
  e.bytes = std::move(bytes);
  e.note = std::move(note);
  return smtp::mailtap_event(std::move(e));
}

// What the client of the first session types, in the flights it sends them.
const std::vector<std::string> kClientFlights = {
    "EHLO client.test\r\n",
    "STARTTLS\r\n",
    "AUTH PLAIN " + smtp::base64_encode("\0alice\0s3cret-pw"s) + "\r\n",
    "MAIL FROM:<a@client.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n",
    "Subject: t\n\nbare line feed\r\n.\r\n",
    "MAIL FROM:<a@client.test>\r\nRCPT TO:<b@example.test>\r\nBDAT 5 LAST\r\nhello",
    "QUIT\r\n",
};

// The upstream's answer to each flight (STARTTLS is answered by mailtap).
const std::vector<std::string> kUpstreamReplies = {
    "250-mx.example.test\r\n250-STARTTLS\r\n250-CHUNKING\r\n250-PIPELINING\r\n250 AUTH PLAIN\r\n",
    "",
    "235 2.7.0 Authentication successful\r\n",
    "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n",
    "250 2.0.0 Ok: queued as ABC\r\n",
    "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 Ok: queued as DEF\r\n",
    "221 2.0.0 Bye\r\n",
};

struct Session {
  std::vector<smtp::RecordedEvent> events;
  std::vector<smtp::Message> messages;
};

smtp::DialogueOptions options() {
  smtp::DialogueOptions o;
  o.phase = Phase::tls;
  o.upstream_label = "mx.example.test:587";
  o.starttls_refusal = "STARTTLS is not needed: mailtap already encrypts the link";
  return o;
}

// The first session: mailtap's STARTTLS with the upstream, then the client's whole dialogue.
Session full_session() {
  Session s;
  s.events.push_back(
      own(Direction::mailtap_to_upstream, EventKind::command, "EHLO mailtap.test\r\n", "EHLO"));
  s.events.push_back(own(Direction::upstream_to_mailtap, EventKind::reply,
                         "250-mx.example.test\r\n250 STARTTLS\r\n", "EHLO", 250));
  s.events.push_back(
      own(Direction::mailtap_to_upstream, EventKind::command, "STARTTLS\r\n", "STARTTLS"));
  s.events.push_back(own(Direction::upstream_to_mailtap, EventKind::reply, "220 2.0.0 go ahead\r\n",
                         "STARTTLS", 220));
  s.events.push_back(own(Direction::mailtap_note, EventKind::tls, "", "", 0,
                         "TLSv1.3 TLS_AES_128_GCM_SHA256, certificate NOT verified (--insecure)"));
  smtp::Dialogue d(options(), s.events, s.messages);
  d.relay_greeting(reply("220 mx.example.test ESMTP\r\n"), Phase::tls);
  d.take_to_client();
  for (std::size_t i = 0; i < kClientFlights.size(); ++i) {
    d.client_bytes(kClientFlights[i]);
    d.take_to_upstream();
    d.upstream_bytes(kUpstreamReplies[i]);
    d.take_to_upstream();
    d.take_to_client();
  }
  smtp::Event closing;  // as the session notes the end of the link
  closing.direction = Direction::mailtap_note;
  closing.kind = EventKind::note;
  closing.note = "upstream closed the connection";
  s.events.push_back(smtp::mailtap_event(std::move(closing)));
  return s;
}

// The second session: a line mailtap refuses (a NUL byte).
Session refused_line_session() {
  Session s;
  smtp::Dialogue d(options(), s.events, s.messages);
  d.relay_greeting(reply("220 mx.example.test ESMTP\r\n"), Phase::tls);
  d.client_bytes("NOOP\0x\r\n"s);
  d.client_bytes("QUIT\r\n");
  d.upstream_bytes("221 2.0.0 Bye\r\n");
  return s;
}

std::vector<storage::Record> records(storage::SessionKey key, Session s, bool insecure) {
  std::vector<storage::Record> out;
  storage::SessionOpened o;
  o.key = key;
  o.started = storage::Clock::now();
  o.client_address = "127.0.0.1:40000";
  o.listen_address = "127.0.0.1:2525";
  o.upstream_host = "mx.example.test";
  o.upstream_port = 587;
  o.tls_mode = storage::TlsMode::starttls;
  o.ehlo_name = "mailtap.test";
  o.insecure = insecure;
  out.push_back(o);
  storage::SessionTls tls;
  tls.key = key;
  tls.tls_version = "TLSv1.3";
  tls.cipher = "TLS_AES_128_GCM_SHA256";
  tls.verify_status =
      insecure ? storage::VerifyStatus::not_verified_insecure : storage::VerifyStatus::ok;
  out.push_back(tls);
  std::uint64_t seq = 0;
  for (auto& e : s.events) out.push_back(storage::SessionEvent{key, ++seq, std::move(e)});
  seq = 0;
  for (auto& m : s.messages) out.push_back(storage::SessionMessage{key, ++seq, std::move(m)});
  storage::SessionClosed c;
  c.key = key;
  c.ended = storage::Clock::now();
  c.outcome = storage::Outcome::quit;
  out.push_back(c);
  return out;
}

// Runs `mailtap ARGS...` of one tool and returns what it printed; `status` its exit status.
std::string run_tool(const std::vector<std::string>& args, int& status) {
  CLI::App app("mailtap");
  std::vector<cli::Subcommand> commands = {
      tools::add_show_command(app), tools::add_export_command(app), tools::add_audit_command(app),
      tools::add_sessions_command(app)};
  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 parses a reversed list
  app.parse(reversed);
  testing::internal::CaptureStdout();
  status = -1;
  for (const auto& c : commands)
    if (c.app->parsed()) status = c.run();
  return testing::internal::GetCapturedStdout();
}

class RecordEndToEnd : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = dir_.file("mailtap.db");
    std::string error;
    storage::RecorderOptions ro;
    ro.path = db_;
    auto rec = storage::Recorder::open(ro, error);
    ASSERT_TRUE(rec) << error;
    std::vector<std::vector<storage::Record>> batches;
    batches.push_back(records(rec->new_session_key(), full_session(), /*insecure=*/true));
    batches.push_back(records(rec->new_session_key(), refused_line_session(), false));
    asio::io_context io;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          for (auto& b : batches) co_await rec->submit(std::move(b));
        },
        asio::detached);
    io.run();
    rec->stop();
    ASSERT_FALSE(rec->failed()) << rec->failure_reason();

    reader_ = storage::Reader::open(db_, error);
    ASSERT_TRUE(reader_) << error;
    std::vector<storage::SessionRow> rows;
    storage::SessionFilter oldest_first;
    oldest_first.newest_first = false;
    ASSERT_TRUE(reader_->list_sessions(oldest_first, rows, error)) << error;
    ASSERT_EQ(rows.size(), 2u);
    full_id_ = rows[0].id;
    refused_id_ = rows[1].id;
  }

  storage::SessionDetail load(std::int64_t id) {
    std::optional<storage::SessionDetail> d;
    std::string error;
    EXPECT_TRUE(reader_->load_session(id, d, error)) << error;
    return d ? std::move(*d) : storage::SessionDetail{};
  }

  std::string tool(std::vector<std::string> args, int expected_status = 0) {
    args.push_back("--db");
    args.push_back(db_);
    int status = -1;
    std::string out = run_tool(args, status);
    EXPECT_EQ(status, expected_status) << out;
    return out;
  }

  test_support::TempDir dir_;
  std::string db_;
  std::unique_ptr<storage::Reader> reader_;
  std::int64_t full_id_ = 0, refused_id_ = 0;
};

TEST_F(RecordEndToEnd, EveryDirectionAndKindIsRecordedAndReadBackAsWritten) {
  const Session written = full_session();
  const storage::SessionDetail full = load(full_id_);
  ASSERT_EQ(full.events.size(), written.events.size());
  std::set<Direction> directions;
  std::set<EventKind> kinds;
  for (std::size_t i = 0; i < written.events.size(); ++i) {
    const smtp::Event& w = *written.events[i];
    const smtp::Event& r = full.events[i].event;
    EXPECT_EQ(r.direction, w.direction) << "event " << i + 1;
    EXPECT_EQ(r.phase, w.phase) << "event " << i + 1;
    EXPECT_EQ(r.kind, w.kind) << "event " << i + 1;
    EXPECT_EQ(r.bytes, w.bytes) << "event " << i + 1;
    EXPECT_EQ(r.redacted, w.redacted) << "event " << i + 1;
    directions.insert(r.direction);
    kinds.insert(r.kind);
  }
  for (const auto& row : load(refused_id_).events) kinds.insert(row.event.kind);
  EXPECT_EQ(directions.size(), smtp::enumerator_count<Direction>);
  EXPECT_EQ(kinds.size(), smtp::enumerator_count<EventKind>);
  for (const auto& row : full.events)
    EXPECT_EQ(row.event.bytes.find(smtp::base64_encode("\0alice\0s3cret-pw"s)), std::string::npos);
}

TEST_F(RecordEndToEnd, ShowTagsTheClientsStartTlsAsAnsweredByMailtap) {
  const std::string out = tool({"show", std::to_string(full_id_), "--color", "never"});
  EXPECT_NE(out.find("[answered by mailtap] C: STARTTLS"), std::string::npos) << out;
  EXPECT_EQ(out.find("~~ command"), std::string::npos) << out;
}

// Raw: mailtap's own STARTTLS to the upstream, and the client's that mailtap answered.
TEST_F(RecordEndToEnd, ShowRawKeepsTheClientsStartTls) {
  const std::string raw = tool({"show", std::to_string(full_id_), "--raw"});
  std::size_t lines = 0;
  for (auto at = raw.find("\nSTARTTLS\r\n"); at != std::string::npos;
       at = raw.find("\nSTARTTLS\r\n", at + 1))
    ++lines;
  EXPECT_EQ(lines, 2u) << raw;
}

TEST_F(RecordEndToEnd, ExportWritesEveryDirectionAsRecorded) {
  const std::string json = tool({"export", std::to_string(full_id_), "--format", "json"});
  for (std::string_view name : smtp::Vocabulary<Direction>::names)
    EXPECT_NE(json.find("\"direction\":\"" + std::string(name) + "\""), std::string::npos) << name;
}

TEST_F(RecordEndToEnd, MockFedTheRecordedClientCompletesWithoutDivergence) {
  tools::RecordedDialogue recording;
  std::string error;
  ASSERT_TRUE(tools::build_recorded_dialogue(load(full_id_).events, recording, error)) << error;
  tools::MockSession mock(recording);
  mock.start();
  for (const std::string& flight : kClientFlights) {
    mock.client_bytes(flight);
    ASSERT_FALSE(mock.divergence()) << *mock.divergence();
  }
  EXPECT_TRUE(mock.completed());
  // A refused line was not kept: that recording cannot be acted out, and says why.
  EXPECT_FALSE(tools::build_recorded_dialogue(load(refused_id_).events, recording, error));
  EXPECT_NE(error.find("refused"), std::string::npos) << error;
}

TEST_F(RecordEndToEnd, AuditListsAnInsecureSessionOnceNotAsAVerificationFailure) {
  const std::string json = tool({"audit", "--json"});
  EXPECT_NE(json.find("\"insecure_sessions\":[" + std::to_string(full_id_) + "]"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find("\"verify_failures\":[]"), std::string::npos) << json;
  const std::string text = tool({"audit", "--color", "never"});
  EXPECT_EQ(text.find("certificate not verified"), std::string::npos) << text;
  EXPECT_NE(text.find("--insecure sessions: " + std::to_string(full_id_)), std::string::npos)
      << text;
}

TEST_F(RecordEndToEnd, SessionsListsBothWithMessageCountsAndLastReply) {
  const std::string json = tool({"sessions", "--json"});
  EXPECT_NE(json.find("\"messages\":2"), std::string::npos) << json;
  EXPECT_NE(json.find("\"last_reply\":\"221 2.0.0 Bye\""), std::string::npos) << json;
}

}  // namespace
}  // namespace mailtap
