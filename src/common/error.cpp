#include "flowpath/error.hpp"

#include <filesystem>

namespace flowpath {

namespace {
std::string located(const std::string& reason, const char* file, int line) {
    // Only the file name: build paths say nothing useful to a user.
    return std::filesystem::path(file).filename().string() + ":" + std::to_string(line) + ": " + reason;
}
}  // namespace

Error::Error(const std::string& reason, const char* file, int line)
    : std::runtime_error(located(reason, file, line)) {}

std::string config_place(const std::string& file, unsigned line) {
    if (file.empty()) return "command line: ";
    return file + ":" + std::to_string(line) + ": ";
}

}  // namespace flowpath
