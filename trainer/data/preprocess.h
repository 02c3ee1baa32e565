// How images become model inputs: the preprocessing a checkpoint records (shared by training,
// evaluation and serving) and the light training-time augmentation of in-memory 28x28 images.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "trainer/data/image_set.h"
#include "trainer/data/image_transform.h"

namespace hier::data {

// What a checkpoint's manifest records so an image is prepared the same way at serving time:
// resize the shorter side to `resize`, centre-crop `crop` x `crop`, normalise per channel.
struct Preprocessing {
  int64_t channels = 1;  // 1: gray, 3: RGB (gray images are replicated)
  int64_t resize = 28;
  int64_t crop = 28;
  std::vector<double> mean = {0.2860};  // per channel, on [0, 1]; Fashion-MNIST's by default
  std::vector<double> std = {0.3530};
};

EvalTransform EvalTransformOf(const Preprocessing& preprocessing);
Normalisation NormalisationOf(const Preprocessing& preprocessing);

// Random translation by up to `max_shift` pixels each way (zero fill) and a horizontal flip with
// probability 1/2, drawn per image from a counter-based stream.
struct Augmentation {
  int64_t max_shift = 2;
  bool flip = true;
};

// Float inputs [B, C, H, W] for set images `indices`, normalised as `preprocessing` says (the set's
// images must already be crop x crop). With `augmentation`, image i is transformed by draws keyed
// on item_keys[i]: the same key gives the same image in any process or thread.
at::Tensor ToInputTensor(const ImageSet& set, const std::vector<int64_t>& indices,
                         const Preprocessing& preprocessing, const Augmentation* augmentation,
                         const std::vector<uint64_t>& item_keys);

// The labels of `indices` as an int64 tensor [B].
at::Tensor LabelsTensor(const std::vector<int64_t>& labels, const std::vector<int64_t>& indices);

}  // namespace hier::data
