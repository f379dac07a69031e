//! Walking the trees: every row of a block through each tree in turn, eight rows in
//! lockstep.
//!
//! A walk is a chain of dependent loads (a node, then its child), so one row at a time
//! leaves the CPU waiting on each. Eight rows stepping through the same tree together
//! give it eight independent chains to overlap, and no branch to mispredict: a leaf
//! loops to itself (its split reads the row's extra last column, −∞, which always goes
//! left to the leaf's own index), so every row takes exactly the tree's depth in steps
//! and the loop has a fixed trip count. The rows left over after the groups of eight (a
//! one-row request: all of them), and every row of a tree much deeper than its typical
//! leaf (lossguide growth), walk alone and stop at their leaf instead.
//!
//! Each row still adds its leaves in tree order, so the f32 sums are XGBoost's.

use super::{DEFAULT_LEFT, Node};

/// Rows stepped together through one tree.
const LANES: usize = 8;

/// Trees deeper than this are walked row by row (see the module comment).
pub(super) const MAX_LOCKSTEP_DEPTH: u8 = 16;

/// The child a row goes to from `n`: XGBoost's rule, without a branch.
#[inline(always)]
fn step(nodes: &[Node], i: usize, x: &[f32]) -> usize {
    let n = nodes[i];
    let f = x[(n.feature & !DEFAULT_LEFT) as usize];
    let nan = f.is_nan();
    let default_right = n.feature & DEFAULT_LEFT == 0;
    #[expect(
        clippy::neg_cmp_op_on_partial_ord,
        reason = "XGBoost's rule is `value < threshold` goes left; everything else goes right"
    )]
    let right = (nan & default_right) | (!nan & !(f < n.value));
    n.left as usize + usize::from(right)
}

/// One tree of the flat node array.
#[derive(Debug, Clone, Copy)]
pub(super) struct Tree {
    /// Index of its root.
    pub root: u32,
    /// Its deepest leaf's level.
    pub depth: u8,
    /// The output group (class) it adds to.
    pub group: usize,
}

/// Adds `tree` to each row of `block` (rows of `width` columns, the last one −∞) in
/// `margins` (`groups` per row).
pub(super) fn add_tree(
    nodes: &[Node],
    tree: Tree,
    block: &[f32],
    width: usize,
    margins: &mut [f32],
    groups: usize,
) {
    let Tree { root, depth, group } = tree;
    let rows = block.len() / width;
    // Full groups of eight in lockstep; the rest (and every row of a very deep tree) one
    // by one, stopping at the leaf: a lone row gains nothing from the fixed trip count.
    let lockstep = if depth > MAX_LOCKSTEP_DEPTH {
        0
    } else {
        rows - rows % LANES
    };
    for start in (0..lockstep).step_by(LANES) {
        let mut at = [root as usize; LANES];
        let xs: [&[f32]; LANES] =
            std::array::from_fn(|k| &block[(start + k) * width..(start + k + 1) * width]);
        for _ in 0..depth {
            for k in 0..LANES {
                at[k] = step(nodes, at[k], xs[k]);
            }
        }
        for k in 0..LANES {
            margins[(start + k) * groups + group] += nodes[at[k]].value;
        }
    }
    for r in lockstep..rows {
        let x = &block[r * width..(r + 1) * width];
        let mut i = root as usize;
        loop {
            let next = step(nodes, i, x);
            if next == i {
                break;
            }
            i = next;
        }
        margins[r * groups + group] += nodes[i].value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `f0 < 0.5` (missing: left) → leaf 1; else `f1 < 0` (missing: right) → leaf 2 or 3.
    /// Laid out as `append_tree` does: breadth-first, leaves looping to themselves on the
    /// extra column (index 2).
    fn tree() -> Vec<Node> {
        let leaf = |i: u32, value| Node {
            value,
            feature: 2,
            left: i,
        };
        vec![
            Node {
                value: 0.5,
                feature: DEFAULT_LEFT,
                left: 1,
            },
            leaf(1, 1.0),
            Node {
                value: 0.0,
                feature: 1,
                left: 3,
            },
            leaf(3, 2.0),
            leaf(4, 3.0),
        ]
    }

    #[test]
    fn lockstep_and_row_by_row_walks_reach_the_same_leaves() {
        let nan = f32::NAN;
        let rows: [([f32; 2], f32); 9] = [
            ([0.1, 5.0], 1.0),
            ([0.9, -1.0], 2.0),
            ([0.9, 1.0], 3.0),
            ([nan, -1.0], 1.0),
            ([0.9, nan], 3.0),
            ([0.5, 0.0], 3.0),
            ([-7.0, nan], 1.0),
            ([f32::INFINITY, -0.5], 2.0),
            ([0.6, f32::NEG_INFINITY], 2.0),
        ];
        let block: Vec<f32> = rows
            .iter()
            .flat_map(|(x, _)| [x[0], x[1], f32::NEG_INFINITY])
            .collect();
        let want: Vec<f32> = rows.iter().map(|(_, leaf)| 10.0 + leaf).collect();
        for depth in [2, MAX_LOCKSTEP_DEPTH + 1] {
            let mut margins = vec![10.0; rows.len()];
            let t = Tree {
                root: 0,
                depth,
                group: 0,
            };
            add_tree(&tree(), t, &block, 3, &mut margins, 1);
            assert_eq!(margins, want, "depth {depth}");
        }
    }
}
