// TlsStream over real loopback TCP, BoringSSL at both ends: what a reader gets is exactly what
// the peer wrote, whatever the shape of the records and of the reader's buffers, also when
// streams of one thread take turns with the ciphertext each read ahead into a shared buffer,
// and when the writer's socket is full.
#include "proxy/net/tls_stream.hpp"

#include <gtest/gtest.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "proxy/net/local_certificate.hpp"
#include "proxy/net/tls_server_context.hpp"
#include "temp_dir.hpp"

namespace mailtap::net {
namespace {

using test_support::TempDir;

// Octets that say where they are, so a byte out of place shows.
std::string pattern(std::size_t n, std::size_t seed) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('!' + (i * 7 + seed) % 90);
  return s;
}

// One TLS connection over loopback: `server` writes, `client` reads.
struct Pair {
  asio::ip::tcp::socket server_socket;
  asio::ip::tcp::socket client_socket;
  std::unique_ptr<TlsStream> server;
  std::unique_ptr<TlsStream> client;
};

class TlsStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    const auto certificate = ensure_local_certificate(dir_.file("certificate"), error);
    ASSERT_TRUE(certificate) << error;
    server_ctx_ = make_tls_server_context(*certificate, error);
    ASSERT_TRUE(server_ctx_) << error;
    client_ctx_.reset(SSL_CTX_new(TLS_method()));
    ASSERT_TRUE(client_ctx_);
  }

  // Connected and through the handshake (the client verifies nothing: not what is tested).
  std::unique_ptr<Pair> connect() {
    std::error_code server_ec = asio::error::fault, client_ec = asio::error::fault;
    auto p = handshake(server_ec, client_ec);
    EXPECT_FALSE(server_ec) << server_ec.message();
    EXPECT_FALSE(client_ec) << client_ec.message();
    return p;
  }

  // Connected, the handshake run to its end either way, with client_ctx_.
  std::unique_ptr<Pair> handshake(std::error_code& server_ec, std::error_code& client_ec) {
    asio::ip::tcp::acceptor acceptor(io_, {asio::ip::make_address("127.0.0.1"), 0});
    auto p = std::unique_ptr<Pair>(
        new Pair{asio::ip::tcp::socket(io_), asio::ip::tcp::socket(io_), nullptr, nullptr});
    p->client_socket.connect(acceptor.local_endpoint());
    acceptor.accept(p->server_socket);
    p->server =
        std::make_unique<TlsStream>(p->server_socket, server_ctx_.get(), TlsStream::Role::server);
    p->client = std::make_unique<TlsStream>(p->client_socket, client_ctx_.get());
    asio::co_spawn(
        io_, [&]() -> asio::awaitable<void> { server_ec = co_await p->server->handshake(); },
        asio::detached);
    asio::co_spawn(
        io_, [&]() -> asio::awaitable<void> { client_ec = co_await p->client->handshake(); },
        asio::detached);
    run();
    return p;
  }

  // Runs what was spawned to its end; a read that waits for bytes that never come fails the
  // test instead of hanging it.
  void run() {
    io_.run_for(std::chrono::seconds(20));
    EXPECT_TRUE(io_.stopped()) << "a read or a write never finished";
    io_.restart();
  }

  // Each piece in its own SSL_write: its own record(s). co_spawn keeps the function object,
  // and with it the pieces, until the coroutine is done.
  void write_all(TlsStream& stream, std::vector<std::string> pieces) {
    asio::co_spawn(
        io_,
        [&stream, pieces = std::move(pieces)]() -> asio::awaitable<void> {
          for (const std::string& piece : pieces) {
            auto [ec, n] = co_await stream.write(asio::buffer(piece));
            EXPECT_FALSE(ec) << ec.message();
            EXPECT_EQ(n, piece.size());
          }
        },
        asio::detached);
  }

  // Reads until `want` octets arrived, the i-th read with room for sizes[i % sizes.size()].
  asio::awaitable<void> read_exactly(TlsStream& stream, std::size_t want,
                                     std::vector<std::size_t> sizes, std::string& got) {
    std::vector<char> buffer(65536);
    for (std::size_t i = 0; got.size() < want; ++i) {
      const std::size_t room = sizes[i % sizes.size()];
      auto [ec, n] = co_await stream.read_some(asio::buffer(buffer.data(), room));
      if (ec) {
        ADD_FAILURE() << "read failed after " << got.size() << " octets: " << ec.message();
        co_return;
      }
      got.append(buffer.data(), n);
    }
  }

  // Reads into `got` until a read fails: its error (eof after a close_notify).
  std::error_code read_to_end(TlsStream& stream, std::string& got) {
    std::error_code end;
    asio::co_spawn(
        io_,
        [&]() -> asio::awaitable<void> {
          std::vector<char> buffer(65536);
          for (;;) {
            auto [ec, n] = co_await stream.read_some(asio::buffer(buffer));
            if (ec) {
              end = ec;
              co_return;
            }
            got.append(buffer.data(), n);
          }
        },
        asio::detached);
    run();
    return end;
  }

  TempDir dir_;
  asio::io_context io_;
  bssl::UniquePtr<SSL_CTX> server_ctx_;
  bssl::UniquePtr<SSL_CTX> client_ctx_;
};

