// Read-only access to a mailtap database for the tools (list, show, replay, export). Opens with
// SQLITE_OPEN_READONLY, so it can run beside a recording proxy and sees only committed data.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "storage/records.hpp"
#include "storage/schema.hpp"
#include "storage/session_writer.hpp"

namespace mailtap::storage {

struct SessionRow {
  std::int64_t id = 0;
  Clock::time_point started{};
  std::optional<Clock::time_point> ended;  // nullopt: in progress, or its writer died (`record`)
  std::string client_address;
  std::string listen_address;
  std::string upstream_host;
  std::uint16_t upstream_port = 0;
  std::string resolved_address;  // "" if never connected
  TlsMode tls_mode = TlsMode::starttls;
  std::string ehlo_name;
  std::string tls_version;  // "" if no TLS
  std::string cipher;
  std::string sni;
  std::string verified_name;
  std::optional<VerifyStatus> verify_status;  // nullopt: no certificate was looked at
  std::string verify_reason;                  // why it failed, or a remark; "" if none
  bool insecure = false;
  std::optional<Outcome> outcome;  // set iff ended
  std::string outcome_reason;
  std::uint64_t bytes_client_to_upstream = 0;
  std::uint64_t bytes_upstream_to_client = 0;
  std::string auth_user;
  std::optional<std::int64_t> replay_of;
  std::string auth_mechanism;     // of the AUTH that succeeded, "" if none (or before schema v2)
  std::optional<AuthBy> auth_by;  // who authenticated; nullopt: nobody (or before schema v2)
  // Whether the upstream TLS session was resumed; nullopt without TLS (or before schema v2).
  std::optional<bool> tls_resumed;
  std::string client_tls_version;  // the client's side was TLS (--local-tls), "" if plain
  // The client certificate mailtap presented upstream (--client-cert, schema v9); "" if none.
  std::string client_cert_sha256;
  std::string client_cert_subject;
  // Set when started_at or ended_at holds text that is not a timestamp (a damaged file, a hand
  // edit), or duration_us no length: names each such column and what it holds ("; " between
  // them), which `mailtap audit` reports. Such a time then reads as the epoch, which means
  // nothing: shown as unreadable, never as 1970 (and ended says only that it ended).
  std::string unreadable;
  bool started_unreadable = false;
  bool ended_unreadable = false;
  // How long it lasted by the proxy's steady clock, accept to end (sessions.duration_us, schema
  // v11); nullopt while it runs, for a session recorded before, and when unreadable.
  std::optional<std::chrono::microseconds> duration_us;
  // duration_us holds no length (a damaged file, a hand edit): no integer (text, a real, a
  // blob, which the column's CHECK lets through), a negative one or one longer than the clock
  // holds. The session's length is then unreadable, not unmeasured.
  bool duration_unreadable = false;
  // Without an end: whether the process recording it still runs (sessions.writer, schema v8),
  // as this process sees it when the row was read.
  RecordState record = RecordState::unknown;

