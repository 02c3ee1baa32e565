#include "trainer/data/shape_world.h"

#include <c10/util/Exception.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "trainer/core/fast_math.h"
#include "trainer/io/atomic_file.h"
#include "trainer/io/png_writer.h"

namespace hier::data {
namespace {

namespace fs = std::filesystem;

constexpr double kPi = 3.14159265358979323846;
constexpr int kColours = 8;
constexpr int kTextures = 2;
constexpr int kSubsamples = 3;         // per axis and pixel
constexpr double kContrast = 0.28;     // least gray-level gap between background and shape
constexpr double kMaxGradient = 0.15;  // background change across the frame
constexpr char kImageDirName[] = "images";
constexpr char kListName[] = "shapes.tsv";
constexpr char kTreeName[] = "class_tree.json";
constexpr char kStagingPrefix[] = "images-";  // after io::kTempFilePrefix

struct Point {
  double x, y;
};
using Polygon = std::vector<Point>;

// A part of a shape in unit coordinates: a polygon or, when that is empty, an elliptic band with
// semi-axes rx, ry whose inner `hole` fraction is cut out.
struct Part {
  Polygon polygon;
  double rx = 0, ry = 0, hole = 0;

  bool Contains(Point p) const {
    if (polygon.empty()) {
      const double r = (p.x / rx) * (p.x / rx) + (p.y / ry) * (p.y / ry);
      return r <= 1 && r >= hole * hole;
    }
    bool inside = false;  // crossing number
    for (size_t i = 0, j = polygon.size() - 1; i < polygon.size(); j = i++) {
      const Point& a = polygon[i];
      const Point& b = polygon[j];
      if ((a.y > p.y) != (b.y > p.y) && p.x < a.x + (p.y - a.y) * (b.x - a.x) / (b.y - a.y)) {
        inside = !inside;
      }
    }
    return inside;
  }
};

// A shape of the tree: the union of its parts, all inside the unit disc.
struct Shape {
  const char* family;
  const char* name;
  std::vector<Part> parts;

