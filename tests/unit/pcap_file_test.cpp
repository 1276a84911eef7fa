// Capture files as the start-up checks and the pool sizing read them: both
// formats and byte orders, link types, and lengths that cannot be right.
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "flowpath/pcap_file.hpp"

using namespace flowpath;

namespace {

constexpr uint32_t kRoom = 2048;

// Appends `value` in little- or big-endian order.
void put32(std::string& out, uint32_t value, bool big = false) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>(value >> (big ? 24 - 8 * i : 8 * i)));
}
void put16(std::string& out, uint16_t value, bool big = false) {
    out.push_back(static_cast<char>(big ? value >> 8 : value));
    out.push_back(static_cast<char>(big ? value : value >> 8));
}

std::string classic(const std::vector<uint32_t>& lengths, uint32_t link_type = 1, bool big = false,
                    uint32_t magic = 0xa1b2c3d4) {
    std::string out;
    put32(out, magic, big);
    put16(out, 2, big);
    put16(out, 4, big);
    put32(out, 0, big);
    put32(out, 0, big);
    put32(out, 65535, big);
    put32(out, link_type, big);
    for (uint32_t length : lengths) {
        put32(out, 1, big);
        put32(out, 0, big);
        put32(out, length, big);
        put32(out, length, big);
        out.append(length, '\x55');
    }
    return out;
}

// A pcapng block: type, length, body padded to 4 bytes, length.
void block(std::string& out, uint32_t type, const std::string& body, bool big = false) {
    std::string padded = body;
    padded.append((4 - body.size() % 4) % 4, '\0');
    put32(out, type, big);
    put32(out, static_cast<uint32_t>(padded.size() + 12), big);
    out += padded;
    put32(out, static_cast<uint32_t>(padded.size() + 12), big);
}

std::string section(bool big = false) {
    std::string body;
    put32(body, 0x1a2b3c4d, big);
    put16(body, 1, big);
    put16(body, 0, big);
    put32(body, 0xffffffff, big);
    put32(body, 0xffffffff, big);
    std::string out;
    block(out, 0x0a0d0d0a, body, big);
    return out;
}

void interface(std::string& out, uint16_t link_type, bool big = false) {
    std::string body;
    put16(body, link_type, big);
    put16(body, 0, big);
    put32(body, 0, big);
    block(out, 1, body, big);
}

void enhanced(std::string& out, uint32_t captured, bool big = false, uint32_t claimed = 0) {
    std::string body;
    put32(body, 0, big);
    put32(body, 0, big);
    put32(body, 0, big);
    put32(body, claimed ? claimed : captured, big);
    put32(body, captured, big);
    body.append(captured, '\x66');
    block(out, 6, body, big);
}

PcapScan scan(const std::string& bytes, bool count = true) {
    std::istringstream in(bytes);
    return scan_pcap(in, count, kRoom);
}

TEST(PcapFile, ClassicInEveryByteOrderAndResolution) {
    for (bool big : {false, true}) {
        for (uint32_t magic : {0xa1b2c3d4u, 0xa1b23c4du}) {
            const PcapScan s = scan(classic({60, 1514, 0, 5000}, 1, big, magic));
            ASSERT_TRUE(s.ok()) << s.error;
            EXPECT_FALSE(s.pcapng);
            EXPECT_EQ(s.link_type, kLinkTypeEthernet);
            EXPECT_EQ(s.packets, 4u);
            EXPECT_EQ(s.mbufs, 1u + 1u + 1u + 3u);  // 5000 bytes take three 2048-byte segments
        }
    }
}

TEST(PcapFile, HeaderOnlyReadsNoPacket) {
    const PcapScan s = scan(classic({60, 60}), false);
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(s.packets, 0u);
    EXPECT_TRUE(s.has_link_type);
}

TEST(PcapFile, PcapngPacketsAreCounted) {
    for (bool big : {false, true}) {
        std::string file = section(big);
        interface(file, 1, big);
        for (int i = 0; i < 20'000; ++i) enhanced(file, 60 + i % 3, big);
        block(file, 3, std::string("\x00\x00\x00\x40", 4) + std::string(64, 'x'), big);  // simple packet
        block(file, 5, std::string(16, '\0'), big);  // statistics: no packet
        const PcapScan s = scan(file);
        ASSERT_TRUE(s.ok()) << s.error;
        EXPECT_TRUE(s.pcapng);
        EXPECT_EQ(s.link_type, kLinkTypeEthernet);
        EXPECT_EQ(s.packets, 20'001u);
        EXPECT_EQ(s.mbufs, 20'001u);
    }
}

TEST(PcapFile, PcapngSectionsMayChangeByteOrder) {
    std::string file = section(false);
    interface(file, 1, false);
    enhanced(file, 100, false);
    file += section(true);
    interface(file, 1, true);
    enhanced(file, 3000, true);
    const PcapScan s = scan(file);
    ASSERT_TRUE(s.ok()) << s.error;
    EXPECT_EQ(s.packets, 2u);
    EXPECT_EQ(s.mbufs, 3u);
}

TEST(PcapFile, LinkTypes) {
    EXPECT_EQ(scan(classic({60}, 101)).link_type, 101u);
    EXPECT_EQ(link_type_name(101), "raw IP");
    EXPECT_EQ(link_type_name(4242), "type 4242");
    std::string file = section();
    interface(file, 1);
    interface(file, 113);
    enhanced(file, 60);
    EXPECT_EQ(scan(file).link_type, 113u) << "a non-Ethernet interface anywhere is reported";
    std::string only_section = section();
    EXPECT_FALSE(scan(only_section, false).has_link_type);
}

TEST(PcapFile, CorruptLengthsAreErrors) {
    // A captured length no libpcap file has: the old sizing asked for a
    // million mbufs.
    PcapScan s = scan(classic({60}) + std::string("\1\0\0\0\0\0\0\0\xff\xff\xff\x7f\xff\xff\xff\x7f", 16));
    EXPECT_FALSE(s.ok());
    EXPECT_NE(s.error.find("2147483647"), std::string::npos) << s.error;
    EXPECT_NE(s.error.find("packet 2"), std::string::npos) << s.error;

    std::string file = section();
    interface(file, 1);
    enhanced(file, 60, false, 4000);  // claims more than its block holds
    s = scan(file);
    EXPECT_FALSE(s.ok());
    EXPECT_NE(s.error.find("corrupt"), std::string::npos) << s.error;

    file = section();
    put32(file, 6);
    put32(file, 13);  // not a multiple of 4
    s = scan(file);
    EXPECT_FALSE(s.ok());
    EXPECT_NE(s.error.find("impossible length"), std::string::npos) << s.error;
}

TEST(PcapFile, CutShortEndsTheCount) {
    std::string file = classic({60, 60, 60});
    file.resize(file.size() - 10);
    const PcapScan s = scan(file);
    EXPECT_TRUE(s.ok()) << s.error;
    EXPECT_EQ(s.packets, 3u);  // the third header was read; its frame is short
}

TEST(PcapFile, NotACaptureFile) {
    EXPECT_NE(scan("").error.find("too short"), std::string::npos);
    EXPECT_NE(scan("hello, world, this is text\n").error.find("not a pcap or pcapng file"), std::string::npos);
    EXPECT_NE(scan(classic({}).substr(0, 20)).error.find("too short"), std::string::npos);
}

}  // namespace
