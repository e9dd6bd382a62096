;; i32.trunc_f64_s of 1e10: finite but outside the i32 range.
(module
  (memory (export "memory") 1)
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func $truncate_too_big (export "run") (param $ptr i32) (param $len i32) (result i32)
    (i32.trunc_f64_s (f64.mul (f64.const 5e9) (f64.convert_i32_u (local.get $len)))))
)
