;; i32.trunc_f32_s of NaN (0/0 computed at run time).
(module
  (memory (export "memory") 1)
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func $truncate_nan (export "run") (param $ptr i32) (param $len i32) (result i32)
    (local $zero f32)
    (local.set $zero (f32.convert_i32_u (i32.sub (local.get $len) (i32.const 2))))
    (i32.trunc_f32_s (f32.div (local.get $zero) (local.get $zero))))
)
