// The control socket: a non-blocking server driven by the management loop,
// and the blocking client flowpath-ctl uses.
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <utility>

#include "flowpath/ctl.hpp"
#include "flowpath/error.hpp"
#include "flowpath/log.hpp"

namespace flowpath {

namespace {

using Clock = std::chrono::steady_clock;

// Bytes moved for one client in one round, so that one busy client cannot
// hold the round (and the stop checks behind it) for long.
constexpr size_t kRoundBytes = size_t{4} << 20;
constexpr size_t kChunk = 64 * 1024;
// New clients accepted per round.
constexpr int kAcceptsPerRound = 16;

/// A file descriptor closed when it goes out of scope.
class FileDescriptor {
public:
    explicit FileDescriptor(int fd = -1) : fd_(fd) {}
    ~FileDescriptor() { reset(); }
    FileDescriptor(FileDescriptor&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    FileDescriptor& operator=(FileDescriptor&& other) noexcept {
        if (this != &other) {
            reset();
            fd_ = std::exchange(other.fd_, -1);
        }
        return *this;
    }
    int get() const { return fd_; }
    void reset() {
        if (fd_ >= 0) close(fd_);
        fd_ = -1;
    }

private:
    int fd_;
};

sockaddr_un socket_address(const std::string& path) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (path.size() >= sizeof(address.sun_path)) throw std::runtime_error("socket path too long: " + path);
    std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
    return address;
}

// Connects to `path`; an invalid descriptor with errno set when nothing
// listens.
FileDescriptor connect_to(const std::string& path) {
    const sockaddr_un address = socket_address(path);
    FileDescriptor fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (fd.get() < 0) return fd;
    if (connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
        const int saved = errno;
        fd.reset();
        errno = saved;
    }
    return fd;
}

std::string strerror_text(int error) { return std::strerror(error); }

}  // namespace

CtlSocketState probe_ctl_socket(const std::string& path) {
    struct stat info {};
    if (lstat(path.c_str(), &info) != 0) return CtlSocketState::absent;
    if (!S_ISSOCK(info.st_mode)) return CtlSocketState::not_a_socket;
    return connect_to(path).get() >= 0 ? CtlSocketState::listening : CtlSocketState::stale;
}

/// One connection: its request as it arrives, then its reply as it leaves.
struct CtlServer::Client {
    enum class State { reading, ready, writing };

    FileDescriptor fd;
    State state = State::reading;
    std::string request;
    std::string reply;
    size_t sent = 0;
    // Input still arriving after an early reply is read and dropped, so that
    // closing does not reset the connection before the client has read why.
    bool draining = false;
    Clock::time_point deadline;

    explicit Client(int descriptor, Clock::time_point request_deadline)
        : fd(descriptor), deadline(request_deadline) {}

    bool closed() const { return fd.get() < 0; }

    void start_reply(std::string text, Clock::time_point stall_deadline) {
        reply = std::move(text);
        request = std::string();  // the request's memory is no longer needed
        sent = 0;
        state = State::writing;
        deadline = stall_deadline;
    }

    enum class Input { pending, ended, failed };

    // Receives what has arrived (one round's bytes at most) and hands it to
    // `take`, which returns false to stop; says whether the input ended.
    template <class Take>
    Input receive(Take&& take) {
        char chunk[kChunk];
        for (size_t moved = 0; moved < kRoundBytes;) {
            const ssize_t n = recv(fd.get(), chunk, sizeof(chunk), MSG_DONTWAIT);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return Input::pending;
            if (n < 0) return Input::failed;
            if (n == 0) return Input::ended;
            if (!take(chunk, static_cast<size_t>(n))) return Input::pending;
            moved += static_cast<size_t>(n);
        }
        return Input::pending;
    }

    // Reads the request as it arrives; it is whole once the client shuts
    // its write side.
    void read_some(const CtlLimits& limits, Clock::time_point now) {
        const Input input = receive([&](const char* data, size_t size) {
            if (request.size() + size > limits.max_request) {
                start_reply("ERROR\nrequest larger than " + std::to_string(limits.max_request) + " bytes\n",
                            now + limits.reply_stall);
                draining = true;
                return false;
            }
            request.append(data, size);
            return true;
        });
        if (state != State::reading) return;
        if (input == Input::failed) fd.reset();  // reset by the client: nobody to answer
        // A client that sent nothing (a probe of the socket) gets no answer.
        if (input == Input::ended) {
            if (request.empty()) fd.reset();
            else state = State::ready;
        }
    }

    // Drops input after an early reply; closes at its end once the reply
    // is out.
    void drain() {
        if (receive([](const char*, size_t) { return true; }) == Input::pending) return;
        draining = false;
        if (sent == reply.size()) fd.reset();
    }

