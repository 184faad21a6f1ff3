#include "tools/web/mime_stream.hpp"

#include <algorithm>

namespace mailtap::tools::web {

// An entity being read: first its header section, then its body, which a multipart walks for
// its delimiter lines (parse_message's walk_multipart) while its parts are frames further in.
struct MimeStructureReader::Frame {
  std::uint64_t start = 0;
  int depth = 0;
  bool in_body = false;
  // The header section, as split_entity finds its end: the first empty line after the first
  // line; failing that, a first line that is empty.
  std::string head;
  std::uint64_t lines = 0;
  bool first_line_blank = false;
  std::uint64_t fallback_body_start = 0;
  // The body.
  std::uint64_t body_start = 0;
  std::vector<MimeHeader> headers;
  MimePart part;
  std::string delimiter;   // "--boundary" while it is walked as a multipart
  bool found = false;      // a delimiter line was seen: its parts are frames, not itself
  bool closed = false;     // after its close delimiter: the epilogue, not read
  bool has_child = false;  // the frame after it is its part being read
};

namespace {

// A line against a delimiter: matched up to `state` octets of it, then (as walk_multipart's
// delimiter_kind over the trimmed rest) blanks, optionally "--", then blanks or CRs. -1: not it.
// States past the delimiter: at + 0 blanks so far, + 1 a CR seen, + 2 one '-', + 3 "--" seen.
int delimiter_step(int state, char c, const std::string& delimiter) {
  const int at = static_cast<int>(delimiter.size());
  const bool blank = c == ' ' || c == '\t';
  if (state < at) return c == delimiter[static_cast<std::size_t>(state)] ? state + 1 : -1;
  if (state == at) return blank ? at : c == '\r' ? at + 1 : c == '-' ? at + 2 : -1;
  if (state == at + 1) return blank || c == '\r' ? at + 1 : -1;
  if (state == at + 2) return c == '-' ? at + 3 : -1;
  return blank || c == '\r' ? at + 3 : -1;
}

enum class LineKind { other, part, close };

LineKind delimiter_line(int state, const std::string& delimiter) {
  const int at = static_cast<int>(delimiter.size());
  if (state == at || state == at + 1) return LineKind::part;
  return state == at + 3 ? LineKind::close : LineKind::other;
}

}  // namespace

MimeStructureReader::MimeStructureReader() {
  frames_.emplace_back();
  matchers_.assign(1, -1);
}

MimeStructureReader::~MimeStructureReader() = default;

void MimeStructureReader::append(std::string_view piece) {
  while (!piece.empty()) {
    if (start_ == Start::body && frames_[0].in_body) {  // one text part: nothing more to find
      at_ += piece.size();
      return;
    }
    const auto eol = piece.find('\n');
    line_piece(piece.substr(0, eol == std::string_view::npos ? piece.size() : eol));
    if (eol == std::string_view::npos) return;
    at_ += 1;
    last_[0] = last_[1];
    last_[1] = '\n';
    end_line(true);
    piece.remove_prefix(eol + 1);
  }
}

void MimeStructureReader::line_piece(std::string_view piece) {
  if (piece.empty()) return;
  for (std::size_t i = 0; start_ == Start::undecided && i < piece.size(); ++i) {
    // As parse_message's starts_with_header: a printable name, then ':'.
    const char c = piece[i];
    if (c == ':') {
      start_ = name_octets_ > 0 ? Start::header : Start::body;
    } else if (c <= ' ' || c > '~') {
      start_ = Start::body;
    }
    ++name_octets_;
  }
  if (line_length_ == 0) line_first_ = piece.front();
  line_length_ += piece.size();
  for (std::size_t i = 0; i < frames_.size(); ++i) {
    for (std::size_t k = 0; k < piece.size() && matchers_[i] >= 0; ++k)
      matchers_[i] = delimiter_step(matchers_[i], piece[k], frames_[i].delimiter);
  }
  const Frame& inner = frames_.back();
  if (!inner.in_body) {
    const std::size_t room = kMaxHeadOctets - std::min(kMaxHeadOctets, inner.head.size());
    if (line_text_.size() < room)
      line_text_.append(piece.substr(0, std::min(piece.size(), room - line_text_.size())));
  }
  at_ += piece.size();
  last_[0] = piece.size() > 1 ? piece[piece.size() - 2] : last_[1];
  last_[1] = piece.back();
}

void MimeStructureReader::end_line(bool terminated) {
  if (start_ == Start::undecided) start_ = Start::body;  // a first line with no ':'
  if (start_ == Start::body && frames_.size() == 1 && !frames_[0].in_body) {
    // Not a header section: the whole text is one text part (describe_entity of no fields).
    Frame& top = frames_[0];
    top.in_body = true;
    std::string boundary;
    top.part = describe_entity({}, boundary);
    return;
  }
  bool delimiter = false;
  for (std::size_t i = 0; i < frames_.size() && !delimiter; ++i) {
    const LineKind kind = delimiter_line(matchers_[i], frames_[i].delimiter);
    if (kind == LineKind::other) continue;
    delimiter = true;
    Frame& frame = frames_[i];
    frame.found = true;
    if (frame.has_child) close_frames_after(i, end_before_line(frames_[i + 1].start), false);
    frame.has_child = false;
    if (kind == LineKind::close) {
      frame.closed = true;
    } else if (terminated) {  // a part begins on the next line
      Frame child;
      child.start = at_;
      child.depth = frame.depth + 1;
      frames_[i].has_child = true;
      frames_.push_back(std::move(child));
    }
  }
  if (!delimiter && !frames_.back().in_body) header_line(terminated);
  line_start_ = at_;
  line_length_ = 0;
  line_text_.clear();
  before_line_[0] = last_[0];
  before_line_[1] = last_[1];
  matchers_.resize(frames_.size());
  for (std::size_t i = 0; i < frames_.size(); ++i) {
    const Frame& f = frames_[i];
    matchers_[i] = f.in_body && !f.delimiter.empty() && !f.closed ? 0 : -1;
  }
}

void MimeStructureReader::header_line(bool terminated) {
  Frame& frame = frames_.back();
  const bool blank =
      terminated && (line_length_ == 0 || (line_length_ == 1 && line_first_ == '\r'));
  if (blank && frame.lines == 0) {
    frame.first_line_blank = true;
    frame.fallback_body_start = at_;
  } else if (blank) {
    start_body(frame, at_);
  } else {
    frame.head += line_text_;
    if (terminated && frame.head.size() < kMaxHeadOctets) frame.head += '\n';
  }
  ++frame.lines;
}

void MimeStructureReader::start_body(Frame& frame, std::uint64_t body_start) {
  frame.in_body = true;
  frame.body_start = body_start;
  frame.headers = parse_headers(frame.head);
  frame.head = std::string();
  std::string boundary;
  frame.part = describe_entity(frame.headers, boundary);
  if (!boundary.empty() && frame.depth < kMimeMaxDepth) frame.delimiter = "--" + boundary;
  if (frame.depth > 0) frame.headers.clear();  // only the message's own are shown
}

// Where the entity before the delimiter line now ending ends: the line end before the delimiter
// belongs to the delimiter (walk_multipart's part_before).
std::uint64_t MimeStructureReader::end_before_line(std::uint64_t floor) const {
  std::uint64_t end = line_start_;
  if (end > floor && before_line_[1] == '\n') {
    --end;
    if (end > floor && before_line_[0] == '\r') --end;
  }
  return end;
}

// Ends the frames after `index` at `end`. The one right after it is the part a delimiter line
// of frame `index` ended, taken whatever its length (or at the end of the text, `runs_to_end`,
// only if it has any octets); those further in are each the last part of their multipart, cut
// short, taken if they have any octets (walk_multipart's truncated recording).
void MimeStructureReader::close_frames_after(std::size_t index, std::uint64_t end,
                                             bool runs_to_end) {
  while (frames_.size() > index + 1) {
    Frame& f = frames_.back();
    const bool ended_by_delimiter = frames_.size() == index + 2 && !runs_to_end;
    if (ended_by_delimiter || f.start < end) close_frame(f, end);
    frames_.pop_back();
  }
}

void MimeStructureReader::close_frame(Frame& frame, std::uint64_t end) {
  std::uint64_t body_start = frame.body_start;
  if (!frame.in_body || (frame.body_start > end && frame.first_line_blank)) {
    // No empty line ended the header section inside the entity.
    if (frame.first_line_blank) {  // the body is all after an empty first line, and no fields
      frame.headers.clear();
      std::string boundary;
      frame.part = describe_entity({}, boundary);
      body_start = frame.fallback_body_start;
    } else if (!frame.in_body) {  // all of it is the header section: the body is empty
      start_body(frame, end);
      body_start = end;
    }
  }
  if (frame.depth == 0) out_.headers = std::move(frame.headers);
  if (frame.found) return;  // its parts were taken as they ended
  if (out_.parts.size() >= kMaxParts) {
    ++out_.parts_left_out;
    return;
  }
  LocatedPart leaf;
  leaf.part = std::move(frame.part);
  leaf.offset = std::min(body_start, end);
  leaf.length = end - leaf.offset;
  out_.parts.push_back(std::move(leaf));
}

LocatedMessage MimeStructureReader::finish() {
  if (!(start_ == Start::body && frames_[0].in_body)) end_line(false);
  close_frames_after(0, at_, true);
  close_frame(frames_[0], at_);
  return std::move(out_);
}

LocatedMessage locate_parts(std::string_view raw) {
  MimeStructureReader reader;
  reader.append(raw);
  return reader.finish();
}

LocatedPartsDecoder::LocatedPartsDecoder(LocatedMessage& message, WantsText wants_text,
                                         std::size_t text_limit, std::size_t text_budget,
                                         std::optional<std::size_t> last_part)
    : message_(message),
      wants_text_(wants_text),
      text_limit_(text_limit),
      text_budget_(text_budget),
      end_(last_part ? std::min(*last_part + 1, message.parts.size()) : message.parts.size()) {}

void LocatedPartsDecoder::append(std::string_view piece) {
  const std::uint64_t piece_start = at_;
  at_ += piece.size();
  while (next_ < end_) {
    LocatedPart& part = message_.parts[next_];
    const std::uint64_t part_end = part.offset + part.length;
    const std::uint64_t from = std::max(piece_start, part.offset);
    const std::uint64_t to = std::min(at_, part_end);
    if (from < to) feed(part, piece.substr(from - piece_start, to - from));
    if (part_end > at_) return;  // it goes on in the next piece
    finish_part(part);
    ++next_;
  }
}

void LocatedPartsDecoder::finish() {
  for (; next_ < end_; ++next_) finish_part(message_.parts[next_]);
}

void LocatedPartsDecoder::feed(LocatedPart& part, std::string_view encoded) {
  if (!decoder_) decoder_.emplace(part.part.transfer_encoding);
  decoded_.clear();
  decoder_->append(encoded, decoded_);
  keep(part);
}

// Counts what was just decoded, and keeps what the part's text still has room for.
void LocatedPartsDecoder::keep(LocatedPart& part) {
  part.decoded_size += decoded_.size();
  if (wants_text_ != nullptr && wants_text_(part.part)) {
    const std::size_t limit = std::min(text_limit_, text_budget_);
    if (part.text.size() < limit)
      part.text.append(decoded_, 0, std::min(decoded_.size(), limit - part.text.size()));
  }
}

void LocatedPartsDecoder::finish_part(LocatedPart& part) {
  if (decoder_) {
    decoded_.clear();
    decoder_->finish(decoded_);
    keep(part);
    decoder_.reset();
  }
  if (wants_text_ != nullptr && wants_text_(part.part)) {
    part.text_cut = part.decoded_size > part.text.size();
    text_budget_ -= std::min(text_budget_, part.text.size());
  }
}

}  // namespace mailtap::tools::web
