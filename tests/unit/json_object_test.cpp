// The lenient JSON object reader used for OAuth error challenges and token endpoint output.
#include "proxy/smtp/json_object.hpp"

#include <gtest/gtest.h>

#include <string>

namespace mailtap::smtp {
namespace {

using namespace std::string_literals;

std::string value_of(std::string_view json, std::string_view key) {
  const auto members = parse_json_object(json);
  if (!members) return "<not an object>";
  const JsonMember* m = find_member(*members, key);
  return m ? std::string(m->value) : "<absent>";
}

TEST(JsonObject, ReadsFlatMembersInOrder) {
  const auto m = parse_json_object(R"({"status":"400","schemes":"Bearer","scope":"x"})");
  ASSERT_TRUE(m);
  ASSERT_EQ(m->size(), 3u);
  EXPECT_EQ((*m)[0].key, "status");
  EXPECT_EQ((*m)[0].value, "400");
  EXPECT_EQ((*m)[0].type, JsonMember::Type::string);
  EXPECT_EQ((*m)[2].key, "scope");
}

TEST(JsonObject, AcceptsWhatSloppyServersSend) {
  EXPECT_EQ(value_of("{\"status\":\"401\"}\n", "status"), "401");           // trailing newline
  EXPECT_EQ(value_of(" \r\n{ \"status\" : 401 , }\r\n", "status"), "401");  // number, comma
  EXPECT_EQ(value_of("{\"a\":1} trailing junk", "a"), "1");
  EXPECT_EQ(value_of("{}", "a"), "<absent>");
}

TEST(JsonObject, SkipsNestedValuesAndKnowsTypes) {
  const auto m = parse_json_object(
      R"({"o":{"x":[1,{"y":"}"}]},"a":[],"t":true,"n":null,"f":-1.5e3,"s":"\"q\""})");
  ASSERT_TRUE(m);
  ASSERT_EQ(m->size(), 6u);
  EXPECT_EQ((*m)[0].type, JsonMember::Type::object);
  EXPECT_EQ((*m)[0].value, R"({"x":[1,{"y":"}"}]})");
  EXPECT_EQ((*m)[1].type, JsonMember::Type::array);
  EXPECT_EQ((*m)[2].type, JsonMember::Type::literal);
  EXPECT_EQ((*m)[3].type, JsonMember::Type::literal);
  EXPECT_EQ((*m)[4].type, JsonMember::Type::number);
  EXPECT_EQ((*m)[5].value, R"(\"q\")");
}

TEST(JsonObject, RefusesWhatIsNotAnObject) {
  for (std::string_view bad :
       {"", "[]", "\"s\"", "{", "{\"a\"}", "{\"a\":}", "{\"a\":1 \"b\":2}", "{\"a\":\"x}", "{a:1}",
        "{\"a\":nul}", "{\"a\":\"\x01\"}", "{\"a\":[1,2}", "{,}", "{\"a\":01x}"}) {
    EXPECT_FALSE(parse_json_object(bad)) << bad;
  }
}

TEST(JsonObject, BoundsNestingAndMembers) {
  std::string deep = "{\"a\":" + std::string(40, '[') + std::string(40, ']') + "}";
  EXPECT_FALSE(parse_json_object(deep));
  std::string many = "{";
  for (int i = 0; i < 70; ++i) many += "\"k" + std::to_string(i) + "\":1,";
  many += "}";
  EXPECT_FALSE(parse_json_object(many));
  EXPECT_TRUE(parse_json_object(many, 100));
}

TEST(JsonObject, UnescapesStrings) {
  std::string out;
  EXPECT_TRUE(json_unescape(R"(a\"b\\c\/d\n\t\u0041\u00e9\u20ac\ud83d\ude00)", out));
  EXPECT_EQ(out, "a\"b\\c/d\n\tA\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
  EXPECT_TRUE(json_unescape(R"(\ud800x)", out));  // lone surrogate
  EXPECT_EQ(out, "\xef\xbf\xbdx");
  EXPECT_FALSE(json_unescape(R"(\x)", out));
  EXPECT_FALSE(json_unescape(R"(\u12)", out));
  EXPECT_FALSE(json_unescape("\\", out));
}

TEST(JsonObject, UnescapesIntoASecretOfTheRawSize) {
  const std::string raw = R"(ya29.a0\/b)";
  Secret s(raw.size());
  ASSERT_TRUE(json_unescape_into(raw, s));
  EXPECT_EQ(s.view(), "ya29.a0/b");
  Secret small(2);
  EXPECT_FALSE(json_unescape_into(raw, small));
  Secret bad(8);
  EXPECT_FALSE(json_unescape_into(R"(ab\q)", bad));
  EXPECT_TRUE(bad.empty());
}

}  // namespace
}  // namespace mailtap::smtp
