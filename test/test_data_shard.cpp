// Tests of token shard files: write/read round trips in both widths, llm.c's layout, atomic
// writing, and a clear error for each kind of damage (magic, version, size, ids).
#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>

#include "data/shard.h"
#include "test/helpers.h"
#include "util/error.h"
#include "util/files.h"

using namespace diloco;
using Catch::Matchers::Contains;
using diloco::test::TempDir;

namespace {

std::vector<int32_t> read_all(const ShardFile& f) {
    std::vector<int32_t> ids(f.size());
    f.copy(0, ids.size(), ids.data());
    return ids;
}

void write_shard(const std::string& path, const std::vector<int32_t>& ids, int vocab) {
    ShardWriter w(path, vocab);
    w.append(ids.data(), ids.size());
    w.finish();
}

// Overwrites the int32 at byte offset `at` of a file.
void poke(const std::string& path, size_t at, int32_t value) {
    std::string bytes = read_file(path);
    std::memcpy(bytes.data() + at, &value, 4);
    write_file_atomic(path, bytes);
}

}  // namespace

TEST_CASE("shards round-trip: uint16 for GPT-2, uint32 above 65,535 tokens", "[data]") {
    TempDir dir;
    std::vector<int32_t> small = {50256, 15496, 995, 0, 50256};
    write_shard(dir.file("a.bin"), small, 50257);
    ShardFile a(dir.file("a.bin"));
    CHECK(read_all(a) == small);
    CHECK(a.vocab() == 50257);
    CHECK(a.token_bytes() == 2);
    // llm.c's layout: 256 int32 of header (magic, version 1, count), then uint16 tokens.
    std::string bytes = read_file(dir.file("a.bin"));
    REQUIRE(bytes.size() == 1024 + 2 * small.size());
    int32_t header[4];
    std::memcpy(header, bytes.data(), sizeof header);
    CHECK(header[0] == 20240520);
    CHECK(header[1] == 1);
    CHECK(header[2] == 5);
    CHECK(header[3] == 50257);
    CHECK(static_cast<uint8_t>(bytes[1024 + 2]) == (15496 & 0xFF));

    std::vector<int32_t> big = {0, 65535, 65536, 99999, 7};
    write_shard(dir.file("b.bin"), big, 100000);
    ShardFile b(dir.file("b.bin"), 100000);
    CHECK(read_all(b) == big);
    CHECK(b.token_bytes() == 4);
    CHECK(read_file(dir.file("b.bin")).size() == 1024 + 4 * big.size());
}

TEST_CASE("an llm.c shard without a vocabulary in its header reads as GPT-2", "[data]") {
    TempDir dir;
    write_shard(dir.file("a.bin"), {1, 2, 3}, 50257);
    poke(dir.file("a.bin"), 12, 0);
    CHECK(ShardFile(dir.file("a.bin")).vocab() == 50257);
}

TEST_CASE("a shard is written atomically", "[data]") {
    TempDir dir;
    {
        ShardWriter w(dir.file("a.bin"), 300);
        std::vector<int32_t> ids(1000, 7);
        w.append(ids.data(), ids.size());
        CHECK(std::filesystem::exists(dir.file("a.bin.tmp")));
        CHECK(!std::filesystem::exists(dir.file("a.bin")));
    }  // destroyed unfinished: nothing is left behind
    CHECK(!std::filesystem::exists(dir.file("a.bin.tmp")));
    CHECK(!std::filesystem::exists(dir.file("a.bin")));
    write_shard(dir.file("a.bin"), {1, 2}, 300);
    CHECK(!std::filesystem::exists(dir.file("a.bin.tmp")));
    ShardWriter w(dir.file("c.bin"), 300);
    int32_t bad = 300;
    CHECK_THROWS_WITH(w.append(&bad, 1), Contains("c.bin") && Contains("300"));
}

TEST_CASE("damaged shards are clear errors naming file and place", "[data]") {
    TempDir dir;
    const std::string path = dir.file("s.bin");
    write_shard(path, {1, 2, 3, 4}, 1000);
    CHECK_NOTHROW(ShardFile(path, 1000));

    SECTION("wrong magic") {
        poke(path, 0, 12345);
        CHECK_THROWS_WITH(ShardFile(path), Contains(path) && Contains("bad magic 12345"));
    }
    SECTION("wrong version") {
        poke(path, 4, 7);
        CHECK_THROWS_WITH(ShardFile(path),
                          Contains(path) && Contains("unsupported shard version 7"));
    }
    SECTION("truncated payload") {
        std::filesystem::resize_file(path, 1024 + 5);
        CHECK_THROWS_WITH(ShardFile(path), Contains(path) && Contains("1029 bytes") &&
                                               Contains("need 1032") && Contains("truncated"));
    }
    SECTION("shorter than the header") {
        std::filesystem::resize_file(path, 100);
        CHECK_THROWS_WITH(ShardFile(path),
                          Contains(path) && Contains("shorter than the 1024-byte"));
    }
    SECTION("token id >= vocabulary") {
        write_shard(path, {1, 2, 999, 4}, 1000);
        CHECK_THROWS_WITH(ShardFile(path, 999), Contains("in the header, expected 999"));
        poke(path, 12, 999);  // the header says 999: id 999 at token 2 is out of range
        CHECK_THROWS_WITH(ShardFile(path),
                          Contains(path) && Contains("token 2 (byte offset 1028)") &&
                              Contains("is 999") && Contains("vocabulary size 999"));
    }
    SECTION("a missing file") {
        CHECK_THROWS_WITH(ShardFile(dir.file("none.bin")),
                          Contains("none.bin") && Contains("cannot open"));
    }
}
