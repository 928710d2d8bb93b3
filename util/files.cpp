// Reads of regular files with a size limit, and atomic writes (temporary name, fsync, rename),
// with errors naming the file. POSIX calls throughout: fstat, pread, and fsync of the directory.
#include "util/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "util/error.h"

namespace diloco {

PathKind path_kind(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0)
        return S_ISREG(st.st_mode) ? PathKind::kRegular
               : S_ISDIR(st.st_mode) ? PathKind::kDirectory
                                     : PathKind::kOther;
    if (errno == ENOENT || errno == ENOTDIR) return PathKind::kMissing;
    if (errno == ELOOP) throw Error(path + ": a loop of symbolic links (it never reaches a file)");
    throw Error(path + ": cannot examine (" + std::strerror(errno) + ")");
}

// What st is, for a message that refuses it.
static std::string kind_of(const struct stat& st) {
    if (S_ISDIR(st.st_mode)) return "a directory";
    if (S_ISFIFO(st.st_mode)) return "a FIFO (named pipe)";
    if (S_ISCHR(st.st_mode)) return "a character device";
    if (S_ISBLK(st.st_mode)) return "a block device";
    if (S_ISSOCK(st.st_mode)) return "a socket";
    return "not a regular file";
}

static void require_regular(const struct stat& st, const std::string& path) {
    require(S_ISREG(st.st_mode), path + ": is " + kind_of(st) + ", expected a regular file");
}

// The kind is checked before the open, so that a FIFO or a device is never opened, and again
// on the open descriptor, for what the path named in between; O_NONBLOCK keeps a FIFO that
// appears in between from blocking the open.
InputFile::InputFile(const std::string& path) : path_(path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) require_regular(st, path);
    fd_ = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd_ < 0 && errno == ELOOP)
        throw Error(path + ": a loop of symbolic links (it never reaches a file)");
    require(fd_ >= 0, path + ": cannot open (" + std::strerror(errno) + ")");
    try {
        require(::fstat(fd_, &st) == 0, path + ": cannot stat (" + std::strerror(errno) + ")");
        require_regular(st, path);
        const int flags = ::fcntl(fd_, F_GETFL);
        require(flags >= 0 && ::fcntl(fd_, F_SETFL, flags & ~O_NONBLOCK) == 0,
                path + ": cannot set blocking reads (" + std::strerror(errno) + ")");
    } catch (...) {
        ::close(fd_);
        throw;
    }
    size_ = static_cast<uint64_t>(st.st_size);
}

InputFile::~InputFile() { ::close(fd_); }

void InputFile::read(uint64_t offset, char* out, size_t n) const {
    size_t done = 0;
    while (done < n) {
        const ssize_t got = ::pread(fd_, out + done, n - done, static_cast<off_t>(offset + done));
        if (got < 0 && errno == EINTR) continue;
        require(got >= 0, path_ + ": read failed at byte " + std::to_string(offset + done) + " (" +
                              std::strerror(errno) + ")");
        require(got > 0, path_ + ": ends at byte " + std::to_string(offset + done) +
                             ", expected " + std::to_string(n - done) + " more bytes");
        done += static_cast<size_t>(got);
    }
}

std::string InputFile::read_all(uint64_t max_bytes) const {
    require(size_ <= max_bytes, path_ + ": " + std::to_string(size_) +
                                    " bytes, more than the limit of " +
                                    std::to_string(max_bytes) + " for this kind of file");
    std::string bytes(static_cast<size_t>(size_), '\0');
    read(0, bytes.data(), bytes.size());
    // A file that grew while it was read is read as it was when opened; one that shrank is an
    // Error from read().
    return bytes;
}

std::string read_file(const std::string& path, uint64_t max_bytes) {
    return InputFile(path).read_all(max_bytes);
}

static void write_all(int fd, std::string_view bytes, const std::string& path) {
    size_t done = 0;
    while (done < bytes.size()) {
        ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR) continue;
        require(n > 0, path + ": write failed (" + std::strerror(errno) + ")");
        done += static_cast<size_t>(n);
    }
}

static void fsync_directory(const std::string& path) {
    std::string dir = std::filesystem::path(path).parent_path().string();
    int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
    if (fd < 0) return;  // some filesystems do not allow it; the rename is still atomic
    ::fsync(fd);
    ::close(fd);
}

void write_file_atomic(const std::string& path, std::string_view bytes) {
    write_file_atomic(path, std::vector<std::string_view>{bytes});
}

void write_file_atomic(const std::string& path, const std::vector<std::string_view>& parts) {
    std::string tmp = path + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    require(fd >= 0, tmp + ": cannot create (" + std::strerror(errno) + ")");
    try {
        for (std::string_view part : parts) write_all(fd, part, tmp);
        require(::fsync(fd) == 0, tmp + ": fsync failed (" + std::strerror(errno) + ")");
    } catch (...) {
        ::close(fd);
        ::unlink(tmp.c_str());
        throw;
    }
    require(::close(fd) == 0, tmp + ": close failed (" + std::strerror(errno) + ")");
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        std::string why = std::strerror(errno);
        ::unlink(tmp.c_str());
        throw Error(path + ": cannot rename into place (" + why + ")");
    }
    fsync_directory(path);
}

void require_writable_dir(const std::string& dir, const std::string& what) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    require(!ec, what + " " + dir + ": cannot create the directory (" + ec.message() + ")");
    require(std::filesystem::is_directory(dir), what + " " + dir + ": not a directory");
    const std::string probe = dir + "/.diloco-write-test";
    int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    require(fd >= 0, what + " " + dir + ": cannot write in it (" + std::strerror(errno) + ")");
    ::close(fd);
    ::unlink(probe.c_str());
}

void replace_symlink_atomic(const std::string& link, const std::string& target) {
    const std::string tmp = link + ".tmp";
    ::unlink(tmp.c_str());  // what a crash between these calls left
    require(::symlink(target.c_str(), tmp.c_str()) == 0,
            tmp + ": cannot create a link (" + std::strerror(errno) + ")");
    if (::rename(tmp.c_str(), link.c_str()) != 0) {
        std::string why = std::strerror(errno);
        ::unlink(tmp.c_str());
        throw Error(link + ": cannot switch the link to " + target + " (" + why + ")");
    }
    fsync_directory(link);
}

}  // namespace diloco