  bool Contains(Point p) const {
    if (p.x * p.x + p.y * p.y > 1) return false;
    return std::any_of(parts.begin(), parts.end(),
                       [p](const Part& part) { return part.Contains(p); });
  }
};

Part Ellipse(double rx, double ry, double hole = 0) { return Part{{}, rx, ry, hole}; }

// The union of the polygons, one part each.
std::vector<Part> Polygons(const std::vector<Polygon>& polygons) {
  std::vector<Part> parts;
  for (const Polygon& polygon : polygons) parts.push_back(Part{polygon});
  return parts;
}

Polygon Rectangle(double x0, double y0, double x1, double y1) {
  return {{x0, y0}, {x1, y0}, {x1, y1}, {x0, y1}};
}

Polygon Rotated(Polygon polygon, double degrees) {
  const double c = std::cos(degrees * kPi / 180), s = std::sin(degrees * kPi / 180);
  for (Point& p : polygon) p = {c * p.x - s * p.y, s * p.x + c * p.y};
  return polygon;
}

// `points` tips at radius `outer` with notches at radius `inner` between them, the first tip
// straight up.
Polygon Star(int points, double outer, double inner) {
  Polygon polygon;
  for (int k = 0; k < 2 * points; ++k) {
    const double radius = k % 2 == 0 ? outer : inner;
    const double angle = kPi / 2 + k * kPi / points;
    polygon.push_back({radius * std::cos(angle), radius * std::sin(angle)});
  }
  return polygon;
}

// A star whose notches lie on the edge midpoints: the regular polygon, a corner straight up.
Polygon RegularPolygon(int corners, double radius) {
  return Star(corners, radius, radius * std::cos(kPi / corners));
}

// A half disc with its centroid (4r / 3pi above the flat side) at the origin.
Polygon HalfDisc(double radius) {
  constexpr int kArcPoints = 24;
  const double shift = 4 * radius / (3 * kPi);
  Polygon polygon;
  for (int k = 0; k <= kArcPoints; ++k) {
    const double angle = kPi * k / kArcPoints;
    polygon.push_back({radius * std::cos(angle), radius * std::sin(angle) - shift});
  }
  return polygon;
}

// The 16 shapes, 4 per family, in label order; every one mirror-symmetric up to rotation.
const std::vector<Shape>& Shapes() {
  static const std::vector<Shape> shapes = [] {
    const Polygon arm = Rectangle(-0.05, -0.2, 0.92, 0.2);
    const Polygon line = Rectangle(-0.92, -0.12, 0.92, 0.12);
    const double a = 0.62, w = 0.38, shift = 0.15;  // the L's arm length, width, centring
    return std::vector<Shape>{
        {"round", "disc", {Ellipse(0.85, 0.85)}},
        {"round", "ring", {Ellipse(0.9, 0.9, 0.55)}},
        {"round", "ellipse", {Ellipse(0.95, 0.5)}},
        {"round", "half-disc", Polygons({HalfDisc(0.95)})},
        {"angular", "triangle", Polygons({RegularPolygon(3, 1.0)})},
        {"angular", "square", Polygons({RegularPolygon(4, 0.95)})},
        {"angular", "pentagon", Polygons({RegularPolygon(5, 0.92)})},
        {"angular", "hexagon", Polygons({RegularPolygon(6, 0.92)})},
        {"crossed", "plus",
         Polygons({Rectangle(-0.9, -0.26, 0.9, 0.26), Rectangle(-0.26, -0.9, 0.26, 0.9)})},
        {"crossed", "y-cross", Polygons({Rotated(arm, 90), Rotated(arm, 210), Rotated(arm, 330)})},
        {"crossed", "asterisk", Polygons({line, Rotated(line, 60), Rotated(line, 120)})},
        {"crossed", "star", Polygons({Star(5, 0.95, 0.42)})},
        {"bars", "bar", Polygons({Rectangle(-0.95, -0.28, 0.95, 0.28)})},
        {"bars", "l-shape",
         Polygons({{{-a + shift, -a + shift},
                    {a + shift, -a + shift},
                    {a + shift, -a + w + shift},
                    {-a + w + shift, -a + w + shift},
                    {-a + w + shift, a + shift},
                    {-a + shift, a + shift}}})},
        {"bars", "t-shape",
         Polygons({Rectangle(-0.75, 0.25, 0.75, 0.62), Rectangle(-0.2, -0.9, 0.2, 0.25)})},
        {"bars", "arrow",
         Polygons({Rectangle(-0.92, -0.15, 0.2, 0.15), {{0.1, -0.5}, {0.95, 0}, {0.1, 0.5}}})},
    };
  }();
  return shapes;
}

struct Colour {
  const char* name;
  double hue;  // degrees
};
constexpr std::array<Colour, kColours> kColourTable = {{{"red", 0},
                                                        {"orange", 30},
                                                        {"yellow", 55},
                                                        {"green", 120},
                                                        {"cyan", 180},
                                                        {"blue", 225},
                                                        {"purple", 275},
                                                        {"magenta", 315}}};
constexpr std::array<const char*, kTextures> kTextureNames = {"solid", "striped"};

struct Rgb {
  double r = 0, g = 0, b = 0;
};

Rgb FromHsv(double hue, double saturation, double value) {
  const double h = std::fmod(hue + 360, 360) / 60;
  const int sector = static_cast<int>(h) % 6;
  const double f = h - std::floor(h);
  const double p = value * (1 - saturation);
  const double q = value * (1 - saturation * f);
  const double t = value * (1 - saturation * (1 - f));
  switch (sector) {
    case 0:
      return {value, t, p};
    case 1:
      return {q, value, p};
    case 2:
      return {p, value, t};
    case 3:
      return {p, q, value};
    case 4:
      return {t, p, value};
    default:
      return {value, p, q};
  }
}

double Luminance(const Rgb& c) { return 0.299 * c.r + 0.587 * c.g + 0.114 * c.b; }

// A gray level uniform over [0.08, 0.92] less the band within kContrast of `avoid`.
double BackgroundGray(double avoid, core::SplitMix64& rng) {
  constexpr double kLow = 0.08, kHigh = 0.92;
  const double gap_low = std::clamp(avoid - kContrast, kLow, kHigh);
  const double gap_high = std::clamp(avoid + kContrast, kLow, kHigh);
  const double below = gap_low - kLow;
  const double u = rng.Uniform(0, below + (kHigh - gap_high));
  return u < below ? kLow + u : gap_high + (u - below);
}

// Everything drawn for one image: where the shape lies, its colours, the background and noise.
struct Scene {
  double radius, cx, cy, cos_angle, sin_angle;  // the shape's unit disc in pixels
  Rgb colour, stripe_colour;
  double background, gradient_x, gradient_y;  // gray at the frame centre, change per pixel
  double stripe_x, stripe_y, stripe_phase;    // periods per pixel along x and y; fraction
  double noise;                               // amplitude of the per-pixel noise
};

Scene DrawScene(int colour, int size, core::SplitMix64& rng) {
  Scene scene;
  scene.radius = 0.5 * size * rng.Uniform(0.45, 0.8);
  scene.cx = rng.Uniform(scene.radius, size - scene.radius);
  scene.cy = rng.Uniform(scene.radius, size - scene.radius);
  const double angle = rng.Uniform(0, 2 * kPi);
  scene.cos_angle = std::cos(angle);
  scene.sin_angle = std::sin(angle);
  const double hue = kColourTable[colour].hue + rng.Uniform(-10, 10);
  const double saturation = rng.Uniform(0.7, 1.0);
  scene.colour = FromHsv(hue, saturation, rng.Uniform(0.75, 1.0));
  const double luminance = Luminance(scene.colour);
  scene.background = BackgroundGray(luminance, rng);
  // Stripes move away from the background, so a striped shape keeps its outline.
  const Rgb& c = scene.colour;
  scene.stripe_colour =
      scene.background > luminance
          ? Rgb{0.35 * c.r, 0.35 * c.g, 0.35 * c.b}
          : Rgb{c.r + 0.6 * (1 - c.r), c.g + 0.6 * (1 - c.g), c.b + 0.6 * (1 - c.b)};
  const double gradient_angle = rng.Uniform(0, 2 * kPi);
  const double gradient = rng.Uniform(0, kMaxGradient) / size;
  scene.gradient_x = gradient * std::cos(gradient_angle);
  scene.gradient_y = gradient * std::sin(gradient_angle);
  const double stripe_angle = rng.Uniform(0, kPi);
  const double stripe_period = std::max(3.0, size / 7.0);
  scene.stripe_x = std::cos(stripe_angle) / stripe_period;
  scene.stripe_y = std::sin(stripe_angle) / stripe_period;
  scene.stripe_phase = rng.Uniform(0, 1);
  scene.noise = rng.Uniform(0.01, 0.05);
  return scene;
}

// The colour the sub-samples of a pixel inside the shape add up to, and how many were inside.
struct Coverage {
  Rgb sum;
  int inside = 0;
};

Coverage CoverPixel(const Shape& shape, bool striped, const Scene& scene, int x, int y) {
  Coverage coverage;
  for (int sy = 0; sy < kSubsamples; ++sy) {
    for (int sx = 0; sx < kSubsamples; ++sx) {
      const double dx = x + (sx + 0.5) / kSubsamples - scene.cx;
      const double dy = y + (sy + 0.5) / kSubsamples - scene.cy;
      const double u = scene.cos_angle * dx + scene.sin_angle * dy;
      const double v = -scene.sin_angle * dx + scene.cos_angle * dy;
      if (!shape.Contains({u / scene.radius, v / scene.radius})) continue;
      const double stripe = scene.stripe_x * dx + scene.stripe_y * dy + scene.stripe_phase;
      const bool in_stripe = striped && stripe - std::floor(stripe) < 0.5;
      const Rgb& c = in_stripe ? scene.stripe_colour : scene.colour;
      coverage.sum.r += c.r;
      coverage.sum.g += c.g;
      coverage.sum.b += c.b;
      ++coverage.inside;
    }
  }
  return coverage;
}

void CheckOptions(const ShapeWorldOptions& options) {
  TORCH_CHECK(options.image_size >= 8 && options.image_size <= 1024,
              "shape world: image_size must be in [8, 1024], got ", options.image_size);
  TORCH_CHECK(options.images_per_class >= 1 && options.images_per_class <= 100000,
              "shape world: images_per_class must be in [1, 100000], got ",
              options.images_per_class);
  TORCH_CHECK(options.threads >= 0, "shape world: threads must be >= 0 (0: one per hardware ",
              "thread), got ", options.threads);
}

std::string ImageName(int64_t index) {
  char name[32];
  std::snprintf(name, sizeof(name), "%04lld.png", static_cast<long long>(index));
  return name;
}

void CreateDirectory(const fs::path& path) {
  std::error_code error;
  fs::create_directory(path, error);
  TORCH_CHECK(!error, "shape world: cannot create ", path.string(), ": ", error.message());
}

// Writes a new file; durability comes later, from one syncfs for all images.
void WriteUnsyncedFile(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  TORCH_CHECK(out.good(), "shape world: cannot write ", path.string(), ": ", std::strerror(errno));
}

// Renders every image into `staging`/<class>/ on options.threads threads; the first error stops
// the rest and is rethrown.
void WriteImages(const fs::path& staging, const ShapeWorldOptions& options) {
  const std::vector<ShapeClass>& classes = ShapeWorldClasses();
  for (const ShapeClass& shape_class : classes) CreateDirectory(staging / shape_class.name);
  const int64_t total = kShapeWorldClasses * options.images_per_class;
  std::atomic<int64_t> next{0};
  std::mutex error_mutex;
  std::exception_ptr first_error;  // guarded by error_mutex
  const auto work = [&] {
    for (int64_t job; (job = next.fetch_add(1)) < total;) {
      const int label = static_cast<int>(job / options.images_per_class);
      const int64_t index = job % options.images_per_class;
      try {
        const std::vector<uint8_t> pixels = RenderShapeImage(label, index, options);
        WriteUnsyncedFile(staging / classes[label].name / ImageName(index),
                          io::EncodePng(pixels.data(), options.image_size, options.image_size, 3));
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!first_error) first_error = std::current_exception();
        next.store(total);
      }
    }
  };
  const int64_t hardware = std::max(1u, std::thread::hardware_concurrency());
  const int64_t threads = std::min(total, options.threads > 0 ? options.threads : hardware);
  std::vector<std::thread> pool;
  for (int64_t i = 1; i < threads; ++i) pool.emplace_back(work);
  work();
  for (std::thread& thread : pool) thread.join();
  if (first_error) std::rethrow_exception(first_error);
}

// Makes everything written to the file system holding `path` durable: one call instead of an
// fsync per image (thousands of fsyncs take tens of seconds).
void SyncFileSystem(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  TORCH_CHECK(fd >= 0, "shape world: cannot open ", path.string(), ": ", std::strerror(errno));
  const int result = ::syncfs(fd);
  const int sync_errno = errno;
  ::close(fd);
  TORCH_CHECK(result == 0, "shape world: cannot sync ", path.string(), ": ",
              std::strerror(sync_errno));
}

// Removes `path` (a file or folder) if present.
void RemovePath(const fs::path& path) {
  std::error_code error;
  fs::remove_all(path, error);
  TORCH_CHECK(!error, "shape world: cannot remove ", path.string(), ": ", error.message());
}

// Creates `dir`, or checks that it holds nothing but an earlier shape world, whose leftover
// staging and temp files (a crash's) are removed.
void PrepareDirectory(const fs::path& dir) {
  std::error_code error;
  fs::create_directories(dir, error);
  TORCH_CHECK(!error && fs::is_directory(dir), "shape world: cannot create the output dir ",
              dir.string(), ": ", error ? error.message() : "not a directory");
  std::vector<fs::path> leftovers;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(io::kTempFilePrefix, 0) == 0) {
      leftovers.push_back(entry.path());
      continue;
    }
    TORCH_CHECK(name == kImageDirName || name == kListName || name == kTreeName,
                "shape world: the output dir ", dir.string(), " holds '", name,
                "', which is not part of a shape world; give an empty or new folder");
  }
  for (const fs::path& leftover : leftovers) RemovePath(leftover);
}

