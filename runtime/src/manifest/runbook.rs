//! A churn model's runbook: which action each scored customer calls for, by risk band,
//! reasons and values, so operations can act on a score without an ML engineer.
//!
//! ```json
//! "runbook": [
//!   {"rule": "late_deliveries", "band": "high", "top_reason": "late_deliveries_90d",
//!    "action": "apology_voucher"},
//!   {"rule": "unhappy", "band": "high", "feature": "last_nps", "below": 7,
//!    "action": "callback_from_care"},
//!   {"rule": "nudge", "band": "medium", "action": "loyalty_reminder"}
//! ]
//! ```
//!
//! Rules are tried in order and the first whose conditions all hold chooses the action;
//! a rule without conditions matches everyone. Conditions: `band` (one of the manifest's
//! `risk_bands`); `top_reason`, a feature among the customer's `within` (default 1)
//! largest contributions that raise the risk; `feature` with `below` and/or `above`, its
//! value as served (a missing or expired value, filled by a default, never matches).
//! Features are named as the input binds them (`view:field`), by the input's
//! `feature_names`, or by the bound field alone. Checked at registration: a rule naming
//! an unknown band or feature refuses the version.
//!
//! A rule may hold out a share of the customers it matches as a control group,
//! `"control": 0.1` (from 0 up to, not including, 1): they are told the action that
//! would be taken and that they are in control, and nothing is done for them, so the
//! action's effect can be measured against them. Assignment is by the experiment's name,
//! `"experiment"`, which defaults to `<rule>:<action>:<control>`: changing the action or
//! the share starts a new experiment. `"action_costs": {"apology_voucher": 5.0}` beside
//! the runbook gives what one action costs, for the experiment report's cost per
//! customer retained.
//!
//! A rule may target by uplift rather than risk: `"uplift_above": 0.05` matches only
//! customers whose uplift (how much the action raises the favourable outcome's
//! probability, from the `uplift` model kind) is above it. The manifest names that model,
//! `"uplift_model": "churn_uplift"`; the server scores it beside the churn model, and a
//! rule with `uplift_above` and no `uplift_model` refuses the version.

use serde::Deserialize;

use super::{Manifest, RiskBand};
use crate::{Result, RuntimeError};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleDoc {
    rule: String,
    action: String,
    #[serde(default)]
    band: Option<String>,
    #[serde(default)]
    top_reason: Option<String>,
    #[serde(default)]
    within: Option<usize>,
    #[serde(default)]
    feature: Option<String>,
    #[serde(default)]
    below: Option<f64>,
    #[serde(default)]
    above: Option<f64>,
    #[serde(default)]
    control: Option<f64>,
    #[serde(default)]
    experiment: Option<String>,
    #[serde(default)]
    uplift_above: Option<f64>,
}

/// One checked rule; features are columns of the model's input.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// The rule's name, returned with the action it chose.
    pub rule: String,
    /// The action to take.
    pub action: String,
    /// Only customers in this band.
    pub band: Option<String>,
    /// Only customers with this column among their `within` largest risk-raising
    /// contributions.
    pub top_reason: Option<(usize, usize)>,
    /// Only customers whose served value of this column is below `.1` and above `.2`.
    pub value: Option<(usize, Option<f64>, Option<f64>)>,
    /// The share of matched customers held out as a control group (0: none).
    pub control: f64,
    /// The experiment the control group belongs to (its name decides who is held out).
    pub experiment: String,
    /// Only customers whose uplift is above this.
    pub uplift_above: Option<f64>,
}

/// What one scored customer looks like to the rules.
#[derive(Debug, Clone, Copy)]
pub struct Case<'a> {
    /// The risk band.
    pub band: &'a str,
    /// Each column's contribution (empty when none were computed: see
    /// [`Runbook::needs_reasons`]).
    pub contributions: &'a [f32],
    /// Each column's value as the model saw it.
    pub values: &'a [f64],
    /// Per column, whether its value was served (not missing, not expired).
    pub served: &'a [bool],
    /// The customer's uplift, when the uplift model scored them.
    pub uplift: Option<f64>,
}

