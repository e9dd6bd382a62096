;; Five tables: over the limit of 4 tables per store.
(module
  (memory (export "memory") 1)
  (table $t1 1 funcref) (table $t2 1 funcref) (table $t3 1 funcref) (table $t4 1 funcref)
  (table $t5 1 funcref)
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func (export "run") (param $ptr i32) (param $len i32) (result i32) (i32.const 0))
)