std::string ListText(const ShapeWorldOptions& options) {
  std::string text;
  for (const ShapeClass& shape_class : ShapeWorldClasses()) {
    for (int64_t i = 0; i < options.images_per_class; ++i) {
      text += std::string(kImageDirName) + "/" + shape_class.name + "/" + ImageName(i) + "\t" +
              shape_class.name + "\t" + (shape_class.train ? "train" : "test") + "\n";
    }
  }
  return text;
}

}  // namespace

const std::vector<ShapeClass>& ShapeWorldClasses() {
  static const std::vector<ShapeClass> classes = [] {
    std::vector<ShapeClass> all;
    const std::vector<Shape>& shapes = Shapes();
    for (int s = 0; s < static_cast<int>(shapes.size()); ++s) {
      for (int c = 0; c < kColours; ++c) {
        for (int t = 0; t < kTextures; ++t) {
          ShapeClass shape_class{"", shapes[s].family, shapes[s].name, kColourTable[c].name,
                                 kTextureNames[t]};
          shape_class.name = shape_class.family + "-" + shape_class.shape + "-" +
                             shape_class.colour + "-" + shape_class.texture;
          // Colours s .. s + 3 (mod 8) train.
          shape_class.train = (c - s % kColours + kColours) % kColours < kColours / 2;
          all.push_back(std::move(shape_class));
        }
      }
    }
    return all;
  }();
  return classes;
}