/// The rules, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Runbook {
    /// Tried in order; the first that matches chooses.
    pub rules: Vec<Rule>,
    /// What one of each action costs (`action_costs`), for those the manifest prices.
    pub costs: std::collections::BTreeMap<String, f64>,
    /// The model whose `uplift` output the rules with `uplift_above` read.
    pub uplift_model: Option<String>,
}

impl Runbook {
    /// Parses and checks the manifest's `runbook`, if it has one.
    pub fn of(manifest: &Manifest, bands: &[RiskBand]) -> Result<Option<Runbook>> {
        let Some(value) = manifest.extra.get("runbook") else {
            return Ok(None);
        };
        let fail = |m: String| RuntimeError::Signature(format!("runbook{m}"));
        let docs: Vec<RuleDoc> =
            serde_json::from_value(value.clone()).map_err(|e| fail(format!(": {e}")))?;
        let [input] = manifest.inputs.as_slice() else {
            return Err(fail(": the model must have exactly one input".into()));
        };
        let column = |name: &str| -> Option<usize> {
            input
                .features
                .iter()
                .position(|b| {
                    b.feature == name || b.feature.split_once(':').is_some_and(|(_, f)| f == name)
                })
                .or_else(|| input.feature_names.iter().position(|n| n == name))
        };
        let uplift_model = match manifest.extra.get("uplift_model") {
            None => None,
            Some(serde_json::Value::String(m)) if valid_model_name(m) => Some(m.clone()),
            Some(v) => {
                return Err(RuntimeError::Signature(format!(
                    "uplift_model: {v} is not a model name (letters, digits, '_', '-', '.')"
                )));
            }
        };
        let mut rules: Vec<Rule> = Vec::with_capacity(docs.len());
        for (i, d) in docs.into_iter().enumerate() {
            let at = |field: &str, m: String| fail(format!("[{i}].{field}: {m}"));
            if d.rule.trim().is_empty() || rules.iter().any(|r| r.rule == d.rule) {
                return Err(at("rule", "each rule needs a name of its own".into()));
            }
            if d.action.trim().is_empty() {
                return Err(at("action", "must name an action".into()));
            }
            if let Some(b) = &d.band
                && !bands.iter().any(|k| &k.name == b)
            {
                let known: Vec<&str> = bands.iter().map(|k| k.name.as_str()).collect();
                return Err(at(
                    "band",
                    format!("'{b}' is not one of the risk bands {known:?}"),
                ));
            }
            let unknown =
                |field: &str, f: &str| at(field, format!("the input has no feature '{f}'"));
            let top_reason = match &d.top_reason {
                Some(f) => {
                    let c = column(f).ok_or_else(|| unknown("top_reason", f))?;
                    let within = d.within.unwrap_or(1);
                    if within == 0 {
                        return Err(at("within", "must be at least 1".into()));
                    }
                    Some((c, within))
                }
                None if d.within.is_some() => {
                    return Err(at("within", "counts reasons: give a top_reason".into()));
                }
                None => None,
            };
            let value = match &d.feature {
                Some(f) => {
                    let c = column(f).ok_or_else(|| unknown("feature", f))?;
                    if d.below.is_none() && d.above.is_none() {
                        return Err(at("feature", "give below and/or above".into()));
                    }
                    for (name, v) in [("below", d.below), ("above", d.above)] {
                        if v.is_some_and(|v| !v.is_finite()) {
                            return Err(at(name, "must be a finite number".into()));
                        }
                    }
                    Some((c, d.below, d.above))
                }
                None if d.below.is_some() || d.above.is_some() => {
                    return Err(at(
                        "feature",
                        "below and above compare a feature: name it".into(),
                    ));
                }
                None => None,
            };
            let control = d.control.unwrap_or(0.0);
            if !(0.0..1.0).contains(&control) {
                return Err(at(
                    "control",
                    format!("{control} is not a share from 0 up to (not including) 1"),
                ));
            }
            let experiment = match d.experiment {
                Some(e) if e.trim().is_empty() || e.len() > 128 => {
                    return Err(at("experiment", "give a name of 1 to 128 bytes".into()));
                }
                Some(e) => e,
                None if control > 0.0 => format!("{}:{}:{control}", d.rule, d.action),
                None => String::new(),
            };
            if let Some(u) = d.uplift_above {
                if !(-1.0..1.0).contains(&u) {
                    return Err(at(
                        "uplift_above",
                        format!("{u} is not an uplift in [-1, 1)"),
                    ));
                }
                if uplift_model.is_none() {
                    return Err(at(
                        "uplift_above",
                        "targets by uplift: name the uplift model in the manifest (\"uplift_model\": \"…\")".into(),
                    ));
                }
            }
            rules.push(Rule {
                rule: d.rule,
                action: d.action,
                band: d.band,
                top_reason,
                value,
                control,
                experiment,
                uplift_above: d.uplift_above,
            });
        }
        let costs: std::collections::BTreeMap<String, f64> = match manifest
            .extra
            .get("action_costs")
        {
            Some(v) => serde_json::from_value(v.clone()).map_err(|e| {
                RuntimeError::Signature(format!("action_costs: {e} (write {{\"action\": cost}})"))
            })?,
            None => Default::default(),
        };
        for (action, cost) in &costs {
            if !cost.is_finite() || *cost < 0.0 {
                return Err(RuntimeError::Signature(format!(
                    "action_costs.{action}: a cost is a finite amount ≥ 0"
                )));
            }
            if !rules.iter().any(|r| &r.action == action) {
                return Err(RuntimeError::Signature(format!(
                    "action_costs.{action}: no runbook rule takes this action"
                )));
            }
        }
        Ok(Some(Runbook {
            rules,
            costs,
            uplift_model,
        }))
    }

