#include "tools/probe_report.hpp"

#include <openssl/x509.h>

#include <gtest/gtest.h>

#include <algorithm>

#include "tools/time_format.hpp"

namespace mailtap::tools {
namespace {

using smtp::Direction;
using smtp::EventKind;

smtp::Reply reply(std::string_view raw) {
  smtp::ReplyParser p;
  p.feed(raw);
  auto r = p.next();
  EXPECT_TRUE(r) << raw;
  return r.value_or(smtp::Reply{});
}

smtp::RecordedEvent from_server(std::string verb, std::string bytes,
                                EventKind kind = EventKind::reply) {
  smtp::Event e;
  e.direction = Direction::upstream_to_mailtap;
  e.kind = kind;
  e.verb = std::move(verb);
  e.bytes = std::move(bytes);
  return smtp::mailtap_event(std::move(e));
}

ProbeReport asked(net::TlsMode mode = net::TlsMode::starttls) {
  ProbeReport r;
  r.host = "mx.example.test";
  r.port = mode == net::TlsMode::implicit ? 465 : 587;
  r.mode = mode;
  r.tls_name = r.host;
  r.trust_source = "/etc/ssl/certs/ca-certificates.crt";
  return r;
}

constexpr const char* kEhloPlain = "250-mx.example.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n";

bool has_line(const std::vector<std::string>& lines, std::string_view part) {
  return std::any_of(lines.begin(), lines.end(),
                     [&](const std::string& l) { return l.find(part) != std::string::npos; });
}

TEST(ProbeReport, NoStarttlsIsNoTlsAndEndsWithQuit) {
  ProbeReport r = asked();
  net::UpstreamSetup setup;
  setup.failure = "4.7.0 mailtap: mx.example.test:587 does not offer STARTTLS; refusing";
  setup.greeting = reply("220 mx ESMTP\r\n");
  setup.tls.resolved_address = "192.0.2.1:587";
  std::vector<smtp::RecordedEvent> events{from_server("EHLO", "250-mx\r\n250 PIPELINING\r\n"),
                                          from_server("QUIT", "221 2.0.0 Bye\r\n")};
  take_setup(r, setup, events);
  EXPECT_EQ(r.failure_kind, ProbeFailure::no_tls);
  EXPECT_EQ(r.exit_status(), 3);
  ASSERT_TRUE(r.quit);  // the connector's QUIT after its refusal
  EXPECT_EQ(r.quit->code, 221);
  EXPECT_EQ(r.failure.rfind("mx.example.test:587 does not offer STARTTLS", 0), 0u);
  const auto s = summarise(r, storage::Clock::now());
  ASSERT_FALSE(s.empty());
  EXPECT_EQ(s[0], "server does not offer STARTTLS: refusing to go on in plain text");
}

TEST(ProbeReport, RefusedStarttlsExplainsTheReply) {
  ProbeReport r = asked();
  net::UpstreamSetup setup;
  setup.failure = "4.7.0 mailtap: x refused STARTTLS: 454 4.7.0 TLS not available";
  setup.greeting = reply("220 mx ESMTP\r\n");
  std::vector<smtp::RecordedEvent> events{
      from_server("EHLO", kEhloPlain), from_server("STARTTLS", "454 4.7.0 TLS not available\r\n")};
  take_setup(r, setup, events);
  EXPECT_EQ(r.exit_status(), 3);
  const auto s = summarise(r, storage::Clock::now());
  EXPECT_EQ(s[0],
            "server refused STARTTLS: 454 4.7.0 TLS not available (TLS or authentication "
            "temporarily unavailable)");
}

TEST(ProbeReport, A250ToStarttlsIsNoRefusal) {
  ProbeReport r = asked();
  net::UpstreamSetup setup;
  setup.failure = "4.7.0 mailtap: x answered STARTTLS with 250 2.0.0 ok sure instead of 220";
  setup.greeting = reply("220 mx ESMTP\r\n");
  std::vector<smtp::RecordedEvent> events{from_server("EHLO", kEhloPlain),
                                          from_server("STARTTLS", "250 2.0.0 ok sure\r\n")};
  take_setup(r, setup, events);
  const auto s = summarise(r, storage::Clock::now());
  EXPECT_EQ(s[0],
            "server answered STARTTLS with 250 2.0.0 ok sure instead of 220: it did not "
            "agree to start TLS");
}

TEST(ProbeReport, TimeoutsAndRefusalsAreConnectionFailures) {
  ProbeReport r = asked();
  net::UpstreamSetup setup;
  setup.outcome = storage::Outcome::timeout;
  setup.failure = "4.4.1 mailtap: mx timed out after 5s waiting for the greeting (see --timeout)";
  setup.tls.resolved_address = "192.0.2.1:587";
  take_setup(r, setup, {});
  EXPECT_EQ(r.exit_status(), 1);
  EXPECT_TRUE(has_line(summarise(r, storage::Clock::now()), "use --tls implicit"));

  // Another address of the name not tried: the one used may be the broken node, and --tls
  // implicit would break the others (the connector's failure says to try one of them).
  r = asked();
  setup.addresses_untried = {"192.0.2.2:587"};
  take_setup(r, setup, {});
  EXPECT_FALSE(has_line(summarise(r, storage::Clock::now()), "use --tls implicit"));

  r = asked();
  setup = {};
  setup.failure = "4.3.2 mailtap: mx refused the session: 554 go away";
  std::vector<smtp::RecordedEvent> events{
      from_server("", "554 5.7.1 go away\r\n", EventKind::greeting)};
  take_setup(r, setup, events);
  EXPECT_EQ(r.exit_status(), 1);
  ASSERT_TRUE(r.greeting);
  EXPECT_EQ(r.greeting->code, 554);
  // A refusal at connect time: no advice about relaying or AUTH, which concern commands.
  const auto s = summarise(r, storage::Clock::now());
  EXPECT_TRUE(has_line(s, "554: the server refuses this connection before any command"));
  EXPECT_TRUE(has_line(s, "block list"));
  EXPECT_FALSE(has_line(s, "relay"));
  EXPECT_FALSE(has_line(s, "AUTH"));
}

TEST(ProbeReport, ARefusalWithoutAGreetingIsExplainedWithoutTouchingTheGreeting) {
  // No greeting was kept, yet a reply refused: it is advised on as a reply to a command, and
  // the empty greeting is never dereferenced to find out whether the reply was the greeting.
  ProbeReport r = asked();
  r.failure_kind = ProbeFailure::connection;
  r.failure = "4.3.2 mailtap: mx refused EHLO: 554 go away";
  r.ehlo_plain = reply("554 5.7.1 go away\r\n");
  const auto s = summarise(r, storage::Clock::now());
  EXPECT_TRUE(has_line(s, "554: ")) << ::testing::PrintToString(s);
  EXPECT_FALSE(has_line(s, "before any command"));
}

TEST(ProbeReport, CertificateProblemsExitFourEvenUnderInsecure) {
  ProbeReport r = asked();
  net::UpstreamSetup setup;
  setup.failure = "4.7.0 mailtap: certificate is issued for a.test, not for mx.example.test";
  setup.greeting = reply("220 mx ESMTP\r\n");
  setup.verify_problems = {
      {X509_V_ERR_HOSTNAME_MISMATCH, "certificate is issued for a.test, not for mx.example.test"}};
  std::vector<smtp::RecordedEvent> events{from_server("EHLO", kEhloPlain),
                                          from_server("STARTTLS", "220 2.0.0 go ahead\r\n")};
  take_setup(r, setup, events);
  EXPECT_EQ(r.exit_status(), 4);
  auto s = summarise(r, storage::Clock::now());
  EXPECT_EQ(s[0], "the certificate does not match mx.example.test");

  ProbeReport insecure = asked();
  insecure.insecure = true;
  setup.ok = true;
  setup.failure.clear();
  setup.tls.tls_version = "TLSv1.3";
  take_setup(insecure, setup, events);
  EXPECT_EQ(insecure.exit_status(), 4);
  s = summarise(insecure, storage::Clock::now());
  EXPECT_EQ(s[0].rfind("CERTIFICATE NOT TRUSTED", 0), 0u) << s[0];
}

TEST(ProbeReport, AMissingIssuerIsSaidInTheProxysWordsAlone) {
  // The reason (certificate_facts) says whose fault a missing issuer is, for probe as for the
  // proxy's 421: probe adds no advice of its own that could contradict it.
  ProbeReport r = asked();
  net::UpstreamSetup setup;
  const std::string reason =
      "certificate for mx.example.test is issued by CN=Example Intermediate, which "
      "mx.example.test did not send and ca.pem does not hold: if that is an intermediate CA";
  setup.failure = "4.7.0 mailtap: " + reason;
  setup.greeting = reply("220 mx ESMTP\r\n");
  storage::Certificate leaf;
  leaf.subject = "CN=mx.example.test";
  leaf.issuer = "CN=Example Intermediate";
  setup.tls.chain.push_back(leaf);
  setup.verify_problems = {{X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, reason}};
  std::vector<smtp::RecordedEvent> events{from_server("EHLO", kEhloPlain),
                                          from_server("STARTTLS", "220 2.0.0 go ahead\r\n")};
  take_setup(r, setup, events);
  auto s = summarise(r, storage::Clock::now());
  EXPECT_EQ(std::count(s.begin(), s.end(), reason), 1);
  EXPECT_EQ(std::count_if(s.begin(), s.end(),
                          [](const std::string& l) { return l.find("intermediate") != l.npos; }),
            1);
}

TEST(ProbeReport, TlsNoneAgainstAServerOfferingStarttlsAdvisesDroppingIt) {
  ProbeReport r = asked(net::TlsMode::none);
  net::UpstreamSetup setup;
  setup.ok = true;
  setup.greeting = reply("220 mx ESMTP\r\n");
  std::vector<smtp::RecordedEvent> events{from_server("EHLO", kEhloPlain)};
  take_setup(r, setup, events);
  EXPECT_EQ(r.exit_status(), 0);
  auto s = summarise(r, storage::Clock::now());
  EXPECT_TRUE(has_line(s, "the server offers STARTTLS: drop --tls none")) << s[0];
  EXPECT_FALSE(has_line(s, "next: mailtap proxy")) << s.back();  // no plain-text proxy advice

  ProbeReport plain_only = asked(net::TlsMode::none);
  events = {from_server("EHLO", "250-mx\r\n250 PIPELINING\r\n")};
  take_setup(plain_only, setup, events);
  s = summarise(plain_only, storage::Clock::now());
  EXPECT_FALSE(has_line(s, "drop --tls none"));
  EXPECT_TRUE(has_line(s, "next: mailtap proxy --upstream mx.example.test:587 --tls none"));
}

TEST(ProbeReport, SmallSizeLimitsAreNotRoundedToNothing) {
  for (const auto& [size, said] : {std::pair{"1000", "messages up to 1000 octets (SIZE 1000)"},
                                   std::pair{"512000", "messages up to 512.0 kB (SIZE 512000)"}}) {
    ProbeReport r = asked();
    net::UpstreamSetup setup;
    setup.ok = true;
    setup.greeting = reply("220 mx ESMTP\r\n");
    setup.tls.tls_version = "TLSv1.3";
    std::vector<smtp::RecordedEvent> events{from_server("EHLO", kEhloPlain)};
    take_setup(r, setup, events);
    r.ehlo_tls = reply("250-mx.example.test\r\n250 SIZE " + std::string(size) + "\r\n");
    EXPECT_TRUE(has_line(summarise(r, storage::Clock::now()), said)) << size;
  }
}

// The SIZE lines probe reads as mailtap proxy does (parse_capabilities): each SIZE line gives
// the summary line it must, and no other about SIZE.
TEST(ProbeReport, SizeIsReadAsTheProxyReadsIt) {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"250 SIZE 10240000", "messages up to 10.2 MB (SIZE 10240000)"},
      {"250 SIZE", "SIZE with no fixed limit (RFC 1870: no number, or 0)"},
      {"250 SIZE 0", "SIZE with no fixed limit (RFC 1870: no number, or 0)"},
      // Read by the proxy as limits: probe said nothing of them.
      {"250 SIZE\t20480", "messages up to 20.5 kB (SIZE 20480)"},
      {"250 SIZE=10240000", "messages up to 10.2 MB (SIZE 10240000)"},
      // 2^64 wrapped round to 0 in probe's own reading ("no ... limit").
      {"250 SIZE 18446744073709551616",
       "messages up to 18446744073709.6 MB (SIZE 18446744073709551615)"},
      // A limit without a number mailtap reads: not "no limit" (SIZE 0), as probe said.
      {"250 SIZE none",
       "the server's SIZE has no number mailtap can read (RFC 1870: SIZE and the limit in octets): "
       "its limit is unknown, so mailtap proxy forwards no BDAT chunk to it (DATA goes)"},
      {"250 SIZE=abc",
       "the server's SIZE has no number mailtap can read (RFC 1870: SIZE and the limit in octets): "
       "its limit is unknown, so mailtap proxy forwards no BDAT chunk to it (DATA goes)"},
  };
  for (const auto& [line, said] : cases) {
    ProbeReport r = asked();
    net::UpstreamSetup setup;
    setup.ok = true;
    setup.greeting = reply("220 mx ESMTP\r\n");
    setup.tls.tls_version = "TLSv1.3";
    std::vector<smtp::RecordedEvent> events{from_server("EHLO", kEhloPlain)};
    take_setup(r, setup, events);
    r.ehlo_tls = reply("250-mx.example.test\r\n" + line + "\r\n");
    const std::vector<std::string> s = summarise(r, storage::Clock::now());
    EXPECT_TRUE(has_line(s, said)) << line;
    const auto about_size = std::count_if(s.begin(), s.end(), [](const std::string& l) {
      return l.find("SIZE") != std::string::npos;
    });
    EXPECT_EQ(about_size, 1) << line;
  }
  // No SIZE line: nothing said of it.
  ProbeReport r = asked();
  net::UpstreamSetup setup;
  setup.ok = true;
  setup.greeting = reply("220 mx ESMTP\r\n");
  setup.tls.tls_version = "TLSv1.3";
  std::vector<smtp::RecordedEvent> events{from_server("EHLO", kEhloPlain)};
  take_setup(r, setup, events);
  r.ehlo_tls = reply("250-mx.example.test\r\n250 PIPELINING\r\n");
  for (const std::string& l : summarise(r, storage::Clock::now()))
    EXPECT_EQ(l.find("SIZE"), std::string::npos) << l;
}

