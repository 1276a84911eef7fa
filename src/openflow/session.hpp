// One OpenFlow connection's protocol: version negotiation, the request
// handlers, the flow_mod batches, roles, asynchronous messages, the idle
// probe. No sockets here: the agent feeds received bytes in and sends what
// the session queues, so the protocol is testable without a network.
// Internal to src/openflow.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "flowpath/openflow.hpp"

namespace flowpath::of {

using Clock = std::chrono::steady_clock;

/// Counters shared by the sessions of one agent: written by its thread,
/// read by stats() from any thread.
struct SessionCounters {
    std::atomic<uint64_t> connections{0};
    std::atomic<uint64_t> messages_in{0};
    std::atomic<uint64_t> messages_out{0};
    std::atomic<uint64_t> flow_mods{0};
    std::atomic<uint64_t> errors_sent{0};
    std::atomic<uint64_t> events_dropped{0};
};

class Session;

/// What the sessions of one agent share.
struct SessionHost {
    OpenFlowBackend& backend;
    const OpenFlowOptions& options;
    SessionCounters& counters;
    /// The largest generation_id a master/slave ROLE_REQUEST gave.
    std::optional<uint64_t> generation_id;
    /// Makes every other master session a slave (one master at a time).
    std::function<void(Session& new_master)> demote_other_masters;
};

class Session {
public:
    /// `passive`: accepted on the listener (a service connection, as Open
    /// vSwitch calls it: no asynchronous messages until it sets a
    /// miss_send_len). Queues the HELLO.
    Session(SessionHost& host, bool passive, std::string peer, Clock::time_point now);

    /// Processes every whole message in `bytes` (and what was left over).
    void receive(ByteView bytes, Clock::time_point now);
    /// Sends a probe when idle, gives up when the probe goes unanswered.
    void tick(Clock::time_point now);
    /// The next instant tick() has something to do.
    Clock::time_point next_deadline() const;

    /// Bytes waiting to be sent; the agent sends a prefix and calls sent().
    ByteView pending() const { return ByteView(out_).subspan(out_sent_); }
    void sent(size_t bytes);
    /// True once the session wants the connection closed (after pending()).
    bool closing() const { return closing_; }
    /// True while the peer should not be read (too much output waiting).
    bool backpressured() const { return pending().size() > host_.options.max_queued_bytes; }
    /// True while whole messages wait in the input buffer (processing stopped
    /// at the output bound): call receive() with nothing new once it drains.
    bool has_input() const { return in_.size() >= kHeaderLen; }
    size_t input_size() const { return in_.size(); }
    /// True after a successful HELLO exchange.
    bool established() const { return established_; }
    const std::string& peer() const { return peer_; }

    uint32_t role() const { return role_; }
    /// Made a slave because another session became master.
    void demote() { role_ = kRoleSlave; }

    // Asynchronous messages, filtered by role, async config and miss_send_len.
    void send_packet_in(const PacketInEvent& event);
    void send_flow_removed(const FlowRemovedEvent& event);
    void send_port_status(const PortStatusEvent& event);

private:
    struct PendingMod {
        uint32_t xid;
        ByteView request;              // in in_, which stays put until receive() returns
        std::optional<OfError> error;  // refused before the backend
        bool to_backend = false;       // has a slot in mods_
    };

    void handle(const Header& header, ByteView message);
    void handle_hello(const Header& header, ByteView message);
    void handle_flow_mod(const Header& header, ByteView message);
    void handle_packet_out(const Header& header, ByteView message);
    void handle_multipart(const Header& header, ByteView message);
    void handle_role(const Header& header, ByteView message);
    void handle_config(const Header& header, ByteView message);
    void handle_other(const Header& header, ByteView message);
    void flow_stats(const Header& header, ByteView message, const MultipartRequest& request, bool aggregate);
    void count_sent(size_t from);
    void flush_flow_mods();

    template <typename M>
    void send(const M& message, uint32_t xid);
    void send_error(OfError error, uint32_t xid, ByteView request);
    bool async_room();
    uint32_t port_count();

    SessionHost& host_;
    bool passive_;
    std::string peer_;
    Bytes in_;
    Bytes out_;
    size_t out_sent_ = 0;
    bool established_ = false;
    bool closing_ = false;
    uint32_t next_xid_ = 1;
    Clock::time_point last_rx_;
    bool probe_sent_ = false;

    // Switch configuration and role of this connection.
    uint16_t config_flags_ = 0;
    uint16_t miss_send_len_;
    uint32_t role_ = kRoleEqual;
    SetAsync async_;

    // Flow_mods received back to back, applied as one backend call.
    std::vector<PendingMod> pending_;
    std::vector<FlowModRequest> mods_;
    std::vector<std::optional<OfError>> results_;  // the backend's answers to mods_, reused
    std::optional<uint32_t> port_count_;  // cached during one receive()
};

}  // namespace flowpath::of
