#include "proxy/smtp/credential_shape.hpp"

#include <gtest/gtest.h>

#include "proxy/smtp/base64.hpp"
#include "tests/unit/dialogue_harness.hpp"
#include "tests/unit/plain_shaped_octets_for_tests.hpp"

namespace mailtap::smtp {
namespace {

using namespace std::string_literals;

TEST(CredentialShape, PlainMessage) {
  std::string user;
  EXPECT_TRUE(is_plain_message(std::string("\0u\0p", 4), user));
  EXPECT_EQ(user, "u");
  EXPECT_TRUE(is_plain_message(std::string("admin\0u\0p", 9), user));
  EXPECT_FALSE(is_plain_message(std::string("\0\0p", 3), user));
  EXPECT_FALSE(is_plain_message(std::string("\0u\0", 3), user));
  EXPECT_FALSE(is_plain_message(std::string("\0u\0p\0", 5), user));
  EXPECT_FALSE(is_plain_message(std::string("\0u\0p\n", 5), user));
  EXPECT_FALSE(is_plain_message("no nul at all", user));
}

// RFC 4616: the three texts are UTF-8, so any user name or password a person types is one.
TEST(CredentialShape, PlainMessageWithUtf8Texts) {
  std::string user;
  EXPECT_TRUE(is_plain_message("\0jörg\0pässwörd-§"s, user));
  EXPECT_EQ(user, "jörg");
  EXPECT_TRUE(is_plain_message("admin\0用户\0密码🔑"s, user));
  EXPECT_EQ(user, "用户");
  EXPECT_TRUE(is_plain_message("ünïcode\0u\0p"s, user));
}

// Octets that are not UTF-8, or a C1 control, are no text anyone typed.
TEST(CredentialShape, PlainMessageRefusesWhatIsNotUtf8Text) {
  std::string user;
  EXPECT_FALSE(is_plain_message("\0alice\0p\xe4ss"s, user));       // Latin-1
  EXPECT_FALSE(is_plain_message("\0al\xffice\0pass"s, user));      // no UTF-8 at all
  EXPECT_FALSE(is_plain_message("\xc3\0alice\0pass"s, user));      // truncated sequence
  EXPECT_FALSE(is_plain_message("\0alice\0pa\xc2\x85ss"s, user));  // U+0085, a C1 control
  EXPECT_FALSE(is_plain_message("\0alice\0pa\x7fss"s, user));
  // The byte shape, which the dialogue redacts by, takes them all but the controls.
  EXPECT_TRUE(has_plain_message_shape("\0alice\0p\xe4ss"s));
  EXPECT_TRUE(has_plain_message_shape("\0al\xffice\0pass"s));
  EXPECT_FALSE(has_plain_message_shape("\0alice\0pa\x7fss"s));
}

// What made `mailtap audit` report attachments as leaked credentials: random octets with two NULs.
TEST(CredentialShape, RandomOctetsWithTwoNulsAreNoPlainMessage) {
  for (const std::string& line : mailtap::testing::random_lines_of_plain_shape(6)) {
    SCOPED_TRACE(base64_encode(line));
    std::string user;
    EXPECT_FALSE(is_plain_message(line, user));
    // Still redacted should such a line reach the server as a command: unknown means secret.
    EXPECT_TRUE(is_encoded_credential(base64_encode(line)));
  }
}

TEST(CredentialShape, BearerToken) {
  std::size_t at = 0;
  EXPECT_TRUE(
      find_bearer_token("user=a\x01"
                        "auth=Bearer ya29.tok\x01\x01",
                        at));
  EXPECT_EQ(at, 7U);
  EXPECT_FALSE(find_bearer_token("auth=Bearer <redacted 8 bytes>", at));
  EXPECT_FALSE(find_bearer_token("auth=Bearer \x01", at));
  EXPECT_FALSE(find_bearer_token("no token", at));
}

// The redactor hides whatever follows "Bearer ", extra spaces included: audit and the check of a
// pasted line must find a token behind a run of spaces too.
TEST(CredentialShape, BearerTokenAfterARunOfSpaces) {
  std::size_t at = 0;
  const std::string response = "user=a\x01"s + "auth=Bearer  ya29.tok\x01\x01";
  EXPECT_TRUE(find_bearer_token(response, at));
  EXPECT_EQ(at, 7U);
  EXPECT_TRUE(is_encoded_credential(base64_encode(response)));
  EXPECT_TRUE(find_bearer_token("auth=bearer    ya29.tok", at));
  EXPECT_FALSE(find_bearer_token("auth=Bearer  <redacted 8 bytes>", at));
  EXPECT_FALSE(find_bearer_token("auth=Bearer   \x01", at));
  EXPECT_FALSE(find_bearer_token("auth=Bearer   ", at));
  EXPECT_FALSE(find_bearer_token("auth=Bearer  \r\n", at));
}

// An auth scheme is case-insensitive (RFC 7235 §2.1): the redactor removes a `bearer` token, so
// audit and the check of a pasted line must find one too.
TEST(CredentialShape, BearerSchemeInAnyCase) {
  std::size_t at = 0;
  for (const char* scheme : {"bearer", "BEARER", "bEaReR"}) {
    const std::string response = "user=a\x01"s + "auth=" + scheme + " ya29.tok\x01\x01";
    EXPECT_TRUE(find_bearer_token(response, at)) << scheme;
    EXPECT_EQ(at, 7U);
    EXPECT_TRUE(is_encoded_credential(base64_encode(response))) << scheme;
    EXPECT_EQ(bearer_scheme_length(std::string(scheme) + " t"), 7U);
  }
  EXPECT_EQ(bearer_scheme_length("Basic dXNlcg=="), 0U);
  EXPECT_FALSE(find_bearer_token("auth=bearer <redacted 8 bytes>", at));
}

// A line pasted where the server reads commands: a credential by its shape alone.
TEST(CredentialShape, EncodedCredentialLines) {
  EXPECT_TRUE(is_encoded_credential(base64_encode(std::string("\0alice\0s3cret-pw", 16))));
  EXPECT_TRUE(
      is_encoded_credential(base64_encode("user=carol@gmail.com\x01"
                                          "auth=Bearer ya29.tok\x01\x01")));
  EXPECT_TRUE(
      is_encoded_credential(base64_encode("n,a=carol@gmail.com,\x01"
                                          "auth=Bearer ya29.tok\x01\x01")));
  EXPECT_FALSE(is_encoded_credential("NOOP"));
  EXPECT_FALSE(is_encoded_credential("MAIL FROM:<a@b>"));
  EXPECT_FALSE(is_encoded_credential(base64_encode("just some text")));
  EXPECT_FALSE(is_encoded_credential(base64_encode(std::string("\0alice\0", 7))));
  EXPECT_FALSE(is_encoded_credential("AGFsaWNlAHB3 extra"));
}

// A blob in the URL-safe alphabet (RFC 4648 §5), or without its padding, is the same blob.
TEST(CredentialShape, EncodedCredentialInTheUrlSafeAlphabetOrUnpadded) {
  // "\0alice\0p>?~" encodes with "+" and "/": "AGFsaWNlAHA+P34=".
  const std::string blob = base64_encode("\0alice\0p>?~"s);
  ASSERT_NE(blob.find_first_of("+/"), std::string::npos) << blob;
  std::string url = blob;
  for (char& c : url) c = c == '+' ? '-' : c == '/' ? '_' : c;
  EXPECT_TRUE(is_encoded_credential(url));
  EXPECT_TRUE(is_encoded_credential(url.substr(0, url.find('='))));
  EXPECT_TRUE(is_encoded_credential(blob.substr(0, blob.find('='))));
  EXPECT_FALSE(is_encoded_credential("AGFsaWNlAHA+P34=!"));
  EXPECT_FALSE(is_encoded_credential("well-known_name"));
}

// The words of a text that decode to a well-formed credential, read as a pasted word is (either
// alphabet, padding optional): what audit reports outside a message body.
TEST(CredentialShape, CredentialWordsInEitherAlphabet) {
  const std::string blob = base64_encode("\0alice\0p>?~"s);  // "AGFsaWNlAHA+P34="
  std::string url = blob;
  for (char& c : url) c = c == '+' ? '-' : c == '/' ? '_' : c;
  const std::string unpadded = url.substr(0, url.find('='));
  for (const std::string& word : {blob, url, unpadded}) {
    SCOPED_TRACE(word);
    const std::string text = "x " + word + " y";
    const std::vector<CredentialWord> found = find_credential_words(text);
    ASSERT_EQ(found.size(), 1u);
    EXPECT_EQ(found[0].at, 2u);
    EXPECT_EQ(found[0].size, word.size());
    EXPECT_TRUE(found[0].plain);
    EXPECT_EQ(found[0].user, "alice");
    EXPECT_FALSE(found[0].bearer);
    ASSERT_TRUE(decode_base64_word(word));
    EXPECT_EQ(decode_base64_word(word)->view(), "\0alice\0p>?~"s);
  }
  const std::string xoauth2 = base64_encode("user=a@b\x01"s + "auth=Bearer ya29.tok\x01\x01");
  const auto bearer = find_credential_words(xoauth2);
  ASSERT_EQ(bearer.size(), 1u);
  EXPECT_TRUE(bearer[0].bearer);
  EXPECT_FALSE(bearer[0].plain);
  // Only well-formed: a hand-made blob, text and short words are none.
  EXPECT_TRUE(find_credential_words(base64_encode("alice\0PW"s)).empty());
  EXPECT_TRUE(find_credential_words("EHLO mail-ed1-f54.google.com well-known_name").empty());
  EXPECT_TRUE(find_credential_words(base64_encode("just some text")).empty());
  EXPECT_FALSE(decode_base64_word("AGFsaWNlAHA+P34=!"));
}

// What of a line with a verb is kept out of the record: the credential, not the verb or the
// rest (secrets exploration finding 4).
TEST(CredentialShape, CredentialSpansOfALineWithAVerb) {
  const std::string blob = base64_encode("\0alice\0hunter2-secret"s);
  using Spans = std::vector<std::pair<std::size_t, std::size_t>>;
  EXPECT_EQ(credential_spans("VRFY " + blob), (Spans{{5, 5 + blob.size()}}));
  EXPECT_EQ(credential_spans("HELP AUTH PLAIN " + blob), (Spans{{16, 16 + blob.size()}}));
  EXPECT_EQ(credential_spans("MAIL FROM:<a@b> AUTH=" + blob), (Spans{{21, 21 + blob.size()}}));
  EXPECT_EQ(credential_spans("MAIL FROM:<a@b> AUTH=" + blob + " SIZE=10"),
            (Spans{{21, 21 + blob.size()}}));
  EXPECT_EQ(credential_spans("HELP auth=Bearer  ya29.tok x"), (Spans{{5, 26}}));
  EXPECT_EQ(credential_spans("NOOP x,\"" + blob + "\";"), (Spans{{8, 8 + blob.size()}}));
  // A run of base64 letters inside a longer word is no pasted credential, whatever it decodes
  // to: these decode to a PLAIN message's byte shape by chance (review of d392fce).
  ASSERT_TRUE(has_plain_message_shape(decode_base64_word("AC176ACB")->view()));
  ASSERT_TRUE(has_plain_message_shape(decode_base64_word("ALNQAHE")->view()));
  for (const std::string_view line :
       {"EHLO mail-ed1-f54.google.com", "MAIL FROM:<a@b> SIZE=1000 AUTH=<>", "RCPT TO:<b@c>",
        "HELP auth=Bearer <redacted 8 bytes>", "VRFY QUJDREVGR0g=",
        "MAIL FROM:<bounce-AC176ACB@example.com> SIZE=1234", "EHLO DESKTOP-ALNQAHE"}) {
    SCOPED_TRACE(line);
    EXPECT_TRUE(credential_spans(line).empty());
  }
  // A line without a verb holding one such word is a credential line too.
  EXPECT_TRUE(line_holds_credential("X=" + blob));
}

// The dialogue relays a line with a verb as typed and records it with its credential redacted,
// the verb kept; a message keeps its MAIL line so too.
TEST(CredentialShape, ABlobInALineWithAVerbIsKeptOutOfTheRecord) {
  using namespace testing;
  const std::string secret = "hunter2-secret";
  const std::string blob = base64_encode("\0alice\0"s + secret);
  const std::string redacted = "[<redacted " + std::to_string(blob.size()) + " bytes>]";
  const std::string vrfy = "VRFY " + blob + "\r\n";
  const std::string mail = "MAIL FROM:<a@b> AUTH=" + blob + "\r\n";
  const std::string rcpt = "RCPT TO:<c@d> X=" + blob + "\r\n";
  const Result r = run_all_splits({
      client(vrfy + mail + rcpt + "DATA\r\n"),
      // Postfix echoes a VRFY's argument: "252 2.0.0 <blob>".
      upstream("252-2.0.0 " + blob + "\r\n252 2.0.0 <" + blob +
               ">\r\n250 ok\r\n250 ok\r\n354 go\r\n"),
      client("x\r\n.\r\n"),
      upstream("250 queued\r\n"),
  });
  EXPECT_EQ(r.to_upstream, vrfy + mail + rcpt + "DATA\r\nx\r\n.\r\n");
  expect_secret_absent(r, blob);
  expect_secret_absent(r, secret);
  const auto commands = find_events(r, Direction::client_to_upstream, EventKind::command);
  ASSERT_GE(commands.size(), 2u);
  EXPECT_EQ(commands[0]->bytes, "VRFY " + redacted + "\r\n");
  EXPECT_EQ(commands[0]->verb, "VRFY");
  EXPECT_TRUE(commands[0]->redacted);
  EXPECT_EQ(commands[0]->wire_size, vrfy.size());
  EXPECT_EQ(commands[1]->bytes, "MAIL FROM:<a@b> AUTH=" + redacted + "\r\n");
  EXPECT_EQ(commands[1]->verb, "MAIL");
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].mail_from, "MAIL FROM:<a@b> AUTH=" + redacted);
  ASSERT_EQ(r.messages[0].recipients.size(), 1u);
  EXPECT_EQ(r.messages[0].recipients[0].command, "RCPT TO:<c@d> X=" + redacted);
  // The reply still names its command.
  const auto replies = find_events(r, Direction::upstream_to_client, EventKind::reply);
  ASSERT_FALSE(replies.empty());
  EXPECT_EQ(replies[0]->verb, "VRFY");
  // ...and keeps the echoed credential out of the record as its command's (the client gets it).
  EXPECT_EQ(replies[0]->bytes, "252-2.0.0 " + redacted + "\r\n252 2.0.0 <" + redacted + ">\r\n");
  EXPECT_TRUE(replies[0]->redacted);
  EXPECT_EQ(replies[0]->reply_code, 252);
  EXPECT_NE(r.to_client.find("252 2.0.0 <" + blob + ">\r\n"), std::string::npos);
}

