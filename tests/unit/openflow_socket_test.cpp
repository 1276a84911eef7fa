// The OpenFlow agent's thread over real TCP connections on 127.0.0.1: the
// listener, a controller that goes away and comes back, the idle probe, a
// peer that never reads, packet-ins from the datapath.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "flowpath/error.hpp"
#include "flowpath/log.hpp"
#include "flowpath/openflow.hpp"

using namespace flowpath;
using namespace flowpath::of;
using namespace std::chrono_literals;

namespace {

// The agent logs connections at info; the tests' own output is enough.
const bool kQuiet = (set_log_level(LogLevel::warn), true);

const PortNames kPorts = {"p1", "p2", "p3", "p4"};

template <typename M>
Bytes encoded(const M& message, uint32_t xid) {
    Bytes out;
    encode(message, xid, out);
    return out;
}

// One end of an OpenFlow connection, blocking with timeouts.
class Peer {
public:
    explicit Peer(int fd) : fd_(fd) {}
    static Peer connect_to(uint16_t port) {
        const int fd = socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0) << std::strerror(errno);
        return Peer(fd);
    }
    Peer(Peer&& o) noexcept : fd_(o.fd_), in_(std::move(o.in_)) { o.fd_ = -1; }
    ~Peer() {
        if (fd_ >= 0) ::close(fd_);
    }

    void send(const Bytes& bytes) {
        ASSERT_EQ(::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL), static_cast<ssize_t>(bytes.size()));
    }
    template <typename M>
    void send(const M& message, uint32_t xid) {
        send(encoded(message, xid));
    }
    // The next message, or empty on timeout or end of stream.
    Bytes receive(std::chrono::milliseconds timeout = 5000ms) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            if (in_.size() >= kHeaderLen) {
                const Header h = *peek_header(in_);
                if (in_.size() >= h.length) {
                    Bytes m(in_.begin(), in_.begin() + h.length);
                    in_.erase(in_.begin(), in_.begin() + h.length);
                    return m;
                }
            }
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            pollfd p{fd_, POLLIN, 0};
            if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) return {};
            uint8_t chunk[65536];
            const ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
            if (n <= 0) {
                closed_ = true;
                return {};
            }
            in_.insert(in_.end(), chunk, chunk + n);
        }
    }
    // The next message of type M, skipping others (echo requests answered).
    template <typename M>
    std::optional<M> expect(std::chrono::milliseconds timeout = 5000ms) {
        for (;;) {
            const Bytes m = receive(timeout);
            if (m.empty()) return std::nullopt;
            if (m[1] == static_cast<uint8_t>(MsgType::kEchoRequest)) {
                send(EchoReply{}, peek_header(m)->xid);
                continue;
            }
            if (m[1] != static_cast<uint8_t>(M::kType)) continue;
            Decoded<M> d = decode<M>(m);
            EXPECT_TRUE(d.ok());
            return d.ok() ? std::optional<M>(d.value()) : std::nullopt;
        }
    }
    void hello() {
        ASSERT_TRUE(expect<Hello>());
        send(Hello{}, 1);
    }
    bool closed() const { return closed_; }

private:
    int fd_;
    Bytes in_;
    bool closed_ = false;
};

// A listening socket on an ephemeral port of 127.0.0.1.
struct Listener {
    Listener() {
        fd = socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
        listen(fd, 4);
        socklen_t len = sizeof(a);
        getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
        port = ntohs(a.sin_port);
    }
    ~Listener() { ::close(fd); }
    std::optional<Peer> accept(std::chrono::milliseconds timeout) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return std::nullopt;
        return Peer(::accept(fd, nullptr, nullptr));
    }
    int fd;
    uint16_t port = 0;
};

FlowMod add_output(uint16_t priority, uint32_t port) {
    FlowMod m;
    m.priority = priority;
    m.instructions.actions = {Action::output(port)};
    return m;
}

Bytes frame() { return Bytes(60, 0); }

}  // namespace

