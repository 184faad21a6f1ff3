// The sans-IO SMTP relay: mailtap's single reading of the dialogue between a client and the
// upstream server, and the bytes that reading implies on each side.
//
// Client bytes are framed exactly as a strict RFC 5321 server frames the bytes mailtap sends
// (they are normalised first, see TextNormaliser). Where the meaning of the next client bytes
// depends on the server's answer (after EHLO/HELO, DATA, AUTH and each SASL response, QUIT),
// the dialogue stops reading client bytes until that answer arrives, so "DATA" followed by a
// body is only a body if the server said 354. Replies are matched to commands in order
// (PIPELINING), and replies mailtap writes itself are queued among them in order.
//
// The owner feeds bytes in, takes bytes out and writes them; it also takes the Events and
// Messages the dialogue produces. Nothing here blocks, allocates without bound, or throws on
// any input. The pieces: ClientFramer frames the client's bytes, TransactionTracker follows
// the mail transactions, and the Dialogue decides what each line and reply means.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proxy/smtp/auth_assistant.hpp"
#include "proxy/smtp/auth_redactor.hpp"
#include "proxy/smtp/client_framer.hpp"
#include "proxy/smtp/command.hpp"
#include "proxy/smtp/ending.hpp"
#include "proxy/smtp/event.hpp"
#include "proxy/smtp/reply_parser.hpp"
#include "proxy/smtp/text_normaliser.hpp"
#include "proxy/smtp/timing_mark_scanner.hpp"
#include "proxy/smtp/transaction_tracker.hpp"
#include "proxy/smtp/upstream_login.hpp"
#include "proxy/smtp/upstream_output.hpp"

namespace mailtap::smtp {

// The client's side of the session (--local-tls): plain text only (none), plain text with
// mailtap's own STARTTLS on offer (starttls), or TLS from the first byte (implicit).
enum class ClientTls : std::uint8_t { none, starttls, implicit };

// What mailtap's 421 says when the session ends after the server got a message's end of data
// and before its reply (a timeout, the server closing, a shutdown): the server may have queued
// the message, and a client told only to try again would send it twice (RFC 5321 §6.1). One
// wording for every such ending; the outcome reason ends in may_have_the_message_reason.
inline constexpr std::string_view may_have_the_message =
    "it may have the message: check before sending it again";
inline constexpr std::string_view may_have_the_message_reason = "; it may have the message";

// What a server did that sent octets that are no TLS record and read as text inside TLS (the
// 421, the outcome reason and the record's note say it so), before the quoted text.
inline constexpr std::string_view upstream_plain_text_phrase =
    "sent octets that are not TLS, perhaps a reply in plain text inside TLS (unencrypted, so "
    "not relayed)";

// The reason mailtap refuses a client's STARTTLS where it offers none (no --local-tls) and
// encrypts the link to the server itself, `link` naming it ("smtp.gmail.com:587 (TLSv1.3)"):
// the client's side is plain text, so a client that requires TLS is told the way to get it,
// not to turn its TLS off (docs/proxy.md, "TLS towards the client").
std::string starttls_refusal_upstream_encrypted(std::string_view link);
// The same refusal with --tls none, where nothing is encrypted: the way to TLS on the client's
// side is the same (--local-tls), while the link to the server stays plain text.
std::string starttls_refusal_plain_relay();

struct DialogueOptions {
  Phase phase = Phase::tls;    // phase of the relayed dialogue (tls, or plain with --tls none)
  std::string upstream_label;  // "smtp.example.com:587", for mailtap's own replies
  std::string upstream_host;   // for OAUTHBEARER's host=/port= (--assist-auth)
  std::uint16_t upstream_port = 0;
  std::string
      starttls_refusal;  // reason given when the client asks for STARTTLS (--local-tls none)
  // Said at the end of the first line of every EHLO or HELO reply the client gets, in
  // brackets, where a person at telnet reads it ("mailtap: certificate of HOST NOT verified:
  // --insecure", "mailtap: plain text to HOST: --tls none"); "" for nothing. The line's text is
  // free (RFC 5321 4.1.1.1 ehlo-greet, and the domain's trailing text of a HELO reply): no
  // client parses it.
  std::string greeting_warning;
  // What a client that starts a TLS handshake on this plain-text port should do instead, for
  // mailtap's 421, the record and the outcome reason ("connect without TLS, or run mailtap with
  // --local-tls implicit"); the owner knows what it offers.
  std::string tls_on_plain_port_advice;
  // --local-tls. With starttls, AUTH is refused until the client's TLS is up (docs/proxy.md).
  ClientTls client_tls = ClientTls::none;
  // RFC 5321 §4.5.3.1.4 allows 512 octets a command line; extensions (SIZE, SMTPUTF8, DSN)
  // legitimately exceed that, so mailtap forwards up to Postfix's default line_length_limit.
  std::size_t max_command_line = 2048;
  // RFC 4954 §4: AUTH command and SASL response lines may be up to 12288 octets.
  std::size_t max_auth_line = 12288;
  // --max-body: octets of each message body recorded in its events, counted as the server
  // stores it (no transparency dots, no terminator), as Message::size is.
  std::size_t max_body_capture = 64u << 20;
  // Off when nothing is recorded or printed: no body events, no hash (Message keeps its size).
  bool capture_bodies = true;
  std::size_t max_client_backlog = 256u << 10;
  std::size_t max_pending_replies = 1000;
  // Client output not yet written (see set_client_output_unwritten) past which no further
  // client line is read: many lines get a reply of mailtap's own, a few octets each can make a
  // hundred, and a client that does not read would have them pile up without bound. About as
  // many replies as max_pending_replies; it also bounds the lines (and their events) one
  // client_bytes() call handles.
  std::size_t max_client_output = 64u << 10;
  RedactionPolicy redaction;
  // --auth-user: mailtap authenticates once the client's EHLO (or HELO) is answered over TLS,
  // before the client sees the reply (docs/auth.md).
  std::optional<UpstreamLoginOptions> login;
  // --assist-auth: AUTH typed in clear is sent encoded, 334 prompts reach the client decoded.
  bool assist_auth = false;
  bool token_command = false;  // --oauth2-token-cmd was given (assisted XOAUTH2/OAUTHBEARER)
  // The upstream asked for a client certificate in its TLS handshake: what mailtap says, after
  // upstream_label, of a 421 with which the server ends the session before any other reply
  // (net::describe_refusal_after_certificate_request). A server that refuses mailtap's
  // certificate, or its absence, in SMTP rather than with a TLS alert (Postfix's
  // smtpd_tls_req_ccert: "421 4.7.1 ... No client certificate presented") does so; the line is
  // added to that reply as its last one (docs/proxy.md). "" when no certificate was asked for.
  std::string certificate_request_note;
};

class Dialogue {
 public:
  using Clock = std::chrono::system_clock;

