// Tests of the document readers: text files and directories, JSON lines plain and gzipped,
// malformed lines counted with file and line (fatal when strict), corrupt gzip, URL hosts.
#include <catch2/catch.hpp>
#include <filesystem>

#include "data/documents.h"
#include "data/island_split.h"
#include "test/data_helpers.h"
#include "test/helpers.h"
#include "util/error.h"
#include "util/files.h"
#include "util/rng.h"

using namespace diloco;
using Catch::Matchers::Contains;
using diloco::test::TempDir;

namespace {

std::vector<Document> read_docs(const std::vector<std::string>& inputs, bool strict,
                                ReadStats* stats = nullptr, const std::string& field = "text",
                                unsigned chunk = GzReader::kDefaultChunk) {
    DocumentReader reader(expand_inputs(inputs), field, strict, chunk);
    std::vector<Document> docs;
    for (Document d; reader.next(d);) docs.push_back(d);
    if (stats) *stats = reader.stats();
    return docs;
}

std::vector<std::string> texts(const std::vector<Document>& docs) {
    std::vector<std::string> t;
    for (const Document& d : docs) t.push_back(d.text);
    return t;
}

}  // namespace

TEST_CASE("text files are documents, directories are read recursively in order", "[data]") {
    TempDir dir;
    std::filesystem::create_directories(dir.file("d/sub"));
    std::filesystem::create_directories(dir.file("d/.hidden"));
    test::write_text(dir.file("d/b.txt"), "bee");
    test::write_text(dir.file("d/a.txt"), "ay\n\xff invalid UTF-8 is kept as bytes");
    test::write_text(dir.file("d/sub/c.txt"), "sea");
    test::write_text(dir.file("d/.hidden/x.txt"), "hidden");
    test::write_text(dir.file("d/.dot.txt"), "hidden");
    test::write_gz(dir.file("d/z.txt.gz"), "zipped text");
    std::vector<Document> docs = read_docs({dir.file("d")}, false);
    CHECK(texts(docs) == std::vector<std::string>{"ay\n\xff invalid UTF-8 is kept as bytes", "bee",
                                                  "sea", "zipped text"});
    CHECK(docs[1].file == dir.file("d/b.txt"));
    CHECK(docs[1].line == 0);
    CHECK_THROWS_WITH(expand_inputs({dir.file("nothing")}),
                      Contains("nothing") && Contains("not found"));
}

TEST_CASE("JSON lines, gzipped or not, give the chosen field and the url", "[data]") {
    TempDir dir;
    std::string lines = test::jsonl({"first doc", "second\ndoc", ""}, {"https://a.com/x", "", "u"});
    test::write_text(dir.file("a.jsonl"), lines + "\n  \n");  // blank lines are not documents
    test::write_gz(dir.file("b.json.gz"), lines);
    for (const char* name : {"a.jsonl", "b.json.gz"}) {
        ReadStats stats;
        std::vector<Document> docs = read_docs({dir.file(name)}, true, &stats);
        CHECK(texts(docs) == std::vector<std::string>{"first doc", "second\ndoc", ""});
        CHECK(docs[0].url == "https://a.com/x");
        CHECK(docs[1].url.empty());
        CHECK(docs[2].line == 3);
        CHECK(stats.documents == 3);
        CHECK(stats.malformed == 0);
    }
    test::write_text(dir.file("c.jsonl"), R"({"body": "other field"})"
                                          "\n");
    CHECK(texts(read_docs({dir.file("c.jsonl")}, true, nullptr, "body")) ==
          std::vector<std::string>{"other field"});
}