TEST(OpenFlowAgent, ListenerServesTransactionsAndPacketIns) {
    MemoryBackend backend(kPorts);
    OpenFlowOptions options;
    options.listen = "ptcp:0";
    OpenFlowAgent agent(backend, options);
    ASSERT_NE(agent.listen_port(), 0);
    Peer peer = Peer::connect_to(agent.listen_port());
    peer.hello();
    FlowMod to_controller;
    to_controller.priority = 0;
    to_controller.instructions.actions = {Action::controller(kControllerAll)};
    peer.send(to_controller, 2);
    peer.send(BarrierRequest{}, 3);
    ASSERT_TRUE(peer.expect<BarrierReply>());
    EXPECT_EQ(backend.rule_count(), 1u);
    // A service connection gets packet-ins once it sets a miss_send_len.
    SetConfig config;
    config.miss_send_len = 0xffff;
    peer.send(config, 4);
    peer.send(BarrierRequest{}, 5);
    ASSERT_TRUE(peer.expect<BarrierReply>());
    backend.receive(3, frame());
    const std::optional<PacketIn> in = peer.expect<PacketIn>();
    ASSERT_TRUE(in);
    EXPECT_EQ(in->reason, kReasonNoMatch);  // the table-miss rule
    EXPECT_EQ(in->match.match.value.in_port, 3u);
    EXPECT_EQ(in->data.size(), 60u);
    EXPECT_GE(agent.stats().connections, 1u);
    for (int i = 0; i < 100 && agent.stats().connected != 1; ++i) std::this_thread::sleep_for(10ms);
    EXPECT_EQ(agent.stats().connected, 1u);
    EXPECT_EQ(agent.stats().controllers, 0u);
}

TEST(OpenFlowAgent, ControllerComesBackAfterItWentAway) {
    Listener controller;
    MemoryBackend backend(kPorts);
    OpenFlowOptions options;
    options.controllers = {"tcp:127.0.0.1:" + std::to_string(controller.port)};
    options.min_backoff = 50ms;
    options.max_backoff = 200ms;
    OpenFlowAgent agent(backend, options);
    {
        std::optional<Peer> first = controller.accept(5000ms);
        ASSERT_TRUE(first);
        first->hello();
        first->send(add_output(5, 2), 2);
        first->send(BarrierRequest{}, 3);
        ASSERT_TRUE(first->expect<BarrierReply>());
        // An active connection gets packet-ins (miss_send_len 128) and port status.
        backend.set_link(2, false);
        const std::optional<PortStatus> status = first->expect<PortStatus>();
        ASSERT_TRUE(status);
        EXPECT_EQ(status->port.state, kPortStateLinkDown);
    }  // the controller hangs up
    std::optional<Peer> second = controller.accept(5000ms);
    ASSERT_TRUE(second);
    second->hello();
    second->send(BarrierRequest{}, 4);
    ASSERT_TRUE(second->expect<BarrierReply>());
    // The rules stayed while the controller was away (fail-mode secure).
    EXPECT_EQ(backend.rule_count(), 1u);
    EXPECT_GE(agent.stats().connections, 2u);
    // The live counts are published at the end of each round of the loop.
    for (int i = 0; i < 100 && agent.stats().controllers != 1; ++i) std::this_thread::sleep_for(10ms);
    EXPECT_EQ(agent.stats().controllers, 1u);
}

TEST(OpenFlowAgent, NoControllerListeningMeansRetriesNotFailure) {
    uint16_t port;
    {
        Listener gone;
        port = gone.port;
    }
    MemoryBackend backend(kPorts);
    OpenFlowOptions options;
    options.controllers = {"tcp:127.0.0.1:" + std::to_string(port)};
    options.min_backoff = 20ms;
    OpenFlowAgent agent(backend, options);
    std::this_thread::sleep_for(200ms);
    EXPECT_EQ(agent.stats().connected, 0u);
}

TEST(OpenFlowAgent, SilentPeerIsProbedThenClosed) {
    MemoryBackend backend(kPorts);
    OpenFlowOptions options;
    options.listen = "ptcp:0";
    options.probe_interval = 100ms;
    OpenFlowAgent agent(backend, options);
    Peer peer = Peer::connect_to(agent.listen_port());
    peer.hello();
    const Bytes probe = peer.receive(2000ms);
    ASSERT_FALSE(probe.empty());
    EXPECT_EQ(probe[1], static_cast<uint8_t>(MsgType::kEchoRequest));
    // No answer: the agent hangs up.
    EXPECT_TRUE(peer.receive(2000ms).empty());
    EXPECT_TRUE(peer.closed());
}

