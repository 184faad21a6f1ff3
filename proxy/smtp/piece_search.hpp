// Whether a text holds any of some pieces of one buffer: the bearer tokens a decoded SASL response
// carries, its password. The redactor asks this of every user name, host and port it would keep
// in clear, over responses of up to 12288 octets that may carry hundreds of tokens: one pass over
// the text answers for all of them (an Aho-Corasick automaton), where a search per piece took
// time quadratic in the line.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace mailtap::smtp {

class PieceSearch {
 public:
  // Each of `pieces` is a view into `buffer`; empty ones are left out. Nothing of them is copied
  // (they may be secrets): the automaton names the octets of `buffer` it stands for, so `buffer`
  // must outlive it.
  PieceSearch(std::string_view buffer, std::span<const std::string_view> pieces);

  // Whether any of the pieces occurs anywhere in `text`. Linear in text.size().
  bool any_in(std::string_view text) const;

 private:
  static constexpr std::uint32_t kNone = UINT32_MAX;
  struct Node {
    std::size_t octet = 0;  // where in the buffer the octet on the edge into this node is
    std::uint32_t first_child = kNone;
    std::uint32_t next_sibling = kNone;
    std::uint32_t fallback = 0;  // the node of the longest proper suffix that is also a prefix
    bool ends_piece = false;     // a piece ends here, or at a node of its fallback chain
  };

  std::uint32_t child(std::uint32_t node, char c) const;
  void add(std::string_view piece);
  void link_fallbacks();

  std::string_view buffer_;
  std::vector<Node> nodes_;  // nodes_[0] is the root: the empty prefix
};

}  // namespace mailtap::smtp
