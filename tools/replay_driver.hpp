// The sans-IO heart of `mailtap replay`: acts out the client side of a recorded session
// through a Dialogue (so the replay is read, relayed and recorded exactly as the proxy would
// have done it live) and compares each reply the replayed client reads with the one the
// original client read.
//
// Flights are sent as recorded: flight N+1 goes out once the replies the original client read
// before sending it have arrived. The replay stops early (and ends the session politely) when
// a reply differs in a way that changes what the following client bytes would mean: a 334 or
// 354 that did not come (or came unasked), an AUTH that failed where it had succeeded, or a 334
// that asks for something else than the recorded one did (a LOGIN "Password:" where the
// recording had "Username:"), so a body is never sent as commands, mail is never sent
// unauthenticated and a password never goes out (and into the record) as a user name. A session
// that mailtap authenticated itself (proxy --auth-user) is authenticated by the replay's Dialogue
// the same way (DialogueOptions::login); its outcome is compared like a reply.
//
// A large flight (a message body) goes to the dialogue a piece at a time
// (RecordedDialogue::next_flight_piece), the next once the owner has taken the last (sending(),
// send_more()): a body of any size is sent with a buffer of a few hundred KiB.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "proxy/smtp/dialogue.hpp"
#include "tools/recorded_dialogue.hpp"

namespace mailtap::tools {

struct ReplyComparison {
  std::vector<std::string> sent;  // client lines (as recorded, secrets redacted) before it
  // The client line it answers (as `sent` shows it), "" for none (the greeting, a reply the
  // server sent unasked): among a pipelined flight's, which one (RFC 2920 keeps their order).
  std::string command;
  std::optional<int> original_code;
  std::string original_line;  // first line, no CRLF
  std::optional<int> replay_code;
  std::string replay_line;  // without replay_code: why there is none ("(sent; no reply)")
  // mailtap's own 421 that an older mailtap recorded after a server reply that had already
  // ended the session (RecordedDialogue::older_close_notice): shown, never awaited.
  bool not_expected = false;
  // Every line of each reply, without CRLF (original_line/replay_line are their first).
  std::vector<std::string> original_lines;
  std::vector<std::string> replay_lines;
  // Client bytes that no reply answered in the original (it hung up, say mid-DATA) match
  // when the replay got no reply to them either.
  bool matches() const {
    if (!original_code || not_expected) return !replay_code;
    return replay_code && *original_code / 100 == *replay_code / 100;
  }
};

// mailtap's own AUTH (proxy --auth-user): the client never read its replies, but whether it
// succeeded decides whether what the client sent next went out authenticated.
struct LoginComparison {
  std::string user;      // as the replay authenticated ("" if unknown)
  std::string original;  // "authenticated (PLAIN)", "failed (PLAIN)"
  std::string replay;    // the same for the replay; "" if its exchange never ended
  bool original_ok = false;
  bool replay_ok = false;
  std::size_t row = 0;  // index into ReplayReport::replies of the reply held back for it
  bool matches() const { return !replay.empty() && original_ok == replay_ok; }
};

struct ReplayReport {
  std::vector<ReplyComparison> replies;  // greeting first
  std::optional<LoginComparison> login;  // mailtap authenticated the original session
  std::string stopped;                   // why the replay stopped early, "" if it did not
  bool all_match() const;
  std::size_t differences() const;
  std::size_t compared() const;  // rows that are replies to compare (not those not expected)
};

// What the replay says of a reply it does not expect again (ReplyComparison::not_expected).
inline constexpr std::string_view kOlderCloseNotice = "recorded by an older mailtap; not expected";

// Whether the next client bytes can still be sent after this reply came instead of the
// recorded one; `verb` is the command it answers.
bool safe_to_continue(int original_code, int replay_code, std::string_view verb);

class ReplayDriver {
 public:
  ReplayDriver(const RecordedDialogue& recording, smtp::DialogueOptions options,
               std::vector<smtp::RecordedEvent>& events, std::vector<smtp::Message>& messages);

  void set_time(smtp::Dialogue::Clock::time_point now) { dialogue_.set_time(now); }
  void start(const smtp::Reply& greeting, smtp::Phase phase);
  void upstream_bytes(std::string_view bytes);
  void upstream_closed();
  void abort(std::string_view reply_421_text, smtp::Ending ending);
  // A flight is partly given to the dialogue: the owner writes what take_to_upstream() gives,
  // then calls send_more() for its next piece (before it reads: no reply is due before the
  // flight is all sent).
  bool sending() const { return sending_.has_value(); }
  void send_more();

  smtp::UpstreamOutput take_to_upstream() { return dialogue_.take_to_upstream(); }
  std::vector<smtp::UnrecordedBody> take_unrecorded_bodies() {
    return dialogue_.take_unrecorded_bodies();
  }
  bool finished() const { return dialogue_.finished(); }
  bool awaiting_end_of_data() const { return dialogue_.awaiting_end_of_data(); }
  const smtp::Dialogue& dialogue() const { return dialogue_; }
  // Finalises the report (replies never replayed are listed with no replay code).
  ReplayReport report() const;

 private:
  void pump();
  void collect_replies();
  void close_client();  // the client (played) closes, as the original did or to stop
  void stop_if_meaning_changes(std::size_t index, const std::string& replay_line);
  std::string answered_command(const Flight& f, const RecordedReply& r,
                               std::size_t& answered) const;
  void compare_login();
  void send_flight(std::size_t index);
  void send_piece();
  void go_on_as_after_client_tls();

  const RecordedDialogue& recording_;
  std::vector<smtp::RecordedEvent>& events_;  // the replay's record, which dialogue_ writes
  std::string login_user_;  // mailtap's own AUTH (DialogueOptions::login), before the move
  smtp::Dialogue dialogue_;
  smtp::ReplyParser client_view_;
  ReplayReport report_;
  std::size_t next_flight_ = 0;
  std::optional<FlightCursor> sending_;  // of flight next_flight_ - 1, while partly sent
  std::size_t received_ = 0;             // replies the replayed client read, greeting included
  bool stopping_ = false;
  // The server closed or went quiet: what the dialogue tells the client from then on is
  // mailtap's own 421, not the server's reply (unless the original ended with the same close:
  // RecordedDialogue::server_closed).
  bool upstream_gone_ = false;
  std::vector<std::size_t> row_flight_;  // per report_.replies row: its flight + 1, 0 for none
};

}  // namespace mailtap::tools
