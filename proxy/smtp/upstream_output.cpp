#include "proxy/smtp/upstream_output.hpp"

#include <algorithm>
#include <iterator>
#include <utility>

namespace mailtap::smtp {

std::string_view UpstreamOutput::Piece::view() const noexcept {
  if (const auto* secret = std::get_if<Secret>(&bytes_)) return secret->view();
  return std::get<std::string>(bytes_);
}

std::string* UpstreamOutput::last_relayed() {
  if (pieces_.empty() || !pieces_.back().relayed_) return nullptr;
  return std::get_if<std::string>(&pieces_.back().bytes_);
}

void UpstreamOutput::push(Piece piece) {
  const std::size_t n = piece.view().size();
  size_ += n;
  if (piece.relayed_) relayed_size_ += n;
  pieces_.push_back(std::move(piece));
}

void UpstreamOutput::append(std::string_view bytes) {
  if (bytes.empty()) return;
  size_ += bytes.size();
  relayed_size_ += bytes.size();
  const std::size_t room = std::max(bytes.size(), std::exchange(expected_, 0));
  if (std::string* last = last_relayed()) {
    if (last->capacity() - last->size() < room) last->reserve(last->size() + room);
    last->append(bytes);
    return;
  }
  std::string piece;
  piece.reserve(room);
  piece.append(bytes);
  pieces_.emplace_back(std::move(piece));
}

void UpstreamOutput::append(Secret line) {
  if (!line.empty()) push(Piece(std::move(line)));
}

void UpstreamOutput::append_own(std::string_view line) {
  if (!line.empty()) push(Piece(std::string(line), /*relayed=*/false));
}

void UpstreamOutput::append_own(Secret line) {
  if (!line.empty()) push(Piece(std::move(line), /*relayed=*/false));
}

void UpstreamOutput::append(UpstreamOutput&& later) {
  if (later.empty()) return;
  if (empty()) {
    *this = std::move(later);
    return;
  }
  auto first = later.pieces_.begin();
  if (std::string* last = last_relayed()) {
    // Small pieces join the last one (fewer, fuller TLS records); a large one, such as a body
    // read, moves over as it is rather than being copied.
    constexpr std::size_t kJoinBelow = 4096;
    const auto* relayed = first->relayed_ ? std::get_if<std::string>(&first->bytes_) : nullptr;
    if (relayed != nullptr &&
        (relayed->size() < kJoinBelow || relayed->size() <= last->capacity() - last->size())) {
      last->append(*relayed);
      ++first;
    }
  }
  pieces_.insert(pieces_.end(), std::make_move_iterator(first),
                 std::make_move_iterator(later.pieces_.end()));
  size_ += std::exchange(later.size_, 0);
  relayed_size_ += std::exchange(later.relayed_size_, 0);
  later.pieces_.clear();
}

void UpstreamOutput::drop_front(std::size_t octets) {
  octets = std::min(octets, size_);
  size_ -= octets;
  auto gone = pieces_.begin();
  while (octets > 0) {
    const std::size_t length = gone->view().size();
    const std::size_t taken = std::min(octets, length);
    if (gone->relayed_) relayed_size_ -= taken;
    if (octets >= length) {
      octets -= length;
      ++gone;
      continue;
    }
    if (auto* relayed = std::get_if<std::string>(&gone->bytes_)) {
      relayed->erase(0, octets);
    } else {
      // A fresh Secret of the rest; assigning it wipes the old one.
      Secret rest = Secret::copy_of(gone->view().substr(octets));
      gone->bytes_ = std::move(rest);
    }
    octets = 0;
  }
  pieces_.erase(pieces_.begin(), gone);
}

UpstreamOutput::Piece UpstreamOutput::take_front() {
  Piece first = std::move(pieces_.front());
  pieces_.erase(pieces_.begin());
  const std::size_t n = first.view().size();
  size_ -= n;
  if (first.relayed_) relayed_size_ -= n;
  return first;
}

void HandedTail::add(std::size_t octets, bool relayed) {
  if (octets == 0) return;
  size_ += octets;
  if (!runs_.empty() && runs_.back().relayed == relayed) {
    runs_.back().octets += octets;
    return;
  }
  runs_.push_back(Run{octets, relayed});
}

void HandedTail::keep_last(std::size_t octets) {
  auto first_kept = runs_.begin();
  while (size_ > octets) {
    const std::size_t forget = std::min(size_ - octets, first_kept->octets);
    first_kept->octets -= forget;
    size_ -= forget;
    if (first_kept->octets == 0) ++first_kept;
  }
  runs_.erase(runs_.begin(), first_kept);
}

std::size_t HandedTail::relayed_in_last(std::size_t octets) const {
  std::size_t relayed = 0;
  for (auto run = runs_.rbegin(); run != runs_.rend() && octets > 0; ++run) {
    const std::size_t n = std::min(octets, run->octets);
    if (run->relayed) relayed += n;
    octets -= n;
  }
  return relayed;
}

}  // namespace mailtap::smtp
