#include "proxy/session/server.hpp"

#include <unistd.h>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>

#include <system_error>
#include <utility>

#include "proxy/common/log.hpp"
#include "proxy/net/endpoint.hpp"
#include "proxy/net/local_user_policy.hpp"
#include "proxy/secrets/token_provider.hpp"
#include "proxy/smtp/reply_lines.hpp"
#include "storage/recorder.hpp"

namespace mailtap {

namespace {
constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);

asio::awaitable<void> say_then_linger(net::LingerGroup& group, net::LingerGroup::Place place,
                                      std::shared_ptr<asio::ip::tcp::socket> socket,
                                      std::string line, net::CloseSocket close = {}) {
  std::error_code ec;
  socket->non_blocking(true, ec);
  if (!ec) socket->write_some(asio::buffer(line), ec);
  co_await group.close(std::move(place), socket, net::lingering, std::move(close));
}

}  // namespace

// A reply to a client that has only just connected and gets no session, then the close: a
// lingering one, so that a client that spoke first still reads the reply. One write that never
// waits: nothing was written to the socket before, so it takes the line at once, and a flood
// of such clients holds no descriptor but the LingerGroup's (a line it did not take, or a
// failed write, goes no further: the close follows all the same). The place in the group is
// taken here, on the acceptor's thread, before the next client is accepted.
void Server::say_and_close(asio::ip::tcp::socket socket, std::string_view text) {
  std::string line = smtp::reply_lines("421", text);
  auto shared = std::make_shared<asio::ip::tcp::socket>(std::move(socket));
  net::LingerGroup::Place place = refusals_closing_.admit(shared);
  auto ex = shared->get_executor();
  asio::co_spawn(ex, say_then_linger(refusals_closing_, std::move(place), shared, std::move(line)),
                 asio::detached);
}

Server::Server(asio::io_context& io, SessionContext& ctx,
               std::function<asio::any_io_executor()> session_executor)
    : io_(io),
      ctx_(ctx),
      session_executor_(std::move(session_executor)),
      acceptor_(io),
      grace_timer_(io),
      refusals_closing_(ctx.config.max_sessions) {}

bool Server::listen(const asio::ip::tcp::endpoint& at, std::string& error) {
  if (const std::error_code ec = net::open_acceptor(acceptor_, at)) {
    error = "cannot listen on " + ctx_.listen_label + ": " + ec.message();
    // What to do, as the web page says it (another mailtap, or another program, holds it).
    if (ec == asio::error::address_in_use) error += " (choose another ADDR:PORT)";
    // Below ip_unprivileged_port_start (1024) the kernel wants root or CAP_NET_BIND_SERVICE.
    // No retry mends it (the systemd unit's CapabilityBoundingSet= is empty).
    listen_refused_for_good_ = ec == asio::error::access_denied;
    if (listen_refused_for_good_ && at.port() < 1024)
      error += " (a port below 1024 needs root or CAP_NET_BIND_SERVICE: choose one from 1024 up)";
    return false;
  }
  // Port 0 took any free port: the listening line and each session's record name the one it got.
  std::error_code unknown;
  const asio::ip::tcp::endpoint bound = acceptor_.local_endpoint(unknown);
  if (!unknown) ctx_.listen_label = net::endpoint_label(bound);
  // Its netlink socket taken now, while descriptors are plenty, and reused for every client.
  if (!ctx_.config.local_users.any) {
    peer_owners_.prepare();
    user_names_(ctx_.config.local_users.own);  // looked up now, not as a client waits
  }
  // accept_with_reserve() accepts once a client waits, and must not block if it is gone.
  std::error_code ec;
  acceptor_.non_blocking(true, ec);
  if (ec) {
    error = "cannot listen on " + ctx_.listen_label + ": " + ec.message();
    return false;
  }
  return true;
}

