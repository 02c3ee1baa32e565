#include "trainer/train/train_config.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <variant>

#include "trainer/data/dataset_layout.h"
#include "trainer/data/image_set.h"
#include "trainer/io/json_integer.h"
#include "trainer/model/embedding_net.h"

namespace hier::train {
namespace {

using Json = nlohmann::json;

// Images per step and process: far beyond any memory, and small enough that products stay in range.
constexpr int64_t kMaxBatchSize = int64_t{1} << 20;
using Member =
    std::variant<std::string TrainConfig::*, int64_t TrainConfig::*, double TrainConfig::*,
                 bool TrainConfig::*, uint64_t TrainConfig::*, std::vector<int64_t> TrainConfig::*,
                 std::vector<double> TrainConfig::*>;

struct Field {
  const char* name;  // snake_case: the JSON key; the flag is --name with '-' or '_'
  Member member;
  const char* help;
};

// The one schema: flags, the JSON file, config.json and --help all read this table.
const std::vector<Field>& Schema() {
  using C = TrainConfig;
  static const std::vector<Field> fields = {
      {"dataset", &C::dataset, "fashion-mnist, or a layout: folder, list, cub, cars, sop, inshop"},
      {"protocol", &C::protocol,
       "fashion-mnist: closed (all classes) or disjoint (train on 5, retrieve among the other 5)"},
      {"data_dir", &C::data_dir, "folder with the data set's files (list: the list file)"},
      {"run_dir", &C::run_dir, "run directory (default runs/<UTC time>-<model>-<loss>)"},
      {"resume", &C::resume, "continue from the run directory's latest checkpoint"},
      {"train_limit", &C::train_limit, "use the first N training images only (0: all)"},
      {"test_limit", &C::test_limit, "evaluate on the first N test images only (0: all)"},
      {"augment", &C::augment,
       "training views: shifts of up to 2 px (28x28) or random resized crops (files), flips"},
      {"prefetch", &C::prefetch, "batches prepared ahead on a background thread"},
      {"decode_threads", &C::decode_threads, "image files decoded in parallel"},
      {"strict", &C::strict, "fail on a missing or corrupt image file instead of skipping it"},
      {"image_size", &C::image_size, "file layouts: model input size (random/centre crop)"},
      {"resize", &C::resize, "file layouts: evaluation resizes the shorter side to this"},
      {"crop_scale_min", &C::crop_scale_min, "random resized crop's smallest area (ViT: 0.2)"},
      {"mean", &C::mean, "per-channel mean (empty: data set's or ImageNet's)"},
      {"std", &C::std, "per-channel std (empty: data set's or ImageNet's)"},
      {"model", &C::model, "backbone: small-cnn, resnet18, resnet50 or torchscript"},
      {"pretrained", &C::pretrained, "resnet18/50: TorchScript file to copy weights from"},
      {"backbone_file", &C::backbone_file, "torchscript: the scripted backbone file"},
      {"bn_freeze", &C::bn_freeze, "keep the backbone's BatchNorm layers in eval mode"},
      {"emb", &C::emb, "embedding dimension"},
      {"c", &C::c, "curvature of the Poincare ball"},
      {"clip_r", &C::clip_r, "feature norm clip before the exponential map"},
      {"loss", &C::loss, "metric loss: PA, MS or SupCon"},
      {"lambda1", &C::lambda1, "weight of the metric loss"},
      {"lambda2", &C::lambda2, "weight of HIER (0: no HIER)"},
      {"num_proxies", &C::num_proxies, "hierarchical proxies"},
      {"topk", &C::topk, "HIER reciprocal neighbourhood size"},
      {"margin", &C::margin, "HIER margin"},
      {"tau", &C::tau, "HIER LCA softmax temperature"},
      {"supcon_tau", &C::supcon_tau, "SupCon temperature"},
      {"batch_size", &C::batch_size, "images per step and process"},
      {"ipc", &C::ipc, "images per class in a batch"},
      {"epochs", &C::epochs, "training epochs"},
      {"steps_per_epoch", &C::steps_per_epoch, "steps per epoch (0: training images / batch)"},
      {"optimizer", &C::optimizer, "adamw or sgd"},
      {"lr", &C::lr, "learning rate at a global batch of 180 (scaled linearly)"},
      {"momentum", &C::momentum, "SGD momentum"},
      {"adam_eps", &C::adam_eps, "AdamW epsilon (the reference's fp16 runs: 1e-4)"},
      {"weight_decay", &C::weight_decay, "weight decay on every group"},
      {"backbone_lr_scale", &C::backbone_lr_scale, "lr multiplier of the backbone"},
      {"fc_lr_scale", &C::fc_lr_scale, "lr multiplier of the head"},
      {"hier_proxy_lr_scale", &C::hier_proxy_lr_scale, "lr multiplier of the HIER proxies"},
      {"pa_proxy_lr_scale", &C::pa_proxy_lr_scale, "lr multiplier of the Proxy-Anchor proxies"},
      {"warmup_epochs", &C::warmup_epochs, "epochs with the backbone frozen (lr 0)"},
      {"lr_decay", &C::lr_decay, "none, step or cosine"},
      {"lr_decay_epochs", &C::lr_decay_epochs, "step decay period in epochs"},
      {"lr_decay_gamma", &C::lr_decay_gamma, "step decay factor"},
      {"min_lr_scale", &C::min_lr_scale, "cosine decay floor"},
      {"clip_grad", &C::clip_grad, "clamp gradient elements to [-v, v] (0: off)"},
      {"seed", &C::seed, "seed of initialisation, batches, augmentation and HIER's draws"},
      {"eval_every", &C::eval_every, "epochs between evaluations"},
      {"recall_k", &C::recall_k, "Recall@K list, e.g. 1,2,4,8 (empty: the data set's)"},
      {"keep_checkpoints", &C::keep_checkpoints, "latest checkpoints kept"},
      {"log_every", &C::log_every, "steps between metrics lines"},
      {"threads", &C::threads, "intra-op threads (0: LibTorch's default)"},
      {"device", &C::device, "auto, cpu or cuda"},
      {"nproc", &C::nproc, "data-parallel processes on this machine"},
      {"dist_backend", &C::dist_backend, "auto, gloo or nccl"},
      {"dist_timeout", &C::dist_timeout, "seconds a collective waits for the other ranks"},
      {"groups", &C::groups,
       "class hierarchy (JSON tree of groups): hierarchy-aware metrics and the discovery score"},
  };
  return fields;
}

const Field* FindField(std::string name) {
  std::replace(name.begin(), name.end(), '-', '_');
  for (const Field& field : Schema()) {
    if (name == field.name) return &field;
  }
  return nullptr;
}

std::string FlagName(const char* name) {
  std::string flag = std::string("--") + name;
  std::replace(flag.begin(), flag.end(), '_', '-');
  return flag;
}

[[noreturn]] void Fail(const char* name, const std::string& problem) {
  throw ConfigError(FlagName(name) + ": " + problem);
}

template <typename T>
T ParseNumber(const Field& field, const std::string& text) {
  std::istringstream in(text);
  T value{};
  in >> value;
  if (in.fail() || !in.eof() || text.empty()) {
    Fail(field.name, "expected a number, got '" + text + "'");
  }
  if constexpr (std::is_unsigned_v<T>) {
    if (text.find('-') != std::string::npos) Fail(field.name, "must be >= 0, got " + text);
  }
  return value;
}

bool ParseBool(const Field& field, const std::string& text) {
  if (text == "true" || text == "1" || text == "yes") return true;
  if (text == "false" || text == "0" || text == "no") return false;
  Fail(field.name, "expected true or false, got '" + text + "'");
}

template <typename T>
std::vector<T> ParseList(const Field& field, const std::string& text) {
  std::vector<T> values;
  std::istringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    values.push_back(ParseNumber<T>(field, item));
  }
  return values;
}

void SetFromText(const Field& field, const std::string& text, TrainConfig& config) {
  std::visit(
      [&](auto member) {
        using T = std::decay_t<decltype(config.*member)>;
        if constexpr (std::is_same_v<T, std::string>) {
          config.*member = text;
        } else if constexpr (std::is_same_v<T, bool>) {
          config.*member = ParseBool(field, text);
        } else if constexpr (std::is_same_v<T, std::vector<int64_t>> ||
                             std::is_same_v<T, std::vector<double>>) {
          config.*member = ParseList<typename T::value_type>(field, text);
        } else {
          config.*member = ParseNumber<T>(field, text);
        }
      },
      field.member);
}

// Whether `value` is a T without conversion: an integer in T's range for an integer, each element
// for a list (a float is never made an integer: out of range it has no conversion); get<T> checks
// the other types.
template <typename T>
bool HoldsExactly(const Json& value) {
  if constexpr (std::is_same_v<T, std::vector<int64_t>> || std::is_same_v<T, std::vector<double>>) {
    return value.is_array() &&
           std::all_of(value.begin(), value.end(), HoldsExactly<typename T::value_type>);
  } else if constexpr (!std::is_integral_v<T> || std::is_same_v<T, bool>) {
    return true;
  } else if constexpr (std::is_unsigned_v<T>) {
    return value.is_number_unsigned();
  } else {
    static_assert(std::is_same_v<T, int64_t>);
    return io::JsonInteger(value).has_value();
  }
}

void SetFromJson(const Field& field, const Json& value, TrainConfig& config,
                 const std::string& origin) {
  std::visit(
      [&](auto member) {
        using T = std::decay_t<decltype(config.*member)>;
        try {
          if (!HoldsExactly<T>(value)) throw std::invalid_argument("not a value of its type");
          config.*member = value.get<T>();
        } catch (const std::exception&) {
          Fail(field.name, "in " + origin + ": wrong type or value " + value.dump());
        }
      },
      field.member);
}

Json FieldToJson(const Field& field, const TrainConfig& config) {
  return std::visit([&](auto member) { return Json(config.*member); }, field.member);
}

std::string ReadText(const std::string& path, const char* flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) Fail(flag, "cannot read " + path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

template <typename T>
void Require(bool ok, const char* name, const std::string& rule, T got) {
  if (ok) return;
  std::ostringstream message;
  message << rule << ", got " << got;
  Fail(name, message.str());
}

void CheckOneOf(const char* name, const std::string& value,
                const std::vector<std::string>& allowed) {
  if (std::find(allowed.begin(), allowed.end(), value) != allowed.end()) return;
  std::string list;
  for (const std::string& a : allowed) list += (list.empty() ? "" : ", ") + a;
  Fail(name, "must be one of " + list + ", got '" + value + "'");
}

}  // namespace

void ApplyJson(const std::string& json_text, TrainConfig& config, const std::string& origin) {
  Json json;
  try {
    json = Json::parse(json_text);
  } catch (const Json::exception& e) {  // parse_error, or out_of_range for a number like 1e999
    throw ConfigError("--config: " + origin + " is not valid JSON: " + e.what());
  }
  if (!json.is_object()) throw ConfigError("--config: " + origin + " must hold a JSON object");
  for (const auto& [key, value] : json.items()) {
    const Field* field = FindField(key);
    if (field == nullptr) throw ConfigError("--config: unknown key '" + key + "' in " + origin);
    SetFromJson(*field, value, config, origin);
  }
}

void ApplyFlags(const std::vector<std::string>& args, TrainConfig& config) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg.rfind("--", 0) != 0) throw ConfigError("unexpected argument '" + arg + "'");
    std::string name = arg.substr(2);
    std::string value;
    const size_t eq = name.find('=');
    const bool inline_value = eq != std::string::npos;
    if (inline_value) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    const Field* field = FindField(name);
    const bool is_config = name == "config";
    if (field == nullptr && !is_config) throw ConfigError("unknown flag --" + name);
    const bool is_bool =
        field != nullptr && std::holds_alternative<bool TrainConfig::*>(field->member);
    if (!inline_value) {
      // A boolean flag alone means true; every other flag takes the next argument.
      if (is_bool && (i + 1 == args.size() || args[i + 1].rfind("--", 0) == 0)) {
        value = "true";
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        throw ConfigError("--" + name + ": missing value");
      }
    }
    if (is_config) {
      ApplyJson(ReadText(value, "config"), config, value);
    } else {
      SetFromText(*field, value, config);
    }
  }
}