    /// Whether a customer in `band` could match a rule that reads reasons: only then are
    /// contributions worth computing for them.
    pub fn needs_reasons(&self, band: &str) -> bool {
        self.rules
            .iter()
            .any(|r| r.top_reason.is_some() && r.band.as_deref().is_none_or(|b| b == band))
    }

    /// The model to score for uplift, when a rule reads it.
    pub fn reads_uplift(&self) -> Option<&str> {
        self.uplift_model
            .as_deref()
            .filter(|_| self.rules.iter().any(|r| r.uplift_above.is_some()))
    }

    /// The first rule that matches the customer, if any.
    pub fn choose(&self, case: &Case<'_>) -> Option<&Rule> {
        self.rules.iter().find(|r| matches(r, case))
    }
}

/// A name the registry accepts for a model (its `check_name`: 1–64 of a-z, 0-9, `-`,
/// `_`, `.`, never `..`, starting with a letter or digit); the runtime cannot ask it.
fn valid_model_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
        && !name.contains("..")
}

fn matches(rule: &Rule, case: &Case<'_>) -> bool {
    if rule.band.as_deref().is_some_and(|b| b != case.band) {
        return false;
    }
    // No uplift (the customer unknown to the uplift model's features) never matches.
    if let Some(above) = rule.uplift_above
        && !case.uplift.is_some_and(|u| u > above)
    {
        return false;
    }
    if let Some((c, within)) = rule.top_reason {
        let Some(&mine) = case.contributions.get(c) else {
            return false;
        };
        // Among the `within` largest risk-raising contributions: fewer than `within`
        // raise the risk more (ties go to the lower column, as reasons are listed).
        let larger = case
            .contributions
            .iter()
            .enumerate()
            .filter(|&(k, &v)| v > mine || (v == mine && k < c))
            .count();
        if !(mine > 0.0 && larger < within) {
            return false;
        }
    }
    if let Some((c, below, above)) = rule.value {
        let served = case.served.get(c).copied().unwrap_or(false);
        let Some(&v) = case.values.get(c).filter(|_| served) else {
            return false;
        };
        // NaN compares as neither: it matches no bound.
        let is = |bound: Option<f64>, want: std::cmp::Ordering| {
            bound.is_none_or(|b| v.partial_cmp(&b) == Some(want))
        };
        if !is(below, std::cmp::Ordering::Less) || !is(above, std::cmp::Ordering::Greater) {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(runbook: serde_json::Value) -> Result<Option<Runbook>> {
        priced(runbook, serde_json::Value::Null)
    }

    fn priced(runbook: serde_json::Value, costs: serde_json::Value) -> Result<Option<Runbook>> {
        let unpriced = costs.is_null();
        let mut doc = serde_json::json!({
            "kind": "xgboost", "weights": "model.json",
            "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 3],
                "feature_names": ["late", "nps", "orders"],
                "features": [{"feature": "c:late"}, {"feature": "c:nps"}, {"feature": "c:orders"}]}],
            "outputs": [{"name": "p", "datatype": "FP32", "shape": [-1]}],
            "risk_bands": {"low": 0.0, "medium": 0.3, "high": 0.6},
            "runbook": runbook,
            "action_costs": costs,
        });
        if let Some(m) = doc.as_object_mut().filter(|_| unpriced) {
            m.remove("action_costs");
        }
        let m = Manifest::parse(doc.to_string().as_bytes())?;
        let bands = m.risk_bands()?;
        Runbook::of(&m, &bands)
    }

    #[test]
    fn the_first_matching_rule_chooses() {
        let book = manifest(serde_json::json!([
            {"rule": "late", "band": "high", "top_reason": "late", "action": "voucher"},
            {"rule": "unhappy", "band": "high", "feature": "c:nps", "below": 7, "action": "call"},
            {"rule": "nudge", "band": "medium", "action": "reminder"},
        ]))
        .expect("valid")
        .expect("present");
        let served = [true, true, false];
        let case = |band, contributions, values| Case {
            band,
            contributions,
            values,
            served: &served,
            uplift: None,
        };
        let pick = |c: &Case<'_>| book.choose(c).map(|r| r.rule.as_str());
        assert_eq!(
            pick(&case("high", &[0.9, 0.5, 0.1], &[3.0, 9.0, 1.0])),
            Some("late")
        );
        assert_eq!(
            pick(&case("high", &[0.4, 0.5, 0.1], &[3.0, 5.0, 1.0])),
            Some("unhappy")
        );
        assert_eq!(
            pick(&case("high", &[0.4, 0.5, 0.1], &[3.0, 9.0, 1.0])),
            None
        );
        assert_eq!(
            pick(&case("high", &[-0.9, -0.5, 0.1], &[3.0, 9.0, 1.0])),
            None,
            "late lowers the risk"
        );
        assert_eq!(pick(&case("medium", &[], &[0.0; 3])), Some("nudge"));
        assert_eq!(pick(&case("low", &[0.9, 0.0, 0.0], &[0.0; 3])), None);
        assert!(book.needs_reasons("high") && !book.needs_reasons("medium"));
        let missing = Case {
            band: "high",
            contributions: &[0.1, 0.5, 0.0],
            values: &[0.0, 1.0, 0.0],
            served: &[false; 3],
            uplift: None,
        };
        assert_eq!(pick(&missing), None, "a default never matches a value rule");
    }

    #[test]
    fn a_rule_targets_by_uplift_from_the_named_model() {
        let with_model = |model: serde_json::Value, above: f64| {
            let mut doc = serde_json::json!({
                "kind": "xgboost", "weights": "model.json",
                "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 1],
                    "features": [{"feature": "c:late"}]}],
                "outputs": [{"name": "p", "datatype": "FP32", "shape": [-1]}],
                "runbook": [{"rule": "worth_it", "uplift_above": above, "action": "voucher"}],
                "uplift_model": model,
            });
            if doc["uplift_model"].is_null()
                && let Some(m) = doc.as_object_mut()
            {
                m.remove("uplift_model");
            }
            let m = Manifest::parse(doc.to_string().as_bytes())?;
            Runbook::of(&m, &[])
        };
        let book = with_model("churn_uplift".into(), 0.05)
            .expect("valid")
            .expect("present");
        assert_eq!(book.reads_uplift(), Some("churn_uplift"));
        let case = |uplift| Case {
            band: "",
            contributions: &[],
            values: &[0.0],
            served: &[true],
            uplift,
        };
        let pick = |u| book.choose(&case(u)).map(|r| r.rule.as_str());
        assert_eq!(pick(Some(0.2)), Some("worth_it"));
        assert_eq!(pick(Some(0.05)), None, "above, not at");
        assert_eq!(pick(Some(-0.1)), None);
        assert_eq!(pick(None), None, "no uplift never matches");
        for (model, above, says) in [
            (serde_json::Value::Null, 0.05, "runbook[0].uplift_above"),
            ("a/b".into(), 0.05, "uplift_model: "),
            ("m".into(), 1.5, "runbook[0].uplift_above: 1.5"),
        ] {
            let err = with_model(model, above).expect_err(says).to_string();
            assert!(err.contains(says), "{err} should say {says}");
        }
    }

    #[test]
    fn action_costs_price_the_runbooks_actions() {
        let rules = serde_json::json!([{"rule": "a", "action": "voucher"}]);
        let book = priced(rules.clone(), serde_json::json!({"voucher": 5.0}))
            .expect("valid")
            .expect("present");
        assert_eq!(book.costs.get("voucher"), Some(&5.0));
        for (costs, says) in [
            (
                serde_json::json!({"call": 1.0}),
                "action_costs.call: no runbook rule",
            ),
            (
                serde_json::json!({"voucher": -1.0}),
                "action_costs.voucher: a cost",
            ),
            (serde_json::json!(["voucher"]), "action_costs: "),
        ] {
            let err = priced(rules.clone(), costs).expect_err(says).to_string();
            assert!(err.contains(says), "{err} should say {says}");
        }
    }

    #[test]
    fn bad_rules_are_refused_naming_the_rule_and_field() {
        for (rules, says) in [
            (
                serde_json::json!([{"rule": "a", "band": "severe", "action": "x"}]),
                "runbook[0].band: 'severe'",
            ),
            (
                serde_json::json!([{"rule": "a", "top_reason": "nope", "action": "x"}]),
                "runbook[0].top_reason: the input has no feature 'nope'",
            ),
            (
                serde_json::json!([{"rule": "a", "feature": "nps", "action": "x"}]),
                "runbook[0].feature: give below",
            ),
            (
                serde_json::json!([{"rule": "a", "below": 3, "action": "x"}]),
                "runbook[0].feature",
            ),
            (
                serde_json::json!([{"rule": "a", "action": ""}]),
                "runbook[0].action",
            ),
            (
                serde_json::json!([{"rule": "a", "action": "x"}, {"rule": "a", "action": "y"}]),
                "runbook[1].rule",
            ),
            (
                serde_json::json!([{"rule": "a", "top_reason": "late", "within": 0, "action": "x"}]),
                "runbook[0].within",
            ),
            (
                serde_json::json!([{"rule": "a", "action": "x", "colour": "red"}]),
                "unknown field",
            ),
            (
                serde_json::json!([{"rule": "a", "action": "x", "control": 1.0}]),
                "runbook[0].control: 1 is not a share",
            ),
            (
                serde_json::json!([{"rule": "a", "action": "x", "control": -0.1}]),
                "runbook[0].control",
            ),
            (
                serde_json::json!([{"rule": "a", "action": "x", "control": 0.1, "experiment": " "}]),
                "runbook[0].experiment",
            ),
            (serde_json::json!({"rule": "a"}), "runbook: "),
            (
                serde_json::json!([{"rule": "a", "action": "x", "uplift_above": 0.05}]),
                "runbook[0].uplift_above: targets by uplift: name the uplift model",
            ),
        ] {
            let err = manifest(rules).expect_err(says).to_string();
            assert!(err.contains(says), "{err} should say {says}");
        }
        assert!(manifest(serde_json::json!([{"rule": "all", "action": "x"}])).is_ok());
        // A control share names its experiment after the rule, action and share, unless
        // the manifest names it.
        let book = manifest(serde_json::json!([
            {"rule": "a", "action": "x", "control": 0.1, "band": "high"},
            {"rule": "b", "action": "y", "control": 0.2, "experiment": "spring"},
            {"rule": "c", "action": "z"},
        ]))
        .expect("valid")
        .expect("present");
        let names: Vec<(&str, f64)> = book
            .rules
            .iter()
            .map(|r| (r.experiment.as_str(), r.control))
            .collect();
        assert_eq!(names, [("a:x:0.1", 0.1), ("spring", 0.2), ("", 0.0)]);
    }
}
