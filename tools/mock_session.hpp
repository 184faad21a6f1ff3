// The sans-IO heart of `mailtap mock`: one client connection answered from a recording. The
// client's bytes go through a Dialogue, the same single reading of SMTP the proxy uses
// (framing, pipelining, bare LF, DATA), and the recorded upstream replies are fed to it in
// order, so the client reads what the original client read (the EHLO reply as the client got
// it, mailtap's local answers made again or, where the mock's Dialogue would not make them,
// served as recorded; a reply the server sent unasked, where it came). AUTH follows the
// client's form of the exchange (initial response or not, RFC 4954 §4) and gets the recorded
// challenges that remain and the recorded final reply.
//
// Each command the client sends is checked against the recording before it is answered:
// verbs must be equal; MAIL FROM / RCPT TO paths must be equal ignoring ASCII case (their
// parameters, e.g. SIZE=, are not compared); other arguments (the EHLO name, AUTH
// credentials and whether they came with the AUTH line, the message body) are not compared,
// because they legitimately differ between runs of the code under test. At the first
// difference the commands before it get their recorded replies, the differing one a 421
// naming the difference, and the session ends. A client whose bytes the Dialogue refuses
// outright (a TLS handshake: the mock speaks plain text) gets the Dialogue's own 421 instead,
// and its reason is the difference.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proxy/smtp/dialogue.hpp"
#include "tools/recorded_dialogue.hpp"

namespace mailtap::tools {

// nullopt if `got` (a client event of the mock's dialogue) plays the recorded `expected`
// step; otherwise a description of the difference.
std::optional<std::string> step_difference(const ClientStep& expected, const smtp::Event& got);

// "MAIL FROM:<a@b> SIZE=10" -> "<a@b>"; the argument up to the first space otherwise.
std::string mail_path(std::string_view command_line);

// Why the mock cannot serve `recording` to the client that made it, "" if it can (mailtap mock
// refuses it before it listens). `unfinished_allowed`: --unfinished.
std::string unservable_reason(const RecordedDialogue& recording, bool unfinished_allowed);
// What the mock says (after its ready line) of the first reply the record kept a word shaped like
// a credential out of, which it serves as recorded; "" if there is none.
std::string kept_out_word_note(const RecordedDialogue& recording);

class MockSession {
 public:
  explicit MockSession(const RecordedDialogue& recording);

  void start();  // queues the greeting
  void client_bytes(std::string_view bytes);
  void client_closed();
  // The client completed nothing for `how_long` (--timeout): the mock gives up on it, with the
  // proxy's 421 (take_to_client), and closes. `line_begun`: it sent part of a line (trickling
  // it), not nothing.
  void client_timed_out(const std::string& how_long, bool line_begun = false);
  // What the mock wrote was not taken within `how_long` (--timeout): the client stopped
  // reading, and the mock drops the connection without a word (none would be read). The client
  // has not completed the dialogue, even if all its commands came: their replies did not reach
  // it. After a difference, the 421 naming it went unread too.
  void client_not_reading(const std::string& how_long);
  // The mock was stopped (`signal`: "SIGTERM") while this client was inside the recorded
  // dialogue: it gets a 421 saying so, and has not completed it.
  void mock_stopped(const std::string& signal);
  bool stopped_by_mock() const { return stopped_by_mock_; }
  // Counts the lines the client completed (and each 64 KiB of a long line or BDAT chunk; see
  // Dialogue::client_progress): the mock's --timeout restarts only when this moves.
  std::uint64_t client_progress() const { return dialogue_.client_progress(); }
  // The client sent part of a line it has not completed (Dialogue::client_line_begun).
  bool client_line_begun() const { return dialogue_.client_line_begun(); }

  std::string take_to_client() {
    return std::exchange(to_client_, {}) + dialogue_.take_to_client();
  }
  // Client lines wait unread because the replies before them filled what the dialogue holds
  // for the client (DialogueOptions::max_client_output): replies owed before a sync point, then
  // lines the client sent past it, its message after DATA. Once the owner has written what it
  // took, it calls resume_client_input() and takes what that made, before it waits for the
  // client, which may have sent everything it means to and be waiting for these replies.
  bool client_input_resumable() const { return !finished() && dialogue_.client_input_resumable(); }
  void resume_client_input();
  bool finished() const { return dialogue_.finished() || ended_; }
  bool in_data() const { return dialogue_.in_data(); }
  // The client played the whole recording (including its QUIT, if the original sent one).
  bool completed() const { return completed_; }
  const std::optional<std::string>& divergence() const { return divergence_; }
  std::size_t commands_matched() const { return matched_; }

