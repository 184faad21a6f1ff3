// One complete reply parsed from raw server text, as the dialogue would receive it.
#pragma once

#include <gtest/gtest.h>

#include <string_view>

#include "proxy/smtp/reply_parser.hpp"

namespace mailtap::test_support {

inline smtp::Reply reply_of(std::string_view raw) {
  smtp::ReplyParser p;
  p.feed(raw);
  auto r = p.next();
  EXPECT_TRUE(r) << raw;
  return r.value_or(smtp::Reply{});
}

}  // namespace mailtap::test_support
