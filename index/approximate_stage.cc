// The approximate candidate stages: a FAISS index built with L2 on the items' Poincaré
// coordinates (or their tangent, logmap0, coordinates), where approximate structures keep
// hyperbolic neighbourhoods (architecture.md decision 1). Items get FAISS labels of their own; IVF
// indexes remove entries in place (a hash-table direct map), the others mark them deleted and are
// rebuilt once the deleted outnumber the live.
#include <faiss/IVFlib.h>
#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVF.h>
#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/impl/io.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>
#include <faiss/invlists/DirectMap.h>
#include <faiss/invlists/InvertedLists.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "index/ball_geometry.h"
#include "index/byte_io.h"
#include "index/candidate_stage.h"
#include "index/sharded_id_map.h"

namespace hier::index {
namespace {

constexpr uint32_t kSnapshotFormat = 1;
// An automatically sized IVF is retrained once it holds this many times its training size.
constexpr int64_t kRetrainGrowth = 4;
// The longest HNSW candidate list worth trying.
constexpr int64_t kMostEfSearch = 4096;

// The FAISS factory string for a named kind, or the kind itself.
std::string FactoryString(const CandidateStageOptions& options, int64_t nlist) {
  if (options.kind == "ivf-flat") return absl::StrCat("IVF", nlist, ",Flat");
  if (options.kind == "ivf-sq8") return absl::StrCat("IVF", nlist, ",SQ8");
  if (options.kind == "hnsw") return absl::StrCat("HNSW", options.hnsw_m);
  return options.kind;
}

bool NamedIvf(const std::string& kind) { return kind == "ivf-flat" || kind == "ivf-sq8"; }

// The rows FAISS indexes: logmap0 of each point, or the Poincaré coordinates themselves.
std::vector<float> StageRows(absl::Span<const float> points, int64_t dim, double c,
                             bool tangent_space) {
  if (!tangent_space) return std::vector<float>(points.begin(), points.end());
  std::vector<float> rows(points.size());
  for (size_t row = 0; row * dim < points.size(); ++row) {
    LogMap0(points.data() + row * dim, dim, c, rows.data() + row * dim);
  }
  return rows;
}

// Why a FAISS index read from a snapshot cannot be trusted to search without reading out of
// bounds ("" when its structure holds together): FAISS reads what the bytes say, and a search
// follows HNSW links and IVF list entries as they are. Checked: HNSW links, levels and entry
// point within the stored vectors; IVF lists whose codes match their ids, a quantizer with one
// centroid per list, and a direct map pointing inside the lists.
std::string StructureProblem(const faiss::Index& index) {
  const int64_t n = index.ntotal;
  if (n < 0) return "a negative vector count";
  if (const auto* graph = dynamic_cast<const faiss::IndexHNSW*>(&index)) {
    const faiss::HNSW& hnsw = graph->hnsw;
    if (graph->storage == nullptr || graph->storage->ntotal != n) return "HNSW storage size";
    if (static_cast<int64_t>(hnsw.levels.size()) != n ||
        static_cast<int64_t>(hnsw.offsets.size()) != n + 1 || hnsw.offsets[0] != 0 ||
        hnsw.offsets[n] != hnsw.neighbors.size()) {
      return "HNSW level table sizes";
    }
    const int levels = static_cast<int>(hnsw.cum_nneighbor_per_level.size());
    for (int64_t i = 0; i < n; ++i) {
      if (hnsw.offsets[i] > hnsw.offsets[i + 1] || hnsw.levels[i] < 1 || hnsw.levels[i] >= levels ||
          hnsw.levels[i] - 1 > hnsw.max_level ||
          hnsw.offsets[i + 1] - hnsw.offsets[i] !=
              static_cast<size_t>(hnsw.cum_nneighbor_per_level[hnsw.levels[i]])) {
        return "HNSW levels";
      }
    }
    for (const faiss::HNSW::storage_idx_t link : hnsw.neighbors) {
      if (link < -1 || link >= n) return "an HNSW link outside the vectors";
    }
    if (hnsw.entry_point < -1 || hnsw.entry_point >= n || (n > 0 && hnsw.entry_point < 0) ||
        hnsw.max_level < -1 || hnsw.max_level >= levels) {
      return "the HNSW entry point";
    }
    return "";
  }
  if (const auto* ivf = dynamic_cast<const faiss::IndexIVF*>(&index)) {
    if (ivf->quantizer == nullptr || ivf->quantizer->ntotal != static_cast<int64_t>(ivf->nlist) ||
        ivf->quantizer->d != ivf->d) {
      return "the IVF quantizer";
    }
    const auto* lists = dynamic_cast<const faiss::ArrayInvertedLists*>(ivf->invlists);
    if (lists == nullptr || lists->nlist != ivf->nlist) return "the IVF lists";
    int64_t entries = 0;
    for (size_t list = 0; list < lists->nlist; ++list) {
      if (lists->codes[list].size() != lists->ids[list].size() * lists->code_size) {
        return "an IVF list whose codes do not match its ids";
      }
      entries += static_cast<int64_t>(lists->ids[list].size());
    }
    if (entries != n) return "IVF list sizes";
    for (const auto& [id, lo] : ivf->direct_map.hashtable) {
      if (faiss::lo_listno(lo) >= lists->nlist ||
          faiss::lo_offset(lo) >= lists->ids[faiss::lo_listno(lo)].size()) {
        return "the IVF direct map";
      }
    }
    return "";
  }
  return "";
}

class ApproximateStage final : public CandidateStage {
 public:
  ApproximateStage(const CandidateStageOptions& options, int64_t dim, double c)
      : options_(options), dim_(dim), c_(c), tangent_space_(options.coordinates == "tangent") {
    std::unique_ptr<faiss::Index> probe(
        faiss::index_factory(dim, FactoryString(options, 1).c_str()));
    needs_training_ = !probe->is_trained;
    if (needs_training_) {
      Reset(std::make_unique<faiss::IndexFlatL2>(dim), "Flat");
    } else {
      Reset(Configure(std::move(probe)), FactoryString(options, 1));
    }
  }

