// Topic clusters of documents without a neural embedder: hashed unigram tf-idf vectors (2^12
// dimensions, L2-normalised) and spherical k-means (cosine) seeded by k-means++.
#pragma once

#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

namespace diloco {

class TextClusters {
public:
    static constexpr uint32_t kDims = 1 << 12;
    using Vector = std::vector<std::pair<uint32_t, float>>;  // sparse: (dimension, value)

    // k centroids fitted on docs (idf from them too), a pure function of the arguments: the
    // best (highest total cosine) of `restarts` runs of k-means++ seeding and Lloyd iterations.
    // No cluster is left empty while fitting; k must not exceed docs.size().
    static TextClusters fit(const std::vector<std::string_view>& docs, int k, uint64_t seed,
                            int restarts = 8, int max_iterations = 30);
    // The cluster with the nearest centroid (largest cosine); the lowest index on ties, so a
    // document without words goes to cluster 0.
    int assign(std::string_view doc) const;
    int k() const { return k_; }

    // Term counts of the words of a document (runs of ASCII letters and digits and of non-ASCII
    // bytes, lower-cased, two bytes or more) hashed into kDims dimensions, sorted by dimension.
    static Vector term_counts(std::string_view doc);

private:
    Vector tfidf(const Vector& counts) const;
    int nearest(const Vector& v, float* similarity = nullptr) const;
    double lloyd(const std::vector<Vector>& vectors, int max_iterations);
    void set_mean_direction(const double* sum, int j);
    int k_ = 0;
    std::vector<float> idf_;        // kDims
    std::vector<float> centroids_;  // k x kDims, unit length
};

}  // namespace diloco
