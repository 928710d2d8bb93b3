// Topic clusters: hashed tf-idf vectors, k-means++ seeding and Lloyd iterations of spherical
// k-means. Sums run in document order and each document's work is independent, so the result
// is the same on any number of threads.
#include "data/text_clusters.h"

#include <algorithm>
#include <cmath>

#include "util/error.h"
#include "util/rng.h"

namespace diloco {

namespace {

using Vector = TextClusters::Vector;

bool word_byte(uint8_t c) {
    return c >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

void normalise(Vector& v) {
    double norm = 0;
    for (const auto& [d, x] : v) norm += double(x) * x;
    if (norm == 0) return;
    float scale = static_cast<float>(1 / std::sqrt(norm));
    for (auto& [d, x] : v) x *= scale;
}

float dot(const Vector& v, const float* dense) {
    float s = 0;
    for (const auto& [d, x] : v) s += x * dense[d];
    return s;
}

// A draw in [0, total) from the seeded generator, with 53 bits.
double uniform(Rng& rng, double total) {
    return static_cast<double>(rng.next_u64() >> 11) * 0x1.0p-53 * total;
}

}  // namespace

Vector TextClusters::term_counts(std::string_view doc) {
    std::vector<uint32_t> dims;
    for (size_t i = 0; i < doc.size();) {
        if (!word_byte(doc[i])) {
            i++;
            continue;
        }
        uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a of the lower-cased word
        size_t start = i;
        for (; i < doc.size() && word_byte(doc[i]); i++) {
            uint8_t c = doc[i];
            h = (h ^ (c >= 'A' && c <= 'Z' ? c + 32 : c)) * 0x100000001b3ull;
        }
        if (i - start >= 2) dims.push_back(static_cast<uint32_t>(splitmix64(h) & (kDims - 1)));
    }
    std::sort(dims.begin(), dims.end());
    Vector counts;
    for (uint32_t d : dims) {
        if (!counts.empty() && counts.back().first == d)
            counts.back().second += 1;
        else
            counts.push_back({d, 1.0f});
    }
    return counts;
}

Vector TextClusters::tfidf(const Vector& counts) const {
    Vector v = counts;
    for (auto& [d, x] : v) x = (1 + std::log(x)) * idf_[d];  // damped term frequency
    normalise(v);
    return v;
}

int TextClusters::nearest(const Vector& v, float* similarity) const {
    int best = 0;
    float best_s = dot(v, centroids_.data());
    for (int j = 1; j < k_; j++) {
        float s = dot(v, centroids_.data() + size_t(j) * kDims);
        if (s > best_s) best = j, best_s = s;
    }
    if (similarity) *similarity = best_s;
    return best;
}

int TextClusters::assign(std::string_view doc) const { return nearest(tfidf(term_counts(doc))); }

namespace {

void set_centroid(std::vector<float>& centroids, int j, const Vector& v) {
    float* c = centroids.data() + size_t(j) * TextClusters::kDims;
    std::fill(c, c + TextClusters::kDims, 0.0f);
    for (const auto& [d, x] : v) c[d] = x;
}

// k-means++: each next centre is a document drawn with probability proportional to the squared
// cosine distance to its nearest centre so far.
void seed_centroids(const std::vector<Vector>& docs, int k, Rng rng,
                    std::vector<float>& centroids) {
    const size_t n = docs.size();
    std::vector<double> dist2(n, INFINITY);
    set_centroid(centroids, 0, docs[rng.below(n)]);
    for (int j = 1; j < k; j++) {
        const float* last = centroids.data() + size_t(j - 1) * TextClusters::kDims;
        double total = 0;
        for (size_t i = 0; i < n; i++) {
            double d = std::max(0.0, 1.0 - dot(docs[i], last));
            dist2[i] = std::min(dist2[i], d * d);
            total += dist2[i];
        }
        size_t pick = n - 1;
        if (total == 0) {
            pick = rng.below(n);  // every document sits on a centre: any will do
        } else {
            double u = uniform(rng, total);
            for (size_t i = 0; i < n; i++)
                if ((u -= dist2[i]) < 0) {
                    pick = i;
                    break;
                }
        }
        set_centroid(centroids, j, docs[pick]);
    }
}

}  // namespace

TextClusters TextClusters::fit(const std::vector<std::string_view>& docs, int k, uint64_t seed,
                               int restarts, int max_iterations) {
    const int64_t n = static_cast<int64_t>(docs.size());
    require(k >= 1 && k <= n, "clustering " + std::to_string(n) + " documents into " +
                                  std::to_string(k) + " clusters: need 1 <= clusters <= documents");
    TextClusters c;
    c.k_ = k;
    std::vector<Vector> vectors(n);
#pragma omp parallel for schedule(dynamic, 16)
    for (int64_t i = 0; i < n; i++) vectors[i] = term_counts(docs[i]);
    std::vector<uint32_t> df(kDims, 0);
    for (const Vector& v : vectors)
        for (const auto& [d, x] : v) df[d]++;
    c.idf_.resize(kDims);
    for (uint32_t d = 0; d < kDims; d++)
        c.idf_[d] = static_cast<float>(std::log((1.0 + n) / (1.0 + df[d])) + 1);
#pragma omp parallel for schedule(dynamic, 16)
    for (int64_t i = 0; i < n; i++) vectors[i] = c.tfidf(vectors[i]);
    // k-means finds a local optimum that depends on its seeding: keep the best of a few.
    std::vector<float> best;
    double best_objective = -1;
    for (int r = 0; r < restarts; r++) {
        c.centroids_.assign(size_t(k) * kDims, 0.0f);
        seed_centroids(vectors, k, Rng(seed, 0x6b6d65616e73ull + r), c.centroids_);  // "kmeans"
        double objective = c.lloyd(vectors, max_iterations);
        if (objective > best_objective) best_objective = objective, best = c.centroids_;
    }
    c.centroids_ = std::move(best);
    return c;
}

// Centroid j becomes the unit vector along sum (zero when the sum is).
void TextClusters::set_mean_direction(const double* sum, int j) {
    double norm = 0;
    for (uint32_t d = 0; d < kDims; d++) norm += sum[d] * sum[d];
    double scale = norm > 0 ? 1 / std::sqrt(norm) : 0;
    float* c = centroids_.data() + size_t(j) * kDims;
    for (uint32_t d = 0; d < kDims; d++) c[d] = static_cast<float>(sum[d] * scale);
}

// Assign every document to its nearest centroid, then move each centroid to the normalised
// mean of its documents, until no assignment changes. A cluster left empty takes the document
// farthest from its own centroid. Returns the objective: the sum over documents of the cosine
// to the nearest centroid.
double TextClusters::lloyd(const std::vector<Vector>& vectors, int max_iterations) {
    const int64_t n = static_cast<int64_t>(vectors.size());
    std::vector<int> cluster(n, -1);
    std::vector<float> similarity(n);
    for (int it = 0; it < max_iterations; it++) {
        bool changed = false;
#pragma omp parallel for schedule(dynamic, 64) reduction(|| : changed)
        for (int64_t i = 0; i < n; i++) {
            int j = nearest(vectors[i], &similarity[i]);
            changed = changed || j != cluster[i];
            cluster[i] = j;
        }
        if (!changed) break;
        std::vector<int64_t> sizes(k_, 0);
        for (int j : cluster) sizes[j]++;
        for (int j = 0; j < k_; j++) {
            if (sizes[j] > 0) continue;
            int64_t far = -1;
            for (int64_t i = 0; i < n; i++)
                if (sizes[cluster[i]] > 1 && (far < 0 || similarity[i] < similarity[far])) far = i;
            sizes[cluster[far]]--, sizes[j]++;
            cluster[far] = j;
        }
        std::vector<double> sums(size_t(k_) * kDims, 0.0);
        for (int64_t i = 0; i < n; i++)
            for (const auto& [d, x] : vectors[i]) sums[size_t(cluster[i]) * kDims + d] += x;
        for (int j = 0; j < k_; j++) set_mean_direction(sums.data() + size_t(j) * kDims, j);
    }
    double objective = 0;
#pragma omp parallel for schedule(dynamic, 64) reduction(+ : objective)
    for (int64_t i = 0; i < n; i++) {
        float s = 0;
        nearest(vectors[i], &s);
        objective += s;
    }
    return objective;
}

}  // namespace diloco