  void Add(absl::Span<const int64_t> ids, absl::Span<const float> points) override {
    AddAssigned(ids, points, {});
  }

  PreparedAdd PrepareAdd(absl::Span<const float> points) const override {
    PreparedAdd prepared;
    const faiss::IndexIVF* ivf = dynamic_cast<const faiss::IndexIVF*>(index_.get());
    if (ivf == nullptr || points.empty()) return prepared;
    const int64_t count = static_cast<int64_t>(points.size()) / dim_;
    const std::vector<float> rows = StageRows(points, dim_, c_, tangent_space_);
    std::vector<faiss::Index::idx_t> lists(count);
    ivf->quantizer->assign(count, rows.data(), lists.data());
    prepared.lists.assign(lists.begin(), lists.end());
    const auto* array = dynamic_cast<const faiss::ArrayInvertedLists*>(ivf->invlists);
    if (array == nullptr) return prepared;
    absl::flat_hash_map<int64_t, size_t> incoming;
    for (int64_t list : prepared.lists) {
      if (list >= 0) ++incoming[list];
    }
    const size_t code_size = array->code_size;
    for (const auto& [list, rows_in] : incoming) {
      const std::vector<faiss::Index::idx_t>& ids = array->ids[list];
      const std::vector<uint8_t>& codes = array->codes[list];
      if (ids.size() + rows_in <= ids.capacity() &&
          codes.size() + rows_in * code_size <= codes.capacity()) {
        continue;
      }
      const size_t room = std::max(2 * ids.size(), ids.size() + rows_in);
      PreparedAdd::GrownList grown;
      grown.list = list;
      grown.ids.reserve(room);
      grown.ids.assign(ids.begin(), ids.end());
      grown.codes.reserve(room * code_size);
      grown.codes.assign(codes.begin(), codes.end());
      prepared.grown.push_back(std::move(grown));
    }
    return prepared;
  }

  void AddPrepared(absl::Span<const int64_t> ids, absl::Span<const float> points,
                   PreparedAdd& prepared) override {
    faiss::IndexIVF* ivf = dynamic_cast<faiss::IndexIVF*>(index_.get());
    auto* array = ivf != nullptr ? dynamic_cast<faiss::ArrayInvertedLists*>(ivf->invlists) : nullptr;
    for (PreparedAdd::GrownList& grown : prepared.grown) {
      // A list a Remove changed since is left to grow in the add.
      if (array == nullptr || array->ids[grown.list].size() != grown.ids.size() ||
          array->codes[grown.list].size() != grown.codes.size()) {
        continue;
      }
      array->ids[grown.list].swap(grown.ids);
      array->codes[grown.list].swap(grown.codes);
    }
    AddAssigned(ids, points, prepared.lists);
  }