  // No end, and the process that recorded it is gone (killed, crashed, a reboot since): the
  // record ends at that process's last commit and will never end.
  bool writer_gone() const { return !ended && record == RecordState::cut; }
  // No end, and the process recording it runs.
  bool writer_alive() const { return !ended && record == RecordState::recording; }
  // The session's length to show: duration_us where it was measured, else ended - started, which
  // a clock step during the session makes wrong (negative when the clock went back); nullopt
  // when neither is known (running, a time unreadable) and when duration_us is unreadable.
  std::optional<Clock::duration> duration() const;
};

struct EventRow {
  std::uint64_t seq = 0;
  smtp::Event event;  // time is the epoch if the event carried none
  // Set (for_each_event only) when the event's octets are in its session's body file and the
  // file cannot supply them (missing, cut short): why, naming the file; `event.bytes` is empty.
  std::string unreadable;
  // With `unreadable`: its session's started_at as stored (SessionEventsLeft::started_at), which
  // tells it from a later session given the same id (is_still_the_session).
  std::string session_started_at;
  // Set (load_session with BodyOctets::leave_in_file only) when the event's octets are in its
  // session's body file and were not read: where they are; `event.bytes` is empty.
  std::optional<std::int64_t> file_offset;
  std::int64_t file_length = 0;
  // Set (load_session with BodyOctets::leave_past_inline only) when the octets are the
  // event's row's own, recorded before schema v6, past its message's first kInlineBodyOctets,
  // and were not read: the row's id. `file_offset` is then 0 and `file_length` their length,
  // as for octets left in the body file; SessionOctets reads them from the row.
  std::optional<std::int64_t> row_id;
};

struct CertificateRow {
  std::size_t position = 0;  // 0 = leaf
  Certificate certificate;
};

struct MessageRow {
  std::int64_t id = 0;
  std::uint64_t seq = 0;
  smtp::Message message;  // recipients in order
  // Set (load_session with BodyOctets other than read, stored_message) when the message was
  // recorded before schema v4, its body in its own row, and that body is longer than
  // kInlineBodyOctets: it was not read (`message.body` is empty), and this is its length;
  // SessionOctets and StoredBodyReader read it from the row a piece at a time.
  std::optional<std::int64_t> body_left_in_row;
  // Set when started_at or finished_at holds text that is not a timestamp: names the column and
  // the text, as SessionRow::unreadable; that time reads as the epoch (JSON null).
  std::string unreadable;
};

class BodyFileReader;
class RowBodyReader;

// The events other than a message body's that a session loaded with Reader::EventRows::bodies_only
// left in the record, to be read a batch at a time (Reader::session_events,
// for_each_session_event): those up to `last_seq`, `count` of them, as the snapshot the rest was
// loaded from held them.
struct SessionEventsLeft {
  std::uint64_t last_seq = 0;
  std::int64_t count = 0;
  // The session row's, as stored: a session that took the id since (prune removed this one,
  // which was the newest) started at another time, and its events are not this one's.
  std::string started_at;
  // EventRows::none: the body events were left too (their octets past what the database holds
  // of a message left where they are, as BodyOctets::leave_past_inline leaves them), and
  // whether some of their octets are in the session's body file.
  bool bodies = false;
  bool in_body_file = false;
};

// The messages a session loaded with Reader::EventRows::none left in the record, to be read a
// batch at a time (Reader::session_messages, for_each_session_message): as SessionEventsLeft.
struct SessionMessagesLeft {
  std::uint64_t last_seq = 0;
  std::int64_t count = 0;
  std::string started_at;
};

// Which of a message's body octets in the rows a reader that leaves the rest where they are
// stored reads (BodyOctets::leave_past_inline, Reader::session_events), as the recorder chose what
// went to the body file (recorder.cpp): an event's while its message's events up to it hold at most
// kInlineBodyOctets and none of them went to the body file; none after. Rows written before schema
// v6 hold every octet of a body: the reader leaves those past the first kInlineBodyOctets in them,
// as it leaves a body file's.
class InlineBodyBudget {
 public:
  // Event of `transaction`'s body (0 before schema v4) with `length` octets, in the body file
  // or not: whether its octets in the row are read.
  // The events of a transaction come one after another: its entry is looked for from the end.
  bool keeps(std::uint64_t transaction, bool in_file, std::int64_t length);