  // The owner takes what the dialogue records with take_events() and take_messages().
  explicit Dialogue(DialogueOptions options);
  // The dialogue appends what it records to `events` and `messages` (for owners that read the
  // whole record at the end: tests, replay, mock); take_events() then takes them from there.
  Dialogue(DialogueOptions options, std::vector<RecordedEvent>& events,
           std::vector<Message>& messages);
  ~Dialogue();
  Dialogue(const Dialogue&) = delete;
  Dialogue& operator=(const Dialogue&) = delete;

  void set_time(Clock::time_point now) { now_ = now; }

  // The upstream's original greeting, relayed to the client once the upstream link is ready.
  void relay_greeting(const Reply& greeting, Phase phase);

  void client_bytes(std::string_view bytes);
  void upstream_bytes(std::string_view bytes);
  // The client sent EOF: it closed its sending side, and may or may not still read (a FIN says
  // not which). Replies still due to it are relayed all the same; the record notes where it
  // closed, and a session it closed before its end is client_closed, also when the server's
  // 221 answers the client's own QUIT.
  void client_closed();
  // The upstream connection ended. `tls_reason`, when the server ended it with a TLS alert,
  // says why after its host:port ("requires a client certificate ...", net::tls_alert);
  // otherwise `reset` tells a TCP reset (RST) from a close.
  void upstream_closed(std::string_view tls_reason = {}, bool reset = false);
  // The upstream's TLS connection failed on octets that are no TLS record and read as text,
  // `quoted` (escaped, their first line): a reply in plain text inside TLS, as Exim writes the
  // ones that end a session ("554 SMTP synchronization error"). Unauthenticated, so never
  // relayed as the server's reply: the 421 that ends the session quotes them as such.
  void upstream_sent_plain_text(std::string_view quoted);
  // Ends the dialogue now with "421 <text>" to the client (timeouts, shutdown, I/O errors).
  // With `quit_why`, the upstream is told goodbye (QUIT, recorded with that reason) where it
  // reads a QUIT as a command (can_quit_for_client), as when the client closes.
  void abort(std::string_view reply_421_text, Ending ending, std::string_view quit_why = {});
  // As abort(), also once the dialogue has ended: its owner had not yet closed the record, nor
  // relayed the last replies (they waited for a commit past the client's limit), and "421
  // <text>" goes in their place, the ending becoming `ending` (the record must not say the
  // session ended as the server's 221 would have it).
  void end_instead(std::string_view reply_421_text, Ending ending);
  // The client's turn ran out after `limit` (as the user set it): ends the dialogue with the
  // 421 that says so, one wording for the proxy and the mock. Idle, or with `line_begun` (bytes
  // since its turn began completed nothing, or a command line is held unfinished: a note says
  // its size, and the 421 names a CR in it that is not the client's line ending) its line too slow.
  // `advice`, if not empty, tells the client's user what to do, before "; closing". Between
  // commands the server then gets mailtap's QUIT, as when the client closes (client_not_reading
  // says where); inside a body the message is abandoned by the close, as ever.
  void time_out_client(std::string_view limit, bool line_begun, std::string_view advice = {});
  // The client did not take what was written to it within `limit` (for the notes, as the user
  // reads it: "5m (--timeout-command)"): the owner drops the connection, as a 421 would only wait
  // unread behind the rest. Nothing more of the client is read. The server gets mailtap's QUIT
  // where it reads one as a command (between commands, unless one it has yet to answer makes
  // it read what follows as something else; inside an AUTH exchange after "*"), a message
  // being relayed is abandoned (no end of data: the server discards it), and the dialogue ends
  // (a timeout, the client's).
  void client_not_reading(std::string_view limit);
  // Recording failed and mailtap may relay no message it cannot record (--record-failure stop;
  // the owner tells, `cause` says why): from now on no end of data goes upstream. A message
  // whose body is being relayed is abandoned at its end as when the client closes inside it
  // (the server discards it), and the client gets a 421 that says so; MAIL, DATA and BDAT get
  // a 451. The replies to ends of data already sent are relayed: the server has those messages.
  // Once no reply is due to the client between commands (at once, or when the last one due has
  // been relayed), the session ends with mailtap's unsolicited 421 (RFC 5321 §3.8), which says
  // what the server already has that the record lacks, then its QUIT to the server: otherwise
  // the person at the client would learn only from a later connection that this session is not
  // in the record. `accepted_recorded`: of the messages the server accepted in this session,
  // how many the owner knows were committed (the first ones); called again, it only looks
  // whether that 421 is due.
  void recording_failed(std::string cause, std::uint64_t accepted_recorded = 0);
  // Recording failed as the session ended on the server's 221 to the client's QUIT (the
  // closing record's commit failed, --record-failure stop): the 221 goes all the same, and
  // after it this 421 (returned as the owner writes it, recorded nowhere, the record having
  // failed), so that the person learns the session is not in the record. Empty if the
  // dialogue's own 421 said so already, or the session did not end on a 221.
  std::string recording_failed_at_quit(std::string cause, std::uint64_t accepted_recorded);
  // The 421 with which recording_failed() ended the session (its text, after "421 "), for the
  // owner's log: the record cannot hold it. Empty unless it did.
  const std::string& unrecorded_end_reply() const { return unrecorded_end_reply_; }
  // The owner will never write `replies` (as reply_summaries says them), recorded as relayed,
  // to the client: it held them for a commit that did not come in time. Their
  // `upstream_octets` (as upstream_octets_taken() counted them) come off bytes_from_upstream(),
  // and a note says so: "not relayed to the client: N octets (REPLIES)", wire_size 0.
  void replies_not_relayed(std::string_view replies, std::uint64_t upstream_octets);
  // Ends the dialogue with nothing more said to anyone, when the session stops for a reason
  // the dialogue did not see. Closes an open message body's record, so the events still add up
  // to every octet relayed.
  void end(Ending ending) { finish(ending.kind, std::move(ending.reason)); }

