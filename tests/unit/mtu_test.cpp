// The MTU rule: which frames exceed it, and how large a buffer holds one.
#include <gtest/gtest.h>

#include <vector>

#include "flowpath/mtu.hpp"

namespace flowpath {
namespace {

// A frame of `len` bytes whose ethertype/TPID words after the MACs are `types`.
std::vector<uint8_t> frame(uint32_t len, std::vector<uint16_t> types) {
    std::vector<uint8_t> bytes(len, 0);
    uint32_t at = 12;
    for (uint16_t type : types) {
        bytes[at] = static_cast<uint8_t>(type >> 8);
        bytes[at + 1] = static_cast<uint8_t>(type);
        at += 4;
    }
    return bytes;
}

bool exceeds(const std::vector<uint8_t>& bytes, uint32_t mtu) {
    return exceeds_mtu(bytes.data(), static_cast<uint32_t>(bytes.size()), static_cast<uint32_t>(bytes.size()), mtu);
}

TEST(Mtu, UntaggedFrameMayCarryTheMtuAfterItsHeader) {
    EXPECT_FALSE(exceeds(frame(60, {0x0800}), 1500));
    EXPECT_FALSE(exceeds(frame(1514, {0x0800}), 1500));
    EXPECT_TRUE(exceeds(frame(1515, {0x0800}), 1500));
    EXPECT_TRUE(exceeds(frame(1518, {0x0800}), 1500));
    EXPECT_FALSE(exceeds(frame(9014, {0x0800}), 9000));
    EXPECT_TRUE(exceeds(frame(9015, {0x0800}), 9000));
}

TEST(Mtu, VlanTagsAreNotPayload) {
    EXPECT_FALSE(exceeds(frame(1518, {0x8100, 0x0800}), 1500));
    EXPECT_TRUE(exceeds(frame(1519, {0x8100, 0x0800}), 1500));
    EXPECT_FALSE(exceeds(frame(1522, {0x88a8, 0x8100, 0x0800}), 1500));
    EXPECT_TRUE(exceeds(frame(1523, {0x88a8, 0x8100, 0x0800}), 1500));
    // A third tag is payload.
    EXPECT_TRUE(exceeds(frame(1526, {0x8100, 0x8100, 0x8100, 0x0800}), 1500));
    // Beyond two tags' worth the bytes are not even read.
    EXPECT_TRUE(exceeds_mtu(nullptr, 0, 1523, 1500));
    EXPECT_FALSE(exceeds_mtu(nullptr, 0, 1514, 1500));
}

TEST(Mtu, TagsReadOnlyFromTheContiguousBytes) {
    // Only the MACs are available: the tag cannot be seen, so the frame
    // counts as untagged.
    const std::vector<uint8_t> tagged = frame(1518, {0x8100, 0x0800});
    EXPECT_TRUE(exceeds_mtu(tagged.data(), 12, 1518, 1500));
    EXPECT_TRUE(exceeds_mtu(tagged.data(), 13, 1518, 1500));
    EXPECT_FALSE(exceeds_mtu(tagged.data(), 14, 1518, 1500));
}

TEST(Mtu, FrameRoomHoldsTheLongestFrameInKilobytes) {
    EXPECT_EQ(max_frame_length(1500), 1522u);
    EXPECT_EQ(frame_room(68), 2048u);
    EXPECT_EQ(frame_room(1500), 2048u);
    EXPECT_EQ(frame_room(9000), 9216u);
    EXPECT_EQ(frame_room(16000), 16384u);
    for (uint32_t mtu = 68; mtu <= 16000; ++mtu) {
        ASSERT_GE(frame_room(mtu), max_frame_length(mtu) + kMtuCrc) << mtu;
        ASSERT_EQ(frame_room(mtu) % kMtuRoomAlign, 0u) << mtu;
    }
}

}  // namespace
}  // namespace flowpath
