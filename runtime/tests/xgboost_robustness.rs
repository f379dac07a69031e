//! A model file is input the server does not control: corrupting any number in a valid
//! XGBoost JSON must give an error or a working model, never a panic, and a model that
//! loads must predict on any row (including NaN and infinities) without panicking.

use mercator_runtime::kinds::xgboost::{OutputValue, XgbModel};
use mercator_runtime::{DType, TensorSpec};
use proptest::prelude::*;

const MODEL: &str = include_str!("fixtures/xgboost/multiclass_softprob-v3.model.json");

fn spec(name: &str, shape: Vec<i64>) -> TensorSpec {
    TensorSpec {
        name: name.into(),
        datatype: DType::F32,
        shape,
        allow_nan: true,
    }
}

/// Replaces the `nth` number in the text (wrapping around) with `replacement`.
fn replace_nth_number(text: &str, nth: usize, replacement: &str) -> String {
    let bytes = text.as_bytes();
    let mut starts = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let prev_is_word = i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'.');
        if (c.is_ascii_digit() || c == b'-') && !prev_is_word {
            let start = i;
            i += 1;
            while i < bytes.len() && (bytes[i].is_ascii_digit() || b".eE+-".contains(&bytes[i])) {
                i += 1;
            }
            starts.push((start, i));
        } else {
            i += 1;
        }
    }
    let (s, e) = starts[nth % starts.len()];
    format!("{}{}{}", &text[..s], replacement, &text[e..])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn corrupted_numbers_never_panic(
        nth in 0usize..200_000,
        replacement in prop_oneof![
            Just("-1".to_string()), Just("0".to_string()), Just("1".to_string()),
            Just("99999999".to_string()), Just("-99999999".to_string()), Just("4294967295".to_string()),
            Just("1e38".to_string()), Just("NaN".to_string()), (-50i64..50).prop_map(|v| v.to_string()),
        ],
        row in proptest::collection::vec(prop_oneof![any::<f32>(), Just(f32::NAN), Just(f32::INFINITY)], 8),
    ) {
        let text = replace_nth_number(MODEL, nth, &replacement);
        let loaded = XgbModel::load(
            text.as_bytes(),
            vec![spec("x", vec![-1, 8])],
            vec![spec("p", vec![-1, 4])],
            vec![OutputValue::Prediction],
        );
        if let Ok(model) = loaded {
            let out = model.predict(&row);
            prop_assert_eq!(out.len(), 4);
        }
    }
}