  // Add, with `assigned` the IVF list of each row (empty: FAISS assigns them).
  void AddAssigned(absl::Span<const int64_t> ids, absl::Span<const float> points,
                   absl::Span<const int64_t> assigned) {
    const int64_t count = static_cast<int64_t>(ids.size());
    if (count == 0) return;
    const std::vector<float> rows = StageRows(points, dim_, c_, tangent_space_);
    std::vector<faiss::Index::idx_t> labels(count);
    std::iota(labels.begin(), labels.end(), next_label_);
    faiss::IndexIVF* ivf = dynamic_cast<faiss::IndexIVF*>(index_.get());
    if (ivf != nullptr && static_cast<int64_t>(assigned.size()) == count) {
      const std::vector<faiss::Index::idx_t> lists(assigned.begin(), assigned.end());
      ivf->add_core(count, rows.data(), labels.data(), lists.data());
    } else if (removes_in_place_) {
      index_->add_with_ids(count, rows.data(), labels.data());
    } else {
      index_->add(count, rows.data());  // labels are the running count of entries
    }
    for (int64_t i = 0; i < count; ++i) {
      label_of_[ids[i]] = labels[i];
      id_of_[labels[i]] = ids[i];
    }
    next_label_ += count;
  }

  void Remove(absl::Span<const int64_t> ids) override {
    std::vector<faiss::Index::idx_t> removed;
    for (int64_t id : ids) {
      const int64_t* found = label_of_.Find(id);
      if (found == nullptr) continue;
      removed.push_back(*found);
      id_of_.Erase(*found);
      label_of_.Erase(id);
    }
    if (removes_in_place_ && !removed.empty()) {
      index_->remove_ids(faiss::IDSelectorArray(removed.size(), removed.data()));
    } else {
      deleted_entries_ += static_cast<int64_t>(removed.size());
    }
  }

  void Search(absl::Span<const float> queries, int64_t wanted, int threads,
              const SearchEffort& effort, int64_t* out) const override {
    const int64_t count = static_cast<int64_t>(queries.size()) / dim_;
    std::fill(out, out + count * wanted, -1);
    const int64_t live = static_cast<int64_t>(label_of_.size());
    if (live == 0) return;
    // Deleted entries still in the index take places; ask for enough to make up for them.
    const int64_t fetch =
        std::min<int64_t>(index_->ntotal, wanted + (wanted * deleted_entries_ + live - 1) / live);
    const std::vector<float> rows = StageRows(queries, dim_, c_, tangent_space_);
    std::vector<float> distances(count * fetch);
    std::vector<faiss::Index::idx_t> labels(count * fetch);
    omp_set_num_threads(threads);
    // Per-search parameters, so that searches with different efforts run side by side.
    faiss::SearchParametersIVF ivf_effort;
    faiss::SearchParametersHNSW hnsw_effort;
    const faiss::SearchParameters* parameters = nullptr;
    if (const auto* ivf = dynamic_cast<const faiss::IndexIVF*>(index_.get())) {
      ivf_effort.nprobe = static_cast<size_t>(std::clamp<int64_t>(effort.nprobe, 1, ivf->nlist));
      parameters = &ivf_effort;
    } else if (dynamic_cast<const faiss::IndexHNSW*>(index_.get()) != nullptr) {
      hnsw_effort.efSearch = static_cast<int>(std::max<int64_t>(effort.ef_search, 1));
      parameters = &hnsw_effort;
    }
    index_->search(count, rows.data(), fetch, distances.data(), labels.data(), parameters);
    for (int64_t q = 0; q < count; ++q) {
      int64_t kept = 0;
      for (int64_t j = 0; j < fetch && kept < wanted; ++j) {
        if (const int64_t* id = id_of_.Find(labels[q * fetch + j])) out[q * wanted + kept++] = *id;
      }
    }
  }

  SearchEffort MostEffort() const override {
    SearchEffort most{0, 0, 0};
    if (const auto* ivf = dynamic_cast<const faiss::IndexIVF*>(index_.get())) {
      most.nprobe = static_cast<int64_t>(ivf->nlist);
    } else if (dynamic_cast<const faiss::IndexHNSW*>(index_.get()) != nullptr) {
      // A list longer than the graph holds nothing more.
      most.ef_search = std::clamp<int64_t>(index_->ntotal, 1, kMostEfSearch);
    }
    return most;
  }