asio::awaitable<void> Server::accept_loop() {
  for (;;) {
    auto [waited] = co_await acceptor_.async_wait(asio::ip::tcp::acceptor::wait_read, use_tuple);
    if (waited == asio::error::operation_aborted || !acceptor_.is_open()) break;
    Accepted next = accept_with_reserve();
    if (next.ec == asio::error::would_block || next.ec == asio::error::try_again) continue;
    if (next.ec == asio::error::in_progress) {
      // Sessions resolving their server's name need the free descriptors: the client waits in
      // the listen backlog until they are done.
      asio::steady_timer pause(io_, std::chrono::milliseconds(100));
      co_await pause.async_wait(use_tuple);
      continue;
    }
    if (next.ec) {
      co_await accept_failed(next.ec);
      continue;
    }
    if (accept_failures_.failing) accept_works_again();
    if (refusing_for_recording()) {
      refuse_unrecorded(std::move(next.socket));
    } else {
      std::string not_served = other_local_user(next.socket);
      start_session(std::move(next.socket), std::move(next.upstream_reserve),
                    std::move(not_served));
    }
    // A next client refused without a session only once its refusal could linger: one closed
    // without that wait resets a client whose line comes after the close, and the reset can
    // cost it the 421. Clients wait in the listen backlog meanwhile, for 2 s (the lingering
    // close's bound) at most, and no longer than the sessions are full: a client that would
    // get a session does not wait for refused ones (session_ended has the wait look again).
    co_await refusals_closing_.wait_for_room([this] { return next_client_refused_unrecorded(); });
  }
}

// A session needs two descriptors, its client's and its upstream socket's, and the second only
// once it connects: taking clients while descriptors last would leave none for the upstream
// socket of any of them. So each client is accepted with a descriptor in reserve for that
// socket, both under descriptors_lock(): a session giving its reserve up for its socket meanwhile
// has the descriptor to itself. Out of descriptors, the accept fails (accept_failed) or the
// reserve is not had, and the session says so as it connects (recorded, as today).
Server::Accepted Server::accept_with_reserve() {
  const auto lock = net::descriptors_lock();
  // The session's thread: everything of one session runs there, so it needs no strand.
  const asio::any_io_executor thread = session_executor_();
  Accepted next{{}, asio::ip::tcp::socket(thread), nullptr};
  if (!net::room_beside_resolves()) {
    next.ec = asio::error::in_progress;
    return next;
  }
  next.socket = acceptor_.accept(thread, next.ec);
  if (next.ec) return next;
  // telnet's "send synch" sends its IAC as TCP urgent data, which the kernel takes out of the
  // stream unless told otherwise: the DM (0xF2) left alone would be read as text, and a server
  // ends the session at it. Inline, "IAC DM" is a telnet sequence like any other (removed, and
  // named in the rewrite note). Failing that, the session goes on as before.
  std::error_code inline_failed;
  next.socket.set_option(asio::socket_base::out_of_band_inline(true), inline_failed);
  next.upstream_reserve = std::make_unique<net::DescriptorReserve>();
  if (!next.upstream_reserve->held()) next.upstream_reserve.reset();
  return next;
}

bool Server::refusing_for_recording() const {
  return ctx_.recorder && ctx_.recorder->failed() &&
         ctx_.config.record_failure == RecordFailurePolicy::stop;
}

bool Server::next_client_refused_unrecorded() {
  if (refusing_for_recording()) return true;
  std::lock_guard lock(mutex_);
  return relaying_ >= ctx_.config.max_sessions && refusing_ >= ctx_.config.max_sessions;
}

