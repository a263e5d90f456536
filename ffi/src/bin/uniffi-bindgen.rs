//! Generates the Kotlin, Swift and Python bindings from the built library:
//! `cargo run -p offst-ffi --features cli --bin uniffi-bindgen -- generate <lib> --language kotlin --out-dir <dir>`.

fn main() {
    uniffi::uniffi_bindgen_main()
}