 private:
  void pump();
  // Why the recording has no reply to an end of data the client sent: what the record knows
  // of where it stops (RecordedDialogue::unfinished).
  std::string no_end_of_data_reason() const;
  bool check_new_events();  // false: diverged
  // A line of the client's (command or SASL response) against the recording; false: diverged.
  bool check_client_line(const smtp::Event& e);
  // `answered_by_mailtap`: the dialogue answered the differing command itself (a STARTTLS
  // mailtap refuses); the 421 replaces that answer, so the client reads one reply to it.
  void diverge(std::string what, bool answered_by_mailtap = false);
  // What mailtap itself sent, among the events after events_[differing], to the line there
  // and to any after it: "" if its answer still waits behind a reply the recording lacks.
  std::string own_answers_from(std::size_t differing) const;
  // What the recording has next; `in_body`: the client left inside a message body.
  std::string recording_continues(bool in_body) const;
  std::size_t next_expected() const;  // index of the next compared recorded step, or client.size()
  void skip_local_replies();          // the dialogue makes mailtap's own replies again
  // Gives the dialogue the recorded reply it awaits, in the SASL form the client chose; false:
  // the recording has none left.
  bool feed_recorded_reply();
  // Gives the dialogue a reply the server sent unasked (a 421) once the client has played
  // what the original sent before it; false: none is due.
  bool serve_unsolicited_reply();
  // The recording's refused_chunk_reply is the server's next reply (the replies before it are
  // served) and has not been given yet.
  bool refused_chunk_reply_next() const;
  // Gives the dialogue the server's reply to a BDAT that came inside its chunk, as the original
  // server sent it: in the chunk, once as much of it has come (the dialogue refuses it, as the
  // proxy did), or as the BDAT's reply to a client whose chunk ended sooner.
  void feed_refused_chunk_reply();
  // The recording ends with a reply that ended the session, not served yet (the server's 421, or
  // mailtap's own for a server that closed): commands the client sent past the recorded ones are
  // not judged, as the proxy read nothing after that end (they get no reply: the end comes
  // first). The proxy had read no further only because the server's end came first.
  bool recorded_ending_to_come() const;
  // The server closed the connection here in the original (RecordedDialogue::server_closed):
  // every reply before mailtap's 421 for it is served and this client has sent what the
  // original had sent by then.
  bool server_close_due() const;
  // Ends the session as the proxy did when the server closed: its 421, as recorded.
  void close_as_recorded();
  // The client has played what the original sent before unsolicited reply `r`: its steps and,
  // for a reply that came inside a message body, as many octets of that body.
  bool unsolicited_reply_due(const RecordedReply& r) const;
  // The client's AUTH line matched recorded step `idx` by mechanism: notes how its exchange
  // differs (initial response or not); a description of the difference if it cannot follow.
  std::optional<std::string> follow_sasl_form(std::size_t idx, const smtp::Event& got);
  // The challenge the server answered a bare `head` ("AUTH LOGIN", no initial response) with
  // elsewhere in the recording, if it has one: what to send for a first challenge the original
  // client skipped.
  std::optional<std::string> recorded_first_challenge(const std::string& head) const;
  // A SASL response that stands for the recorded AUTH's initial response; false: diverged.
  bool take_initial_response(const smtp::Event& got);

  const RecordedDialogue& recording_;
  std::vector<smtp::RecordedEvent> events_;
  std::vector<smtp::Message> messages_;
  smtp::Dialogue dialogue_;
  std::size_t events_checked_ = 0;
  std::size_t next_step_ = 0;   // into recording_.client
  std::size_t next_reply_ = 0;  // into recording_.replies
  std::size_t matched_ = 0;
  std::size_t unanswered_ = 0;   // matched client events the upstream side still owes a reply
  std::size_t body_octets_ = 0;  // of the client's current body (or BDAT chunk), as relayed
  bool ended_ = false;
  bool completed_ = false;
  bool goodbye_quit_ = false;  // a QUIT after a recording that ended without one
  bool stopped_by_mock_ = false;
  bool refused_chunk_reply_given_ = false;
  // Client lines mailtap answers itself whose answer it has not sent yet: it sends them in
  // order, each once the replies due before it are there.
  std::size_t own_answers_owed_ = 0;
  // The client's AUTH and the recorded one differ in sending an initial response (RFC 4954
  // §4): the recorded first challenge is skipped (the client sent what answers it with AUTH),
  // or one is sent (the recording's AUTH carried the first response, this client sends it
  // after the challenge). The client then gets the recorded rest of the exchange.
  enum class SaslForm : std::uint8_t { as_recorded, skip_first_challenge, send_first_challenge };
  SaslForm sasl_form_ = SaslForm::as_recorded;
  // For send_first_challenge: the server's first challenge to such an AUTH elsewhere in the
  // recording, else "334 \r\n" (LOGIN's "Username:").
  std::string first_challenge_;
  bool initial_response_due_ = false;  // the next SASL response stands for the recorded one
  // Recorded replies of mailtap's own served as the server's: mailtap answered those lines
  // itself (proxy --auth-user: "503 already authenticated", the failed login's reply to MAIL),
  // which the mock's dialogue, set up without mailtap's own AUTH, passes on instead.
  std::set<std::size_t> local_served_;
  std::optional<std::string> divergence_;
  std::string to_client_;  // taken from the dialogue before a divergence ends it
};

}  // namespace mailtap::tools
