#include "tools/web/api.hpp"

#include <limits>
#include <memory>

#include "proxy/common/decimal_number.hpp"
#include "proxy/common/text.hpp"
#include "storage/session_events.hpp"
#include "storage/stored_body.hpp"
#include "storage/timestamp.hpp"
#include "tools/audit_report.hpp"
#include "tools/json_writer.hpp"
#include "tools/outcome_selector.hpp"
#include "tools/recorded_reply_advice.hpp"
#include "tools/session_json.hpp"
#include "tools/session_read_back.hpp"
#include "tools/time_format.hpp"
#include "tools/web/assets.hpp"
#include "tools/web/charset.hpp"
#include "tools/web/download_name.hpp"
#include "tools/web/mime.hpp"
#include "tools/web/mime_stream.hpp"

namespace mailtap::tools::web {

namespace {

constexpr std::size_t kDefaultLimit = 200;
constexpr std::size_t kMaxLimit = 1000;
// Text searches running or waiting for the search connection (api.hpp).
constexpr int kMaxSearches = 4;
constexpr int kAuditExpiryDays = 30;  // as `mailtap audit`'s default
// Of a text part, the message view gets the first MiB; the rest is at the part's own URL. A
// whole text of hundreds of MiB would cost the server several copies of it and hang the tab
// that puts it on the page. Over all its text parts, a view gets at most 4 MiB: a message of
// many large text parts costs a request no more than that.
constexpr std::size_t kInlineTextLimit = std::size_t{1} << 20;
constexpr std::size_t kInlineTextBudget = std::size_t{4} << 20;

std::string value_of(const std::map<std::string, std::string>& query, const std::string& key) {
  auto it = query.find(key);
  return it == query.end() ? std::string() : it->second;
}

Response json_response(std::string body) {
  Response r;
  r.body = std::move(body);
  r.body += '\n';
  return r;
}

std::string session_file_name(std::int64_t id) {
  return "mailtap-session-" + std::to_string(id);
}

// A header field's value (or a parameter of one) as `name`: its text with the encoded words
// decoded when the field is UTF-8. A field with octets that are not UTF-8 is given as those
// octets, base64 (the convention of every byte field), with `<name>_decoded` beside them: the
// encoded words decoded and the other octets as they are, so also base64. Those octets declare
// no charset, so none is guessed for them: windows-1252, as a mail program would read them, put
// characters on the page that the message never named, unmarked. The page shows them as \xHH,
// marked, as it shows those of a text part that names no charset.
void write_header_text_member(JsonWriter& w, std::string_view name, std::string_view field) {
  if (is_valid_utf8(field)) {
    write_bytes_member(w, name, decode_encoded_words(field));
    return;
  }
  write_bytes_member(w, name, field);
  write_bytes_member(w, std::string(name) + "_decoded", decode_encoded_words_only(field));
}

// The list's paging and the live refresh's bounds: before, after, ids, limit.
std::string parse_paging(const std::map<std::string, std::string>& query,
                         storage::SessionFilter& out) {
  if (auto a = value_of(query, "after"); !a.empty()) {
    const auto id = parse_decimal(a, 0, std::numeric_limits<std::int64_t>::max());
    if (!id) return "after " + a + ": expected a session id";
    out.newer_than_id = static_cast<std::int64_t>(*id);
  }
  if (auto ids = value_of(query, "ids"); !ids.empty()) {
    for (std::size_t at = 0; at <= ids.size();) {
      const std::size_t comma = std::min(ids.find(',', at), ids.size());
      const auto id =
          parse_decimal(ids.substr(at, comma - at), 1, std::numeric_limits<std::int64_t>::max());
      if (!id || out.ids.size() == kMaxLimit)
        return "ids " + ids + ": expected up to " + std::to_string(kMaxLimit) +
               " session ids, separated by commas";
      out.ids.push_back(static_cast<std::int64_t>(*id));
      at = comma + 1;
    }
  }
  if (auto b = value_of(query, "before"); !b.empty()) {
    const auto id = parse_decimal(b, 1, std::numeric_limits<std::int64_t>::max());
    if (!id) return "before " + b + ": expected a session id";
    out.after_session = static_cast<std::int64_t>(*id);  // listed newest first: "before" in time
  }
  out.limit = kDefaultLimit;
  if (auto l = value_of(query, "limit"); !l.empty()) {
    const auto n = parse_decimal(l, 1, kMaxLimit);
    if (!n) return "limit " + l + ": expected 1 to " + std::to_string(kMaxLimit);
    out.limit = static_cast<std::size_t>(*n);
  }
  return "";
}

}  // namespace

std::string parse_session_filters(const std::map<std::string, std::string>& query,
                                  storage::SessionFilter& out) {
  const auto now = Clock::now();
  // As `mailtap sessions --outcome`, and failed (what the list shows in red).
  if (auto o = value_of(query, "outcome"); o == "failed") {
    out.only_failed = true;
  } else if (!o.empty() && !select_outcome(o, out)) {
    return "outcome " + o + ": expected failed, " + outcome_selector_names();
  }
  if (auto c = value_of(query, "reply_class"); !c.empty()) {
    if (c.size() == 3 && c.substr(1) == "xx") c.resize(1);
    if (c.size() != 1 || c[0] < '2' || c[0] > '5')
      return "reply_class " + c + ": expected 2xx, 3xx, 4xx or 5xx";
    out.reply_class = c[0] - '0';
  }
  out.user = value_of(query, "user");
  storage::set_upstream_filter(out, value_of(query, "upstream"));
  out.text = value_of(query, "q");
  for (auto [key, field] : {std::pair{"since", &out.since}, std::pair{"until", &out.until}}) {
    if (auto t = value_of(query, key); !t.empty()) {
      *field = parse_time_spec(t, now);
      if (!*field) return std::string(key) + " " + t + ": expected " + std::string(kTimeSpecForms);
    }
  }
  return parse_paging(query, out);
}

std::unique_ptr<Api> Api::open(const std::string& db_path, std::string& error) {
  std::unique_ptr<Api> api(new Api());
  api->path_ = db_path;
  api->reader_ = storage::Reader::open(db_path, error);
  if (!api->reader_) return nullptr;
  api->search_reader_ = storage::Reader::open(db_path, error);
  if (!api->search_reader_) return nullptr;
  return api;
}

Response Api::respond(const Route& route, const std::map<std::string, std::string>& query,
                      ClientGone client_gone) {
  switch (route.kind) {
    case RouteKind::page:
      return page();
    case RouteKind::asset:
      return asset(route.asset);
    case RouteKind::sessions:
      return sessions(query, client_gone);
    case RouteKind::session:
      return session(route.session, false);
    case RouteKind::session_download:
      return session(route.session, true);
    case RouteKind::message:
    case RouteKind::message_raw:
    case RouteKind::message_part:
      return message(route);
    case RouteKind::audit:
      return audit();
    case RouteKind::events:
    case RouteKind::not_found:
      break;
  }
  return error_response(404, "no such page or API route");
}

Response Api::page() const {
  return asset("index.html");
}

Response Api::asset(const std::string& name) const {
  const Asset* a = find_asset(name);
  if (a == nullptr) return error_response(404, "no such asset");
  Response r;
  r.content_type = std::string(a->content_type);
  r.body = std::string(a->bytes);
  return r;
}

Response Api::sessions(const std::map<std::string, std::string>& query, const ClientGone& gone) {
  storage::SessionFilter q;
  if (auto e = parse_session_filters(query, q); !e.empty()) return error_response(400, e);
  const std::size_t limit = q.limit;
  q.limit = limit + 1;  // one more tells whether there is a next page
  std::vector<storage::SessionSummary> rows;
  if (!q.text.empty()) {
    if (Response r = search(q, rows, gone); r.status != 200) return r;
  } else {
    std::string error;
    std::lock_guard lock(mutex_);
    if (!reader_->session_summaries(q, rows, error)) return error_response(500, error);
  }
  const bool more = rows.size() > limit;
  if (more) rows.resize(limit);
  JsonWriter w;
  w.begin_object().key("sessions").begin_array();
  for (const auto& row : rows) write_session_summary(w, row);
  w.end_array().key("more").value(more).end_object();
  return json_response(w.take());
}

// A search reads every event and body file of the sessions it passes: seconds on a large
// record. It runs on its own connection, so that the list and the sessions are answered
// meanwhile, and stops when its client has gone (a page that typed on, closed, or went
// elsewhere), rather than keep the searches behind it waiting.
Response Api::search(const storage::SessionFilter& filter,
                     std::vector<storage::SessionSummary>& rows, const ClientGone& gone) {
  struct Counted {
    std::atomic<int>& n;
    ~Counted() { --n; }
  } counted{searches_};
  if (++searches_ > kMaxSearches)
    return error_response(503, "too many text searches at once; try again when one has ended");
  std::lock_guard lock(search_mutex_);
  std::string error;
  if (search_reader_->session_summaries(filter, rows, error, gone)) return Response{};
  if (gone && gone()) return error_response(503, "search abandoned: the client has gone");
  return error_response(500, error);
}

bool Api::load(std::int64_t id, std::optional<storage::SessionDetail>& out, Response& failure) {
  std::string error;
  bool ok = false;
  {
    std::lock_guard lock(mutex_);
    // The octets in the body file are read as they are sent, if at all, and so are the events
    // and the messages (storage::left_in_record): a session's size is its
    // client's to choose.
    ok = reader_->load_session(id, out, error, storage::Reader::BodyOctets::leave_past_inline,
                               storage::Reader::EventRows::none);
  }
  if (!ok) {
    failure = error_response(500, error);
    return false;
  }
  if (!out) {
    failure = error_response(404, "no session " + std::to_string(id));
    return false;
  }
  return true;
}

namespace {

// A session, the reader of its octets, which refers to it, and the reader of the events it left
// in the record: kept together for as long as its JSON is being sent.
struct SessionStream {
  // Read back on `reader` under `lock` (the shared connection), for as long as the JSON is
  // being sent.
  SessionStream(storage::SessionDetail d, storage::Reader& reader, std::mutex& lock, bool download)
      : detail(std::move(d)), read_back(reader, detail, &lock), whole(download) {}

