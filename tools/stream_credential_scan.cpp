#include "tools/stream_credential_scan.hpp"

#include <algorithm>

#include "proxy/smtp/base64.hpp"

namespace mailtap::tools {

StreamCredentialScan::StreamCredentialScan(const CredentialScanOptions& options)
    : options_(options) {
  const std::size_t n = options_.known_password.size();
  least_carried_ = std::max(n, smtp::base64_encoded_size(n));
}

std::vector<StraddlingFinding> StreamCredentialScan::add(std::uint64_t piece,
                                                         std::string_view bytes) {
  std::vector<StraddlingFinding> out;
  const std::uint64_t start = end_;
  for (const CredentialFinding& f : scan_for_credentials(bytes, options_))
    known_.emplace(start + f.offset, f.what);
  if (!carried_.empty() && !bytes.empty()) {
    // Enough of this piece to finish what the carried tail began: its first line, or as much
    // as the password takes.
    std::size_t reach = bytes.find('\n');
    reach = reach == std::string_view::npos ? bytes.size() : reach + 1;
    reach = std::min({bytes.size(), kMostCarried, std::max(reach, least_carried_)});
    std::string window = carried_;
    window.append(bytes.substr(0, reach));
    // A finding that begins in this piece was found in it alone. (The scan reports the first
    // copy of a clear password only: a second one, straddling, after a first one in the same
    // carried line goes unnamed; the first is reported.)
    for (CredentialFinding& f : scan_for_credentials(window, options_)) {
      if (f.offset >= carried_.size()) continue;
      const std::uint64_t at = carried_start_ + f.offset;
      if (!known_.emplace(at, f.what).second) continue;
      const Part* part = &parts_.front();
      for (const Part& p : parts_)
        if (p.start <= at) part = &p;
      out.push_back({part->piece, static_cast<std::size_t>(at - part->start), std::move(f.what)});
    }
  }
  end_ = start + bytes.size();
  carry(piece, start, bytes);
  return out;
}

void StreamCredentialScan::carry(std::uint64_t piece, std::uint64_t start, std::string_view bytes) {
  if (bytes.empty()) return;
  if (bytes.size() >= kMostCarried) {
    carried_.assign(bytes.substr(bytes.size() - kMostCarried));
    parts_.clear();
  } else {
    carried_.append(bytes);
  }
  parts_.push_back({piece, start});
  std::size_t keep = carried_.size();
  if (const std::size_t nl = carried_.rfind('\n'); nl != std::string::npos)
    keep = carried_.size() - nl - 1;
  keep = std::min({std::max(keep, least_carried_), kMostCarried, carried_.size()});
  carried_.erase(0, carried_.size() - keep);
  carried_start_ = end_ - carried_.size();
  // A part whose successor starts at or before the tail carries nothing any more.
  while (parts_.size() > 1 && parts_[1].start <= carried_start_) parts_.erase(parts_.begin());
  known_.erase(known_.begin(), known_.lower_bound({carried_start_, std::string()}));
}

void StreamCredentialScan::reset() {
  carried_.clear();
  carried_start_ = end_ = 0;
  parts_.clear();
  known_.clear();
}

}  // namespace mailtap::tools
