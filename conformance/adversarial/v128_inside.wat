;; SIMD used inside, with no v128 in the interface: it loads and runs. It reports through
;; cortex.error that the SIMD code ran and computed the right lane (else it traps).
(module
  (import "cortex" "error" (func $error (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 2048) "simd ran, lane 0 = 1")
  (func $lane0 (param v128) (result i32) (i32x4.extract_lane 0 (local.get 0)))
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func (export "run") (param $ptr i32) (param $len i32) (result i32)
    (if (i32.ne (call $lane0 (v128.const i32x4 1 2 3 4)) (i32.const 1)) (then unreachable))
    (call $error (i32.const 2048) (i32.const 20))
    (i32.const 0))
)