// A line without a verb: the blob with spaces around it or in it, or junk after it (secrets
// exploration finding 1).
TEST(CredentialShape, LinesHoldingAPastedBlob) {
  const std::string blob = base64_encode("\0alice\0hunter2-secret"s);
  const std::string xoauth2 =
      base64_encode("user=a@b\x01"s + "auth=Bearer ya29.tok-secret\x01\x01");
  for (const std::string& line :
       {blob, " " + blob, "\t" + blob, blob + " ", "  " + xoauth2, "\t" + xoauth2, blob + " junk",
        blob.substr(0, 12) + " " + blob.substr(12), "   " + blob + "   "}) {
    SCOPED_TRACE(line);
    EXPECT_TRUE(line_holds_credential(line));
  }
  for (const std::string_view line :
       {"", "   ", "HELLO world", "junk AGFsaWNlAA==", "just some text with an auth=word in it",
        "QUJDREVGR0g= SUpLTE1OT1A="}) {
    SCOPED_TRACE(line);
    EXPECT_FALSE(line_holds_credential(line));
  }
}

// A blob behind a mistyped AUTH: the line has no verb (finding 2).
TEST(CredentialShape, LinesHoldingABlobBehindAMistypedAuth) {
  const std::string blob = base64_encode("\0alice\0hunter2-secret"s);
  for (const std::string& line :
       {"AUHT PLAIN " + blob, "AUTHX PLAIN " + blob, "AUTH=PLAIN " + blob}) {
    SCOPED_TRACE(line);
    EXPECT_TRUE(line_holds_credential(line));
  }
}

