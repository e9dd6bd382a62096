//! # cortexprism-wasm-sdk
//!
//! Write Cortex Runtime plugins in Rust by writing only the capability function.
//!
//! ```ignore
//! use cortexprism_wasm_sdk::{register_capability, CapabilityContext};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Deserialize)]
//! struct GreetInput { name: String }
//!
//! #[derive(Serialize)]
//! struct GreetOutput { greeting: String }
//!
//! fn greet(input: GreetInput, ctx: CapabilityContext) -> GreetOutput {
//!     ctx.info(format!("greeting {}", input.name));
//!     GreetOutput { greeting: format!("hello, {}", input.name) }
//! }
//!
//! register_capability!("greet", greet);
//! ```
//!
//! Build the crate as a `cdylib` for `wasm32-wasi` (Rust < 1.78 here) or `wasm32-wasip1`
//! (current Rust) and point the manifest at the `.wasm` with `"allocator": "custom"`.
//!
//! ## What the SDK does for you (Cortex plugin ABI v1, `docs/abi.md`)
//!
//! * **Allocator.** It exports `cortex_alloc(size) -> ptr`, which the host calls once per call to
//!   get a buffer for the input JSON. The manifest's `wasm.allocator` must be `"custom"` (or
//!   `"auto"`, the default, which prefers `cortex_alloc`).
//! * **Capabilities.** [`register_capability!`] exports a function `(i32 ptr, i32 len) -> i32` under
//!   the given name. It decodes the input JSON into the handler's input type with serde, calls the
//!   handler, encodes the output with serde_json and returns a pointer to a 4-byte little-endian
//!   length followed by the JSON bytes.
//!   [`register_raw_capability!`] does the same with raw bytes in and out (no JSON parsing).
//! * **Errors.** Input that does not deserialize, a handler returning `Err(e)`, or output that does
//!   not serialize is reported through the host import `cortex.error` (the caller gets a
//!   `PluginError` with the message) and the capability returns 0.
//! * **Logging.** [`CapabilityContext`] writes log lines through the host import `cortex.log`; the
//!   host turns them into `plugin.log` events.
//! * **Initialisation.** Nothing to do in plugin code, and there is no `main`. A Rust `cdylib` for
//!   `wasm32-wasi` links no WASI start files: it exports neither `_start` (which the host would
//!   refuse) nor `_initialize`. Instead wasm-ld wraps every export in a small shim
//!   (`<name>.command_export`) that runs static constructors first (Rust itself has none) and
//!   `__wasm_call_dtors` after; Rust's standard library initialises lazily. If a future toolchain
//!   adds `_initialize`, the host calls it once per fresh instance before anything else.
//! * **Memory.** Every call runs in a fresh instance that is thrown away afterwards, so the SDK
//!   never frees the input buffer or the result it hands to the host (they live until the
//!   instance is discarded). Statics start from their initial values on every call.
//!
//! ## Panics
//!
//! A panic in a handler aborts the instance: Rust's standard panic message is written to stderr
//! (the host captures it as a `plugin.log` event with `stream: "stderr"`) and the call fails with
//! `PluginTrap` (`unreachable`). Report expected failures by returning `Err(..)` instead.
//!
//! ## Input nesting
//!
//! serde_json's recursion limit of 128 is lifted so that inputs may nest as deep as the other
//! language SDKs accept: the SDK counts the arrays/objects it deserialises into your types and
//! refuses more than [`MAX_INPUT_DEPTH`] (1024) levels with an error (no stack overflow).
//! Unknown fields, however deep, are skipped without recursion.
//!
//! ## Structs are JSON objects
//!
//! serde's derived `Deserialize` would also build a struct from a JSON array of its field values
//! (`["hi", "reverse"]`). The SDK refuses that, at any depth: a struct input must be an object
//! (`invalid type: sequence, expected struct TransformInput`). Tuples and tuple structs are
//! still arrays.

