// The web page's text decoding (tools/web/charset.hpp): a MIME part's body from its charset to
// UTF-8, and RFC 2047 encoded words in header fields.
#include <gtest/gtest.h>

#include "tools/web/charset.hpp"

namespace mailtap::tools::web {
namespace {

TEST(WebCharset, DecodesSingleByteCharsetsToUtf8) {
  // windows-1252: the euro sign and curly quotes, not C1 control characters.
  EXPECT_EQ(to_utf8("price \x80 5 \x93quoted\x94", "windows-1252"),
            "price \xE2\x82\xAC 5 \xE2\x80\x9Cquoted\xE2\x80\x9D");
  EXPECT_EQ(to_utf8("\x80", "ISO-8859-1"), "\xE2\x82\xAC");  // read as windows-1252
  EXPECT_EQ(to_utf8("caf\xe9", "latin1"), "caf\xC3\xA9");
  EXPECT_EQ(to_utf8("\xb1\xe6\xea\xb3\xf1", "iso-8859-2"),
            "\xC4\x85\xC4\x87\xC4\x99\xC5\x82\xC5\x84");  // ąćęłń
  EXPECT_EQ(to_utf8("\xf0\xd2\xc9\xd7\xc5\xd4", "koi8-r"),
            "\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82");  // Привет
  EXPECT_EQ(to_utf8("\xa4", "iso-8859-15"), "\xE2\x82\xAC");
}

TEST(WebCharset, DecodesMultiByteCharsets) {
  EXPECT_EQ(to_utf8(std::string("h\0i\0", 4), "utf-16le"), "hi");
  EXPECT_EQ(to_utf8("\x93\xfa\x96\x7b", "shift_jis"), "\xE6\x97\xA5\xE6\x9C\xAC");  // 日本
  EXPECT_EQ(to_utf8("\x1b$BF|K\\\x1b(B", "ISO-2022-JP"), "\xE6\x97\xA5\xE6\x9C\xAC");
}

TEST(WebCharset, BytesTheCharsetDoesNotDefineBecomeReplacementCharacters) {
  EXPECT_EQ(to_utf8("a\x81z", "windows-1252"), "a\xEF\xBF\xBDz");
  EXPECT_EQ(to_utf8("\x93", "shift_jis"), "\xEF\xBF\xBD");  // cut short
}

// glibc's UTF-8 reader takes the 5- and 6-octet forms RFC 3629 dropped (and code points past
// U+10FFFF) and writes them out again as they came: "=?utf-8?B?...?=" with one gave the page
// text that is not UTF-8 (found by fuzz_charset). Each octet of such a form is U+FFFD.
TEST(WebCharset, WhatIsNotUtf8AfterConversionBecomesReplacementCharacters) {
  const std::string r = "\xEF\xBF\xBD";  // U+FFFD
  const std::string six_octet_form = "\xFD\xBD\xBD\xBD\xBD\xBD";
  EXPECT_EQ(convert_to_utf8("a" + six_octet_form + "z", "utf-8"),
            "a" + r + r + r + r + r + r + "z");
  EXPECT_EQ(decode_encoded_words("=?utf-8?B?/b29vb29?="), r + r + r + r + r + r);  // base64 of it
  EXPECT_EQ(convert_to_utf8("\xF4\x90\x80\x80", "utf-8"), r + r + r + r);          // past U+10FFFF
}

TEST(WebCharset, UnknownOrUnsafeCharsetNamesLeaveTheBytesAlone) {
  EXPECT_EQ(to_utf8("caf\xe9", ""), "caf\xe9");
  EXPECT_EQ(to_utf8("caf\xe9", "utf-8"), "caf\xe9");  // not valid: sent as base64 later
  EXPECT_EQ(to_utf8("caf\xe9", "x-no-such-charset"), "caf\xe9");
  EXPECT_FALSE(convert_to_utf8("a", "x-no-such-charset"));
  EXPECT_FALSE(convert_to_utf8("a", "utf-8//TRANSLIT"));
  EXPECT_FALSE(convert_to_utf8("a", "../../tmp/x"));
  EXPECT_FALSE(convert_to_utf8("a", std::string(41, 'a')));
}

// A UTF-8 text cut at its limit loses the character the cut split, so it is still UTF-8 (and
// sent as text, not base64); other charsets are left to iconv.
TEST(WebCharset, ACutTextDropsThePartialCharacterAtItsEnd) {
  const std::string euro = "\xe2\x82\xac";  // U+20AC, three octets
  for (std::string_view charset : {"", "utf-8", "UTF-8", "us-ascii"}) {
    for (std::size_t keep = 0; keep <= 3; ++keep) {
      std::string text = "ab" + euro.substr(0, keep);
      drop_partial_character(text, charset);
      EXPECT_EQ(text, keep == 3 ? "ab" + euro : "ab") << charset << " " << keep;
    }
  }
  std::string four = "a\xf0\x9f\x98";  // three of U+1F600's four octets
  drop_partial_character(four, "utf-8");
  EXPECT_EQ(four, "a");
  std::string latin = "caf\xc3";  // windows-1252: a whole character
  drop_partial_character(latin, "windows-1252");
  EXPECT_EQ(latin, "caf\xc3");
  std::string stray = "a\x80\x80\x80\x80";  // not UTF-8 at all: left for the caller's base64
  drop_partial_character(stray, "");
  EXPECT_EQ(stray, "a\x80\x80\x80\x80");
}

TEST(WebCharset, DecodesEncodedWords) {
  EXPECT_EQ(decode_encoded_words("=?UTF-8?B?w6lsw6h2ZQ==?="), "\xC3\xA9l\xC3\xA8ve");
  EXPECT_EQ(decode_encoded_words("=?iso-8859-1?q?caf=E9_au_lait?="), "caf\xC3\xA9 au lait");
  EXPECT_EQ(decode_encoded_words("=?koi8-r?B?8NLJ18XU?= <ivan@example.test>"),
            "\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82 <ivan@example.test>");
  // White space between adjacent encoded words goes; elsewhere it stays.
  EXPECT_EQ(decode_encoded_words("Re: =?utf-8?q?a?= =?utf-8?q?b?=  c"), "Re: ab  c");
  EXPECT_EQ(decode_encoded_words("=?utf-8*en?Q?hi?="), "hi");
}

// Octets that are not UTF-8 in a header field declare no charset. Left as they are beside the
// UTF-8 of its decoded encoded words, they made a mix of two encodings nobody can read (the page
// showed "=?UTF-8?B?w6k=?= caf\xe9" as "Ã© café"): they are read as windows-1252, as mail
// programs read undeclared 8-bit text and as ISO-8859-1 is read here.
TEST(WebCharset, OctetsNotUtf8BesideEncodedWordsAreReadAsWindows1252) {
  EXPECT_EQ(decode_encoded_words("=?UTF-8?B?w6k=?= caf\xe9"), "\xC3\xA9 caf\xC3\xA9");
  EXPECT_EQ(decode_encoded_words("\x93quoted\x94 =?iso-8859-1?q?caf=E9?="),
            "\xE2\x80\x9Cquoted\xE2\x80\x9D caf\xC3\xA9");
  EXPECT_EQ(decode_encoded_words("\xff not UTF-8"), "\xC3\xBF not UTF-8");
  EXPECT_EQ(decode_encoded_words("a\x81z"), "a\xEF\xBF\xBDz");  // not defined in windows-1252
  // A value that is UTF-8 (RFC 6532) keeps its octets.
  EXPECT_EQ(decode_encoded_words("caf\xC3\xA9 =?UTF-8?B?w6k=?="), "caf\xC3\xA9 \xC3\xA9");
}

// What the page shows of such a field: the words decoded, the octets around them as they were
// sent (the page shows those that are not UTF-8 as \xHH, marked), in no charset they do not
// declare. A word's text is whole UTF-8 characters: an octet beside it never joins one of them.
TEST(WebCharset, DecodingOnlyTheWordsLeavesTheOctetsAroundThem) {
  EXPECT_EQ(decode_encoded_words_only("=?UTF-8?B?w6k=?= caf\xe9"), "\xC3\xA9 caf\xe9");
  EXPECT_EQ(decode_encoded_words_only("\x93quoted\x94 =?iso-8859-1?q?caf=E9?="),
            "\x93quoted\x94 caf\xC3\xA9");
  EXPECT_EQ(decode_encoded_words_only("\xff not UTF-8"), "\xff not UTF-8");
  // A lead octet before a word whose octets alone are no character: U+FFFD, not "\xC3\xA9".
  EXPECT_EQ(decode_encoded_words_only("\xC3=?UTF-8?B?qQ==?="), "\xC3\xEF\xBF\xBD");
  // Adjacent words still lose the white space between them; a UTF-8 value is as before.
  EXPECT_EQ(decode_encoded_words_only("\xe9 =?utf-8?q?a?= =?utf-8?q?b?="), "\xe9 ab");
  EXPECT_EQ(decode_encoded_words_only("caf\xC3\xA9 =?UTF-8?B?w6k=?="), "caf\xC3\xA9 \xC3\xA9");
}

TEST(WebCharset, MalformedOrUnknownEncodedWordsStayAsWritten) {
  for (const char* v : {"=?x-unknown?Q?a?=", "=?utf-8?X?a?=", "=?utf-8?B?a b?=", "=?utf-8?Q?a",
                        "=?", "a =? b", "=?utf-8?B?***?="})
    EXPECT_EQ(decode_encoded_words(v), v) << v;
  EXPECT_EQ(decode_encoded_words("plain text, no words"), "plain text, no words");
}

}  // namespace
}  // namespace mailtap::tools::web
