;; A 64-bit memory (memory64 proposal), which the engine disables.
(module
  (memory (export "memory") i64 1)
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func (export "run") (param $ptr i32) (param $len i32) (result i32) (i32.const 0))
)
