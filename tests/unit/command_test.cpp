// Command lines are read the way a tokenizing server (Postfix smtpd_token) reads them, so that
// mailtap and the server agree on which command a line is.
#include "proxy/smtp/command.hpp"

#include <gtest/gtest.h>

namespace mailtap::smtp {
namespace {

TEST(ParseCommand, VerbIsUpperCasedAndArgsFollow) {
  const Command c = parse_command("mail FROM:<a@b> SIZE=10\r\n");
  EXPECT_EQ(c.verb, "MAIL");
  EXPECT_EQ(c.args, "FROM:<a@b> SIZE=10");
}

TEST(ParseCommand, NoArgsAndEmptyLine) {
  EXPECT_EQ(parse_command("QUIT\r\n").verb, "QUIT");
  EXPECT_EQ(parse_command("QUIT\r\n").args, "");
  EXPECT_EQ(parse_command("\r\n").verb, "");
  EXPECT_EQ(parse_command("").verb, "");
}

TEST(ParseCommand, LeadingAndRepeatedSeparatorsAreSkippedLikeAServer) {
  EXPECT_EQ(parse_command("  AUTH PLAIN xyz\r\n").verb, "AUTH");
  EXPECT_EQ(parse_command("AUTH\tPLAIN xyz\r\n").verb, "AUTH");
  EXPECT_EQ(parse_command("\tdata\r\n").verb, "DATA");
  const Command c = parse_command("BDAT  10   LAST\r\n");
  EXPECT_EQ(c.verb, "BDAT");
  EXPECT_EQ(c.args, "10   LAST");
}

TEST(ParseCommand, VerbIsReadOnceIntoItsKind) {
  EXPECT_EQ(parse_command("mail FROM:<a@b>\r\n").id, Verb::mail);
  EXPECT_EQ(parse_command("  StartTLS\r\n").id, Verb::starttls);
  EXPECT_EQ(parse_command("\tbdat 10 LAST\r\n").id, Verb::bdat);
  EXPECT_EQ(parse_command("XCLIENT NAME=x\r\n").id, Verb::other);
  EXPECT_EQ(parse_command("MAILX\r\n").id, Verb::other);
  EXPECT_EQ(parse_command("\r\n").id, Verb::other);
  EXPECT_EQ(verb_of("QUIT"), Verb::quit);
  EXPECT_EQ(verb_of("quit"), Verb::other);  // parse_command upper-cases first
}

TEST(ParseBdatArgs, Rfc3030Forms) {
  BdatArgs a = parse_bdat_args("1000");
  ASSERT_TRUE(a);
  EXPECT_EQ(a.size, 1000u);
  EXPECT_FALSE(a.last);
  a = parse_bdat_args("0 LAST");
  ASSERT_TRUE(a);
  EXPECT_EQ(a.size, 0u);
  EXPECT_TRUE(a.last);
  a = parse_bdat_args("12 last");
  ASSERT_TRUE(a);
  EXPECT_TRUE(a.last);
}

// BDAT is the one command whose line decides where data ends without waiting for the server, so
// only RFC 3030's own spelling is taken: servers differ on the rest (Postfix tokenizes on any
// white space; Exim matches a verb only before SP or the line's end and answers 500).
TEST(ParseBdatLine, OnlyTheStrictRfc3030FormFramesAChunk) {
  BdatArgs a = parse_bdat_line("BDAT 10 LAST\r\n");
  ASSERT_TRUE(a);
  EXPECT_EQ(a.size, 10u);
  EXPECT_TRUE(a.last);
  a = parse_bdat_line("bdat 7 last\r\n");  // verbs and LAST are case-insensitive (RFC 5321 2.4)
  ASSERT_TRUE(a);
  EXPECT_EQ(a.size, 7u);
  EXPECT_TRUE(a.last);
  a = parse_bdat_line("BDAT 0\r\n");
  ASSERT_TRUE(a);
  EXPECT_FALSE(a.last);
  for (std::string_view bad :
       {"BDAT\t10 LAST\r\n", " BDAT 10 LAST\r\n", "BDAT\v10 LAST\r\n", "\tBDAT 10\r\n",
        "bdat\f10\r\n", "BDAT  10\r\n", "BDAT 10  LAST\r\n", "BDAT 10\tLAST\r\n",
        "BDAT 10 LAST \r\n", "BDAT 10 \r\n", "BDAT\r\n", "BDAT \r\n", "BDAT 10 LAST\t\r\n"}) {
    a = parse_bdat_line(bad);
    EXPECT_EQ(a.problem, BdatArgs::Problem::malformed) << testing::PrintToString(bad);
  }
}

TEST(ParseBdatArgs, AnythingElseIsRefused) {
  for (std::string_view bad :
       {"", "LAST", "-1", "+1", "1x", "0x10", "10 FIRST", "10 LAST x", " ", "\xd9\xa3"}) {
    const BdatArgs a = parse_bdat_args(bad);
    EXPECT_EQ(a.problem, BdatArgs::Problem::malformed) << testing::PrintToString(bad);
    EXPECT_FALSE(a) << testing::PrintToString(bad);
  }
}

// RFC 3030: chunk-size = 1*DIGIT, no length limit. Postfix takes "0000000000000000103" as 103:
// mailtap must frame the chunk where the server does.
TEST(ParseBdatArgs, AnyNumberOfDigitsLeadingZerosIncluded) {
  BdatArgs a = parse_bdat_args("0000000000000000103 LAST");
  ASSERT_TRUE(a);
  EXPECT_EQ(a.size, 103u);
  EXPECT_TRUE(a.last);
  a = parse_bdat_args(std::string(500, '0'));
  ASSERT_TRUE(a);
  EXPECT_EQ(a.size, 0u);
  a = parse_bdat_args(std::string(100, '0') + "2147483647");
  ASSERT_TRUE(a);
  EXPECT_EQ(a.size, 2147483647u);
}

// 2^31 and up: Exim reads the size with sscanf("%u") into a 32-bit unsigned int, so "BDAT
// 4294967318" is a 22-octet chunk there, and a server keeping it in a signed 32-bit int reads
// 2^31 as negative. Framed differently from mailtap, the rest of the "chunk" is read as commands.
TEST(ParseBdatArgs, ASizeOf2To31OrMoreIsNoSizeEveryServerCounts) {
  for (std::string_view big :
       {"2147483648", "4294967296", "4294967318 LAST", "9223372036854775807", "9223372036854775808",
        "18446744073709551615 LAST", "18446744073709551616", "99999999999999999999 LAST",
        "123456789012345678901234567890", "000000000000000000002147483648"}) {
    const BdatArgs a = parse_bdat_args(big);
    EXPECT_EQ(a.problem, BdatArgs::Problem::size_too_large) << big;
    EXPECT_FALSE(a) << big;
  }
  EXPECT_EQ(bdat_size_max, 2147483647u);
  // Syntax first: a long size followed by junk is malformed, as for any server.
  EXPECT_EQ(parse_bdat_args("99999999999999999999 FIRST").problem, BdatArgs::Problem::malformed);
}

TEST(Iequals, AsciiCaseInsensitive) {
  EXPECT_TRUE(iequals("StartTLS", "STARTTLS"));
  EXPECT_FALSE(iequals("STARTTLS", "STARTTLS "));
  EXPECT_FALSE(iequals("\xe9", "\xc9"));  // no locale-dependent folding
}

}  // namespace
}  // namespace mailtap::smtp