  // In order; a line holding credentials mailtap put in (--auth-user, --assist-auth) is a
  // Secret piece of its own, wiped when the owner drops it once written.
  UpstreamOutput take_to_upstream();
  std::string take_to_client();
  // What the dialogue recorded since the last call, in order: the owner hands it to the
  // recorder (redacted already, see RecordedEvent).
  std::vector<RecordedEvent> take_events() { return std::exchange(events_, {}); }
  // Body octets past --max-body since the last call, in order: the owner hands them to the
  // recorder after the events taken with them and before the messages (see UnrecordedBody).
  std::vector<UnrecordedBody> take_unrecorded_bodies() {
    return std::exchange(unrecorded_bodies_, {});
  }
  // The transactions whose final reply arrived since the last call.
  std::vector<Message> take_messages() { return std::exchange(messages_, {}); }
  // The messages whose end (the final "." or BDAT ... LAST with its chunk) reached the server,
  // as far as bytes_to_upstream() says, and got no reply: the session ended first (a timeout,
  // the server closing, a shutdown). The server may have them, so the record keeps them, with
  // no final reply. For the owner closing the record, once bytes_to_upstream() is final.
  std::vector<Message> unanswered_messages() const;

  // An OAuth access token is needed (mailtap's own AUTH, or an assisted AUTH XOAUTH2 USER);
  // `fresh`: the cached one was refused, run the token command again. The dialogue reads no
  // client bytes until provide_token() or token_unavailable().
  enum class TokenNeed : std::uint8_t { none, cached, fresh };
  TokenNeed token_needed() const { return token_need_; }
  void provide_token(Secret token, bool fresh);
  void token_unavailable(const std::string& error);

  // --local-tls starttls: the 220 to the client's STARTTLS is in take_to_client(). Once it is
  // written, the owner does the server-side handshake and reports it with client_tls_started()
  // or client_tls_failed(). No client bytes are read meanwhile: any that arrive after the
  // STARTTLS line are a command injection (RFC 3207 §4.2, CVE-2011-0411) and end the session.
  bool client_tls_due() const;
  // `description`: "TLSv1.3 TLS_AES_128_GCM_SHA256", for the record.
  void client_tls_started(std::string_view description);
  void client_tls_failed(std::string_view reason);
  // mailtap's shutdown ended the handshake it was waiting for (not a failure of the client's).
  void client_tls_cut_by_shutdown();
  // The client's side is TLS (implicit, or after its STARTTLS).
  bool client_tls_active() const { return client_tls_ == ClientTlsState::active; }

