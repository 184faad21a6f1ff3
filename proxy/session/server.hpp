// Accepts clients on the listening socket, runs each session on its own strand, and shuts
// down gracefully: stop accepting, let sessions finish within the grace period, then end them
// with a 421.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "proxy/net/descriptor_reserve.hpp"
#include "proxy/net/lingering_close.hpp"
#include "proxy/net/peer_owner.hpp"
#include "proxy/session/session.hpp"

namespace mailtap {

class Server {
 public:
  // Listens on `io`; each session runs on the executor `session_executor` returns.
  Server(asio::io_context& io, SessionContext& ctx,
         std::function<asio::any_io_executor()> session_executor);
  // Binds and listens; false with `error` set on failure.
  bool listen(const asio::ip::tcp::endpoint& at, std::string& error);
  // After listen() failed: whether trying again cannot help (the address may not be taken by
  // this user: a privileged port), unlike a port in use, which its holder may yet free (an
  // instance stopping). The proxy exits 2 for the one, 1 for the other.
  bool listen_refused_for_good() const { return listen_refused_for_good_; }
  asio::awaitable<void> accept_loop();
  // First call: stop accepting and give sessions `grace` to finish. Second call: end them now.
  // A call after the grace period is over ends the waits for ends of data's replies too.
  void begin_shutdown(std::chrono::steady_clock::duration grace);
  // Called once no session is left after shutdown began.
  void on_drained(std::function<void()> fn) { on_drained_ = std::move(fn); }

 private:
  // The next client waiting, accepted with a descriptor in reserve for its upstream socket
  // (null when none was free); no socket, but would_block, when none waits after all.
  struct Accepted {
    std::error_code ec;
    asio::ip::tcp::socket socket;
    std::unique_ptr<net::DescriptorReserve> upstream_reserve;
  };
  Accepted accept_with_reserve();
  asio::awaitable<void> accept_failed(const std::error_code& ec);
  asio::awaitable<void> end_reserve_linger();
  bool turn_away_through_reserve(const std::error_code& ec);
  void accept_works_again();
  // Recording failed and --record-failure is stop: new clients are refused, unrecorded.
  bool refusing_for_recording() const;
  // Whether the client accepted next would be turned away without a session or a record (the
  // sessions and the recorded refusals are full, or recording failed).
  bool next_client_refused_unrecorded();
  std::string other_local_user(const asio::ip::tcp::socket& socket);
  void start_session(asio::ip::tcp::socket socket,
                     std::unique_ptr<net::DescriptorReserve> upstream_reserve,
                     std::string not_served);
  std::string too_many_sessions() const;  // the refusal's text, after "421 "
  void refuse_unrecorded(asio::ip::tcp::socket socket);
  // A 421 with `text` ("4.3.2 mailtap: ..."), in lines of at most 512 octets, then the close.
  void say_and_close(asio::ip::tcp::socket socket, std::string_view text);
  void session_ended(storage::SessionKey id);
  void end_all_sessions(bool insist = false);
  void stop_token_command();

  asio::io_context& io_;
  SessionContext& ctx_;
  std::function<asio::any_io_executor()> session_executor_;
  asio::ip::tcp::acceptor acceptor_;
  bool listen_refused_for_good_ = false;
  // Since accept last worked (the accept loop's alone): logged once when it begins, counted.
  struct AcceptFailures {
    bool failing = false;
    unsigned turned_away = 0;  // told 421 through the reserve, unrecorded
    unsigned retries = 0;      // accept failed and even the reserve could not take the client
  };
  AcceptFailures accept_failures_;
  net::DescriptorReserve descriptor_reserve_;
  net::PeerOwnerLookup peer_owners_;  // the accept loop's: who each client is
  net::UserNameCache user_names_;     // the names refusals give, each looked up once
  // The client turned away through the reserve whose lingering close holds its descriptor
  // (on the acceptor's thread, as the reserve is used).
  std::weak_ptr<asio::ip::tcp::socket> reserve_lingering_;
  asio::steady_timer grace_timer_;
  // The lingering closes of clients refused without a session (unrecorded): at most
  // --max-sessions wait for their client at once, none once shutting down.
  net::LingerGroup refusals_closing_;
  std::mutex mutex_;
  struct Entry {
    std::weak_ptr<Session> session;
    bool refusal = false;  // over --max-sessions: answered with a 421, not relayed
  };
  std::map<storage::SessionKey, Entry> sessions_;
  unsigned relaying_ = 0;
  unsigned refusing_ = 0;
  unsigned unrecorded_refusals_ = 0;        // told 421 at once, not recorded, since last logged
  unsigned unrecorded_local_refusals_ = 0;  // the same, for local users not served
  bool over_limit_reported_ = false;
  std::atomic<storage::SessionKey> next_key_{1};
  bool shutting_down_ = false;
  bool grace_over_ = false;  // the sessions were told to end
  bool drained_ = false;
  bool recording_failure_reported_ = false;
  std::function<void()> on_drained_;
};

}  // namespace mailtap
