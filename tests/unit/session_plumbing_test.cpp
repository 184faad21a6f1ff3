// The plumbing proxy, replay, probe and mock share: how an ending becomes the record's
// outcome, a recorded session written through a real Recorder, addresses and listening
// sockets, and the options that say how an SMTP server is reached.
#include <gtest/gtest.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>

#include "proxy/net/endpoint.hpp"
#include "proxy/options/size_option.hpp"
#include "proxy/options/upstream_options.hpp"
#include "proxy/options/vocabulary_option.hpp"
#include "proxy/session/session_record.hpp"
#include "proxy/smtp/ending.hpp"
#include "storage/reader.hpp"
#include "storage/recorder.hpp"
#include "tests/unit/temp_dir.hpp"
#include "tools/commands.hpp"

namespace mailtap {
namespace {

using namespace std::string_literals;
using smtp::Ending;
using smtp::Outcome;

TEST(Ending, EachKindHasTheOutcomeOfTheSameName) {
  EXPECT_EQ(smtp::outcome_of(Ending::Kind::quit), Outcome::quit);
  EXPECT_EQ(smtp::outcome_of(Ending::Kind::client_closed), Outcome::client_closed);
  EXPECT_EQ(smtp::outcome_of(Ending::Kind::upstream_closed), Outcome::upstream_closed);
  EXPECT_EQ(smtp::outcome_of(Ending::Kind::timeout), Outcome::timeout);
  EXPECT_EQ(smtp::outcome_of(Ending::Kind::shutdown), Outcome::shutdown);
  EXPECT_EQ(smtp::outcome_of(Ending::Kind::error), Outcome::error);
}

smtp::RecordedEvent note(std::string text) {
  smtp::Event e;
  e.direction = smtp::Direction::mailtap_note;
  e.kind = smtp::EventKind::note;
  e.note = std::move(text);
  return smtp::mailtap_event(std::move(e));
}

// The close also carries the session's length, measured by the steady clock from the opening
// record: a wall-clock start an hour back (a clock set forward since) does not make it an hour.
TEST(SessionRecord, WritesOpeningEventsInOrderAndTheCloseLast) {
  test_support::TempDir dir;
  const std::string db = dir.file("mailtap.db");
  std::string error;
  storage::RecorderOptions ro;
  ro.path = db;
  auto recorder = storage::Recorder::open(ro, error);
  ASSERT_TRUE(recorder) << error;

  SessionRecord record(recorder.get(), recorder->new_session_key());
  asio::io_context io;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        std::vector<smtp::RecordedEvent> events;
        std::vector<smtp::UnrecordedBody> tails;
        std::vector<smtp::Message> messages;
        events.push_back(note("first"));
        record.add(storage::SessionOpened{record.key(),
                                          storage::Clock::now() - std::chrono::hours(1),
                                          "127.0.0.1:1", "127.0.0.1:2525", "mx.example.test", 587,
                                          smtp::TlsMode::starttls, "me.test", false, std::nullopt});
        record.add(storage::SessionTls{{}, record.key()});
        record.take(events, tails, messages);
        EXPECT_TRUE(events.empty());
        co_await record.flush();
        // The close is queued before the last events are taken: it is still written last.
        record.close(smtp::outcome_of(Ending::Kind::timeout), "client idle timeout", nullptr);
        EXPECT_TRUE(record.close_pending());
        events.push_back(note("second"));
        events.push_back(note("third"));
        record.take(events, tails, messages);
        co_await record.flush();
        EXPECT_FALSE(record.close_pending());
      },
      asio::detached);
  io.run();
  recorder->stop();
  ASSERT_FALSE(recorder->failed()) << recorder->failure_reason();