TEST_F(TlsStreamTest, EveryOctetInOrderWhateverTheRecordsAndTheReadSizes) {
  auto p = connect();
  std::vector<std::string> pieces;
  std::string sent;
  std::size_t seed = 0;
  // Tiny records by the dozen (many in one read), full 16 KiB records, a piece of several.
  for (std::size_t size : {1, 1, 5, 40, 3, 300, 16384, 20000, 7, 70000, 2, 1, 4096}) {
    for (int copies = 0; copies < (size < 10 ? 12 : 1); ++copies) {
      pieces.push_back(pattern(size, seed++));
      sent += pieces.back();
    }
  }
  for (const std::vector<std::size_t>& sizes :
       {std::vector<std::size_t>{65536}, {1}, {10}, {7, 100, 1, 4096}, {16384}, {5, 65536}}) {
    write_all(*p->server, pieces);
    std::string got;
    asio::co_spawn(io_, read_exactly(*p->client, sent.size(), sizes, got), asio::detached);
    run();
    ASSERT_EQ(got.size(), sent.size());
    EXPECT_TRUE(got == sent) << "octets out of place with read sizes starting " << sizes[0];
  }
}

// Streams of one thread share the buffer they read ciphertext into: what one read ahead and
// did not hand to BoringSSL must survive the other stream's reads.
TEST_F(TlsStreamTest, StreamsTakingTurnsOnOneThreadKeepTheirOwnBytes) {
  auto a = connect();
  auto b = connect();
  std::vector<std::string> pieces_a, pieces_b;
  std::string sent_a, sent_b;
  // Reads with room for whole records end on a record boundary with the next records already
  // read ahead: those octets must outlive the other stream's reads.
  for (std::size_t i = 0; i < 300; ++i) {
    pieces_a.push_back(pattern(100, i));
    pieces_b.push_back(pattern(50, i + 1000));
    sent_a += pieces_a.back();
    sent_b += pieces_b.back();
  }
  write_all(*a->server, pieces_a);
  write_all(*b->server, pieces_b);
  run();  // all of it sent before anyone reads: each read finds many records waiting
  std::string got_a, got_b;
  asio::co_spawn(
      io_,
      [&]() -> asio::awaitable<void> {
        std::vector<char> buffer(1024);
        while (got_a.size() < sent_a.size() || got_b.size() < sent_b.size()) {
          for (auto [stream, got, total, room] :
               {std::tuple{a->client.get(), &got_a, sent_a.size(), std::size_t{200}},
                std::tuple{b->client.get(), &got_b, sent_b.size(), std::size_t{150}}}) {
            if (got->size() >= total) continue;
            auto [ec, n] = co_await stream->read_some(asio::buffer(buffer.data(), room));
            if (ec) {
              ADD_FAILURE() << "read failed: " << ec.message();
              co_return;
            }
            got->append(buffer.data(), n);
          }
        }
      },
      asio::detached);
  run();
  EXPECT_TRUE(got_a == sent_a);
  EXPECT_TRUE(got_b == sent_b);
}

