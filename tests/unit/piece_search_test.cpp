// Whether a text holds one of some pieces of a buffer (the redactor's bearer tokens): one pass over
// the text must find what a search for each piece finds, overlaps and shared prefixes included.
#include "proxy/smtp/piece_search.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace mailtap::smtp {
namespace {

// The pieces of `buffer` (which must outlive the search) that follow each '>' up to the next
// space.
PieceSearch pieces_of(const std::string& buffer) {
  std::vector<std::string_view> pieces;
  const std::string_view b(buffer);
  for (std::size_t at = b.find('>'); at != std::string_view::npos; at = b.find('>', at + 1)) {
    const std::size_t end = b.find(' ', at + 1);
    pieces.push_back(b.substr(at + 1, end == std::string_view::npos ? end : end - at - 1));
  }
  return PieceSearch(b, pieces);
}

TEST(PieceSearch, FindsEachPiece) {
  const std::string buffer = "user=alice >ya29.tok >other-token==";
  const PieceSearch search = pieces_of(buffer);
  EXPECT_TRUE(search.any_in("ya29.tok"));
  EXPECT_TRUE(search.any_in("alice-ya29.tokyo"));
  EXPECT_TRUE(search.any_in("xother-token=="));
  EXPECT_FALSE(search.any_in("other-token="));
  EXPECT_FALSE(search.any_in("ya29.to"));
  EXPECT_FALSE(search.any_in("alice@example.test"));
  EXPECT_FALSE(search.any_in(""));
  EXPECT_TRUE(search.any_in(buffer));
}

// No piece, or only empty ones: nothing is found, not even in the buffer itself.
TEST(PieceSearch, EmptyPiecesMatchNothing) {
  for (const std::string buffer : {"", "user=alice", "a > b >"}) {
    SCOPED_TRACE(buffer);
    EXPECT_FALSE(pieces_of(buffer).any_in(buffer));
    EXPECT_FALSE(pieces_of(buffer).any_in("alice"));
  }
}

// Octets outside ASCII and NUL are octets like any other.
TEST(PieceSearch, AnyOctet) {
  const std::string buffer = std::string("x>\0\xff\x01", 5);
  EXPECT_TRUE(pieces_of(buffer).any_in(std::string("a\0\xff\x01z", 5)));
  EXPECT_FALSE(pieces_of(buffer).any_in(std::string("a\0\xfe\x01z", 5)));
}

// A match that begins inside a failed partial match of another piece: found by falling back to
// the longest suffix read so far that begins a piece, not by starting over.
TEST(PieceSearch, FindsPiecesThatOverlapAPartialMatch) {
  const std::string buffer = ">aab >abd >bc >abcde";
  const PieceSearch search = pieces_of(buffer);
  EXPECT_TRUE(search.any_in("aaab"));
  EXPECT_TRUE(search.any_in("xabcx"));  // "abd" fails at 'c'; "bc" ends there
  EXPECT_TRUE(search.any_in("abcdabd"));
  EXPECT_TRUE(search.any_in("ababcde"));
  EXPECT_FALSE(search.any_in("aaxabxbxa"));
  EXPECT_FALSE(search.any_in("acb"));
}

// One piece inside another: the shorter one is found where the longer one is not.
TEST(PieceSearch, FindsAPieceInsideALongerOne) {
  const std::string buffer = ">xyz123 >z1";
  const PieceSearch search = pieces_of(buffer);
  EXPECT_TRUE(search.any_in("xyz12"));
  EXPECT_FALSE(search.any_in("xyz"));
}

}  // namespace
}  // namespace mailtap::smtp
