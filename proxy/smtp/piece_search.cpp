#include "proxy/smtp/piece_search.hpp"

namespace mailtap::smtp {

PieceSearch::PieceSearch(std::string_view buffer, std::span<const std::string_view> pieces)
    : buffer_(buffer), nodes_(1) {
  for (std::string_view piece : pieces) add(piece);
  link_fallbacks();
}

std::uint32_t PieceSearch::child(std::uint32_t node, char c) const {
  for (std::uint32_t n = nodes_[node].first_child; n != kNone; n = nodes_[n].next_sibling) {
    if (buffer_[nodes_[n].octet] == c) return n;
  }
  return kNone;
}

// `piece` is a view into buffer_: each new node names its octet there.
void PieceSearch::add(std::string_view piece) {
  if (piece.empty()) return;
  const std::size_t start = static_cast<std::size_t>(piece.data() - buffer_.data());
  std::uint32_t node = 0;
  for (std::size_t i = 0; i < piece.size(); ++i) {
    std::uint32_t next = child(node, piece[i]);
    if (next == kNone) {
      next = static_cast<std::uint32_t>(nodes_.size());
      nodes_.push_back({start + i, kNone, nodes_[node].first_child, 0, false});
      nodes_[node].first_child = next;
    }
    node = next;
  }
  nodes_[node].ends_piece = true;
}

// Breadth first, so that a node's fallback, being shallower, is linked before it.
void PieceSearch::link_fallbacks() {
  std::vector<std::uint32_t> queue;
  queue.reserve(nodes_.size());
  for (std::uint32_t n = nodes_[0].first_child; n != kNone; n = nodes_[n].next_sibling) {
    queue.push_back(n);
  }
  for (std::size_t i = 0; i < queue.size(); ++i) {
    const std::uint32_t parent = queue[i];
    for (std::uint32_t n = nodes_[parent].first_child; n != kNone; n = nodes_[n].next_sibling) {
      const char c = buffer_[nodes_[n].octet];
      std::uint32_t f = nodes_[parent].fallback;
      while (f != 0 && child(f, c) == kNone) f = nodes_[f].fallback;
      const std::uint32_t to = child(f, c);
      nodes_[n].fallback = to == kNone ? 0 : to;
      nodes_[n].ends_piece = nodes_[n].ends_piece || nodes_[nodes_[n].fallback].ends_piece;
      queue.push_back(n);
    }
  }
}

bool PieceSearch::any_in(std::string_view text) const {
  if (nodes_.size() == 1) return false;
  std::uint32_t node = 0;
  for (char c : text) {
    while (node != 0 && child(node, c) == kNone) node = nodes_[node].fallback;
    const std::uint32_t next = child(node, c);
    node = next == kNone ? 0 : next;
    if (nodes_[node].ends_piece) return true;
  }
  return false;
}

}  // namespace mailtap::smtp
