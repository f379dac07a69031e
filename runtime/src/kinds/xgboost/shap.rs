//! Exact TreeSHAP (path-dependent; Lundberg, Erion and Lee, "Consistent individualized
//! feature attribution for tree ensembles", 2018): each feature's contribution to a
//! row's margin, plus a bias, summing to the margin.
//!
//! Agrees with xgboost's `predict(..., pred_contribs=True)`: the same recursion over the
//! same node covers (`sum_hessian`), in f32 like xgboost's CPU predictor, a dart tree's
//! contributions scaled by its weight after the tree, the base margin added to the bias.
//! The walk needs each node's cover and both children by the original node ids, so the
//! trees are kept here a second time, as the document lists them, rather than in the
//! relaid-out form prediction uses.

use super::document::{TreeDoc, flag};
use crate::{Result, RuntimeError};

/// One node as the walk needs it.
#[derive(Debug, Clone, Copy)]
struct ShapNode {
    /// Children (original ids); `left < 0` for a leaf.
    left: i32,
    right: i32,
    feature: u32,
    /// Split threshold, or the leaf value (not scaled by a dart weight).
    value: f32,
    default_left: bool,
    /// Sum of hessians of the training rows through the node.
    cover: f32,
}

#[derive(Debug)]
struct ShapTree {
    nodes: Vec<ShapNode>,
    /// Expected value of each node's subtree under the covers.
    means: Vec<f32>,
    /// Deepest leaf's level.
    depth: usize,
    group: usize,
    weight: f32,
}

/// The trees of a model, ready to explain rows.
#[derive(Debug)]
pub(super) struct ShapTrees {
    trees: Vec<ShapTree>,
}

/// One element of the unique path from the root: a feature, the fraction of the cover
/// that flows down the path when the feature is unknown (`zero`), whether the row itself
/// goes that way (`one`), and the permutation weight of subsets of that size.
#[derive(Debug, Clone, Copy, Default)]
struct PathElement {
    feature: i64,
    zero: f32,
    one: f32,
    pweight: f32,
}

impl ShapTrees {
    /// Builds the walk's trees from the document. `trees` were already checked and laid
    /// out for prediction (ids in range, no node reached twice); a tree without covers
    /// (models saved before xgboost 1.0) cannot be explained.
    pub(super) fn build(
        trees: &[TreeDoc],
        groups: &[u32],
        weights: Option<&[f32]>,
    ) -> Result<ShapTrees> {
        let mut out = Vec::with_capacity(trees.len());
        for (t, tree) in trees.iter().enumerate() {
            let n = tree.left_children.len();
            if tree.sum_hessian.len() != n {
                return Err(RuntimeError::artifact(format!(
                    "tree {t} has no node covers (sum_hessian), which contributions need"
                )));
            }
            let id = |v: i64| -> Result<i32> {
                i32::try_from(v)
                    .ok()
                    .filter(|&v| v == -1 || (v >= 0 && (v as usize) < n))
                    .ok_or_else(|| RuntimeError::artifact(format!("tree {t}: child {v}")))
            };
            let mut nodes = Vec::with_capacity(n);
            for i in 0..n {
                nodes.push(ShapNode {
                    left: id(tree.left_children[i])?,
                    right: id(tree.right_children[i])?,
                    feature: u32::try_from(tree.split_indices[i].max(0)).unwrap_or(0),
                    value: tree.split_conditions[i],
                    default_left: flag(&tree.default_left[i]),
                    cover: tree.sum_hessian[i],
                });
            }
            let depth = depth_of(&nodes).ok_or_else(|| {
                RuntimeError::artifact(format!(
                    "tree {t} is deeper than {MAX_DEPTH} levels: too deep to explain"
                ))
            })?;
            let mut means = vec![0.0; n];
            fill_means(&nodes, 0, &mut means);
            out.push(ShapTree {
                nodes,
                means,
                depth,
                group: groups.get(t).map_or(0, |&g| g as usize),
                weight: weights.and_then(|w| w.get(t)).copied().unwrap_or(1.0),
            });
        }
        Ok(ShapTrees { trees: out })
    }