    // Writes what the socket takes; closes once the reply is out.
    void write_some(const CtlLimits& limits, Clock::time_point now) {
        size_t moved = 0;
        while (sent < reply.size() && moved < kRoundBytes) {
            const size_t want = std::min(reply.size() - sent, kRoundBytes - moved);
            const ssize_t n = send(fd.get(), reply.data() + sent, want, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
            if (n <= 0) {
                fd.reset();  // the client left before reading everything
                return;
            }
            sent += static_cast<size_t>(n);
            moved += static_cast<size_t>(n);
        }
        if (moved > 0) deadline = now + limits.reply_stall;
        if (sent == reply.size() && !draining) fd.reset();
    }

    size_t buffered() const { return state == State::writing ? reply.size() - sent : 0; }
};

CtlServer::CtlServer(const std::string& path, CtlLimits limits) : path_(path), limits_(limits) {
    switch (probe_ctl_socket(path)) {
        case CtlSocketState::listening:
            throw ConfigError("command line: ctl-socket: another process already listens on " + path);
        case CtlSocketState::not_a_socket:
            throw ConfigError("command line: ctl-socket: " + path +
                              " exists and is not a socket; refusing to replace it");
        case CtlSocketState::stale:
            unlink(path.c_str());  // the socket of a process that died
            break;
        case CtlSocketState::absent: break;
    }
    const sockaddr_un address = socket_address(path);
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd_ < 0) throw Error(std::string("socket: ") + std::strerror(errno));
    // Only the owner may drive the datapath: create the socket file 0600.
    // umask is process-wide, but nothing else creates files at this point.
    const mode_t old_mask = umask(0177);
    const int rc = bind(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof(address));
    const int saved = errno;
    umask(old_mask);
    if (rc != 0 || listen(fd_, static_cast<int>(limits_.max_clients)) != 0) {
        const int err = rc != 0 ? saved : errno;
        close(fd_);
        throw ConfigError("command line: ctl-socket: cannot listen on " + path + ": " + std::strerror(err));
    }
    struct stat info {};
    if (stat(path.c_str(), &info) == 0) {
        device_ = info.st_dev;
        inode_ = info.st_ino;
    }
}

CtlServer::~CtlServer() {
    clients_.clear();
    close(fd_);
    // Remove the socket file only if it is still ours: another process may
    // have replaced it meanwhile.
    struct stat info {};
    if (lstat(path_.c_str(), &info) == 0 && S_ISSOCK(info.st_mode) && info.st_dev == device_ &&
        info.st_ino == inode_) {
        unlink(path_.c_str());
    }
}

void CtlServer::accept_clients() {
    const auto deadline = Clock::now() + limits_.request_deadline;
    for (int i = 0; i < kAcceptsPerRound && clients_.size() < limits_.max_clients; ++i) {
        const int fd = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) return;  // EAGAIN: no more pending (or a client gone already)
        clients_.push_back(std::make_unique<Client>(fd, deadline));
    }
}

void CtlServer::answer(Client& client, const Handler& handler) {
    const std::string& request = client.request;
    const size_t newline = request.find('\n');
    const std::string command = request.substr(0, newline);
    const std::string body = newline == std::string::npos ? std::string() : request.substr(newline + 1);
    log(LogLevel::debug, "ctl: ", command);
    CtlReply reply;
    try {
        reply = handler(command, body);
    } catch (const std::exception& e) {
        reply = {false, std::string(e.what()) + "\n"};
    }
    const auto now = Clock::now();
    client.start_reply((reply.ok ? "OK\n" : "ERROR\n") + reply.text, now + limits_.reply_stall);
    client.write_some(limits_, now);  // most replies leave at once
}

void CtlServer::expire(Clock::time_point now) {
    for (auto& client : clients_) {
        if (client->closed() || now < client->deadline) continue;
        if (client->state == Client::State::reading) {
            const auto seconds = std::chrono::duration<double>(limits_.request_deadline).count();
            client->start_reply("ERROR\nrequest not complete within " + cat(seconds) +
                                    " s (send the command, a newline, the body if any, then shut the write side)\n",
                                now + limits_.reply_stall);
            client->write_some(limits_, now);
        } else if (client->state == Client::State::writing) {
            client->fd.reset();  // the reader stalled: drop the rest of its reply
        }
    }
}

