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
#include <asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
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
  // Octets the client sent after the end, thrown away: as ReadNow counts them (the client's
  // plaintext inside TLS).
  std::size_t discarded = 0;
  bool client_closed = false;  // it closed (or reset) within the limits
  // It reset the connection (or had, before the close began): what was written to it last it
  // did not read all of, as a client that closes with input unread resets (or one that had
  // closed before that input came).
  bool client_reset = false;
  bool octet_limit = false;  // limits.octets were thrown away: the client may have sent more
  bool time_limit = false;   // limits.time passed first (not a cancel: see cut())
  // The socket was closed before the lingering close began (mailtap had reset or closed the
  // connection: for a client that did not read its replies, a failed STARTTLS handshake, ...),
  // so nothing lingered. Why, only the caller knows.
  bool closed_before = false;
};

// Reads what the connection holds now into `buffer`, without waiting: the client's octets
// read, which the lingering close counts; `ec` would_block (or try_again) when nothing more has
// come, eof when the client closed, connection_reset when it reset. On a TLS link (Link), the
// client's plaintext, its close_notify an end: a clean close is no data.
using ReadNow = std::function<std::size_t(asio::mutable_buffer buffer, std::error_code& ec)>;

// Closes the socket at the end of a lingering close; by default socket.close(). The proxy's
// client turned away through its descriptor reserve closes under the reserve's give_back, so
// that the reserve, not another thread's open, takes the descriptor the close frees.
using CloseSocket = std::function<void(asio::ip::tcp::socket& socket)>;

// Shuts down the sending side of `socket` (what was written goes, then a FIN), reads and
// discards whatever comes (through `read_now`; by default the socket's octets) until the
// client closes, `limits` are reached or a wait is cancelled (socket.cancel(): a shutdown
// cutting the wait short; what has come by then is still read), then closes the socket. A
// socket already closed is left so (`close` is not called).
asio::awaitable<Lingered> linger_then_close(asio::ip::tcp::socket& socket, LingerLimits limits,
                                            ReadNow read_now = {}, CloseSocket close = {});

// Lingering closes the caller does not otherwise keep track of (the proxy's refusals of
// clients that get no session), at most `capacity` waiting at once, all of them ended by cut():
// a flood of such clients holds no more than that many descriptors, and a shutdown does not
// wait for them. A close past the capacity does not wait, so a client whose line comes after
// it gets a reset, which can cost it the reply: the caller that takes the clients waits for
// room (wait_for_room) before it takes the next one, and takes its place at once (admit).
class LingerGroup {
  struct Member {
    asio::any_io_executor executor;  // the socket's: only there may it be cancelled
    std::weak_ptr<asio::ip::tcp::socket> socket;
  };

 public:
  // A socket's place among the group's waits, from admit() until its close is done.
  class Place {
   public:
    Place() = default;
    Place(Place&& other) noexcept;
    Place& operator=(Place&&) = delete;
    Place(const Place&) = delete;
    ~Place();
    explicit operator bool() const { return group_ != nullptr; }

   private:
    friend class LingerGroup;
    Place(LingerGroup& group, std::list<Member>::iterator member)
        : group_(&group), member_(member) {}
    LingerGroup* group_ = nullptr;
    std::list<Member>::iterator member_;
  };

  explicit LingerGroup(std::size_t capacity) : capacity_(capacity) {}
  // A place for `socket`'s wait, taken now on the caller's thread (the next wait_for_room()
  // counts it even before the close begins); an empty one when the group is full or cut.
  Place admit(const std::shared_ptr<asio::ip::tcp::socket>& socket);
  // linger_then_close, but without waiting (limits.time zero) without a place, or once cut.
  asio::awaitable<Lingered> close(Place place, std::shared_ptr<asio::ip::tcp::socket> socket,
                                  LingerLimits limits, CloseSocket close_socket = {});
  asio::awaitable<Lingered> close(std::shared_ptr<asio::ip::tcp::socket> socket,
                                  LingerLimits limits);
  // Until the group has room for one more wait, is cut, or `needed` (when given) says the room
  // is not needed any more: it is asked first and after each look_again(), on the waiter's
  // thread. One caller at a time, on an executor run by one thread (the acceptor's).
  asio::awaitable<void> wait_for_room(std::function<bool()> needed = {});
  // Has wait_for_room ask its `needed` again (now, or at its next wait); any thread.
  void look_again();
  // Ends the group's waits now and lets none begin from now on; any thread.
  void cut();

 private:
  void leave(std::list<Member>::iterator member);
  void wake_waiter();  // with mutex_ held

  std::mutex mutex_;
  std::list<Member> members_;
  std::size_t capacity_;
  bool cut_ = false;
  bool look_again_ = false;                     // a look_again() that found no waiter
  std::shared_ptr<asio::steady_timer> waiter_;  // wait_for_room's, while it waits
};

}  // namespace mailtap::net
