;; table.get at index 5 of a 1-element table.
(module
  (memory (export "memory") 1)
  (table $t 1 funcref)
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func $read_past_table (export "run") (param $ptr i32) (param $len i32) (result i32)
    (drop (table.get $t (i32.const 5)))
    (i32.const 0))
)
