;; {{name}}: a Cortex plugin written in WebAssembly text.
;;
;; build:  ./build.sh      (needs CORTEX_SDK_DIR, see build.sh)
;; call:   cortex --plugin-dir .. plugin call {{name}} greet '{"name":"you"}'
;;
;; The `;; @include cortex.wat` line is replaced by the WAT SDK ($CORTEX_SDK_DIR/wat/cortex.wat)
;; at build time: it exports `memory` and the allocator `cortex_alloc`, imports the `cortex`
;; host functions, and gives you the $cortex_* helpers used below. See the SDK's README.md.
(module
  ;; @include cortex.wat

  ;; ---- your data: addresses 4096 .. 65535 belong to the plugin (the SDK uses 0 .. 4095) ----
  (data (i32.const 4096) "name")                         ;; 4096, 4 bytes
  (data (i32.const 4112) "{\"greeting\":\"hello, ")      ;; 4112, 20 bytes
  (data (i32.const 4144) "\"}")                          ;; 4144, 2 bytes

  ;; greet: {"name": string} -> {"greeting": "hello, <name>"}
  ;; Every exported (i32, i32) -> i32 function is a capability (ABI v1).
  (func $greet (export "greet") (param $in i32) (param $in_len i32) (result i32)
    (local $name i32) (local $name_len i32)
    ;; the decoded UTF-8 of the string member "name", or (0, 0) when it is missing or not a
    ;; string (the SDK has then reported the error through cortex.error: just return 0)
    (call $cortex_get_string (local.get $in) (local.get $in_len) (i32.const 4096) (i32.const 4))
    (local.set $name_len)
    (local.set $name)
    (if (i32.eqz (local.get $name)) (then (return (i32.const 0))))

    ;; build the result JSON; $cortex_out_end adds the length header and returns its pointer
    (call $cortex_out_begin)
    (call $cortex_out_raw (i32.const 4112) (i32.const 20))              ;; '{"greeting":"hello, '
    (call $cortex_out_escaped (local.get $name) (local.get $name_len))  ;; the name, JSON-escaped
    (call $cortex_out_raw (i32.const 4144) (i32.const 2))               ;; "}
    (call $cortex_out_end))
)
