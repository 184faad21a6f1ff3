// Dialogue: TLS towards the client (--local-tls). mailtap's own STARTTLS offer in the EHLO
// reply, the 220 and the handshake the session does, the injection rule (bytes after STARTTLS
// before the handshake end the session), AUTH only inside TLS, and EHLO again after TLS. Each
// scenario run whole, byte by byte and split at every position.
#include <gtest/gtest.h>

#include <string>

#include "proxy/smtp/capabilities.hpp"
#include "proxy/smtp/dialogue.hpp"
#include "tests/unit/dialogue_harness.hpp"

namespace mailtap::smtp {
namespace {

using namespace testing;
using namespace std::string_literals;

// The upstream's EHLO reply over its TLS link: AUTH offered, no STARTTLS.
const std::string upstream_ehlo =
    "250-up.example\r\n250-PIPELINING\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n";
const std::string offered_ehlo =
    "250-up.example\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 STARTTLS\r\n";
const std::string ready = "220 2.0.0 Ready to start TLS\r\n";
const std::string auth_plain = "AUTH PLAIN " + base64_encode("\0alice\0pw-secret"s) + "\r\n";

DialogueOptions local_tls(ClientTls mode) {
  DialogueOptions o = test_options();
  o.client_tls = mode;
  return o;
}

TEST(DialogueClientTls, OffersStartTlsWithholdsAuthThenRelaysInsideTls) {
  const Result r = run_all_splits(
      {
          client(ehlo),
          upstream(upstream_ehlo),
          client("STARTTLS\r\n"),
          client_tls_up(),
          client(ehlo),
          upstream(upstream_ehlo),
          client(auth_plain),
          upstream("235 2.7.0 Authentication successful\r\n"),
      },
      local_tls(ClientTls::starttls));
  EXPECT_EQ(r.client_per_step[1], offered_ehlo);
  EXPECT_EQ(r.client_per_step[2], ready);
  EXPECT_TRUE(r.client_tls_due_per_step[2]) << "the handshake is due once the 220 is out";
  EXPECT_FALSE(r.wants_input_per_step[2]) << "nothing is read until the handshake";
  EXPECT_FALSE(r.client_tls_due_per_step[3]);
  EXPECT_EQ(r.client_per_step[5], upstream_ehlo) << "inside TLS: AUTH offered, no STARTTLS";
  EXPECT_EQ(r.to_upstream, ehlo + ehlo + auth_plain) << "STARTTLS is mailtap's, not relayed";
  EXPECT_EQ(r.auth_user, "alice");
  expect_secret_absent(r, "pw-secret");
  const auto tls = find_events(r, Direction::mailtap_note, EventKind::tls);
  ASSERT_EQ(tls.size(), 1u);
  EXPECT_NE(tls[0]->note.find("TLSv1.3"), std::string::npos) << tls[0]->note;
  const auto local = find_events(r, Direction::mailtap_to_client, EventKind::local_reply);
  ASSERT_EQ(local.size(), 1u);
  EXPECT_EQ(local[0]->bytes, ready);
  EXPECT_EQ(find_events(r, Direction::client_to_mailtap, EventKind::command)[0]->verb, "STARTTLS");
}

TEST(DialogueClientTls, BytesAfterStartTlsBeforeTheHandshakeEndTheSession) {
  const Result r = run_all_splits(
      {
          client(ehlo),
          upstream(upstream_ehlo),
          client("STARTTLS\r\nMAIL FROM:<evil@example>\r\n"),
      },
      local_tls(ClientTls::starttls));
  EXPECT_TRUE(r.finished);
  ASSERT_TRUE(r.ending);
  EXPECT_EQ(r.ending->kind, Ending::Kind::error);
  EXPECT_EQ(r.to_upstream, ehlo) << "the injected command never reaches the upstream";
  EXPECT_EQ(r.client_per_step[2].rfind(ready, 0), 0u);
  EXPECT_NE(r.client_per_step[2].find("421 4.7.0"), std::string::npos) << r.client_per_step[2];
  // What to do instead, not just "closing".
  EXPECT_NE(r.client_per_step[2].find("closing: connect again, and after STARTTLS send nothing "
                                      "until its 220 has come and the TLS handshake is done"),
            std::string::npos)
      << r.client_per_step[2];
  for (const Event& e : r.events) EXPECT_EQ(e.bytes.find("evil"), std::string::npos);
}

TEST(DialogueClientTls, InjectionBehindAPipelinedCommandIsCaughtToo) {
  const Result r = run_all_splits(
      {
          client(ehlo),
          upstream(upstream_ehlo),
          client("NOOP\r\nSTARTTLS\r\nRSET\r\n"),
          upstream("250 2.0.0 Ok\r\n"),
      },
      local_tls(ClientTls::starttls));
  EXPECT_TRUE(r.finished);
  EXPECT_EQ(r.to_upstream, ehlo + "NOOP\r\n");
  EXPECT_FALSE(r.client_tls_due_per_step.back());
}

TEST(DialogueClientTls, StartTlsPipelinedLastWaitsForEarlierReplies) {
  const Result r = run_all_splits(
      {
          client(ehlo),
          upstream(upstream_ehlo),
          client("NOOP\r\nSTARTTLS\r\n"),
          upstream("250 2.0.0 Ok\r\n"),
          client_tls_up(),
      },
      local_tls(ClientTls::starttls));
  EXPECT_FALSE(r.client_tls_due_per_step[2]);
  EXPECT_EQ(r.client_per_step[3], "250 2.0.0 Ok\r\n" + ready);
  EXPECT_TRUE(r.client_tls_due_per_step[3]);
  EXPECT_FALSE(r.finished);
}

TEST(DialogueClientTls, AuthBeforeStartTlsIsRefusedAndKeptOutOfTheRecord) {
  const Result r = run_all_splits(
      {
          client(ehlo),
          upstream(upstream_ehlo),
          client(auth_plain),
      },
      local_tls(ClientTls::starttls));
  EXPECT_EQ(r.client_per_step[2].rfind("530 5.7.0 mailtap: Must issue a STARTTLS command first", 0),
            0u)
      << r.client_per_step[2];
  EXPECT_EQ(r.to_upstream, ehlo);
  expect_secret_absent(r, "pw-secret");
  EXPECT_TRUE(r.auth_user.empty());
}

TEST(DialogueClientTls, AfterTlsTheClientMustGreetAgain) {
  const Result r = run_all_splits(
      {
          client(ehlo),
          upstream(upstream_ehlo),
          client("STARTTLS\r\n"),
          client_tls_up(),
          client("MAIL FROM:<a@example>\r\n"),
          client(auth_plain),
          client("NOOP\r\n"),
          upstream("250 2.0.0 Ok\r\n"),
      },
      local_tls(ClientTls::starttls));
  EXPECT_EQ(r.client_per_step[4].rfind("503 5.5.1 mailtap: send EHLO again", 0), 0u);
  EXPECT_EQ(r.client_per_step[5].rfind("503 5.5.1 mailtap: send EHLO again", 0), 0u);
  EXPECT_EQ(r.to_upstream, ehlo + "NOOP\r\n");
  expect_secret_absent(r, "pw-secret");
}

// smuggle2-F2: the upstream had the client's EHLO before the client's STARTTLS, which mailtap
// answered itself, so the EHLO RFC 3207 asks for after it is the server's second; OpenSMTPD
// refuses that one (RFC 5321 §4.1.4 lets it). The client is greeted again with the server's
// reply to its earlier EHLO (as inside TLS: AUTH offered) and can send mail; the record keeps
// the server's 503 and says what the client got instead.
TEST(DialogueClientTls, AServerRefusingTheRepeatedEhloStillLetsTheClientSendMail) {
  const std::string already = "503 5.5.1 Invalid command: Already identified\r\n";
  const std::string mail = "MAIL FROM:<a@example>\r\n";
  const Result r = run_all_splits(
      {
          client(ehlo),
          upstream(ehlo_reply_chunking),
          client("STARTTLS\r\n"),
          client_tls_up(),
          client(ehlo),
          upstream(already),
          client(mail + "BDAT 5 LAST\r\nhello"),
          upstream("250 2.1.0 Ok\r\n250 2.0.0 queued\r\n"),
      },
      local_tls(ClientTls::starttls));
  const std::string inside_tls = "250-up.example\r\n250-PIPELINING\r\n250 CHUNKING\r\n";
  EXPECT_EQ(r.client_per_step[5], inside_tls)
      << "the server's earlier EHLO reply, as inside TLS (no STARTTLS), not its 503";
  EXPECT_EQ(r.to_upstream, ehlo + ehlo + mail + "BDAT 5 LAST\r\nhello")
      << "the client's EHLO is still forwarded; MAIL and the chunk follow as usual";
  EXPECT_EQ(r.client_per_step[7], "250 2.1.0 Ok\r\n250 2.0.0 queued\r\n");
  ASSERT_EQ(r.messages.size(), 1u);
  const auto replies = find_events(r, Direction::upstream_to_client, EventKind::reply);
  ASSERT_GE(replies.size(), 2u);
  EXPECT_EQ(replies[1]->bytes, already) << "the server's refusal stays in the record";
  EXPECT_EQ(replies[1]->verb, "EHLO");
  const auto rewrites = find_events(r, Direction::mailtap_to_client, EventKind::rewrite);
  ASSERT_EQ(rewrites.size(), 2u) << r.describe();  // the first: mailtap's STARTTLS offer
  EXPECT_EQ(rewrites[1]->bytes, inside_tls);
  EXPECT_NE(rewrites[1]->note.find("refused the repeated EHLO"), std::string::npos)
      << rewrites[1]->note;
  EXPECT_FALSE(r.finished);
}

// The SIZE in force is the one in the reply to the client's latest EHLO: after its STARTTLS a
// server may advertise another (smaller or larger) limit.
TEST(DialogueClientTls, TheSizeOfTheEhloAfterStartTlsLimitsBdat) {
  const std::string chunk(2000, 'x');
  const std::string send = "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 2000 LAST\r\n" + chunk;
  const auto with_size = [](const std::string& size) {
    return "250-up.example\r\n250-PIPELINING\r\n250-SIZE " + size + "\r\n250 CHUNKING\r\n";
  };
  const Result smaller = run_all_splits(
      {
          client(ehlo),
          upstream(with_size("1000000")),
          client("STARTTLS\r\n"),
          client_tls_up(),
          client(ehlo),
          upstream(with_size("10000")),
          client(send),
          upstream("250 ok\r\n250 ok\r\n"),
      },
      local_tls(ClientTls::starttls), 211);
  EXPECT_EQ(smaller.upstream_per_step[6], "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n");
  EXPECT_NE(smaller.client_per_step[7].find("552 5.3.4 mailtap: this chunk would take the "
                                            "message to 2000 octets, past the server's SIZE 10000"),
            std::string::npos)
      << smaller.client_per_step[7];

  const Result larger = run_all_splits(
      {
          client(ehlo),
          upstream(with_size("10000")),
          client("STARTTLS\r\n"),
          client_tls_up(),
          client(ehlo),
          upstream(with_size("1000000")),
          client(send),
          upstream("250 ok\r\n250 ok\r\n250 queued\r\n"),
      },
      local_tls(ClientTls::starttls), 211);
  EXPECT_EQ(larger.upstream_per_step[6], send);
  ASSERT_EQ(larger.messages.size(), 1u);
}

// A client that said HELO before its STARTTLS gets that reply: the server gave no extensions.
TEST(DialogueClientTls, AfterAHeloTheRefusedEhloGetsTheHeloReply) {
  const std::string helo_reply = "250 up.example\r\n";
  const Result r = run_all_splits(
      {
          client("HELO client.example\r\n"),
          upstream(helo_reply),
          client("STARTTLS\r\n"),
          client_tls_up(),
          client(ehlo),
          upstream("503 5.5.1 Invalid command: Already identified\r\n"),
          client("MAIL FROM:<a@example>\r\n"),
          upstream("250 2.1.0 Ok\r\n"),
      },
      local_tls(ClientTls::starttls));
  EXPECT_EQ(r.client_per_step[5], helo_reply);
  EXPECT_EQ(r.client_per_step[7], "250 2.1.0 Ok\r\n");
  const auto rewrites = find_events(r, Direction::mailtap_to_client, EventKind::rewrite);
  ASSERT_EQ(rewrites.size(), 1u) << r.describe();
  EXPECT_NE(rewrites[0]->note.find("the server's reply to that HELO"), std::string::npos)
      << rewrites[0]->note;
}

// A client that said EHLO before its STARTTLS and HELO after it gets a HELO's reply (RFC 5321
// §4.1.1.1: one line, the server's name), not the earlier EHLO's extension list.
TEST(DialogueClientTls, AHeloAfterAnEhloGetsAOneLineReply) {
  const Result r = run_all_splits(
      {
          client(ehlo),
          upstream(ehlo_reply_chunking),
          client("STARTTLS\r\n"),
          client_tls_up(),
          client("HELO client.example\r\n"),
          upstream("503 5.5.1 Invalid command: Already identified\r\n"),
          client("MAIL FROM:<a@example>\r\n"),
          upstream("250 2.1.0 Ok\r\n"),
      },
      local_tls(ClientTls::starttls));
  EXPECT_EQ(r.client_per_step[5], "250 up.example\r\n");
  EXPECT_EQ(r.client_per_step[7], "250 2.1.0 Ok\r\n");
  const auto rewrites = find_events(r, Direction::mailtap_to_client, EventKind::rewrite);
  ASSERT_EQ(rewrites.size(), 2u) << r.describe();
  EXPECT_EQ(rewrites[1]->bytes, "250 up.example\r\n");
  EXPECT_NE(rewrites[1]->note.find("refused the repeated HELO"), std::string::npos)
      << rewrites[1]->note;
}

// Only a 503 (the "bad sequence" of a server that will not be greeted twice) is answered from
// the earlier reply: any other refusal is the server's word on this EHLO, relayed as it is,
// and the client must still greet again before MAIL.
TEST(DialogueClientTls, OtherRefusalsOfTheRepeatedEhloAreRelayedAsTheyAre) {
  const std::string refusal = "501 5.5.4 Syntax: EHLO hostname\r\n";
  const Result r = run_all_splits(
      {
          client(ehlo),
          upstream(upstream_ehlo),
          client("STARTTLS\r\n"),
          client_tls_up(),
          client("EHLO\r\n"),
          upstream(refusal),
          client("MAIL FROM:<a@example>\r\n"),
      },
      local_tls(ClientTls::starttls));
  EXPECT_EQ(r.client_per_step[5], refusal);
  EXPECT_EQ(r.client_per_step[6].rfind("503 5.5.1 mailtap: send EHLO again", 0), 0u)
      << r.client_per_step[6];
  EXPECT_EQ(r.to_upstream, ehlo + "EHLO\r\n");
}

// Without an EHLO before the client's STARTTLS there is no earlier reply: the EHLO after it is
// the server's first, and a 503 to it is relayed (whatever the server means by it).
TEST(DialogueClientTls, A503ToTheFirstEhloIsRelayedAsItIs) {
  const std::string refusal = "503 5.5.1 Error: not now\r\n";
  const Result r = run_all_splits(
      {
          client("STARTTLS\r\n"),
          client_tls_up(),
          client(ehlo),
          upstream(refusal),
      },
      local_tls(ClientTls::starttls));
  EXPECT_EQ(r.client_per_step[3], refusal);
  EXPECT_EQ(r.to_upstream, ehlo);
}

// openssl s_client -starttls smtp sends its own EHLO before STARTTLS, so a person pasting
// "AUTH LOGIN" and two base64 lines meets the refusal to greet again: the lines after that
// refused AUTH are its SASL responses, kept out of the record as after any refused AUTH.
TEST(DialogueClientTls, ResponsesAfterAnAuthRefusedBeforeTheNewEhloStayOutOfTheRecord) {
  const std::string user_line = base64_encode("alice") + "\r\n";
  const std::string password_line = base64_encode("alice-secret-1") + "\r\n";
  for (const bool pasted : {true, false}) {
    Script script = {
        client(ehlo),
        upstream(upstream_ehlo),
        client("STARTTLS\r\n"),
        client_tls_up(),
    };
    if (pasted) {
      script.push_back(client("AUTH LOGIN\r\n" + user_line + password_line));
    } else {
      script.push_back(client("AUTH LOGIN\r\n"));
      script.push_back(client(user_line));
      script.push_back(client(password_line));
    }
    script.push_back(client("QUIT\r\n"));
    script.push_back(upstream("221 2.0.0 Bye\r\n"));
    const Result r = run_all_splits(script, local_tls(ClientTls::starttls));
    expect_secret_absent(r, base64_encode("alice-secret-1"));
    expect_secret_absent(r, base64_encode("alice"));
    EXPECT_EQ(r.to_upstream, ehlo + "QUIT\r\n");
    std::size_t redacted = 0;
    for (const Event* e : find_events(r, Direction::client_to_mailtap, EventKind::command))
      redacted += e->redacted ? 1 : 0;
    EXPECT_EQ(redacted, 2u) << "pasted=" << pasted << "\n" << r.describe();
  }
}

TEST(DialogueClientTls, ABdatChunkBeforeTheNewEhloIsDiscardedNotReadAsCommands) {
  const Result r = run_all_splits(
      {
          client(ehlo),
          upstream(ehlo_reply_chunking),
          client("STARTTLS\r\n"),
          client_tls_up(),
          client("BDAT 12 LAST\r\nRSET\r\nQUIT\r\n"),
      },
      local_tls(ClientTls::starttls));
  // The upstream did advertise CHUNKING: what is missing is the client's new EHLO.
  EXPECT_EQ(r.client_per_step[4],
            "503 5.5.1 mailtap: send EHLO again after STARTTLS (RFC 3207: what was said before "
            "TLS no longer counts); BDAT chunk discarded\r\n")
      << r.client_per_step[4];
  EXPECT_EQ(r.to_upstream, ehlo) << "nothing of the chunk is relayed";
}

TEST(DialogueClientTls, StartTlsInsideATransactionOrWithArgumentsIsRefused) {
  const Result r = run_all_splits(
      {
          client(ehlo),
          upstream(upstream_ehlo),
          client("MAIL FROM:<a@example>\r\n"),
          upstream("250 2.1.0 Ok\r\n"),
          client("STARTTLS\r\n"),
          client("RSET\r\n"),
          upstream("250 2.0.0 Ok\r\n"),
          client("STARTTLS now\r\n"),
      },
      local_tls(ClientTls::starttls));
  EXPECT_EQ(r.client_per_step[4].rfind("503 5.5.1 mailtap: STARTTLS inside a mail transaction", 0),
            0u);
  EXPECT_EQ(r.client_per_step[7].rfind("501 5.5.4", 0), 0u);
  EXPECT_FALSE(r.finished);
  for (bool due : r.client_tls_due_per_step) EXPECT_FALSE(due);
}

TEST(DialogueClientTls, AFailedHandshakeEndsTheSessionWithoutAReply) {
  const Result r = run_all_splits(
      {
          client(ehlo),
          upstream(upstream_ehlo),
          client("STARTTLS\r\n"),
          client_tls_failed("unknown CA"),
      },
      local_tls(ClientTls::starttls));
  EXPECT_TRUE(r.finished);
  EXPECT_EQ(r.client_per_step[3], "");
  ASSERT_TRUE(r.ending);
  EXPECT_NE(r.ending->reason.find("unknown CA"), std::string::npos);
}

// ops-F1: the shutdown, not the client, ended the handshake: recorded as a shutdown.
TEST(DialogueClientTls, AHandshakeCutByTheShutdownEndsTheSessionAsAShutdown) {
  const Result r = run_all_splits(
      {
          client(ehlo),
          upstream(upstream_ehlo),
          client("STARTTLS\r\n"),
          client_tls_cut_by_shutdown(),
      },
      local_tls(ClientTls::starttls));
  EXPECT_TRUE(r.finished);
  EXPECT_EQ(r.client_per_step[3], "");
  ASSERT_TRUE(r.ending);
  EXPECT_EQ(r.ending->kind, Ending::Kind::shutdown);
  EXPECT_EQ(r.ending->reason, "mailtap shut down during the client's handshake");
}

TEST(DialogueClientTls, ImplicitTlsOffersAuthAndRefusesStartTls) {
  const Result r = run_all_splits(
      {
          client(ehlo),
          upstream(ehlo_reply),
          client("STARTTLS\r\n"),
          client(auth_plain),
          upstream("235 2.7.0 Ok\r\n"),
      },
      local_tls(ClientTls::implicit));
  EXPECT_EQ(r.client_per_step[1], ehlo_reply_filtered);
  EXPECT_EQ(r.client_per_step[2],
            "503 5.5.1 mailtap: TLS is already active on this connection\r\n");
  EXPECT_EQ(r.to_upstream, ehlo + auth_plain);
  EXPECT_EQ(r.auth_user, "alice");
}

TEST(DialogueClientTls, WithoutLocalTlsStartTlsIsRefusedAsBefore) {
  const Result r = run_all_splits({client(ehlo), upstream(ehlo_reply), client("STARTTLS\r\n")});
  EXPECT_EQ(r.client_per_step[1], ehlo_reply_filtered);
  EXPECT_EQ(r.client_per_step[2], "502 5.5.1 mailtap: STARTTLS is not needed\r\n");
}

// The start of a TLS ClientHello: a handshake record (0x16) of TLS 1.0 framing (0x03 0x01),
// its length, then a ClientHello with bytes that may hold LF, NUL or none of them.
const std::string client_hello =
    "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"
    "RCPT TO:<x@example>\r\n"
    "\x00\x0a\xff\xfb\x01"s;

// swaks --tlsc or an implicit-TLS client pointed at a plain-text port: not read as commands (a
// fragment without NUL would otherwise be relayed), but answered and recorded with what to do.
TEST(DialogueClientTls, ATlsHandshakeOnAPlainPortIsRecognisedAndNotRelayed) {
  for (const ClientTls mode : {ClientTls::none, ClientTls::starttls}) {
    const Result r = run_all_splits({client(client_hello)}, local_tls(mode));
    EXPECT_TRUE(r.finished);
    ASSERT_TRUE(r.ending);
    EXPECT_EQ(r.ending->kind, Ending::Kind::error);
    EXPECT_NE(r.ending->reason.find("TLS handshake on a plain-text port"), std::string::npos)
        << r.ending->reason;
    EXPECT_NE(r.ending->reason.find("--local-tls implicit"), std::string::npos);
    EXPECT_EQ(r.to_upstream, "") << "nothing of it is relayed";
    EXPECT_EQ(r.client_per_step[0].rfind("421 4.5.0 mailtap: this port speaks plain SMTP", 0), 0u)
        << r.client_per_step[0];
    const auto errors = find_events(r, Direction::client_to_mailtap, EventKind::error);
    ASSERT_EQ(errors.size(), 1u) << r.describe();
    EXPECT_TRUE(errors[0]->redacted);
    EXPECT_EQ(errors[0]->bytes, "");
    EXPECT_NE(errors[0]->note.find("TLS ClientHello"), std::string::npos) << errors[0]->note;
  }
}

TEST(DialogueClientTls, OnlyTheFirstBytesOfASessionAreTakenForAHandshake) {
  // 0x16 0x03 later in a session is a bad command line like any other.
  const Result later =
      run_all_splits({client(ehlo), upstream(ehlo_reply), client("\x16\x03\x01 x\r\nNOOP\r\n"),
                      upstream("500 5.5.2 unknown\r\n250 ok\r\n")});
  EXPECT_FALSE(later.finished);
  EXPECT_EQ(later.to_upstream, ehlo + "\x16\x03\x01 x\r\nNOOP\r\n");
  // And a first byte 0x16 not followed by a TLS version is no handshake either.
  const Result other = run_all_splits({client("\x16\x04 x\r\n"), upstream("500 5.5.2 no\r\n")});
  EXPECT_FALSE(other.finished);
  EXPECT_EQ(other.to_upstream, "\x16\x04 x\r\n");
  // A client that closes after one octet that could have begun a handshake: nothing to say.
  const Result short_one = run_all_splits({client("\x16"), client_eof(), upstream("221 bye\r\n")});
  EXPECT_EQ(short_one.to_upstream, "QUIT\r\n");
}

TEST(Capabilities, AppendExtensionKeepsTheReplyWellFormed) {
  EXPECT_EQ(append_extension("250 up.example\r\n", "STARTTLS"),
            "250-up.example\r\n250 STARTTLS\r\n");
  EXPECT_EQ(append_extension("250-up.example\r\n250 SIZE 10\r\n", "STARTTLS"),
            "250-up.example\r\n250-SIZE 10\r\n250 STARTTLS\r\n");
  EXPECT_EQ(append_extension("250-up.example\n250\n", "STARTTLS"),
            "250-up.example\n250-\n250 STARTTLS\r\n");
}

}  // namespace
}  // namespace mailtap::smtp