  bool WantsRebuild() const override {
    const int64_t live = static_cast<int64_t>(label_of_.size());
    if (needs_training_ && trained_on_ == 0) return live >= options_.min_train_items;
    if (needs_training_ && options_.nlist == 0 && NamedIvf(options_.kind) &&
        live > kRetrainGrowth * trained_on_) {
      return true;
    }
    return deleted_entries_ > std::max<int64_t>(live, 1000);
  }

  void Rebuild(absl::Span<const int64_t> ids, absl::Span<const float> points,
               int threads) override {
    omp_set_num_threads(threads);
    const int64_t count = static_cast<int64_t>(ids.size());
    trained_on_ = 0;
    if (!needs_training_) {
      const std::string factory = FactoryString(options_, 1);
      Reset(Configure(std::unique_ptr<faiss::Index>(faiss::index_factory(dim_, factory.c_str()))),
            factory);
    } else if (count < options_.min_train_items) {
      Reset(std::make_unique<faiss::IndexFlatL2>(dim_), "Flat");
    } else {
      const std::string factory =
          FactoryString(options_, options_.nlist > 0 ? options_.nlist : AutomaticNlist(count));
      Reset(Train(factory, points, count), factory);
    }
    ReserveForGrowth(kRetrainGrowth * std::max(count, options_.min_train_items));
    Add(ids, points);
  }

  bool persistent() const override { return true; }

  std::vector<uint8_t> Serialize() const override {
    std::vector<uint8_t> out;
    AppendValue(&out, kSnapshotFormat);
    AppendString(&out, options_.coordinates);
    AppendValue(&out, dim_);
    AppendValue(&out, trained_on_);
    AppendValue(&out, train_sample_);
    AppendValue(&out, next_label_);
    AppendValue(&out, deleted_entries_);
    AppendString(&out, factory_);
    AppendValue<uint64_t>(&out, label_of_.size());
    label_of_.ForEach([&out](int64_t id, int64_t label) {
      AppendValue(&out, id);
      AppendValue(&out, label);
    });
    faiss::VectorIOWriter writer;
    faiss::write_index(index_.get(), &writer);
    AppendBytes(&out, writer.data);
    return out;
  }

  absl::Status Deserialize(absl::Span<const uint8_t> bytes) override {
    ByteReader reader(bytes);
    uint32_t format = 0;
    int64_t dim = 0, trained_on = 0, train_sample = 0, next_label = 0, deleted = 0;
    uint64_t entries = 0;
    std::string factory, coordinates;
    if (!reader.Read(&format) || format != kSnapshotFormat || !reader.ReadString(&coordinates) ||
        coordinates != options_.coordinates || !reader.Read(&dim) || dim != dim_ ||
        !reader.Read(&trained_on) || !reader.Read(&train_sample) || !reader.Read(&next_label) ||
        !reader.Read(&deleted) || !reader.ReadString(&factory) || !reader.Read(&entries)) {
      return absl::DataLossError("candidates: the snapshot's header does not match this index");
    }
    ShardedIdMap<int64_t> label_of, id_of;
    for (uint64_t i = 0; i < entries; ++i) {
      int64_t id = 0, label = 0;
      if (!reader.Read(&id) || !reader.Read(&label)) {
        return absl::DataLossError("candidates: the snapshot's item list is cut short");
      }
      if (label < 0 || label >= next_label) {
        return absl::DataLossError("candidates: the snapshot's item list names an unknown entry");
      }
      label_of[id] = label;
      id_of[label] = id;
    }
    absl::Span<const uint8_t> faiss_bytes;
    if (!reader.ReadBytes(&faiss_bytes) || !reader.at_end()) {
      return absl::DataLossError("candidates: the snapshot's FAISS index is cut short");
    }
    std::unique_ptr<faiss::Index> index;
    try {
      faiss::VectorIOReader faiss_reader;
      faiss_reader.data.assign(faiss_bytes.begin(), faiss_bytes.end());
      index.reset(faiss::read_index(&faiss_reader));
    } catch (const std::exception& e) {  // FaissException, or bad_alloc for a size read as huge
      return absl::DataLossError(
          absl::StrCat("candidates: FAISS cannot read the snapshot: ", e.what()));
    }
    if (index->d != dim_ || index->ntotal < static_cast<int64_t>(entries)) {
      return absl::DataLossError("candidates: the snapshot's FAISS index does not match its items");
    }
    if (const std::string problem = StructureProblem(*index); !problem.empty()) {
      return absl::DataLossError(
          absl::StrCat("candidates: the snapshot's FAISS index is inconsistent: ", problem));
    }
    Reset(Configure(std::move(index)), std::move(factory));
    label_of_ = std::move(label_of);
    id_of_ = std::move(id_of);
    trained_on_ = trained_on;
    train_sample_ = train_sample;
    next_label_ = next_label;
    deleted_entries_ = deleted;
    ReserveForGrowth(kRetrainGrowth * std::max(trained_on_, options_.min_train_items));
    return absl::OkStatus();
  }