  bool wants_client_input() const;
  // Of what take_to_client() gave, the octets the owner has not written yet (the client is
  // not reading). With what take_to_client() would give now, it counts towards
  // max_client_output.
  void set_client_output_unwritten(std::size_t octets) { client_output_unwritten_ = octets; }
  // Client lines wait because the client's output was full and it has room now: the owner
  // calls resume_client_input() (then takes what that made), whether or not it reads more.
  bool client_input_resumable() const { return client_input_held_ && !client_output_full(); }
  // As much output as the client is held to waits for it (max_client_output): no client
  // input is read until it has room.
  bool client_output_full() const {
    return client_output_unwritten_ + to_client_.size() >= options_.max_client_output;
  }
  void resume_client_input() {
    process_client();
    end_if_unrecordable();
  }
  // A command is waiting for the upstream's reply.
  bool awaiting_reply() const;
  // ... and the upstream has all it needs to give one (the reply timeout applies): not the
  // BDAT whose chunk the client is still sending, which the client is on the clock for.
  bool upstream_owes_reply() const;
  // Bytes of a reply have come, but not its last line.
  bool reply_partly_received() const { return replies_.buffered() > 0; }
  // Counts the reply lines the upstream has completed (each line of a multi-line reply). The
  // session's clock for a reply restarts only when this moves, so a server trickling its
  // reply a byte at a time cannot hold a session open.
  std::uint64_t upstream_progress() const { return upstream_progress_; }
  // Counts the replies the upstream has completed (all lines of each): mailtap replay gives
  // the server its limit for a whole reply, restarting only when this moves.
  std::uint64_t upstream_replies() const { return upstream_replies_; }
  // Of all take_to_upstream() gave (its octets counted from the first), those the server is
  // known to have had: through the command a reply line it completed answers (it replied, so it
  // had it). The session's clock for a reply need not wait for the kernel to say so.
  std::uint64_t upstream_answered_through() const { return upstream_answered_through_; }
  Clock::time_point oldest_pending_since() const;
  // Counts what the client has completed: each line (command, SASL response, body line) and
  // each 64 KiB of a body line or BDAT chunk. The session's clock restarts only when this
  // moves, so bytes trickled without completing anything do not keep a session alive.
  std::uint64_t client_progress() const { return client_progress_; }
  // The client sent octets that complete nothing yet (part of a line, of a body line or of a
  // BDAT chunk): whether a client that goes quiet now had begun something, which a read that
  // completed one line and began the next leaves so too.
  bool client_line_begun() const;
  // The client is sending a message body (the longer DATA timeout applies).
  bool in_data() const;
  // The oldest reply awaited answers an end of data (RFC 5321 §4.5.3.2.6: 10 minutes).
  bool awaiting_end_of_data() const;
  // The one reply awaited is to the BDAT whose chunk is still coming from the client: a reply
  // now is refused (the server could read the rest of the chunk as commands). For the mock,
  // which plays the server and so holds that reply until the chunk is in.
  bool awaiting_chunk() const;
  // Some end of data (the final "." or BDAT ... LAST) went upstream and its reply has not come:
  // the server may have that message already.
  bool end_of_data_unanswered() const;
  // Nothing more will be relayed: flush the outputs and close both sides.
  bool finished() const { return ending_.has_value(); }
  const std::optional<Ending>& ending() const { return ending_; }
  // Close the upstream without a polite QUIT: the client vanished mid-message, and completing
  // the exchange could only deliver a truncated message.
  bool abandon_upstream() const { return abandon_upstream_; }

  // The client's octets written upstream: those the dialogue relayed, less those the owner
  // reported dropped unwritten (upstream_output_dropped).
  std::uint64_t bytes_to_upstream() const { return bytes_to_upstream_; }
  // Of what take_to_upstream() gave, `relayed_octets` of the client's (UpstreamOutput::
  // relayed_size) were dropped unwritten: the upstream was abandoned, or a write to it failed,
  // or (`why`, for the record) the owner stopped writing for a reason of its own. Taken off
  // bytes_to_upstream(), and recorded, so that the record says what the server got.
  void upstream_output_dropped(std::uint64_t relayed_octets, std::string_view why = {});
  // The server's octets relayed to the client (as the server sent them, before any rewrite),
  // less those the owner reported never written (replies_not_relayed).
  std::uint64_t bytes_from_upstream() const { return bytes_from_upstream_; }
  // Of the octets the last take_to_client() gave, those of the server's replies, as
  // bytes_from_upstream() counts them: what the owner reports if it never writes them.
  std::uint64_t upstream_octets_taken() const { return upstream_octets_taken_; }
  std::uint64_t bytes_to_client() const { return bytes_to_client_; }
  // The client's octets read but thrown away unread where reading stopped (after its QUIT,
  // behind a BDAT line refused, bytes after STARTTLS), and, once the dialogue has ended, what
  // it holds that nothing will read: never framed, relayed or recorded, only counted, as its
  // owner's lingering close counts what comes after the end (they may hold a secret typed
  // ahead).
  std::uint64_t client_octets_discarded() const {
    return client_octets_discarded_ + (ending_ ? framer_.unread() : 0);
  }
  // Ends of data ("." lines) sent upstream so far.
  std::uint64_t data_ends_sent() const { return data_ends_sent_; }
  // Authenticated user (empty unless AUTH succeeded; empty under --redact-users).
  std::string auth_user() const;
  // The mechanism of the AUTH that succeeded ("PLAIN"), empty if none did.
  std::string auth_mechanism() const;
  // The session was authenticated by mailtap (--auth-user), not by the client.
  bool authenticated_by_mailtap() const { return login_state_ == LoginState::succeeded; }
  // --tls none, and the server's EHLO reply offered STARTTLS (removed for the client).
  bool starttls_offered_in_plain() const { return starttls_offered_in_plain_; }
  // Why mailtap's own AUTH failed (the reply line the client gets), empty unless it did.
  const std::string& login_failure() const { return login_failure_; }

