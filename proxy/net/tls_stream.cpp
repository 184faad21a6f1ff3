#include "proxy/net/tls_stream.hpp"

#include <openssl/err.h>

#include <sys/socket.h>
#include <algorithm>
#include <asio/experimental/as_tuple.hpp>
#include <asio/ssl/error.hpp>
#include <asio/use_awaitable.hpp>
#include <cerrno>
#include <climits>
#include <cstring>
#include <iterator>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace mailtap::net {

namespace {

constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);

// Where the stream's VerifyFn is found from inside BoringSSL's verify callback.
int verify_fn_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

// Set (to the SSL itself) once the server asked for a client certificate.
int certificate_requested_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

int verify_trampoline(int preverified, X509_STORE_CTX* store) {
  auto* ssl =
      static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  auto* fn =
      ssl ? static_cast<TlsStream::VerifyFn*>(SSL_get_ex_data(ssl, verify_fn_index())) : nullptr;
  if (fn == nullptr || !*fn) return preverified;
  return (*fn)(preverified != 0, store) ? 1 : 0;
}

// Ciphertext lands here, as plaintext lands in the session's buffer of the thread: an idle
// stream holds no read buffer. Room for the 256 KiB a session reads at most, in whole records.
// On the heap: a thread_local array would sit in the static TLS block that every thread of the
// process carves out of its stack (CivetWeb's workers have 100 KiB). Not zeroed, like the
// batch below: only the pages in use become resident.
constexpr std::size_t kReadAheadOctets = std::size_t{320} * 1024;
std::span<char, kReadAheadOctets> thread_ciphertext() {
  thread_local const std::unique_ptr<char[]> buffer =
      std::make_unique_for_overwrite<char[]>(kReadAheadOctets);
  return std::span<char, kReadAheadOctets>(buffer.get(), kReadAheadOctets);
}

std::size_t take(std::string_view& from, char* out, std::size_t want) {
  const std::size_t n = std::min(want, from.size());
  std::memcpy(out, from.data(), n);
  from.remove_prefix(n);
  return n;
}

// Records sealed inside one write_without_waiting() collect here and reach the socket in one
// send(): BoringSSL writes each record (16 KiB of plaintext at most) with a system call of its
// own, sixteen for each 256 KiB read from the other side, each a pass through the TCP stack
// and a wake-up of the reader (docs/benchmarks.md: a fifth of the relay's CPU per MiB). Room
// for a whole read's records, sixteen full ones and what sealing adds to each (four, one per
// 64 KiB, cost 10 % more of the relay's samples); the thread's, like the read-ahead buffer, so
// an idle stream holds none.
constexpr std::size_t kBatchOctets = std::size_t{16} * (16384 + 256);
// Each SSL_write is given one record's plaintext at most, so that BoringSSL seals one record
// and the mark after it says exactly which plaintext that record carries (a larger SSL_write
// seals several, and says how much it took only once all of them are handed over).
constexpr std::size_t kRecordPlaintext = SSL3_RT_MAX_PLAIN_LENGTH;
struct SealedBatch {
  std::unique_ptr<char[]> data = std::make_unique_for_overwrite<char[]>(kBatchOctets);
  std::size_t used = 0;
  // The marks of the records in `data`, oldest first: room for a full batch's (sixteen full
  // records and a short one per write), so that the relay allocates none.
  std::vector<TlsStream::Mark> marks = [] {
    std::vector<TlsStream::Mark> v;
    v.reserve(32);
    return v;
  }();
};
SealedBatch& thread_batch() {
  thread_local SealedBatch batch;
  return batch;
}

bool socket_full(int err) {
  return err == EAGAIN || err == EWOULDBLOCK;
}

// Sends as much of `bytes` as the socket takes now: the octets sent, and errno set when that
// is not all of them.
std::size_t send_what_fits(int fd, std::string_view bytes) {
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t r = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) break;
    sent += static_cast<std::size_t>(r);
  }
  return sent;
}

