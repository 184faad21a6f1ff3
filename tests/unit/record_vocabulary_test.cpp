// The record's vocabulary (proxy/smtp/record_vocabulary.hpp): every enumerator has one name,
// reads back as itself, is accepted by the database, and is documented in docs/schema.md.
// The switches below list every enumerator with -Wswitch as an error: adding one to an enum
// stops this test from compiling until it is listed here, and then the round trip fails until
// it has a name.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "proxy/smtp/record_vocabulary.hpp"
#include "storage/database.hpp"
#include "storage/schema.hpp"
#include "tests/unit/temp_dir.hpp"

#pragma GCC diagnostic push
#pragma GCC diagnostic error "-Wswitch"

namespace mailtap::smtp {
namespace {

constexpr bool is_enumerator(Direction d) {
  switch (d) {
    case Direction::client_to_upstream:
    case Direction::upstream_to_client:
    case Direction::client_to_mailtap:
    case Direction::mailtap_to_upstream:
    case Direction::upstream_to_mailtap:
    case Direction::mailtap_to_client:
    case Direction::mailtap_note:
      return true;
  }
  return false;
}

constexpr bool is_enumerator(Phase p) {
  switch (p) {
    case Phase::plain:
    case Phase::pre_tls:
    case Phase::tls:
      return true;
  }
  return false;
}

constexpr bool is_enumerator(EventKind k) {
  switch (k) {
    case EventKind::greeting:
    case EventKind::command:
    case EventKind::reply:
    case EventKind::data:
    case EventKind::bdat_chunk:
    case EventKind::auth:
    case EventKind::rewrite:
    case EventKind::local_reply:
    case EventKind::tls:
    case EventKind::error:
    case EventKind::note:
      return true;
  }
  return false;
}

constexpr bool is_enumerator(Outcome o) {
  switch (o) {
    case Outcome::quit:
    case Outcome::client_closed:
    case Outcome::upstream_closed:
    case Outcome::timeout:
    case Outcome::refused:
    case Outcome::error:
    case Outcome::shutdown:
      return true;
  }
  return false;
}

constexpr bool is_enumerator(TlsMode m) {
  switch (m) {
    case TlsMode::starttls:
    case TlsMode::implicit:
    case TlsMode::none:
      return true;
  }
  return false;
}

constexpr bool is_enumerator(VerifyStatus s) {
  switch (s) {
    case VerifyStatus::ok:
    case VerifyStatus::not_verified_insecure:
    case VerifyStatus::failed:
      return true;
  }
  return false;
}

constexpr bool is_enumerator(AuthBy a) {
  switch (a) {
    case AuthBy::client:
    case AuthBy::mailtap:
      return true;
  }
  return false;
}

// Every value of the underlying type that is an enumerator, by the switches above.
template <typename Enum>
std::vector<Enum> all_enumerators() {
  std::vector<Enum> out;
  for (int i = 0; i <= 255; ++i) {
    const auto e = static_cast<Enum>(i);
    if (is_enumerator(e)) out.push_back(e);
  }
  return out;
}

template <typename Enum>
void expect_round_trip() {
  const auto all = all_enumerators<Enum>();
  std::set<std::string_view> seen;
  for (Enum e : all) {
    const std::string_view name = to_string(e);
    EXPECT_NE(name, "unknown") << Vocabulary<Enum>::column << " value " << static_cast<int>(e)
                               << " has no name";
    EXPECT_TRUE(seen.insert(name).second) << "two enumerators named " << name;
    Enum back{};
    EXPECT_TRUE(parse(name, back)) << name;
    EXPECT_EQ(back, e) << name;
  }
  EXPECT_EQ(all.size(), Vocabulary<Enum>::names.size())
      << Vocabulary<Enum>::column << ": names and enumerators differ in number";
  Enum unchanged = all.front();
  EXPECT_FALSE(parse("no_such_name", unchanged));
  EXPECT_EQ(unchanged, all.front());
}

TEST(RecordVocabulary, EveryEnumeratorHasOneNameThatParsesBack) {
  expect_round_trip<Direction>();
  expect_round_trip<Phase>();
  expect_round_trip<EventKind>();
  expect_round_trip<Outcome>();
  expect_round_trip<TlsMode>();
  expect_round_trip<VerifyStatus>();
  expect_round_trip<AuthBy>();
}

// The bug this vocabulary replaced: a hand-written parse list without client_to_mailtap.
TEST(RecordVocabulary, ClientToMailtapReadsBackAsItself) {
  Direction d = Direction::mailtap_note;
  ASSERT_TRUE(parse("client_to_mailtap", d));
  EXPECT_EQ(d, Direction::client_to_mailtap);
}

// The database takes every name of a vocabulary column and refuses anything else.
class VocabularyInDatabase : public ::testing::Test {
 protected:
  void SetUp() override {
    using namespace storage;
    ASSERT_TRUE(Database::open(dir_.file("v.db"), OpenOptions{}, db_).ok());
    FingerprintKey key{};
    ASSERT_TRUE(prepare_for_writing(db_, "mailtap test", key).ok());
  }

