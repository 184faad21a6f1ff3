// Whether a server has the octets written towards it that a reply is owed for. The clock for a
// reply starts only then: a "." queued behind a megabyte of body that a slow server is still
// reading is not yet the server's to answer. Until then the server is timed on taking those
// octets, and each piece it takes restarts that clock, as each piece of a body restarts a
// client's. What the server took is what its TCP stack acknowledged: the socket reports room
// only once half of its queue has gone (so a server reading steadily looks stalled for seconds
// to a writer), and the octets the socket took may wait in the kernel for as long again. The
// wait itself is plain C++ over counts (the owner says where its output is, and what the kernel
// holds unacknowledged); observe_delivery() is the one step that asks a link and its kernel.
#pragma once

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <optional>

namespace mailtap::net {

class Link;

// Where the octets written towards the server are, as the owner can tell without a system call.
struct OutputProgress {
  // Of the owner's output (its octets counted from the first), those it no longer holds: the
  // socket took them (with TLS, the whole record holding each).
  std::uint64_t left = 0;
  // The octets the socket has taken in all (with TLS, ciphertext): the kernel's count of what
  // the server has not acknowledged is a count of these.
  std::uint64_t on_socket = 0;
};

class DeliveryWait {
 public:
  using Clock = std::chrono::steady_clock;
  // What counts as the server taking a piece: this much more since the clock last restarted
  // (as a body line restarts a client's clock each 64 KiB), so a server taking a few octets at
  // a time cannot hold a session by that.
  static constexpr std::uint64_t progress_octets = std::uint64_t{64} * 1024;
  // How often the owner looks again while it waits (a system call each time, so only then).
  static constexpr std::chrono::milliseconds look_interval{100};
  // What the kernel sends at once on any connection, a fresh or idle one too (RFC 6928's
  // initial window, 10 segments of 1460): when a wait begins with at most this much in the
  // kernel that the server has not acknowledged, the server has all of it one round trip later.
  static constexpr std::uint64_t one_round_trip_octets = 10 * 1460;

  // A reply is owed (the server's turn began at `now`) for the output's first `through` octets.
  void begin(std::uint64_t through, const OutputProgress& output, Clock::time_point now);
  // The server answered a command (a reply line): it had the output's first `through` octets,
  // and, if that is all that has left the owner (`output`), every octet the socket took.
  void answered(std::uint64_t through, const OutputProgress& output, Clock::time_point now);
  // No reply is owed any more: nothing to look at.
  void end() { active_ = false; }
  bool active() const { return active_; }
  // A reply is owed and the server may not have all it answers yet: look again (observe) at
  // look_interval, and time the server on taking it.
  bool waiting() const { return active_ && !delivered_; }
  // Whether the owner's first look may wait for its next tick (up to a second away) rather
  // than come within look_interval: the wait began with all of it out of the owner and little
  // else unacknowledged in the kernel, so a look, however late, that finds the server has it
  // all starts the reply's clock look_interval after the wait began, not when it looked.
  bool first_look_may_wait() const {
    return !waiting() || delivered_by_ != Clock::time_point::max();
  }
  // A look at the output: `unacknowledged` is the kernel's count of octets the socket took that
  // the server has not acknowledged; without it the kernel cannot tell, and the octets count
  // as the server's once they have left the owner.
  void observe(const OutputProgress& output, std::optional<std::uint64_t> unacknowledged,
               Clock::time_point now);
  // waiting(): when the server last took a piece (or its turn began); otherwise when it had all
  // the reply is owed for (or its turn began, if it had it by then): the reply's clock.
  Clock::time_point since() const { return since_; }

 private:
  void note_left(const OutputProgress& output, Clock::time_point now);
  void deliver(Clock::time_point at);

  bool active_ = false;
  bool delivered_ = false;
  // All of it left the owner; the kernel may hold some. socket_through_: the socket's count
  // when that was seen, all of it in it (and perhaps some octets written after).
  bool in_kernel_ = false;
  std::uint64_t through_ = 0;
  std::uint64_t delivered_through_ = 0;  // of the output, what the server is known to have
  std::uint64_t socket_through_ = 0;
  // Where the last counted progress left things: the owner's output, and the octets the
  // server acknowledged (unknown until the first count).
  std::uint64_t left_mark_ = 0;
  std::optional<std::uint64_t> acknowledged_mark_;
  // Of the octets the socket took, those the server is known to have acknowledged (a look's
  // count, or a reply to all that had left the owner).
  std::uint64_t acknowledged_through_ = 0;
  // first_look_may_wait(): when the server had it all at the latest; max() if not known.
  Clock::time_point delivered_by_ = Clock::time_point::max();
  Clock::time_point since_{};
};

// One look for each of `waits` that is waiting at `link` (`left`: the owner's
// OutputProgress::left), asking the kernel (Linux SIOCOUTQ) once if any is.
void observe_delivery(std::initializer_list<DeliveryWait*> waits, Link& link, std::uint64_t left,
                      DeliveryWait::Clock::time_point now);

}  // namespace mailtap::net