// Out of descriptors, or another failure of accept: one log line when it begins, not one per
// wake-up (the listener wakes at once for a client still queued). A client that cannot be
// accepted for want of descriptors is taken through the reserve and told so; when even that
// fails, or no client waits, the loop breathes before trying again. Out of descriptors every
// accept fails, the one right after a turn-away too, with no client queued: the reserve's
// client is left to its lingering close until a next client does wait (cut at once, that
// close reset a client whose EHLO came a moment after its 421, at the cost of the 421).
asio::awaitable<void> Server::accept_failed(const std::error_code& ec) {
  if (!accept_failures_.failing) {
    accept_failures_.failing = true;
    log::error("accept failed: " + ec.message() +
               (net::out_of_descriptors(ec)
                    ? ": turning new clients away with 421 until descriptors free up; raise the "
                      "open-file limit (ulimit -n, LimitNOFILE=) or lower --max-sessions"
                    : ": retrying"));
  }
  if (net::out_of_descriptors(ec) && net::client_waiting(acceptor_.native_handle())) {
    co_await end_reserve_linger();
    if (turn_away_through_reserve(ec)) {
      ++accept_failures_.turned_away;
      co_return;
    }
  }
  ++accept_failures_.retries;
  asio::steady_timer pause(io_, std::chrono::milliseconds(100));
  co_await pause.async_wait(use_tuple);
}

// The client last turned away through the reserve still lingers in the reserve's place: the
// next one needs it now. Its close runs on this thread, so the cancel takes effect as soon as
// this coroutine lets it run: it reads what came, closes and gives the reserve back.
asio::awaitable<void> Server::end_reserve_linger() {
  for (auto socket = reserve_lingering_.lock(); socket && socket->is_open();
       socket = reserve_lingering_.lock()) {
    std::error_code ignored;
    socket->cancel(ignored);
    co_await asio::post(io_, asio::use_awaitable);
  }
}

// One client waiting in the listen queue, accepted in the reserve's place and told why with
// the lingering close every refusal gets (a client that spoke first still reads its 421),
// on this thread. The reserve takes the client's descriptor back as that close frees it, in
// one give_back: the sessions' threads, the recorder's body files and the token command's pipe
// open under the same lock, so none of them takes the slot in between (and keeps it: the next
// client would then be told nothing, left in the listen queue).
bool Server::turn_away_through_reserve(const std::error_code& ec) {
  const int fd = descriptor_reserve_.accept_one(acceptor_.native_handle());
  if (fd < 0) return false;
  // The socket is the listener's family ([::1] is IPv6); an endpoint read in vain would say
  // IPv4, so its error is checked before the assign, which would overwrite it.
  std::error_code failed;
  const asio::ip::tcp::endpoint listening = acceptor_.local_endpoint(failed);
  auto socket = std::make_shared<asio::ip::tcp::socket>(io_);
  if (!failed) socket->assign(listening.protocol(), fd, failed);
  if (failed) {
    descriptor_reserve_.give_back([fd] { ::close(fd); });
    return false;
  }
  reserve_lingering_ = socket;
  net::LingerGroup::Place place = refusals_closing_.admit(socket);
  std::string refusal =
      "421 " + net::out_of_descriptors_refusal(ec, ctx_.target.connections_flag) + "\r\n";
  asio::co_spawn(
      io_,
      [](Server& self, net::LingerGroup::Place place, std::shared_ptr<asio::ip::tcp::socket> s,
         std::string line) -> asio::awaitable<void> {
        co_await say_then_linger(self.refusals_closing_, std::move(place), std::move(s),
                                 std::move(line), [&self](asio::ip::tcp::socket& closing) {
                                   self.descriptor_reserve_.give_back([&closing] {
                                     std::error_code ignored;
                                     closing.close(ignored);
                                   });
                                 });
      }(*this, std::move(place), socket, std::move(refusal)),
      asio::detached);
  return true;
}

void Server::accept_works_again() {
  const AcceptFailures was = std::exchange(accept_failures_, {});
  std::string meanwhile =
      std::to_string(was.turned_away) + " client(s) turned away with 421 meanwhile (not recorded)";
  if (was.retries > 0) meanwhile += ", " + std::to_string(was.retries) + " retries";
  log::notice("accept works again: " + meanwhile);
}

