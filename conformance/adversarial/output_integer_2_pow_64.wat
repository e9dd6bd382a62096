;; 18446744073709551616 = 2^64: one past the largest integer the host decodes exactly.
(module
  (memory (export "memory") 1)
  (data (i32.const 700) "\14\00\00\0018446744073709551616")
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func (export "run") (param $ptr i32) (param $len i32) (result i32) (i32.const 700))
)