#![warn(missing_docs)]
#![warn(unsafe_op_in_unsafe_fn)]

use std::fmt;

mod strict;

/// Re-export of the `serde` version the SDK was built with (for macros and convenience).
pub use serde;
/// Re-export of the `serde_json` version the SDK was built with.
pub use serde_json;

/// Inputs nested deeper than this many arrays/objects are refused with an error.
pub const MAX_INPUT_DEPTH: usize = 1024;

// ---------------------------------------------------------------------------------------------
// Host imports (the `cortex` module) and the allocator export.

#[cfg(target_arch = "wasm32")]
mod ffi {
    // rustc gives foreign items with a `wasm_import_module` a mangled symbol name, so these
    // imports never clash with a plugin's own export called `log` or `error` (or with libm's
    // `log`); the wasm import names are exactly `cortex.error` and `cortex.log`.
    #[link(wasm_import_module = "cortex")]
    extern "C" {
        #[link_name = "error"]
        pub fn cortex_error(msg_ptr: *const u8, msg_len: usize);
        #[link_name = "log"]
        pub fn cortex_log(level: i32, msg_ptr: *const u8, msg_len: usize);
    }
}

/// Low-level access to the host imports. Most plugins use [`CapabilityContext`] and `Err(..)`
/// results instead.
pub mod host {
    /// Reports that the current call failed with `message` (`cortex.error`). The caller gets a
    /// `PluginError(message)` whatever the capability returns afterwards; only the first report of
    /// a call counts. Messages longer than 4 KiB are truncated by the host.
    pub fn error(message: &str) {
        #[cfg(target_arch = "wasm32")]
        unsafe {
            crate::ffi::cortex_error(message.as_ptr(), message.len());
        }
        #[cfg(not(target_arch = "wasm32"))]
        native::record_error(message);
    }

    /// Writes a log line (`cortex.log`) at `level`.
    pub fn log(level: crate::LogLevel, message: &str) {
        #[cfg(target_arch = "wasm32")]
        unsafe {
            crate::ffi::cortex_log(level as i32, message.as_ptr(), message.len());
        }
        #[cfg(not(target_arch = "wasm32"))]
        native::record_log(level, message);
    }

    /// Off wasm (unit tests of plugin code on the build machine) the host imports do not exist:
    /// errors and log lines are recorded per thread and echoed to stderr instead.
    #[cfg(not(target_arch = "wasm32"))]
    pub mod native {
        use std::cell::RefCell;

        thread_local! {
            static ERRORS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
            static LOGS: RefCell<Vec<(crate::LogLevel, String)>> = const { RefCell::new(Vec::new()) };
        }

        pub(crate) fn record_error(message: &str) {
            eprintln!("cortex.error: {}", message);
            ERRORS.with(|e| e.borrow_mut().push(message.to_owned()));
        }

        pub(crate) fn record_log(level: crate::LogLevel, message: &str) {
            eprintln!("cortex.log [{:?}]: {}", level, message);
            LOGS.with(|l| l.borrow_mut().push((level, message.to_owned())));
        }

        /// Takes the errors reported on this thread so far (native builds only).
        pub fn take_errors() -> Vec<String> {
            ERRORS.with(|e| std::mem::take(&mut *e.borrow_mut()))
        }

        /// Takes the log lines written on this thread so far (native builds only).
        pub fn take_logs() -> Vec<(crate::LogLevel, String)> {
            LOGS.with(|l| std::mem::take(&mut *l.borrow_mut()))
        }
    }
}

/// The allocator the host calls (manifest `"allocator": "custom"`) to get `size` bytes of guest
/// memory for the input. Returns 0 when memory is exhausted (the host then fails the call).
/// The buffer is never freed: the instance is discarded after the call.
#[no_mangle]
pub extern "C" fn cortex_alloc(size: usize) -> *mut u8 {
    let size = if size == 0 { 1 } else { size };
    match std::alloc::Layout::from_size_align(size, 8) {
        // SAFETY: the layout has a non-zero size.
        Ok(layout) => unsafe { std::alloc::alloc(layout) },
        Err(_) => std::ptr::null_mut(),
    }
}