std::string ShapeWorldTreeJson() {
  nlohmann::ordered_json tree = nlohmann::ordered_json::object();
  for (const ShapeClass& shape_class : ShapeWorldClasses()) {
    const std::string shape = shape_class.family + "-" + shape_class.shape;
    tree[shape_class.family][shape][shape + "-" + shape_class.colour].push_back(shape_class.name);
  }
  return tree.dump(2) + "\n";
}

std::vector<uint8_t> RenderShapeImage(int label, int64_t index, const ShapeWorldOptions& options) {
  CheckOptions(options);
  TORCH_CHECK(label >= 0 && label < kShapeWorldClasses, "shape world: label must be in [0, ",
              kShapeWorldClasses, "), got ", label);
  TORCH_CHECK(index >= 0, "shape world: index must be >= 0, got ", index);
  const Shape& shape = Shapes()[label / (kColours * kTextures)];
  const bool striped = label % kTextures == 1;
  // One stream per image (indices stay below 2^40), so threads never change what is drawn.
  core::SplitMix64 rng(core::SplitMix64(options.seed).Next() ^
                       (static_cast<uint64_t>(label) << 40) ^ static_cast<uint64_t>(index));
  const int size = options.image_size;
  const Scene scene = DrawScene(label / kTextures % kColours, size, rng);
  const double reach = (scene.radius + 1) * (scene.radius + 1);  // beyond it, background only
  std::vector<uint8_t> pixels(static_cast<size_t>(size) * size * 3);
  uint8_t* out = pixels.data();
  for (int y = 0; y < size; ++y) {
    for (int x = 0; x < size; ++x) {
      const double dx = x + 0.5 - scene.cx, dy = y + 0.5 - scene.cy;
      const Coverage coverage =
          dx * dx + dy * dy <= reach ? CoverPixel(shape, striped, scene, x, y) : Coverage{};
      const double background = scene.background + scene.gradient_x * (x + 0.5 - 0.5 * size) +
                                scene.gradient_y * (y + 0.5 - 0.5 * size);
      const double outside = (kSubsamples * kSubsamples - coverage.inside) * background;
      for (const double sum : {coverage.sum.r, coverage.sum.g, coverage.sum.b}) {
        const double noise = scene.noise * (rng.Uniform(0, 1) + rng.Uniform(0, 1) - 1);
        const double value = (sum + outside) / (kSubsamples * kSubsamples) + noise;
        *out++ = static_cast<uint8_t>(std::lround(std::clamp(value, 0.0, 1.0) * 255));
      }
    }
  }
  return pixels;
}