  std::string Describe() const override {
    if (needs_training_ && trained_on_ == 0) {
      return absl::StrCat(options_.kind, ": exact L2 scan on ", options_.coordinates,
                          " coordinates over ", label_of_.size(), " items until ",
                          options_.min_train_items, " are there to train on");
    }
    std::string text = absl::StrCat(options_.kind, ": ", factory_, " on ", options_.coordinates,
                                    " coordinates, ", label_of_.size(), " items");
    if (faiss::ivflib::try_extract_index_ivf(index_.get()) != nullptr) {
      absl::StrAppend(&text, ", trained on ", train_sample_, " of ", trained_on_);
    }
    if (deleted_entries_ > 0) absl::StrAppend(&text, ", ", deleted_entries_, " deleted entries");
    return text;
  }

  int64_t memory_bytes() const override {
    int64_t bytes = label_of_.memory_bytes() + id_of_.memory_bytes();
    if (const faiss::IndexIVF* ivf = faiss::ivflib::try_extract_index_ivf(index_.get())) {
      bytes += static_cast<int64_t>(ivf->nlist * ivf->d * sizeof(float));
      for (size_t list = 0; list < ivf->nlist; ++list) {
        bytes += static_cast<int64_t>(ivf->invlists->list_size(list) *
                                      (ivf->code_size + sizeof(faiss::Index::idx_t)));
      }
      bytes += static_cast<int64_t>(ivf->direct_map.hashtable.size() * 4 * sizeof(int64_t));
    } else if (const auto* hnsw = dynamic_cast<const faiss::IndexHNSW*>(index_.get())) {
      bytes += index_->ntotal * dim_ * static_cast<int64_t>(sizeof(float)) +
               static_cast<int64_t>(hnsw->hnsw.neighbors.size() * sizeof(int32_t));
    } else {
      bytes += index_->ntotal * dim_ * static_cast<int64_t>(sizeof(float));
    }
    return bytes;
  }

 private:
  // Applies the build settings, the removal mode and (for an index wrapped in a transform, which
  // takes no per-search effort) the options' search settings to a fresh or read index.
  std::unique_ptr<faiss::Index> Configure(std::unique_ptr<faiss::Index> index) {
    if (faiss::IndexIVF* ivf = faiss::ivflib::try_extract_index_ivf(index.get())) {
      ivf->nprobe = static_cast<size_t>(std::min<int64_t>(options_.nprobe, ivf->nlist));
      if (ivf->direct_map.type != faiss::DirectMap::Hashtable) {
        ivf->set_direct_map_type(faiss::DirectMap::Hashtable);
      }
    }
    if (auto* hnsw = dynamic_cast<faiss::IndexHNSW*>(index.get())) {
      hnsw->hnsw.efConstruction = static_cast<int>(options_.ef_construction);
      hnsw->hnsw.efSearch = static_cast<int>(options_.ef_search);
    }
    return index;
  }

  // An empty index built from `factory`, trained on a sample of the `count` rows of `points`.
  std::unique_ptr<faiss::Index> Train(const std::string& factory, absl::Span<const float> points,
                                      int64_t count) {
    std::unique_ptr<faiss::Index> index(faiss::index_factory(dim_, factory.c_str()));
    const faiss::IndexIVF* ivf = faiss::ivflib::try_extract_index_ivf(index.get());
    const int64_t nlist = ivf != nullptr ? static_cast<int64_t>(ivf->nlist) : 1;
    const int64_t sample =
        std::min(count, std::max(options_.min_train_items, TrainingSampleSize(nlist)));
    std::vector<int64_t> rows(count);
    std::iota(rows.begin(), rows.end(), 0);
    std::mt19937_64 rng(options_.train_seed);
    for (int64_t i = 0; i < sample; ++i) {
      std::swap(rows[i], rows[std::uniform_int_distribution<int64_t>(i, count - 1)(rng)]);
    }
    std::vector<float> chosen(sample * dim_);
    for (int64_t i = 0; i < sample; ++i) {
      std::copy_n(points.data() + rows[i] * dim_, dim_, chosen.data() + i * dim_);
    }
    index->train(sample, StageRows(chosen, dim_, c_, tangent_space_).data());
    trained_on_ = count;
    train_sample_ = sample;
    return Configure(std::move(index));
  }