// ---------------------------------------------------------------------------------------------
// The capability context (logging).

/// Severity of a log line; the numeric values are the ABI's `cortex.log` levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum LogLevel {
    /// 0
    Debug = 0,
    /// 1
    Info = 1,
    /// 2 (the host calls it "warning")
    Warn = 2,
    /// 3
    Error = 3,
}

/// Passed to every capability handler: the capability's name and the host's logging.
///
/// Log lines become `plugin.log` structlog events on the host, tagged with the plugin's name.
/// Each line is truncated to 4 KiB, and a call may log at most the manifest's
/// `limits.maxLogBytes` (64 KiB by default); further lines are dropped.
#[derive(Clone, Debug)]
pub struct CapabilityContext {
    capability: &'static str,
}

impl CapabilityContext {
    /// A context for `capability` (the SDK's macros create it; useful in native unit tests).
    pub fn new(capability: &'static str) -> Self {
        CapabilityContext { capability }
    }

    /// The name the capability was registered (and called) under.
    pub fn capability(&self) -> &'static str {
        self.capability
    }

    /// Writes `message` to the host log at `level`.
    pub fn log(&self, level: LogLevel, message: impl AsRef<str>) {
        host::log(level, message.as_ref());
    }

    /// Logs at level debug (0).
    pub fn debug(&self, message: impl AsRef<str>) {
        self.log(LogLevel::Debug, message);
    }

    /// Logs at level info (1).
    pub fn info(&self, message: impl AsRef<str>) {
        self.log(LogLevel::Info, message);
    }

    /// Logs at level warning (2).
    pub fn warn(&self, message: impl AsRef<str>) {
        self.log(LogLevel::Warn, message);
    }

    /// Logs at level error (3). This only logs: to fail the call, return `Err(..)`.
    pub fn error(&self, message: impl AsRef<str>) {
        self.log(LogLevel::Error, message);
    }
}

// ---------------------------------------------------------------------------------------------
// Registration macros.

/// Exports a JSON capability named `$name` that calls `$handler`.
///
/// `$handler` is a function (or closure) `fn(Input, CapabilityContext) -> Output` where
/// `Input: serde::de::DeserializeOwned` and either `Output: serde::Serialize`, or
/// `Output = Result<T, E>` with `T: serde::Serialize` and `E: std::fmt::Display` (an `Err` is
/// reported as the call's error: the caller gets `PluginError(e.to_string())`).
///
/// Use it once per capability, at module level. `$name` is the wasm export name and must be a
/// string literal. Input that does not deserialize into `Input` is reported as an error with
/// serde_json's message (e.g. ``missing field `mode` at line 1 column 12``).
///
/// ```ignore
/// register_capability!("transform", transform_text);
/// ```
///
/// **Name clashes.** A Rust export's wasm name is also its linker symbol, so a capability named
/// like a C library function replaces that function in the whole module. The host already refuses
/// `malloc`, `free`, `calloc`, `realloc` and names starting with `cortex_` or `__`; for math names
/// (`log`, `exp`, `sin`, `pow`, `sqrt`, ...) do not use the matching float method in the same
/// module (`f64::ln` calls `log`): the module would fail to load with `type mismatch in call`.
#[macro_export]
macro_rules! register_capability {
    ($name:literal, $handler:expr $(,)?) => {
        const _: () = {
            #[export_name = $name]
            pub extern "C" fn __cortex_capability(
                input_ptr: *const u8,
                input_len: usize,
            ) -> *const u8 {
                #[allow(unused_imports)]
                use $crate::__private::{PlainOutput as _, ResultOutput as _};
                // SAFETY: the host wrote `input_len` bytes at `input_ptr` (ABI v1).
                unsafe {
                    $crate::__private::run($name, input_ptr, input_len, |bytes, ctx| {
                        let input = $crate::__private::decode(bytes)?;
                        $crate::__private::Output(($handler)(input, ctx)).__cortex_encode()
                    })
                }
            }
        };
    };
}

