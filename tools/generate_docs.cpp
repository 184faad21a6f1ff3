// `mailtap generate-docs` (hidden): writes the man pages and the bash completion from the
// option definitions of every subcommand. The build runs it, so what is installed is what
// --help says.
#include <filesystem>
#include <memory>

#include "proxy/common/log.hpp"
#include "tools/cli_docs.hpp"
#include "tools/commands.hpp"
#include "tools/tool_options.hpp"

namespace mailtap::tools {

namespace {

struct GenerateArgs {
  std::string man_dir;
  std::string bash_completion;
  std::string doc_dir;
};

bool write_text(const std::string& path, const std::string& text) {
  std::error_code ec;
  const auto dir = std::filesystem::path(path).parent_path();
  if (!dir.empty()) std::filesystem::create_directories(dir, ec);
  std::string error;
  // write_file creates 0600 (it is meant for recorded mail); documentation is public.
  if (!write_file(path, text, error)) {
    log::error("generate-docs: " + error);
    return false;
  }
  std::filesystem::permissions(path, std::filesystem::perms(0644), ec);
  return true;
}

int run_generate(const GenerateArgs& a, const CLI::App& root) {
  if (a.man_dir.empty() && a.bash_completion.empty()) {
    log::error("generate-docs: nothing to do (give --man-dir and/or --bash-completion)");
    return 2;
  }
  if (!a.man_dir.empty())
    for (const ManPage& page : man_pages(root, MAILTAP_VERSION, a.doc_dir))
      if (!write_text(a.man_dir + "/" + page.file_name, page.roff)) return 1;
  if (!a.bash_completion.empty() && !write_text(a.bash_completion, bash_completion(root))) return 1;
  return 0;
}

}  // namespace

cli::Subcommand add_generate_docs_command(CLI::App& parent) {
  auto args = std::make_shared<GenerateArgs>();
  CLI::App* app = parent.add_subcommand("generate-docs", "Write man pages and bash completion");
  app->group("");  // hidden: a build step, not a user's command
  app->add_option("--man-dir", args->man_dir, "directory for mailtap.1 and mailtap-*.1");
  app->add_option("--bash-completion", args->bash_completion, "file for the bash completion");
  app->add_option("--doc-dir", args->doc_dir,
                  "where docs/ is installed, named in the man pages instead of docs/");
  const CLI::App* root = &parent;
  return {app, [args, root] { return run_generate(*args, *root); }};
}

}  // namespace mailtap::tools
