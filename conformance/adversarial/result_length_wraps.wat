;; N = 0xFFFFFFFC at R = 1024: R + 4 + N wraps around to R in 32-bit arithmetic.
(module
  (memory (export "memory") 1)
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func (export "run") (param $ptr i32) (param $len i32) (result i32)
    (i32.store (i32.const 1024) (i32.const -4))
    (i32.const 1024))
)