 private:
  enum class Mode : std::uint8_t { command, sasl, data, bdat_chunk, closed };
  // What a queued entry waits for: the upstream's reply to a command of the client's or of
  // mailtap's own, or (local) nothing: a reply mailtap wrote, held for its turn.
  enum class Expect : std::uint8_t {
    command,
    sasl,
    data_end,
    own_cancel,
    own_quit,
    own_ehlo,  // mailtap's EHLO after a client's HELO (--auth-user)
    own_auth,  // a line of mailtap's own AUTH exchange (--auth-user)
    local
  };
  enum class LoginState : std::uint8_t {
    off,
    waiting,
    own_ehlo,
    token,
    exchanging,
    succeeded,
    failed
  };
  // The client's side: no TLS to offer, STARTTLS offered, STARTTLS read (its 220 queued),
  // the 220 sent (handshake due), TLS up.
  enum class ClientTlsState : std::uint8_t { unavailable, offered, requested, due, active };
  struct Pending;
  struct Relayed;

  void process_client();
  void handle_line(FramedLine framed);
  void handle_framed_line(FramedLine framed);
  void send_own_line(std::string_view line, EventKind kind, std::string note, Expect expects,
                     bool sync);
  void handle_command(const Command& cmd, std::string_view line, bool distrusted);
  void note_line_rewrites(const RewriteCounts& rewrites, std::size_t first_event);
  // What the octet after the CR a line was ended at showed it was (ClientFramer::
  // settle_line_end), as a rewrite note of its own.
  void note_settled_line_end();
  std::string held_line_hint() const;  // for a timeout with a command line begun
  std::string ended_at_cr_verb_;       // of the last line read, for note_settled_line_end
  void record_malformed_reply();
  void record_unfinished_reply(std::string_view ending_reason);
  void answer_telnet_options();
  void record_telnet_answers(const FramedLine* line);
  // --assist-auth's password prompt to a client that showed itself telnet: IAC WILL ECHO, so
  // that telnet stops echoing the password typed (docs/auth.md); restore_echo() sends IAC WONT
  // ECHO once the line is in, or the prompt is left any other way. Each is recorded as a
  // mailtap_to_client note holding the octets written.
  void withhold_echo();
  // A server's 4xx/5xx to a command line that held a Backspace octet: a note saying so.
  void note_backspace_refused(const Pending& p, const Reply& reply);
  void restore_echo(std::string_view why);
  void record_unrelayed_reply(std::string_view raw, std::string note);
  // What makes a framed line refused whatever it says (empty `what`: nothing), and what to do.
  struct LineFault {
    std::string what;
    std::string_view advice;
    bool line_ending = false;  // a line ending not the client's own (else a telnet sequence)
  };
  static LineFault line_fault(const FramedLine& framed, LineEnd own);
  void refuse_line(const Command& cmd, std::size_t total, bool too_long, const LineFault& fault);
  void handle_bdat(const Command& cmd, std::string_view line);
  bool refuse_bdat_of_a_bare_cr_client(const Command& cmd, std::string_view line);
  void end_at_unframable_bdat(std::string_view why, std::string_view what_to_do);
  void end_reading_client(std::string reply_text, std::string reason);
  std::string bdat_refusal() const;
  bool refuse_between_chunks(const Command& cmd, std::string_view line);
  // A line without a verb behind a refused AUTH, before any line with one: answered by mailtap,
  // not forwarded, since it is most likely one of that AUTH's SASL responses. True if it was one.
  bool refuse_distrusted_line(const Command& cmd, std::string_view line);
  // No BDAT is framed (bdat_chunk_refused_, `why`) until the server accepts an RSET, MAIL, EHLO
  // or HELO sent after the command whose Pending::sequence is `after`.
  void refuse_chunks_until_reset(std::string_view why, std::uint64_t after);
  // The server accepted `p` (an RSET, MAIL, EHLO or HELO): the refusal ends if p came after it.
  void end_chunk_refusal(const Pending& p);
  bool refuse_bdat_over_size(const Command& cmd, std::string_view line, std::uint64_t chunk,
                             Transaction* transaction);
  TransactionTracker::Handle bdat_transaction() const;
  bool release_held_bdat();
  TransactionTracker::Forecast forecast_transaction() const;
  void relay_command(const Command& cmd, std::string_view line);
  void distrust_early_lines();
  void handle_sasl_line(std::string_view line);
  bool read_data();  // false: need more bytes
  bool read_line();  // a command line or SASL response; false: need more bytes
  bool body_segment(std::string_view segment,
                    std::size_t wire_octets);  // true: it ended the message
  bool dot_line(std::string_view segment, LineEnd end);
  void refuse_dot_nul_line();
  bool ends_message(LineEnd end) const;
  void end_of_data();
  void note_smuggling_shape(LineEnd before, LineEnd after);
  void forward_body(std::string_view bytes, bool line_start);
  void answer_timing_marks(std::string_view body_text);
  bool read_bdat_chunk();
  void on_reply(Reply reply);
  void on_unsolicited_reply(const Reply& reply, Relayed& out);
  void explain_certificate_refusal(const Reply& reply, bool unsolicited, Relayed& out);
  std::string closing_reason(const Reply& reply) const;
  std::optional<Ending> ending_by_reply(const Pending& p, const Reply& reply) const;
  void on_body_refused(const Reply& reply, Relayed& out);
  void refuse_out_of_step_reply(const Reply& reply, Event e, std::string what,
                                std::string_view why);
  void on_own_end_reply(const Pending& p, const Reply& reply, Event e);
  bool on_command_reply(Pending& p, const Reply& reply, Relayed& out);
  bool on_greeting_reply(const Pending& p, const Reply& reply, Relayed& out);
  void begin_body(const Pending& p);
  void sasl_challenge(const Reply& reply, Relayed& out);
  void sasl_end(const Reply& reply);
  void send_client_auth(std::string_view wire, bool response);
  void send_assisted_auth(AssistedLine assisted, bool response);
  void record_client_auth(std::string_view wire, bool response);
  void await_client_auth_reply(bool response);
  // AUTH on mailtap's side (dialogue_auth.cpp)
  bool hold_for_login(const Pending& p, const Reply& reply, bool positive);
  void start_login(const Pending& p);
  void on_own_reply(const Pending& p, const Reply& reply, Event e);
  void apply_login_step(LoginStep step);
  void send_login_line(Secret line);
  void finish_login(bool succeeded, std::string reply_line);
  void release_held_reply();
  std::string client_ehlo_reply(const Reply& reply, bool& removed) const;
  std::string client_helo_reply(const Reply& reply, bool& changed) const;
  std::string with_greeting_warning(std::string to_client, bool& changed) const;
  std::string helo_rewrite_note() const;
  std::string client_ehlo_extensions(const Reply& reply, bool& removed) const;
  std::string ehlo_rewrite_note() const;
  std::string ehlo_extensions_note() const;
  std::string login_user_label(bool in_reply = false) const;
  bool intercept_command(const Command& cmd, std::string_view line);
  bool assist_command(std::string_view line);
  void note_rewrite(std::string verb, std::string note);
  void refuse_auth_line(std::string_view line, std::string reply_line);
  void record_unsent_auth_line(std::string_view line);
  void record_auth_line_awaiting_token();
  void end_auth_exchange_locally(std::string reply_line);
  std::string answer_starttls(const Command& cmd);
  bool gate_client_tls(const Command& cmd, std::string_view line);
  bool greet_again_from_earlier_reply(const Pending& p, const Reply& reply, Relayed& out);
  bool client_tls_pending() const {
    return client_tls_ == ClientTlsState::requested || client_tls_ == ClientTlsState::due;
  }
  void refuse_tls_injection();
  bool check_client_start();
  void refuse_tls_on_plain_port();
  void on_client_input_exhausted();
  // A reply is owed to a command that must end a pipelined group (RFC 2920 §3.1).
  bool awaiting_group_end() const;
  bool chunk_reply_pending() const;
  // mailtap's own QUIT for a client that is gone (`why`, for the notes): inside an AUTH
  // exchange the server waits for a SASL response and would read a bare QUIT as one, so "*"
  // cancels the exchange first.
  void quit_for_client(std::string_view why);
  bool can_quit_for_client() const;
  // A reply to something of the client's is still to come (or to be written by mailtap).
  bool replies_due_to_client() const;
  // Reading stops here: what the framer holds goes unread (client_octets_discarded()).
  void discard_unread_client_input();
  // Nothing more of the message being relayed goes upstream, its end of data least of all: the
  // server discards it (the client left, or recording failed). `why` opens the record's note.
  void abandon_message(std::string_view why);
  // The upstream connection failed for `phrase` (after its host:port): the 421 with `status`
  // that ends the session, which says the server may have a message whose end it got.
  void upstream_failed(std::string_view status, std::string_view phrase);
  // Recording failed: the client's end of data is answered by mailtap, and the session ends.
  void refuse_unrecordable_end();
  // Recording failed: between commands with no reply due, the session ends with the 421 that
  // says so (recording_failed).
  void end_if_unrecordable();
  std::string recording_failure_reply(std::string_view closing) const;
  // Recording failed: MAIL, DATA and BDAT are answered by mailtap (true), as nothing they
  // start could be recorded.
  bool refuse_unrecordable_command(const Command& cmd, std::string_view line);
  // A message body (DATA text, or a BDAT chunk the upstream gets) is being relayed upstream.
  bool relaying_body() const {
    return mode_ == Mode::data || (mode_ == Mode::bdat_chunk && !bdat_discard_);
  }

