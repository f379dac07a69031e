//! XGBoost's JSON model document: the learner, its objective and base score (a number
//! in 2.x, a vector in 3.x), and the trees, appended to one flat node array.

use serde::Deserialize;
use serde_json::Value;

use super::{DEFAULT_LEFT, LEAF, Node};
use crate::{Result, RuntimeError};

/// The facts of an XGBoost model that a manifest needs, read from its JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct XgbSummary {
    /// The objective's name, e.g. `binary:logistic`.
    pub objective: String,
    /// Number of input features.
    pub num_feature: usize,
    /// Number of classes for multi-class objectives, 0 otherwise.
    pub num_class: usize,
    /// Feature names, when the model was trained with them.
    pub feature_names: Vec<String>,
    /// Number of trees.
    pub num_trees: usize,
}

#[derive(Deserialize)]
pub(super) struct Document {
    pub(super) learner: Learner,
}

#[derive(Deserialize)]
pub(super) struct Learner {
    #[serde(default)]
    pub(super) feature_names: Vec<String>,
    pub(super) gradient_booster: Value,
    pub(super) learner_model_param: LearnerModelParam,
    pub(super) objective: ObjectiveDoc,
}

#[derive(Deserialize)]
pub(super) struct LearnerModelParam {
    pub(super) base_score: String,
    #[serde(default)]
    pub(super) num_class: Option<String>,
    pub(super) num_feature: String,
    #[serde(default)]
    pub(super) num_target: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct ObjectiveDoc {
    pub(super) name: String,
}

#[derive(Deserialize)]
pub(super) struct GbTreeModel {
    pub(super) tree_info: Vec<i64>,
    pub(super) trees: Vec<TreeDoc>,
}

#[derive(Deserialize)]
pub(super) struct TreeDoc {
    pub(super) left_children: Vec<i64>,
    pub(super) right_children: Vec<i64>,
    pub(super) split_indices: Vec<i64>,
    pub(super) split_conditions: Vec<f32>,
    /// 0/1 integers in most versions, booleans in some.
    pub(super) default_left: Vec<Value>,
    #[serde(default)]
    pub(super) split_type: Vec<i64>,
    /// Each node's cover, which contributions (TreeSHAP) weigh paths by.
    #[serde(default)]
    pub(super) sum_hessian: Vec<f32>,
    pub(super) tree_param: TreeParam,
}

#[derive(Deserialize)]
pub(super) struct TreeParam {
    pub(super) num_nodes: String,
    #[serde(default)]
    pub(super) size_leaf_vector: Option<String>,
}

pub(super) fn parse_num<T: std::str::FromStr>(field: &str, text: &str) -> Result<T> {
    text.trim()
        .parse()
        .map_err(|_| RuntimeError::artifact(format!("{field}: '{text}' is not a number")))
}

/// Parses `base_score` in either dialect: `"5E-1"` (2.x) or `"[5E-1]"` / `"[0E0,0E0]"` (3.x).
pub(super) fn parse_base_score(text: &str) -> Result<Vec<f32>> {
    let t = text.trim();
    match t.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
        Some(inner) => inner
            .split(',')
            .map(|s| parse_num("base_score", s))
            .collect(),
        None => Ok(vec![parse_num("base_score", t)?]),
    }
}

pub(super) fn flag(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_i64().unwrap_or(0) != 0,
        _ => false,
    }
}

pub(super) fn parse_document(json: &[u8]) -> Result<(Learner, GbTreeModel, Option<Vec<f32>>)> {
    let doc: Document = serde_json::from_slice(json)
        .map_err(|e| RuntimeError::artifact(format!("not an XGBoost JSON model: {e}")))?;
    let gb = &doc.learner.gradient_booster;
    let name = gb.get("name").and_then(Value::as_str).unwrap_or("gbtree");
    let (model_value, weights) = match name {
        "gbtree" => (gb.get("model"), None),
        "dart" => {
            let weights: Vec<f32> = gb
                .get("weight_drop")
                .map(|w| serde_json::from_value(w.clone()))
                .transpose()
                .map_err(|e| RuntimeError::artifact(format!("dart weight_drop: {e}")))?
                .unwrap_or_default();
            (gb.get("gbtree").and_then(|g| g.get("model")), Some(weights))
        }
        other => {
            return Err(RuntimeError::artifact(format!(
                "booster '{other}' is not supported (gbtree, dart)"
            )));
        }
    };
    let model_value =
        model_value.ok_or_else(|| RuntimeError::artifact("gradient_booster has no model"))?;
    let model: GbTreeModel = serde_json::from_value(model_value.clone())
        .map_err(|e| RuntimeError::artifact(format!("gradient_booster.model: {e}")))?;
    Ok((doc.learner, model, weights))
}

