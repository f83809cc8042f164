//! A test component that imports `wasi:keyvalue/atomics`, an interface the host does not
//! offer, so loading it must fail.

wit_bindgen::generate!({ path: "../../../wit", world: "activity-host:testing/forbidden", generate_all });

use wasi::keyvalue::{atomics, store};

struct Forbidden;

impl Guest for Forbidden {
    fn touch() -> u64 {
        let bucket = store::open("counters").expect("open");
        atomics::increment(&bucket, "hits", 1).unwrap_or(0)
    }
}

export!(Forbidden);