  bool insert_session(std::string_view tls_mode, std::string_view column = "",
                      std::string_view value = "") {
    std::string sql =
        "INSERT INTO sessions(started_at, client_address, listen_address, upstream_host, "
        "upstream_port, tls_mode, ehlo_name) VALUES ('2026-01-01T00:00:00.000000Z', 'c', 'l', "
        "'u', 25, '" +
        std::string(tls_mode) + "', 'e')";
    if (!db_.exec(sql).ok()) return false;
    if (column.empty()) return true;
    // ended_at and outcome are set together (a CHECK).
    const std::string outcome = column == "outcome" ? "" : ", outcome = 'quit'";
    return db_
        .exec("UPDATE sessions SET ended_at = '2026-01-01T00:00:01.000000Z', " +
              std::string(column) + " = '" + std::string(value) + "'" + outcome +
              " WHERE id = last_insert_rowid()")
        .ok();
  }

  bool insert_event(std::string_view direction, std::string_view phase, std::string_view kind) {
    if (!insert_session("none")) return false;
    return db_
        .exec(
            "INSERT INTO events(session_id, seq, direction, phase, kind, bytes, wire_size, "
            "redacted) VALUES (last_insert_rowid(), 1, '" +
            std::string(direction) + "', '" + std::string(phase) + "', '" + std::string(kind) +
            "', x'', 0, 0)")
        .ok();
  }

  test_support::TempDir dir_;
  storage::Database db_;
};

TEST_F(VocabularyInDatabase, AcceptsEveryNameAndRefusesOthers) {
  for (Direction d : all_enumerators<Direction>())
    EXPECT_TRUE(insert_event(to_string(d), "plain", "note")) << to_string(d);
  for (Phase p : all_enumerators<Phase>())
    EXPECT_TRUE(insert_event("mailtap_note", to_string(p), "note")) << to_string(p);
  for (EventKind k : all_enumerators<EventKind>())
    EXPECT_TRUE(insert_event("mailtap_note", "plain", to_string(k))) << to_string(k);
  for (TlsMode m : all_enumerators<TlsMode>()) EXPECT_TRUE(insert_session(to_string(m)));
  for (Outcome o : all_enumerators<Outcome>())
    EXPECT_TRUE(insert_session("none", "outcome", to_string(o))) << to_string(o);
  for (VerifyStatus v : all_enumerators<VerifyStatus>())
    EXPECT_TRUE(insert_session("none", "verify_status", to_string(v))) << to_string(v);
  for (AuthBy a : all_enumerators<AuthBy>())
    EXPECT_TRUE(insert_session("none", "auth_by", to_string(a))) << to_string(a);

  EXPECT_FALSE(insert_event("client_to_nowhere", "plain", "note"));
  EXPECT_FALSE(insert_event("mailtap_note", "post_tls", "note"));
  EXPECT_FALSE(insert_event("mailtap_note", "plain", "gossip"));
  EXPECT_FALSE(insert_session("sometimes"));
  EXPECT_FALSE(insert_session("none", "outcome", "vanished"));
  EXPECT_FALSE(insert_session("none", "verify_status", "skipped (--insecure)"));
  EXPECT_FALSE(insert_session("none", "auth_by", "nobody"));
}

// docs/schema.md lists every name in the row of its column.
std::string doc_row(const std::string& doc, std::string_view column) {
  const std::string table = std::string(column.substr(0, column.find('.')));
  const std::string name = std::string(column.substr(column.find('.') + 1));
  // The column's table section starts with "### `table`".
  const auto section = doc.find("### `" + table + "`");
  if (section == std::string::npos) return {};
  const auto row = doc.find("| `" + name + "` |", section);
  if (row == std::string::npos) return {};
  return doc.substr(row, doc.find('\n', row) - row);
}

template <typename Enum>
void expect_documented(const std::string& doc) {
  const std::string row = doc_row(doc, Vocabulary<Enum>::column);
  ASSERT_FALSE(row.empty()) << Vocabulary<Enum>::column << " has no row in docs/schema.md";
  for (std::string_view n : Vocabulary<Enum>::names)
    EXPECT_NE(row.find("`" + std::string(n) + "`"), std::string::npos)
        << Vocabulary<Enum>::column << ": docs/schema.md does not name `" << n << "`";
}

TEST(RecordVocabulary, DocsSchemaNamesEveryValue) {
  std::ifstream in(std::string(MAILTAP_SOURCE_DIR) + "/docs/schema.md");
  ASSERT_TRUE(in) << "cannot read docs/schema.md";
  std::stringstream text;
  text << in.rdbuf();
  const std::string doc = text.str();
  expect_documented<Direction>(doc);
  expect_documented<Phase>(doc);
  expect_documented<EventKind>(doc);
  expect_documented<Outcome>(doc);
  expect_documented<TlsMode>(doc);
  expect_documented<VerifyStatus>(doc);
  expect_documented<AuthBy>(doc);
}

}  // namespace
}  // namespace mailtap::smtp

#pragma GCC diagnostic pop
