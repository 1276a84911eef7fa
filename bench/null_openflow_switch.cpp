// The least an OpenFlow 1.3 switch can do for `ovs-ofctl add-flows`: send
// HELLO, answer ECHO, FEATURES, GET_CONFIG, multipart requests (one table's
// features, the ports, else empty) and BARRIER, and drop every other
// message (the peer's HELLO, flow_mods) without decoding it.
//
// bench/openflow_flow_mods.py times add-flows against it beside flowpath and
// Open vSwitch: what it takes is the floor any switch pays on this machine
// (ovs-ofctl's own work, and a loopback TCP round trip with two context
// switches per flow_mod, since ovs-ofctl waits for a barrier reply after
// each), so each switch's own share is its time above this one.
//
// It waits for bytes by spinning (a non-blocking recv, then sched_yield),
// as flowpath's agent does after a request: of the ways tried (a blocking
// recv 1.04-1.06 s, poll then recv 1.08 s, spinning 0.98-1.02 s for
// 100,000 flow_mods beside a busy core 1) the fastest, so the floor is
// the lowest one found.
//
// Usage: null_openflow_switch PORT [NAME...]
// Listens on 127.0.0.1:PORT (0: any free port) and prints "listening PORT";
// serves one connection at a time until killed. The NAMEs are its ports,
// numbered from 1 (ovs-ofctl asks for them to read `output:NAME`).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

constexpr uint8_t kVersion = 0x04;  // OpenFlow 1.3
constexpr size_t kHeader = 8;

// ofp_type values used here.
enum : uint8_t {
    kHello = 0,
    kEchoRequest = 2,
    kEchoReply = 3,
    kFeaturesRequest = 5,
    kFeaturesReply = 6,
    kGetConfigRequest = 7,
    kGetConfigReply = 8,
    kMultipartRequest = 18,
    kMultipartReply = 19,
    kBarrierRequest = 20,
    kBarrierReply = 21,
};

/// A file descriptor that closes itself.
class Fd {
public:
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd() {
        if (fd_ >= 0) ::close(fd_);
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const { return fd_; }

private:
    int fd_;
};

[[noreturn]] void fail(const char* what) {
    throw std::runtime_error(std::string(__FILE__) + ": " + what + ": " + std::strerror(errno));
}

void put16(std::vector<uint8_t>& out, size_t at, uint16_t v) {
    out[at] = static_cast<uint8_t>(v >> 8);
    out[at + 1] = static_cast<uint8_t>(v);
}

// A reply of `length` bytes (zeroed body) with the request's xid.
std::vector<uint8_t> reply(uint8_t type, const uint8_t* request, size_t length) {
    std::vector<uint8_t> out(length, 0);
    out[0] = kVersion;
    out[1] = type;
    put16(out, 2, static_cast<uint16_t>(length));
    std::memcpy(&out[4], request + 4, 4);
    return out;
}

// The answer to one message, or nothing.
std::vector<uint8_t> answer(const uint8_t* m, size_t length, const std::vector<std::string>& ports) {
    switch (m[1]) {
    case kEchoRequest: {
        std::vector<uint8_t> out(m, m + length);
        out[1] = kEchoReply;
        return out;
    }
    case kFeaturesRequest: {
        std::vector<uint8_t> out = reply(kFeaturesReply, m, 32);
        out[15] = 1;    // datapath_id 1
        out[20] = 254;  // n_tables
        return out;
    }
    case kGetConfigRequest: {
        std::vector<uint8_t> out = reply(kGetConfigReply, m, 12);
        put16(out, 10, 0xffff);  // miss_send_len: all of it
        return out;
    }
    case kMultipartRequest: {
        // The same multipart type and no entries, but for TABLE_FEATURES
        // (ovs-ofctl asks for table names before its flow_mods, and wants
        // a table with its eight required properties): table 0, each
        // property empty (a 4-byte header padded to 8); and for PORT_DESC
        // (it reads `output:NAME` by them): the NAMEs.
        constexpr uint16_t kTableFeatures = 12;
        constexpr size_t kRequiredProperties = 8;  // types 0, 2, ..., 14
        constexpr size_t kTableEntry = 64 + 8 * kRequiredProperties;
        constexpr uint16_t kPortDesc = 13;
        constexpr size_t kPortEntry = 64;  // ofp_port
        const uint16_t type = length >= 10 ? static_cast<uint16_t>((m[8] << 8) | m[9]) : 0xffff;
        const bool features = type == kTableFeatures;
        const size_t body = features ? kTableEntry : type == kPortDesc ? kPortEntry * ports.size() : 0;
        std::vector<uint8_t> out = reply(kMultipartReply, m, 16 + body);
        put16(out, 8, type);
        if (type == kPortDesc) {
            for (size_t i = 0; i < ports.size(); ++i) {
                const size_t at = 16 + kPortEntry * i;
                out[at + 3] = static_cast<uint8_t>(i + 1);  // port_no
                out[at + 13] = static_cast<uint8_t>(i + 1);  // hw_addr 00:00:00:00:00:0N
                std::memcpy(&out[at + 16], ports[i].data(), std::min<size_t>(ports[i].size(), 15));
            }
        }
        if (features) {
            put16(out, 16, kTableEntry);
            std::memcpy(&out[24], "table0", 6);  // name[32], 8 bytes into the entry
            out[16 + 63] = 0xff;                 // max_entries (the fixed part's last field)
            for (size_t i = 0; i < kRequiredProperties; ++i) {
                put16(out, 16 + 64 + 8 * i, static_cast<uint16_t>(2 * i));
                put16(out, 16 + 64 + 8 * i + 2, 4);
            }
        }
        return out;
    }
    case kBarrierRequest:
        return reply(kBarrierReply, m, kHeader);
    default:  // HELLO (ours went first), flow_mods, anything else
        return {};
    }
}

void send_all(int fd, const std::vector<uint8_t>& bytes) {
    size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;  // the peer left; the read loop notices
        done += static_cast<size_t>(n);
    }
}

