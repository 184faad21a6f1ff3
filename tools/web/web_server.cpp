#include "tools/web/web_server.hpp"

#include <civetweb.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <asio/io_context.hpp>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "proxy/common/terminal_escape.hpp"
#include "proxy/net/endpoint.hpp"
#include "proxy/net/peer_owner.hpp"
#include "storage/reader.hpp"
#include "tools/json_writer.hpp"
#include "tools/web/api.hpp"
#include "tools/web/change_watcher.hpp"
#include "tools/web/host_check.hpp"
#include "tools/web/http_response.hpp"
#include "tools/web/peer_watch.hpp"
#include "tools/web/routes.hpp"

namespace mailtap::tools::web {

namespace {

constexpr auto kPollInterval = std::chrono::milliseconds(250);
// A closed stream is noticed only when a write to it fails: the first write after the page went
// away still succeeds (the peer answers it with a reset), the next one fails. A comment every
// second frees a reloaded page's slot within about two seconds.
constexpr auto kKeepAlive = std::chrono::seconds(1);
// Each event stream holds one of CivetWeb's threads for as long as a page is open; so does a
// connection whose request head has not come in yet, for at most kRequestTimeout (a browser
// sends it at once). With 24 threads left beside the streams, a handful of slow or idle
// connections cannot hold the page up for longer than that.
constexpr int kThreads = 32;
constexpr int kMaxStreams = 8;
constexpr auto kRequestTimeout = std::chrono::seconds(5);

struct ContextStopper {
  void operator()(mg_context* ctx) const noexcept { mg_stop(ctx); }
};

// Every Host header of the request: mg_get_header gives only the first, and a second one that
// names another server must not be passed over (RFC 9112 section 3.2: 400).
std::vector<std::string_view> host_headers(const mg_request_info* info) {
  std::vector<std::string_view> hosts;
  for (int i = 0; i < info->num_headers; ++i) {
    const mg_header& h = info->http_headers[i];
    if (h.name != nullptr && h.value != nullptr && strcasecmp(h.name, "Host") == 0)
      hosts.emplace_back(h.value);
  }
  return hosts;
}

bool write_all(mg_connection* conn, std::string_view bytes) {
  return mg_write(conn, bytes.data(), bytes.size()) == static_cast<int>(bytes.size());
}

// Why CivetWeb could not listen on `listen`: its own text says only "Failed to setup server
// ports", so the address is bound here, as CivetWeb binds it, for the system's reason.
std::string listen_failure(const asio::ip::tcp::endpoint& listen, const char* civetweb_text) {
  asio::io_context io;
  asio::ip::tcp::acceptor probe(io);
  std::error_code ec;
  probe.open(listen.protocol(), ec);
  if (!ec) probe.set_option(asio::ip::tcp::acceptor::reuse_address(true), ec);
  if (!ec) probe.bind(listen, ec);
  std::string why = ec ? ec.message() : civetweb_text[0] ? civetweb_text : "CivetWeb failed";
  if (ec == asio::error::address_in_use) why += " (choose another ADDR:PORT)";
  return "cannot serve the web page on " + net::endpoint_label(listen) + ": " + why;
}

// The socket of `conn`: CivetWeb does not hand it out, so it is found among the process's open
// files by its two ends (the client's address and port, the listening port). -1 if not found.
int connection_socket(const mg_request_info& info) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
    int fd = -1;
    try {
      fd = std::stoi(entry.path().filename().string());
    } catch (const std::exception&) {
      continue;
    }
    sockaddr_storage local{}, peer{};
    socklen_t local_size = sizeof local, peer_size = sizeof peer;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_size) != 0 ||
        getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_size) != 0)
      continue;
    char address[INET6_ADDRSTRLEN] = {};
    int local_port = 0, peer_port = 0;
    if (peer.ss_family == AF_INET) {
      const auto& p = reinterpret_cast<const sockaddr_in&>(peer);
      inet_ntop(AF_INET, &p.sin_addr, address, sizeof address);
      peer_port = ntohs(p.sin_port);
      local_port = ntohs(reinterpret_cast<const sockaddr_in&>(local).sin_port);
    } else if (peer.ss_family == AF_INET6) {
      const auto& p = reinterpret_cast<const sockaddr_in6&>(peer);
      inet_ntop(AF_INET6, &p.sin6_addr, address, sizeof address);
      peer_port = ntohs(p.sin6_port);
      local_port = ntohs(reinterpret_cast<const sockaddr_in6&>(local).sin6_port);
    }
    if (peer_port == info.remote_port && local_port == info.server_port &&
        std::strcmp(address, info.remote_addr) == 0)
      return fd;
  }
  return -1;
}