std::string Server::too_many_sessions() const {
  return "4.3.2 mailtap: too many sessions (" + std::to_string(ctx_.config.max_sessions) +
         "); try again later";
}

// Why the client just accepted is not served: a local user other than mailtap's own and those
// --allow-local-user names (net/local_user_policy); "" to serve it. One netlink round trip per
// client, none under --allow-local-user any.
std::string Server::other_local_user(const asio::ip::tcp::socket& socket) {
  const net::LocalUserPolicy& policy = ctx_.config.local_users;
  if (policy.any) return {};
  std::error_code ec;
  const asio::ip::tcp::endpoint local = socket.local_endpoint(ec);
  asio::ip::tcp::endpoint peer;
  if (!ec) peer = socket.remote_endpoint(ec);
  const net::PeerOwner owner =
      ec ? net::PeerOwner{net::PeerOwner::Kind::unknown, 0, "its address: " + ec.message()}
         : peer_owners_.find(local, peer);
  const std::string why =
      net::local_user_refusal(policy, owner, ec || net::is_loopback(peer.address()),
                              [this](std::uint32_t uid) { return user_names_(uid); });
  return why.empty() ? why : "4.7.0 mailtap: " + why;
}

// A new client: relayed, or answered with a 421: over --max-sessions, or `not_served` (a local
// user not allowed, other_local_user), which is logged for each client.
void Server::start_session(asio::ip::tcp::socket socket,
                           std::unique_ptr<net::DescriptorReserve> upstream_reserve,
                           std::string not_served) {
  bool refused = false;
  bool first_refusal = false;
  std::shared_ptr<Session> session;
  storage::SessionKey key = 0;
  {
    std::lock_guard lock(mutex_);
    const bool over_limit = relaying_ >= ctx_.config.max_sessions;
    refused = over_limit || !not_served.empty();
    if (refused) {
      // A recorded refusal waits for its commit with a descriptor and a session held: past a
      // second limit's worth of them the client is still told, at once, but not recorded (the
      // count is logged at the end of the burst, see session_ended).
      if (refusing_ >= ctx_.config.max_sessions) {
        ++(not_served.empty() ? unrecorded_refusals_ : unrecorded_local_refusals_);
        say_and_close(std::move(socket), not_served.empty() ? too_many_sessions() : not_served);
        return;
      }
      ++refusing_;
      if (not_served.empty()) {
        first_refusal = !over_limit_reported_;
        over_limit_reported_ = true;
      }
    } else {
      ++relaying_;
      over_limit_reported_ = false;
    }
    // Taken here, not before: a client refused unrecorded uses up no session number.
    key = ctx_.recorder ? ctx_.recorder->new_session_key() : next_key_++;
    session = std::make_shared<Session>(std::move(socket), ctx_, key);
    // A refusal opens no upstream socket: its reserve is free again at once.
    if (!refused) session->hold_upstream_descriptor(std::move(upstream_reserve));
    sessions_[key] = {session, refused};
  }
  if (first_refusal)
    log::warning("too many sessions (" + std::to_string(ctx_.config.max_sessions) +
                 "): refusing new clients with 421 until one ends (--max-sessions)");
  auto ex = session->executor();
  // Refused for who it is: before any upstream connection, so no credential is used for it.
  auto work = !not_served.empty() ? session->run_refused(std::move(not_served), /*log=*/true)
              : refused           ? session->run_refused(too_many_sessions(), /*log=*/false)
                                  : session->run();
  // The handler owns the session until its coroutine is done (the map holds weak pointers).
  asio::co_spawn(ex, std::move(work), [this, key, session](std::exception_ptr e) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        log::error("session " + std::to_string(key) + " failed: " + ex.what());
      }
    }
    session_ended(key);
  });
}

