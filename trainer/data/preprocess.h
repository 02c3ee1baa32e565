// Turning stored grayscale images into model inputs: normalisation (shared by training,
// evaluation and serving) and the light training-time augmentation for 28x28 images.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "trainer/data/image_set.h"

namespace hier::data {

// What a checkpoint's manifest records so an image is prepared the same way at serving time.
struct Preprocessing {
  int64_t height = 28;
  int64_t width = 28;
  double mean = 0.2860;  // Fashion-MNIST training-set pixel mean and std (on [0, 1])
  double std = 0.3530;
};

// Random translation by up to `max_shift` pixels each way (zero fill) and a horizontal flip with
// probability 1/2, drawn per image from a counter-based stream.
struct Augmentation {
  int64_t max_shift = 2;
  bool flip = true;
};

// Float inputs [B, 1, H, W] for set images `indices`, normalised as `preprocessing` says. With
// `augmentation`, image i of the batch is transformed by draws keyed on (key, i): the same key
// gives the same batch in any process or thread.
at::Tensor ToInputTensor(const ImageSet& set, const std::vector<int64_t>& indices,
                         const Preprocessing& preprocessing, const Augmentation* augmentation,
                         uint64_t key);

// The labels of `indices` as an int64 tensor [B].
at::Tensor LabelsTensor(const ImageSet& set, const std::vector<int64_t>& indices);

}  // namespace hier::data
