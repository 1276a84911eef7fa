// The management socket between flowpath and flowpath-ctl.
//
// Protocol (one request per connection): the client sends the command line,
// a newline, then an optional body (for example a rule file's text), and
// shuts down its write side. The server answers "OK\n" or "ERROR\n" followed
// by the text to print, and closes. Neither side limits the reply's size.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace flowpath {

/// Default socket path of the contract.
inline constexpr const char* kDefaultCtlSocket = "/tmp/flowpath.ctl";

/// A command's answer: the text to print and whether it succeeded.
struct CtlReply {
    bool ok = true;
    std::string text;
};

/// How long and how much one client may take; the defaults suit flowpath.
struct CtlLimits {
    /// A request must have fully arrived (write side shut) this long after
    /// the client connected.
    std::chrono::milliseconds request_deadline{5000};
    /// A reply whose client reads nothing for this long is abandoned.
    std::chrono::milliseconds reply_stall{10000};
    /// Largest request (command line and body) accepted.
    size_t max_request = size_t{1} << 30;
    /// Clients served at once; more wait in the listen backlog.
    size_t max_clients = 64;
    /// Replies buffered for slow readers beyond this wait before the next
    /// request is answered.
    size_t max_buffered_replies = size_t{1} << 30;
};

/// What a path holds, as far as a control socket is concerned.
enum class CtlSocketState {
    absent,        ///< nothing there
    stale,         ///< a socket nobody listens on (a process that died)
    listening,     ///< a socket another process serves
    not_a_socket,  ///< a file, directory or device: never to be replaced
};

/// Looks at `path` without changing anything there.
CtlSocketState probe_ctl_socket(const std::string& path);

/// The listening side, driven by the management thread through poll(). Every
/// client is served without blocking: a client that stalls delays nobody.
/// The socket file is created with mode 0600 and removed when destroyed
/// (only if it is still the one this server bound).
class CtlServer {
public:
    /// Binds `path`. Throws ConfigError when another process listens there,
    /// or when the path holds anything but a stale socket.
    explicit CtlServer(const std::string& path, CtlLimits limits = {});
    ~CtlServer();
    CtlServer(const CtlServer&) = delete;
    CtlServer& operator=(const CtlServer&) = delete;

    using Handler = std::function<CtlReply(const std::string& command, const std::string& body)>;

    /// One round of service, returning after about `timeout_ms` at most:
    /// accepts clients, reads and writes whatever each is ready for, and
    /// answers each request that arrived whole with `handler`. The handler
    /// runs synchronously and may block for a while; it never waits on a
    /// client. The round's time beyond `timeout_ms` is that of at most one
    /// handler call.
    void poll(int timeout_ms, const Handler& handler);

    /// Clients connected now (being read, waiting for the handler, or being
    /// written to).
    size_t clients() const { return clients_.size(); }

private:
    struct Client;

    void accept_clients();
    void answer(Client& client, const Handler& handler);
    void expire(std::chrono::steady_clock::time_point now);

    std::string path_;
    CtlLimits limits_;
    int fd_ = -1;
    dev_t device_ = 0;  // identity of the bound socket file
    ino_t inode_ = 0;
    std::vector<std::unique_ptr<Client>> clients_;
};

/// The client side: sends one request and returns the reply, however large.
/// Throws std::runtime_error with a one-line reason when nothing listens or
/// the exchange fails.
CtlReply ctl_request(const std::string& path, const std::string& command, const std::string& body);

}  // namespace flowpath
