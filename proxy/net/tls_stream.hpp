// TLS over a connected TCP socket, either end of the handshake, on a non-blocking descriptor with
// the reactor telling when to retry. A read takes all the records the socket has in one call into
// a buffer of the thread and hands them to BoringSSL from there; the records a write seals
// collect in another buffer of the thread and reach the socket in one call. Compared with
// asio::ssl::stream an idle link holds no buffers (BoringSSL releases its record buffers when
// they are empty, and the read-ahead and write batch buffers are the thread's). A reader and a
// writer may use one stream at the same time from coroutines of one thread. The stream knows
// which plaintext each record waiting for the socket carries, so it can say exactly what reached
// the socket, and drop what waits when the output stops (an upstream mailtap abandoned).
#pragma once

#include <openssl/ssl.h>

#include <array>
#include <asio/awaitable.hpp>
#include <asio/buffer.hpp>
#include <asio/ip/tcp.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <vector>

namespace mailtap::net {

class TlsStream {
 public:
  // Called for each certificate of the chain, as SSL_set_verify's callback: return whether to
  // go on. `preverified` is BoringSSL's own verdict for that certificate.
  using VerifyFn = std::function<bool(bool preverified, X509_STORE_CTX* store)>;

  // Which end of the handshake this stream is: mailtap connecting upstream, or accepting a
  // client (--local-tls).
  enum class Role { client, server };

  // `socket` must outlive the stream; it is switched to non-blocking mode.
  TlsStream(asio::ip::tcp::socket& socket, SSL_CTX* ctx, Role role = Role::client);
  ~TlsStream();
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;

  SSL* native_handle() const { return ssl_; }
  // The AlertDescription of the alert record the handshake read last, if it read one in clear
  // (header and two octets): where a handshake stopped on one, the peer refused to go on. Over
  // TLS 1.3 BoringSSL cannot say which alert it was (see client_handshake_failure.hpp).
  std::optional<std::uint8_t> handshake_alert() const;
  // The handshake read text where the peer's first TLS record was due: its first octet is
  // printable ASCII, which no record begins with (a content type, 20 to 24; an SSLv2 hello,
  // 0x80 or more). The peer speaks plain SMTP there: a client's command after the 220 to its
  // STARTTLS, a server without implicit TLS greeting, bytes behind a server's 220.
  bool handshake_read_plain_text() const;
  // The handshake read not one octet from the peer (its socket stayed silent).
  bool handshake_read_nothing() const { return ahead_.handshake_head.empty(); }
  // When handshake_read_plain_text(): the text's first line, from the octets the handshake
  // read and those already on the socket behind them (taken from it: the stream is done for),
  // without its line end, at most `limit` octets. Not escaped.
  std::string take_plain_text_line(std::size_t limit);
  // After the handshake, when a read failed with `ec` because the octets that came are no TLS
  // record and begin as text does: that text's first line, as take_plain_text_line() takes it
  // (Exim writes the replies that end a session, "554 SMTP synchronization error", in plain
  // text on its TLS connection). Unauthenticated octets anyone on the path could have sent:
  // to be quoted as such, never relayed. "" for any other failure.
  std::string take_plain_text_after_handshake(const std::error_code& ec, std::size_t limit);
  // Client side: the server sent a CertificateRequest in this handshake (BoringSSL then
  // presents the context's client certificate, --client-cert, if it has one).
  bool certificate_requested() const { return certificate_requested(ssl_); }
  static bool certificate_requested(const SSL* ssl);
  // Verify the peer with `fn` (SSL_VERIFY_PEER); without it, nothing is verified.
  void set_verify(VerifyFn fn);

  asio::awaitable<std::error_code> handshake();
  // At least one byte, or an error: asio::error::eof after the peer's close_notify,
  // asio::ssl::error::stream_truncated when the connection ended without one. The bytes are in
  // `buffer` when this returns, and the caller may use a buffer shared with other streams as
  // long as it consumes them before it next suspends.
  asio::awaitable<std::tuple<std::error_code, std::size_t>> read_some(asio::mutable_buffer buffer);
  // One attempt that never waits: the plaintext octets read into `buffer`, at least one unless
  // `ec` is set; asio::error::would_block when no whole record has come yet, else read_some's
  // errors.
  std::size_t read_now(asio::mutable_buffer buffer, std::error_code& ec);
  // All of `buffer`, or an error.
  asio::awaitable<std::tuple<std::error_code, std::size_t>> write(asio::const_buffer buffer);
  // One attempt that never waits: returns the octets of `buffer` written, all of them unless
  // `ec` is set. asio::error::would_block: the socket is full; write() goes on with the same
  // bytes (BoringSSL holds what it has already sealed of them). It can come with all of
  // `buffer` taken: sealed, part of it not yet on the socket (flushed() is false). Any other
  // `ec` is the link's error, which write() reports again.
  std::size_t write_now(asio::const_buffer buffer, std::error_code& ec);
  // No sealed record waits for the socket. When false, write() sends what waits (before any
  // bytes it is given; an empty buffer will do).
  bool flushed() const { return out_.unsent.empty(); }
  // Of the bytes write() and write_now() took (and of a write() under way, or one that failed,
  // all it was given), those not on the socket: in records sealed and waiting for it, or not
  // sealed. A record counts as sent once all of it is on the socket (the peer can open no part
  // of one cut short), so this is exact whatever the socket took.
  std::size_t unsent_plaintext() const {
    return static_cast<std::size_t>(out_.plaintext_sealed - out_.plaintext_sent) +
           out_.writing_rest;
  }
  // The ciphertext the socket has taken in all (handshake, records, alerts).
  std::uint64_t ciphertext_on_socket() const { return out_.ciphertext_taken - out_.unsent.size(); }
  // Nothing more goes to the socket: the records waiting for it are dropped, a write() under
  // way ends with asio::error::operation_aborted when it next runs (its wait is the caller's
  // to cancel), and so do later writes; shutdown() sends nothing. Returns what
  // unsent_plaintext() said: octets the peer will never get. After it, unsent_plaintext() is 0.
  std::size_t stop_output();
  // Sends close_notify if the socket takes it at once; never waits for the peer's.
  void shutdown();

