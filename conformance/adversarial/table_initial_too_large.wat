;; A table of 200,000 elements at start: over the 100,000-element limit per table.
(module
  (memory (export "memory") 1)
  (table $t 200000 funcref)
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func (export "run") (param $ptr i32) (param $len i32) (result i32) (i32.const 0))
)
