#include "proxy/session/transcript.hpp"

#include <cstdio>

#include "proxy/common/terminal_escape.hpp"

namespace mailtap {

namespace {
using smtp::Direction;
using smtp::EventKind;

const char* prefix(const smtp::Event& e) {
  switch (e.direction) {
    case Direction::client_to_upstream:
    case Direction::client_to_mailtap:
      return "C:";
    case Direction::upstream_to_client:
      return "S:";
    case Direction::mailtap_to_upstream:
      return "M>";  // mailtap's own command upstream
    case Direction::upstream_to_mailtap:
      return "S>";  // upstream's reply to mailtap
    case Direction::mailtap_to_client:
      return e.kind == EventKind::rewrite ? "S~" : "M:";
    case Direction::mailtap_note:
      return "~ ";
  }
  return "? ";
}

TranscriptView& view() {
  static TranscriptView v;
  return v;
}

bool is_reply(const smtp::Event& e) {
  return e.reply_code != 0 && (e.kind == EventKind::reply || e.kind == EventKind::greeting ||
                               e.kind == EventKind::local_reply || e.kind == EventKind::auth);
}

std::string colour_line(const Style& st, const smtp::Event& e, std::string line) {
  if (!st.enabled()) return line;
  switch (e.direction) {
    case Direction::client_to_upstream:
    case Direction::client_to_mailtap:
      return st.cyan(line);
    case Direction::upstream_to_client:
    case Direction::upstream_to_mailtap:
      return e.reply_code >= 400 ? st.red(line) : line;
    case Direction::mailtap_to_upstream:
    case Direction::mailtap_to_client:
    case Direction::mailtap_note:
      return st.magenta(line);
  }
  return line;
}

// As mailtap's stderr lines and `mailtap show` escape text; the CR of a line's CRLF is its end.
void append_escaped(std::string& out, std::string_view text) {
  if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
  out += escape_text(text);
}
}  // namespace

void set_transcript_view(TranscriptView v) {
  view() = std::move(v);
}

std::string transcript_lines(std::uint64_t session, const smtp::Event& e) {
  const TranscriptView& v = view();
  const std::string tag = "[" + std::to_string(session) + "] ";
  const std::string head = tag + prefix(e) + " ";
  std::string out;
  std::string_view bytes = e.bytes;
  if (bytes.empty()) {
    std::string line = head;
    line += to_string(e.kind);
    line += ": ";
    append_escaped(line, e.note);
    out += colour_line(v.style, e, std::move(line));
    out.push_back('\n');
    return out;
  }
  std::size_t pos = 0;
  bool first = true;
  while (pos < bytes.size()) {
    std::size_t eol = bytes.find('\n', pos);
    std::size_t end = eol == std::string_view::npos ? bytes.size() : eol;
    std::string line = head;
    append_escaped(line, bytes.substr(pos, end - pos));
    // A redacted line already shows its decoded fields; a note beside it would repeat them.
    if (first && !e.note.empty() && e.kind != EventKind::rewrite && !e.redacted) {
      line += "   (";
      append_escaped(line, e.note);
      line += ")";
    }
    out += colour_line(v.style, e, std::move(line));
    first = false;
    out.push_back('\n');
    pos = end == bytes.size() ? end : end + 1;
  }
  if (v.explain && is_reply(e)) {
    for (const std::string& why : v.explain(e.reply_code, e.enhanced_status, bytes, e.verb)) {
      std::string line = tag + "#  ";
      append_escaped(line, why);
      out += v.style.dim(line);
      out.push_back('\n');
    }
  }
  return out;
}

// The text's lines as transcript_lines prints a line: tagged, prefixed, escaped and coloured as
// the text's first event; a piece of a long line is a line of its own.
class LiveTranscript::Writer final : public smtp::BodyTextJoin::Writer {
 public:
  explicit Writer(std::uint64_t session) : session_(session) {}

  void read(const smtp::Event& e, bool begins) override {
    if (!begins) return;
    text_.direction = e.direction;
    text_.phase = e.phase;
    text_.kind = e.kind;
    text_.verb = e.verb;
    text_.transaction = e.transaction;
  }
  void line(std::string_view text, bool /*first*/, bool /*last*/, std::string& out) override {
    // A line's own CR stays, as show prints it: the CRLF was dropped already.
    std::string line = "[" + std::to_string(session_) + "] " + prefix(text_) + " ";
    line += escape_text(text);
    out += colour_line(view().style, text_, std::move(line));
    out.push_back('\n');
  }
  void note(const smtp::Event& e, std::string& out) override {
    out += transcript_lines(session_, e);
  }
  std::string& out() override { return *out_; }
  bool pass() override { return true; }

  void set_out(std::string& out) { out_ = &out; }
  std::uint64_t session() const { return session_; }

 private:
  std::uint64_t session_;
  smtp::Event text_;  // the first event's, without its octets
  std::string* out_ = nullptr;
};

LiveTranscript::LiveTranscript(std::uint64_t session)
    : writer_(std::make_unique<Writer>(session)),
      join_(std::make_unique<smtp::BodyTextJoin>(*writer_)) {}

LiveTranscript::~LiveTranscript() = default;

void LiveTranscript::event(const smtp::Event& e, std::string& out) {
  writer_->set_out(out);
  bool ok = true;
  switch (join_->take(e, !e.bytes.empty(), ok)) {
    case smtp::BodyTextJoin::Role::note:
      break;
    case smtp::BodyTextJoin::Role::text:
      join_->append(e.bytes);
      break;
    case smtp::BodyTextJoin::Role::other:
      out += transcript_lines(writer_->session(), e);
      break;
  }
}

void LiveTranscript::finish(std::string& out) {
  writer_->set_out(out);
  if (join_->open()) join_->finish();
}

}  // namespace mailtap