 private:
  std::vector<std::pair<std::uint64_t, std::int64_t>> used_;  // octets read; -1: no more
};

struct SessionDetail {
  SessionRow session;
  std::vector<CertificateRow> certificates;  // leaf first
  std::vector<EventRow> events;              // by seq
  std::vector<MessageRow> messages;          // by seq
  // Loaded with BodyOctets::leave_in_file: the session's body file (pinned: body_files.hpp),
  // the one the rows describe, opened before they were read and still at its path after (as
  // StoredMessage::body_file), for SessionOctets to read the octets left in it. Holds no file
  // if there was none; null when the octets were read.
  std::shared_ptr<BodyFileReader> body_file;
  // Loaded with BodyOctets::leave_past_inline, when some octets were left in their rows
  // (EventRow::row_id, MessageRow::body_left_in_row): what reads them. Null otherwise.
  std::shared_ptr<RowBodyReader> row_bodies;
  // Loaded with EventRows::bodies_only or none: which events were left in the record.
  std::optional<SessionEventsLeft> events_left;
  // Loaded with EventRows::none: which messages were left in the record.
  std::optional<SessionMessagesLeft> messages_left;
};

// One piece of a stored message body (one body event): its octets when the database holds them
// (a message's first kInlineBodyOctets at most), else where they are in the session's body file.
struct StoredBodyPiece {
  std::string bytes;
  std::optional<std::int64_t> file_offset;  // set: the octets are in the body file
  std::int64_t file_length = 0;
  // Set: the octets are past the message's first kInlineBodyOctets in this events row
  // (recorded before schema v6), not read (`bytes` empty, file_offset 0); as EventRow::row_id.
  std::optional<std::int64_t> row_id;
  std::uint64_t seq = 0;  // the event's
};

// Of a StoredMessage whose body has more pieces than its first batch: where the rest are.
struct StoredPiecesLeft {
  std::string session_started_at;  // as stored: whose pieces they are (prune, a reused id)
  InlineBodyBudget budget;         // as it stood after the first batch
  bool in_body_file = false;       // some of them are in the body file
  bool in_rows = false;            // some are left in their rows (StoredBodyPiece::row_id)
};

// A message without the octets of its body that are in the body file, and where those are: what
// a reader needs to pass on a body of any size without holding it (StoredBodyReader).
struct StoredMessage {
  std::int64_t session_id = 0;
  // Recipients filled in. message.body is empty unless the message was recorded before schema
  // v4, when the body was kept in its row (and `pieces` is empty), and is at most
  // kInlineBodyOctets long (else row.body_left_in_row).
  MessageRow row;
  std::vector<StoredBodyPiece> pieces;  // in order
  // The session's body file (pinned: body_files.hpp), the one these rows describe: opened
  // before they were read and still at its path after, so prune and a new session taking the
  // id since cannot make its octets another session's. Holds no file if there was none.
  std::shared_ptr<BodyFileReader> body_file;
  // What reads the pieces left in their rows (StoredBodyPiece::row_id) or the body left in the
  // message's row (MessageRow::body_left_in_row); null if none was.
  std::shared_ptr<RowBodyReader> row_bodies;
  // Set when the body has more pieces than the first batch `pieces` holds (kBodyPieceBatch: a
  // body has a piece per read of the client or BDAT chunk, a million for a million `BDAT 1`):
  // the rest are read from the record a batch at a time as the body is read
  // (more_stored_pieces), never held at once.
  std::optional<StoredPiecesLeft> pieces_left;
};

// A mail transaction whose body was relayed, in part or whole, but that has no `messages` row
// (Reader::unfinished_messages): the session was cut inside it (`kill -9`, a crash), the client
// or the server left inside it, or it is still being sent. Derived from the body events at read
// time, so a record of any schema version since 4 has them. Never a delivered message: the
// server accepts one only at its end of data, and a row is written for every end of data that
// reached it (docs/recording.md, "Messages").
struct UnfinishedMessage {
  // The body as a message's is read (SessionOctets::message_body): `seq` is the number the
  // tools give it, after the session's messages (`show --message N`); message.transaction and
  // message.via_bdat are set, message.mail_from is the transaction's MAIL command when the
  // events hold it; final_code 0, no recipients, size and sha256 unknown (0, "").
  MessageRow row;
  std::uint64_t first_seq = 0;  // of its first and last body events
  std::uint64_t last_seq = 0;
  // The octets its body events hold as relayed (DATA text dot-stuffed, BDAT chunk payloads).
  std::uint64_t wire_octets = 0;
  // The record holds its end of data (DATA's terminating `.` line, or a whole `BDAT ... LAST`
  // chunk), with no reply: possible only in a cut session, whose writer died between relaying
  // it and committing the reply. Then the server may have accepted it.
  bool end_of_data = false;
};

// A session row with what a list of sessions shows beside it (`mailtap sessions`, the web
// page), read in the same query.
struct SessionSummary {
  SessionRow session;
  std::int64_t messages = 0;         // messages recorded (accepted or not)
  int last_reply_code = 0;           // of the last reply the client saw; 0 if none was recorded
  std::string last_reply;            // as smtp::reply_summary gives it; "" if none
  std::int64_t failure_replies = 0;  // 4xx/5xx replies that reached the client
};

// Changes whenever another connection commits to the database (PRAGMA data_version is per
// connection: compare tokens of one Reader only). The web page's live updates poll it.
struct ChangeToken {
  std::int64_t data_version = 0;
  std::int64_t max_session_id = 0;
  bool operator==(const ChangeToken&) const = default;
};

// Audit summaries: counts over the whole file.
struct FailureReplyCount {  // replies >= 400 the client or mailtap got, grouped
  std::string upstream_host;
  int reply_code = 0;
  std::string enhanced_status;  // "" if the reply had none
  bool by_mailtap = false;      // mailtap's own replies to the client, counted apart
  std::int64_t replies = 0;
  std::int64_t sessions = 0;
};
struct OutcomeCount {
  std::optional<Outcome> outcome;  // nullopt: no end recorded (`record` says more)
  // For outcome nullopt: whether the writer runs (recording), is gone (cut) or nobody knows.
  RecordState record = RecordState::ended;
  std::int64_t sessions = 0;
};
struct TlsCount {
  std::string tls_version;  // "" for sessions without TLS
  std::string cipher;
  std::int64_t sessions = 0;
};
struct CertificateSeen {  // one certificate (by SHA-256) and where it was seen
  std::string sha256_hex;
  std::string subject;
  std::string not_after;  // as recorded (ISO 8601 UTC)
  std::int64_t first_session = 0;
  std::int64_t sessions = 0;
};
struct RecordedRecipient {
  std::int64_t session_id = 0;
  std::uint64_t message_seq = 0;
  std::size_t position = 0;
  smtp::Recipient recipient;
};

// Which sessions list_sessions() and session_summaries() return; every field left at its
// default selects everything, newest first.
struct SessionFilter {
  std::optional<Clock::time_point> since;      // started_at >= since
  std::optional<Clock::time_point> until;      // started_at < until
  std::string upstream;                        // exact upstream_host, "" = any
  std::optional<std::uint16_t> upstream_port;  // exact upstream_port, nullopt = any
  std::optional<Outcome> outcome;              // nullopt = any (including in progress)
  bool only_in_progress = false;               // ended_at IS NULL
  std::string user;                            // exact auth_user, "" = any
  // Only sessions without an end whose writer is gone (`gone`: cut, SessionRow::writer_gone),
  // or only those whose writer is not known to be gone (`not_gone`: running, or nobody can
  // tell); either implies only_in_progress. The system is asked, not the database, so the
  // reader sorts these rows out itself and counts only those it keeps towards `limit`.
  enum class Writer : std::uint8_t { any, gone, not_gone };
  Writer writer = Writer::any;
  // Ended other than by QUIT, or a 4xx/5xx reply reached the client.
  bool only_failed = false;
  int reply_class = 0;  // 2..5: a reply of that class reached the client; 0 = any
  // Found anywhere in the session: its addresses, user, outcome reason, dialogue, notes or
  // messages; "" = any.
  std::string text;
  // Paging: only the sessions that come after this one in the list's order (it may have been
  // pruned since: then those past its id).
  std::optional<std::int64_t> after_session;
  // Only sessions with a greater id (recorded after that one): what a live list has not seen.
  std::optional<std::int64_t> newer_than_id;
  std::vector<std::int64_t> ids;  // only these sessions; empty = any
  std::size_t limit = 0;          // 0 = no limit
  bool newest_first = true;       // by started_at, then id
};

// The --upstream filter as a person types it: HOST, or HOST:PORT as given to
// `proxy --upstream` and shown in the sessions list ([IPv6]:PORT too). A value whose last part
// is not a port number is a host.
void set_upstream_filter(SessionFilter& f, std::string_view value);

class Reader {
 public:
  // nullptr and `error` set if the file is missing, not a mailtap database, or at another
  // schema version. A one-shot reader (a CLI tool's, read and closed) may read a database in a
  // directory it may not write as immutable (OpenOptions::allow_immutable); a long-lived one
  // (mailtap web's) may not, since it would never see later commits, except on a file system
  // mounted read-only, where there are none.
  enum class Use { long_lived, one_shot };
  static std::unique_ptr<Reader> open(const std::string& path, std::string& error,
                                      Use use = Use::long_lived);
  ~Reader();
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  // Every query below returns false with `error` set (naming the file) on a database error.