// A bearer token in clear, not base64 (finding 3).
TEST(CredentialShape, LinesHoldingABearerTokenInClear) {
  EXPECT_TRUE(line_holds_credential("auth=Bearer ya29.tok-secret"));
  EXPECT_TRUE(line_holds_credential(" user=a@b\x01"s + "auth=Bearer ya29.tok\x01\x01"));
  EXPECT_TRUE(line_holds_credential("AUTH XOAUTH2 auth=bearer ya29.tok"));
  EXPECT_FALSE(line_holds_credential("auth=Bearer <redacted 8 bytes>"));
  EXPECT_FALSE(line_holds_credential("auth=Bearer"));
}

// A PLAIN blob built by hand and slightly wrong holds the password all the same (finding 5).
TEST(CredentialShape, HandMadePlainBlobs) {
  for (const std::string& decoded :
       {"alice\0PW"s, "\0\0PW"s, "\0alice\0PW\0extra"s, "\0PW\0PW"s, "\0alice\0p\xe4ss"s}) {
    SCOPED_TRACE(base64_encode(decoded));
    EXPECT_TRUE(has_hand_made_plain_shape(decoded));
    EXPECT_TRUE(line_holds_credential(base64_encode(decoded)));
  }
  for (const std::string& decoded :
       {"no nul"s, "\0alice\0"s, "\0a\0b\0c\0d"s, "\0alice\0p\nw"s, ""s}) {
    SCOPED_TRACE(base64_encode(decoded));
    EXPECT_FALSE(has_hand_made_plain_shape(decoded));
  }
  // audit's test stays the RFC 4616 shape: these are no PLAIN message.
  std::string user;
  EXPECT_FALSE(has_plain_message_shape("alice\0PW"s));
  EXPECT_FALSE(is_plain_message("\0\0PW"s, user));
}

