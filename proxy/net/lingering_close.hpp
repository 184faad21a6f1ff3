// The end of a connection whose last reply is written, so that the client gets to read it.
// Closing a socket that still holds unread input makes the kernel answer with a TCP reset, and
// a client that sees the reset first (nc, most poll() loops) drops the reply unread: the 421
// that says why the session ended is lost exactly for the client that had typed ahead. So, as
// careful servers do (a "lingering close"): half-close (the client reads the reply, then the
// end), then read and throw away what the client still sends until it closes, within a time
// and an octet bound, then close. Nothing read here is ever looked at.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <chrono>
#include <cstddef>
#include <list>
#include <memory>
#include <mutex>

namespace mailtap::net {

struct LingerLimits {
  // How long to wait for the client to close; zero: only what has already come is read.
  std::chrono::steady_clock::duration time;
  std::size_t octets;  // at most this much is read and thrown away
};

// What every lingering close of mailtap's uses: a person's client closes as soon as it reads
// the end, a script within milliseconds; 2 s covers a loaded machine and is short enough that
// neither a --max-sessions slot nor a shutdown waits long for a client that does not close.
inline constexpr LingerLimits lingering{std::chrono::seconds(2), std::size_t{1} << 20};

struct Lingered {
  std::size_t discarded = 0;   // octets the client sent after the end, thrown away
  bool client_closed = false;  // it closed (or reset) within the limits
  // It reset the connection (or had, before the close began): what was written to it last it
  // did not read all of, as a client that closes with input unread resets (or one that had
  // closed before that input came).
  bool client_reset = false;
  bool octet_limit = false;  // limits.octets were thrown away: the client may have sent more
  bool time_limit = false;   // limits.time passed first (not a cancel: see cut())
};

// Shuts down the sending side of `socket` (what was written goes, then a FIN), reads and
// discards whatever comes until the client closes, `limits` are reached or a wait is
// cancelled (socket.cancel(): a shutdown cutting the wait short; what has come by then is
// still read), then closes the socket. A socket already closed is left so.
asio::awaitable<Lingered> linger_then_close(asio::ip::tcp::socket& socket, LingerLimits limits);

// Lingering closes the caller does not otherwise keep track of (the proxy's refusals of
// clients that get no session), at most `capacity` waiting at once, all of them ended by cut():
// a flood of such clients holds no more than that many descriptors, and a shutdown does not
// wait for them.
class LingerGroup {
 public:
  explicit LingerGroup(std::size_t capacity) : capacity_(capacity) {}
  // linger_then_close, but without waiting (limits.time zero) when the group is full or cut.
  asio::awaitable<Lingered> close(std::shared_ptr<asio::ip::tcp::socket> socket,
                                  LingerLimits limits);
  // Ends the group's waits now and lets none begin from now on; any thread.
  void cut();

 private:
  struct Member {
    asio::any_io_executor executor;  // the socket's: only there may it be cancelled
    std::weak_ptr<asio::ip::tcp::socket> socket;
  };
  std::mutex mutex_;
  std::list<Member> members_;
  std::size_t capacity_;
  bool cut_ = false;
};

}  // namespace mailtap::net
