// Parity with the HIER authors' implementation: every case file in $HIER_REFERENCE_DIR (default
// ../shared/reference/hier) is run through hier_core and every output, gradient and discrete
// result compared within the tolerances of that folder's README. An unknown op fails.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <string>

#include "tests/core/reference_case.h"
#include "trainer/core/hier_loss.h"
#include "trainer/core/metric_losses.h"
#include "trainer/core/poincare.h"
#include "trainer/core/recall.h"
#include "trainer/core/to_poincare.h"
#include "trainer/core/triplet_mining.h"

namespace hier::testing {
namespace {

using core::HierLossOptions;

std::string ReferenceDir() {
  const char* env = std::getenv("HIER_REFERENCE_DIR");
  return env != nullptr ? env : HIER_DEFAULT_REFERENCE_DIR;
}

// The README's third tolerance: float32 against float64 files on rows with sqrt(c)|x| <= 0.95.
constexpr Tolerance kFloat32Interior{1e-4, 1e-5};

at::Tensor InteriorRows(const at::Tensor& x, double c) {
  return at::linalg_vector_norm(x, 2, {-1}) * std::sqrt(c) <= 0.95;
}

// Runs `fn` on the file's inputs at the file's precision, compares with `output`, then runs it in
// float32 and compares the rows whose inputs all lie inside 0.95 of the radius.
void CheckElementwise(ReferenceCase& rc, const std::vector<std::string>& inputs,
                      const std::string& output,
                      const std::function<at::Tensor(const std::vector<at::Tensor>&)>& fn) {
  const double c = rc.Param("c");
  std::vector<at::Tensor> args;
  for (const auto& name : inputs) args.push_back(rc.Input(name));
  const at::Tensor want = rc.Output(output);
  ExpectClose(fn(args), want, rc.tolerance(), rc.op() + "." + output);

  std::vector<at::Tensor> args32;
  at::Tensor rows = at::ones({args[0].size(0)}, at::kBool);
  for (const auto& a : args) {
    args32.push_back(a.to(at::kFloat));
    if (a.size(0) == rows.size(0)) rows &= InteriorRows(a, c);
  }
  const at::Tensor got32 = fn(args32);
  ExpectClose(got32.index_select(0, rows.nonzero().flatten()),
              want.index_select(0, rows.nonzero().flatten()), kFloat32Interior,
              rc.op() + "." + output + " (float32, interior rows)");
}

void CheckExpmap0(ReferenceCase& rc) {
  CheckElementwise(rc, {"u"}, "y", [&](auto& a) { return core::Expmap0(a[0], rc.Param("c")); });
}
void CheckLogmap0(ReferenceCase& rc) {
  CheckElementwise(rc, {"y"}, "u", [&](auto& a) { return core::Logmap0(a[0], rc.Param("c")); });
}
void CheckProject(ReferenceCase& rc) {
  CheckElementwise(rc, {"x"}, "y", [&](auto& a) { return core::Project(a[0], rc.Param("c")); });
}
void CheckLambda(ReferenceCase& rc) {
  CheckElementwise(rc, {"x"}, "lambda",
                   [&](auto& a) { return core::ConformalFactor(a[0], rc.Param("c")); });
}
void CheckMobiusAdd(ReferenceCase& rc) {
  CheckElementwise(rc, {"x", "y"}, "z",
                   [&](auto& a) { return core::MobiusAdd(a[0], a[1], rc.Param("c")); });
}

void CheckDistMatrix(ReferenceCase& rc) {
  const double c = rc.Param("c");
  const at::Tensor x = rc.Input("x"), y = rc.Input("y");
  const at::Tensor want = rc.Output("d");
  ExpectClose(core::DistMatrix(x, y, c), want, rc.tolerance(), "dist_matrix.d");
  ExpectClose(core::DistMatrixBroadcast(x, y, c), want, rc.tolerance(),
              "dist_matrix.d (broadcast baseline)");
  const at::Tensor rows = InteriorRows(x, c).nonzero().flatten();
  const at::Tensor cols = InteriorRows(y, c).nonzero().flatten();
  const at::Tensor got32 = core::DistMatrix(x.to(at::kFloat), y.to(at::kFloat), c);
  ExpectClose(got32.index_select(0, rows).index_select(1, cols),
              want.index_select(0, rows).index_select(1, cols), kFloat32Interior,
              "dist_matrix.d (float32, interior rows)");
}

void CheckDistMatrixBackward(ReferenceCase& rc) {
  const double c = rc.Param("c");
  for (bool broadcast : {false, true}) {
    const at::Tensor x = rc.Input("x").requires_grad_(true);
    const at::Tensor y = rc.Input("y").requires_grad_(true);
    const at::Tensor d = broadcast ? core::DistMatrixBroadcast(x, y, c) : core::DistMatrix(x, y, c);
    (d * rc.Input("grad_d")).sum().backward();
    const std::string tag = broadcast ? " (broadcast baseline)" : "";
    ExpectClose(d, rc.Output("d"), rc.tolerance(), "dist_matrix_backward.d" + tag);
    ExpectClose(x.grad(), rc.Output("grad_x"), rc.tolerance(), "grad_x" + tag);
    ExpectClose(y.grad(), rc.Output("grad_y"), rc.tolerance(), "grad_y" + tag);
  }
}

void CheckToPoincare(ReferenceCase& rc) {
  for (bool riemannian : {true, false}) {
    core::ToPoincareOptions options(rc.Param("c"));
    options.clip_r(rc.OptionalParam("clip_r")).riemannian(riemannian);
    const at::Tensor x = rc.Input("x").requires_grad_(true);
    const at::Tensor y = core::ToPoincare(x, options);
    (y * rc.Input("grad_y")).sum().backward();
    ExpectClose(y, rc.Output("y"), rc.tolerance(), "to_poincare.y");
    const std::string grad = riemannian ? "grad_x_riemannian" : "grad_x_euclidean";
    ExpectClose(x.grad(), rc.Output(grad), rc.tolerance(), "to_poincare." + grad);
  }
}

void CheckReciprocalTopk(ReferenceCase& rc) {
  const core::ReciprocalNeighbours nb =
      core::FindReciprocalNeighbours(rc.Input("sim"), static_cast<int64_t>(rc.Param("topk")));
  ExpectEqual(nb.recip, rc.Output("recip"), "recip");
  ExpectEqual(nb.positive, rc.Output("positive"), "positive");
  ExpectEqual(nb.negative, rc.Output("negative"), "negative");
  ExpectEqual(nb.anchor_has_triplets, rc.Output("anchor_has_triplets"), "anchor_has_triplets");
}

void CheckHierLoss(ReferenceCase& rc) {
  const Tolerance tol = rc.tolerance();
  HierLossOptions options(static_cast<int64_t>(rc.Param("sz_embed")));
  options.num_proxies(static_cast<int64_t>(rc.Param("nb_proxies")))
      .c(rc.Param("c"))
      .clip_r(rc.OptionalParam("clip_r"))
      .margin(rc.Param("mrg"))
      .tau(rc.Param("tau"))
      .topk(static_cast<int64_t>(rc.Param("topk")))
      .gumbel_noise(false);
  const core::HierTriplets triplets{rc.Input("triplets_sample_proxy"),
                                    rc.Input("triplets_proxy_proxy")};
  const at::Tensor labels = rc.Input("labels");
  const int64_t batch = labels.size(0);

  core::HierLoss loss(options);
  loss->proxies.set_data(rc.Input("lcas_raw"));
  const at::Tensor z = rc.Input("z").requires_grad_(true);
  at::Tensor mapped = loss->MappedProxies();
  mapped.retain_grad();
  const core::HierLossResult result = core::HierLossOnBall(z, mapped, triplets, options, 0);
  result.loss.backward();
  EXPECT_NEAR(result.loss.item<double>(), rc.ScalarOutput("loss"),
              tol.atol + tol.rtol * std::abs(rc.ScalarOutput("loss")));
  EXPECT_NEAR(result.sample_proxy.loss.item<double>(), rc.ScalarOutput("loss_sample_proxy"),
              tol.atol + tol.rtol * std::abs(rc.ScalarOutput("loss_sample_proxy")));
  EXPECT_NEAR(result.proxy_proxy.loss.item<double>(), rc.ScalarOutput("loss_proxy_proxy"),
              tol.atol + tol.rtol * std::abs(rc.ScalarOutput("loss_proxy_proxy")));
  ExpectClose(mapped, rc.Output("lcas_mapped"), tol, "lcas_mapped");
  ExpectClose(z.grad(), rc.Output("grad_z"), tol, "grad_z");
  ExpectClose(mapped.grad(), rc.Output("grad_lcas_mapped"), tol, "grad_lcas_mapped");
  ExpectClose(loss->proxies.grad(), rc.Output("grad_lcas_raw"), tol, "grad_lcas_raw");
  ExpectEqual(result.sample_proxy.lca_ij, rc.Output("lca_ij_sample_proxy"), "lca_ij_sample_proxy");
  ExpectEqual(result.sample_proxy.lca_ijk, rc.Output("lca_ijk_sample_proxy"),
              "lca_ijk_sample_proxy");
  ExpectEqual(result.proxy_proxy.lca_ij, rc.Output("lca_ij_proxy_proxy"), "lca_ij_proxy_proxy");
  ExpectEqual(result.proxy_proxy.lca_ijk, rc.Output("lca_ijk_proxy_proxy"), "lca_ijk_proxy_proxy");
  ExpectEqual(result.sample_proxy.active, rc.Output("active_sample_proxy"), "active_sample_proxy");
  ExpectEqual(result.proxy_proxy.active, rc.Output("active_proxy_proxy"), "active_proxy_proxy");

  // The sample-to-proxy part alone.
  const at::Tensor z2 = rc.Input("z").requires_grad_(true);
  core::HierLossOnBall(z2, loss->MappedProxies(), triplets, options, 0)
      .sample_proxy.loss.backward();
  ExpectClose(z2.grad(), rc.Output("grad_z_sample_proxy_only"), tol, "grad_z_sample_proxy_only");

  // The miner's inputs and candidate structures for this batch.
  at::NoGradGuard no_grad;
  const at::Tensor all = at::cat({rc.Input("z"), loss->MappedProxies()}, 0);
  const at::Tensor dist = core::DistMatrix(all, all, options.c());
  const at::Tensor sim_samples =
      core::SampleSimilarity(dist.slice(0, 0, batch).slice(1, 0, batch), labels);
  const at::Tensor sim_proxies = core::ProxySimilarity(dist.slice(0, batch).slice(1, batch));
  ExpectClose(sim_samples, rc.Output("sim_samples"), tol, "sim_samples");
  ExpectClose(sim_proxies, rc.Output("sim_proxies"), tol, "sim_proxies");
  ExpectEqual(core::FindReciprocalNeighbours(sim_samples, options.topk()).recip,
              rc.Output("recip_samples"), "recip_samples");
  ExpectEqual(core::FindReciprocalNeighbours(sim_proxies, options.topk()).recip,
              rc.Output("recip_proxies"), "recip_proxies");
}

void CheckProxyAnchor(ReferenceCase& rc) {
  const at::Tensor x = rc.Input("x").requires_grad_(true);
  const at::Tensor proxies = rc.Input("proxies").requires_grad_(true);
  const at::Tensor loss =
      core::ProxyAnchorLoss(x, rc.Input("labels"), proxies, rc.Param("alpha"), rc.Param("mrg"));
  loss.backward();
  const double want = rc.ScalarOutput("loss");
  EXPECT_NEAR(loss.item<double>(), want, 1e-10 + 1e-9 * std::abs(want));
  ExpectClose(x.grad(), rc.Output("grad_x"), rc.tolerance(), "grad_x");
  ExpectClose(proxies.grad(), rc.Output("grad_proxies"), rc.tolerance(), "grad_proxies");
}

void CheckMultiSimilarity(ReferenceCase& rc) {
  const at::Tensor x = rc.Input("x").requires_grad_(true);
  const at::Tensor loss = core::MultiSimilarityLoss(x, rc.Input("labels"), rc.Param("alpha"),
                                                    rc.Param("beta"), rc.Param("base"));
  loss.backward();
  const double want = rc.ScalarOutput("loss");
  EXPECT_NEAR(loss.item<double>(), want, 1e-10 + 1e-9 * std::abs(want));
  ExpectClose(x.grad(), rc.Output("grad_x"), rc.tolerance(), "grad_x");
}

void CheckSupCon(ReferenceCase& rc) {
  const at::Tensor views = rc.Input("x");  // [pairs, IPC, D]
  const int64_t ipc = static_cast<int64_t>(rc.Param("IPC"));
  const at::Tensor z = views.reshape({-1, views.size(2)}).requires_grad_(true);
  const at::Tensor labels = at::arange(views.size(0), at::kLong).repeat_interleave(ipc);
  const at::Tensor loss =
      core::SupConHyperbolicLoss(z, labels, ipc, rc.Param("hyp_c"), rc.Param("tau"));
  loss.backward();
  const double want = rc.ScalarOutput("loss");
  EXPECT_NEAR(loss.item<double>(), want, 1e-10 + 1e-9 * std::abs(want));
  ExpectClose(z.grad().view_as(views), rc.Output("grad_x"), rc.tolerance(), "grad_x");
}

void CheckRecall(ReferenceCase& rc) {
  std::vector<int64_t> ks;
  for (double k : rc.ListOutput("k")) ks.push_back(static_cast<int64_t>(k));
  const core::RecallQuery queries{rc.Input("xq"), rc.Input("yq"), rc.Input("index_q")};
  core::RecallQuery gallery{rc.Input("xg"), rc.Input("yg"), rc.Input("index_g")};
  const double c = rc.Param("hyp_c");
  EXPECT_EQ(core::RecallAtK(queries, gallery, ks, c), rc.ListOutput("recall"));
  if (rc.StringParamIs("ds_name", "Inshop")) {
    // Gallery ids shifted past the query ids: no gallery item is dropped by an id collision.
    gallery.ids = gallery.ids + queries.ids.size(0);
    EXPECT_EQ(core::RecallAtK(queries, gallery, ks, c),
              rc.ListOutput("recall_without_index_collision"));
  }
}

using Checker = std::function<void(ReferenceCase&)>;

const std::map<std::string, Checker>& Checkers() {
  static const auto* checkers = new std::map<std::string, Checker>{
      {"expmap0", CheckExpmap0},
      {"logmap0", CheckLogmap0},
      {"project", CheckProject},
      {"lambda_x", CheckLambda},
      {"mobius_add", CheckMobiusAdd},
      {"dist_matrix", CheckDistMatrix},
      {"dist_matrix_backward", CheckDistMatrixBackward},
      {"to_poincare", CheckToPoincare},
      {"reciprocal_topk", CheckReciprocalTopk},
      {"hier_loss", CheckHierLoss},
      {"pa_loss_angle", CheckProxyAnchor},
      {"ms_loss_angle", CheckMultiSimilarity},
      {"supcon_hyp", CheckSupCon},
      {"recall_at_k", CheckRecall},
  };
  return *checkers;
}

class ReferenceParityTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ReferenceParityTest, MatchesEveryOutput) {
  ReferenceCase rc = ReferenceCase::Load(GetParam());
  const auto it = Checkers().find(rc.op());
  ASSERT_NE(it, Checkers().end()) << "no parity check for op '" << rc.op() << "' in " << rc.path();
  it->second(rc);
  EXPECT_TRUE(rc.UncoveredOutputs().empty())
      << rc.path() << ": outputs not compared: " << ::testing::PrintToString(rc.UncoveredOutputs());
}

std::string CaseName(const ::testing::TestParamInfo<std::string>& info) {
  std::string name = std::filesystem::path(info.param).stem().string();
  for (char& ch : name) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return name;
}

INSTANTIATE_TEST_SUITE_P(Cases, ReferenceParityTest,
                         ::testing::ValuesIn(ListReferenceCases(ReferenceDir())), CaseName);

TEST(ReferenceParitySuite, FindsTheCaseFiles) {
  const auto files = ListReferenceCases(ReferenceDir());
  EXPECT_FALSE(files.empty()) << "no *.json reference cases in " << ReferenceDir()
                              << " (set HIER_REFERENCE_DIR)";
  std::set<std::string> ops;
  for (const auto& f : files) ops.insert(ReferenceCase::Load(f).op());
  for (const auto& op : ops) EXPECT_TRUE(Checkers().count(op)) << "no parity check for " << op;
}

}  // namespace
}  // namespace hier::testing