/// Exports a capability named `$name` that works on the raw input bytes.
///
/// `$handler` is `fn(&[u8], CapabilityContext) -> Result<Vec<u8>, String>`. It gets the input
/// JSON text exactly as the caller sent it (not parsed, not validated), and its `Ok` bytes are
/// returned unchanged: they must be one valid UTF-8 JSON value, or the caller gets
/// `InvalidOutput`. `Err(message)` is reported as the call's error.
///
/// ```ignore
/// fn echo(input: &[u8], _ctx: CapabilityContext) -> Result<Vec<u8>, String> {
///     Ok(input.to_vec())
/// }
/// register_raw_capability!("echo", echo);
/// ```
#[macro_export]
macro_rules! register_raw_capability {
    ($name:literal, $handler:expr $(,)?) => {
        const _: () = {
            #[export_name = $name]
            pub extern "C" fn __cortex_capability(
                input_ptr: *const u8,
                input_len: usize,
            ) -> *const u8 {
                // SAFETY: the host wrote `input_len` bytes at `input_ptr` (ABI v1).
                unsafe {
                    $crate::__private::run($name, input_ptr, input_len, |bytes, ctx| {
                        $crate::__private::raw_output(($handler)(bytes, ctx))
                    })
                }
            }
        };
    };
}

// ---------------------------------------------------------------------------------------------
// Implementation details used by the macros. Not a stable API.

#[doc(hidden)]
pub mod __private {
    use super::{host, CapabilityContext};
    use serde::de::DeserializeOwned;
    use serde::Serialize;
    use std::fmt::Display;

    const HEADER: usize = 4;

    /// Runs one capability call: builds the context, runs `body` on the input bytes, and turns
    /// its outcome into the ABI's result pointer (or `cortex.error` + 0).
    ///
    /// # Safety
    /// `input_ptr` must point to `input_len` readable bytes (or `input_len` must be 0).
    pub unsafe fn run<F>(
        name: &'static str,
        input_ptr: *const u8,
        input_len: usize,
        body: F,
    ) -> *const u8
    where
        F: FnOnce(&[u8], CapabilityContext) -> Result<Vec<u8>, String>,
    {
        let input: &[u8] = if input_len == 0 || input_ptr.is_null() {
            &[]
        } else {
            // SAFETY: guaranteed by the caller (the host wrote the input there).
            unsafe { std::slice::from_raw_parts(input_ptr, input_len) }
        };
        match body(input, CapabilityContext::new(name)) {
            Ok(framed) => finish(framed),
            Err(message) => {
                host::error(&message);
                std::ptr::null()
            }
        }
    }

    /// `framed` holds 4 placeholder bytes followed by the result; fill in the little-endian
    /// length and leak the buffer (the instance is discarded after the call).
    fn finish(mut framed: Vec<u8>) -> *const u8 {
        let len = (framed.len() - HEADER) as u32;
        framed[..HEADER].copy_from_slice(&len.to_le_bytes());
        let ptr = framed.as_ptr();
        std::mem::forget(framed);
        ptr
    }

