// The message view's MIME reading of a stored body of any size, a chunk at a time: what
// parse_message finds in the whole text (the same header fields, the same leaf parts at the same
// offsets), from memory that does not grow with the message. Two readings of the body: the first
// (MimeStructureReader) finds the structure, keeping of each entity only its header section and
// where it is; the second (LocatedPartsDecoder) decodes each leaf, counting its decoded size and
// keeping the first octets of the text the view shows. Neither holds a line of the body: a
// message of one 2 GiB line costs what a short one does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tools/web/mime.hpp"

namespace mailtap::tools::web {

struct LocatedPart {
  MimePart part;             // its description; body and encoded are left empty
  std::uint64_t offset = 0;  // of its encoded octets in the message
  std::uint64_t length = 0;
  // Filled by LocatedPartsDecoder:
  std::uint64_t decoded_size = 0;
  std::string text;       // its first decoded octets, for the parts asked for
  bool text_cut = false;  // it decodes to more than `text`
};

struct LocatedMessage {
  std::vector<MimeHeader> headers;
  // The leaves, in order, as parse_message's: the first MimeStructureReader::kMaxParts of them.
  std::vector<LocatedPart> parts;
  std::uint64_t parts_left_out = 0;  // leaves past kMaxParts, counted, not kept
};

// Finds a message's structure from its text given in pieces, cut anywhere. The header section
// of each entity is kept up to kMaxHeadOctets (a longer one is read as its first that many
// octets); everything else is offsets and a few states per nesting level. Of the leaves, the
// first kMaxParts are kept and the rest only counted: a multipart of nothing but delimiter
// lines makes a part every 4 octets, each a few hundred octets to keep, so an 8 MiB message
// would otherwise cost half a GiB.
class MimeStructureReader {
 public:
  static constexpr std::size_t kMaxHeadOctets = std::size_t{1} << 20;
  static constexpr std::size_t kMaxParts = 10000;

  MimeStructureReader();
  ~MimeStructureReader();
  void append(std::string_view piece);
  // The text ended: the structure found.
  LocatedMessage finish();

 private:
  struct Frame;
  void line_piece(std::string_view piece);
  void end_line(bool terminated);
  void header_line(bool terminated);
  void start_body(Frame& frame, std::uint64_t body_start);
  void close_frames_after(std::size_t index, std::uint64_t end, bool runs_to_end);
  void close_frame(Frame& frame, std::uint64_t end);
  std::uint64_t end_before_line(std::uint64_t floor) const;

  enum class Start { undecided, header, body };
  Start start_ = Start::undecided;  // does the text begin with a header section?
  std::uint64_t name_octets_ = 0;   // printable octets before the first ':' so far
  std::vector<Frame> frames_;       // the entities open, outermost first
  std::uint64_t at_ = 0;            // octets given so far
  std::uint64_t line_start_ = 0;
  std::uint64_t line_length_ = 0;
  char line_first_ = 0;
  std::string line_text_;         // of a header line, up to what its section may still keep
  std::vector<int> matchers_;     // per frame: how far the line matches its delimiter line
  char before_line_[2] = {0, 0};  // the two octets before the line (its predecessor's end)
  char last_[2] = {0, 0};
  LocatedMessage out_;
};

// The structure of a message whose text is in `raw`: MimeStructureReader given it in one piece.
LocatedMessage locate_parts(std::string_view raw);

// Decodes the leaves of a located message from its text given again in pieces, cut anywhere:
// each part's decoded size, and of the parts `wants_text` picks, the first `text_limit` decoded
// octets, no more than `text_budget` over all of them (the rest of a part's text and its
// `text_cut` as for a part over its limit). Parts after `last_part`, if given, are left as
// they are, and done() says when the text past it is no longer needed.
class LocatedPartsDecoder {
 public:
  using WantsText = bool (*)(const MimePart&);
  LocatedPartsDecoder(LocatedMessage& message, WantsText wants_text, std::size_t text_limit,
                      std::size_t text_budget, std::optional<std::size_t> last_part = {});
  void append(std::string_view piece);
  void finish();
  bool done() const { return next_ >= end_; }

 private:
  void feed(LocatedPart& part, std::string_view encoded);
  void keep(LocatedPart& part);
  void finish_part(LocatedPart& part);

  LocatedMessage& message_;
  WantsText wants_text_;
  std::size_t text_limit_;
  std::size_t text_budget_;
  std::size_t next_ = 0;  // the part being decoded
  std::size_t end_;       // one past the last part to decode
  std::uint64_t at_ = 0;
  std::optional<TransferDecoder> decoder_;
  std::string decoded_;
};

}  // namespace mailtap::tools::web
