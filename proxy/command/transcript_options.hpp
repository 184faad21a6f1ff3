// How the proxy's --transcript looks: --color and --explain (an explanation of each reply
// under it, from the tools' table of reply codes, which main hands in).
#pragma once

#include <CLI/CLI.hpp>
#include <memory>

#include "proxy/common/terminal_style.hpp"
#include "proxy/session/transcript.hpp"

namespace mailtap::cli {

struct TranscriptOptions {
  ColorChoice color = ColorChoice::auto_detect;
  bool explain = false;

  // Hands the choices to the transcript renderer; call once, before sessions start.
  // `explain` gives the lines under each reply when --explain was given.
  void apply(const ReplyExplainer& explain) const;
};

// Adds --color and --explain (which needs the app's --transcript flag) to `app`.
std::shared_ptr<TranscriptOptions> add_transcript_options(CLI::App& app);

}  // namespace mailtap::cli
