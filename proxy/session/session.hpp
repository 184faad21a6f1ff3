// One client connection: opens the upstream link, then relays through the Dialogue with four
// coroutines on the session's strand (a reader and a writer per side) and a watchdog for
// timeouts. Recording is handed to the storage thread; the relay only waits on it when the
// queue is full (backpressure).
#pragma once

#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ssl/context.hpp>
#include <asio/steady_timer.hpp>
#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "proxy/net/async_signal.hpp"
#include "proxy/net/deadline.hpp"
#include "proxy/net/delivery_wait.hpp"
#include "proxy/net/link.hpp"
#include "proxy/net/local_certificate.hpp"
#include "proxy/net/upstream_connector.hpp"
#include "proxy/session/proxy_config.hpp"
#include "proxy/session/session_record.hpp"
#include "proxy/session/transcript.hpp"
#include "proxy/smtp/dialogue.hpp"
#include "proxy/smtp/upstream_output.hpp"
#include "storage/records.hpp"

namespace mailtap {
namespace storage {
class Recorder;
}
namespace secrets {
class TokenProvider;
}

struct SessionContext {
  const ProxyConfig& config;
  asio::ssl::context& tls;
  storage::Recorder* recorder = nullptr;  // null with --no-record
  net::UpstreamTarget target;
  std::string listen_label;
  std::optional<std::array<std::uint8_t, 32>> fingerprint_key;
  secrets::TokenProvider* tokens = nullptr;  // --oauth2-token-cmd, shared by the sessions
  SSL_CTX* local_tls = nullptr;              // --local-tls: mailtap's certificate and key
  // --local-tls: the certificate mailtap presents, named (or its issuer) when a client refuses it.
  net::LocalCertificate local_certificate;
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(asio::ip::tcp::socket client, SessionContext& ctx, storage::SessionKey id);
  asio::awaitable<void> run();
  // The descriptor kept for the upstream socket from the moment the client was accepted (see
  // descriptor_reserve.hpp), before run().
  void hold_upstream_descriptor(std::unique_ptr<net::DescriptorReserve> reserve) {
    upstream_->hold_socket_reserve(std::move(reserve));
  }
  // Records the client and answers it with "421 <reply_text>" without opening the upstream
  // (e.g. too many sessions); `log` says whether this refusal is worth a log line.
  asio::awaitable<void> run_refused(std::string reply_text, bool log);
  // Ends the session soon with a 421 (grace period over); safe from any thread. A session
  // awaiting the reply to an end of data it sent waits for that reply first, unless `insist`
  // (the user signalled again after the grace period).
  void shutdown_now(bool insist = false);
  storage::SessionKey id() const { return id_; }
  asio::any_io_executor executor() { return client_.socket().get_executor(); }

