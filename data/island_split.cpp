// Dealing documents to islands: split names, URL hosts and the stable hash that keeps each
// site on one island.
#include "data/island_split.h"

#include <algorithm>
#include <cctype>

#include "util/error.h"
#include "util/rng.h"

namespace diloco {

SplitMethod parse_split(const std::string& name) {
    if (name == "iid") return SplitMethod::iid;
    if (name == "domain") return SplitMethod::domain;
    if (name == "cluster") return SplitMethod::cluster;
    throw Error("unknown split '" + name + "' (known: iid, domain, cluster)");
}

const char* split_name(SplitMethod method) {
    switch (method) {
        case SplitMethod::iid: return "iid";
        case SplitMethod::domain: return "domain";
        case SplitMethod::cluster: return "cluster";
    }
    return "?";
}

std::string url_host(std::string_view url) {
    size_t scheme = url.find("://");
    if (scheme != std::string_view::npos) url.remove_prefix(scheme + 3);
    url = url.substr(0, url.find_first_of("/?#"));
    size_t at = url.rfind('@');
    if (at != std::string_view::npos) url.remove_prefix(at + 1);
    url = url.substr(0, url.find(':'));
    std::string host(url);
    std::transform(host.begin(), host.end(), host.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (host.starts_with("www.")) host.erase(0, 4);
    return host;
}

int site_island(std::string_view site, int islands) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (char c : site) h = (h ^ static_cast<uint8_t>(c)) * 0x100000001b3ull;
    return static_cast<int>(splitmix64(h) % static_cast<uint64_t>(islands));  // mix the low bits
}

}  // namespace diloco
