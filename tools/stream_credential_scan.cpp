#include "tools/stream_credential_scan.hpp"

#include <algorithm>

#include "proxy/smtp/base64.hpp"
#include "proxy/smtp/credential_shape.hpp"

namespace mailtap::tools {

StreamCredentialScan::StreamCredentialScan(const CredentialScanOptions& options)
    : options_(options) {
  const std::size_t n = options_.known_password().size();
  least_carried_ = std::max(n, smtp::base64_encoded_size(n));
}

std::vector<StreamFinding> StreamCredentialScan::add(std::uint64_t piece, std::string_view bytes) {
  if (bytes.empty()) return {};
  parts_.push_back({piece, end_});
  end_ += bytes.size();
  // The carried tail starts a line (unless a line outgrew kMostCarried), so the piece is scanned
  // as the stream has it: its first line whole, and after the line before it. Joined in a
  // buffer kept from piece to piece: a fresh one each time would be pages the kernel maps and
  // zeroes for every 256 KiB scanned.
  window_.assign(carried_);
  window_.append(bytes);
  const std::size_t from = carry_from(window_);
  // A run of base64 characters that reaches the end of the piece may go on in the next: it is
  // judged then, whole, as the tail carries it (its first 8 characters alone may decode to a
  // PLAIN message that the whole run is not), and what else lies in it is found again then.
  // Unless the tail cannot carry it whole (a line beyond kMostCarried): then it is judged now.
  std::size_t open_run = window_.size();
  while (open_run > 0 && smtp::is_base64_char(window_[open_run - 1])) --open_run;
  if (open_run < from) open_run = window_.size();
  std::vector<StreamFinding> out =
      report(scan_for_credentials(window_, options_, width_before_carried_, /*message_body=*/true),
             open_run);
  carry(window_, from);
  return out;
}

std::vector<StreamFinding> StreamCredentialScan::finish() {
  std::vector<StreamFinding> out;
  if (!carried_.empty())
    out = report(
        scan_for_credentials(carried_, options_, width_before_carried_, /*message_body=*/true),
        carried_.size());
  reset();
  return out;
}

std::vector<StreamFinding> StreamCredentialScan::report(std::vector<CredentialFinding> found,
                                                        std::size_t before) {
  std::vector<StreamFinding> out;
  for (CredentialFinding& f : found) {
    if (f.offset >= before) continue;
    const std::uint64_t at = carried_start_ + f.offset;
    // The first copy in the stream is the first reported: each window is scanned from where
    // the last left off, with as much of it carried as a copy cut by its end needs.
    if (f.first_only && first_only_reported_.contains(f.what)) continue;
    if (!known_.emplace(at, f.what).second) continue;
    if (f.first_only) first_only_reported_.insert(f.what);
    const Part* part = &parts_.front();
    for (const Part& p : parts_)
      if (p.start <= at) part = &p;
    out.push_back({part->piece, static_cast<std::size_t>(at - part->start), std::move(f.what)});
  }
  return out;
}

std::size_t StreamCredentialScan::carry_from(std::string_view window) const {
  // From the start of the last line, back over whole lines until the password fits.
  std::size_t from = window.size();
  do {
    const std::size_t nl = from == 0 ? std::string_view::npos : window.rfind('\n', from - 1);
    from = nl == std::string_view::npos ? 0 : nl + 1;
    if (window.size() - from >= least_carried_) break;
    from = from == 0 ? 0 : from - 1;  // the '\n' of the line before: search on from there
  } while (from > 0);
  return std::max(from, window.size() - std::min(window.size(), kMostCarried));
}

void StreamCredentialScan::carry(std::string_view window, std::size_t from) {
  // A line longer than kMostCarried is no line of a wrapped encoding; the tail starts inside it.
  const bool inside_a_line = from > 0 && window[from - 1] != '\n';
  width_before_carried_ =
      inside_a_line ? 0 : wrapped_width_before(window, from, width_before_carried_);
  carried_.assign(window.substr(from));
  carried_start_ = end_ - carried_.size();
  // A part whose successor starts at or before the tail carries nothing any more.
  while (parts_.size() > 1 && parts_[1].start <= carried_start_) parts_.erase(parts_.begin());
  known_.erase(known_.begin(), known_.lower_bound({carried_start_, std::string()}));
}

void StreamCredentialScan::reset() {
  window_.clear();
  carried_.clear();
  carried_start_ = end_ = 0;
  width_before_carried_ = 0;
  parts_.clear();
  known_.clear();
  first_only_reported_.clear();
}

}  // namespace mailtap::tools
