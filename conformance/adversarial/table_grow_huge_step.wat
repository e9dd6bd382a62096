;; One table.grow of 2^32-1 elements (refused: -1), then reports how far it got.
(module
  (import "cortex" "error" (func $error (param i32 i32)))
  (memory (export "memory") 1)
  (table $t 0 funcref)
  (data (i32.const 16) "table.grow(-1 elements) was granted")
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func (export "run") (param $ptr i32) (param $len i32) (result i32)
    (if (i32.ne (table.grow $t (ref.null func) (i32.const -1)) (i32.const -1))
      (then (call $error (i32.const 16) (i32.const 35))))
    unreachable)
)
