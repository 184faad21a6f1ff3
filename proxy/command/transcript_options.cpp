#include "proxy/command/transcript_options.hpp"

#include "proxy/cli/color_option.hpp"
#include "proxy/session/transcript.hpp"

namespace mailtap::cli {

void TranscriptOptions::apply(const ReplyExplainer& explainer) const {
  TranscriptView view;
  view.style = Style::for_stdout(color);
  if (explain) view.explain = explainer;
  set_transcript_view(std::move(view));
}

std::shared_ptr<TranscriptOptions> add_transcript_options(CLI::App& app) {
  auto options = std::make_shared<TranscriptOptions>();
  add_color_option(app, options->color);
  auto* explain = app.add_flag("--explain", options->explain,
                               "With --transcript: explain each reply under it, and say what "
                               "usually fixes a failure (as mailtap explain does)");
  if (CLI::Option* transcript = app.get_option_no_throw("--transcript")) explain->needs(transcript);
  return options;
}

}  // namespace mailtap::cli
