// Reading plain or gzipped files through zlib's gzread, which checks every gzip member's CRC
// and length, so corruption anywhere in the stream surfaces here as an Error.
#include "data/gz_reader.h"

#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "util/error.h"
#include "util/files.h"

namespace diloco {

GzReader::GzReader(const std::string& path, unsigned chunk) : path_(path), chunk_(chunk) {
    const InputFile input(path);  // a regular file: a FIFO or a device is refused here
    const int fd = ::dup(input.fd());
    require(fd >= 0, path + ": cannot open (" + std::strerror(errno) + ")");
    file_ = gzdopen(fd, "rb");
    if (file_ == nullptr) ::close(fd);
    require(file_ != nullptr, path + ": cannot open (" + std::strerror(errno) + ")");
    // zlib's own buffer is 8 KiB unless told; below that it would only cost more calls.
    gzbuffer(file_, std::max(chunk, 8192u));
}

GzReader::~GzReader() {
    if (file_) gzclose(file_);
}

uint64_t GzReader::offset() const {
    z_off_t at = gzoffset(file_);
    return at < 0 ? 0 : static_cast<uint64_t>(at);
}

bool GzReader::fill() {
    if (eof_) return false;
    if (pos_ > 0) buffer_.erase(0, pos_), pos_ = 0;
    size_t old = buffer_.size();
    buffer_.resize(old + chunk_);
    int n = gzread(file_, buffer_.data() + old, chunk_);
    int err = Z_OK;
    const char* what = gzerror(file_, &err);
    // A stream cut short reads as a clean end with Z_BUF_ERROR ("unexpected end of file").
    if (n < 0 || (err != Z_OK && err != Z_STREAM_END)) {
        std::string why = what ? what : "unknown zlib error";
        if (why.starts_with(path_ + ": ")) why.erase(0, path_.size() + 2);
        if (err == Z_ERRNO) why = std::strerror(errno);
        throw Error(path_ + ": corrupt or unreadable gzip stream after " +
                    std::to_string(decoded_ + (n > 0 ? n : 0)) + " decompressed bytes (" + why +
                    ")");
    }
    buffer_.resize(old + n);
    decoded_ += n;
    eof_ = n == 0;
    return n > 0;
}

bool GzReader::read_line(std::string& line) {
    size_t scanned = pos_;
    for (;;) {
        size_t nl = buffer_.find('\n', scanned);
        if (nl != std::string::npos) {
            line.assign(buffer_, pos_, nl - pos_);
            pos_ = nl + 1;
            line_++;
            return true;
        }
        scanned = buffer_.size() - pos_;  // fill() moves the unread part to the front
        if (!fill()) break;
    }
    if (pos_ == buffer_.size()) return false;
    line.assign(buffer_, pos_);
    pos_ = buffer_.size();
    line_++;
    return true;
}

std::string GzReader::read_all() {
    while (fill()) {
    }
    std::string rest = buffer_.substr(pos_);
    pos_ = buffer_.size();
    return rest;
}

}  // namespace diloco