ShapeWorldFiles WriteShapeWorld(const std::string& dir, const ShapeWorldOptions& options) {
  CheckOptions(options);
  const fs::path root(dir);
  PrepareDirectory(root);
  const fs::path staging =
      root / (io::kTempFilePrefix + std::string(kStagingPrefix) + std::to_string(::getpid()));
  CreateDirectory(staging);
  try {
    WriteImages(staging, options);
  } catch (...) {
    std::error_code ignored;
    fs::remove_all(staging, ignored);
    throw;
  }
  SyncFileSystem(staging);
  ShapeWorldFiles files;
  files.image_dir = (root / kImageDirName).string();
  files.list_file = (root / kListName).string();
  files.tree_file = (root / kTreeName).string();
  // The old list goes first, so no list names an image of the folder being replaced.
  RemovePath(files.list_file);
  io::SyncDirectory(dir);
  RemovePath(files.image_dir);
  std::error_code error;
  fs::rename(staging, files.image_dir, error);
  TORCH_CHECK(!error, "shape world: cannot rename ", staging.string(), " to ", files.image_dir,
              ": ", error.message());
  io::SyncDirectory(dir);
  io::WriteFileAtomically(files.tree_file, ShapeWorldTreeJson());
  io::WriteFileAtomically(files.list_file, ListText(options));
  for (const ShapeClass& shape_class : ShapeWorldClasses()) {
    (shape_class.train ? files.train_images : files.test_images) += options.images_per_class;
  }
  return files;
}

}  // namespace hier::data
