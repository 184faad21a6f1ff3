// A reply explained for a person: parsed from what they paste (`535 5.7.8`, `5.7.8`, or a
// whole reply line), and rendered for `mailtap explain` (text, JSON) and for the lines the
// proxy's --transcript --explain prints under each reply.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mailtap::tools {

struct ReplyQuery {
  int code = 0;          // 0 when only an enhanced status was given
  std::string enhanced;  // "" when none was given
  std::string text;      // the rest of a pasted reply ("" when none)
};

// "535", "535 5.7.8", "5.7.8", "535-5.7.8 Username and Password not accepted", a pasted
// multi-line reply. nullopt with `error` set when it holds no reply code or status.
std::optional<ReplyQuery> parse_reply_query(std::string_view input, std::string& error);

std::string render_explanation_text(const ReplyQuery& q);
std::string render_explanation_json(const ReplyQuery& q);

// For --transcript --explain: "535 5.7.8: meaning" and, for a failure, "fix: ...". `verb`: the
// command the reply answers, "" if not known (see explain_reply).
std::vector<std::string> explanation_lines(int code, std::string_view enhanced,
                                           std::string_view text, std::string_view verb);

}  // namespace mailtap::tools