// RFC 9110 section 9.1: a general-purpose server supports GET and HEAD; HEAD is answered as
// GET is, without the body (send). Every body's length is known before it is sent, a streamed
// one's too, so HEAD's Content-Length is GET's.
bool is_served_method(std::string_view method) {
  return method == "GET" || method == "HEAD";
}

// A request whose answer is its head only.
bool wants_head_only(const mg_connection* conn) {
  const mg_request_info* info = mg_get_request_info(conn);
  return info != nullptr && info->request_method != nullptr &&
         std::strcmp(info->request_method, "HEAD") == 0;
}

// CivetWeb refuses a method it does not know (TRACE, left out on purpose, or any other token)
// as a bad request before a handler sees it: parse_http_request (civetweb.c, 1.15) checks the
// method last, after the version, leaving the line's words in the request info. A request line
// of a method token, a target and HTTP/1.x that is refused all the same was refused for its
// method (or, for one CivetWeb knows, for a header it could not read): the 405 or 501 every
// method but GET and HEAD gets (method_refusal). Its headers are not read, so there is no Host to
// check. None is needed: the Host check keeps a page on another name (DNS rebinding) from reading
// the record, and this reply says only what the request line asked for, nothing of the record.
bool refused_for_its_method(const mg_request_info* info) {
  if (info == nullptr || info->request_method == nullptr || info->request_uri == nullptr ||
      info->http_version == nullptr)
    return false;
  const std::string_view version = info->http_version;  // past "HTTP/" once that was checked
  const std::string_view method = info->request_method;
  constexpr std::string_view kTokenCharacters =
      "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  return (version == "1.0" || version == "1.1") && !method.empty() && !is_served_method(method) &&
         method.find_first_not_of(kTokenCharacters) == std::string_view::npos;
}

}  // namespace

std::string unsupported_listen_address(const asio::ip::tcp::endpoint& listen) {
  if (!listen.address().is_v6() || mg_check_feature(MG_FEATURES_IPV6) != 0) return {};
  return "cannot serve the web page on " + net::endpoint_label(listen) +
         ": the CivetWeb library mailtap serves it with (libcivetweb " + mg_version() +
         ") is built without IPv6; use 127.0.0.1:" + std::to_string(listen.port()) + " instead";
}

struct WebServer::Impl {
  HostPolicy host_policy;
  asio::ip::tcp::endpoint listen;
  net::LocalUserPolicy local_users;
  // The names refusals give, each looked up once (the workers share it).
  mutable net::UserNameCache user_names;
  std::string url;
  std::unique_ptr<Api> api;
  std::unique_ptr<storage::Reader> watch_reader;  // the watcher thread's own connection
  std::unique_ptr<ChangeWatcher> watcher;
  std::atomic<int> streams{0};
  // A 500 built whole at the start: sent when memory runs out, which building one would need.
  std::string out_of_memory_reply;
  std::unique_ptr<mg_context, ContextStopper> context;  // last: stopped before the rest goes

  ~Impl() {
    if (watcher) watcher->stop();  // event streams return, so mg_stop can join their threads
    stop_context();
  }