// A send() that failed, as a BIO write's result: retry flags for a socket that is full for now.
int bio_write_failed(BIO* bio) {
  if (socket_full(errno)) BIO_set_retry_write(bio);
  return -1;
}

// A recv() result as a BIO read's: retry flags for a socket that is empty for now.
int bio_result(BIO* bio, ssize_t r) {
  if (r >= 0) return static_cast<int>(r);  // 0: the peer closed the connection
  if (socket_full(errno) || errno == EINTR) BIO_set_retry_read(bio);
  return -1;
}

}  // namespace

// BoringSSL reads a record as two exact reads, its header then its body, and learns that the
// socket is empty from a third that fails with EAGAIN: three system calls for each SMTP reply.
// Inside read_some() this BIO instead reads as much as is there (up to what the caller has
// room for) in one call and hands it over from memory; a short read means the socket is empty,
// so the read after the last record is answered without asking it. Outside read_some() (the
// handshake) it reads exactly what is asked, as a socket BIO does.
int TlsStream::read_ahead_read(BIO* bio, char* out, int len) {
  auto* a = static_cast<ReadAhead*>(BIO_get_data(bio));
  const int n = read_ahead_fill(bio, out, len);
  a->note_handed(out, n);
  return n;
}

int TlsStream::read_ahead_fill(BIO* bio, char* out, int len) {
  auto* a = static_cast<ReadAhead*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  if (len <= 0) return 0;
  const auto want = static_cast<std::size_t>(len);
  if (!a->kept.empty()) {
    std::string_view rest(a->kept);
    const std::size_t n = take(rest, out, want);
    a->kept.erase(0, n);
    if (a->kept.empty()) std::string().swap(a->kept);  // an idle stream keeps nothing
    return static_cast<int>(n);
  }
  if (!a->window.empty()) return static_cast<int>(take(a->window, out, want));
  if (a->limit == 0) {
    const int n = bio_result(bio, ::recv(a->fd, out, want, 0));
    a->note_handshake_octets(out, n);
    return n;
  }
  if (a->socket_empty) {
    BIO_set_retry_read(bio);
    errno = EAGAIN;
    return -1;
  }
  const auto buffer = thread_ciphertext();
  const std::size_t ask = std::min(buffer.size(), std::max(want, a->limit));
  const ssize_t r = ::recv(a->fd, buffer.data(), ask, 0);
  if (r <= 0) return bio_result(bio, r);
  a->socket_empty = static_cast<std::size_t>(r) < ask;
  a->window = std::string_view(buffer.data(), static_cast<std::size_t>(r));
  return static_cast<int>(take(a->window, out, want));
}

namespace {
// An alert record: content type 21, version 3.x, length 2, then level and description.
constexpr std::size_t kAlertRecordOctets = 7;
constexpr std::size_t kRecordHeaderOctets = 5;
}  // namespace

void TlsStream::ReadAhead::note_handshake_octets(const char* octets, int n) {
  if (n <= 0) return;
  if (handshake_head.size() < kRecordHeaderOctets)
    handshake_head.append(
        octets, std::min(static_cast<std::size_t>(n), kRecordHeaderOctets - handshake_head.size()));
  handshake_tail.append(octets, static_cast<std::size_t>(n));
  if (handshake_tail.size() > kAlertRecordOctets)
    handshake_tail.erase(0, handshake_tail.size() - kAlertRecordOctets);
}

// BoringSSL reads a record's header alone (read_ahead_read): when it fails on one, the last
// octets handed to it are that header. A copy of at most five octets per read.
void TlsStream::ReadAhead::note_handed(const char* octets, int n) {
  if (n <= 0) return;
  const auto count = static_cast<std::size_t>(n);
  if (count >= last_handed.size()) {
    std::memcpy(last_handed.data(), octets + count - last_handed.size(), last_handed.size());
    last_handed_size = last_handed.size();
    return;
  }
  const std::size_t keep = std::min(last_handed_size, last_handed.size() - count);
  std::memmove(last_handed.data(), last_handed.data() + last_handed_size - keep, keep);
  std::memcpy(last_handed.data() + keep, octets, count);
  last_handed_size = keep + count;
}