TEST_CASE("reads of a few bytes give the same documents, lines and text files", "[data]") {
    TempDir dir;
    std::vector<std::string> long_docs = {std::string(5000, 'x'), "", "short", "two\nlines"};
    std::string lines = test::jsonl(long_docs);
    test::write_text(dir.file("a.jsonl"), lines + "\n\n{\"text\": 5}\n" + lines);
    test::write_gz(dir.file("b.jsonl.gz"), lines + "no newline at the end");
    test::write_text(dir.file("c.txt"), std::string(3000, 'y'));
    for (const char* name : {"a.jsonl", "b.jsonl.gz", "c.txt"}) {
        ReadStats whole, bytewise;
        std::vector<Document> big = read_docs({dir.file(name)}, false, &whole);
        for (unsigned chunk : {1u, 7u, 4096u}) {
            INFO(name << " read " << chunk << " bytes at a time");
            std::vector<Document> small = read_docs({dir.file(name)}, false, &bytewise, "text", chunk);
            REQUIRE(texts(small) == texts(big));
            for (size_t i = 0; i < big.size(); i++) CHECK(small[i].line == big[i].line);
            CHECK(bytewise.malformed == whole.malformed);
            CHECK(bytewise.messages == whole.messages);
        }
    }
    CHECK(read_docs({dir.file("a.jsonl")}, false).size() == 8);
}

TEST_CASE("malformed JSON lines are counted, reported by line and skipped, fatal if strict",
          "[data]") {
    TempDir dir;
    const std::string path = dir.file("m.jsonl");
    test::write_text(path,
                     "{\"text\": \"good one\"}\n"
                     "{\"text\": \"unterminated\n"
                     "{\"url\": \"no text\"}\n"
                     "{\"text\": 42}\n"
                     "{\"text\": \"bad \xff utf-8\"}\n"
                     "[\"not an object\"]\n"
                     "{\"text\": \"good two\"}");  // no final newline
    ReadStats stats;
    std::vector<Document> docs = read_docs({path}, false, &stats);
    CHECK(texts(docs) == std::vector<std::string>{"good one", "good two"});
    CHECK(docs[1].line == 7);
    CHECK(stats.malformed == 5);
    REQUIRE(stats.messages.size() == 5);
    CHECK_THAT(stats.messages[0], Contains(path + ":2: malformed JSON line skipped"));
    CHECK_THAT(stats.messages[1], Contains(path + ":3:") && Contains("no string field \"text\""));
    CHECK_THAT(stats.messages[2], Contains(path + ":4:"));
    CHECK_THAT(stats.messages[3], Contains(path + ":5:") && Contains("UTF-8"));
    CHECK_THAT(stats.messages[4], Contains(path + ":6:"));
    CHECK_THROWS_WITH(read_docs({path}, true), Contains(path + ":2:") && Contains("--strict"));
}

TEST_CASE("gzip corrupt mid-stream or truncated is an error naming the file", "[data]") {
    TempDir dir;
    std::vector<std::string> docs;
    Rng rng(5, 0);
    for (int i = 0; i < 300; i++) docs.push_back(test::synthetic_text(600 + rng.below(600), i));
    test::write_gz(dir.file("good.jsonl.gz"), test::jsonl(docs));
    std::string gz = read_file(dir.file("good.jsonl.gz"));
    REQUIRE(gz.size() > 20000);
    REQUIRE(read_docs({dir.file("good.jsonl.gz")}, true).size() == 300);

    std::string corrupt = gz;
    for (size_t i = gz.size() / 2; i < gz.size() / 2 + 64; i++) corrupt[i] ^= 0x5A;
    write_file_atomic(dir.file("corrupt.jsonl.gz"), corrupt);
    CHECK_THROWS_WITH(read_docs({dir.file("corrupt.jsonl.gz")}, false),
                      Contains(dir.file("corrupt.jsonl.gz")) && Contains("corrupt"));

    write_file_atomic(dir.file("cut.jsonl.gz"), gz.substr(0, gz.size() / 2));
    CHECK_THROWS_WITH(read_docs({dir.file("cut.jsonl.gz")}, false),
                      Contains(dir.file("cut.jsonl.gz")) && Contains("unexpected end of file"));
}

TEST_CASE("URL hosts: lower case, no scheme, user, port or www.", "[data]") {
    CHECK(url_host("https://www.Example.com:8080/a/b?c#d") == "example.com");
    CHECK(url_host("http://user@blog.example.com/x") == "blog.example.com");
    CHECK(url_host("example.org") == "example.org");
    CHECK(url_host("") == "");
    CHECK(site_island("example.com", 4) == site_island("example.com", 4));
    CHECK_THROWS_WITH(parse_split("random"), Contains("iid, domain, cluster"));
}
