// Prefix tries over address fields, used by the classifier to rule out
// subtables while un-wildcarding only a few leading address bits.
#include <algorithm>
#include <bit>

#include "classifier_impl.hpp"

namespace flowpath::classifier_detail {

const std::array<TrieField, kTrieFields> kTrieFieldList = {{
    {offsetof(FlowKey, nw_src), 32},
    {offsetof(FlowKey, nw_dst), 32},
    {offsetof(FlowKey, ipv6_src), 128},
    {offsetof(FlowKey, ipv6_dst), 128},
}};

namespace {

unsigned bit_at(const Bits128& bits, unsigned index) {
    return index < 64 ? static_cast<unsigned>(bits.hi >> (63 - index)) & 1
                      : static_cast<unsigned>(bits.lo >> (127 - index)) & 1;
}

/// Length of the longest common prefix.
unsigned common_prefix(const Bits128& a, const Bits128& b) {
    if (uint64_t x = a.hi ^ b.hi) return static_cast<unsigned>(std::countl_zero(x));
    if (uint64_t x = a.lo ^ b.lo) return 64 + static_cast<unsigned>(std::countl_zero(x));
    return 128;
}

bool operator==(const Bits128& a, const Bits128& b) { return a.hi == b.hi && a.lo == b.lo; }

uint64_t load_be64(const uint8_t* bytes) {
    uint64_t v = 0;
    for (unsigned i = 0; i < 8; ++i) v = (v << 8) | bytes[i];
    return v;
}

}  // namespace

Bits128 leading_bits(Bits128 bits, unsigned length) {
    if (length == 0) return {};
    if (length < 64) return {bits.hi & (~uint64_t{0} << (64 - length)), 0};
    if (length == 64) return {bits.hi, 0};
    if (length < 128) return {bits.hi, bits.lo & (~uint64_t{0} << (128 - length))};
    return bits;
}

void or_field_bits(FlowMask& mask, const TrieField& field, const Bits128& bits) {
    auto* bytes = reinterpret_cast<uint8_t*>(&mask) + field.offset;
    for (unsigned i = 0; i < field.width / 8; ++i) {
        const uint64_t word = i < 8 ? bits.hi : bits.lo;
        bytes[i] |= static_cast<uint8_t>(word >> (56 - 8 * (i % 8)));
    }
}

Bits128 field_bits(const FlowKey& key, const TrieField& field) {
    const auto* bytes = reinterpret_cast<const uint8_t*>(&key) + field.offset;
    if (field.width == 32) {
        uint64_t v = 0;
        for (unsigned i = 0; i < 4; ++i) v = (v << 8) | bytes[i];
        return {v << 32, 0};
    }
    return {load_be64(bytes), load_be64(bytes + 8)};
}

unsigned field_prefix_len(const FlowMask& mask, const TrieField& field) {
    const Bits128 bits = field_bits(mask, field);
    const unsigned ones = bits.hi == ~uint64_t{0}
                              ? 64 + static_cast<unsigned>(std::countl_one(bits.lo))
                              : static_cast<unsigned>(std::countl_one(bits.hi));
    // Anything set after the leading ones makes it not a CIDR prefix.
    return leading_bits(bits, ones) == bits ? ones : 0;
}

void set_field_prefix(FlowMask& mask, const TrieField& field, unsigned bits) {
    auto* bytes = reinterpret_cast<uint8_t*>(&mask) + field.offset;
    unsigned i = 0;
    for (; i < bits / 8; ++i) bytes[i] = 0xFF;
    if (bits % 8) bytes[i] |= static_cast<uint8_t>(0xFF << (8 - bits % 8));
}

PrefixTrie::PrefixTrie() { nodes_.emplace_back(); }

uint32_t PrefixTrie::new_node(Bits128 value, unsigned length, uint32_t count) {
    Node node;
    node.value = value;
    node.length = length;
    node.count = count;
    if (!free_.empty()) {
        const uint32_t index = free_.back();
        free_.pop_back();
        nodes_[index] = node;
        return index;
    }
    nodes_.push_back(node);
    return static_cast<uint32_t>(nodes_.size() - 1);
}

void PrefixTrie::free_node(uint32_t index) {
    nodes_[index] = Node{};
    free_.push_back(index);
}

void PrefixTrie::insert(Bits128 prefix, unsigned length) {
    prefix = leading_bits(prefix, length);
    uint32_t node = 0;
    for (;;) {
        if (nodes_[node].length == length) {
            ++nodes_[node].count;
            return;
        }
        const unsigned branch = bit_at(prefix, nodes_[node].length);
        const uint32_t child = nodes_[node].children[branch];
        if (child == kNone) {
            const uint32_t leaf = new_node(prefix, length, 1);
            nodes_[node].children[branch] = leaf;
            return;
        }
        const unsigned child_length = nodes_[child].length;
        const unsigned common =
            std::min({common_prefix(prefix, nodes_[child].value), length, child_length});
        if (common == child_length) {
            node = child;
            continue;
        }
        // The new prefix leaves the child's compressed edge at `common`:
        // split the edge there with a middle node.
        const unsigned child_branch = bit_at(nodes_[child].value, common);
        const uint32_t middle = new_node(leading_bits(prefix, common), common, common == length ? 1 : 0);
        nodes_[middle].children[child_branch] = child;
        nodes_[node].children[branch] = middle;
        if (common != length) {
            const uint32_t leaf = new_node(prefix, length, 1);
            nodes_[middle].children[bit_at(prefix, common)] = leaf;
        }
        return;
    }
}

void PrefixTrie::remove(Bits128 prefix, unsigned length) {
    prefix = leading_bits(prefix, length);
    uint32_t path[130];
    unsigned depth = 0;
    uint32_t node = 0;
    for (;;) {
        path[depth++] = node;
        if (nodes_[node].length == length) break;
        const uint32_t child = nodes_[node].children[bit_at(prefix, nodes_[node].length)];
        if (child == kNone) return;
        const Node& next = nodes_[child];
        if (next.length > length || common_prefix(prefix, next.value) < next.length) return;
        node = child;
    }
    if (!(nodes_[node].value == prefix) || nodes_[node].count == 0) return;
    --nodes_[node].count;

    // Drop nodes that no longer end a prefix nor branch, bottom up.
    for (unsigned i = depth - 1; i > 0; --i) {
        const uint32_t index = path[i];
        const Node& n = nodes_[index];
        if (n.count > 0) return;
        Node& parent = nodes_[path[i - 1]];
        uint32_t& slot = parent.children[bit_at(n.value, parent.length)];
        const bool has0 = n.children[0] != kNone, has1 = n.children[1] != kNone;
        if (has0 && has1) return;
        if (has0 || has1) {
            slot = has0 ? n.children[0] : n.children[1];
            free_node(index);
            return;
        }
        slot = kNone;
        free_node(index);
    }
}

TrieLookup PrefixTrie::lookup(Bits128 key, unsigned width) const {
    TrieLookup result;
    uint32_t node = 0;
    for (;;) {
        const Node& n = nodes_[node];
        if (n.count) result.match_lengths.set(n.length);
        if (n.length >= width) {
            result.decisive_bits = width;
            return result;
        }
        const uint32_t child = n.children[bit_at(key, n.length)];
        if (child == kNone) {
            // No stored prefix goes past bit n.length the key's way. Bit
            // n.length itself matters only when some prefix goes on the
            // other way: at a leaf, the first n.length bits decide the walk
            // (Open vSwitch's trie_lookup_value likewise; one bit more here
            // doubled the megaflows of every address inside a leaf prefix).
            const bool other_way = n.children[0] != kNone || n.children[1] != kNone;
            result.decisive_bits = n.length + (other_way ? 1 : 0);
            return result;
        }
        const Node& next = nodes_[child];
        const unsigned common = common_prefix(key, next.value);
        if (common < next.length) {
            // The key leaves the compressed edge at bit `common`.
            result.decisive_bits = common + 1;
            return result;
        }
        node = child;
    }
}

}  // namespace flowpath::classifier_detail