std::optional<std::uint8_t> TlsStream::handshake_alert() const {
  const std::string& t = ahead_.handshake_tail;
  if (t.size() < kAlertRecordOctets) return std::nullopt;
  const auto octet = [&t](std::size_t i) { return static_cast<std::uint8_t>(t[i]); };
  if (octet(0) != SSL3_RT_ALERT || octet(1) != 3 || octet(3) != 0 || octet(4) != 2)
    return std::nullopt;
  return octet(6);
}

namespace {
// Printable ASCII or a line end: no TLS record starts so (a content type, 20 to 24; an SSLv2
// hello, 0x80 or more).
bool starts_plain_text(std::string_view octets) {
  if (octets.empty()) return false;
  const auto c = static_cast<unsigned char>(octets.front());
  return (c >= 0x20 && c < 0x7f) || c == '\r' || c == '\n' || c == '\t';
}
}  // namespace

bool TlsStream::handshake_read_plain_text() const {
  return starts_plain_text(ahead_.handshake_head);
}

std::string TlsStream::take_plain_text_line(std::size_t limit) {
  if (!handshake_read_plain_text()) return {};
  return first_line_from(ahead_.handshake_head, limit);
}

std::string TlsStream::take_plain_text_after_handshake(const std::error_code& ec,
                                                       std::size_t limit) {
  // The record layer refuses a header whose version is not 3.x: text ("554 SMTP...") always.
  if (ec.category() != asio::error::get_ssl_category() ||
      ERR_GET_LIB(static_cast<std::uint32_t>(ec.value())) != ERR_LIB_SSL ||
      ERR_GET_REASON(static_cast<std::uint32_t>(ec.value())) != SSL_R_WRONG_VERSION_NUMBER)
    return {};
  const std::string_view header(ahead_.last_handed.data(), ahead_.last_handed_size);
  if (!starts_plain_text(header)) return {};
  // What came behind the header in the same read, then what the socket has now.
  std::string text = std::string(header) + std::string(ahead_.window) + ahead_.kept;
  ahead_.window = {};
  std::string().swap(ahead_.kept);
  return first_line_from(std::move(text), limit);
}

std::string TlsStream::first_line_from(std::string text, std::size_t limit) {
  while (text.find('\n') == std::string::npos && text.size() < limit) {
    char more[512];
    const ssize_t n =
        ::recv(ahead_.fd, more, std::min(sizeof more, limit - text.size()), MSG_DONTWAIT);
    if (n <= 0) break;  // nothing more there yet: what came is what is quoted
    text.append(more, static_cast<std::size_t>(n));
  }
  text = text.substr(0, std::min(text.find('\n'), limit));
  if (!text.empty() && text.back() == '\r') text.pop_back();
  return text;
}

// Where the plaintext is: each SSL_write that returns seals one record (kRecordPlaintext), and
// leaves a mark of the ciphertext taken and the plaintext sealed so far with its record: in the
// batch, in `unsent`, or none when the record is on the socket already. Ciphertext only ever
// waits in one of the two (records join the batch once `unsent` is empty, and the batch joins
// `unsent` whole), so what is on the socket is all taken but `unsent` and the batch, and a
// record whose mark that reaches has been sent whole. A handful of marks per batch; nothing per
// octet.
void TlsStream::Outgoing::note_sealed(std::size_t plaintext) {
  plaintext_sealed += plaintext;
  const Mark mark{ciphertext_taken, plaintext_sealed};
  SealedBatch& batch = thread_batch();
  if (batching && batch.used > 0)
    batch.marks.push_back(mark);
  else if (!unsent.empty())
    unsent_marks.push_back(mark);
  else
    plaintext_sent = plaintext_sealed;
}