void CtlServer::poll(int timeout_ms, const Handler& handler) {
    const auto started = Clock::now();
    const auto round_end = started + std::chrono::milliseconds(timeout_ms);
    size_t buffered = 0;
    for (const auto& client : clients_) buffered += client->buffered();
    const bool may_answer = buffered <= limits_.max_buffered_replies;
    const bool answers_waiting =
        may_answer && std::any_of(clients_.begin(), clients_.end(),
                                  [](const auto& c) { return c->state == Client::State::ready; });

    // Wait for I/O, but not past the round nor the nearest deadline.
    auto wake = round_end;
    for (const auto& client : clients_) {
        if (client->state != Client::State::ready) wake = std::min(wake, client->deadline);
    }
    const auto wait = std::chrono::ceil<std::chrono::milliseconds>(wake - started).count();
    std::vector<pollfd> fds;
    fds.reserve(clients_.size() + 1);
    fds.push_back({fd_, static_cast<short>(clients_.size() < limits_.max_clients ? POLLIN : 0), 0});
    for (const auto& client : clients_) {
        // A client waiting for its answer is not polled (a negative fd is
        // skipped): its hang-up would only wake the round for nothing.
        const bool reading = client->state == Client::State::reading;
        const bool writing = client->state == Client::State::writing;
        short events = reading ? POLLIN : 0;
        if (writing) events = static_cast<short>((client->sent < client->reply.size() ? POLLOUT : 0) |
                                                 (client->draining ? POLLIN : 0));
        fds.push_back({reading || writing ? client->fd.get() : -1, events, 0});
    }
    const int ready = ::poll(fds.data(), fds.size(), answers_waiting ? 0 : static_cast<int>(std::max<long>(wait, 0)));
    auto now = Clock::now();
    if (ready > 0) {
        for (size_t i = 0; i < clients_.size(); ++i) {
            Client& client = *clients_[i];
            if (fds[i + 1].revents == 0) continue;
            if (client.state == Client::State::reading) {
                client.read_some(limits_, now);
            } else if (client.state == Client::State::writing) {
                const short revents = fds[i + 1].revents;
                if (client.sent < client.reply.size() && (revents & (POLLOUT | POLLHUP | POLLERR))) {
                    client.write_some(limits_, now);
                }
                if (!client.closed() && client.draining && (revents & (POLLIN | POLLHUP | POLLERR))) client.drain();
            }
        }
        if (fds[0].revents & POLLIN) accept_clients();
    }
    expire(now);

    // Answer whole requests in arrival order, at least one per round and
    // more while the round lasts.
    if (may_answer) {
        for (auto& client : clients_) {
            if (client->closed() || client->state != Client::State::ready) continue;
            answer(*client, handler);
            now = Clock::now();
            if (now >= round_end) break;
        }
    }
    std::erase_if(clients_, [](const auto& client) { return client->closed(); });
}

CtlReply ctl_request(const std::string& path, const std::string& command, const std::string& body) {
    const FileDescriptor fd = connect_to(path);
    if (fd.get() < 0) {
        throw std::runtime_error("cannot reach flowpath at " + path + ": " + strerror_text(errno) +
                                 " (is flowpath running with --ctl-socket " + path + "?)");
    }
    // A failed send is reported only if no reply explains it: the server
    // may refuse a request early (too large) and say why.
    const std::string request = command + "\n" + body;
    int send_error = 0;
    for (size_t done = 0; done < request.size();) {
        const ssize_t n = send(fd.get(), request.data() + done, request.size() - done, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            send_error = n < 0 ? errno : EPIPE;
            break;
        }
        done += static_cast<size_t>(n);
    }
    shutdown(fd.get(), SHUT_WR);

    std::string answer;
    std::vector<char> chunk(1 << 20);
    int read_error = 0;
    for (;;) {
        const ssize_t n = recv(fd.get(), chunk.data(), chunk.size(), 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            read_error = errno;
            break;
        }
        if (n == 0) break;
        answer.append(chunk.data(), static_cast<size_t>(n));
    }
    const size_t newline = answer.find('\n');
    const std::string status = answer.substr(0, newline);
    if (newline != std::string::npos && (status == "OK" || status == "ERROR")) {
        if (read_error != 0) {
            throw std::runtime_error("reading the reply of flowpath at " + path + " failed after " +
                                     std::to_string(answer.size()) + " bytes: " + strerror_text(read_error));
        }
        return {status == "OK", answer.substr(newline + 1)};
    }
    if (send_error != 0) {
        throw std::runtime_error("sending the request to flowpath at " + path + " failed: " + strerror_text(send_error));
    }
    if (read_error != 0) {
        throw std::runtime_error("reading the reply of flowpath at " + path + " failed: " + strerror_text(read_error));
    }
    if (answer.empty()) {
        throw std::runtime_error("flowpath at " + path + " closed the connection without a reply (is it stopping?)");
    }
    throw std::runtime_error("unexpected answer from flowpath at " + path + ": '" + answer.substr(0, 40) + "'");
}

}  // namespace flowpath