namespace {

// The data set's files must be where --data-dir says, checked before any work starts.
void ValidateData(const TrainConfig& c) {
  std::vector<std::string> datasets = data::FileLayouts();
  datasets.insert(datasets.begin(), "fashion-mnist");
  CheckOneOf("dataset", c.dataset, datasets);
  CheckOneOf("protocol", c.protocol, {"closed", "disjoint"});
  if (c.protocol == "disjoint" && c.dataset != "fashion-mnist") {
    Fail("protocol",
         "disjoint is built in for fashion-mnist only; a list file's split column "
         "sets the classes of each side for " +
             c.dataset);
  }
  if (c.dataset != "fashion-mnist") {
    const std::string missing = data::MissingLayoutPart(c.dataset, c.data_dir);
    if (!missing.empty()) Fail("data_dir", "the " + c.dataset + " layout needs " + missing);
    return;
  }
  try {
    data::FashionMnistFiles(c.data_dir, data::Split::kTrain);
    data::FashionMnistFiles(c.data_dir, data::Split::kTest);
  } catch (const c10::Error& e) {
    Fail("data_dir", e.what_without_backtrace());
  }
}

void RequireFile(const char* name, const std::string& path) {
  if (!std::ifstream(path)) Fail(name, "cannot read " + path);
}

void ValidateModelInput(const TrainConfig& c) {
  CheckOneOf("model", c.model, model::KnownArchitectures());
  if (c.model == "torchscript") {
    if (c.backbone_file.empty()) Fail("backbone_file", "required by --model torchscript");
    RequireFile("backbone_file", c.backbone_file);
  } else if (!c.backbone_file.empty()) {
    Fail("backbone_file", "only used with --model torchscript, not " + c.model);
  }
  if (!c.pretrained.empty()) {
    if (c.model != "resnet18" && c.model != "resnet50") {
      Fail("pretrained",
           "only for resnet18 and resnet50 (a torchscript backbone is its own "
           "weights), not " +
               c.model);
    }
    RequireFile("pretrained", c.pretrained);
  }
  const auto channels = static_cast<size_t>(InputChannels(c));
  for (const auto& [name, values] :
       {std::pair<const char*, const std::vector<double>*>{"mean", &c.mean}, {"std", &c.std}}) {
    Require(values->empty() || values->size() == channels, name,
            "needs " + std::to_string(channels) + " values (one per input channel) or none",
            values->size());
  }
  for (double s : c.std) Require(std::isfinite(s) && s > 0, "std", "every value must be > 0", s);
  for (double m : c.mean) Require(std::isfinite(m), "mean", "every value must be finite", m);
  Require(c.image_size >= 16 && c.image_size <= 4096, "image_size", "must be in [16, 4096]",
          c.image_size);
  Require(c.resize >= c.image_size && c.resize <= 8192, "resize", "must be in [--image-size, 8192]",
          c.resize);
  Require(c.crop_scale_min > 0 && c.crop_scale_min <= 1, "crop_scale_min", "must be in (0, 1]",
          c.crop_scale_min);
  Require(c.decode_threads >= 1 && c.decode_threads <= 256, "decode_threads", "must be in [1, 256]",
          c.decode_threads);
}

}  // namespace

