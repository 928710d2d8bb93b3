// Documents to tokenize: plain text files (one document each, taken as bytes), directories of
// them, and JSON lines, gzipped or not, with the text in a chosen field (C4's format).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/gz_reader.h"

namespace diloco {

// The files named by inputs: a file as it is, a directory as every regular file under it
// (recursively, in path order, hidden names skipped). An Error for a missing input.
std::vector<std::string> expand_inputs(const std::vector<std::string>& inputs);
// Names ending .json, .jsonl or .ndjson, with or without .gz, hold JSON lines.
bool is_json_lines(const std::string& path);

// One line of a JSON-lines file, or a whole text file, as read: reading is sequential and
// cheap, parsing (parse_record) can then run on many threads.
struct Record {
    std::string raw;
    std::string file;
    uint64_t line = 0;  // 1-based line in a JSON-lines file; 0 for a text file
    bool json = false;
};

struct Document {
    std::string text;
    std::string url;  // the record's "url" when it is a string; empty otherwise
    std::string file;
    uint64_t line = 0;
};

// The records of the files in order. Blank lines of JSON-lines files are skipped.
class RecordReader {
public:
    explicit RecordReader(std::vector<std::string> files,
                          unsigned read_chunk = GzReader::kDefaultChunk);
    ~RecordReader();
    bool next(Record& r);  // false when every file is read
    // Bytes of the input files consumed so far (compressed bytes for gzip), and their total.
    uint64_t consumed() const;
    uint64_t total() const { return total_; }

private:
    std::vector<std::string> files_;
    unsigned read_chunk_;
    size_t next_file_ = 0;
    uint64_t done_ = 0, total_ = 0;   // sizes of the files finished and of all files
    std::unique_ptr<GzReader> json_;  // the JSON-lines file being read, if any
};

// A JSON line is malformed when it is not valid JSON (invalid UTF-8 included), not an object,
// or its text field is missing or not a string. Returns false and says why for those; else
// fills doc, moving the text of a text file out of r.raw. Thread-safe.
bool parse_record(Record& r, const std::string& field, Document& doc, std::string& why);

struct ReadStats {
    static constexpr size_t kKeptMessages = 10;
    uint64_t documents = 0, bytes = 0, malformed = 0;
    std::vector<std::string> messages;  // the first kKeptMessages "file:line: why"

    // Counts a malformed record; when strict, throws it as an Error instead.
    void add_malformed(const Record& r, const std::string& why, bool strict);
    void add_document(uint64_t text_bytes) { documents++, bytes += text_bytes; }
};

// Records parsed one by one, malformed ones counted and skipped (or fatal when strict).
class DocumentReader {
public:
    DocumentReader(std::vector<std::string> files, std::string field, bool strict,
                   unsigned read_chunk = GzReader::kDefaultChunk)
        : records_(std::move(files), read_chunk), field_(std::move(field)), strict_(strict) {}
    bool next(Document& doc);
    const ReadStats& stats() const { return stats_; }

private:
    RecordReader records_;
    std::string field_;
    bool strict_;
    Record record_;
    ReadStats stats_;
};

}  // namespace diloco
