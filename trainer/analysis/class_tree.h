// A known class hierarchy of any depth, read from a JSON file, and the per-label view of it
// (lowest-common-ancestor heights, super-categories) that hierarchy-aware retrieval metrics use.
//
// File format: a JSON object maps each group name to its members, which are either an array whose
// elements are class names (strings: the leaves) or objects of this same form (nested groups), or
// directly an object of this same form. The root is implicit (the top-level object), so every
// class lies under at least one group and the top-level groups are the super-categories:
//
//   {"animal": {"bird": ["owl", "crow"], "cat": ["lion"]}, "vehicle": ["car", {"boat": ["ferry"]}]}
//
// Order is file order throughout. A class name may appear only once; group names only need to be
// unique within one object (a nested group is known by its path). Every group holds something.
//
// Heights (Bertinetto et al., "Making Better Mistakes", CVPR 2020): a class has height 0; a group,
// and the root, has height 1 + the largest height of its children. The LCA height of two classes
// is the height of their lowest common ancestor, 0 for a class with itself: two classes of one
// group of classes meet at height 1; in the example, owl and lion meet at "animal" (height 2) and
// owl and car at the root (height 3).
//
// Std-only header. Errors throw c10::Error naming the function, the file (or origin) and the
// problem. Both types are immutable after construction, so concurrent reads are safe.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace hier::analysis {

// Labels 0..num_labels()-1 placed on a ClassTree's classes; built by ClassTree::ForLabels.
class LabelHierarchy {
 public:
  int64_t num_labels() const { return static_cast<int64_t>(super_category_.size()); }
  // Height of the lowest common ancestor of labels a and b (0 when a == b); O(tree depth).
  int64_t LcaHeight(int64_t a, int64_t b) const;
  // Index, in file order, of the top-level group holding the label's class.
  int64_t SuperCategory(int64_t label) const;

 private:
  friend class ClassTree;
  void CheckLabel(const char* name, int64_t label) const;

  std::vector<std::vector<int64_t>> paths_;  // per label: node ids from the root down to its class
  std::vector<int64_t> node_height_;         // per node of the tree
  std::vector<int64_t> super_category_;      // per label
};

class ClassTree {
 public:
  // One node of the tree; nodes()[0] is the implicit root (empty name, parent -1), and every other
  // node comes after its parent (depth-first, file order).
  struct Node {
    std::string name;
    int64_t parent = -1;
    bool is_class = false;
    int64_t height = 0;
  };

  // Reads the tree from JSON text; `origin` (a file name) only goes into error messages.
  static ClassTree Parse(const std::string& json_text, const std::string& origin);
  // Reads the tree from the file at `path`.
  static ClassTree Load(const std::string& path);

  const std::vector<Node>& nodes() const { return nodes_; }
  // Every class name, in file order.
  std::vector<std::string> ClassNames() const;
  // The top-level group names (the super-categories), in file order.
  std::vector<std::string> TopGroups() const;
  // Height of the root: 2 for a file of groups that hold only classes.
  int64_t Height() const { return nodes_[0].height; }

  // Label i is the class class_names[i]. Every name must be a class of the tree and appear once in
  // `class_names`; classes of the tree that are not named are ignored.
  LabelHierarchy ForLabels(const std::vector<std::string>& class_names) const;

 private:
  ClassTree(std::vector<Node> nodes, std::string origin);

  std::vector<Node> nodes_;
  std::unordered_map<std::string, int64_t> class_node_;  // class name -> node id
  std::string origin_;
};

}  // namespace hier::analysis
