// What the dialogue sends to the upstream, in the order it goes, as pieces: relayed bytes (and
// mailtap's own lines that hold no secret) gather in one std::string, as a relay's output
// should; a line that holds credentials mailtap put in (--auth-user, --assist-auth) is a Secret
// piece of its own. So a password or token is never copied into a buffer that grows (a realloc
// would leave an unwiped copy behind), and it is wiped whenever its piece goes, written or not.
// Each piece knows whose octets it holds: the client's (relayed: sessions.bytes_client_to_upstream
// counts them) or mailtap's own lines (its QUIT, "*", EHLO and AUTH, counted nowhere), which are
// pieces of their own, so that what a session drops unwritten can be taken off the count.
// Move-only, like the Secret it may hold.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "proxy/smtp/secret.hpp"

namespace mailtap::smtp {

class UpstreamOutput {
 public:
  class Piece {
   public:
    explicit Piece(std::string bytes, bool relayed = true)
        : bytes_(std::move(bytes)), relayed_(relayed) {}
    explicit Piece(Secret line, bool relayed = true) : bytes_(std::move(line)), relayed_(relayed) {}

    std::string_view view() const noexcept;
    bool holds_secret() const noexcept { return std::holds_alternative<Secret>(bytes_); }
    // The client's octets, relayed (not one of mailtap's own lines).
    bool relayed() const noexcept { return relayed_; }

   private:
    friend class UpstreamOutput;
    std::variant<std::string, Secret> bytes_;
    bool relayed_ = true;
  };

  UpstreamOutput() noexcept = default;
  UpstreamOutput(const UpstreamOutput&) = delete;
  UpstreamOutput& operator=(const UpstreamOutput&) = delete;
  // A moved-from output is empty.
  UpstreamOutput(UpstreamOutput&& other) noexcept
      : pieces_(std::exchange(other.pieces_, {})),
        size_(std::exchange(other.size_, 0)),
        relayed_size_(std::exchange(other.relayed_size_, 0)),
        expected_(std::exchange(other.expected_, 0)) {}
  UpstreamOutput& operator=(UpstreamOutput&& other) noexcept {
    pieces_ = std::exchange(other.pieces_, {});
    size_ = std::exchange(other.size_, 0);
    relayed_size_ = std::exchange(other.relayed_size_, 0);
    expected_ = std::exchange(other.expected_, 0);
    return *this;
  }
  ~UpstreamOutput() = default;

  // Relayed bytes: behind the last piece, in it when that is relayed bytes too.
  void append(std::string_view bytes);
  // A line holding a secret: a piece of its own.
  void append(Secret line);
  // One of mailtap's own lines (not the client's): a piece of its own, never joined.
  void append_own(std::string_view line);
  void append_own(Secret line);
  // About `octets` of relayed bytes follow: the next append makes room for all of them at once
  // (a body read relayed segment by segment would otherwise regrow, and copy, its piece).
  void expect(std::size_t octets) noexcept { expected_ = octets; }
  // All of `later`'s pieces behind these (`later` is left empty).
  void append(UpstreamOutput&& later);

  // The first `octets` went out: their pieces go (a Secret one wiped), and a piece that went
  // in part keeps the rest.
  void drop_front(std::size_t octets);
  // The first piece, taken out (to be written); empty() must be false.
  Piece take_front();

  bool empty() const noexcept { return size_ == 0; }
  // Octets in all the pieces.
  std::size_t size() const noexcept { return size_; }
  // Of those, the client's (in relayed pieces).
  std::size_t relayed_size() const noexcept { return relayed_size_; }
  const std::vector<Piece>& pieces() const noexcept { return pieces_; }

 private:
  std::string* last_relayed();  // the last piece, if it holds relayed bytes
  void push(Piece piece);

  std::vector<Piece> pieces_;
  std::size_t size_ = 0;
  std::size_t relayed_size_ = 0;
  std::size_t expected_ = 0;
};

// Whose octets the last ones handed to the upstream's writer were, for a writer that may not
// have sent all it took (TLS records waiting for the socket, a write under way): what it
// reports unsent is the tail of what it was handed, and this says how much of that tail was
// the client's, to take off the count. A run per change of owner, so a few runs at most.
class HandedTail {
 public:
  void add(std::size_t octets, bool relayed);
  // Only the last `octets` may still be unsent: the rest is forgotten.
  void keep_last(std::size_t octets);
  // Of the last `octets` handed on (at most what is kept), the client's.
  std::size_t relayed_in_last(std::size_t octets) const;
  void clear() noexcept {
    runs_.clear();
    size_ = 0;
  }
  std::size_t size() const noexcept { return size_; }

 private:
  struct Run {
    std::size_t octets = 0;
    bool relayed = true;
  };
  std::vector<Run> runs_;  // oldest first; neighbours differ in `relayed`
  std::size_t size_ = 0;
};

}  // namespace mailtap::smtp