  bool list_sessions(const SessionFilter& filter, std::vector<SessionRow>& out, std::string& error);

  // The sessions `filter` selects, in its order, each with its message count and the last
  // reply the client saw: one query, however many sessions.
  // `stop`, if given, is asked now and then while the query runs: true ends it, with `error`
  // set (a search whose client has gone need not read the rest of the record).
  bool session_summaries(const SessionFilter& filter, std::vector<SessionSummary>& out,
                         std::string& error, std::function<bool()> stop = {});

  // The same rows, handed to `fn` one at a time (`pass` counting from 0), read in batches of a
  // few hundred, each its own short read, none held while `fn` runs: memory flat however many
  // there are, and `fn` may wait (on stdout) as long as it likes without holding up a WAL
  // checkpoint. With `passes` > 1 they are read that many times over (a table sizes its columns
  // on the first and writes them on the second), each pass among the sessions there when the
  // first began: a pass sees the same sessions, unless one was pruned meanwhile, though a
  // session in progress may have moved on (its end, its last reply). `fn` returns false to stop
  // (its output failed): true.
  bool for_each_session_summary(const SessionFilter& filter, int passes,
                                const std::function<bool(int pass, const SessionSummary&)>& fn,
                                std::string& error);

  // Session `id`'s summary, as session_summaries() gives it, by its id: true with `out` empty
  // if there is no such session.
  bool session_summary(std::int64_t id, std::optional<SessionSummary>& out, std::string& error);

