// TOML run configs for subcommands, read with CLI11's TOML reader after the command line is
// parsed, so that only the options the user did not give are taken from the file.
#include "tools/config_file.h"

#include <sstream>

#include "util/error.h"
#include "util/files.h"

namespace diloco {

CLI::Option* add_config_option(CLI::App& cmd, std::string& path) {
    return cmd.add_option("--config", path,
                          "TOML file setting any of these options by name (flags override)");
}

namespace {

// CLI11's reader takes an array left open at the end of the file as its first element; count
// the brackets outside strings and comments so that such a file is an error instead.
void check_brackets(const std::string& path, const std::string& text) {
    std::istringstream in(text);
    int depth = 0, line_no = 0, open_line = 0;
    for (std::string line; std::getline(in, line);) {
        line_no++;
        char quote = 0;
        for (size_t i = 0; i < line.size(); i++) {
            const char c = line[i];
            if (quote) {
                if (c == '\\' && quote == '"') i++;  // an escaped character ends no string
                else if (c == quote) quote = 0;
            } else if (c == '"' || c == '\'') {
                quote = c;
            } else if (c == '#') {
                break;
            } else if (c == '[' && depth++ == 0) {
                open_line = line_no;
            } else if (c == ']') {
                require(--depth >= 0, path + ":" + std::to_string(line_no) + ": unmatched ']'");
            }
        }
    }
    require(depth == 0, path + ":" + std::to_string(open_line) + ": '[' is never closed");
}

}  // namespace

void apply_config_file(CLI::App& cmd, const std::string& path) {
    if (path.empty()) return;
    require(path_kind(path) != PathKind::kMissing, path + ": config file not found");
    const std::string text = read_file(path, kMaxJsonFileBytes);  // a FIFO or a device is refused
    check_brackets(path, text);
    std::istringstream in(text);
    try {
        for (const CLI::ConfigItem& item : CLI::ConfigTOML().from_config(in)) {
            // CLI11 reports entering and leaving a [section] as items of its own.
            if (item.name == "++" || item.name == "--") continue;
            std::string where = item.name;
            for (auto p = item.parents.rbegin(); p != item.parents.rend(); ++p)
                where = *p + "." + where;
            // A [section] only groups keys for the reader: its keys are options by name.
            require(item.parents.size() <= 1,
                    path + ": '" + where + "': sections nest one level ([section] key = value)");
            CLI::Option* opt = cmd.get_option_no_throw("--" + item.name);
            require(opt != nullptr && item.name != "config",
                    path + ": unknown option '" + where + "' for `diloco " + cmd.get_name() + "`");
            if (opt->count() > 0) continue;  // the command line wins
            for (const std::string& value : item.inputs) opt->add_result(value);
            opt->run_callback();
        }
    } catch (const CLI::Error& e) {
        throw Error(path + ": " + e.what());
    }
}

}  // namespace diloco