int64_t InputChannels(const TrainConfig& config) {
  return config.dataset == "fashion-mnist" && config.model == "small-cnn" ? 1 : 3;
}

std::vector<int64_t> RecallKs(const TrainConfig& config) {
  return config.recall_k.empty() ? data::ProtocolRecallK(config.dataset) : config.recall_k;
}

void Validate(const TrainConfig& c) {
  ValidateData(c);
  ValidateModelInput(c);
  Require(c.train_limit >= 0, "train_limit", "must be >= 0", c.train_limit);
  Require(c.test_limit == 0 || c.test_limit >= 2, "test_limit", "must be 0 (all) or >= 2",
          c.test_limit);
  Require(c.prefetch >= 1, "prefetch", "must be >= 1", c.prefetch);
  Require(c.emb > 0, "emb", "must be > 0", c.emb);
  Require(std::isfinite(c.c) && c.c > 0, "c", "must be > 0", c.c);
  Require(std::isfinite(c.clip_r) && c.clip_r > 0, "clip_r", "must be > 0", c.clip_r);
  CheckOneOf("loss", c.loss, {"PA", "MS", "SupCon"});
  Require(c.lambda1 >= 0, "lambda1", "must be >= 0", c.lambda1);
  Require(c.lambda2 >= 0, "lambda2", "must be >= 0", c.lambda2);
  Require(c.lambda1 > 0 || c.lambda2 > 0, "lambda1", "and --lambda2 cannot both be 0", c.lambda1);
  Require(c.num_proxies >= 2, "num_proxies", "must be >= 2", c.num_proxies);
  Require(c.nproc >= 1 && c.nproc <= 64, "nproc", "must be in [1, 64]", c.nproc);
  // Bounded first, so that the global batch (x nproc) and what is computed from it cannot overflow.
  Require(c.batch_size >= 2 && c.batch_size <= kMaxBatchSize, "batch_size",
          "must be in [2, " + std::to_string(kMaxBatchSize) + "]", c.batch_size);
  // HIER's neighbourhoods are drawn from the global batch, all processes' images together.
  Require(c.topk >= 2 && c.topk <= c.batch_size * c.nproc, "topk",
          "must be in [2, batch size x nproc]", c.topk);
  Require(c.topk <= c.num_proxies, "topk", "must be <= --num-proxies", c.topk);
  Require(c.margin >= 0, "margin", "must be >= 0", c.margin);
  Require(c.tau > 0, "tau", "must be > 0", c.tau);
  Require(c.supcon_tau > 0, "supcon_tau", "must be > 0", c.supcon_tau);
  Require(c.ipc >= 1, "ipc", "must be >= 1", c.ipc);
  Require(c.ipc <= c.batch_size, "ipc",
          "must be <= --batch-size (" + std::to_string(c.batch_size) + ")", c.ipc);
  Require(c.batch_size % c.ipc == 0, "batch_size",
          "must be a multiple of --ipc (" + std::to_string(c.ipc) + ")", c.batch_size);
  Require(c.loss != "SupCon" || c.ipc >= 2, "ipc", "must be >= 2 for SupCon", c.ipc);
  Require(c.epochs >= 1, "epochs", "must be >= 1", c.epochs);
  Require(c.steps_per_epoch >= 0, "steps_per_epoch", "must be >= 0", c.steps_per_epoch);
  CheckOneOf("optimizer", c.optimizer, {"adamw", "sgd"});
  Require(std::isfinite(c.lr) && c.lr > 0, "lr", "must be > 0", c.lr);
  Require(c.momentum >= 0 && c.momentum < 1, "momentum", "must be in [0, 1)", c.momentum);
  Require(std::isfinite(c.adam_eps) && c.adam_eps > 0, "adam_eps", "must be > 0", c.adam_eps);
  Require(c.weight_decay >= 0, "weight_decay", "must be >= 0", c.weight_decay);
  Require(c.backbone_lr_scale >= 0, "backbone_lr_scale", "must be >= 0", c.backbone_lr_scale);
  Require(c.fc_lr_scale >= 0, "fc_lr_scale", "must be >= 0", c.fc_lr_scale);
  Require(c.hier_proxy_lr_scale >= 0, "hier_proxy_lr_scale", "must be >= 0", c.hier_proxy_lr_scale);
  Require(c.pa_proxy_lr_scale >= 0, "pa_proxy_lr_scale", "must be >= 0", c.pa_proxy_lr_scale);
  Require(c.warmup_epochs >= 0 && c.warmup_epochs < c.epochs, "warmup_epochs",
          "must be in [0, --epochs)", c.warmup_epochs);
  CheckOneOf("lr_decay", c.lr_decay, {"none", "step", "cosine"});
  Require(c.lr_decay_epochs >= 1, "lr_decay_epochs", "must be >= 1", c.lr_decay_epochs);
  Require(c.lr_decay_gamma > 0 && c.lr_decay_gamma <= 1, "lr_decay_gamma", "must be in (0, 1]",
          c.lr_decay_gamma);
  Require(c.min_lr_scale >= 0 && c.min_lr_scale <= 1, "min_lr_scale", "must be in [0, 1]",
          c.min_lr_scale);
  Require(c.clip_grad >= 0, "clip_grad", "must be >= 0", c.clip_grad);
  Require(c.eval_every >= 1, "eval_every", "must be >= 1", c.eval_every);
  for (int64_t k : c.recall_k) Require(k >= 1, "recall_k", "every K must be >= 1", k);
  Require(c.keep_checkpoints >= 1, "keep_checkpoints", "must be >= 1", c.keep_checkpoints);
  Require(c.log_every >= 1, "log_every", "must be >= 1", c.log_every);
  Require(c.threads >= 0, "threads", "must be >= 0", c.threads);
  CheckOneOf("device", c.device, {"auto", "cpu", "cuda"});
  CheckOneOf("dist_backend", c.dist_backend, {"auto", "gloo", "nccl"});
  Require(c.dist_timeout >= 1, "dist_timeout", "must be >= 1 second", c.dist_timeout);
  if (!c.groups.empty()) {
    std::ifstream in(c.groups);
    if (!in) Fail("groups", "cannot read " + c.groups);
  }
}

std::string ToJson(const TrainConfig& config) {
  Json json = Json::object();
  for (const Field& field : Schema()) json[field.name] = FieldToJson(field, config);
  return json.dump(2);
}

std::string ConfigHelp() {
  const TrainConfig defaults;
  std::ostringstream out;
  for (const Field& field : Schema()) {
    std::string flag = FlagName(field.name);
    flag.resize(std::max<size_t>(flag.size(), 24), ' ');
    out << "  " << flag << field.help << " (default " << FieldToJson(field, defaults).dump()
        << ")\n";
  }
  return out.str();
}

}  // namespace hier::train