 private:
  enum class Wait { none, read, write };
  Wait classify(int result, std::error_code& ec);
  Wait read_without_waiting(asio::mutable_buffer buffer, std::size_t& got, std::error_code& ec);
  Wait write_without_waiting(asio::const_buffer buffer, std::size_t& done, std::error_code& ec);
  std::size_t read_more(asio::mutable_buffer buffer, std::size_t got);
  asio::awaitable<std::error_code> wait(Wait w);

  // Ciphertext read from the socket ahead of BoringSSL: one read for all the records there,
  // handed over from memory (see tls_stream.cpp).
  struct ReadAhead {
    int fd = -1;
    std::string_view window;    // read, not yet taken by BoringSSL; in the thread's buffer
    std::string kept;           // a window's rest that had to outlive the read that made it
    std::size_t limit = 0;      // non-zero inside read_some(): how far to read ahead
    bool socket_empty = false;  // the last read ahead was short: wait for the reactor
    // The last octets read outside read_some() (the handshake): room for one alert record.
    std::string handshake_tail;
    // The first octets the handshake read (a record header's worth): the plain text quoted
    // when they are no record.
    std::string handshake_head;
    void note_handshake_octets(const char* octets, int n);
    // The last octets handed to BoringSSL (a record header's worth): those a read failed on.
    std::array<char, 5> last_handed{};
    std::size_t last_handed_size = 0;
    void note_handed(const char* octets, int n);
  };
  // The first line of `text` and of what the socket has behind it now, at most `limit` octets,
  // without its line end.
  std::string first_line_from(std::string text, std::size_t limit);

 public:
  // After an SSL_write (which seals one record, see tls_stream.cpp): how far the ciphertext
  // taken so far reaches, and how far the plaintext sealed so far. Once the socket has
  // everything up to `ciphertext_end`, the peer can read everything up to `plaintext_end`.
  struct Mark {
    std::uint64_t ciphertext_end = 0;
    std::uint64_t plaintext_end = 0;
  };

 private:
  // Ciphertext on its way to the socket, and how much of the plaintext it carries got there
  // (see tls_stream.cpp). Offsets count from the stream's start.
  struct Outgoing {
    int fd = -1;
    bool batching = false;  // inside write_without_waiting(): records go to the thread's batch
    bool stopped = false;   // stop_output(): nothing more goes to the socket
    std::string unsent;     // sealed, not taken by the socket yet: goes before anything else
    std::vector<Mark> unsent_marks;      // the marks of the records in `unsent`, oldest first
    std::uint64_t ciphertext_taken = 0;  // by the BIO: on the socket, in `unsent` or the batch
    std::uint64_t plaintext_sealed = 0;  // by the SSL_writes that returned
    std::uint64_t plaintext_sent = 0;    // of that, in records wholly on the socket
    std::size_t writing_rest = 0;        // given to the write() under way (or failed), not sealed
    int send_unsent();
    int send_batch();
    void note_sealed(std::size_t plaintext);
    void settle(std::vector<Mark>& marks);
  };
  static int outgoing_write(BIO* bio, const char* in, int len);
  static long outgoing_ctrl(BIO* bio, int cmd, long larg, void* parg);
  static BIO_METHOD* outgoing_method();
  static Wait send_failed(std::error_code& ec);

  static int read_ahead_read(BIO* bio, char* out, int len);
  static int read_ahead_fill(BIO* bio, char* out, int len);
  static BIO_METHOD* read_ahead_method();
  void begin_reading(std::size_t room);
  void end_reading();

  asio::ip::tcp::socket& socket_;
  SSL* ssl_ = nullptr;
  VerifyFn verify_;
  ReadAhead ahead_;
  Outgoing out_;
  // The last read stopped because the socket had no more bytes: the next one waits for the
  // reactor first rather than asking the empty socket again.
  bool drained_ = false;
};

}  // namespace mailtap::net
