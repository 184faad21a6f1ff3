// audit's scans of recorded bytes (tools/credential_scan.hpp, tools/stream_credential_scan.hpp):
// a message body cut into stored pieces anywhere is found to hold what the scan of the whole
// body finds, each finding once and where it begins (what the whole scan finds only where it
// first occurs, the stream may find again further on); the smuggling shapes of a stream in pieces
// are those of the whole. Each finding points into the bytes at what it names (the password
// in clear, or base64-encoded; a '.' for a shape), and its text is fit for the terminal: it
// quotes the PLAIN blob's user name, which is the recording's.
//
// Input: octet 0 is the --password-env password's length (0: none, as audit runs without it),
// octet 1 a seed for the piece sizes; then the password, then the body.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tests/fuzz/printable_check.hpp"
#include "tools/credential_scan.hpp"
#include "tools/stream_credential_scan.hpp"

namespace {

using namespace mailtap::tools;
using Found = std::set<std::pair<std::size_t, std::string>>;

void check_finding(std::string_view body, std::size_t at, const std::string& what,
                   const CredentialScanOptions& options) {
  if (at >= body.size()) std::abort();
  mailtap::fuzz::check_terminal_text(what, false);
  if (what == "the --password-env password, in clear" &&
      !body.substr(at).starts_with(options.known_password()))
    std::abort();
  if (what == "the --password-env password, base64-encoded" &&
      !body.substr(at).starts_with(options.known_password_base64()))
    std::abort();
}

bool is_first_only(std::string_view what) {
  return what == "the --password-env password, in clear" ||
         what == "the --password-env password, base64-encoded" ||
         what == "OAuth bearer token (auth=Bearer) in clear";
}

// The body's pieces as a session's events store them, cut where the seed says.
std::vector<std::size_t> cuts(std::size_t size, unsigned seed) {
  std::vector<std::size_t> at{0};
  while (at.back() < size) {
    seed = seed * 1103515245 + 12345;
    const std::size_t n = (seed >> 16) % 4 == 0 ? 0 : 1 + (seed >> 8) % 37;  // empty ones too
    at.push_back(std::min(size, at.back() + n));
  }
  return at;
}

void check_stream_scan(std::string_view body, const CredentialScanOptions& options, unsigned seed) {
  Found whole;
  for (const CredentialFinding& f : scan_for_credentials(body, options, 0, true)) {
    check_finding(body, f.offset, f.what, options);
    whole.emplace(f.offset, f.what);
  }
  const std::vector<std::size_t> at = cuts(body.size(), seed);
  StreamCredentialScan scan(options);
  Found streamed;
  const auto take = [&](const std::vector<StreamFinding>& found) {
    for (const StreamFinding& f : found)
      if (f.piece + 1 >= at.size() || !streamed.emplace(at[f.piece] + f.offset, f.what).second)
        std::abort();  // a piece never given, or a finding said twice
  };
  for (std::size_t k = 0; k + 1 < at.size(); ++k)
    take(scan.add(k, body.substr(at[k], at[k + 1] - at[k])));
  take(scan.finish());
  // What is searched for in the bytes as a whole (the password in clear or base64-encoded, a
  // bearer token) is said once per scan, where it first occurs; the stream says it again when a
  // later occurrence falls in a later piece's window. The first is the same; every base64 run's
  // finding is the same.
  Found first_only_whole, first_only_streamed;
  for (Found* f : {&whole, &streamed})
    for (auto it = f->begin(); it != f->end();)
      if (is_first_only(it->second)) {
        (f == &whole ? first_only_whole : first_only_streamed).insert(*it);
        it = f->erase(it);
      } else {
        ++it;
      }
  if (streamed != whole) std::abort();
  for (const auto& finding : first_only_whole)
    if (!first_only_streamed.contains(finding)) std::abort();
  for (const auto& later : first_only_streamed) {
    const auto first = std::find_if(first_only_whole.begin(), first_only_whole.end(),
                                    [&](const auto& f) { return f.second == later.second; });
    if (first == first_only_whole.end() || first->first > later.first) std::abort();
  }
}

void check_smuggling_shapes(std::string_view body, unsigned seed) {
  const auto whole = find_smuggling_shapes(body);
  for (const SmugglingShape& s : whole)
    if (s.offset >= body.size() || body[s.offset] != '.') std::abort();
  const std::vector<std::size_t> at = cuts(body.size(), seed ^ 0x5a5a);
  SmugglingShapeStream stream;
  std::vector<SmugglingShape> streamed;
  for (std::size_t k = 0; k + 1 < at.size(); ++k)
    stream.add(body.substr(at[k], at[k + 1] - at[k]), streamed);
  stream.finish(streamed);
  if (streamed.size() != whole.size()) std::abort();
  for (std::size_t k = 0; k < whole.size(); ++k)
    if (streamed[k].offset != whole[k].offset || streamed[k].shape != whole[k].shape) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::size_t password_size = data[0] % 32;
  const unsigned seed = data[1];
  if (size - 2 < password_size) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data + 2), size - 2);
  const std::string_view password = text.substr(0, password_size);
  const std::string_view body = text.substr(password_size);
  // A line longer than the tail the stream keeps is cut off at its start, by design.
  if (body.size() > StreamCredentialScan::kMostCarried) return 0;
  const CredentialScanOptions options =
      password.empty() ? CredentialScanOptions()
                       : CredentialScanOptions(mailtap::smtp::Secret::copy_of(password));
  check_stream_scan(body, options, seed);
  // Commands and notes are scanned whole, by the byte shape: the same findings' rules.
  for (const CredentialFinding& f : scan_for_credentials(body, options, 0, false))
    check_finding(body, f.offset, f.what, options);
  check_smuggling_shapes(body, seed);
  return 0;
}