  void forward(std::string_view bytes);
  void progress(std::size_t octets, bool complete);
  void emit_client(std::string_view bytes);
  void emit_reply(std::string_view bytes, std::uint64_t upstream_octets);
  // `starts_tls`: the 220 to STARTTLS; once emitted, the client's handshake is due.
  void queue_local_reply(std::string reply_line, bool starts_tls = false);
  void flush_local_replies();
  void push_pending(Pending p);
  void note_answered(const Pending& p);  // a line of the upstream's answers p
  void note_body_rewrites();
  void capture_body(std::string_view wire, std::size_t dots);
  void capture_terminator();
  void flush_data_event();
  void close_body_events();
  void finish(Ending::Kind kind, std::string reason);
  // Nothing more goes upstream (see abandon_upstream()).
  void abandon_upstream_now(bool drop_queued);
  bool replied_before_chunk(const Pending& p) const;
  void refuse_early_bdat_reply(const Reply& reply, Event e);
  Event make_event(Direction d, EventKind k) const;
  // mailtap's own note (kind note, rewrite or tls) about `verb` (may be empty).
  Event note_event(EventKind kind, std::string_view verb, std::string note) const;
  // mailtap's note about the DATA body being relayed, naming its message.
  Event body_note_event(EventKind kind, std::string note) const;
  // The upstream's reply as relayed to the client.
  Event reply_event(const Reply& reply) const;
  // A line mailtap changed on its way to the client: what the client got instead, and why.
  Event rewrite_event(std::string_view verb, std::string bytes, std::string note) const;
  // Hands a finished (redacted) event to the owner.
  void record(Event e) { events_.push_back(RecordedEvent(std::move(e))); }
  // "421 <text>" to the client, recorded as mailtap's own reply.
  void emit_local_421(std::string_view reply_421_text);
  // A client's command line as recorded; redacted when it is a line without a verb behind a
  // refused AUTH (line_distrusted_, see distrust_early_lines), whoever answers it.
  Event client_line_event(Direction d, const Command& cmd, std::string_view line) const;
  // An AUTH line as recorded: its redacted rendering, and the octets it had on the wire.
  Event auth_line_event(Direction d, RedactedLine r, std::size_t wire_size) const;

