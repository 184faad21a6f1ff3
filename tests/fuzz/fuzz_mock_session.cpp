// `mailtap mock` (tools/mock_session.hpp) over a recording read back from a database anyone may
// have edited or damaged, answering a client that may send anything: the model built from the
// rows (build_recorded_dialogue, also replay's), then the mock's session fed the client's bytes
// in reads of any size. Beyond not crashing: a model is built or refused with a reason, the
// mock never asks to be resumed forever, and a closed client ends the session.
//
// Input: byte 0 is the number of recorded rows (mod 32) and byte 1 seeds the read sizes; each
// row is a byte naming its direction and kind (kind * 7 + direction), a flag byte (bit 0
// redacted, bit 1 a body cut short by --max-body, the top two the class of a reply code where
// the bytes start with none), a length byte and that many bytes; the
// rest of the input is what the client sends.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "tools/mock_session.hpp"
#include "tools/recorded_dialogue.hpp"

namespace {

using mailtap::smtp::Direction;
using mailtap::smtp::EventKind;

constexpr int kDirections = static_cast<int>(Direction::mailtap_note) + 1;
constexpr int kKinds = static_cast<int>(EventKind::note) + 1;

// The rows, as the reader hands them out; `in` is left at the client's bytes.
std::vector<mailtap::storage::EventRow> rows(std::string_view& in, std::size_t count) {
  std::vector<mailtap::storage::EventRow> out;
  for (std::size_t i = 0; i < count && in.size() >= 3; ++i) {
    const auto kind_byte = static_cast<unsigned char>(in[0]);
    const auto flags = static_cast<unsigned char>(in[1]);
    const std::size_t length =
        std::min<std::size_t>(static_cast<unsigned char>(in[2]), in.size() - 3);
    mailtap::storage::EventRow r;
    r.seq = i + 1;
    r.event.direction = static_cast<Direction>(kind_byte % kDirections);
    r.event.kind = static_cast<EventKind>(kind_byte / kDirections % kKinds);
    r.event.bytes = std::string(in.substr(3, length));
    r.event.verb = r.event.bytes.substr(0, r.event.bytes.find_first_of(" \r\n:"));
    r.event.redacted = (flags & 1) != 0;
    r.event.wire_size = r.event.bytes.size() + ((flags & 2) != 0 ? 100 : 0);
    const std::string& b = r.event.bytes;
    const bool coded = b.size() >= 3 && std::all_of(b.begin(), b.begin() + 3,
                                                    [](char c) { return c >= '0' && c <= '9'; });
    r.event.reply_code = coded ? std::stoi(b.substr(0, 3)) : (2 + (flags >> 6)) * 100;
    out.push_back(std::move(r));
    in.remove_prefix(3 + length);
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  std::string_view in(reinterpret_cast<const char*>(data + 2), size - 2);
  const auto events = rows(in, data[0] % 32);
  mailtap::tools::RecordedDialogue model;
  std::string error;
  if (!mailtap::tools::build_recorded_dialogue(events, model, error,
                                               mailtap::tools::RefusedLines::answered_again,
                                               mailtap::tools::PartialBodies::counted)) {
    if (error.empty()) std::abort();
    return 0;
  }

  mailtap::tools::MockSession mock(model);
  mock.start();
  (void)mock.take_to_client();
  std::uint32_t state = data[1];
  while (!in.empty() && !mock.finished()) {
    state = state * 1103515245u + 12345u;
    const std::size_t take = std::min<std::size_t>(in.size(), 1 + ((state >> 16) & 127));
    mock.client_bytes(in.substr(0, take));
    in.remove_prefix(take);
    (void)mock.take_to_client();
    for (int resumed = 0; mock.client_input_resumable(); ++resumed) {
      if (resumed == 100000) std::abort();  // asks to be resumed for ever
      mock.resume_client_input();
      (void)mock.take_to_client();
    }
  }
  if (!mock.finished()) mock.client_closed();
  (void)mock.take_to_client();
  if (!mock.finished()) std::abort();
  return 0;
}
