//! An FRM.01.03 list as a portal uploads it (xlsx or csv): any bytes must read to a report or
//! an error, never panic, within the reader's limits.
#![no_main]

use nesca_frm_list::{read_list, ListFormat};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = read_list(data, ListFormat::Xlsx);
    let _ = read_list(data, ListFormat::Csv);
});
