// The agent's thread: non-blocking sockets in one poll loop. Active
// connections to the controllers (reconnected with backoff), passive ones
// from the listener, the events the datapath queues, the idle probes.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <variant>

#include "flowpath/error.hpp"
#include "flowpath/log.hpp"
#include "session.hpp"

namespace flowpath {

namespace {

using of::Clock;
using Event = std::variant<PacketInEvent, FlowRemovedEvent, PortStatusEvent>;

constexpr size_t kReadChunk = 64 * 1024;
constexpr size_t kReadBudget = 4 * kReadChunk;  // per connection and loop round, for fairness
constexpr int kMaxPollMs = 1000;
constexpr std::chrono::seconds kClosingGrace{1};  // to send a closing session's last messages
// After a request came in, the loop polls without sleeping this long,
// yielding the CPU: a peer that sends its next request on each reply
// (ovs-ofctl add-flows: a flow_mod and a barrier at a time) finds the agent
// awake, and a round trip costs no sleep and wake-up. That pays only while
// the yields find nothing else to run: on a busy CPU a yield hands the CPU
// to another task for its slice, and the next request waits for it instead
// of waking the agent at once. So a yield that took longer than
// kContendedYield stops the spinning for kSpinCooldown (docs/openflow.md:
// 100,000 flow_mods at load 9 took 18 s spinning always, 7.4 s never, and
// Open vSwitch 20 s; at load 1.5 spinning was 7% faster).
constexpr std::chrono::microseconds kStayAwake{200};
constexpr std::chrono::microseconds kContendedYield{500};
constexpr std::chrono::milliseconds kSpinCooldown{200};

/// A file descriptor that closes itself.
class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd() { reset(); }
    Fd(Fd&& other) noexcept : fd_(other.release()) {}
    Fd& operator=(Fd&& other) noexcept {
        if (this != &other) {
            reset();
            fd_ = other.release();
        }
        return *this;
    }
    int get() const { return fd_; }
    int release() {
        const int fd = fd_;
        fd_ = -1;
        return fd;
    }
    void reset() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

private:
    int fd_ = -1;
};

// A socket address for a numeric IPv4 or IPv6 address.
socklen_t socket_address(const OpenFlowTarget& target, sockaddr_storage& storage) {
    std::memset(&storage, 0, sizeof(storage));
    auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
    if (inet_pton(AF_INET, target.address.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(target.port);
        return sizeof(sockaddr_in);
    }
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
    inet_pton(AF_INET6, target.address.c_str(), &v6->sin6_addr);
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(target.port);
    return sizeof(sockaddr_in6);
}

std::string peer_name(const sockaddr_storage& storage) {
    char text[INET6_ADDRSTRLEN] = "?";
    uint16_t port = 0;
    if (storage.ss_family == AF_INET) {
        const auto* v4 = reinterpret_cast<const sockaddr_in*>(&storage);
        inet_ntop(AF_INET, &v4->sin_addr, text, sizeof(text));
        port = ntohs(v4->sin_port);
        return std::string(text) + ":" + std::to_string(port);
    }
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&storage);
    inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof(text));
    port = ntohs(v6->sin6_port);
    // Appended piecewise: GCC 12 warns falsely (-Wrestrict) on "[" + std::string.
    std::string name = "[";
    name += text;
    name += "]:";
    name += std::to_string(port);
    return name;
}

void set_nodelay(int fd) {
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

}  // namespace

struct OpenFlowAgent::Impl {
    struct Connection {
        Fd fd;
        bool connecting = false;       // active connect() still in progress
        int controller = -1;           // index into controllers, -1 for accepted ones
        std::string peer;
        std::unique_ptr<of::Session> session;
        Clock::time_point closing_since{};  // when the session asked to close
    };
    struct Controller {
        std::string text;
        OpenFlowTarget target;
        Clock::time_point next_attempt;
        std::chrono::milliseconds backoff;
        bool active = false;           // a connection exists (connecting or open)
    };

