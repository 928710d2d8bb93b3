// Reading a file that may be gzipped (zlib reads plain files as they are), whole or line by
// line; a corrupt or truncated gzip stream is an Error naming the file and the offset reached.
#pragma once

#include <cstdint>
#include <string>

typedef struct gzFile_s* gzFile;

namespace diloco {

class GzReader {
public:
    // Bytes decompressed per read: large for throughput; the fuzz harness takes small ones,
    // which are cheap and put line ends across reads.
    static constexpr unsigned kDefaultChunk = 1 << 20;

    explicit GzReader(const std::string& path, unsigned chunk = kDefaultChunk);
    ~GzReader();
    GzReader(const GzReader&) = delete;
    GzReader& operator=(const GzReader&) = delete;

    // The next line without its '\n' (a last line without one counts); false at the end.
    bool read_line(std::string& line);
    // Everything not read yet.
    std::string read_all();
    // Lines returned so far: the 1-based number of the last one.
    uint64_t line_number() const { return line_; }
    // Bytes of the file itself (compressed, for gzip) read so far.
    uint64_t offset() const;
    const std::string& path() const { return path_; }

private:
    bool fill();  // more bytes into buffer_; false at the end of the file
    std::string path_;
    gzFile file_ = nullptr;
    unsigned chunk_;
    std::string buffer_;
    size_t pos_ = 0;        // start of the unread part of buffer_
    uint64_t decoded_ = 0;  // decompressed bytes so far, for messages
    uint64_t line_ = 0;
    bool eof_ = false;
};

}  // namespace diloco