    /// Adds one row's contributions to `out`: `[groups][num_feature + 1]`, the bias last
    /// in each group. The caller adds the base margin to the bias.
    pub(super) fn explain_row(&self, row: &[f32], out: &mut [f32], num_feature: usize) {
        let width = num_feature + 1;
        let mut tree_phi = vec![0f32; width];
        let mut path = Vec::new();
        for tree in &self.trees {
            let Some(phi) = out.get_mut(tree.group * width..(tree.group + 1) * width) else {
                continue;
            };
            tree_phi.iter_mut().for_each(|p| *p = 0.0);
            tree_phi[num_feature] += tree.means.first().copied().unwrap_or(0.0);
            let max_depth = tree.depth + 2;
            path.clear();
            path.resize(max_depth * (max_depth + 1) / 2 + 1, PathElement::default());
            let walk = Walk {
                tree,
                row,
                phi: &mut tree_phi,
                path: &mut path,
            };
            walk.run();
            for (p, t) in phi.iter_mut().zip(&tree_phi) {
                *p += t * tree.weight;
            }
        }
    }
}

/// Deepest tree explained: the walk recurses once per level and keeps a path copy per
/// level (xgboost's own trees are rarely deeper than 20).
const MAX_DEPTH: usize = 256;

/// The deepest leaf's level, if within [`MAX_DEPTH`]. The tree is acyclic (checked when
/// laid out for prediction), so the walk ends.
fn depth_of(nodes: &[ShapNode]) -> Option<usize> {
    let mut deepest = 0;
    let mut stack = vec![(0usize, 0usize)];
    while let Some((node, level)) = stack.pop() {
        if level > MAX_DEPTH {
            return None;
        }
        deepest = deepest.max(level);
        if let Some(n) = nodes.get(node).filter(|n| n.left >= 0) {
            stack.push((n.left as usize, level + 1));
            stack.push((n.right as usize, level + 1));
        }
    }
    Some(deepest)
}

/// Fills `means` below `node`: a leaf's value, or the children's means weighted by their
/// covers (recursion bounded by the depth, checked first).
fn fill_means(nodes: &[ShapNode], node: usize, means: &mut [f32]) -> f32 {
    let Some(&n) = nodes.get(node) else {
        return 0.0;
    };
    let result = if n.left < 0 {
        n.value
    } else {
        let (l, r) = (n.left as usize, n.right as usize);
        let cover = |i: usize| nodes.get(i).map_or(0.0, |c| c.cover);
        let mut result = fill_means(nodes, l, means) * cover(l);
        result += fill_means(nodes, r, means) * cover(r);
        result / n.cover
    };
    if let Some(m) = means.get_mut(node) {
        *m = result;
    }
    result
}

/// One row through one tree.
struct Walk<'a> {
    tree: &'a ShapTree,
    row: &'a [f32],
    phi: &'a mut [f32],
    /// Every level's copy of the unique path, one after another.
    path: &'a mut Vec<PathElement>,
}

