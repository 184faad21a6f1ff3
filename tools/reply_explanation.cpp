#include "tools/reply_explanation.hpp"

#include <cctype>

#include "proxy/common/text.hpp"
#include "tools/json_writer.hpp"
#include "tools/reply_codes.hpp"
#include "tools/terminal_text.hpp"

namespace mailtap::tools {

namespace {

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

// Digits and dots with at least one dot: meant as an enhanced status, valid or not.
bool looks_like_status(std::string_view s) {
  if (s.find('.') == std::string_view::npos) return false;
  for (char c : s)
    if (c != '.' && !std::isdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

std::string_view next_token(std::string_view& rest) {
  std::size_t start = 0;
  while (start < rest.size() && std::isspace(static_cast<unsigned char>(rest[start]))) ++start;
  rest.remove_prefix(start);
  std::size_t end = 0;
  while (end < rest.size() && !std::isspace(static_cast<unsigned char>(rest[end]))) ++end;
  std::string_view token = rest.substr(0, end);
  rest.remove_prefix(end);
  return token;
}

// Reply text as SMTP bounds it: without blanks around it, nor the line end a paste brings along.
std::string trimmed(std::string_view s) {
  return std::string(trim_blanks(strip_crlf(s)));
}

std::string heading(const ReplyQuery& q) {
  std::string h = q.code != 0 ? std::to_string(q.code) : std::string();
  if (!q.enhanced.empty()) h += (h.empty() ? "" : " ") + q.enhanced;
  return h;
}

// Words of `text` on lines of at most `width` columns: the first starts with `first`, the
// others with `rest`.
std::string wrapped(std::string_view text, std::string_view first, std::string_view rest,
                    std::size_t width = 78) {
  std::string out, line(first);
  std::size_t indent = first.size();
  std::string_view words = text;
  for (std::string_view w = next_token(words); !w.empty(); w = next_token(words)) {
    if (line.size() > indent && line.size() + 1 + w.size() > width) {
      out += line + "\n";
      line = rest;
      indent = rest.size();
    }
    if (line.size() > indent) line += ' ';
    line += w;
  }
  if (line.size() > indent) out += line + "\n";
  return out;
}

}  // namespace

std::optional<ReplyQuery> parse_reply_query(std::string_view input, std::string& error) {
  ReplyQuery q;
  std::string_view rest = input;
  std::string_view token = next_token(rest);
  // "535-5.7.8" (a continuation line) reads as "535 5.7.8".
  std::string_view after_code;
  if (token.size() > 3 && token[3] == '-' && all_digits(token.substr(0, 3))) {
    after_code = token.substr(4);
    token = token.substr(0, 3);
  }
  if (all_digits(token)) {
    if (token.size() != 3 || basic_code_meaning(std::stoi(std::string(token))).empty()) {
      error = "\"" + std::string(token) + "\" is not an SMTP reply code (three digits, 2xx-5xx)";
      return std::nullopt;
    }
    q.code = std::stoi(std::string(token));
    token = after_code.empty() ? next_token(rest) : after_code;
  }
  if (looks_like_status(token)) {
    if (!enhanced_status_meaning(token).valid) {
      error = "\"" + escape_text(token) +
              "\" is not an enhanced status code (x.y.z with x 2, 4 or 5; RFC 3463)";
      return std::nullopt;
    }
    q.enhanced = std::string(token);
    token = {};
  }
  if (q.code == 0 && q.enhanced.empty()) {
    error = "expected a reply code and/or an enhanced status, e.g. 535 5.7.8 (got \"" +
            escape_text(trimmed(input)) + "\")";
    return std::nullopt;
  }
  // 2xx/3xx with a 4.x.x or 5.x.x status, or the other way round, is no reply a server sends.
  // A temporary and a permanent failure mixed (550 4.7.1) is: servers do send that, and the
  // reply code is what clients act on, so it is explained, not refused.
  if (q.code != 0 && !q.enhanced.empty() && (q.enhanced[0] == '2') != (q.code < 400)) {
    error = "reply code " + std::to_string(q.code) + " and status " + q.enhanced +
            " disagree on success or failure; a server sends the same class in both";
    return std::nullopt;
  }
  q.text = trimmed(std::string(token) + std::string(rest));
  return q;
}

std::string render_explanation_text(const ReplyQuery& q) {
  const ReplyAdvice advice = advise_reply(q.code, q.enhanced, q.text);
  std::string out = wrapped(heading(q) + ": " + advice.meaning, "", "    ");
  out += "\n";
  if (q.code != 0) {
    const std::string code = std::to_string(q.code);
    out += "  " + code + std::string(8 - code.size(), ' ') + basic_code_meaning(q.code) + "\n";
    out += "          " + basic_code_class(q.code) + "\n";
  }
  if (!q.enhanced.empty()) {
    const auto m = enhanced_status_meaning(q.enhanced);
    out += "  " + q.enhanced + std::string(q.enhanced.size() < 8 ? 8 - q.enhanced.size() : 1, ' ') +
           m.detail + "\n";
    out += "          " + m.klass + "; " + m.subject + "\n";
  }
  if (!advice.server.empty()) out += "  source  as " + advice.server + " uses this reply\n";
  if (!advice.fix.empty()) {
    // A 334 or a 354 is no failure: its advice is the next step of the dialogue.
    out += q.code / 100 == 3 ? "\nWhat to send next:\n" : "\nWhat usually fixes it:\n";
    out += wrapped(advice.fix, "  ", "  ");
  }
  return out;
}

std::string render_explanation_json(const ReplyQuery& q) {
  const ReplyAdvice advice = advise_reply(q.code, q.enhanced, q.text);
  JsonWriter w;
  w.begin_object();
  w.key("code");
  if (q.code != 0)
    w.value(q.code);
  else
    w.null();
  w.key("enhanced_status");
  if (!q.enhanced.empty())
    w.value(q.enhanced);
  else
    w.null();
  write_bytes_member(w, "text", q.text);
  w.key("meaning").value(advice.meaning);
  w.key("server");
  if (!advice.server.empty())
    w.value(advice.server);
  else
    w.null();
  w.key("fix").value(advice.fix);
  w.key("code_meaning").value(q.code != 0 ? basic_code_meaning(q.code) : "");
  w.key("code_class").value(q.code != 0 ? basic_code_class(q.code) : "");
  w.key("status");
  if (!q.enhanced.empty()) {
    const auto m = enhanced_status_meaning(q.enhanced);
    w.begin_object();
    w.key("class").value(m.klass).key("subject").value(m.subject).key("detail").value(m.detail);
    w.end_object();
  } else {
    w.null();
  }
  w.end_object();
  return w.take() + "\n";
}

std::vector<std::string> explanation_lines(int code, std::string_view enhanced,
                                           std::string_view text, std::string_view verb) {
  const ReplyAdvice advice = advise_reply(code, enhanced, text, ReplyFrom::unknown, verb);
  std::vector<std::string> lines;
  if (advice.meaning.empty()) return lines;
  std::string head = std::to_string(code);
  if (!enhanced.empty()) head += " " + std::string(enhanced);
  lines.push_back(head + ": " + advice.meaning +
                  (advice.server.empty() ? "" : " (" + advice.server + ")"));
  if (code >= 400 && !advice.fix.empty()) lines.push_back("fix: " + advice.fix);
  return lines;
}

}  // namespace mailtap::tools