 private:
  smtp::DialogueOptions dialogue_options() const;
  asio::awaitable<void> relay();
  asio::awaitable<void> client_reader();
  asio::awaitable<void> upstream_reader();
  asio::awaitable<void> client_writer();
  asio::awaitable<void> upstream_writer();
  asio::awaitable<void> write_to_client(asio::const_buffer bytes);
  // `relayed`: the bytes are the client's (an UpstreamOutput piece's relayed()).
  asio::awaitable<void> write_to_upstream(asio::const_buffer bytes, bool relayed = false);
  // `why`: for the record's note, when it is neither an abandoned upstream nor a failed write.
  void drop_upstream_output(std::string_view why = {});
  // After an ending the client or the server chose, output still queued for the server gets
  // --timeout-command to go; the record closes (and the client's last reply goes) after it.
  void start_upstream_drain();
  void stop_upstream_drain(std::string_view why);  // drops what is left, as not sent
  asio::awaitable<void> end_upstream_drain();      // all written, or dropped
  asio::awaitable<void> upstream_write_failed(std::error_code ec);
  asio::awaitable<void> writers_then_close();
  asio::awaitable<void> close_client();
  // What became of the last replies and of what the client sent after them, in the record once
  // its end was committed (storage::SessionAfterEnd), and in the log.
  void record_after_end(const net::Lingered& lingered);
  void add_after_end_note(std::string note, std::optional<storage::Outcome> outcome = std::nullopt,
                          std::string reason = {});
  asio::awaitable<void> watchdog();
  void prepare_dialogue_input();
  // --record-failure stop, and recording failed: tells the dialogue (true), which ends the
  // session with its 421 once it is between commands (Dialogue::recording_failed).
  bool tell_recording_failure();
  // `reading_upstream`: called by the upstream reader, which does not wait for the commit of a
  // message a reply it read acknowledges (await_message_commit), but reads on.
  asio::awaitable<void> after_input(bool reading_upstream = false);
  // The rest of after_input once its records are committed: the client's replies they held go.
  // `accepted`: the messages the server accepted that the commit records.
  asio::awaitable<void> input_committed(bool durable, bool ends_session,
                                        std::uint64_t accepted = 0);
  // input_committed once `queued` is committed, apart from the reader that queued it.
  static asio::awaitable<void> await_message_commit(std::shared_ptr<Session> self,
                                                    storage::Recorder::Queued queued,
                                                    std::uint64_t accepted);
  // A commit holds the client's replies and the record is not closed (nor waiting for the
  // server to take what is queued for it): a dialogue that ends meanwhile closes its record
  // after that commit, or once recording did not keep up for the client's limit
  // (time_out_recording), so that its ending can say which.
  bool close_waits_for_commit() const;
  void release_client_held();  // held client bytes join the output and go
  // Tells the dialogue how much client output is unwritten (its bound on client lines read),
  // and wakes whoever can go on once that has gone down.
  void note_client_output();
  asio::awaitable<void> resume_client_input();
  void write_client_now();
  void write_upstream_now();
  smtp::Event upstream_end_event(const std::error_code& ec) const;
  void upstream_ended(const std::error_code& ec);
  struct Deadlines {
    // For its reply, or (upstream_taking) for taking what the reply is owed for.
    std::optional<std::chrono::steady_clock::time_point> upstream;
    bool upstream_taking = false;
    // For taking what waits for it while mailtap holds the client back (upstream_hold_).
    std::optional<std::chrono::steady_clock::time_point> upstream_holding;
    std::optional<std::chrono::steady_clock::time_point> client;  // for its next line
    std::chrono::steady_clock::time_point client_turn;            // when the client's began
    // For taking what mailtap writes to it (client_took_at_).
    std::optional<std::chrono::steady_clock::time_point> client_reading;
    // For the commit the client's replies are held for (commit_hold_began_), whatever the
    // dialogue awaits meanwhile, and after its end as long as the record is not closed.
    std::optional<std::chrono::steady_clock::time_point> recording;
  };
  Deadlines current_deadlines() const;
  // Until the dialogue ends: every deadline; then, until the session closes, the client's for
  // reading its last replies.
  asio::awaitable<void> watch_dialogue();
  asio::awaitable<void> watch_last_replies();
  bool time_out_if_due(const Deadlines& deadlines, std::chrono::steady_clock::time_point now);
  std::chrono::steady_clock::time_point next_look(const Deadlines& deadlines,
                                                  std::chrono::steady_clock::time_point now) const;
  // While a write to the client waits: whether its socket took more since the last look.
  void look_at_client_reading();
  void log_client_not_reading();
  // The client did not take what mailtap wrote to it in time: during the dialogue it ends
  // (time_out_client_reading), after it only the connection does; either way it is reset.
  void time_out_client_reading();
  void drop_client();
  std::string client_reading_limit() const;
  // A deadline passed: the dialogue ends with a 421 that says whose turn it was.
  void end_for_shutdown();
  void time_out_upstream();
  void time_out_upstream_taking(const std::string& limit);
  void time_out_upstream_holding();
  // Of the octets queued for the server, those that no longer wait in mailtap (DeliveryWait).
  std::uint64_t upstream_left() const;
  // While the server may not have all a reply is owed for: where that is now.
  void look_at_upstream_delivery();
  // A wait began: the watchdog looks within DeliveryWait::look_interval, not at its next second.
  void look_again_soon(std::chrono::steady_clock::time_point now);
  void note_upstream_hold();
  bool awaiting_end_of_data_at_shutdown();
  void time_out_client(std::chrono::steady_clock::time_point client_turn);
  // Recording did not keep up for `limit`: the 421 that says so goes now, in place of the
  // replies held for the commit, and the session ends (Dialogue::end_instead once it had).
  void time_out_recording(const std::string& limit);
  // Moves what the dialogue recorded into events_, unrecorded_bodies_ and messages_, behind
  // what is there.
  void take_dialogue_records();
  asio::awaitable<void> flush_records();
  // flush_records() up to the queueing: the commit is the returned Queued's to await.
  asio::awaitable<storage::Recorder::Queued> queue_records();
  void finish_transcript();  // --transcript: the session ended
  asio::awaitable<void> refuse(const net::UpstreamSetup& setup, bool log = true);
  void log_refusal(const net::UpstreamSetup& setup, const std::string& reason) const;
  void record_opened();
  void close_record(storage::Outcome outcome, std::string reason);
  // After the session's row is written: "" when its database id is its number here, else
  // ", recorded as session N" (another process recording into the same file took that id);
  // ", not recorded (recording failed)" when its end could not be recorded.
  std::string recorded_as() const;
  void note_end_committed();  // the closing record's flush is done: committed, or failed
  void note_client_progress();
  void note_upstream_progress();
  void note_login_outcome();
  // --tls none, and the server offers STARTTLS: said once on the session's line.
  void note_starttls_offered();
  void fetch_token_if_needed();
  asio::awaitable<void> fetch_token(bool fresh);
  void start_token_prefetch();
  asio::awaitable<void> prefetch_token();
  // --local-tls: the server-side handshake with the client; `description` gets "TLSv1.3
  // <cipher>" or why it failed.
  asio::awaitable<std::error_code> client_handshake(std::string& description);
  asio::awaitable<bool> accept_implicit_tls();  // false: the session is over (and recorded)
  asio::awaitable<void> client_starttls();