// A password is whatever the user chose: UTF-8 beyond ASCII, or octets in a legacy charset.
TEST(CredentialShape, EncodedCredentialLinesWithPasswordsBeyondAscii) {
  EXPECT_TRUE(is_encoded_credential(base64_encode("\0jörg\0pässwörd-§"s)));
  EXPECT_TRUE(is_encoded_credential(base64_encode("\0用户\0密码🔑"s)));
  EXPECT_TRUE(is_encoded_credential(base64_encode("\0alice\0p\xe4ss"s)));  // Latin-1
}

// The dialogue's rule for a blob pasted as a command keeps such passwords out of the record.
TEST(CredentialShape, APastedBlobWithAPasswordBeyondAsciiIsNotRecorded) {
  using namespace testing;
  for (const std::string& password : {"pässwörd-§"s, "密码🔑"s, "p\xe4ss-latin1"s}) {
    SCOPED_TRACE(printable(password));
    const std::string blob = base64_encode("\0alice\0"s + password);
    const Result r = run_all_splits({
        client(blob + "\r\nNOOP\r\n"),
        upstream("500 5.5.2 Error: command not recognized\r\n250 ok\r\n"),
    });
    EXPECT_EQ(r.to_upstream, blob + "\r\nNOOP\r\n");
    expect_secret_absent(r, blob);
    expect_secret_absent(r, password);
    const auto commands = find_events(r, Direction::client_to_upstream, EventKind::command);
    ASSERT_EQ(commands.size(), 2u);
    EXPECT_TRUE(commands[0]->redacted);
    EXPECT_FALSE(commands[1]->redacted);
  }
}

// The dialogue keeps such a line out of the record, as it does the bare blob.
TEST(CredentialShape, AMistypedOrPaddedBlobIsNotRecorded) {
  using namespace testing;
  const std::string password = "hunter2-secret";
  const std::string blob = base64_encode("\0alice\0"s + password);
  for (const std::string& line : {" " + blob + " ", blob + " junk", "AUHT PLAIN " + blob}) {
    SCOPED_TRACE(line);
    const Result r = run_all_splits({
        client(line + "\r\nNOOP\r\n"),
        upstream("500 5.5.2 Error: command not recognized\r\n250 ok\r\n"),
    });
    expect_secret_absent(r, blob);
    const auto commands = find_events(r, Direction::client_to_upstream, EventKind::command);
    ASSERT_EQ(commands.size(), 2u);
    EXPECT_TRUE(commands[0]->redacted);
    EXPECT_FALSE(commands[1]->redacted);
  }
}

}  // namespace
}  // namespace mailtap::smtp
