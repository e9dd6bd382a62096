;; i64.rem_u by zero (the divisor is computed from the input length).
(module
  (memory (export "memory") 1)
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func $remainder_by_zero (export "run") (param $ptr i32) (param $len i32) (result i32)
    (i32.wrap_i64
      (i64.rem_u (i64.const 42) (i64.extend_i32_u (i32.sub (local.get $len) (i32.const 2))))))
)
