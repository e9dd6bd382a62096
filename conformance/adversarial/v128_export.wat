;; A capability-shaped module that also exports a function taking a v128. Describing that
;; signature through Wasmtime's C API aborts the process; the module must be refused by name.
(module
  (memory (export "memory") 1)
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func (export "run") (param $ptr i32) (param $len i32) (result i32) (i32.const 0))
  (func (export "simd_helper") (param v128) (result v128) (local.get 0))
)