// The records of `marks` that are wholly on the socket now (the batch is empty: sent, or
// joined `unsent`): their plaintext is sent, their marks go.
void TlsStream::Outgoing::settle(std::vector<Mark>& marks) {
  const std::uint64_t on_socket = ciphertext_taken - unsent.size();
  const auto waiting = std::find_if(marks.begin(), marks.end(), [on_socket](const Mark& m) {
    return m.ciphertext_end > on_socket;
  });
  if (waiting == marks.begin()) return;
  plaintext_sent = std::prev(waiting)->plaintext_end;
  marks.erase(marks.begin(), waiting);
}

// Sends what waits, as far as the socket takes it: 0 when all of it went, otherwise -1 with
// errno (EAGAIN: the socket is full).
int TlsStream::Outgoing::send_unsent() {
  const std::size_t sent = send_what_fits(fd, unsent);
  if (sent == unsent.size()) {
    std::string().swap(unsent);  // an idle stream keeps nothing
    settle(unsent_marks);
    std::vector<Mark>().swap(unsent_marks);
    return 0;
  }
  const int err = errno;
  unsent.erase(0, sent);
  settle(unsent_marks);
  errno = err;
  return -1;
}

// Sends the thread's batch, behind what already waits; what the socket does not take waits in
// `unsent` (the batch is the next write's), with its marks. 0 when all of it went, otherwise -1
// with errno.
int TlsStream::Outgoing::send_batch() {
  SealedBatch& batch = thread_batch();
  const std::string_view sealed(batch.data.get(), std::exchange(batch.used, 0));
  int result = 0;
  if (!unsent.empty()) {
    unsent.append(sealed);
    result = send_unsent();
  } else {
    const std::size_t sent = send_what_fits(fd, sealed);
    if (sent < sealed.size()) {
      result = -1;
      const int err = errno;
      unsent.assign(sealed.substr(sent));
      errno = err;
    }
  }
  const int err = errno;
  settle(batch.marks);
  unsent_marks.insert(unsent_marks.end(), batch.marks.begin(), batch.marks.end());
  batch.marks.clear();
  errno = err;
  return result;
}

// BoringSSL's writes: while batching, sealed records join the thread's batch (sent when it is
// full, and at the end of the write); otherwise (handshake messages, alerts, close_notify) they
// are sent at once, as by a socket BIO. Either way only once everything sealed before is out.
int TlsStream::outgoing_write(BIO* bio, const char* in, int len) {
  auto* out = static_cast<Outgoing*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  if (len <= 0) return 0;
  if (out->stopped) {
    errno = ECANCELED;  // see stop_output(): not even an alert goes
    return -1;
  }
  const auto size = static_cast<std::size_t>(len);
  SealedBatch& batch = thread_batch();
  if (out->batching && batch.used + size > kBatchOctets && batch.used > 0 && out->send_batch() < 0)
    return bio_write_failed(bio);
  if (!out->unsent.empty() && out->send_unsent() < 0) return bio_write_failed(bio);
  if (out->batching && size <= kBatchOctets) {
    std::memcpy(batch.data.get() + batch.used, in, size);
    batch.used += size;
    out->ciphertext_taken += size;
    return len;
  }
  const std::size_t sent = send_what_fits(out->fd, std::string_view(in, size));
  out->ciphertext_taken += sent;
  return sent > 0 ? static_cast<int>(sent) : bio_write_failed(bio);
}

long TlsStream::outgoing_ctrl(BIO* bio, int cmd, long /*larg*/, void* parg) {
  auto* out = static_cast<Outgoing*>(BIO_get_data(bio));
  switch (cmd) {
    case BIO_CTRL_FLUSH:
      BIO_clear_retry_flags(bio);
      if (out->send_unsent() == 0) return 1;
      return bio_write_failed(bio);
    case BIO_C_GET_FD:
      if (parg != nullptr) *static_cast<int*>(parg) = out->fd;
      return out->fd;
    default:
      return 0;
  }
}

