;; An import whose signature has a v128 result (no host provides one; describing it would abort).
(module
  (import "cortex" "log" (func $odd (param i32 i32 i32) (result v128)))
  (memory (export "memory") 1)
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func (export "run") (param $ptr i32) (param $len i32) (result i32) (i32.const 0))
)
