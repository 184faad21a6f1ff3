// An UpstreamOutput joined into one string, for tests that compare what went upstream. The
// proxy never joins the pieces (a Secret piece stays on its own until written).
#pragma once

#include <string>

#include "proxy/smtp/upstream_output.hpp"

namespace mailtap::smtp {

inline std::string upstream_text(const UpstreamOutput& out) {
  std::string text;
  for (const UpstreamOutput::Piece& piece : out.pieces()) text += piece.view();
  return text;
}

}  // namespace mailtap::smtp