  // Room for `items` entries in the id maps (and an IVF's direct map), so that the writes until
  // the next rebuild (which runs beside this stage) do not rehash them under the index's lock.
  // (An IVF's lists are grown beside searches instead: PrepareAdd.)
  void ReserveForGrowth(int64_t items) {
    label_of_.Reserve(items);
    id_of_.Reserve(items);
    if (faiss::IndexIVF* ivf = faiss::ivflib::try_extract_index_ivf(index_.get())) {
      ivf->direct_map.hashtable.reserve(static_cast<size_t>(items));
    }
  }

  // Starts over with an empty `index` built from `factory`.
  void Reset(std::unique_ptr<faiss::Index> index, std::string factory) {
    index_ = std::move(index);
    factory_ = std::move(factory);
    removes_in_place_ = faiss::ivflib::try_extract_index_ivf(index_.get()) != nullptr;
    label_of_.Clear();
    id_of_.Clear();
    next_label_ = 0;
    deleted_entries_ = 0;
  }

  const CandidateStageOptions options_;
  const int64_t dim_;
  const double c_;
  const bool tangent_space_;  // else raw Poincaré coordinates
  bool needs_training_ = false;
  std::unique_ptr<faiss::Index> index_;  // an exact L2 scan until there is enough to train on
  std::string factory_;                  // the FAISS factory string index_ was built from
  bool removes_in_place_ = false;        // IVF: entries leave the lists; else marked deleted
  int64_t trained_on_ = 0;               // items when trained (0: not trained yet)
  int64_t train_sample_ = 0;             // items in the training sample
  ShardedIdMap<int64_t> label_of_;  // item id -> FAISS label
  ShardedIdMap<int64_t> id_of_;     // FAISS label -> item id
  int64_t next_label_ = 0;
  int64_t deleted_entries_ = 0;  // entries still in index_ whose items are gone
};

}  // namespace

int64_t AutomaticNlist(int64_t items) {
  return std::clamp<int64_t>(std::llround(4 * std::sqrt(static_cast<double>(items))), 1,
                             std::max<int64_t>(1, items / TrainingSampleSize(1)));
}

int64_t TrainingSampleSize(int64_t nlist) { return 50 * nlist; }

std::unique_ptr<CandidateStage> MakeApproximateStage(const CandidateStageOptions& options,
                                                     int64_t dim, double c) {
  return std::make_unique<ApproximateStage>(options, dim, c);
}

absl::StatusOr<std::unique_ptr<CandidateStage>> MakeCandidateStage(
    const CandidateStageOptions& options, int64_t dim, double c) {
  const auto at_least = [](const char* field, int64_t value, int64_t least) {
    return value >= least ? absl::OkStatus()
                          : absl::InvalidArgumentError(absl::StrCat(
                                "candidates.", field, ": must be >= ", least, ", got ", value));
  };
  for (const absl::Status& status :
       {at_least("nlist", options.nlist, 0), at_least("nprobe", options.nprobe, 1),
        at_least("hnsw_m", options.hnsw_m, 2),
        at_least("ef_construction", options.ef_construction, 1),
        at_least("ef_search", options.ef_search, 1),
        at_least("min_train_items", options.min_train_items, 1)}) {
    if (!status.ok()) return status;
  }
  if (options.coordinates != "poincare" && options.coordinates != "tangent") {
    return absl::InvalidArgumentError(absl::StrCat(
        "candidates.coordinates: must be poincare or tangent, got \"", options.coordinates, "\""));
  }
  if (options.kind == "exact") return MakeLorentzScanStage(dim, c);
  if (options.kind.empty()) {
    return absl::InvalidArgumentError(
        "candidates.kind: empty; use exact, ivf-flat, ivf-sq8, hnsw or a FAISS factory string");
  }
  try {
    std::unique_ptr<faiss::Index> probe(
        faiss::index_factory(dim, FactoryString(options, 1).c_str()));
  } catch (const faiss::FaissException& e) {
    return absl::InvalidArgumentError(absl::StrCat(
        "candidates.kind: \"", options.kind,
        "\" is neither exact, ivf-flat, ivf-sq8, hnsw nor a FAISS factory string FAISS accepts (",
        e.what(), ")"));
  }
  return MakeApproximateStage(options, dim, c);
}

}  // namespace hier::index