  // The JSON written to `sink` as it is read; false with `error` set if the record could not
  // supply it all.
  bool write(const StreamedBody::Sink& sink, std::string& error) {
    JsonWriter w;
    w.stream_to(sink);
    // Failed with no error: the client has gone, which the server sees for itself.
    if (!(whole ? write_session_detail(w, detail, read_back.octets(), error, read_back.events(),
                                       read_back.messages())
                : write_view(w, error)))
      return error.empty();
    w.string_piece("\n");  // as json_response ends every body
    w.flush();
    return true;
  }

  // The page's view: what the database holds, no body file read (write_session_preview), and
  // each reply explained from the table `mailtap show` and `mailtap explain` use, by seq.
  bool write_view(JsonWriter& w, std::string& error) {
    w.begin_object().key("session");
    if (!write_session_preview(w, detail, read_back.octets(), error, read_back.events(),
                               read_back.messages()))
      return false;
    w.key("explanations").begin_object();
    AnsweredCommands answered;  // which chunk a BDAT reply answers
    const bool read = read_back.for_each_event(
        [&w, &answered](const storage::EventRow& row) {
          const auto advice = recorded_reply_advice(answered.as_answered(row.event));
          if (!advice) return true;
          w.key(std::to_string(row.seq)).begin_object();
          w.key("meaning").value(advice->meaning);
          w.key("fix").value(advice->fix);
          w.key("server").value(advice->server);
          w.end_object();
          return w.sink_open();
        },
        error);
    if (!read || !w.sink_open()) return false;
    w.end_object().end_object();
    return w.sink_open();
  }