// A write seals its records into one batch and sends them together. When the socket takes only
// part of that, the rest waits in the stream: write_now() has taken all of the bytes (and says
// would_block), the stream is not flushed, later bytes queue behind what waits, and write()
// sends it; the reader gets every octet in order.
TEST_F(TlsStreamTest, RecordsTheSocketHadNoRoomForGoFirstWhenItHas) {
  auto p = connect();
  const std::size_t piece_size = std::size_t{64} * 1024;
  std::string sent;
  std::error_code ec;
  std::size_t n = 0;
  std::size_t seed = 0;
  // The reader reads nothing yet: the socket fills.
  for (int pieces = 0; pieces < 10000; ++pieces) {
    const std::string piece = pattern(piece_size, seed++);
    n = p->server->write_now(asio::buffer(piece), ec);
    sent += piece.substr(0, n);
    if (ec) break;
    EXPECT_EQ(n, piece.size());
    EXPECT_TRUE(p->server->flushed());
  }
  ASSERT_EQ(ec, asio::error::would_block) << ec.message();
  // The piece's four records were sealed together, then the socket took less than all of them.
  EXPECT_EQ(n, piece_size);
  EXPECT_FALSE(p->server->flushed());

  // While they wait, new bytes go nowhere: they would overtake them.
  const std::string later = pattern(1000, seed++);
  EXPECT_EQ(p->server->write_now(asio::buffer(later), ec), 0U);
  EXPECT_EQ(ec, asio::error::would_block);
  EXPECT_FALSE(p->server->flushed());
  sent += later;  // written below, behind what waits

  // An empty write() sends what waits; a write() of bytes sends what waits, then them.
  asio::co_spawn(
      io_,
      [&]() -> asio::awaitable<void> {
        auto [ec1, n1] = co_await p->server->write(asio::const_buffer());
        EXPECT_FALSE(ec1) << ec1.message();
        EXPECT_EQ(n1, 0U);
        EXPECT_TRUE(p->server->flushed());
        auto [ec2, n2] = co_await p->server->write(asio::buffer(later));
        EXPECT_FALSE(ec2) << ec2.message();
        EXPECT_EQ(n2, later.size());
        EXPECT_TRUE(p->server->flushed());
      },
      asio::detached);
  std::string got;
  asio::co_spawn(io_, read_exactly(*p->client, sent.size(), {65536}, got), asio::detached);
  run();
  ASSERT_EQ(got.size(), sent.size());
  EXPECT_TRUE(got == sent) << "octets out of place";
}

// What a TLS 1.3 peer can open of `raw`, the ciphertext after the handshake: the plaintext of
// the whole application-data records (less the inner content type and the AEAD tag), and how
// many octets of a record cut short follow them.
struct Openable {
  std::size_t plaintext = 0;
  std::size_t cut_short = 0;
};
Openable openable(std::string_view raw) {
  constexpr std::size_t kHeader = 5;
  constexpr std::size_t kOverhead = 1 + 16;
  Openable out;
  while (raw.size() >= kHeader) {
    const std::size_t length =
        (std::size_t{static_cast<unsigned char>(raw[3])} << 8) | static_cast<unsigned char>(raw[4]);
    if (raw.size() < kHeader + length) break;
    if (raw[0] == SSL3_RT_APPLICATION_DATA) out.plaintext += length - kOverhead;
    raw.remove_prefix(kHeader + length);
  }
  out.cut_short = raw.size();
  return out;
}