    Impl(OpenFlowBackend& b, OpenFlowOptions o)
        : backend(b), options(std::move(o)), host{backend, options, counters, std::nullopt, {}} {
        host.demote_other_masters = [this](of::Session& master) {
            for (auto& c : connections) {
                if (c->session && c->session.get() != &master && c->session->role() == of::kRoleMaster) {
                    c->session->demote();
                }
            }
        };
        for (const std::string& text : options.controllers) {
            controllers.push_back({text, parse_openflow_target(text, false, "controller"), Clock::now(),
                                   options.min_backoff, false});
        }
        if (!options.listen.empty()) open_listener(parse_openflow_target(options.listen, true, "openflow-listen"));
        wake = Fd(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
        if (wake.get() < 0) throw Error(std::string("eventfd: ") + std::strerror(errno));
    }

    void open_listener(const OpenFlowTarget& target) {
        sockaddr_storage address;
        const socklen_t length = socket_address(target, address);
        Fd fd(socket(address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        const int one = 1;
        setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (fd.get() < 0 || bind(fd.get(), reinterpret_cast<const sockaddr*>(&address), length) != 0 ||
            listen(fd.get(), 64) != 0) {
            throw ConfigError("openflow-listen: cannot listen on " + target.address + ":" +
                              std::to_string(target.port) + ": " + std::strerror(errno));
        }
        sockaddr_storage bound;
        socklen_t bound_length = sizeof(bound);
        getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &bound_length);
        listen_port = ntohs(bound.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                                                       : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
        listener = std::move(fd);
        log(LogLevel::info, "openflow: listening on ", target.address, ":", listen_port);
    }

    void wake_up() {
        const uint64_t one = 1;
        [[maybe_unused]] const ssize_t n = ::write(wake.get(), &one, sizeof(one));
    }

    void queue(Event event) {
        {
            std::lock_guard lock(events_mutex);
            if (events.size() >= options.max_queued_events) {
                ++counters.events_dropped;
                return;
            }
            events.push_back(std::move(event));
            events_waiting.store(true, std::memory_order_release);
        }
        wake_up();
    }

    // ---- The loop ------------------------------------------------------------

    void run() {
        std::vector<pollfd> fds;
        std::vector<Connection*> polled;
        Clock::time_point last_request{};
        Clock::time_point no_spin_until{};
        while (!stop.load(std::memory_order_acquire)) {
            Clock::time_point now = Clock::now();
            start_due_connections(now);
            Clock::time_point deadline = now + std::chrono::milliseconds(kMaxPollMs);
            fds.clear();
            polled.clear();
            fds.push_back({wake.get(), POLLIN, 0});
            if (listener.get() >= 0) fds.push_back({listener.get(), POLLIN, 0});
            const size_t first_connection = fds.size();
            for (auto& c : connections) {
                short events = 0;
                if (c->connecting) {
                    events = POLLOUT;
                } else {
                    if (!c->session->backpressured() && !c->session->closing()) events |= POLLIN;
                    if (!c->session->pending().empty()) events |= POLLOUT;
                    deadline = std::min(deadline, c->session->closing() ? c->closing_since + kClosingGrace
                                                                        : c->session->next_deadline());
                }
                fds.push_back({c->fd.get(), events, 0});
                polled.push_back(c.get());
            }
            for (const Controller& ctl : controllers) {
                if (!ctl.active) deadline = std::min(deadline, ctl.next_attempt);
            }
            const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count();
            const bool awake = now - last_request < kStayAwake && now >= no_spin_until;
            const int ready =
                ::poll(fds.data(), fds.size(), awake ? 0 : static_cast<int>(std::clamp<long long>(wait + 1, 0, kMaxPollMs)));
            if (ready < 0 && errno != EINTR) {
                log(LogLevel::error, "openflow: poll: ", std::strerror(errno));
                return;
            }
            if (ready == 0 && awake) {
                sched_yield();
                if (const auto after = Clock::now(); after - now > kContendedYield) no_spin_until = after + kSpinCooldown;
            }
            now = Clock::now();
            for (size_t i = first_connection; i < fds.size(); ++i) {
                if (fds[i].revents & POLLIN) last_request = now;
            }
            if (fds[0].revents) {
                uint64_t count;
                [[maybe_unused]] const ssize_t n = ::read(wake.get(), &count, sizeof(count));
            }
            deliver_events();
            if (listener.get() >= 0 && fds[1].revents) accept_all(now);
            for (size_t i = 0; i < polled.size(); ++i) serve(*polled[i], fds[first_connection + i].revents, now);
            close_finished(now);
            unsigned open = 0, active = 0;
            for (const auto& c : connections) {
                const bool up = c->session && c->session->established();
                open += up;
                active += up && c->controller >= 0;
            }
            connected.store(open);
            controllers_connected.store(active);
        }
    }

    void start_due_connections(Clock::time_point now) {
        for (size_t i = 0; i < controllers.size(); ++i) {
            Controller& ctl = controllers[i];
            if (ctl.active || now < ctl.next_attempt) continue;
            sockaddr_storage address;
            const socklen_t length = socket_address(ctl.target, address);
            Fd fd(socket(address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
            if (fd.get() < 0) {
                retry_later(ctl, now, false);
                continue;
            }
            set_nodelay(fd.get());
            const int rc = connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), length);
            if (rc != 0 && errno != EINPROGRESS) {
                log(LogLevel::debug, "openflow: connecting to ", ctl.text, ": ", std::strerror(errno));
                retry_later(ctl, now, false);
                continue;
            }
            auto c = std::make_unique<Connection>();
            c->fd = std::move(fd);
            c->controller = static_cast<int>(i);
            c->peer = ctl.text;
            c->connecting = rc != 0;
            if (!c->connecting) c->session = std::make_unique<of::Session>(host, false, c->peer, now);
            ctl.active = true;
            connections.push_back(std::move(c));
        }
    }

    void retry_later(Controller& ctl, Clock::time_point now, bool was_established) {
        ctl.active = false;
        if (was_established) ctl.backoff = options.min_backoff;
        ctl.next_attempt = now + ctl.backoff;
        ctl.backoff = std::min(ctl.backoff * 2, options.max_backoff);
    }

    void accept_all(Clock::time_point now) {
        for (;;) {
            sockaddr_storage address;
            socklen_t length = sizeof(address);
            Fd fd(accept4(listener.get(), reinterpret_cast<sockaddr*>(&address), &length,
                          SOCK_NONBLOCK | SOCK_CLOEXEC));
            if (fd.get() < 0) return;  // EAGAIN, or a connection that went away
            set_nodelay(fd.get());
            auto c = std::make_unique<Connection>();
            c->fd = std::move(fd);
            c->peer = peer_name(address);
            c->session = std::make_unique<of::Session>(host, true, c->peer, now);
            connections.push_back(std::move(c));
        }
    }

    void serve(Connection& c, short revents, Clock::time_point now) {
        if (c.connecting) {
            if (!revents) return;
            int error = 0;
            socklen_t length = sizeof(error);
            getsockopt(c.fd.get(), SOL_SOCKET, SO_ERROR, &error, &length);
            if (error != 0) {
                log(LogLevel::debug, "openflow: connecting to ", c.peer, ": ", std::strerror(error));
                c.fd.reset();
                return;
            }
            c.connecting = false;
            c.session = std::make_unique<of::Session>(host, false, c.peer, now);
        }
        of::Session& s = *c.session;
        if (revents & (POLLIN | POLLHUP | POLLERR)) {
            size_t budget = kReadBudget;
            while (budget > 0 && !s.backpressured() && !s.closing()) {
                const ssize_t n = ::recv(c.fd.get(), buffer, sizeof(buffer), 0);
                if (n > 0) {
                    s.receive(of::ByteView(buffer, static_cast<size_t>(n)), now);
                    budget -= std::min(budget, static_cast<size_t>(n));
                    // A short read emptied the socket: no second recv() just
                    // to hear EAGAIN (ovs-ofctl waits for a barrier reply
                    // after every flow_mod, so this is once per flow_mod).
                    if (static_cast<size_t>(n) < sizeof(buffer)) break;
                    continue;
                }
                if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) break;
                // End of stream or an error: nothing more can be said.
                log(LogLevel::info, "openflow ", c.peer, ": ", n == 0 ? "connection closed" : std::strerror(errno));
                c.fd.reset();
                return;
            }
        }
        s.tick(now);
        flush(c);
        // Requests left unprocessed at the output bound go on once the
        // peer has read enough (no new bytes need to arrive for that).
        while (c.fd.get() >= 0 && s.has_input() && !s.backpressured() && !s.closing()) {
            const size_t before = s.input_size();
            s.receive({}, now);
            flush(c);
            if (s.input_size() == before) break;  // only part of a message is left
        }
    }

    void flush(Connection& c) {
        of::Session& s = *c.session;
        while (!s.pending().empty()) {
            const of::ByteView bytes = s.pending();
            const ssize_t n = ::send(c.fd.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0) {
                s.sent(static_cast<size_t>(n));
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
            log(LogLevel::info, "openflow ", c.peer, ": ", std::strerror(errno));
            c.fd.reset();
            return;
        }
    }

    void close_finished(Clock::time_point now) {
        for (auto it = connections.begin(); it != connections.end();) {
            Connection& c = **it;
            const bool closing = c.session && c.session->closing();
            if (closing && c.closing_since == Clock::time_point{}) c.closing_since = now;
            // A closing session's last words get a moment to leave, not more.
            const bool done = c.fd.get() < 0 ||
                              (closing && (c.session->pending().empty() || now >= c.closing_since + kClosingGrace));
            if (!done) {
                ++it;
                continue;
            }
            if (c.controller >= 0) {
                retry_later(controllers[static_cast<size_t>(c.controller)], now,
                            c.session && c.session->established());
            }
            it = connections.erase(it);
        }
    }

    // Called every loop round (many per flow_mod while spinning): neither
    // the lock nor an allocation unless an event waits.
    void deliver_events() {
        if (!events_waiting.load(std::memory_order_acquire)) return;
        std::deque<Event>& batch = delivering;
        {
            std::lock_guard lock(events_mutex);
            batch.swap(events);
            events_waiting.store(false, std::memory_order_relaxed);
        }
        for (const Event& event : batch) {
            for (auto& c : connections) {
                if (!c->session || c->fd.get() < 0) continue;
                if (const auto* p = std::get_if<PacketInEvent>(&event)) c->session->send_packet_in(*p);
                if (const auto* r = std::get_if<FlowRemovedEvent>(&event)) c->session->send_flow_removed(*r);
                if (const auto* s = std::get_if<PortStatusEvent>(&event)) c->session->send_port_status(*s);
            }
        }
        batch.clear();
    }

    OpenFlowBackend& backend;
    OpenFlowOptions options;
    of::SessionCounters counters;
    of::SessionHost host;
    Fd listener;
    uint16_t listen_port = 0;
    Fd wake;
    std::atomic<bool> stop{false};
    std::atomic<unsigned> connected{0};
    std::atomic<unsigned> controllers_connected{0};
    std::vector<std::unique_ptr<Connection>> connections;
    std::vector<Controller> controllers;
    std::mutex events_mutex;
    std::deque<Event> events;
    std::atomic<bool> events_waiting{false};  // `events` is not empty
    std::deque<Event> delivering;             // the agent thread's, swapped with `events`
    uint8_t buffer[kReadChunk];
    std::thread thread;
};

OpenFlowAgent::OpenFlowAgent(OpenFlowBackend& backend, OpenFlowOptions options)
    : impl_(std::make_unique<Impl>(backend, std::move(options))) {
    backend.set_events(this);
    impl_->thread = std::thread([this] {
        pthread_setname_np(pthread_self(), "fp-openflow");  // for top, perf and /proc/PID/task
        try {
            impl_->run();
        } catch (const std::exception& e) {
            // Not expected (the codec answers errors as values); the
            // datapath keeps forwarding by its rules without the agent.
            log(LogLevel::error, "openflow: agent stopped: ", e.what());
        }
    });
}

OpenFlowAgent::~OpenFlowAgent() {
    impl_->backend.set_events(nullptr);
    impl_->stop.store(true, std::memory_order_release);
    impl_->wake_up();
    if (impl_->thread.joinable()) impl_->thread.join();
}

uint16_t OpenFlowAgent::listen_port() const { return impl_->listen_port; }

OpenFlowStats OpenFlowAgent::stats() const {
    const of::SessionCounters& c = impl_->counters;
    OpenFlowStats s;
    s.connections = c.connections.load();
    s.messages_in = c.messages_in.load();
    s.messages_out = c.messages_out.load();
    s.flow_mods = c.flow_mods.load();
    s.errors_sent = c.errors_sent.load();
    s.events_dropped = c.events_dropped.load();
    s.connected = impl_->connected.load();
    s.controllers = impl_->controllers_connected.load();
    return s;
}

void OpenFlowAgent::packet_in(PacketInEvent event) { impl_->queue(std::move(event)); }
void OpenFlowAgent::flow_removed(FlowRemovedEvent event) { impl_->queue(std::move(event)); }
void OpenFlowAgent::port_status(PortStatusEvent event) { impl_->queue(std::move(event)); }

}  // namespace flowpath