  const storage::SessionDetail detail;
  SessionReadBack read_back;
  const bool whole;  // `mailtap show ID --json` (the download), else the page's view
};

Response streamed_session(std::shared_ptr<SessionStream> stream) {
  std::uint64_t length = 0;
  std::string error;
  const auto count = [&length](std::string_view piece) {
    length += piece.size();
    return true;
  };
  if (!stream->write(count, error)) return error_response(500, error);
  Response r;
  if (stream->whole)
    r.headers.emplace_back(
        "Content-Disposition",
        "attachment; filename=\"" + session_file_name(stream->detail.session.id) + ".json\"");
  r.streamed = StreamedBody{length, [stream](const StreamedBody::Sink& sink, std::string& e) {
                              return stream->write(sink, e);
                            }};
  return r;
}

}  // namespace

Response Api::session(std::int64_t id, bool download) {
  std::optional<storage::SessionDetail> d;
  Response failure;
  if (!load(id, d, failure)) return failure;
  // The Api outlives every response (the server stops first): its reader and lock may be lent.
  return streamed_session(
      std::make_shared<SessionStream>(std::move(*d), *reader_, mutex_, download));
}

namespace {

// Where part K is in the message's body, and what undoes its transfer encoding: enough to send
// it from the record once the message it was found in is no longer held.
struct PartSource {
  std::size_t offset = 0;  // of its encoded octets in the body
  std::size_t length = 0;
  std::string transfer_encoding;
  std::uint64_t decoded_length = 0;
};

// A part is saved under the name the mail gives it (as the page's download link asks: the
// header's name wins over the link's), made a plain file name; mailtap's own "part-K" when it
// has none.
std::string saved_as(const Route& route, const MimePart& part, std::string_view extension) {
  return attachment_disposition(
      part.filename_is_text ? part.filename : decode_encoded_words(part.filename),
      "part-" + std::to_string(route.part) + std::string(extension));
}

// The response head for one MIME part, with a type the browser may only show (text) or save
// (HTML, under a sandbox policy should it be rendered anyway; anything else).
Response part_head(const Route& route, const MimePart& part) {
  Response r;
  // The charset comes from the mail: only a plain token goes into a response header.
  const bool token = !part.charset.empty() && part.charset.size() <= 40 &&
                     part.charset.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-_.:") ==
                         std::string::npos;
  const std::string charset = token ? part.charset : "utf-8";
  if (part.content_type == "text/html") {
    r.content_type = "text/html; charset=" + charset;
    r.csp = kMessagePartCsp;
    // Saved, never rendered, when opened: a browser showing the mail's HTML as a document
    // connects to hosts it names (preconnect, frames) whatever the policy says. The page reads
    // it with fetch and shows only its text and structure.
    r.headers.emplace_back("Content-Disposition", saved_as(route, part, ".html"));
  } else if (part.content_type.starts_with("text/")) {
    r.content_type = "text/plain; charset=" + charset;
  } else {
    r.content_type = "application/octet-stream";
    r.headers.emplace_back("Content-Disposition", saved_as(route, part, ""));
  }
  return r;
}

// A stored message and its body's reader, which refers to it: kept together for as long as the
// response is being sent.
struct SourceStream {
  SourceStream(storage::StoredMessage m, storage::Reader& reader, std::mutex& lock)
      : stored(std::move(m)), body(stored, storage::more_stored_pieces(reader, stored, &lock)) {}
  const storage::StoredMessage stored;
  storage::StoredBodyReader body;
};

// The message's source as the server got it, read from the record as it is sent: a body of any
// size costs a chunk or two of memory, where holding it would cost a copy per request (and the
// page shares its process with the relay under `proxy --web`). Its length comes from a first
// read, so that a body file that cannot supply it is a 500 rather than a download cut short.
Response raw_response(const Route& route, const std::shared_ptr<SourceStream>& source) {
  std::uint64_t length = 0;
  std::string error;
  if (!source->body.size(length, error)) return error_response(500, error);
  Response r;
  r.content_type = "message/rfc822";
  r.headers.emplace_back("Content-Disposition", "attachment; filename=\"" +
                                                    session_file_name(route.session) + "-message-" +
                                                    std::to_string(route.message) + ".eml\"");
  // Both reads are of the one body file the message holds, opened before its rows were read
  // (Reader::stored_message): one that prune replaced since cannot make the octets another
  // session's.
  r.streamed = StreamedBody{length, [source](const StreamedBody::Sink& sink, std::string& error) {
                              return source->body.read(sink, error);
                            }};
  return r;
}

// The message's structure, read from the record a chunk at a time (mime_stream.hpp): the body
// is never held, whatever its size.
bool locate_parts(storage::StoredBodyReader& body, LocatedMessage& out, std::string& error) {
  MimeStructureReader reader;
  const bool read = body.read(
      [&reader](std::string_view chunk) {
        reader.append(chunk);
        return true;
      },
      error);
  if (!read) return false;
  out = reader.finish();
  return true;
}

// The parts' decoded sizes, and the text the view shows, from a second reading of the body; no
// further than the end of `last_part` if given.
bool decode_parts(storage::StoredBodyReader& body, LocatedMessage& message,
                  LocatedPartsDecoder::WantsText wants_text, std::optional<std::size_t> last_part,
                  std::string& error) {
  LocatedPartsDecoder decoder(message, wants_text, kInlineTextLimit, kInlineTextBudget, last_part);
  const bool read = body.read(
      [&decoder](std::string_view chunk) {
        decoder.append(chunk);
        return !decoder.done();
      },
      error);
  if (!read) return false;
  decoder.finish();
  return true;
}

// The decoded octets of the part at `part` of the body `body` hands out, to `sink` as they are
// read: only the window of its encoded octets is decoded, a chunk at a time.
bool write_part(storage::StoredBodyReader& body, const PartSource& part,
                const StreamedBody::Sink& sink, std::string& error) {
  TransferDecoder decoder(part.transfer_encoding);
  std::size_t at = 0;  // octets of the body passed so far
  std::string decoded;
  bool open = true;
  const bool read = body.read(
      [&](std::string_view chunk) {
        const std::size_t start = at;
        const std::size_t end = part.offset + part.length;
        at += chunk.size();
        const std::size_t from = std::max(start, part.offset);
        const std::size_t to = std::min(at, end);
        if (from < to) {
          decoded.clear();
          decoder.append(chunk.substr(from - start, to - from), decoded);
          if (!decoded.empty()) open = sink(decoded);
        }
        return open && at < end;  // nothing past the part is read
      },
      error);
  if (!read || !open) return read;
  decoded.clear();
  decoder.finish(decoded);
  if (!decoded.empty()) sink(decoded);
  return true;
}

// Part K, sent from the record as it is read. Finding it and its decoded length reads the body
// (twice, the second time no further than the part), holding only the message's structure.
Response part_response(const Route& route, std::shared_ptr<SourceStream> source) {
  LocatedMessage located;
  std::string error;
  if (!locate_parts(source->body, located, error)) return error_response(500, error);
  if (route.part >= located.parts.size()) return error_response(404, "no such part");
  if (!decode_parts(source->body, located, nullptr, route.part, error))
    return error_response(500, error);
  const LocatedPart& part = located.parts[route.part];
  Response r = part_head(route, part.part);
  PartSource where;
  where.offset = part.offset;
  where.length = part.length;
  where.transfer_encoding = part.part.transfer_encoding;
  where.decoded_length = part.decoded_size;
  r.streamed = StreamedBody{where.decoded_length,
                            [source, where](const StreamedBody::Sink& sink, std::string& error) {
                              return write_part(source->body, where, sink, error);
                            }};
  return r;
}

bool shown_as_text(const MimePart& part) {
  return part.content_type == "text/plain" && !part.attachment;
}

// The RCPTs the message keeps, each with its place among the transaction's, and how many it
// left out (past a bound: recording.md, "Messages").
void write_recipients(JsonWriter& w, const smtp::Message& m) {
  w.key("recipients").begin_array();
  for (const auto& r : m.recipients) {
    w.begin_object();
    w.key("position").value(r.position);
    write_bytes_member(w, "command", r.command);
    w.key("reply_code").value(r.reply_code);
    write_bytes_member(w, "reply", r.reply);
    w.end_object();
  }
  w.end_array();
  write_recipients_left_out(w, m);
}

}  // namespace

Response Api::message(const Route& route) {
  std::optional<storage::StoredMessage> stored;
  std::string error;
  {
    std::lock_guard lock(mutex_);
    if (!reader_->stored_message(route.session, route.message, stored, error))
      return error_response(500, error);
  }
  if (!stored)
    return error_response(404, "session " + std::to_string(route.session) + " has no message " +
                                   std::to_string(route.message));
  // Its body's pieces past the first batch are read a batch at a time as it is read.
  auto source = std::make_shared<SourceStream>(std::move(*stored), *reader_, mutex_);
  if (route.kind == RouteKind::message_raw) return raw_response(route, source);
  if (route.kind == RouteKind::message_part) return part_response(route, std::move(source));
  LocatedMessage parsed;
  if (!locate_parts(source->body, parsed, error) ||
      !decode_parts(source->body, parsed, shown_as_text, std::nullopt, error))
    return error_response(500, error);

  const storage::MessageRow* row = &source->stored.row;
  const smtp::Message& m = row->message;
  JsonWriter w;
  w.begin_object();
  w.key("session").value(route.session);
  w.key("seq").value(row->seq);
  // Everything below that came from the wire or the mail is bytes: base64 unless UTF-8.
  write_bytes_member(w, "mail_from", m.mail_from);
  write_recipients(w, m);
  w.key("size").value(m.size);
  w.key("sha256").value(m.sha256_hex);
  w.key("body_truncated").value(m.body_truncated);
  w.key("via_bdat").value(m.via_bdat);
  write_bytes_member(w, "final_reply", m.final_reply);
  // A time column of the row that holds no timestamp (a damaged file): which, what it holds.
  if (row->unreadable.empty())
    w.key("unreadable").null();
  else
    write_bytes_member(w, "unreadable", row->unreadable);
  w.key("headers").begin_array();
  for (const auto& h : parsed.headers) {
    w.begin_object();
    write_bytes_member(w, "name", h.name);
    write_header_text_member(w, "value", h.value);
    w.end_object();
  }
  w.end_array();
  w.key("parts").begin_array();
  for (std::size_t i = 0; i < parsed.parts.size(); ++i) {
    LocatedPart& located = parsed.parts[i];
    const MimePart& p = located.part;
    w.begin_object();
    w.key("index").value(static_cast<std::uint64_t>(i));
    write_bytes_member(w, "content_type", p.content_type);
    write_bytes_member(w, "charset", p.charset);
    if (p.filename_is_text)  // RFC 2231's: decoded already, no encoded words to read in it
      write_bytes_member(w, "filename", p.filename);
    else
      write_header_text_member(w, "filename", p.filename);
    w.key("attachment").value(p.attachment);
    w.key("size").value(located.decoded_size);
    w.key("url").value("/api/sessions/" + std::to_string(route.session) + "/messages/" +
                       std::to_string(route.message) + "/parts/" + std::to_string(i));
    if (shown_as_text(p)) {
      std::string text = std::move(located.text);
      if (located.text_cut) drop_partial_character(text, p.charset);
      write_bytes_member(w, "text", to_utf8(text, p.charset));
      w.key("text_truncated").value(located.text_cut);
    }
    w.end_object();
  }
  w.end_array();
  // Parts past MimeStructureReader::kMaxParts are not listed (the raw message has them).
  w.key("parts_left_out").value(parsed.parts_left_out);
  w.end_object();
  return json_response(w.take());
}

Response Api::audit() {
  AuditReport report;
  std::string error;
  if (!build_audit_report(path_, {}, kAuditExpiryDays, report, error))
    return error_response(500, error);
  Response r;
  r.body = audit_report_json(report);
  return r;
}

}  // namespace mailtap::tools::web