void serve(int fd, const std::vector<std::string>& ports) {
    std::vector<uint8_t> in;
    std::vector<uint8_t> out;
    uint8_t chunk[64 * 1024];
    // ovs-ofctl waits for our HELLO before it sends anything but its own.
    const uint8_t hello[kHeader] = {kVersion, kHello, 0, kHeader, 0, 0, 0, 0};
    send_all(fd, std::vector<uint8_t>(hello, hello + kHeader));
    for (;;) {
        const ssize_t n = ::recv(fd, chunk, sizeof(chunk), MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            sched_yield();
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        in.insert(in.end(), chunk, chunk + n);
        size_t at = 0;
        out.clear();
        while (in.size() - at >= kHeader) {
            const size_t length = (size_t{in[at + 2]} << 8) | in[at + 3];
            if (length < kHeader) return;  // not OpenFlow: hang up
            if (in.size() - at < length) break;
            const std::vector<uint8_t> a = answer(&in[at], length, ports);
            out.insert(out.end(), a.begin(), a.end());
            at += length;
        }
        in.erase(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(at));
        if (!out.empty()) send_all(fd, out);
    }
}

}  // namespace

int main(int argc, char** argv) try {
    const int port = argc > 1 ? std::atoi(argv[1]) : 0;
    const std::vector<std::string> ports(argv + std::min(argc, 2), argv + argc);
    Fd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (listener.get() < 0) fail("socket");
    const int one = 1;
    setsockopt(listener.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listener.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) fail("bind");
    if (listen(listener.get(), 8) != 0) fail("listen");
    socklen_t length = sizeof(address);
    getsockname(listener.get(), reinterpret_cast<sockaddr*>(&address), &length);
    std::printf("listening %u\n", ntohs(address.sin_port));
    std::fflush(stdout);
    for (;;) {
        Fd connection(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (connection.get() < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            fail("accept");
        }
        setsockopt(connection.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        serve(connection.get(), ports);
    }
} catch (const std::exception& e) {
    std::fprintf(stderr, "null_openflow_switch: %s\n", e.what());
    return 1;
}