    /// Deserialises the input JSON: structs must be JSON objects, nesting is bounded (see
    /// `strict.rs`), trailing characters are refused.
    pub fn decode<I: DeserializeOwned>(bytes: &[u8]) -> Result<I, String> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        // Depth is bounded by the Strict wrapper instead (MAX_INPUT_DEPTH), and unknown fields
        // are skipped iteratively by serde_json, so lifting its limit of 128 is safe.
        de.disable_recursion_limit();
        let value = I::deserialize(crate::strict::Strict::new(&mut de)).map_err(|e| e.to_string())?;
        de.end().map_err(|e| e.to_string())?;
        Ok(value)
    }

    fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, String> {
        let mut framed = Vec::with_capacity(256);
        framed.extend_from_slice(&[0u8; HEADER]);
        serde_json::to_writer(&mut framed, value)
            .map_err(|e| format!("cannot encode the result: {}", e))?;
        Ok(framed)
    }

    /// Frames a raw handler's bytes.
    pub fn raw_output(result: Result<Vec<u8>, String>) -> Result<Vec<u8>, String> {
        let bytes = result?;
        let mut framed = Vec::with_capacity(HEADER + bytes.len());
        framed.extend_from_slice(&[0u8; HEADER]);
        framed.extend_from_slice(&bytes);
        Ok(framed)
    }

    /// Wraps a handler's return value so that method resolution ("autoref specialisation")
    /// picks [`ResultOutput`] for `Result<T, E>` and [`PlainOutput`] for any other `T`.
    pub struct Output<T>(pub T);

    /// `Result<T: Serialize, E: Display>`: `Ok` is encoded, `Err` becomes the call's error.
    pub trait ResultOutput {
        /// Encodes the value into a framed result buffer.
        fn __cortex_encode(self) -> Result<Vec<u8>, String>;
    }

    impl<T: Serialize, E: Display> ResultOutput for Output<Result<T, E>> {
        fn __cortex_encode(self) -> Result<Vec<u8>, String> {
            match self.0 {
                Ok(value) => encode(&value),
                Err(error) => Err(error.to_string()),
            }
        }
    }

    /// Any other `T: Serialize` is encoded as the result.
    pub trait PlainOutput {
        /// Encodes the value into a framed result buffer.
        fn __cortex_encode(self) -> Result<Vec<u8>, String>;
    }

    impl<T: Serialize> PlainOutput for &Output<T> {
        fn __cortex_encode(self) -> Result<Vec<u8>, String> {
            encode(&self.0)
        }
    }
}

/// Formats as `message`; a convenient error type for handlers returning `Result<T, Error>`.
///
/// Any `E: Display` works as the error type (`String`, `&str`, `Box<dyn std::error::Error>`, your
/// own enums); this one just saves writing `.to_string()` / `format!`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error(pub String);

impl Error {
    /// An error with `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Error(message.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl From<String> for Error {
    fn from(message: String) -> Self {
        Error(message)
    }
}

impl From<&str> for Error {
    fn from(message: &str) -> Self {
        Error(message.to_owned())
    }
}

impl From<serde_json::Error> for Error {
    fn from(error: serde_json::Error) -> Self {
        Error(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::__private::{decode, raw_output, run, Output};
    #[allow(unused_imports)]
    use super::__private::{PlainOutput as _, ResultOutput as _};
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Deserialize)]
    struct In {
        text: String,
    }

    #[derive(Serialize)]
    struct Out {
        text: String,
        n: u64,
    }

    fn framed_json(ptr: *const u8) -> String {
        assert!(!ptr.is_null());
        unsafe {
            let mut header = [0u8; 4];
            header.copy_from_slice(std::slice::from_raw_parts(ptr, 4));
            let len = u32::from_le_bytes(header) as usize;
            String::from_utf8(std::slice::from_raw_parts(ptr.add(4), len).to_vec()).unwrap()
        }
    }

    fn call(input: &str, body: impl FnOnce(&[u8], CapabilityContext) -> Result<Vec<u8>, String>) -> *const u8 {
        unsafe { run("test", input.as_ptr(), input.len(), body) }
    }

    #[test]
    fn plain_output_is_framed_json() {
        let ptr = call(r#"{"text":"h\u00e9\"","extra":{"a":[1,2]}}"#, |bytes, _ctx| {
            let input: In = decode(bytes)?;
            Output(Out { text: input.text, n: u64::MAX }).__cortex_encode()
        });
        assert_eq!(framed_json(ptr), r#"{"text":"hé\"","n":18446744073709551615}"#);
        assert!(host::native::take_errors().is_empty());
    }