impl Walk<'_> {
    fn run(mut self) {
        self.visit(0, 0, 0, 1.0, 1.0, -1);
    }

    /// The recursion of xgboost's `TreeShap` with no conditioning: `parent_at` is where
    /// the parent's path starts in the buffer and `depth` its length less one.
    fn visit(
        &mut self,
        node: usize,
        parent_at: usize,
        mut depth: usize,
        parent_zero: f32,
        parent_one: f32,
        parent_feature: i64,
    ) {
        let at = parent_at + depth + 1;
        if at + depth + 2 > self.path.len() {
            self.path.resize(at + depth + 2, PathElement::default());
        }
        self.path.copy_within(parent_at..parent_at + depth + 1, at);
        let path = &mut self.path[at..];
        extend(path, depth, parent_zero, parent_one, parent_feature);
        let Some(&n) = self.tree.nodes.get(node) else {
            return;
        };
        if n.left < 0 {
            for i in 1..=depth {
                let w = unwound_sum(path, depth, i);
                let el = path[i];
                if let Some(p) = usize::try_from(el.feature)
                    .ok()
                    .and_then(|f| self.phi.get_mut(f))
                {
                    *p += w * (el.one - el.zero) * n.value * 1.0;
                }
            }
            return;
        }
        let x = self
            .row
            .get(n.feature as usize)
            .copied()
            .unwrap_or(f32::NAN);
        let go_left = if x.is_nan() {
            n.default_left
        } else {
            x < n.value
        };
        let (hot, cold) = if go_left {
            (n.left as usize, n.right as usize)
        } else {
            (n.right as usize, n.left as usize)
        };
        let nodes = &self.tree.nodes;
        let (Some(h), Some(c)) = (nodes.get(hot), nodes.get(cold)) else {
            return;
        };
        let hot_zero = h.cover / n.cover;
        let cold_zero = c.cover / n.cover;
        let mut incoming_zero = 1.0;
        let mut incoming_one = 1.0;
        let feature = i64::from(n.feature);
        if let Some(i) = (0..=depth).find(|&i| path[i].feature == feature) {
            incoming_zero = path[i].zero;
            incoming_one = path[i].one;
            unwind(path, depth, i);
            depth -= 1;
        }
        self.visit(
            hot,
            at,
            depth + 1,
            hot_zero * incoming_zero,
            incoming_one,
            feature,
        );
        self.visit(cold, at, depth + 1, cold_zero * incoming_zero, 0.0, feature);
    }
}

/// Extends the path with a feature, updating the permutation weights.
fn extend(path: &mut [PathElement], depth: usize, zero: f32, one: f32, feature: i64) {
    path[depth] = PathElement {
        feature,
        zero,
        one,
        pweight: if depth == 0 { 1.0 } else { 0.0 },
    };
    let d1 = (depth + 1) as f32;
    for i in (0..depth).rev() {
        path[i + 1].pweight += one * path[i].pweight * (i + 1) as f32 / d1;
        path[i].pweight = zero * path[i].pweight * (depth - i) as f32 / d1;
    }
}

/// Undoes the extension at `index` (the feature is split on again further down).
fn unwind(path: &mut [PathElement], depth: usize, index: usize) {
    let one = path[index].one;
    let zero = path[index].zero;
    let d1 = (depth + 1) as f32;
    let mut next_one = path[depth].pweight;
    for i in (0..depth).rev() {
        if one != 0.0 {
            let tmp = path[i].pweight;
            path[i].pweight = next_one * d1 / ((i + 1) as f32 * one);
            next_one = tmp - path[i].pweight * zero * (depth - i) as f32 / d1;
        } else {
            path[i].pweight = (path[i].pweight * d1) / (zero * (depth - i) as f32);
        }
    }
    for i in index..depth {
        path[i].feature = path[i + 1].feature;
        path[i].zero = path[i + 1].zero;
        path[i].one = path[i + 1].one;
    }
}

/// The total permutation weight if the extension at `index` were undone.
fn unwound_sum(path: &[PathElement], depth: usize, index: usize) -> f32 {
    let one = path[index].one;
    let zero = path[index].zero;
    let d1 = (depth + 1) as f32;
    let mut next_one = path[depth].pweight;
    let mut total = 0.0;
    for i in (0..depth).rev() {
        if one != 0.0 {
            let tmp = next_one * d1 / ((i + 1) as f32 * one);
            total += tmp;
            next_one = path[i].pweight - tmp * zero * ((depth - i) as f32 / d1);
        } else if zero != 0.0 {
            total += (path[i].pweight / zero) / ((depth - i) as f32 / d1);
        }
    }
    total
}