  // CivetWeb's master thread (1.15) looks at its stop flag only between polls of its listening
  // socket, up to 2 s apart, so mg_stop kept Ctrl-C (or a stop signal to `proxy --web`) waiting
  // that long. A connection to the socket while it stops ends the poll at once; one accepted
  // before the flag is seen is closed unread by its worker.
  void stop_context() noexcept {
    if (!context) return;
    std::atomic<bool> stopped{false};
    std::optional<std::thread> knocker;
    try {
      knocker.emplace([this, &stopped] {
        while (!stopped.load()) {
          knock();
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
      });
    } catch (const std::exception&) {  // no thread: the stop takes its 2 s
    }
    context.reset();
    stopped = true;
    if (knocker) knocker->join();
  }

  void knock() const noexcept {
    asio::ip::address to = listen.address();
    if (to.is_unspecified())
      to = to.is_v6() ? asio::ip::address(asio::ip::address_v6::loopback())
                      : asio::ip::address(asio::ip::address_v4::loopback());
    const asio::ip::tcp::endpoint at(to, host_policy.port);
    const int fd = ::socket(at.protocol().family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return;
    ::connect(fd, at.data(), static_cast<socklen_t>(at.size()));
    ::close(fd);
  }

  static int on_request(mg_connection* conn) {
    auto* self = static_cast<Impl*>(mg_get_user_data(mg_get_context(conn)));
    return self->handle(conn);
  }

  // CivetWeb's own replies to a request it could not read (a malformed request line, a head too
  // large, an HTTP version it does not serve) copy request bytes into the status line and lack
  // the security headers: mailtap sends its own, fixed one instead.
  static int on_http_error(mg_connection* conn, int status, const char*) {
    mark_answered(conn);
    const mg_request_info* info = mg_get_request_info(conn);
    auto* self = static_cast<Impl*>(mg_get_user_data(mg_get_context(conn)));
    try {
      const Response r = status == 400 && refused_for_its_method(info)
                             ? method_refusal(info->request_method)
                             : unreadable_request_response(status);
      write_all(conn, serialize_head(r));
      if (!wants_head_only(conn)) write_all(conn, r.body);
    } catch (...) {  // as handle
      self->answer_out_of_memory(conn, 0);
    }
    return 0;  // handled: CivetWeb sends nothing
  }

  // CivetWeb reads some requests and then closes their connection without handing them to a
  // callback (process_new_connection in its civetweb.c, 1.15): an absolute-form target naming
  // another port, or none (port 80), which it takes for a request to proxy, and the asterisk
  // form ("OPTIONS * HTTP/1.1"), which it leaves to do. When it closes the connection the
  // request and the socket are still there: the client gets what the checks make of it, rather
  // than a connection closed without a word.
  static void on_connection_close(const mg_connection* closing) {
    if (mg_get_user_connection_data(closing) != nullptr) return;  // answered
    const mg_request_info* info = mg_get_request_info(closing);
    // No request read: nothing came, or not all of a head before the timeout.
    if (info == nullptr || info->request_method == nullptr || info->request_uri == nullptr) return;
    auto* self = static_cast<Impl*>(mg_get_user_data(mg_get_context(closing)));
    // The callback is handed the connection const; it is CivetWeb's, written as any other.
    auto* conn = const_cast<mg_connection*>(closing);
    try {
      self->send(conn, self->refusal(*info).value_or(error_response(
                           400, "only a path (/...) or this server's own URL names a page")));
    } catch (...) {  // as handle
      self->answer_out_of_memory(conn, 0);
    }
  }

  // Set on the connection once mailtap has answered its request (CivetWeb clears it for each).
  static void mark_answered(mg_connection* conn) {
    mg_set_user_connection_data(conn, mg_get_user_data(mg_get_context(conn)));
  }

  // `already_sent`: octets of the head a PeerWatch sent early.
  int send(mg_connection* conn, const Response& r, std::size_t already_sent = 0) {
    if (r.streamed && !wants_head_only(conn)) return send_streamed_response(conn, r, already_sent);
    const std::string head = serialize_head(r);
    write_all(conn, std::string_view(head).substr(already_sent));
    if (!wants_head_only(conn)) write_all(conn, r.body);
    return r.status;
  }

  // A body that reads the record as it goes runs SQL: it is sent on a full-size stack, its head
  // too, so that when no thread can be started nothing has been sent and the client gets a 503.
  int send_streamed_response(mg_connection* conn, const Response& r, std::size_t already_sent) {
    std::string why;
    const bool ran = on_full_stack(
        [&] {
          bool head_built = false;
          try {
            const std::string head = serialize_head(r);
            head_built = true;
            if (write_all(conn, std::string_view(head).substr(already_sent)))
              send_streamed(conn, *r.streamed);
          } catch (const std::exception&) {
            // What the body throws is caught in send_streamed; what is left to throw is the
            // head or a log line running out of memory, so this says it without allocating.
            if (!head_built)
              write_all(conn, std::string_view(out_of_memory_reply).substr(already_sent));
            std::fputs("mailtap web: a response was cut short: out of memory\n", stderr);
          }
        },
        why);
    if (ran) return r.status;
    return send(conn, no_thread_reply(conn, why), already_sent);
  }

  // The request's path as a line on stderr quotes it, or `otherwise`: CivetWeb has decoded it,
  // so "%1b" is an ESC there, which must not reach the operator's terminal (escape_text).
  static std::string request_path(const mg_connection* conn, std::string_view otherwise) {
    const mg_request_info* info = mg_get_request_info(conn);
    if (!info || !info->local_uri) return std::string(otherwise);
    return escape_text(info->local_uri);
  }

  // Reads a body file, and a session's events a batch at a time (SQL: on_full_stack). The octets
  // are counted against the Content-Length already sent: never more (a piece that would pass it
  // is not written), and if fewer (a body file that failed or came out short mid-stream) the
  // connection ends there, so the client sees a download cut short rather than one silently
  // wrong; it is said on stderr. Every response is "Connection: close" (keep-alive is off), so
  // returning ends the connection.
  static void send_streamed(mg_connection* conn, const StreamedBody& body) {
    std::uint64_t sent = 0;
    bool overrun = false;
    bool peer_gone = false;
    std::string error;
    const bool complete = write_streamed_body(
        body,
        [&](std::string_view piece) {
          if (piece.size() > body.length - sent) {
            overrun = true;
            return false;
          }
          if (!write_all(conn, piece)) {
            peer_gone = true;  // the client went away: nothing to say
            return false;
          }
          sent += piece.size();
          return true;
        },
        error);
    if (peer_gone || (complete && !overrun && sent == body.length)) return;
    std::string line = "mailtap web: " + request_path(conn, "a download");
    line += ": closed after " + std::to_string(sent) + " of the " + std::to_string(body.length) +
            " octets announced: ";
    if (overrun)
      line += "the body is longer than announced";
    else if (!error.empty())
      line += error;
    else
      line += "the body is shorter than announced";
    line += "\n";
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fflush(stderr);
  }

  // What every request must be before a route answers it: addressed to this server, and a GET
  // or a HEAD. The response refusing it if it is not.
  std::optional<Response> refusal(const mg_request_info& info) const {
    switch (check_request_host(info.request_uri ? info.request_uri : "", host_headers(&info),
                               host_policy)) {
      case HostVerdict::serve:
        break;
      case HostVerdict::bad_request:
        return error_response(400, "more than one Host header");
      case HostVerdict::misdirected:
        return error_response(421,
                              "this server answers only to its own address "
                              "(Host header refused: DNS rebinding defence)");
    }
    if (!is_served_method(info.request_method)) return method_refusal(info.request_method);
    return std::nullopt;
  }

  // What escapes the answer to a request (memory running out while a response or its head is
  // built) gets the fixed 500 rather than leave CivetWeb's thread, which would end the process
  // (and with `proxy --web` the relay). Nothing of the answer has been written then but what a
  // PeerWatch sent early: a head is written once built whole, its body cannot throw, and what a
  // streamed body or a live feed throws is caught where it is written.
  int handle(mg_connection* conn) {
    mark_answered(conn);
    std::optional<PeerWatch> peer;  // looked for only when a search asks
    try {
      return answer(conn, peer);
    } catch (...) {
      return answer_out_of_memory(conn, peer ? peer->response_octets_sent() : 0);
    }
  }

  int answer_out_of_memory(mg_connection* conn, std::size_t already_sent) const noexcept {
    write_all(conn, std::string_view(out_of_memory_reply).substr(already_sent));
    std::fputs("mailtap web: a request could not be answered: out of memory\n", stderr);
    return 500;
  }

  // Why the request's client is not served (net/local_user_policy: a local user other than
  // mailtap's own and those --allow-local-user names), or "". Connections are not kept alive,
  // so this is asked once per connection.
  std::string other_local_user(const mg_request_info& info) const {
    if (local_users.any) return {};
    std::error_code ec;
    const asio::ip::address client = asio::ip::make_address(info.remote_addr, ec);
    net::PeerOwnerLookup lookup;
    net::PeerOwner owner{net::PeerOwner::Kind::unknown, 0, "its address is unreadable"};
    if (!ec && !listen.address().is_unspecified()) {
      owner = lookup.find({listen.address(), static_cast<std::uint16_t>(info.server_port)},
                          {client, static_cast<std::uint16_t>(info.remote_port)});
    } else if (!ec) {  // listening on every address: mailtap's end is the socket's to say
      const int socket = connection_socket(info);
      owner = socket >= 0 ? lookup.find(socket)
                          : net::PeerOwner{net::PeerOwner::Kind::unknown, 0,
                                           "the connection's socket was not found"};
    }
    return net::local_user_refusal(local_users, owner, ec || net::is_loopback(client),
                                   [this](std::uint32_t uid) { return user_names(uid); });
  }

  // The 403 for a local user not served: plain text, said on stderr too.
  static Response local_user_refused(mg_connection* conn, const std::string& why) {
    std::string line = "mailtap web: " + request_path(conn, "a request") + ": answered 403: " + why;
    line += "\n";
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fflush(stderr);
    Response r;
    r.status = 403;
    r.content_type = "text/plain; charset=utf-8";
    r.body = "mailtap: " + why + "\n";
    return r;
  }

  int answer(mg_connection* conn, std::optional<PeerWatch>& peer) {
    const mg_request_info* info = mg_get_request_info(conn);
    if (const std::string why = other_local_user(*info); !why.empty())
      return send(conn, local_user_refused(conn, why));
    if (auto refused = refusal(*info)) return send(conn, *refused);
    const Route route = match_route(info->local_uri ? info->local_uri : "");
    if (route.kind == RouteKind::events) return stream_events(conn);
    // Looked for only when a search asks, and then once: a socket stays with its request.
    Api::ClientGone gone = [info, &peer] {
      if (!peer) peer.emplace(connection_socket(*info));
      return peer->gone();
    };
    const Response r = respond_with_full_stack(
        conn, route, parse_query(info->query_string ? info->query_string : ""), gone);
    return send(conn, r, peer ? peer->response_octets_sent() : 0);
  }

  // CivetWeb's worker threads have small stacks (Debian builds it with 100 KiB): too small for
  // SQLite's query planner on the list query once the sanitizers add their redzones. Queries,
  // and the sending of a body that reads the record as it goes, run on a thread with the
  // system's default stack instead, the worker waiting for it. False, `fn` not run, with `why`
  // set, when no thread can be started (the limit on a user's processes, ulimit -u, or a
  // cgroup's pids.max): std::thread throws, and on a CivetWeb thread that would end the process.
  template <typename Fn>
  static bool on_full_stack(Fn&& fn, std::string& why) {
    std::thread worker;
    try {
      worker = std::thread(std::forward<Fn>(fn));
    } catch (const std::system_error& e) {
      why = e.what();
      return false;
    }
    worker.join();
    return true;
  }

  // The 503 for a request no thread could be started for, said on stderr too: the system, not
  // the request, is at fault, and trying again may well succeed.
  static Response no_thread_reply(mg_connection* conn, const std::string& why) {
    std::string line = "mailtap web: " + request_path(conn, "a request");
    line += ": answered 503: no thread could be started to answer it: " + why + "\n";
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fflush(stderr);
    return error_response(503, "no thread could be started to answer this request (" + why +
                                   "): the system's limit on processes (ulimit -u)? Try again");
  }

  template <typename Query>
  Response respond_with_full_stack(mg_connection* conn, const Route& route, const Query& query,
                                   const Api::ClientGone& gone) {
    Response r;
    std::string why;
    const bool ran = on_full_stack(
        [&] {
          try {
            r = api->respond(route, query, gone);
          } catch (const std::exception&) {
            r = error_response(500, "the request could not be answered (out of memory?)");
          }
        },
        why);
    return ran ? r : no_thread_reply(conn, why);
  }

  // Server-sent events: one "change" event whenever the record changed (the page then fetches
  // what it shows again), a comment every kKeepAlive so dead connections are noticed.
  int stream_events(mg_connection* conn) {
    if (streams.fetch_add(1) >= kMaxStreams) {
      streams.fetch_sub(1);
      return send(conn, error_response(503, "too many live pages open; close one"));
    }
    struct Slot {
      std::atomic<int>& n;
      ~Slot() { n.fetch_sub(1); }
    } slot{streams};
    Response head;
    head.content_type = "text/event-stream; charset=utf-8";
    const std::string head_octets = serialize_head(head, true);
    try {  // once the head is out, what throws (memory) ends the stream, as a closed page does
      ChangeWatcher::Snapshot seen = watcher->current();
      bool open = write_all(conn, head_octets) && !wants_head_only(conn) &&
                  write_all(conn, "retry: 1000\nevent: change\ndata: " + seen.state + "\n\n");
      while (open) {
        ChangeWatcher::Snapshot now;
        if (!watcher->wait_for_change(seen.generation, kKeepAlive, now)) break;
        if (now.generation == seen.generation)
          open = write_all(conn, ": keep-alive\n\n");
        else
          open = write_all(conn, "event: change\ndata: " + now.state + "\n\n");
        seen = now;
      }
    } catch (const std::exception&) {
      std::fputs("mailtap web: a live feed was ended: out of memory\n", stderr);
    }
    return 200;
  }
};

WebServer::WebServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
WebServer::~WebServer() = default;

const std::string& WebServer::url() const {
  return impl_->url;
}

std::unique_ptr<WebServer> WebServer::start(const WebServerOptions& options, std::string& error) {
  error = unsupported_listen_address(options.listen);
  if (!error.empty()) return nullptr;
  // Without MG_FEATURES_TLS CivetWeb never loads a TLS library; mailtap serves plain HTTP only.
  static std::once_flag library;
  std::call_once(library, [] { mg_init_library(0); });

  auto impl = std::make_unique<Impl>();
  const Response out_of_memory =
      error_response(500, "the request could not be answered (out of memory?)");
  impl->out_of_memory_reply = serialize_head(out_of_memory) + out_of_memory.body;
  impl->api = Api::open(options.db_path, error);
  if (!impl->api) return nullptr;
  impl->watch_reader = storage::Reader::open(options.db_path, error);
  if (!impl->watch_reader) return nullptr;
  storage::Reader* probe = impl->watch_reader.get();
  impl->watcher = std::make_unique<ChangeWatcher>(
      [probe]() -> std::optional<std::string> {
        storage::ChangeToken token;
        std::string ignored;
        if (!probe->change_token(token, ignored)) return std::nullopt;
        JsonWriter w;
        w.begin_object().key("data_version").value(token.data_version);
        w.key("max_session_id").value(token.max_session_id).end_object();
        return w.take();
      },
      kPollInterval);

  impl->host_policy.listen_address = options.listen.address().to_string();
  impl->listen = options.listen;
  impl->local_users = options.local_users;
  if (!impl->local_users.any) impl->user_names(impl->local_users.own);
  // An "s" suffix would make CivetWeb load a TLS library: the port string is built here only.
  const std::pair<const char*, std::string> settings[] = {
      {"listening_ports", net::endpoint_label(options.listen)},
      {"num_threads", std::to_string(kThreads)},
      {"request_timeout_ms", std::to_string(std::chrono::milliseconds(kRequestTimeout).count())},
      {"enable_keep_alive", "no"},
      // Otherwise CivetWeb closes an absolute-form request ("GET http://127.0.0.1:8025/
      // HTTP/1.1") without handing it on unless its host is CivetWeb's authentication_domain;
      // off, it passes it to on_request, which checks that host as it checks a Host header.
      {"enable_auth_domain_check", "no"}};
  std::vector<const char*> config;
  for (const auto& [name, value] : settings) config.insert(config.end(), {name, value.c_str()});
  config.push_back(nullptr);
  mg_callbacks callbacks{};
  callbacks.begin_request = &Impl::on_request;
  callbacks.http_error = &Impl::on_http_error;
  callbacks.connection_close = &Impl::on_connection_close;
  callbacks.log_message = [](const mg_connection*, const char*) { return 1; };  // not on stderr
  char text[256] = {};
  unsigned code = 0;
  mg_error_data failure{&code, text, sizeof text};
  mg_init_data init{&callbacks, impl.get(), config.data()};
  impl->context.reset(mg_start2(&init, &failure));
  if (!impl->context) {
    error = listen_failure(options.listen, text);
    return nullptr;
  }
  mg_server_port bound[4] = {};
  const int n = mg_get_server_ports(impl->context.get(), 4, bound);
  const std::uint16_t port =
      n > 0 ? static_cast<std::uint16_t>(bound[0].port) : options.listen.port();
  impl->host_policy.port = port;
  impl->url = "http://" +
              net::endpoint_label(asio::ip::tcp::endpoint(options.listen.address(), port)) + "/";
  return std::unique_ptr<WebServer>(new WebServer(std::move(impl)));
}

}  // namespace mailtap::tools::web
