// Document readers: expanding inputs into files, records (whole text files, JSON lines),
// parsing a record into a document, and the policy for malformed lines (count and skip, or
// fail when strict).
#include "data/documents.h"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "util/error.h"
#include "util/files.h"

namespace diloco {

namespace fs = std::filesystem;

static bool hidden(const fs::path& p) {
    std::string name = p.filename().string();
    return !name.empty() && name[0] == '.';
}

// A loop of links under dir (followed, as directory links are) is an Error naming where.
static std::vector<std::string> files_under(const std::string& dir) {
    std::vector<std::string> files;
    try {
        auto it =
            fs::recursive_directory_iterator(dir, fs::directory_options::follow_directory_symlink);
        for (; it != fs::recursive_directory_iterator(); ++it) {
            if (hidden(it->path())) {
                if (it->is_directory()) it.disable_recursion_pending();
                continue;
            }
            if (it->is_regular_file()) files.push_back(it->path().string());
        }
    } catch (const fs::filesystem_error& e) {
        throw Error(e.path1().string() + ": cannot list (" + e.code().message() + ")");
    }
    std::sort(files.begin(), files.end());
    return files;
}

std::vector<std::string> expand_inputs(const std::vector<std::string>& inputs) {
    require(!inputs.empty(), "no inputs given");
    std::vector<std::string> files;
    for (const std::string& in : inputs) {
        const PathKind kind = path_kind(in);
        require(kind != PathKind::kMissing, in + ": not found");
        if (kind != PathKind::kDirectory) {
            files.push_back(in);
            continue;
        }
        std::vector<std::string> under = files_under(in);
        require(!under.empty(), in + ": directory holds no files");
        files.insert(files.end(), under.begin(), under.end());
    }
    return files;
}

bool is_json_lines(const std::string& path) {
    std::string name = path;
    if (name.ends_with(".gz")) name.resize(name.size() - 3);
    return name.ends_with(".json") || name.ends_with(".jsonl") || name.ends_with(".ndjson");
}

// ---------------------------------------------------------------------------------------------
// Records.

static uint64_t size_of(const std::string& path) {
    std::error_code ec;
    uint64_t size = fs::file_size(path, ec);
    return ec ? 0 : size;
}

RecordReader::RecordReader(std::vector<std::string> files, unsigned read_chunk)
    : files_(std::move(files)), read_chunk_(read_chunk) {
    for (const std::string& f : files_) total_ += size_of(f);
}

RecordReader::~RecordReader() = default;

uint64_t RecordReader::consumed() const { return done_ + (json_ ? json_->offset() : 0); }

bool RecordReader::next(Record& r) {
    for (;;) {
        if (json_) {
            while (json_->read_line(r.raw))
                if (r.raw.find_first_not_of(" \t\r") != std::string::npos) {
                    r.file = json_->path();
                    r.line = json_->line_number();
                    r.json = true;
                    return true;
                }
            done_ += size_of(json_->path());
            json_.reset();
        }
        if (next_file_ == files_.size()) return false;
        const std::string& path = files_[next_file_++];
        if (is_json_lines(path)) {
            json_ = std::make_unique<GzReader>(path, read_chunk_);
            continue;
        }
        r.raw = GzReader(path, read_chunk_).read_all();
        r.file = path;
        r.line = 0;
        r.json = false;
        done_ += size_of(path);
        return true;
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing and the malformed-line policy.

bool parse_record(Record& r, const std::string& field, Document& doc, std::string& why) {
    using json = nlohmann::json;
    doc.file = r.file;
    doc.line = r.line;
    doc.url.clear();
    if (!r.json) {
        doc.text = std::move(r.raw);
        return true;
    }
    json record = json::parse(r.raw, nullptr, false);
    if (record.is_discarded()) {
        why = "malformed JSON line skipped (not valid JSON or not UTF-8)";
        return false;
    }
    auto text = record.is_object() ? record.find(field) : record.end();
    if (!record.is_object() || text == record.end() || !text->is_string()) {
        why = "malformed JSON line skipped (no string field \"" + field + "\")";
        return false;
    }
    auto url = record.find("url");
    if (url != record.end() && url->is_string()) doc.url = url->get<std::string>();
    doc.text = std::move(text->get_ref<std::string&>());
    return true;
}

void ReadStats::add_malformed(const Record& r, const std::string& why, bool strict) {
    std::string message = r.file + ":" + std::to_string(r.line) + ": " + why;
    require(!strict, message + " (--strict)");
    malformed++;
    if (messages.size() < kKeptMessages) messages.push_back(message);
}

bool DocumentReader::next(Document& doc) {
    std::string why;
    while (records_.next(record_)) {
        if (parse_record(record_, field_, doc, why)) {
            stats_.add_document(doc.text.size());
            return true;
        }
        stats_.add_malformed(record_, why, strict_);
    }
    return false;
}

}  // namespace diloco