/// Reads the facts a manifest needs (objective, width, classes) without building trees.
pub fn summarize(json: &[u8]) -> Result<XgbSummary> {
    let (learner, model, _) = parse_document(json)?;
    summary_of(&learner, &model)
}

pub(super) fn summary_of(learner: &Learner, model: &GbTreeModel) -> Result<XgbSummary> {
    let p = &learner.learner_model_param;
    Ok(XgbSummary {
        objective: learner.objective.name.clone(),
        num_feature: parse_num("num_feature", &p.num_feature)?,
        num_class: p
            .num_class
            .as_deref()
            .map(|c| parse_num("num_class", c))
            .transpose()?
            .unwrap_or(0),
        feature_names: learner.feature_names.clone(),
        num_trees: model.trees.len(),
    })
}

pub(super) fn append_tree(
    nodes: &mut Vec<Node>,
    tree: &TreeDoc,
    t: usize,
    weight: f32,
    num_feature: usize,
) -> Result<u8> {
    let n: usize = parse_num("num_nodes", &tree.tree_param.num_nodes)?;
    if let Some(s) = tree.tree_param.size_leaf_vector.as_deref()
        && parse_num::<usize>("size_leaf_vector", s)? > 1
    {
        return Err(RuntimeError::artifact(
            "vector-leaf (multi-target) trees are not supported",
        ));
    }
    let lens = [
        tree.left_children.len(),
        tree.right_children.len(),
        tree.split_indices.len(),
        tree.split_conditions.len(),
        tree.default_left.len(),
    ];
    if n == 0 || lens.iter().any(|&l| l != n) {
        return Err(RuntimeError::artifact(format!(
            "tree {t}: node arrays disagree with num_nodes {n}"
        )));
    }
    if tree.split_type.iter().any(|&s| s != 0) {
        return Err(RuntimeError::artifact(format!(
            "tree {t}: categorical splits are not supported"
        )));
    }
    // Breadth-first relayout: each internal node gets two fresh consecutive slots for its
    // children. A node reached twice (a cycle or shared child) is refused.
    let offset = nodes.len();
    let base = u32::try_from(offset + n).map_err(|_| RuntimeError::artifact("too many nodes"))?;
    nodes.resize(
        offset + n,
        Node {
            value: 0.0,
            feature: 0,
            left: LEAF,
        },
    );
    let mut seen = vec![false; n];
    let mut queue = std::collections::VecDeque::from([(0usize, offset, 0u8)]);
    seen[0] = true;
    let mut next_free = offset + 1;
    let mut depth = 0u8;
    // A leaf splits on the extra column walks give every row (−∞, always left) and its
    // left child is itself: a walk that reaches it stays (see `walk.rs`).
    let sentinel =
        u32::try_from(num_feature).map_err(|_| RuntimeError::artifact("too many features"))?;
    while let Some((old, slot, level)) = queue.pop_front() {
        depth = depth.max(level);
        let left = tree.left_children[old];
        if left == -1 {
            let value = tree.split_conditions[old] * weight;
            if !value.is_finite() {
                return Err(RuntimeError::artifact(format!(
                    "tree {t}: leaf {old} has the value {value}"
                )));
            }
            nodes[slot] = Node {
                value,
                feature: sentinel,
                left: slot as u32,
            };
            continue;
        }
        let feature = tree.split_indices[old];
        if feature < 0 || feature as usize >= num_feature {
            return Err(RuntimeError::artifact(format!(
                "tree {t}: split on feature {feature} of {num_feature}"
            )));
        }
        let right = tree.right_children[old];
        for c in [left, right] {
            if c <= 0 || c as usize >= n || std::mem::replace(&mut seen[c as usize], true) {
                return Err(RuntimeError::artifact(format!(
                    "tree {t}: node {old} has a bad child {c}"
                )));
            }
        }
        let default_left = if flag(&tree.default_left[old]) {
            DEFAULT_LEFT
        } else {
            0
        };
        nodes[slot] = Node {
            value: tree.split_conditions[old],
            feature: feature as u32 | default_left,
            left: next_free as u32,
        };
        let below = level.saturating_add(1);
        queue.push_back((left as usize, next_free, below));
        queue.push_back((right as usize, next_free + 1, below));
        next_free += 2;
    }
    debug_assert!(next_free as u32 <= base);
    // Deleted nodes XGBoost left in the arrays are never reached; their slots stay unused.
    nodes.truncate(next_free);
    Ok(depth)
}