// The ciphertext `socket` receives until the peer closes.
asio::awaitable<void> read_raw_to_end(asio::ip::tcp::socket& socket, std::string& raw) {
  std::vector<char> buffer(65536);
  for (;;) {
    auto [ec, n] = co_await socket.async_read_some(
        asio::buffer(buffer), asio::experimental::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    raw.append(buffer.data(), n);
  }
}

// The client writes until its socket is full (the server reads nothing): some records it sealed
// wait in the stream, one of them maybe half on the socket. unsent_plaintext() counts exactly
// the plaintext of the records not wholly on the socket; stop_output() drops them, and the
// peer can then open exactly the rest of what was written, nothing more: the socket gets no
// further octet, not even an alert or close_notify. ciphertext_on_socket() is what it got.
TEST_F(TlsStreamTest, WhatWaitsIsCountedExactlyAndDroppedOnStop) {
  SSL_CTX_set_min_proto_version(client_ctx_.get(), TLS1_3_VERSION);
  bool cut_a_record = false;
  // Pieces of several sizes: a socket that fills in the middle of a record shows at least once.
  for (const std::size_t piece_size : {std::size_t{65536}, std::size_t{1000}, std::size_t{20011}}) {
    SCOPED_TRACE(piece_size);
    auto p = connect();
    const std::uint64_t handshake = p->client->ciphertext_on_socket();  // the server read it
    std::size_t taken = 0;
    std::error_code ec;
    for (std::size_t seed = 0; !ec && seed < 100000; ++seed) {
      const std::string piece = pattern(piece_size, seed);
      taken += p->client->write_now(asio::buffer(piece), ec);
      if (!ec) {
        EXPECT_EQ(p->client->unsent_plaintext(), 0U);
      }
    }
    ASSERT_EQ(ec, asio::error::would_block) << ec.message();
    const std::size_t unsent = p->client->unsent_plaintext();
    EXPECT_GT(unsent, 0U);
    EXPECT_LE(unsent, taken);

    EXPECT_EQ(p->client->stop_output(), unsent);
    EXPECT_EQ(p->client->unsent_plaintext(), 0U);
    EXPECT_TRUE(p->client->flushed());
    const std::string later = pattern(100, 1);
    EXPECT_EQ(p->client->write_now(asio::buffer(later), ec), 0U);
    EXPECT_EQ(ec, asio::error::operation_aborted);
    p->client->shutdown();  // no close_notify either
    const std::uint64_t on_socket = p->client->ciphertext_on_socket();
    p->client_socket.close();

    std::string raw;
    asio::co_spawn(io_, read_raw_to_end(p->server_socket, raw), asio::detached);
    run();
    const Openable got = openable(raw);
    EXPECT_EQ(got.plaintext, taken - unsent);
    EXPECT_EQ(handshake + raw.size(), on_socket) << "the socket's count is not what the peer got";
    if (got.cut_short > 0) cut_a_record = true;
  }
  EXPECT_TRUE(cut_a_record) << "no socket filled in the middle of a record: proved less";
}

// A write() waits for room for the rest of its bytes when the output stops: what it sealed and
// did not send and what it did not seal yet are unsent, and once the socket has room again the
// write ends (operation_aborted) without sending any of it.
TEST_F(TlsStreamTest, AWriteUnderWayWhenOutputStopsSendsNothingMore) {
  SSL_CTX_set_min_proto_version(client_ctx_.get(), TLS1_3_VERSION);
  auto p = connect();
  const std::string sent = pattern(std::size_t{64} * 1024 * 1024, 5);
  std::error_code write_ec;
  std::size_t written = 0;
  asio::co_spawn(
      io_,
      [&]() -> asio::awaitable<void> {
        std::tie(write_ec, written) = co_await p->client->write(asio::buffer(sent));
        p->client_socket.close();
      },
      asio::detached);
  // The server reads nothing: the write fills the socket, then waits.
  for (int i = 0; i < 250 && p->client->flushed(); ++i) io_.run_for(std::chrono::milliseconds(20));
  const std::size_t unsent = p->client->unsent_plaintext();
  ASSERT_GT(unsent, 0U);
  ASSERT_LT(unsent, sent.size());
  EXPECT_FALSE(p->client->flushed());

  EXPECT_EQ(p->client->stop_output(), unsent);
  EXPECT_EQ(p->client->unsent_plaintext(), 0U);
  std::string raw;
  asio::co_spawn(io_, read_raw_to_end(p->server_socket, raw), asio::detached);
  run();  // the server reads: the writer has room, ends, and closes
  EXPECT_EQ(write_ec, asio::error::operation_aborted) << write_ec.message();
  EXPECT_EQ(openable(raw).plaintext, sent.size() - unsent);
  EXPECT_LE(sent.size() - unsent, written);
}

// A write that fails (the peer reset the connection) leaves what it sealed and never sent, and
// what it did not seal, counted as unsent: not only the bytes it did not take.
TEST_F(TlsStreamTest, AFailedWriteCountsTheRecordsItSealedAndNeverSent) {
  auto p = connect();
  const std::string sent = pattern(std::size_t{64} * 1024 * 1024, 6);
  std::error_code write_ec;
  std::size_t written = 0;
  asio::co_spawn(
      io_,
      [&]() -> asio::awaitable<void> {
        std::tie(write_ec, written) = co_await p->client->write(asio::buffer(sent));
      },
      asio::detached);
  for (int i = 0; i < 250 && p->client->flushed(); ++i) io_.run_for(std::chrono::milliseconds(20));
  ASSERT_FALSE(p->client->flushed());
  // A reset: the server's socket closes with unread octets and no linger.
  p->server_socket.set_option(asio::socket_base::linger(true, 0));
  p->server_socket.close();
  run();
  ASSERT_TRUE(write_ec);
  EXPECT_NE(write_ec, asio::error::operation_aborted) << write_ec.message();
  const std::size_t unsent = p->client->unsent_plaintext();
  EXPECT_GT(unsent, sent.size() - written) << "records sealed and never sent count as sent";
  EXPECT_LE(unsent, sent.size());
  EXPECT_EQ(p->client->stop_output(), unsent);
  EXPECT_EQ(p->client->unsent_plaintext(), 0U);
}

TEST_F(TlsStreamTest, CloseNotifyAfterTheLastBytesIsTheEndOfTheStream) {
  auto p = connect();
  const std::string sent = pattern(1000, 3);
  write_all(*p->server, {sent});
  run();
  p->server->shutdown();
  std::string got;
  const std::error_code end = read_to_end(*p->client, got);
  EXPECT_EQ(got, sent);
  EXPECT_EQ(end, asio::error::eof) << end.message();
}

// A client that does not trust the certificate ends the handshake with an alert, sent in clear
// before any keys are in use; the server's stream says which alert it read last. (Over TLS 1.3
// OpenSSL clients send it in clear too, where BoringSSL cannot tell it apart from a bad record:
// tests/integration/test_local_tls.py covers that with Python's ssl.)
TEST_F(TlsStreamTest, TheServerKnowsTheAlertThatEndedTheHandshake) {
  SSL_CTX_set_verify(client_ctx_.get(), SSL_VERIFY_PEER, nullptr);  // and no CA to trust
  SSL_CTX_set_max_proto_version(client_ctx_.get(), TLS1_2_VERSION);
  std::error_code server_ec, client_ec;
  auto p = handshake(server_ec, client_ec);
  ASSERT_TRUE(server_ec);
  ASSERT_TRUE(client_ec);
  EXPECT_EQ(p->server->handshake_alert(), std::optional<std::uint8_t>(TLS1_AD_UNKNOWN_CA))
      << server_ec.message();
  EXPECT_FALSE(p->server->handshake_read_plain_text());
}

TEST_F(TlsStreamTest, AHandshakeThatSucceededEndedOnNoAlert) {
  auto p = connect();
  EXPECT_EQ(p->server->handshake_alert(), std::nullopt);
  EXPECT_EQ(p->client->handshake_alert(), std::nullopt);
  EXPECT_FALSE(p->server->handshake_read_plain_text());
  EXPECT_FALSE(p->client->handshake_read_plain_text());
}

// Either end whose peer writes SMTP text where its handshake was due (a client's command after
// the 220 to STARTTLS, a server's line behind its 220) knows it read plain text.
TEST_F(TlsStreamTest, EachEndKnowsWhenItsPeerSentPlainText) {
  for (const TlsStream::Role role : {TlsStream::Role::server, TlsStream::Role::client}) {
    const bool server = role == TlsStream::Role::server;
    SCOPED_TRACE(server ? "server" : "client");
    asio::ip::tcp::acceptor acceptor(io_, {asio::ip::make_address("127.0.0.1"), 0});
    asio::ip::tcp::socket tls_socket(io_), plain_socket(io_);
    plain_socket.connect(acceptor.local_endpoint());
    acceptor.accept(tls_socket);
    TlsStream stream(tls_socket, server ? server_ctx_.get() : client_ctx_.get(), role);
    const std::string text = server ? "MAIL FROM:<x@example.test>\r\n" : "250 injected\r\n";
    asio::write(plain_socket, asio::buffer(text));
    std::error_code ec;
    asio::co_spawn(
        io_, [&]() -> asio::awaitable<void> { ec = co_await stream.handshake(); }, asio::detached);
    run();
    EXPECT_TRUE(ec);
    EXPECT_TRUE(stream.handshake_read_plain_text()) << ec.message();
  }
}

// Exim writes the replies that end a session in plain text on its TLS connection: the read
// after the records before it fails, and the stream gives the text's first line, capped; a
// failure on octets that are no text (a forged record) gives none.
TEST_F(TlsStreamTest, PlainTextAfterTheHandshakeIsGivenAsTextOnlyWhenItIsText) {
  struct Case {
    std::string raw;
    std::size_t limit;
    std::string want;
  };
  for (const Case& c : {Case{"554 SMTP synchronization error\r\n500 more\r\n", 200,
                             "554 SMTP synchronization error"},
                        Case{"421 exim.test: SMTP command timeout\r\n", 12, "421 exim.tes"},
                        Case{std::string("\x17\x03\x03\x00\x05hello", 10), 200, ""}}) {
    SCOPED_TRACE(c.want);
    auto p = connect();
    write_all(*p->server, {"250 OK id=1\r\n"});
    run();
    asio::write(p->server_socket, asio::buffer(c.raw));  // beside TLS, not in a record
    std::string got;
    const std::error_code end = read_to_end(*p->client, got);
    EXPECT_EQ(got, "250 OK id=1\r\n");
    ASSERT_TRUE(end);
    EXPECT_EQ(p->client->take_plain_text_after_handshake(end, c.limit), c.want) << end.message();
  }
  // A close is no text, whatever was read last.
  auto p = connect();
  EXPECT_EQ(p->client->take_plain_text_after_handshake(asio::error::eof, 200), "");
}

}  // namespace
}  // namespace mailtap::net