BIO_METHOD* TlsStream::outgoing_method() {
  static BIO_METHOD* const method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "mailtap outgoing");
    if (m != nullptr) {
      BIO_meth_set_write(m, &TlsStream::outgoing_write);
      BIO_meth_set_ctrl(m, &TlsStream::outgoing_ctrl);
    }
    return m;
  }();
  return method;
}

BIO_METHOD* TlsStream::read_ahead_method() {
  static BIO_METHOD* const method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "mailtap read-ahead");
    if (m != nullptr) BIO_meth_set_read(m, &TlsStream::read_ahead_read);
    return m;
  }();
  return method;
}

// Reads ahead for a caller with `room` octets of plaintext space: what a read brings beyond it
// would outlive the call (and be copied to `kept`).
void TlsStream::begin_reading(std::size_t room) {
  ahead_.limit = std::max<std::size_t>(room, 1);
  ahead_.socket_empty = false;
}

// The thread's buffer is another stream's once this one suspends: what BoringSSL has not taken
// of the window is kept (records read ahead when the caller's buffer filled up on a record's
// last octet, or bytes after a close_notify or an error).
void TlsStream::end_reading() {
  ahead_.limit = 0;
  if (!ahead_.window.empty()) {
    ahead_.kept.append(ahead_.window);
    ahead_.window = {};
  }
}

