// Secret: one allocation for its whole life, wiped whenever bytes leave it, move-only.
#include "proxy/smtp/secret.hpp"

#include <gtest/gtest.h>

#include <type_traits>

namespace mailtap::smtp {
namespace {

static_assert(!std::is_copy_constructible_v<Secret>);
static_assert(!std::is_copy_assignable_v<Secret>);
static_assert(std::is_nothrow_move_constructible_v<Secret>);
static_assert(std::is_nothrow_move_assignable_v<Secret>);
// No implicit way out into a string: only view() and data().
static_assert(!std::is_convertible_v<Secret, std::string>);
static_assert(!std::is_convertible_v<Secret, std::string_view>);

TEST(Secret, AppendsWithinItsCapacityOnly) {
  Secret s(8);
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(s.capacity(), 8u);
  EXPECT_TRUE(s.append("hunter"));
  EXPECT_TRUE(s.push_back('2'));
  EXPECT_EQ(s.view(), "hunter2");
  EXPECT_EQ(s.room(), 1u);
  EXPECT_FALSE(s.append("xy"));  // all or nothing
  EXPECT_EQ(s.view(), "hunter2");
  EXPECT_TRUE(s.push_back('!'));
  EXPECT_FALSE(s.push_back('!'));
  EXPECT_EQ(s.extend(1), nullptr);
}

TEST(Secret, NeverMovesItsBytes) {
  Secret s(64);
  const char* where = s.data();
  for (int i = 0; i < 64; ++i) ASSERT_TRUE(s.push_back('a'));
  EXPECT_EQ(s.data(), where);  // no reallocation however it was filled
  Secret moved = std::move(s);
  EXPECT_EQ(moved.data(), where);  // a move hands over the one allocation
  EXPECT_EQ(moved.size(), 64u);
  EXPECT_EQ(s.size(), 0u);  // NOLINT(bugprone-use-after-move): the moved-from state is defined
  EXPECT_EQ(s.capacity(), 0u);
  EXPECT_EQ(s.data(), nullptr);
}

TEST(Secret, TruncateAndClearWipeTheBytesTheyDrop) {
  Secret s(16);
  ASSERT_TRUE(s.append("password1234"));
  const char* bytes = s.data();
  s.truncate(4);
  EXPECT_EQ(s.view(), "pass");
  for (std::size_t i = 4; i < 12; ++i) EXPECT_EQ(bytes[i], '\0') << i;
  s.clear();
  EXPECT_TRUE(s.empty());
  for (std::size_t i = 0; i < 12; ++i) EXPECT_EQ(bytes[i], '\0') << i;
  EXPECT_EQ(s.capacity(), 16u);  // still usable
  EXPECT_TRUE(s.append("again"));
}

TEST(Secret, ExtendHandsOutRoomInPlace) {
  Secret s(6);
  ASSERT_TRUE(s.append("ab"));
  char* at = s.extend(3);
  ASSERT_NE(at, nullptr);
  at[0] = 'c';
  at[1] = 'd';
  at[2] = 'e';
  EXPECT_EQ(s.view(), "abcde");
}

TEST(Secret, MoveAssignmentReleasesTheOldSecret) {
  Secret a = Secret::copy_of("old");
  Secret b = Secret::copy_of("new secret");
  a = std::move(b);
  EXPECT_EQ(a.view(), "new secret");
  EXPECT_TRUE(b.empty());  // NOLINT(bugprone-use-after-move)
  Secret& same = a;        // through a reference: the compiler's self-move warning is for slips
  a = std::move(same);     // self-move keeps it
  EXPECT_EQ(a.view(), "new secret");
}

TEST(Secret, CopiesAreExplicit) {
  const Secret a = Secret::copy_of("token");
  Secret b = a.clone();
  EXPECT_EQ(b.view(), "token");
  EXPECT_NE(b.data(), a.data());
  EXPECT_EQ(b.capacity(), a.capacity());
  EXPECT_TRUE(a.equals("token"));
  EXPECT_FALSE(a.equals("toke"));
  EXPECT_FALSE(a.equals("tokeN"));
}

TEST(Secret, EmptyAndZeroCapacityAreSafe) {
  Secret none;
  EXPECT_TRUE(none.view().empty());
  EXPECT_TRUE(none.equals(""));
  EXPECT_TRUE(none.append(""));
  EXPECT_FALSE(none.push_back('x'));
  none.clear();
  Secret zero = Secret::copy_of("");
  EXPECT_EQ(zero.capacity(), 0u);
  Secret c = zero.clone();
  EXPECT_TRUE(c.empty());
}

}  // namespace
}  // namespace mailtap::smtp