TEST(ProbeReport, SuccessSummaryAuthAfterTlsExpirySizeAndNextCommand) {
  ProbeReport r = asked();
  net::UpstreamSetup setup;
  setup.ok = true;
  setup.greeting = reply("220 mx ESMTP\r\n");
  setup.tls.tls_version = "TLSv1.3";
  const auto now = storage::Clock::now();
  storage::Certificate leaf;
  leaf.subject = "CN=mx.example.test";
  leaf.not_after = format_utc(now + std::chrono::hours(24 * 9 + 2));
  setup.tls.chain.push_back(leaf);
  std::vector<smtp::RecordedEvent> events{from_server("EHLO", kEhloPlain),
                                          from_server("STARTTLS", "220 2.0.0 go ahead\r\n")};
  take_setup(r, setup, events);
  r.ehlo_tls = reply(
      "250-mx.example.test\r\n250-SIZE 35882577\r\n250-AUTH LOGIN PLAIN XOAUTH2\r\n250-"
      "CHUNKING\r\n250 SMTPUTF8\r\n");
  EXPECT_EQ(r.exit_status(), 0);
  const auto s = summarise(r, now);
  EXPECT_TRUE(has_line(s, "certificate expires in 9 days")) << s[0];
  EXPECT_TRUE(has_line(s,
                       "STARTTLS on port 587 (TLSv1.3), certificate verified for "
                       "mx.example.test"));
  EXPECT_TRUE(has_line(s,
                       "AUTH is offered only after TLS (LOGIN PLAIN XOAUTH2): use `mailtap "
                       "proxy --upstream mx.example.test:587`"));
  EXPECT_TRUE(has_line(s,
                       "offers CHUNKING, SMTPUTF8; not PIPELINING, 8BITMIME, DSN, "
                       "ENHANCEDSTATUSCODES"));
  EXPECT_TRUE(has_line(s, "messages up to 35.9 MB (SIZE 35882577)"));
  EXPECT_EQ(s.back(),
            "next: mailtap proxy --upstream mx.example.test:587, then: telnet "
            "localhost 2525");
  const std::string json = render_probe_json(r, now);
  EXPECT_NE(json.find(R"("auth_mechanisms":["LOGIN","PLAIN","XOAUTH2"])"), std::string::npos)
      << json;
  EXPECT_NE(json.find(R"("ok":true)"), std::string::npos);
}

