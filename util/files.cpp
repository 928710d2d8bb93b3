// Whole-file reads and atomic writes (temporary name, fsync, rename), with errors naming the file.
// POSIX calls are used for the write so that fsync covers both the file and its directory.
#include "util/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "util/error.h"

namespace diloco {

// One read into a string of the file's size (a stream into a stringstream copied it twice);
// what has no size, such as a pipe, grows as it comes.
std::string read_file(const std::string& path) {
    require(!std::filesystem::is_directory(path), path + ": is a directory, expected a file");
    const int fd = ::open(path.c_str(), O_RDONLY);
    require(fd >= 0, path + ": cannot open (" + std::strerror(errno) + ")");
    struct stat st {};
    const bool sized = ::fstat(fd, &st) == 0 && st.st_size > 0;
    std::string bytes(sized ? size_t(st.st_size) + 1 : size_t(1) << 16, '\0');
    size_t done = 0;
    for (;;) {
        if (done == bytes.size()) bytes.resize(2 * bytes.size());
        const ssize_t n = ::read(fd, bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            const std::string why = n < 0 ? std::strerror(errno) : "";
            ::close(fd);
            require(n == 0, path + ": read failed (" + why + ")");
            break;
        }
        done += static_cast<size_t>(n);
    }
    bytes.resize(done);
    return bytes;
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