  bool change_token(ChangeToken& out, std::string& error);

  // Loads one session and everything recorded for it from a single snapshot. Returns false
  // with `error` set on a database error; true with `out` empty if there is no such session.
  // With BodyOctets::leave_in_file, the octets in the session's body file are not read (each
  // such event says where they are: EventRow::file_offset) and a message's body is not
  // assembled (MessageRow::message.body is empty unless recorded before schema v4): memory
  // bounded by each message's first kInlineBodyOctets, whatever its size. SessionOctets
  // (stored_body.hpp) reads them when they are written out. BodyOctets::leave_past_inline
  // does the same for the octets a body event's row holds past its message's first
  // kInlineBodyOctets (recorded before schema v6, when the rows held whole bodies), as if they
  // were in the body file (EventRow::row_id): memory as bounded, whenever it was recorded.
  // Either leaves a body longer than kInlineBodyOctets that a message's own row holds
  // (recorded before schema v4) there too (MessageRow::body_left_in_row).
  // With EventRows::bodies_only, only the events that carry a message body (data, bdat_chunk)
  // are loaded, which SessionOctets needs; the others, a session's commands, replies and notes
  // (any number: a client chooses how many commands it sends), are left in the record
  // (SessionDetail::events_left) for session_events to read a batch at a time as they are
  // written out: memory bounded by the batch, not the session. With EventRows::none (and
  // BodyOctets::leave_past_inline), no event and no message is loaded: both are left in the
  // record (SessionDetail::events_left with `bodies`, messages_left) for session_events and
  // session_messages to read a batch at a time, and a message's body pieces for
  // message_body_pieces: memory bounded by a batch and a message, whatever the session holds
  // (the body file and the reader of rows' octets are held as for the others).
  enum class BodyOctets { read, leave_in_file, leave_past_inline };
  enum class EventRows { all, bodies_only, none };
  bool load_session(std::int64_t id, std::optional<SessionDetail>& out, std::string& error,
                    BodyOctets octets = BodyOctets::read, EventRows events = EventRows::all);

  // Up to `limit` of the events session `id`, loaded with EventRows::bodies_only, left in the
  // record (`left`: none that carries a message body), those with a seq past `after_seq`, in seq
  // order, appended to `out`: each call its own short read, no snapshot held between calls.
  // None is in the body file, unless `left.bodies` (EventRows::none): then the body events come
  // too, their octets left as BodyOctets::leave_past_inline leaves them, with `budget` (one for
  // every batch of a reading, from the first) saying which a row's octets are read. Fewer than
  // expected means the session was removed meanwhile (mailtap prune): the caller counts
  // (for_each_session_event).
  bool session_events(std::int64_t id, const SessionEventsLeft& left, std::uint64_t after_seq,
                      std::size_t limit, std::vector<EventRow>& out, std::string& error,
                      InlineBodyBudget* budget = nullptr);

  // Up to `limit` of the messages session `id`, loaded with EventRows::none, left in the
  // record (`left`), those with a seq past `after_seq`, in seq order, with their recipients,
  // appended to `out`, as load_session with BodyOctets::leave_past_inline loads them: each call
  // its own short read. Fewer than expected: removed meanwhile (for_each_session_message).
  bool session_messages(std::int64_t id, const SessionMessagesLeft& left, std::uint64_t after_seq,
                        std::size_t limit, std::vector<MessageRow>& out, std::string& error);