  // The final reply to a message's end: its Message goes to the owner.
  void record_message(const TransactionTracker::Handle& t, const Reply& final_reply);

  DialogueOptions options_;
  std::vector<RecordedEvent> own_events_;  // where events_ points unless the owner gave a vector
  std::vector<Message> own_messages_;
  std::vector<RecordedEvent>& events_;
  std::vector<Message>& messages_;
  std::vector<UnrecordedBody> unrecorded_bodies_;
  Clock::time_point now_{};

  ClientFramer framer_;
  ReplyParser replies_;
  AuthRedactor redactor_;
  // The server's transactions, moved by its replies; a MAIL's Pending entry holds the one it
  // asks for, an end of data's the one it ends.
  TransactionTracker transactions_;
  // A BDAT line waiting for the replies that say which transaction its chunk belongs to, and
  // the rewrites made to it (see handle_bdat).
  std::optional<std::string> held_bdat_;
  RewriteCounts held_bdat_rewrites_;
  // The server refused a chunk (BDAT without LAST) of an open transaction, or a NOOP between
  // its chunks, and has not since accepted an RSET, MAIL, EHLO or HELO: Exim may be in its state
  // where it answers the next BDAT line without reading its chunk, Postfix reads it; no BDAT is
  // framed until that is known; mailtap's own refusal of a chunk past the server's SIZE does the
  // same. Why, as the 421 at the next BDAT says it; empty when nothing was refused.
  std::string_view bdat_chunk_refused_;
  // The Pending::sequence of the last command sent before that refusal: only the acceptance of
  // a command sent after it ends it (end_chunk_refusal). mailtap refuses a chunk when it reads
  // it, so the replies to a MAIL or RSET pipelined ahead of it still come after.
  std::uint64_t bdat_chunk_refused_after_ = 0;
  std::uint64_t commands_sent_ = 0;  // the last Pending::sequence given
  // The last reply the server gave answered a BDAT with 4yz/5yz: a reply after it that answers
  // no command may answer the chunk's text, read as commands (refuse_out_of_step_reply).
  bool refused_chunk_answered_ = false;

  // --auth-user: mailtap's own AUTH, and the EHLO/HELO reply held back until it ends.
  std::optional<UpstreamLogin> login_;
  LoginState login_state_ = LoginState::off;
  bool starttls_offered_in_plain_ = false;
  AuthRedactor own_redactor_;  // renders mailtap's own AUTH lines for the record
  std::optional<Reply> held_reply_;
  Verb held_command_ = Verb::other;  // EHLO or HELO
  std::string login_failure_;
  bool login_failure_pending_ = false;  // the next MAIL gets login_failure_
  std::string login_mechanism_;
  // --assist-auth
  std::optional<AuthAssistant> assistant_;
  bool assist_token_refused_ = false;
  // The client's AUTH XOAUTH2/OAUTHBEARER USER line (no secret in it) while its token is
  // fetched: recorded with mailtap's refusal if none comes.
  std::string awaiting_token_auth_line_;
  TokenNeed token_need_ = TokenNeed::none;

  LineEnd line_end_ = LineEnd::none;  // how the client ended the line last framed