    #[test]
    fn result_err_is_reported() {
        let ptr = call("{}", |_bytes, _ctx| {
            let out: Result<Out, String> = Err("nope ü".to_string());
            Output(out).__cortex_encode()
        });
        assert!(ptr.is_null());
        assert_eq!(host::native::take_errors(), vec!["nope ü".to_string()]);
    }

    #[test]
    fn result_ok_is_encoded() {
        let ptr = call("{}", |_bytes, _ctx| {
            let out: Result<Vec<u8>, Error> = Ok(vec![1, 2]);
            Output(out).__cortex_encode()
        });
        assert_eq!(framed_json(ptr), "[1,2]");
    }

    #[test]
    fn decode_errors_carry_serde_messages() {
        let err = decode::<In>(br#"{"txt":1}"#).err().unwrap();
        assert!(err.starts_with("missing field `text`"), "{}", err);
        let err = decode::<In>(br#"{"text":5}"#).err().unwrap();
        assert!(err.starts_with("invalid type: integer `5`, expected a string"), "{}", err);
        // unpaired surrogates are refused (the message varies between serde_json versions)
        assert!(decode::<In>(br#"{"text":"\ud800"}"#).is_err());
        assert!(decode::<In>(br#"{"text":"\udc00x"}"#).is_err());
        assert!(decode::<In>(b"{\"text\":\"\xff\"}").is_err());
        assert!(decode::<In>(br#"{"text":"a"} x"#).is_err());
    }

    #[test]
    fn structs_need_objects_at_any_depth() {
        use std::collections::HashMap;

        #[derive(Deserialize, Debug, PartialEq)]
        struct Inner {
            a: u32,
        }
        #[derive(Deserialize, Debug, PartialEq)]
        struct Outer {
            inner: Inner,
            list: Vec<Inner>,
            maybe: Option<Inner>,
            map: HashMap<String, Inner>,
            pair: (u8, String),
            e: Vec<E>,
            #[serde(default)]
            n: Option<i128>,
        }
        #[derive(Deserialize, Debug, PartialEq)]
        struct Tuple(u8, u8);
        #[derive(Deserialize, Debug, PartialEq)]
        enum E {
            Unit,
            New(Inner),
            Tup(u8, u8),
            Struct { b: bool },
        }

        let good = br#"{"inner":{"a":1},"list":[{"a":2}],"maybe":{"a":3},"map":{"k":{"a":4}},
            "pair":[5,"x"],"e":["Unit",{"New":{"a":6}},{"Tup":[7,8]},{"Struct":{"b":true}}],
            "n":-170141183460469231731687303715884105728,"ignored":[[{"x":[1]}]]}"#;
        let v: Outer = decode(good).unwrap();
        assert_eq!(v.map["k"], Inner { a: 4 });
        assert_eq!(v.e[3], E::Struct { b: true });
        assert_eq!(v.n, Some(i128::MIN));
        assert_eq!(decode::<Tuple>(b"[1,2]").unwrap(), Tuple(1, 2));

        let err = decode::<In>(br#"["text"]"#).err().unwrap();
        assert!(err.starts_with("invalid type: sequence, expected struct In"), "{}", err);
        let err = decode::<In>(b"5").err().unwrap();
        assert!(err.starts_with("invalid type: integer `5`, expected struct In"), "{}", err);
        let nested = String::from_utf8(good.to_vec()).unwrap();
        for (from, to) in [
            (r#""inner":{"a":1}"#, r#""inner":[1]"#),
            (r#""list":[{"a":2}]"#, r#""list":[[2]]"#),
            (r#""maybe":{"a":3}"#, r#""maybe":[3]"#),
            (r#""map":{"k":{"a":4}}"#, r#""map":{"k":[4]}"#),
            (r#"{"New":{"a":6}}"#, r#"{"New":[6]}"#),
            (r#"{"Struct":{"b":true}}"#, r#"{"Struct":[true]}"#),
        ] {
            let bad = nested.replace(from, to);
            assert_ne!(bad, nested);
            let err = decode::<Outer>(bad.as_bytes()).err().unwrap();
            assert!(err.starts_with("invalid type: sequence, expected"), "{}: {}", to, err);
        }
    }

    #[test]
    fn values_untagged_and_flatten_still_work() {
        #[derive(Deserialize, Debug, PartialEq)]
        #[serde(untagged)]
        enum Either {
            Num(f64),
            Obj { x: String },
        }
        #[derive(Deserialize, Debug)]
        struct WithFlatten {
            a: u8,
            #[serde(flatten)]
            rest: std::collections::BTreeMap<String, serde_json::Value>,
        }
        let v: serde_json::Value = decode(br#"{"a":[1,{"b":null}],"c":"\u00e9"}"#).unwrap();
        assert_eq!(v["c"], "é");
        assert_eq!(decode::<Vec<Either>>(br#"[1.5,{"x":"y"}]"#).unwrap(),
                   vec![Either::Num(1.5), Either::Obj { x: "y".into() }]);
        let f: WithFlatten = decode(br#"{"a":1,"b":[2],"c":{}}"#).unwrap();
        assert_eq!((f.a, f.rest.len()), (1, 2));
        let s: String = decode(br#""\ud83d\ude00""#).unwrap();
        assert_eq!(s, "😀");
    }

    #[test]
    fn depth_limit() {
        // unoptimised native frames are far larger than release wasm ones: use a big stack
        std::thread::Builder::new()
            .stack_size(256 << 20)
            .spawn(depth_limit_body)
            .unwrap()
            .join()
            .unwrap();
    }

    fn depth_limit_body() {
        let nested = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
        assert!(decode::<serde_json::Value>(nested(MAX_INPUT_DEPTH).as_bytes()).is_ok());
        let err = decode::<serde_json::Value>(nested(MAX_INPUT_DEPTH + 1).as_bytes()).err().unwrap();
        assert!(err.starts_with("input nesting deeper than 1024 levels"), "{}", err);
        let objects = format!("{}1{}", r#"{"a":"#.repeat(MAX_INPUT_DEPTH + 1), "}".repeat(MAX_INPUT_DEPTH + 1));
        assert!(decode::<serde_json::Value>(objects.as_bytes()).is_err());
        // unknown fields are skipped without recursion, so they may nest deeper than the limit
        let deep_extra = format!(r#"{{"text":"a","x":{}}}"#, nested(5000));
        assert_eq!(decode::<In>(deep_extra.as_bytes()).unwrap().text, "a");
        // serde_json's own limit of 128 is lifted
        assert!(decode::<Vec<serde_json::Value>>(nested(500).as_bytes()).is_ok());
    }

    #[test]
    fn raw_output_is_framed_unchanged() {
        let ptr = call(r#"{"a": [1, 2]}"#, |bytes, _ctx| raw_output(Ok(bytes.to_vec())));
        assert_eq!(framed_json(ptr), r#"{"a": [1, 2]}"#);
        let ptr = call("", |bytes, _ctx| raw_output(Ok(bytes.to_vec())));
        assert_eq!(framed_json(ptr), "");
    }

    #[test]
    fn context_logs() {
        let ctx = CapabilityContext::new("cap");
        assert_eq!(ctx.capability(), "cap");
        ctx.info("one");
        ctx.log(LogLevel::Warn, String::from("two"));
        assert_eq!(
            host::native::take_logs(),
            vec![(LogLevel::Info, "one".to_string()), (LogLevel::Warn, "two".to_string())]
        );
    }

    #[test]
    fn alloc_never_returns_null_for_small_sizes() {
        assert!(!cortex_alloc(0).is_null());
        assert!(!cortex_alloc(100).is_null());
    }
}
