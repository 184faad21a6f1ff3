#include "proxy/smtp/upstream_output.hpp"

#include <iterator>
#include <utility>

namespace mailtap::smtp {

std::string_view UpstreamOutput::Piece::view() const noexcept {
  if (const auto* secret = std::get_if<Secret>(&bytes_)) return secret->view();
  return std::get<std::string>(bytes_);
}

std::string* UpstreamOutput::last_relayed() {
  return pieces_.empty() ? nullptr : std::get_if<std::string>(&pieces_.back().bytes_);
}

void UpstreamOutput::append(std::string_view bytes) {
  if (bytes.empty()) return;
  size_ += bytes.size();
  if (std::string* last = last_relayed()) {
    last->append(bytes);
    return;
  }
  pieces_.emplace_back(std::string(bytes));
}

void UpstreamOutput::append(Secret line) {
  if (line.empty()) return;
  size_ += line.size();
  pieces_.emplace_back(std::move(line));
}

void UpstreamOutput::append(UpstreamOutput&& later) {
  if (later.empty()) return;
  if (empty()) {
    *this = std::move(later);
    return;
  }
  auto first = later.pieces_.begin();
  if (std::string* last = last_relayed()) {
    if (const auto* relayed = std::get_if<std::string>(&first->bytes_)) {
      last->append(*relayed);
      ++first;
    }
  }
  pieces_.insert(pieces_.end(), std::make_move_iterator(first),
                 std::make_move_iterator(later.pieces_.end()));
  size_ += std::exchange(later.size_, 0);
  later.pieces_.clear();
}

}  // namespace mailtap::smtp
