#include "tools/stream_credential_scan.hpp"

#include <algorithm>

#include "proxy/smtp/base64.hpp"

namespace mailtap::tools {

StreamCredentialScan::StreamCredentialScan(const CredentialScanOptions& options)
    : options_(options) {
  const std::size_t n = options_.known_password.size();
  least_carried_ = std::max(n, smtp::base64_encoded_size(n));
}

std::vector<StreamFinding> StreamCredentialScan::add(std::uint64_t piece, std::string_view bytes) {
  std::vector<StreamFinding> out;
  if (bytes.empty()) return out;
  parts_.push_back({piece, end_});
  end_ += bytes.size();
  // The carried tail starts a line (unless a line outgrew kMostCarried), so the piece is scanned
  // as the stream has it: its first line whole, and after the line before it.
  // Joined in a buffer kept from piece to piece: a fresh one each time would be pages the
  // kernel maps and zeroes for every 256 KiB scanned.
  std::string& window = window_;
  window.assign(carried_);
  window.append(bytes);
  for (CredentialFinding& f : scan_for_credentials(window, options_, width_before_carried_,
                                                   /*message_body=*/true)) {
    const std::uint64_t at = carried_start_ + f.offset;
    if (!known_.emplace(at, f.what).second) continue;
    const Part* part = &parts_.front();
    for (const Part& p : parts_)
      if (p.start <= at) part = &p;
    out.push_back({part->piece, static_cast<std::size_t>(at - part->start), std::move(f.what)});
  }
  carry(window);
  return out;
}

void StreamCredentialScan::carry(std::string_view window) {
  // From the start of the last line, back over whole lines until the password fits.
  std::size_t from = window.size();
  do {
    const std::size_t nl = from == 0 ? std::string_view::npos : window.rfind('\n', from - 1);
    from = nl == std::string_view::npos ? 0 : nl + 1;
    if (window.size() - from >= least_carried_) break;
    from = from == 0 ? 0 : from - 1;  // the '\n' of the line before: search on from there
  } while (from > 0);
  if (window.size() - from > kMostCarried) {
    from = window.size() - kMostCarried;
    width_before_carried_ = 0;  // a line this long is no line of a wrapped encoding
  } else {
    width_before_carried_ = wrapped_width_before(window, from, width_before_carried_);
  }
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
}

}  // namespace mailtap::tools
