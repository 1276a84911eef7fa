// Logging for set-up, tear-down and the management thread (never per packet).
#pragma once

#include <sstream>
#include <string>
#include <string_view>

namespace flowpath {

/// Severity, from the most to the least severe; --log-level picks the least
/// severe that is printed.
enum class LogLevel { error, warn, info, debug };

/// Parses "error", "warn", "info" or "debug"; false on anything else.
bool parse_log_level(std::string_view text, LogLevel& level);

/// Sets the process-wide threshold (once, at start-up).
void set_log_level(LogLevel level);
LogLevel log_level();

/// Writes one line "flowpath: LEVEL: message" to stderr when `level` passes.
void log_line(LogLevel level, std::string_view message);

/// Concatenates its arguments as an ostream would print them.
template <class... Args>
std::string cat(const Args&... args) {
    std::ostringstream out;
    (out << ... << args);
    return out.str();
}

template <class... Args>
void log(LogLevel level, const Args&... args) {
    if (level <= log_level()) log_line(level, cat(args...));
}

}  // namespace flowpath
