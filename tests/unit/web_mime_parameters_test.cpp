// The parameters of MIME header fields as the message view reads them (tools/web/
// mime_parameters.hpp): quoted-pairs in quoted strings, and RFC 2231's forms of a file name
// that is not ASCII, as mail programs send them.
#include "tools/web/mime_parameters.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tools/web/mime.hpp"

namespace mailtap::tools::web {
namespace {

// What the message view makes of a part with these header fields.
MimePart part_with(std::vector<MimeHeader> headers) {
  std::string boundary;
  return describe_entity(headers, boundary);
}

MimePart attachment(std::string_view disposition) {
  return part_with(
      {{"Content-Type", "application/pdf"}, {"Content-Disposition", std::string(disposition)}});
}

TEST(WebMimeParameters, AQuotedPairIsTheOctetAfterTheBackslash) {
  EXPECT_EQ(attachment(R"(attachment; filename="a\"b.txt")").filename, "a\"b.txt");
  EXPECT_EQ(attachment(R"(attachment; filename="C:\\x\\y.txt")").filename, R"(C:\x\y.txt)");
  // An escaped quote does not end the string: the ';' after it is still inside.
  EXPECT_EQ(attachment(R"(attachment; filename="a\";b.txt"; size=3)").filename, "a\";b.txt");
  // Outside a quoted string a backslash is an octet like any other.
  EXPECT_EQ(attachment(R"(attachment; filename=a\b.txt)").filename, R"(a\b.txt)");
}

// Python's email package (add_attachment(..., filename="€ report.pdf")), Thunderbird, Outlook.
TEST(WebMimeParameters, AnRfc2231NameIsDecodedFromItsCharset) {
  const MimePart p = attachment("attachment; filename*=utf-8''%E2%82%AC%20report.pdf");
  EXPECT_EQ(p.filename, "€ report.pdf");
  EXPECT_TRUE(p.attachment);
  EXPECT_EQ(attachment("attachment; filename*=ISO-8859-1'de'M%E4rz.pdf").filename, "März.pdf");
  // Content-Type's name*= when the disposition has no name.
  EXPECT_EQ(
      part_with({{"Content-Type", "application/pdf; name*=UTF-8''%C3%A9t%C3%A9.pdf"}}).filename,
      "été.pdf");
}

TEST(WebMimeParameters, TheRfc2231NameWinsOverThePlainOne) {
  EXPECT_EQ(attachment("attachment; filename=\"EUR report.pdf\"; "
                       "filename*=UTF-8''%E2%82%AC%20report.pdf")
                .filename,
            "€ report.pdf");
  EXPECT_EQ(attachment("attachment; filename*=UTF-8''%E2%82%AC.pdf; filename=\"EUR.pdf\"").filename,
            "€.pdf");
}

// Long names are cut into numbered sections; only those marked '*' are percent-encoded, and the
// first says the charset. They may come in any order.
TEST(WebMimeParameters, Rfc2231SectionsAreJoinedInOrder) {
  EXPECT_EQ(attachment("attachment; filename*0*=UTF-8''%E2%82%AC%20a; filename*1*=%C3%A9; "
                       "filename*2=\" long name.pdf\"")
                .filename,
            "€ aé long name.pdf");
  EXPECT_EQ(attachment("attachment; filename*1=b.txt; filename*0=a").filename, "ab.txt");
  // A gap ends the name: what follows it is not part of it.
  EXPECT_EQ(attachment("attachment; filename*0=a; filename*2=c").filename, "a");
  // Leading zeros are not section numbers (RFC 2231 section 3).
  EXPECT_EQ(attachment("attachment; filename*0=a; filename*01=b").filename, "a");
}

TEST(WebMimeParameters, AnUnknownCharsetFallsBackToThePlainName) {
  EXPECT_EQ(attachment("attachment; filename=\"plain.pdf\"; filename*=x-no-such''%FF.pdf").filename,
            "plain.pdf");
  // With no plain name, the octets as they are (the page shows them as octets).
  EXPECT_EQ(attachment("attachment; filename*=x-no-such''%FFa.pdf").filename,
            "\xff"
            "a.pdf");
  // No charset given: the octets.
  EXPECT_EQ(attachment("attachment; filename*=''a%20b.pdf").filename, "a b.pdf");
  // Malformed escapes stay as written.
  EXPECT_EQ(attachment("attachment; filename*=UTF-8''50%.pdf%zz").filename, "50%.pdf%zz");
}

TEST(WebMimeParameters, Rfc2231NamesAreMarkedAsText) {
  EXPECT_TRUE(attachment("attachment; filename*=UTF-8''%3D%3Fa%3F%3D").filename_is_text);
  EXPECT_FALSE(attachment("attachment; filename=\"=?UTF-8?B?w6k=?=\"").filename_is_text);
}

// Octets that are not UTF-8 (no charset, or one iconv does not know) are not text yet: they take
// the path of a plain name's octets, so the page decodes them (windows-1252) as it does those.
TEST(WebMimeParameters, Rfc2231OctetsThatAreNotUtf8AreNotMarkedAsText) {
  EXPECT_FALSE(attachment("attachment; filename*=x-no-such''%FFa.pdf").filename_is_text);
  EXPECT_FALSE(attachment("attachment; filename*=''caf%E9.pdf").filename_is_text);
  EXPECT_FALSE(attachment("attachment; filename*0=\"caf\xe9\"; filename*1=.pdf").filename_is_text);
  // UTF-8 octets are text whatever the charset says.
  EXPECT_TRUE(attachment("attachment; filename*=''caf%C3%A9.pdf").filename_is_text);
  EXPECT_TRUE(attachment("attachment; filename*=x-no-such''caf%C3%A9.pdf").filename_is_text);
}

TEST(WebMimeParameters, CharsetAndBoundaryAreUnquoted) {
  EXPECT_EQ(part_with({{"Content-Type", R"(text/plain; charset="ISO-8859-1")"}}).charset,
            "iso-8859-1");
  std::string boundary;
  describe_entity({{"Content-Type", R"(multipart/mixed; boundary="a\"b"; x=1)"}}, boundary);
  EXPECT_EQ(boundary, "a\"b");
}

TEST(WebMimeParameters, ParametersAreMatchedByTheirWholeName) {
  EXPECT_EQ(mime_parameter("attachment; xfilename=a; filename=b", "filename"), "b");
  EXPECT_EQ(mime_parameter("attachment; FileName=b", "filename"), "b");
  EXPECT_EQ(mime_parameter("attachment; filename=b; filename=c", "filename"), "b");
  EXPECT_EQ(mime_parameter("attachment", "filename"), "");
  EXPECT_EQ(mime_parameter("attachment; filename", "filename"), "");
  EXPECT_EQ(mime_text_parameter("a; filenamex*=UTF-8''x", "filename").value, "");
}

// A field of many sections, or of sections numbered far apart, costs one pass over it.
TEST(WebMimeParameters, ManySectionsAreJoinedInOnePass) {
  std::string field = "attachment";
  std::string expected;
  for (int i = 19999; i >= 0; --i) field += "; filename*" + std::to_string(i) + "=x";
  expected.assign(20000, 'x');
  EXPECT_EQ(mime_text_parameter(field, "filename").value, expected);
  EXPECT_EQ(mime_text_parameter("a; filename*0=x; filename*999999=y", "filename").value, "x");
  EXPECT_EQ(mime_text_parameter("a; filename*0=x; filename*9999999=y", "filename").value, "x");
}

}  // namespace
}  // namespace mailtap::tools::web