  SessionContext& ctx_;
  storage::SessionKey id_;
  net::Link client_;
  std::string client_tls_version_;  // "TLSv1.3" once the client's side is TLS (--local-tls)
  bool client_handshaking_ = false;
  std::shared_ptr<net::Link> upstream_;
  std::string client_label_;
  std::chrono::steady_clock::time_point started_steady_;
  storage::Clock::time_point started_;

  std::vector<smtp::RecordedEvent> events_;
  std::vector<smtp::UnrecordedBody> unrecorded_bodies_;
  std::vector<smtp::Message> messages_;
  SessionRecord record_;
  LiveTranscript transcript_;  // --transcript's state: a message's open line
  std::optional<smtp::Dialogue> dialogue_;
  std::string tls_summary_;
  bool upstream_sni_sent_ = false;  // the set-up's (as recorded): for the words of an alert

  // Client output held back until the records that it acknowledges (a finished message, the
  // end of the session) are committed; released in order once no such commit is pending.
  std::string client_held_;
  std::uint64_t client_held_upstream_octets_ = 0;  // the server's, in client_held_
  int durable_flushes_ = 0;
  // When durable_flushes_ last became non-zero: the client's replies wait from then.
  std::chrono::steady_clock::time_point commit_hold_began_{};
  // Inputs waiting in after_input for the recorder (a full queue, or a commit): meanwhile the
  // client is not read, and a timeout is recording's, not the client's (time_out_client).
  int recording_waits_ = 0;
  // Recording did not keep up within the client's limit: the 421 that says so, and what
  // follows, are held for no commit (time_out_client).
  bool client_output_unheld_ = false;
  bool end_committed_ = false;   // the session's closing record is on disk (or not recorded)
  bool end_unrecorded_ = false;  // ... not recorded: recording had failed by then
  std::string recording_failure_reason_;  // as told to the dialogue (tell_recording_failure)
  // Messages the server accepted in this session whose records were committed.
  std::uint64_t accepted_committed_ = 0;
  std::string client_out_;
  std::size_t client_writing_ = 0;  // octets of client output the writer has in flight
  // While a write to the client waits for its socket to take it: when it began, or when the
  // watchdog last saw the socket take more of it (Link::socket_octets, then
  // client_octets_seen_). The client's clock for reading runs from there (docs/dialogue.md,
  // "Timeouts").
  std::optional<std::chrono::steady_clock::time_point> client_took_at_;
  std::uint64_t client_octets_seen_ = 0;
  // When a write to the client last ended: a turn of the client's begins no earlier.
  std::chrono::steady_clock::time_point client_output_taken_;
  // The client was dropped for not reading once the dialogue had ended: what the log line that
  // ends the session adds, and the record's note after its end says (record_after_end).
  std::string client_dropped_note_;
  // mailtap reset the client's connection because it did not read its replies (drop_client, the
  // setup 421's limit), not for a failed handshake or a shutdown: what the discarded octets'
  // note may say (discarded_note).
  bool client_reset_unread_ = false;
  bool client_not_reading_logged_ = false;  // see log_client_not_reading
  // The replies written to the client once the closing record was committed (the 221, a 421),
  // as reply_summaries says them: what the record names if they did not reach the client.
  std::string last_replies_;
  // The outcome the record took after its end (a `quit` whose 221 the client did not take),
  // for the log line that ends the session.
  std::optional<smtp::Ending> ending_after_end_;
  bool token_fetch_running_ = false;
  std::optional<std::uint64_t> token_generation_;  // of the token last handed to the dialogue
  // What the run started with the session brought, until the dialogue asks for a token.
  struct PrefetchedToken {
    std::optional<smtp::Secret> token;
    std::uint64_t generation = 0;
    bool fresh = false;  // the command ran for this session (not a cached token)
    std::string error;   // without a token: why
  };
  std::optional<PrefetchedToken> prefetched_token_;
  bool login_logged_ = false;
  bool starttls_offer_logged_ = false;
  // Upstream output not yet handed to a write: the writer takes it a piece at a time, so what
  // is here when the upstream is abandoned is exactly what the server will never get, with
  // what the link took and did not send (upstream_handed_ says whose octets those were).
  smtp::UpstreamOutput upstream_out_;
  smtp::HandedTail upstream_handed_;
  // The closing record took the dialogue's byte counts: no drop may change them after that.
  bool byte_counts_recorded_ = false;
  // The dialogue ended with output still queued for the server: the record waits for it to go
  // (or be dropped) and counts what did; the deadline is --timeout-command from the ending.
  bool draining_upstream_ = false;
  std::optional<net::Deadline> upstream_drain_deadline_;
  // A writer parked on its wake has nothing in flight: its output may go out in place.
  bool client_writer_parked_ = false;
  bool upstream_writer_parked_ = false;
  bool client_write_failed_ = false;
  bool upstream_write_failed_ = false;
  net::AsyncSignal client_writer_wake_;
  net::AsyncSignal upstream_writer_wake_;
  net::AsyncSignal client_reader_wake_;
  net::AsyncSignal upstream_reader_wake_;
  net::AsyncSignal upstream_reader_exit_;
  net::AsyncSignal client_reader_exit_;
  asio::steady_timer watchdog_timer_;
  bool client_eof_ = false;
  bool upstream_eof_ = false;
  bool upstream_reader_done_ = false;
  bool client_reader_done_ = false;
  bool closing_ = false;
  std::atomic<bool> shutdown_requested_{false};
  std::atomic<bool> shutdown_insisted_{false};  // not even an end of data's reply is awaited
  bool end_of_data_wait_logged_ = false;
  std::chrono::steady_clock::time_point last_client_activity_;
  std::chrono::steady_clock::time_point last_upstream_read_;  // the server last said something
  // When mailtap last read the upstream again after it had stopped, as the client was not
  // taking more than 1 MiB of its replies: a reply's clock runs from no earlier.
  std::chrono::steady_clock::time_point upstream_read_resumed_;
  // When the client last completed a line (or 64 KiB of body): partial lines do not count, so
  // a client trickling bytes cannot hold a session open (see docs/dialogue.md, "Timeouts").
  std::chrono::steady_clock::time_point last_client_progress_;
  std::uint64_t client_progress_seen_ = 0;
  // The upstream's turn begins when it comes to owe a reply, or completes a reply line (see
  // note_upstream_progress; its own trickled bytes do not move it), for all that was queued for
  // it by then. The reply's clock starts once the server has all that: until then it is timed
  // on taking it (docs/dialogue.md, "Timeouts").
  net::DeliveryWait upstream_delivery_;
  std::uint64_t upstream_progress_seen_ = 0;
  std::uint64_t upstream_queued_ = 0;  // octets the dialogue has handed to upstream_out_ in all
  // While mailtap holds the client back (more than high_water waits for the server): the
  // server's progress taking what waits, its clock meanwhile (note_upstream_hold). When the
  // hold last ended: the client's turn begins no earlier.
  net::DeliveryWait upstream_hold_;
  std::chrono::steady_clock::time_point upstream_hold_ended_;
};

}  // namespace mailtap