  Mode mode_ = Mode::command;
  ClientTlsState client_tls_ = ClientTlsState::unavailable;
  // The client's TLS came up by STARTTLS: what it said before no longer counts, and it must
  // greet again (RFC 3207 §4.2) before anything but NOOP, RSET, QUIT or HELP.
  bool greet_again_ = false;
  // The server's last acceptance of a client's EHLO or HELO: a server that refuses the client's
  // greeting after its STARTTLS (which mailtap answered, so the server has been greeted
  // already) is taken at this word (see greet_again_from_earlier_reply).
  struct AcceptedGreeting {
    Verb command = Verb::ehlo;
    Reply reply;
  };
  std::optional<AcceptedGreeting> accepted_greeting_;
  bool paused_ = false;  // waiting for the reply that decides how to read what follows
  // The client's first octets were looked at: a TLS handshake on a plain-text port, or not.
  bool client_start_checked_ = false;
  bool client_eof_ = false;
  bool quit_sent_ = false;
  std::uint64_t client_octets_discarded_ = 0;  // see client_octets_discarded()
  // A BDAT line was refused without a size to trust: nothing more of the client is read, and
  // the session ends once the replies owed ahead of that line are relayed.
  bool client_unreadable_ = false;
  bool distrust_until_verb_ = false;  // an AUTH failed; no line with a verb has come since
  // The line being handled has no verb and follows a refused AUTH (see handle_command): it may
  // be a SASL response. Set before any path can answer, relay or record the line.
  bool line_distrusted_ = false;
  // What the client knows of CHUNKING, which only the reply to its EHLO tells: BDAT is relayed
  // when that reply advertised it; otherwise its refusal says why (see bdat_refusal).
  enum class Chunking : std::uint8_t {
    ungreeted,
    after_helo,
    not_advertised,
    advertised,
    after_starttls
  };
  Chunking chunking_ = Chunking::ungreeted;
  // SIZE in the EHLO reply in force (Capabilities::size; 0: none): no BDAT goes upstream that
  // takes a transaction past it, less a margin (refuse_bdat_over_size).
  std::uint64_t upstream_size_ = 0;
  // That reply's SIZE is one mailtap cannot read (Capabilities::size_unreadable): no chunk goes
  // upstream, as one might cross a limit it does not know.
  bool upstream_size_unreadable_ = false;
  bool abandon_upstream_ = false;
  // Why recording failed (recording_failed): set, no end of data goes upstream any more.
  std::optional<std::string> recording_failure_;
  std::uint64_t accepted_recorded_ = 0;  // see recording_failed
  // Messages whose final reply accepted them (2yz), and the last such reply (Message::final_reply).
  std::uint64_t messages_accepted_ = 0;
  std::string last_accepted_reply_;
  std::string unrecorded_end_reply_;  // see unrecorded_end_reply()
  std::string
      telnet_answered_;         // telnet refusals written, not yet recorded (record_telnet_answers)
  bool echo_withheld_ = false;  // IAC WILL ECHO sent, IAC WONT ECHO not yet (withhold_echo)
  // What was being relayed when the upstream was abandoned (for the record of what was not
  // sent): a body's kind (data, bdat_chunk) and transaction, or command.
  EventKind abandoned_kind_ = EventKind::command;
  std::uint64_t abandoned_transaction_ = 0;
  std::deque<Pending> pending_;
  std::optional<Ending> ending_;

  // DATA framing state. The DATA line's own ending says which line endings are the client's:
  // only those can end the message (see docs/dialogue.md, "Message bodies").
  LineEnd data_own_end_ = LineEnd::crlf;
  LineEnd data_prev_end_ = LineEnd::crlf;  // how the previous body line (or DATA) ended
  std::size_t data_line_len_ = 0;          // octets of the current body line forwarded so far
  bool data_dot_held_ = false;  // a lone "." began the line; its line ending decides what it is
  std::uint64_t data_body_offset_ = 0;  // octets of the body as the server stores it, so far
  RewriteCounts data_rewrites_;         // body rewrites not made by the normaliser
  bool long_line_noted_ = false;
  // telnet's IAC DO TM in the DATA body relayed so far (answer_timing_marks)
  TimingMarkScanner body_timing_marks_;
  std::string data_event_;  // DATA/BDAT bytes forwarded, not yet recorded as an event
  std::string data_cut_;    // the same past --max-body, not yet handed on (UnrecordedBody)
  EventKind data_event_kind_ = EventKind::data;
  std::shared_ptr<Transaction> body_transaction_;  // whose body data_event_ holds
  // BDAT chunk state
  std::uint64_t bdat_remaining_ = 0;
  bool bdat_discard_ = false;
  bool bdat_last_ = false;      // the chunk being read ends the message
  bool bdat_withheld_ = false;  // ... and its rest goes nowhere: recording failed (see there)

  std::uint64_t bytes_to_upstream_ = 0;
  std::uint64_t bytes_from_upstream_ = 0;
  std::uint64_t upstream_octets_in_to_client_ = 0;  // of the server's replies, in to_client_
  std::uint64_t upstream_octets_taken_ = 0;         // see upstream_octets_taken()
  std::uint64_t bytes_to_client_ = 0;
  std::uint64_t data_ends_sent_ = 0;
  std::uint64_t client_progress_ = 0;
  std::uint64_t upstream_progress_ = 0;
  std::uint64_t upstream_replies_ = 0;
  std::uint64_t upstream_taken_ = 0;  // octets take_to_upstream() gave in all
  std::uint64_t upstream_answered_through_ = 0;
  bool certificate_refusal_explained_ = false;  // explain_certificate_refusal added its line
  std::size_t octets_since_progress_ = 0;       // of a body line or chunk not yet complete
  UpstreamOutput to_upstream_;
  std::string to_client_;
  std::size_t client_output_unwritten_ = 0;  // see set_client_output_unwritten
  bool client_input_held_ = false;           // process_client stopped for the client's output
};

}  // namespace mailtap::smtp