// A hostile certificate's notAfter before 1677 is the clock's first instant (time_format.hpp):
// the days from there to now no longer fit in nanoseconds, and must not wrap round into a
// certificate that is valid for centuries.
TEST(ProbeReport, ANotAfterBeforeTheClocksRangeIsLongExpired) {
  ProbeReport r = asked();
  net::UpstreamSetup setup;
  setup.ok = true;
  setup.greeting = reply("220 mx ESMTP\r\n");
  setup.tls.tls_version = "TLSv1.3";
  storage::Certificate leaf;
  leaf.subject = "CN=mx.example.test";
  leaf.not_after = "1600-01-01 00:00:00Z";
  setup.tls.chain.push_back(leaf);
  std::vector<smtp::RecordedEvent> events{from_server("EHLO", kEhloPlain),
                                          from_server("STARTTLS", "220 2.0.0 go ahead\r\n")};
  take_setup(r, setup, events);
  const auto now = *parse_time_spec("2026-12-06", storage::Clock::now());
  const std::string json = render_probe_json(r, now);
  const std::size_t at = json.find(R"("days_left":)");
  ASSERT_NE(at, std::string::npos) << json;
  const long long days = std::stoll(json.substr(at + 12));
  // 1677-09-21 to 2026-12-06: at least 127,000 days ago.
  EXPECT_LT(days, -127000) << json;
  EXPECT_NE(render_probe_text(r, Style::plain(), now).find("(EXPIRED)"), std::string::npos);
}

TEST(ProbeReport, ServerTextCannotDriveTheTerminal) {
  ProbeReport r = asked();
  net::UpstreamSetup setup;
  setup.failure = "4.3.2 mailtap: refused";
  std::vector<smtp::RecordedEvent> events{
      from_server("", "554 \x1b[2J\x1b]0;owned\x07 bye\r\n", EventKind::greeting)};
  take_setup(r, setup, events);
  const std::string text = render_probe_text(r, Style::plain(), storage::Clock::now());
  EXPECT_EQ(text.find('\x1b'), std::string::npos) << text;
  EXPECT_NE(text.find("554 \\x1b[2J"), std::string::npos) << text;
}

}  // namespace
}  // namespace mailtap::tools
