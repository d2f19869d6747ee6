//! AMF0 (with AMF3 values) decoding of arbitrary bytes; what decodes re-encodes and decodes
//! to the same values.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ngx_rtmp_rs::rtmp::amf::{encode, Reader, Value};

fn has_amf3_or_nan(v: &Value) -> bool {
    match v {
        Value::Amf3(_) => true,
        Value::Number(n) | Value::Date(n) => n.is_nan(),
        Value::Object(p) | Value::EcmaArray(p) => p.iter().any(|(_, v)| has_amf3_or_nan(v)),
        Value::StrictArray(items) => items.iter().any(has_amf3_or_nan),
        _ => false,
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(values) = Reader::new(data).read_all() {
        if !values.iter().any(has_amf3_or_nan) {
            let again = Reader::new(&encode(&values)).read_all().expect("re-encoded values decode");
            assert_eq!(again, values);
        }
    }
});