  auto reader = storage::Reader::open(db, error);
  ASSERT_TRUE(reader) << error;
  std::vector<storage::SessionRow> rows;
  ASSERT_TRUE(reader->list_sessions({}, rows, error)) << error;
  ASSERT_EQ(rows.size(), 1u);
  std::optional<storage::SessionDetail> detail;
  ASSERT_TRUE(reader->load_session(rows[0].id, detail, error)) << error;
  ASSERT_TRUE(detail);
  EXPECT_EQ(detail->session.outcome, Outcome::timeout);
  EXPECT_EQ(detail->session.outcome_reason, "client idle timeout");
  ASSERT_EQ(detail->events.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(detail->events[i].seq, i + 1);
  EXPECT_EQ(detail->events[0].event.note, "first");
  EXPECT_EQ(detail->events[2].event.note, "third");
  ASSERT_TRUE(detail->session.duration_us);
  EXPECT_LT(*detail->session.duration_us, std::chrono::minutes(59));
  EXPECT_GE(detail->session.duration_us->count(), 0);
}

TEST(SessionRecord, WithoutARecorderFlushWritesNothingAndStillNumbers) {
  SessionRecord record(nullptr, 7);
  std::vector<smtp::RecordedEvent> events;
  std::vector<smtp::UnrecordedBody> tails;
  std::vector<smtp::Message> messages(2);
  events.push_back(note("x"));
  record.take(events, tails, messages);
  EXPECT_EQ(record.messages_taken(), 2u);
  EXPECT_TRUE(messages.empty());
  record.close(Outcome::quit, "", nullptr);
  asio::io_context io;
  asio::co_spawn(io, record.flush(), asio::detached);
  io.run();
  EXPECT_FALSE(record.close_pending());
}

TEST(Endpoint, HostPort) {
  auto hp = net::parse_host_port("smtp.example.test:465");
  ASSERT_TRUE(hp);
  EXPECT_EQ(hp->host, "smtp.example.test");
  EXPECT_EQ(hp->port, 465);
  hp = net::parse_host_port("[::1]:25");
  ASSERT_TRUE(hp);
  EXPECT_EQ(hp->host, "::1");
  EXPECT_EQ(hp->port, 25);
  hp = net::parse_host_port("::1");
  ASSERT_TRUE(hp);
  EXPECT_FALSE(hp->port);
  EXPECT_FALSE(net::parse_host_port(""));
  EXPECT_FALSE(net::parse_host_port("host:0"));
  EXPECT_FALSE(net::parse_host_port("host:65536"));
  EXPECT_FALSE(net::parse_host_port("host:25x"));
  EXPECT_FALSE(net::parse_host_port(":25"));
  EXPECT_FALSE(net::parse_host_port("[::1]x"));
  // A host the lookup could only fail on, at every session.
  EXPECT_FALSE(net::parse_host_port("a b"));
  EXPECT_FALSE(net::parse_host_port("a b:587"));
  EXPECT_FALSE(net::parse_host_port("[a b]:587"));
  EXPECT_FALSE(net::parse_host_port("smtp.example.test/x:587"));
  EXPECT_FALSE(net::parse_host_port("a:b:c"));
  EXPECT_TRUE(net::parse_host_port("my_host.lan"));
  EXPECT_TRUE(net::parse_host_port("xn--bcher-kva.example:465"));
  EXPECT_TRUE(net::parse_host_port("[fe80::1%lo]:25"));
}

// Asio reads anything after an IPv6 address's '%' as a zone (an interface it fails to find is
// zone 0), so any text at all passed for a host there: a space, a control character, a ']' that
// made the host written back in brackets ("[fe80::1%a]b]:25") read as another.
TEST(Endpoint, AnIpv6ZoneIsAnInterfaceNameOrNumber) {
  for (const char* good : {"fe80::1%lo", "fe80::1%eth0", "fe80::1%2", "fe80::1%br-lan.10"})
    EXPECT_TRUE(net::is_host(good)) << good;
  for (const char* bad :
       {"fe80::1%", "fe80::1%a b", "fe80::1%a]b", "fe80::1%\r", "::1%x/y", "fe80::1%lo%lo"})
    EXPECT_FALSE(net::is_host(bad)) << bad;
  EXPECT_FALSE(net::parse_host_port("::1%\r\0:]0"s));
  EXPECT_FALSE(net::parse_host_port("[fe80::1%a b]:25"));
  EXPECT_TRUE(net::is_tls_name("fe80::1%lo"));
  EXPECT_FALSE(net::is_tls_name("fe80::1%a b"));
  // An interface's name is at most 15 octets (IFNAMSIZ, with its NUL): a longer zone names none,
  // and made a --tls-name past the 255 octets any host has.
  EXPECT_TRUE(net::is_host("fe80::1%" + std::string(15, 'e')));
  EXPECT_FALSE(net::is_host("fe80::1%" + std::string(16, 'e')));
  EXPECT_FALSE(net::is_tls_name("fe80::1%" + std::string(250, 'e')));
  // Nor is the bracketed form of such an address offered as the one to write.
  EXPECT_EQ(net::unbracketed_ipv6_refusal("fe80::1%a:b:25"), "");
  EXPECT_EQ(net::unbracketed_ipv6_refusal("fe80::1%lo:25"),
            "fe80::1%lo:25: an IPv6 address with a port is written in brackets: [fe80::1%lo]:25");
  // Asio reads the address as a C string: what follows a NUL was never looked at.
  EXPECT_FALSE(net::is_host("::1\0 b"s));
  EXPECT_FALSE(net::parse_host_port("[::1\0 b]:25"s));
  EXPECT_EQ(net::unbracketed_ipv6_refusal("::\0x:1:25"s), "");
  EXPECT_FALSE(net::is_ehlo_name("[IPv6:::1\0x]"s));
  EXPECT_FALSE(net::is_ehlo_name("[192.0.2.1\0x]"s));
  EXPECT_FALSE(net::is_ehlo_name("[IPv6:8::1\0\0=\x98]"s));
  EXPECT_FALSE(net::is_ehlo_name("[192.0.2.1\0\0=\x98]"s));
}

TEST(Endpoint, AnUnbracketedIpv6AddressWithAPortIsCaughtWithAHint) {
  // parse_host_port reads "::1:34039" as a host name; the tools refuse it with the fix.
  EXPECT_EQ(net::unbracketed_ipv6_refusal("::1:34039"),
            "::1:34039: an IPv6 address with a port is written in brackets: [::1]:34039");
  EXPECT_EQ(net::unbracketed_ipv6_refusal("::1:2525"),
            "::1:2525: an IPv6 address with a port is written in brackets: [::1]:2525 (or "
            "[::1:2525] for that whole address, on the default port)");
  EXPECT_EQ(net::unbracketed_ipv6_refusal("::1"), "");
  EXPECT_EQ(net::unbracketed_ipv6_refusal("2001:db8::1"), "");
  EXPECT_EQ(net::unbracketed_ipv6_refusal("[::1]:25"), "");
  EXPECT_EQ(net::unbracketed_ipv6_refusal("smtp.example.test:587"), "");
  EXPECT_EQ(net::host_port_label("::1", 587), "[::1]:587");
  EXPECT_EQ(net::host_port_label("smtp.example.test", 587), "smtp.example.test:587");
}

TEST(Endpoint, TlsNameIsAHostNameOrAnAddress) {
  for (const char* good :
       {"mx.example.test", "mx.example.test.", "localhost", "127.0.0.1", "::1",
        "xn--bcher-kva.example", "a_b.example", "_dmarc.example", "-edge-.example"})
    EXPECT_TRUE(net::is_tls_name(good)) << good;
  for (const char* bad : {"", ".", "..", "mx.example.test..", ".mx.example.test", "a..b",
                          "two words", "*.example.test", "mx/example"})
    EXPECT_FALSE(net::is_tls_name(bad)) << bad;
  EXPECT_FALSE(net::is_tls_name(std::string(64, 'a') + ".test"));
  EXPECT_TRUE(net::is_tls_name(std::string(63, 'a') + ".test"));
}

TEST(Endpoint, ListenAddressIsLoopbackUnlessAllowed) {
  asio::ip::tcp::endpoint ep;
  EXPECT_EQ(net::parse_listen_address("localhost:2525", false, "--listen", "why", ep), "");
  EXPECT_EQ(net::endpoint_label(ep), "127.0.0.1:2525");
  EXPECT_EQ(net::parse_listen_address("[::1]:2525", false, "--listen", "why", ep), "");
  EXPECT_EQ(net::endpoint_label(ep), "[::1]:2525");
  EXPECT_EQ(net::parse_listen_address("127.0.0.1", false, "--listen", "why", ep),
            "--listen 127.0.0.1: expected ADDR:PORT");
  // As --upstream does: the bracketed form to write, not just "expected ADDR:PORT".
  EXPECT_EQ(net::parse_listen_address("::1:2615", false, "--listen", "why", ep),
            "--listen ::1:2615: an IPv6 address with a port is written in brackets: [::1]:2615");
  EXPECT_EQ(net::parse_listen_address("mail.test:25", false, "--web", "why", ep),
            "--web mail.test:25: expected an IP address (or localhost) and a port");
  const std::string refused =
      net::parse_listen_address("0.0.0.0:25", false, "--listen", "the page shows mail", ep);
  EXPECT_EQ(refused,
            "refusing to listen on 0.0.0.0:25: the page shows mail; listen on loopback, or add "
            "--allow-remote if you really mean to expose it");
  EXPECT_EQ(net::parse_listen_address("0.0.0.0:25", true, "--listen", "why", ep), "");
}

// Port 0, any free port, lets parallel CI jobs each run a mock or a proxy without choosing
// ports; each then says the port it got. Out of range is said so, not "expected ADDR:PORT".
TEST(Endpoint, ListenPortZeroIsAnyFreePortAndOutOfRangeIsSaidSo) {
  asio::ip::tcp::endpoint ep;
  EXPECT_EQ(net::parse_listen_address("127.0.0.1:0", false, "--listen", "why", ep), "");
  EXPECT_EQ(ep.port(), 0);
  EXPECT_EQ(net::parse_listen_address("[::1]:0", false, "--web", "why", ep), "");
  EXPECT_EQ(net::parse_listen_address("127.0.0.1:65536", false, "--listen", "why", ep),
            "--listen 127.0.0.1:65536: port 65536 is out of range: a port to listen on is a "
            "number from 1 to 65535, or 0 for any free port");
  EXPECT_EQ(net::parse_listen_address("[::1]:99999999999", false, "--web", "why", ep),
            "--web [::1]:99999999999: port 99999999999 is out of range: a port to listen on is a "
            "number from 1 to 65535, or 0 for any free port");
  // A port in range behind a host that is not one is no port's fault.
  for (const char* bad : {"a..b:2525", "127.0.0.1 :2525", "[::1%x/y]:2525"})
    EXPECT_EQ(net::parse_listen_address(bad, false, "--listen", "why", ep),
              "--listen " + std::string(bad) + ": expected ADDR:PORT")
        << bad;
}

TEST(Endpoint, AServerPortOutOfRangeIsSaidSo) {
  EXPECT_EQ(net::port_range_refusal("h.test:65536"),
            "port 65536 is out of range: a server's port is a number from 1 to 65535");
  EXPECT_EQ(net::port_range_refusal("[::1]:0"),
            "port 0 is out of range: a server's port is a number from 1 to 65535");
  for (const char* other : {"h.test:25", "h.test", "h.test:x", "h.test:", "::1"})
    EXPECT_EQ(net::port_range_refusal(other), "") << other;
}

TEST(Endpoint, AcceptorListensAndAPortInUseIsAnError) {
  asio::io_context io;
  asio::ip::tcp::acceptor first(io), second(io);
  ASSERT_FALSE(net::open_acceptor(first, {asio::ip::make_address("127.0.0.1"), 0}));
  const auto bound = first.local_endpoint();
  EXPECT_NE(bound.port(), 0);
  EXPECT_TRUE(net::open_acceptor(second, bound));
}

struct Parsed {
  CLI::App app{"test"};
  options::UpstreamOptions upstream;
  smtp::TlsMode local = smtp::TlsMode::none;
  Parsed() {
    upstream.add_to(app, {"HOST", "no checks"});
    options::add_vocabulary_option<smtp::TlsMode>(app, "--local-tls", local, "towards clients");
  }
  std::string parse(std::vector<std::string> args) {
    std::reverse(args.begin(), args.end());
    try {
      app.parse(args);
    } catch (const CLI::ParseError& e) {
      return e.what();
    }
    return {};
  }
};

TEST(UpstreamOptions, DefaultsFollowThePortAndTheHost) {
  Parsed p;
  ASSERT_EQ(p.parse({}), "");
  EXPECT_FALSE(p.upstream.tls);
  net::UpstreamTarget target;
  target.host = "smtp.example.test";
  target.port = 465;
  ASSERT_EQ(p.upstream.apply_to(target), "");
  EXPECT_EQ(target.mode, smtp::TlsMode::implicit);
  EXPECT_EQ(target.tls_name, "smtp.example.test");
  EXPECT_EQ(target.ehlo_name, net::default_ehlo_name());
  EXPECT_FALSE(target.insecure);
  EXPECT_EQ(p.local, smtp::TlsMode::none);
  EXPECT_EQ(p.app.get_option("--local-tls")->get_default_str(), "none");
}

TEST(UpstreamOptions, NamesComeFromTheRecordsTable) {
  Parsed p;
  // (--tls none would refuse --tls-name and --insecure: they have no effect without TLS.)
  ASSERT_EQ(p.parse({"--tls", "implicit", "--tls-name", "mx.test", "--insecure", "--ehlo-name",
                     "me.test", "--local-tls", "implicit"}),
            "");
  net::UpstreamTarget target;
  target.host = "smtp.example.test";
  target.port = 587;
  ASSERT_EQ(p.upstream.apply_to(target), "");
  EXPECT_EQ(target.mode, smtp::TlsMode::implicit);
  EXPECT_EQ(target.tls_name, "mx.test");
  EXPECT_EQ(target.ehlo_name, "me.test");
  EXPECT_TRUE(target.insecure);
  EXPECT_EQ(p.local, smtp::TlsMode::implicit);
  // The option keeps the name as given (--print-config and the config layers show it).
  EXPECT_EQ(p.app.get_option("--tls")->results(), std::vector<std::string>{"implicit"});

  Parsed bad;
  const std::string e = bad.parse({"--tls", "sometimes"});
  EXPECT_NE(e.find("sometimes not in {starttls,implicit,none}"), std::string::npos) << e;
}

TEST(UpstreamOptions, EhloNameIsOneWord) {
  Parsed p;
  ASSERT_EQ(p.parse({"--ehlo-name", "two words"}), "");
  net::UpstreamTarget target;
  target.host = "h";
  EXPECT_EQ(p.upstream.apply_to(target), "--ehlo-name must be a single word");
  for (const std::string& name :
       {std::string("x\ty"), std::string("x\x1b[0my"), std::string("x\x7fy"), "x\0y"s}) {
    Parsed q;
    ASSERT_EQ(q.parse({"--ehlo-name", name}), "");
    EXPECT_EQ(q.upstream.apply_to(target), "--ehlo-name must be a single word") << name;
  }
  Parsed longer;
  ASSERT_EQ(longer.parse({"--ehlo-name", std::string(256, 'a')}), "");
  EXPECT_EQ(longer.upstream.apply_to(target), "--ehlo-name is longer than a domain name (255)");
  Parsed fine;
  const std::string label(63, 'a');
  ASSERT_EQ(fine.parse({"--ehlo-name", label + "." + label + "." + label + "." + label.substr(2)}),
            "");
  EXPECT_EQ(fine.upstream.apply_to(target), "");
}

TEST(UpstreamOptions, EhloNameIsAnAsciiDomainOrAnAddressLiteral) {
  net::UpstreamTarget target;
  target.host = "h";
  for (const std::string& name :
       {std::string("m\xc3\xbcller.example"), std::string("caf\xc3\xa9"), std::string("::1"),
        std::string("a..b"), std::string(".a"), std::string("a."), std::string("[::1]"),
        std::string("[IPv6:fe80::1%eth0]"), std::string("[300.1.1.1]"), std::string("[]"),
        std::string("x:y"), std::string("a/b"), std::string("bad-.example"),
        std::string("-bad.example"), std::string("mail.-x"), std::string("mail.x-")}) {
    Parsed p;
    ASSERT_EQ(p.parse({"--ehlo-name", name}), "");
    const std::string e = p.upstream.apply_to(target);
    EXPECT_NE(e.find(": expected a domain (labels of ASCII letters, digits, '-' and '_', not "
                     "starting or ending with '-',"),
              std::string::npos)
        << name << ": " << e;
    EXPECT_EQ(e.find('\xc3'), std::string::npos) << "shown escaped: " << e;
  }
  for (const char* name :
       {"mail.example.test", "xn--mller-kva.example", "vm", "host-1", "my_pc", "a-b.c--d.example",
        "192.0.2.1", "[192.0.2.1]", "[IPv6:2001:db8::1]", "[ipv6:::1]", "[IPV6:::1]"}) {
    Parsed p;
    ASSERT_EQ(p.parse({"--ehlo-name", name}), "");
    EXPECT_EQ(p.upstream.apply_to(target), "") << name;
    EXPECT_EQ(target.ehlo_name, name);
  }
}

TEST(SizeOption, BinaryUnitsInAnyCaseAndAClearRefusal) {
  for (const auto& [text, octets] :
       std::vector<std::pair<std::string, std::uint64_t>>{{"2048", 2048},
                                                          {"512K", 512 << 10},
                                                          {"512k", 512 << 10},
                                                          {"4KiB", 4 << 10},
                                                          {"10M", 10 << 20},
                                                          {"64MiB", std::uint64_t{64} << 20},
                                                          {"1G", std::uint64_t{1} << 30},
                                                          {"1GiB", std::uint64_t{1} << 30},
                                                          {"7B", 7}}) {
    CLI::App app;
    std::uint64_t size = 0;
    auto* option = options::add_size_option(app, "--max-body", size, "64MiB", "help");
    ASSERT_NO_THROW(app.parse(std::vector<std::string>{text, "--max-body"})) << text;
    EXPECT_EQ(size, octets) << text;
    // As typed: the results are what --print-config shows for the flag.
    EXPECT_EQ(option->results(), std::vector<std::string>{text});
  }
  CLI::App app;
  std::uint64_t size = 0;
  auto* option = options::add_size_option(app, "--max-body", size, "64MiB", "help");
  EXPECT_EQ(option->get_default_str(), "64MiB");
  try {
    app.parse(std::vector<std::string>{"2X", "--max-body"});
    ADD_FAILURE() << "2X accepted";
  } catch (const CLI::ValidationError& e) {
    EXPECT_NE(std::string(e.what()).find("2X: expected a size such as 64MiB"), std::string::npos)
        << e.what();
  }
}

TEST(SizeOption, ANegativeOrAbsurdSizeIsRefusedNamingTheLargest) {
  for (const auto& [text, why] : std::vector<std::pair<std::string, std::string>>{
           {"-1", "-1: expected a size such as 64MiB"},
           {"-1k", "-1k: expected a size such as 64MiB"},
           {"5GiB", "5GiB: too large; the largest is 4GiB"},
           {"4294967297", "4294967297: too large; the largest is 4GiB"},
           {"99999999999999999999999", "99999999999999999999999: too large; the largest is 4GiB"},
           {"99999999999GiB", "99999999999GiB: too large; the largest is 4GiB"}}) {
    CLI::App app;
    std::uint64_t size = 0;
    options::add_size_option(app, "--max-body", size, "64MiB", "help");
    try {
      app.parse(std::vector<std::string>{text, "--max-body"});
      ADD_FAILURE() << text << " accepted as " << size;
    } catch (const CLI::ValidationError& e) {
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
    }
  }
  CLI::App app;
  std::uint64_t size = 0;
  options::add_size_option(app, "--max-body", size, "64MiB", "help");
  ASSERT_NO_THROW(app.parse(std::vector<std::string>{"4GiB", "--max-body"}));
  EXPECT_EQ(size, std::uint64_t{4} << 30);
}

TEST(ChoiceOption, OneTableChecksAndSets) {
  enum class Policy { stop, go_on };
  CLI::App app;
  Policy policy = Policy::stop;
  auto* option = options::add_choice_option(
      app, "--when", policy, {{"stop", Policy::stop}, {"continue", Policy::go_on}}, "help");
  EXPECT_EQ(option->get_default_str(), "stop");
  app.parse(std::vector<std::string>{"continue", "--when"});
  EXPECT_EQ(policy, Policy::go_on);
  EXPECT_EQ(option->results(), std::vector<std::string>{"continue"});
  CLI::App bad;
  options::add_choice_option(bad, "--when", policy,
                             {{"stop", Policy::stop}, {"continue", Policy::go_on}}, "help");
  EXPECT_THROW(bad.parse(std::vector<std::string>{"maybe", "--when"}), CLI::ValidationError);
}

TEST(MockOptions, OnceAndLoopExcludeEachOther) {
  CLI::App app;
  // The subcommand owns what its options write into: keep it while parsing.
  const cli::Subcommand mock = tools::add_mock_command(app);
  EXPECT_THROW(app.parse(std::vector<std::string>{"--loop", "--once", "1", "mock"}),
               CLI::ExcludesError);
}

}  // namespace
}  // namespace mailtap