TEST(OpenFlowAgent, APeerThatDoesNotReadStallsNoOne) {
    MemoryBackend backend(kPorts);
    OpenFlowOptions options;
    options.listen = "ptcp:0";
    options.max_queued_bytes = 64 * 1024;
    OpenFlowAgent agent(backend, options);
    Peer writer = Peer::connect_to(agent.listen_port());
    writer.hello();
    std::vector<FlowModRequest> adds(5000);
    for (size_t i = 0; i < adds.size(); ++i) {
        adds[i].rule.priority = static_cast<uint16_t>(i + 1);
        adds[i].rule.actions = {Action::output(1)};
    }
    std::vector<std::optional<OfError>> results(adds.size());
    backend.apply_flow_mods(adds, results);
    // Ask for every flow (hundreds of KiB each time) and never read.
    MultipartRequest dump;
    dump.type = static_cast<uint16_t>(MultipartType::kFlow);
    encode_body(FlowStatsRequest{}, dump.body);
    for (int i = 0; i < 200; ++i) writer.send(dump, static_cast<uint32_t>(i));
    Peer other = Peer::connect_to(agent.listen_port());
    other.hello();
    const auto start = std::chrono::steady_clock::now();
    other.send(BarrierRequest{}, 9);
    ASSERT_TRUE(other.expect<BarrierReply>(2000ms));
    EXPECT_LT(std::chrono::steady_clock::now() - start, 1000ms);
}

TEST(OpenFlowAgent, RequestsHeldAtTheOutputBoundAreAnsweredOnceThePeerReads) {
    MemoryBackend backend(kPorts);
    OpenFlowOptions options;
    options.listen = "ptcp:0";
    options.max_queued_bytes = 16 * 1024;
    OpenFlowAgent agent(backend, options);
    Peer peer = Peer::connect_to(agent.listen_port());
    peer.hello();
    std::vector<FlowModRequest> adds(300);
    for (size_t i = 0; i < adds.size(); ++i) {
        adds[i].rule.priority = static_cast<uint16_t>(i + 1);
        adds[i].rule.actions = {Action::output(1)};
    }
    std::vector<std::optional<OfError>> results(adds.size());
    backend.apply_flow_mods(adds, results);
    MultipartRequest dump;
    dump.type = static_cast<uint16_t>(MultipartType::kFlow);
    encode_body(FlowStatsRequest{}, dump.body);
    Bytes all;
    for (uint32_t i = 0; i < 50; ++i) encode(dump, i, all);
    encode(BarrierRequest{}, 99, all);
    peer.send(all);
    // Every request is answered, in order, the barrier last, though the
    // replies are far more than the bound and nothing more is sent.
    uint32_t replies = 0;
    for (;;) {
        const Bytes m = peer.receive(5000ms);
        ASSERT_FALSE(m.empty()) << "stalled after " << replies << " replies";
        if (m[1] == static_cast<uint8_t>(MsgType::kBarrierReply)) break;
        ASSERT_EQ(m[1], static_cast<uint8_t>(MsgType::kMultipartReply));
        const MultipartReply r = decode<MultipartReply>(m).value();
        if (!(r.flags & kMultipartMore)) EXPECT_EQ(peek_header(m)->xid, replies++);
    }
    EXPECT_EQ(replies, 50u);
}

TEST(OpenFlowAgent, TargetsAndListenErrors) {
    EXPECT_EQ(parse_openflow_target("ptcp:6653", true, "openflow-listen").address, "127.0.0.1");
    EXPECT_EQ(parse_openflow_target("ptcp:6653:0.0.0.0", true, "openflow-listen").address, "0.0.0.0");
    EXPECT_EQ(parse_openflow_target("ptcp:6653:[::1]", true, "openflow-listen").address, "::1");
    const OpenFlowTarget t = parse_openflow_target("tcp:[fe80::1]:6633", false, "controller");
    EXPECT_EQ(t.address, "fe80::1");
    EXPECT_EQ(t.port, 6633);
    for (const char* bad : {"tcp:1.2.3.4", "tcp:1.2.3.4:0", "tcp:host:6653", "tcp:1.2.3.4:70000", "ptcp:6653"}) {
        EXPECT_THROW(parse_openflow_target(bad, false, "controller"), ConfigError) << bad;
    }
    for (const char* bad : {"ptcp:", "ptcp:x", "ptcp:1:2:3", "tcp:6653"}) {
        EXPECT_THROW(parse_openflow_target(bad, true, "openflow-listen"), ConfigError) << bad;
    }
    try {
        parse_openflow_target("tcp:nowhere", false, "controller");
    } catch (const ConfigError& e) {
        EXPECT_STREQ(e.what(), "controller: expected tcp:IP:PORT, found 'tcp:nowhere'");
    }
    // A port somebody else holds.
    Listener busy;
    MemoryBackend backend(kPorts);
    OpenFlowOptions options;
    options.listen = "ptcp:" + std::to_string(busy.port);
    EXPECT_THROW(OpenFlowAgent(backend, options), ConfigError);
}
