#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "flowpath/ctl.hpp"
#include "flowpath/error.hpp"
#include "flowpath/log.hpp"

namespace flowpath {

namespace {
constexpr size_t kMaxRequest = 64u << 20;  // a large rule file, but bounded

sockaddr_un socket_address(const std::string& path) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (path.size() >= sizeof(address.sun_path)) throw std::runtime_error("socket path too long: " + path);
    std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
    return address;
}

// Connects to `path`; -1 with errno set when nothing listens.
int connect_to(const std::string& path) {
    const sockaddr_un address = socket_address(path);
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
        const int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

bool write_all(int fd, const std::string& data) {
    size_t done = 0;
    while (done < data.size()) {
        const ssize_t n = send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        done += static_cast<size_t>(n);
    }
    return true;
}

bool read_all(int fd, std::string& data, size_t limit) {
    char chunk[65536];
    for (;;) {
        const ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return false;
        if (n == 0) return true;
        data.append(chunk, static_cast<size_t>(n));
        if (data.size() > limit) return false;
    }
}
}  // namespace

CtlServer::CtlServer(const std::string& path) : path_(path) {
    const int existing = connect_to(path);
    if (existing >= 0) {
        close(existing);
        throw ConfigError("command line: ctl-socket: another process already listens on " + path);
    }
    unlink(path.c_str());  // a stale socket of a process that died
    const sockaddr_un address = socket_address(path);
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd_ < 0) throw Error(std::string("socket: ") + std::strerror(errno));
    // Only the owner may drive the datapath: create the socket file 0600.
    // umask is process-wide, but nothing else creates files at this point.
    const mode_t old_mask = umask(0177);
    const int rc = bind(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof(address));
    const int saved = errno;
    umask(old_mask);
    if (rc != 0 || listen(fd_, 16) != 0) {
        const int err = rc != 0 ? saved : errno;
        close(fd_);
        throw ConfigError("command line: ctl-socket: cannot listen on " + path + ": " + std::strerror(err));
    }
}

CtlServer::~CtlServer() {
    close(fd_);
    unlink(path_.c_str());
}

void CtlServer::poll(int timeout_ms, const Handler& handler) {
    pollfd waiting{fd_, POLLIN, 0};
    if (::poll(&waiting, 1, timeout_ms) <= 0) return;
    for (;;) {
        const int client = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (client < 0) return;  // EAGAIN: no more pending
        serve_one(client, handler);
        close(client);
    }
}

void CtlServer::serve_one(int fd, const Handler& handler) {
    // A client that stalls must not stall the datapath's management.
    const timeval timeout{2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
    std::string request;
    CtlReply reply;
    if (!read_all(fd, request, kMaxRequest)) {
        reply = {false, "request unreadable or too large\n"};
    } else {
        const size_t newline = request.find('\n');
        const std::string command = request.substr(0, newline);
        const std::string body = newline == std::string::npos ? std::string() : request.substr(newline + 1);
        log(LogLevel::debug, "ctl: ", command);
        reply = handler(command, body);
    }
    write_all(fd, (reply.ok ? "OK\n" : "ERROR\n") + reply.text);
}

CtlReply ctl_request(const std::string& path, const std::string& command, const std::string& body) {
    const int fd = connect_to(path);
    if (fd < 0) {
        throw std::runtime_error("cannot reach flowpath at " + path + ": " + std::strerror(errno) +
                                 " (is flowpath running with --ctl-socket " + path + "?)");
    }
    const bool sent = write_all(fd, command + "\n" + body);
    shutdown(fd, SHUT_WR);
    std::string answer;
    const bool received = sent && read_all(fd, answer, kMaxRequest);
    close(fd);
    if (!received) throw std::runtime_error("connection to flowpath at " + path + " failed: " + std::strerror(errno));
    const size_t newline = answer.find('\n');
    const std::string status = answer.substr(0, newline);
    if (status != "OK" && status != "ERROR") throw std::runtime_error("unexpected answer from flowpath at " + path);
    return {status == "OK", newline == std::string::npos ? std::string() : answer.substr(newline + 1)};
}

}  // namespace flowpath
