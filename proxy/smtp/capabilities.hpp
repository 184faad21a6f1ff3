// What an EHLO reply advertises, and the changes mailtap makes to it: the upstream's STARTTLS is
// removed, because mailtap owns TLS towards the upstream; with --local-tls starttls mailtap
// offers its own STARTTLS for the client's side.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/smtp/reply_parser.hpp"

namespace mailtap::smtp {

struct Capabilities {
  bool starttls = false;
  bool pipelining = false;
  bool chunking = false;
  // SIZE's number (RFC 1870 §4): 0 when SIZE is absent, has no number, or is 0 (no fixed
  // maximum). It counts after SP, HT or "=" (old servers send "SIZE=10240000", as some send
  // "AUTH=..."), whatever words follow it. Of several SIZE lines the smallest non-zero number.
  std::uint64_t size = 0;
  bool size_advertised = false;  // a SIZE line is there, whatever its parameter
  // A SIZE line whose parameter is no number mailtap can read ("SIZE none", "SIZE -1",
  // "SIZE 0x1000000", "SIZE 10M"), in any of several SIZE lines: the server has a limit mailtap
  // cannot read, which is not no limit (size is then 0; the BDAT guard forwards no chunk under
  // it).
  bool size_unreadable = false;
  std::string auth;  // mechanisms after "AUTH", as advertised
  // The same mechanisms, upper-cased, in the server's order, each once: the union of every
  // "AUTH mech..." and obsolete "AUTH=mech..." line (some servers send both). Words that are not
  // SASL mechanism names (RFC 4422 §3.1) are left out.
  std::vector<std::string> auth_mechanisms;

  bool offers_auth(std::string_view mechanism) const;  // case-insensitive
};

// Reads extension keywords from the lines after the first (the first is the greeting line).
Capabilities parse_capabilities(const Reply& ehlo_reply);

// The margin mailtap keeps below an advertised SIZE for a transaction's BDAT octets: the server
// counts the header fields it adds itself (Exim its Received field, about 400 octets with TLS,
// and in submission mode Message-ID, Date and Sender), and some count line ends as they store
// them, which grows with the message: 8 KiB, or 1/64 of SIZE when that is larger.
inline constexpr std::uint64_t bdat_size_margin_min = 8 * 1024;
constexpr std::uint64_t bdat_size_margin(std::uint64_t size) {
  return size / 64 > bdat_size_margin_min ? size / 64 : bdat_size_margin_min;
}
// How many BDAT octets a transaction may take upstream under an advertised SIZE (0 when the
// margin takes it all); nullopt when SIZE sets no limit. A server at its size limit may stop
// reading a chunk there and take the rest as commands (Exim 4.96), so mailtap sends no chunk
// that reaches it.
constexpr std::optional<std::uint64_t> bdat_octets_allowed(std::uint64_t size) {
  if (size == 0) return std::nullopt;
  const std::uint64_t margin = bdat_size_margin(size);
  return size > margin ? size - margin : 0;
}

// What proxy and probe say when --tls none meets a server whose EHLO reply offers STARTTLS
// (principle 1: a downgrade is never silent).
std::string starttls_offered_under_tls_none();

// Returns `raw` without any STARTTLS line, keeping the reply well formed: if the removed line
// was the last one, the new last line gets "NNN " instead of "NNN-". Line endings of the kept
// lines are preserved byte for byte. `removed` tells whether anything changed.
std::string remove_starttls(const Reply& ehlo_reply, bool& removed);
// The same for every extension named (keyword match, case-insensitive; "AUTH" also removes an
// obsolete "AUTH=..." line).
std::string remove_extensions(const Reply& ehlo_reply,
                              std::initializer_list<std::string_view> names, bool& removed);

// `raw` (a well-formed multi-line reply, as the functions above return) with one more line
// "NNN <keyword>" at its end; the former last line becomes "NNN-".
std::string append_extension(std::string raw, std::string_view keyword);

}  // namespace mailtap::smtp