TlsStream::TlsStream(asio::ip::tcp::socket& socket, SSL_CTX* ctx, Role role)
    : socket_(socket), ssl_(SSL_new(ctx)) {
  std::error_code ignored;
  socket_.non_blocking(true, ignored);
  if (ssl_ == nullptr) return;
  const int fd = static_cast<int>(socket_.native_handle());
  ahead_.fd = fd;
  out_.fd = fd;
  BIO* rbio = read_ahead_method() != nullptr ? BIO_new(read_ahead_method()) : nullptr;
  BIO* wbio = outgoing_method() != nullptr ? BIO_new(outgoing_method()) : nullptr;
  if (rbio != nullptr && wbio != nullptr) {
    BIO_set_data(rbio, &ahead_);
    BIO_set_init(rbio, 1);
    SSL_set0_rbio(ssl_, rbio);
    BIO_set_data(wbio, &out_);
    BIO_set_init(wbio, 1);
    SSL_set0_wbio(ssl_, wbio);
  } else {
    BIO_free(rbio);
    BIO_free(wbio);
    SSL_set_fd(ssl_, fd);
  }
  if (role == Role::server) {
    SSL_set_accept_state(ssl_);
  } else {
    SSL_set_connect_state(ssl_);
    // BoringSSL asks a client for its certificate only when the server requested one: noted,
    // so that the alert a server then sends can be explained, and the record can say whether
    // mailtap's certificate (if it has one) was presented. On the SSL, not the stream: the TLS
    // session cache reads it when the server hands out a session (tls_session_cache.cpp).
    SSL_set_cert_cb(
        ssl_,
        [](SSL* ssl, void*) {
          SSL_set_ex_data(ssl, certificate_requested_index(), ssl);
          return 1;
        },
        nullptr);
  }
  // The writer retries with the same bytes, but they may have moved (a std::string chunk).
  SSL_set_mode(ssl_, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
}

bool TlsStream::certificate_requested(const SSL* ssl) {
  return ssl != nullptr && SSL_get_ex_data(ssl, certificate_requested_index()) != nullptr;
}

TlsStream::~TlsStream() {
  if (ssl_ != nullptr) SSL_free(ssl_);
}

void TlsStream::set_verify(VerifyFn fn) {
  verify_ = std::move(fn);
  if (ssl_ == nullptr) return;
  SSL_set_ex_data(ssl_, verify_fn_index(), &verify_);
  SSL_set_verify(ssl_, SSL_VERIFY_PEER, verify_trampoline);
}

TlsStream::Wait TlsStream::classify(int result, std::error_code& ec) {
  const int err = SSL_get_error(ssl_, result);
  switch (err) {
    case SSL_ERROR_WANT_READ:
      return Wait::read;
    case SSL_ERROR_WANT_WRITE:
      return Wait::write;
    case SSL_ERROR_ZERO_RETURN:
      ec = asio::error::eof;  // close_notify
      return Wait::none;
    case SSL_ERROR_SYSCALL:
      if (ERR_peek_error() == 0) {
        // The socket ended (or failed) without close_notify.
        ec = errno != 0 && result < 0 ? std::error_code(errno, asio::error::get_system_category())
                                      : std::error_code(asio::ssl::error::stream_truncated);
        return Wait::none;
      }
      [[fallthrough]];
    default: {
      const unsigned long code = ERR_get_error();
      ec = code != 0 ? std::error_code(static_cast<int>(code), asio::error::get_ssl_category())
                     : std::error_code(asio::error::fault);
      ERR_clear_error();
      return Wait::none;
    }
  }
}

asio::awaitable<std::error_code> TlsStream::wait(Wait w) {
  auto [ec] = co_await socket_.async_wait(
      w == Wait::read ? asio::socket_base::wait_read : asio::socket_base::wait_write, use_tuple);
  co_return ec;
}

asio::awaitable<std::error_code> TlsStream::handshake() {
  if (ssl_ == nullptr) co_return std::error_code(asio::error::no_memory);
  for (;;) {
    ERR_clear_error();
    errno = 0;
    const int r = SSL_do_handshake(ssl_);
    if (r == 1) co_return std::error_code{};
    std::error_code ec;
    const Wait w = classify(r, ec);
    if (w == Wait::none) co_return ec;
    if (std::error_code wec = co_await wait(w)) co_return wec;
  }
}

// SSL_read as far as `buffer` goes: what was read (Wait::none, `ec` clear, `got` at least one),
// what to wait for before trying again (nothing read), or an error (Wait::none, `ec` set).
TlsStream::Wait TlsStream::read_without_waiting(asio::mutable_buffer buffer, std::size_t& got,
                                                std::error_code& ec) {
  const int size = static_cast<int>(std::min<std::size_t>(buffer.size(), INT_MAX));
  ERR_clear_error();
  errno = 0;
  begin_reading(static_cast<std::size_t>(size));
  const int r = SSL_read(ssl_, buffer.data(), size);
  got = r > 0 ? read_more(buffer, static_cast<std::size_t>(r)) : 0;
  end_reading();
  return r > 0 ? Wait::none : classify(r, ec);
}

asio::awaitable<std::tuple<std::error_code, std::size_t>> TlsStream::read_some(
    asio::mutable_buffer buffer) {
  if (std::exchange(drained_, false)) {
    if (std::error_code wec = co_await wait(Wait::read)) co_return std::tuple{wec, std::size_t{0}};
  }
  for (;;) {
    std::error_code ec;
    std::size_t got = 0;
    const Wait w = read_without_waiting(buffer, got, ec);
    if (w == Wait::none) co_return std::tuple{ec, got};
    if (std::error_code wec = co_await wait(w)) co_return std::tuple{wec, std::size_t{0}};
  }
}

std::size_t TlsStream::read_now(asio::mutable_buffer buffer, std::error_code& ec) {
  ec.clear();
  std::size_t got = 0;
  // Wanting to write (a reply its KeyUpdate asks for, to a full socket) is waiting too.
  if (read_without_waiting(buffer, got, ec) != Wait::none) ec = asio::error::would_block;
  return got;
}

// A send that did not take everything: wait until the socket has room, or the error (errno).
TlsStream::Wait TlsStream::send_failed(std::error_code& ec) {
  if (socket_full(errno)) return Wait::write;
  ec = std::error_code(errno, asio::error::get_system_category());
  return Wait::none;
}

// SSL_write until all of `buffer` went and its records are on the socket (Wait::none, `ec`
// clear), the socket wants waiting for (`done` says how far it got: all of `buffer` when only
// sealed records wait), or an error (Wait::none, `ec` set).
TlsStream::Wait TlsStream::write_without_waiting(asio::const_buffer buffer, std::size_t& done,
                                                 std::error_code& ec) {
  ec.clear();
  if (out_.stopped) {
    ec = asio::error::operation_aborted;
    return Wait::none;
  }
  if (!out_.unsent.empty() && out_.send_unsent() < 0) return send_failed(ec);
  Wait wait = Wait::none;
  out_.batching = true;
  while (done < buffer.size()) {
    // A retry after WANT_WRITE gives the same bytes, so the same length: what BoringSSL wants.
    const int size = static_cast<int>(std::min(buffer.size() - done, kRecordPlaintext));
    ERR_clear_error();
    errno = 0;
    const int r = SSL_write(ssl_, static_cast<const char*>(buffer.data()) + done, size);
    if (r <= 0) {
      wait = classify(r, ec);
      break;
    }
    out_.note_sealed(static_cast<std::size_t>(r));
    done += static_cast<std::size_t>(r);
  }
  out_.batching = false;
  // What was sealed goes now, whatever stopped the loop: the batch is the next write's.
  if (thread_batch().used > 0 && out_.send_batch() < 0 && wait == Wait::none && !ec)
    wait = send_failed(ec);
  return wait;
}

std::size_t TlsStream::write_now(asio::const_buffer buffer, std::error_code& ec) {
  std::size_t done = 0;
  if (write_without_waiting(buffer, done, ec) != Wait::none) ec = asio::error::would_block;
  return done;
}

// Records already on the socket go into the same call: one record (16 KiB) per read would
// cost a dialogue pass and a reactor round per record on a large message.
std::size_t TlsStream::read_more(asio::mutable_buffer buffer, std::size_t got) {
  char* data = static_cast<char*>(buffer.data());
  while (got < buffer.size()) {
    const int size = static_cast<int>(std::min<std::size_t>(buffer.size() - got, INT_MAX));
    ERR_clear_error();
    ahead_.limit = std::max<std::size_t>(static_cast<std::size_t>(size), 1);
    const int r = SSL_read(ssl_, data + got, size);
    if (r <= 0) {
      // Whatever else stopped it (close_notify, an error) shows again on the next call, which
      // reports it.
      drained_ = SSL_get_error(ssl_, r) == SSL_ERROR_WANT_READ;
      ERR_clear_error();
      break;
    }
    got += static_cast<std::size_t>(r);
  }
  return got;
}

// While it waits, and after it failed, what it has not sealed of `buffer` counts as unsent
// (unsent_plaintext()); once stop_output() counted it, no more.
asio::awaitable<std::tuple<std::error_code, std::size_t>> TlsStream::write(
    asio::const_buffer buffer) {
  std::size_t done = 0;
  for (;;) {
    std::error_code ec;
    const Wait w = write_without_waiting(buffer, done, ec);
    out_.writing_rest = out_.stopped || (w == Wait::none && !ec) ? 0 : buffer.size() - done;
    if (w == Wait::none) co_return std::tuple{ec, done};
    std::error_code wec = co_await wait(w);
    if (out_.stopped) {
      out_.writing_rest = 0;
      co_return std::tuple{std::error_code(asio::error::operation_aborted), done};
    }
    if (wec) co_return std::tuple{wec, done};
  }
}

std::size_t TlsStream::stop_output() {
  const std::size_t unsent = unsent_plaintext();
  out_.stopped = true;
  out_.ciphertext_taken -= out_.unsent.size();  // never on the socket
  std::string().swap(out_.unsent);
  std::vector<Mark>().swap(out_.unsent_marks);
  out_.plaintext_sent = out_.plaintext_sealed;  // dropped: no longer waiting
  out_.writing_rest = 0;
  return unsent;
}

void TlsStream::shutdown() {
  if (ssl_ == nullptr || out_.stopped) return;
  ERR_clear_error();
  SSL_shutdown(ssl_);  // writes close_notify if the socket takes it; the peer's is not awaited
  ERR_clear_error();
}

}  // namespace mailtap::net
