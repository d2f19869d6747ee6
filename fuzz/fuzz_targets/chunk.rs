//! The chunk stream reader on arbitrary bytes, at a chunk size the input chooses.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ngx_rtmp_rs::rtmp::chunk::Reader;

fuzz_target!(|data: &[u8]| {
    let Some((&size, rest)) = data.split_first() else { return };
    let mut r = Reader::new(64 * 1024);
    r.set_chunk_size(1 + size as usize * 37);
    // Feed in two parts so partial chunks are exercised.
    let (a, b) = rest.split_at(rest.len() / 2);
    for part in [a, b] {
        r.push(part);
        while let Ok(Some(m)) = r.read_message() {
            assert!(m.payload.len() <= 64 * 1024);
        }
    }
});