void Server::refuse_unrecorded(asio::ip::tcp::socket socket) {
  const std::string reason = ctx_.recorder->failure_reason();
  {
    std::lock_guard lock(mutex_);
    if (!recording_failure_reported_) {
      recording_failure_reported_ = true;
      log::error("recording failed (" + reason +
                 "); refusing new sessions (--record-failure=continue relays unrecorded)");
    }
  }
  // The telnet user sees only this line: it says what to do, not just what failed.
  say_and_close(std::move(socket), "4.3.0 mailtap: recording failed (" + reason +
                                       "); not accepting sessions: fix that, then restart "
                                       "mailtap (or run it with --record-failure continue to "
                                       "relay unrecorded)");
}

void Server::session_ended(storage::SessionKey id) {
  std::function<void()> drained;
  unsigned unrecorded = 0;
  unsigned unrecorded_local = 0;
  {
    std::lock_guard lock(mutex_);
    if (auto it = sessions_.find(id); it != sessions_.end()) {
      --(it->second.refusal ? refusing_ : relaying_);
      sessions_.erase(it);
    }
    // The burst is over once its last recorded refusal is: the clients refused unrecorded in
    // it are logged then, in one line (not one per client, nor per commit during a flood).
    if (refusing_ == 0) {
      unrecorded = std::exchange(unrecorded_refusals_, 0);
      unrecorded_local = std::exchange(unrecorded_local_refusals_, 0);
    }
    if (shutting_down_ && sessions_.empty() && !drained_) {
      drained_ = true;
      drained = on_drained_;
    }
  }
  // A session or a recorded refusal less: the next client may no longer be refused unrecorded.
  refusals_closing_.look_again();
  if (unrecorded > 0)
    log::warning(
        std::to_string(unrecorded) +
        " client(s) over --max-sessions got the 421 but were not recorded: they came while " +
        std::to_string(ctx_.config.max_sessions) +
        " refusals were waiting for their record already");
  if (unrecorded_local > 0)
    log::warning(std::to_string(unrecorded_local) +
                 " client(s) of local users mailtap does not serve got the 421 but were not "
                 "recorded: they came while " +
                 std::to_string(ctx_.config.max_sessions) +
                 " refusals were waiting for their record already (--allow-local-user)");
  if (drained) {
    grace_timer_.cancel();
    stop_token_command();
    drained();
  }
}

void Server::end_all_sessions(bool insist) {
  stop_token_command();
  std::lock_guard lock(mutex_);
  grace_over_ = true;
  for (auto& [id, entry] : sessions_)
    if (auto s = entry.session.lock()) s->shutdown_now(insist);
}

// A token command that hangs would otherwise hold the shutdown until its own timeout: the
// request of a session it keeps waiting holds that session's I/O thread (even once the session
// has ended), and the process does not exit before every I/O thread has.
void Server::stop_token_command() {
  if (ctx_.tokens) ctx_.tokens->stop();
}

void Server::begin_shutdown(std::chrono::steady_clock::duration grace) {
  std::function<void()> drained;
  bool insist = false;
  {
    std::lock_guard lock(mutex_);
    if (shutting_down_) {
      // Asked twice: do not wait for the grace period; asked again after it, for nothing.
      insist = grace_over_;
      grace_timer_.cancel();
    } else {
      shutting_down_ = true;
      std::error_code ignored;
      acceptor_.close(ignored);
      // Refused clients are no sessions: the grace period is not theirs to wait out.
      refusals_closing_.cut();
      if (!sessions_.empty()) {
        log::info("shutting down: waiting up to " +
                  std::to_string(std::chrono::duration_cast<std::chrono::seconds>(grace).count()) +
                  "s for " + std::to_string(sessions_.size()) +
                  " session(s) to finish (signal again to end them now)");
        grace_timer_.expires_after(grace);
        grace_timer_.async_wait([this](const std::error_code&) { end_all_sessions(); });
        return;
      }
      drained_ = true;
      drained = on_drained_;
    }
  }
  if (insist) end_all_sessions(true);
  if (drained) {
    stop_token_command();
    drained();
  }
}

}  // namespace mailtap
