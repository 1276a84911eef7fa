#include "flowpath/error.hpp"

#include <filesystem>

namespace flowpath {

namespace {
std::string located(const std::string& reason, const std::source_location& where) {
    // Only the file name: build paths say nothing useful to a user.
    const std::string file = std::filesystem::path(where.file_name()).filename().string();
    return file + ":" + std::to_string(where.line()) + ": " + reason;
}
}  // namespace

Error::Error(const std::string& reason, std::source_location where)
    : std::runtime_error(located(reason, where)) {}

std::string config_place(const std::string& file, unsigned line) {
    if (file.empty()) return "command line: ";
    return file + ":" + std::to_string(line) + ": ";
}

}  // namespace flowpath
