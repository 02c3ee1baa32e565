// Recall@K by Poincaré distance, with the reference's evaluation rules (hier-method.md section 7).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace hier::core {

struct RecallQuery {
  at::Tensor embeddings;  // [Q, D] points on the ball
  at::Tensor labels;      // [Q]
  at::Tensor ids;         // [Q] dataset index of each query
};

// Queries per distance block of a gallery this large: keeps the [rows x gallery] buffers near
// 32 MiB whatever the gallery.
int64_t QueryBlockRows(int64_t gallery_size);

// Fraction of queries with a same-label item among their K nearest gallery items, for each K in
// `ks`. Similarity is -distance stored in float32; a gallery item whose id equals the query's id is
// pushed to the end (-1e4), which removes the query itself when queries are the gallery.
// Every K must be in [1, gallery size].
std::vector<double> RecallAtK(const RecallQuery& queries, const RecallQuery& gallery,
                              const std::vector<int64_t>& ks, double c);

}  // namespace hier::core
