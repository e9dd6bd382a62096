;; call_indirect through index 7 of a 2-element table.
(module
  (memory (export "memory") 1)
  (type $t (func (result i32)))
  (table 2 funcref)
  (elem (i32.const 0) $one)
  (func $one (type $t) (i32.const 1))
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func $call_past_table (export "run") (param $ptr i32) (param $len i32) (result i32)
    (call_indirect (type $t) (i32.const 7)))
)
