;; A store at address -4 (0xFFFFFFFC unsigned): far past the end, never wraps to offset 0.
(module
  (memory (export "memory") 1)
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func $store_at_minus_four (export "run") (param $ptr i32) (param $len i32) (result i32)
    (i32.store (i32.const -4) (i32.const 42))
    (i32.const 0))
)
