// The write requests hier-bench sends: call number `sequence` of a load writes the ids
// first_id + sequence * batch .. + batch - 1, so that a delete load with the same first id and
// batch removes exactly what the add load's call of the same number added, and a ledger line
// (write_ledger.h) names a call's ids by its first id and count.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "hier/v1/retrieval.pb.h"

namespace hier::client::bench {

// The first id call `sequence` writes.
int64_t FirstIdOfCall(int64_t first_id, int64_t batch, int64_t sequence);

// `batch` new items with vectors, cycled from `vectors` by id; key "bench-<id>", label "bench".
hier::v1::AddItemsRequest AddVectorsRequest(const std::vector<std::vector<float>>& vectors,
                                            int64_t batch, int64_t first_id, int64_t sequence);

// `batch` new items with encoded images, cycled from `images` by id; key "bench-<id>", label
// "bench". The server embeds and keeps them, so a hot swap can re-embed them.
hier::v1::AddItemsRequest AddImagesRequest(const std::vector<std::string>& images, int64_t batch,
                                           int64_t first_id, int64_t sequence);

// The ids call `sequence` of an add load with the same first id and batch wrote.
hier::v1::DeleteItemsRequest DeleteRequest(int64_t batch, int64_t first_id, int64_t sequence);

}  // namespace hier::client::bench
