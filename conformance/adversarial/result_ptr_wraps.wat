;; R = 0xFFFFFFFE: in 32-bit arithmetic R+4 wraps to 2, where a valid-looking result waits.
(module
  (memory (export "memory") 1)
  (data (i32.const 0) "\00\00\02\00\00\00{}")
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func (export "run") (param $ptr i32) (param $len i32) (result i32) (i32.const -2))
)
