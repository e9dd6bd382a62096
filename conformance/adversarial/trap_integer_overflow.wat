;; i32.div_s INT_MIN / -1: the quotient 2^31 does not fit an i32.
;; The divisor is 1 - input_len (= -1 for the input {}), so the compiler cannot fold it.
(module
  (memory (export "memory") 1)
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func $int_min_div_minus_one (export "run") (param $ptr i32) (param $len i32) (result i32)
    (i32.div_s (i32.const 0x80000000) (i32.sub (i32.const 1) (local.get $len))))
)
