#include "client/bench/write_requests.h"

#include "absl/strings/str_cat.h"

namespace hier::client::bench {
namespace {

hier::v1::NewItem* AddBenchItem(hier::v1::AddItemsRequest* request, int64_t id) {
  hier::v1::NewItem* item = request->add_items();
  item->set_id(id);
  item->set_key(absl::StrCat("bench-", id));
  item->set_label("bench");
  return item;
}

}  // namespace

int64_t FirstIdOfCall(int64_t first_id, int64_t batch, int64_t sequence) {
  return first_id + sequence * batch;
}

hier::v1::AddItemsRequest AddVectorsRequest(const std::vector<std::vector<float>>& vectors,
                                            int64_t batch, int64_t first_id, int64_t sequence) {
  hier::v1::AddItemsRequest request;
  const int64_t first = FirstIdOfCall(first_id, batch, sequence);
  for (int64_t id = first; id < first + batch; ++id) {
    const std::vector<float>& vector = vectors[static_cast<size_t>(id) % vectors.size()];
    AddBenchItem(&request, id)
        ->mutable_vector()
        ->mutable_values()
        ->Add(vector.begin(), vector.end());
  }
  return request;
}

hier::v1::AddItemsRequest AddImagesRequest(const std::vector<std::string>& images, int64_t batch,
                                           int64_t first_id, int64_t sequence) {
  hier::v1::AddItemsRequest request;
  const int64_t first = FirstIdOfCall(first_id, batch, sequence);
  for (int64_t id = first; id < first + batch; ++id) {
    AddBenchItem(&request, id)->set_image(images[static_cast<size_t>(id) % images.size()]);
  }
  return request;
}

hier::v1::DeleteItemsRequest DeleteRequest(int64_t batch, int64_t first_id, int64_t sequence) {
  hier::v1::DeleteItemsRequest request;
  const int64_t first = FirstIdOfCall(first_id, batch, sequence);
  for (int64_t id = first; id < first + batch; ++id) request.add_ids(id);
  return request;
}

}  // namespace hier::client::bench
