//! One CSV cell read as each field type, as `LoadFile` and `features load` read them.
#![no_main]

use mercator_features::FieldType;

const TYPES: [FieldType; 7] = [
    FieldType::Float32,
    FieldType::Float64,
    FieldType::Int64,
    FieldType::String,
    FieldType::Bool,
    FieldType::Float32List,
    FieldType::Date,
];

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&pick, cell)) = data.split_first() else {
        return;
    };
    let Ok(cell) = std::str::from_utf8(cell) else {
        return;
    };
    let t = TYPES[usize::from(pick) % TYPES.len()];
    if let Ok(value) = mercator_features::ingest::parse_value(t, cell) {
        // What parses must also pass the write check of its own type.
        assert_eq!(t.refuses(&value), None, "{t:?} parsed a value it then refuses");
    }
});
