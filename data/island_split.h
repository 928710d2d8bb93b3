// How documents are dealt to islands for non-i.i.d. training: round-robin (iid), by web site
// (domain) or by topic (cluster, see data/text_clusters.h).
#pragma once

#include <string>
#include <string_view>

namespace diloco {

enum class SplitMethod { iid, domain, cluster };

// "iid", "domain" or "cluster"; an Error listing them otherwise.
SplitMethod parse_split(const std::string& name);
const char* split_name(SplitMethod method);

// The host of a URL, lower-cased, without scheme, user, port or a leading "www."
// ("https://www.Example.com:8080/a" -> "example.com"); empty when there is none.
std::string url_host(std::string_view url);
// The island of a site: a fixed hash of its name (FNV-1a, the same on every machine) modulo
// islands, so all documents of one site land on one island.
int site_island(std::string_view site, int islands);

}  // namespace diloco