  // The pieces of message `m`'s body, of session `id` loaded with EventRows::none, as
  // stored_message gives them (read with the body file and the rows' reader the session
  // holds), appended to `out` in one short read; an error if the session is no longer the one
  // that started at `started_at` (SessionEventsLeft::started_at). Only body events past
  // `after_seq` are looked at: a reader of the messages in order passes the last piece of the
  // message before (a session's transactions follow one another), and reads each body event
  // once rather than all of them for every message. At most `limit` pieces: a reader of a body
  // of many reads them a batch at a time, each next one past the last of the one before, with
  // the same `budget` (one for each reading of the body, from its first piece), which says
  // whose octets in their rows are read, as for the whole body at once.
  bool message_body_pieces(std::int64_t id, const std::string& started_at, const MessageRow& m,
                           std::uint64_t after_seq, std::size_t limit, InlineBodyBudget& budget,
                           std::vector<StoredBodyPiece>& out, std::string& error);

  // Message `seq` (1-based) of session `session_id` from one snapshot, its body as where it is
  // stored (reader_message.cpp): memory bounded by the body's first kInlineBodyOctets, whatever
  // its size, also when recorded before schema v6 (as BodyOctets::leave_past_inline: the octets
  // rows hold past the first kInlineBodyOctets are left there, StoredBodyPiece::row_id) or v4
  // (a body longer than that in the message's row is left there, body_left_in_row). A
  // message's pieces never change once its row exists, and its body file is held
  // open (StoredMessage::body_file): `mailtap prune` removing it later takes nothing from a
  // reader that has it. Returns true with `out` empty if there is no such message.
  bool stored_message(std::int64_t session_id, std::uint64_t seq, std::optional<StoredMessage>& out,
                      std::string& error);

  // Session `id`'s unfinished messages (UnfinishedMessage), in transaction order, numbered
  // after its messages, from one snapshot: none for a session without body events left
  // without a row. Cheap: one pass over the session's body events' rows (not their octets).
  bool unfinished_messages(std::int64_t id, std::vector<UnfinishedMessage>& out,
                           std::string& error);

  // Runs `reads` (reads of this Reader) in one read transaction, so that what they read comes
  // from one snapshot of the record, whatever another process commits meanwhile: totals counted
  // by several SELECTs then describe one state of it. While it runs, the snapshot keeps the
  // WAL from being checkpointed past it (the file grows while a proxy records): keep `reads`
  // short, and never wait on output inside. Not around load_session() or stored_message(),
  // which take snapshots of their own. False with `error` set if the transaction cannot
  // begin; else what `reads` returns (its reads set `error`).
  bool in_one_snapshot(const std::function<bool()>& reads, std::string& error);

  // ---- whole-file reads for `mailtap audit` (reader_audit.cpp) ----
  // Each returns false with `error` set on a database error, after handing over every row read
  // before it; then last_failure_is_damage() says whether the file is damaged (malformed pages,
  // a file cut short) rather than unreadable for another reason. It answers for the last read
  // of any kind (list_sessions() too), never for an earlier one: false after a read succeeded.
  bool last_failure_is_damage() const;
  // PRAGMA integrity_check's lines ("ok" alone when healthy).
  bool integrity_check(std::vector<std::string>& lines, std::string& error);
  // Every event of every session, by session id then seq, one at a time (bodies can be large).
  // An event whose body file cannot supply its octets comes with EventRow::unreadable set.
  bool for_each_event(const std::function<void(std::int64_t session_id, const EventRow&)>& fn,
                      std::string& error);
  // Whether session `id` is still the one that started at `started_at` (as stored:
  // EventRow::session_started_at): not removed, nor its id given to a later session. Read in
  // no transaction of its own: inside in_one_snapshot(), from that snapshot.
  bool is_still_the_session(std::int64_t id, const std::string& started_at, bool& still,
                            std::string& error);
  // Every message (recipients not filled in), by session id then seq.
  bool for_each_message(const std::function<void(std::int64_t session_id, const MessageRow&)>& fn,
                        std::string& error);
  bool for_each_recipient(const std::function<void(const RecordedRecipient&)>& fn,
                          std::string& error);
  bool failure_reply_counts(std::vector<FailureReplyCount>& out, std::string& error);  // most first
  bool outcome_counts(std::vector<OutcomeCount>& out, std::string& error);             // most first
  bool tls_counts(std::vector<TlsCount>& out, std::string& error);                     // most first
  bool certificates_seen(std::vector<CertificateSeen>& out, std::string& error);  // by not_after

  bool fingerprint_key(FingerprintKey& key, std::string& error);
  const std::string& path() const;

  struct Impl;

 private:
  friend struct ReaderTestAccess;  // tests/unit/reader_test_access.hpp
  explicit Reader(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mailtap::storage
