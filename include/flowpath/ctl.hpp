// The management socket between flowpath and flowpath-ctl.
//
// Protocol (one request per connection): the client sends the command line,
// a newline, then an optional body (for example a rule file's text), and
// shuts down its write side. The server answers "OK\n" or "ERROR\n" followed
// by the text to print, and closes.
#pragma once

#include <functional>
#include <string>

namespace flowpath {

/// Default socket path of the contract.
inline constexpr const char* kDefaultCtlSocket = "/tmp/flowpath.ctl";

/// A command's answer: the text to print and whether it succeeded.
struct CtlReply {
    bool ok = true;
    std::string text;
};

/// The listening side, polled by the management thread. Created with mode
/// 0600; removed when destroyed.
class CtlServer {
public:
    /// Binds `path`. Throws ConfigError when another process listens there.
    explicit CtlServer(const std::string& path);
    ~CtlServer();
    CtlServer(const CtlServer&) = delete;
    CtlServer& operator=(const CtlServer&) = delete;

    using Handler = std::function<CtlReply(const std::string& command, const std::string& body)>;

    /// Waits up to `timeout_ms` for requests and answers each with `handler`.
    void poll(int timeout_ms, const Handler& handler);

private:
    void serve_one(int fd, const Handler& handler);

    std::string path_;
    int fd_ = -1;
};

/// The client side: sends one request and returns the reply. Throws
/// std::runtime_error with a one-line reason when nothing listens.
CtlReply ctl_request(const std::string& path, const std::string& command, const std::string& body);

}  // namespace flowpath
